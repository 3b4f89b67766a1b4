"""The one owner of the AMI socket: login, watchdog, resync, ordered fan-out.

Panoramisk 1.4 reconnects by itself but never checks a Ping reply, says nothing on bad
credentials, hangs on some actions (QueueAdd, sync Originate) and loses every event
emitted while the link was down (AMI has no replay). :class:`AMIBridge` wraps the fixed
``Manager`` of :mod:`hotline.ami.manager` to close those gaps:

* events go from :class:`~hotline.ami.protocol.SafeAMIProtocol` into one
  ``asyncio.Queue``; a single consumer task calls the subscribers in arrival order, so
  the sans-I/O call tracker sees the TCP stream's order and a raising subscriber costs
  one counted error, never the link or the following events;
* after every login the bridge lists live channels (``CoreShowChannels``) and enqueues a
  synthetic ``HotlineResync`` event *at the exact stream position* of the list's end, so
  the tracker can close calls that ended while we were away; a dropped link enqueues
  ``HotlineDisconnected``;
* a watchdog pings and aborts a silent (half-open) link, which makes panoramisk reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO, Any

from panoramisk.message import Message

from hotline.ami.events import AMIEvent
from hotline.ami.framing import FramerStats
from hotline.ami.manager import FAILED_RESPONSES, BridgeAction, BridgeManager, build_action
from hotline.ami.protocol import ProtocolStats, SafeAMIProtocol

__all__ = [
    "DISCONNECTED_EVENT",
    "RESYNC_EVENT",
    "AMIActionTimeoutError",
    "AMIBridge",
    "AMINotConnectedError",
]

log = logging.getLogger(__name__)

RESYNC_EVENT = "HotlineResync"
DISCONNECTED_EVENT = "HotlineDisconnected"

Subscriber = Callable[[AMIEvent], None]
LoginHook = Callable[["AMIBridge"], Awaitable[None]]


class AMINotConnectedError(ConnectionError):
    """The bridge has no AMI connection to send on (not started, or stopped)."""


class AMIActionTimeoutError(TimeoutError):
    """An action got no complete answer in time; it was withdrawn, not left to resend."""


def _plain(message: Any) -> dict[str, str]:
    """A panoramisk message's headers as text (a repeated header keeps its last value)."""
    headers: dict[str, str] = {}
    for key, value in message.items():
        if isinstance(value, list):
            value = value[-1] if value else ""
        headers[str(key)] = str(value)
    return headers


class AMIBridge:
    """Owns the AMI connection; see the module docstring for the guarantees.

    ``secret`` is only ever sent to Asterisk, never logged. The AMI user needs
    ``read=system,...``: FullyBooted (which makes panoramisk resend actions that were in
    flight at a drop) and CoreShowChannels both depend on it.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        ping_interval: float = 5.0,
        ping_timeout: float = 3.0,
        reconnect_delay: float = 1.0,
        record_to: Path | None = None,
        login_timeout: float = 10.0,
        resync_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.reconnect_delay = reconnect_delay
        self.record_to = record_to
        self.login_timeout = login_timeout
        self.resync_timeout = resync_timeout

        self._queue: asyncio.Queue[AMIEvent | None] = asyncio.Queue()
        self._subscribers: list[Subscriber] = []
        self._login_hooks: list[LoginHook] = []
        self._manager: BridgeManager | None = None
        self._record: IO[bytes] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._login_task: asyncio.Task[None] | None = None
        self._login_deadline: asyncio.TimerHandle | None = None
        self._connected = False
        self._connected_event = asyncio.Event()
        self._stopping = False
        self._version: str | None = None
        self._abort_reason: str | None = None  # why *we* cut the link, for the log line

        self._logins = 0
        self._reconnects = 0
        self._subscriber_errors = 0
        self._hook_errors = 0
        self._login_failures = 0
        self._failure_streak = 0  # login refusals or TCP failures since the last success
        self._watchdog_timeouts = 0
        self._resyncs = 0
        self._disconnects = 0

    # -- public API ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True only between a successful login and the next drop."""
        return self._connected

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(event)`` for every event, in stream order, from one task.

        Callbacks must be quick and synchronous (enqueue work elsewhere); an exception is
        logged and counted and the next callback and event still run.
        """
        self._subscribers.append(callback)

    def add_login_hook(self, coro_fn: LoginHook) -> None:
        """Run ``await coro_fn(bridge)`` after every successful login (after the resync)."""
        self._login_hooks.append(coro_fn)

    async def start(self) -> None:
        """Start connecting and return at once; use :meth:`wait_connected` to wait."""
        if self._manager is not None:
            raise RuntimeError("AMIBridge.start() called twice")
        loop = asyncio.get_running_loop()
        manager = BridgeManager(
            self,
            self._sink,
            host=self.host,
            port=self.port,
            username=self.username,
            secret=self._secret,
            events="on",
            reconnect_timeout=self.reconnect_delay,
            loop=loop,
            log=log,
        )
        if self.record_to is not None:
            self.record_to.parent.mkdir(parents=True, exist_ok=True)
            self._record = open(self.record_to, "ab", buffering=0)  # noqa: SIM115 - closed in stop()
            manager.record_stream = self._record
            log.info("recording the raw AMI stream to %s", self.record_to)
        self._manager = manager
        self._consumer = loop.create_task(self._consume(), name="ami-consumer")
        self._watchdog_task = loop.create_task(self._watchdog(), name="ami-watchdog")
        manager.connect()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a logged-in link; ``False`` if none came."""
        try:
            await asyncio.wait_for(self._connected_event.wait(), timeout)
        except TimeoutError:
            return False
        return self._connected

    async def stop(self) -> None:
        """Close without reconnecting, after subscribers have seen every queued event."""
        self._stopping = True
        self._connected = False
        self._connected_event.clear()
        self._cancel_login_deadline()
        tasks = [t for t in (self._watchdog_task, self._login_task) if t is not None]
        manager = self._manager
        if manager is not None:
            if manager.connect_task is not None:
                tasks.append(manager.connect_task)
            protocol = manager.protocol
            if protocol is not None:
                for action in list(protocol.responses.values()):
                    if not action.future.done():
                        action.future.set_exception(AMINotConnectedError("AMI bridge stopped"))
                        action.future.exception()  # mark retrieved: no "never retrieved" noise
            manager.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._consumer is not None:
            self._queue.put_nowait(None)
            await self._consumer
            self._consumer = None
        if self._record is not None:
            self._record.close()
            self._record = None

    async def send_action(
        self,
        action: Mapping[str, Any],
        as_list: bool | None = None,
        *,
        timeout: float = 10.0,
    ) -> Message | list[Message]:
        """Send an AMI action; return its response (or list, for multi-response actions).

        Works around panoramisk 1.4 (:func:`~hotline.ami.manager.build_action`):
        queue-member actions are single-response; ``Originate`` always goes ``Async: true``
        with a ``ChannelId`` (generated unless given, so the caller knows the new leg's
        Uniqueid) and returns ``[Response, OriginateResponse]`` (just ``[Response]`` if
        Asterisk refused it).
        After ``timeout`` seconds the action is withdrawn, so panoramisk will not resend
        it after a reconnect, and :class:`AMIActionTimeoutError` is raised.
        """
        manager = self._manager
        if manager is None or manager.protocol is None or self._stopping:
            raise AMINotConnectedError("AMI bridge is not started")
        act, name = build_action(action, as_list)
        return await self._send(act, timeout=timeout, name=name)

    def stats(self) -> dict[str, Any]:
        """Counters for /api/health; all cumulative across reconnects."""
        manager = self._manager
        framer = manager.framer_stats if manager is not None else FramerStats()
        proto = manager.protocol_stats if manager is not None else ProtocolStats()
        return {
            "connected": self._connected,
            "last_event_at": proto.last_event_at or None,
            "events": proto.events_sunk,
            "frames": framer.frames,
            "garbage_frames": framer.garbage_frames,
            "bad_lines": framer.bad_lines,
            "oversize_discards": framer.oversize_discards,
            "handler_errors": self._subscriber_errors + proto.handler_errors,
            "subscriber_errors": self._subscriber_errors,
            "protocol_errors": proto.handler_errors,
            "login_hook_errors": self._hook_errors,
            "logins": self._logins,
            "login_failures": self._login_failures,
            "reconnects": self._reconnects,
            "disconnects": self._disconnects,
            "watchdog_timeouts": self._watchdog_timeouts,
            "resyncs": self._resyncs,
            "queue_depth": self._queue.qsize(),
            "version": self._version,
        }

    # -- event path -------------------------------------------------------------------

    def _sink(self, event: AMIEvent) -> None:
        """The protocol's ``event_sink``: runs inside ``data_received``, so only enqueue."""
        self._queue.put_nowait(event)

    async def _consume(self) -> None:
        queue = self._queue
        while True:
            event = await queue.get()
            if event is None:
                return
            for callback in self._subscribers:
                try:
                    callback(event)
                except Exception:
                    self._subscriber_errors += 1
                    log.exception(
                        "AMI subscriber %s failed on %s (Uniqueid %s); continuing",
                        getattr(callback, "__qualname__", callback),
                        event.name,
                        event.uniqueid or "-",
                    )

    # -- actions ----------------------------------------------------------------------

    async def _send(self, act: BridgeAction, *, timeout: float, name: str) -> Any:
        manager = self._manager
        if manager is None or manager.protocol is None:
            raise AMINotConnectedError("AMI bridge is not started")
        future = manager.send_action(act, as_list=act.as_list)
        try:
            result = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            self._forget(act)
            raise AMIActionTimeoutError(
                f"AMI action {name or '?'} (ActionID {act.id}) unanswered after {timeout:g}s"
            ) from None
        except asyncio.CancelledError:
            self._forget(act)
            raise
        if act.originate and isinstance(result, Message):
            return [result]
        return result

    def _forget(self, act: BridgeAction) -> None:
        """Stop tracking an abandoned action: no leak, and no resend after a reconnect."""
        manager = self._manager
        if manager is not None:
            protocol = manager.protocol
            if protocol is not None:
                for key in {act.id, act.action_id}:
                    if key and protocol.responses.get(key) is act:
                        del protocol.responses[key]
            if act in manager.awaiting_actions:
                manager.awaiting_actions.remove(act)
        if not act.future.done():
            act.future.cancel()

    # -- connection life cycle: the LinkOwner hooks, called only by BridgeManager -------

    @property
    def stopping(self) -> bool:
        """True from :meth:`stop` on: the manager neither reconnects nor logs in again."""
        return self._stopping

    def on_connect_failed(self, exc: BaseException) -> None:
        if self._failure_streak == 0:
            log.warning(
                "AMI at %s:%s unreachable (%s); retrying every %gs",
                self.host,
                self.port,
                exc.__class__.__name__,
                self.reconnect_delay,
            )
        else:
            log.debug("AMI at %s:%s still unreachable (%s)", self.host, self.port, exc)
        self._failure_streak += 1

    def on_tcp_connected(self, protocol: SafeAMIProtocol) -> None:
        log.debug(
            "AMI TCP connected to %s:%s; logging in as %s", self.host, self.port, self.username
        )
        self._cancel_login_deadline()
        loop = asyncio.get_running_loop()
        self._login_deadline = loop.call_later(self.login_timeout, self._login_overdue, protocol)

    def _login_overdue(self, protocol: SafeAMIProtocol) -> None:
        self._login_deadline = None
        manager = self._manager
        if manager is None or protocol is not manager.protocol or protocol.closed:
            return
        if not manager.authenticated:
            self._abort_reason = "no login answer"
            log.warning(
                "AMI at %s:%s sent no login answer within %gs; reconnecting",
                self.host,
                self.port,
                self.login_timeout,
            )
            protocol.transport.abort()

    def on_login_result(self, protocol: SafeAMIProtocol, response: Message | None) -> None:
        self._cancel_login_deadline()
        if response is not None and response.success:
            self._connected = True
            self._connected_event.set()
            self._failure_streak = 0
            self._logins += 1
            if self._logins > 1:
                self._reconnects += 1
            self._version = protocol.version or self._version
            log.info(
                "AMI logged in as %s at %s:%s (AMI version %s, login #%d)",
                self.username,
                self.host,
                self.port,
                self._version,
                self._logins,
            )
            self._login_task = asyncio.get_running_loop().create_task(
                self._after_login(), name="ami-after-login"
            )
            return
        self._login_failures += 1
        reason = str(response.get("Message", "")) if response is not None else "no answer"
        if self._failure_streak == 0:
            log.error(
                "AMI login refused for user %s at %s:%s: %s. Check the AMI username and "
                "secret (HOTLINE_AMI_USER / HOTLINE_AMI_SECRET) and the user's permit/deny; "
                "retrying every %gs",
                self.username,
                self.host,
                self.port,
                reason or "no reason given",
                self.reconnect_delay,
            )
        else:
            log.debug("AMI login refused again for user %s: %s", self.username, reason)
        self._failure_streak += 1
        if not protocol.closed:
            self._abort_reason = "login refused"
            protocol.transport.abort()  # Asterisk closes too; don't rely on a fake or proxy

    def on_link_lost(self, exc: Any) -> None:
        was_connected = self._connected
        abort_reason, self._abort_reason = self._abort_reason, None
        self._connected = False
        self._connected_event.clear()
        self._cancel_login_deadline()
        if self._login_task is not None:
            self._login_task.cancel()
            self._login_task = None
        if not was_connected:
            log.debug("AMI link to %s:%s closed before login", self.host, self.port)
            return
        self._disconnects += 1
        if abort_reason is not None:
            reason = abort_reason
        elif isinstance(exc, Message):
            reason = f"Asterisk {exc.get('Event', 'event')}"
        elif exc is None:
            reason = "closed by peer"
        else:
            reason = exc.__class__.__name__
        if self._stopping:
            log.info("AMI link to %s:%s closed", self.host, self.port)
        else:
            log.warning(
                "AMI link to %s:%s lost (%s); reconnecting in %gs",
                self.host,
                self.port,
                reason,
                self.reconnect_delay,
            )
        self._queue.put_nowait(
            AMIEvent(name=DISCONNECTED_EVENT, headers={"Reason": reason}, received=time.time())
        )

    def _cancel_login_deadline(self) -> None:
        if self._login_deadline is not None:
            self._login_deadline.cancel()
            self._login_deadline = None

    async def _after_login(self) -> None:
        try:
            await self._resync()
        except Exception:
            log.exception("AMI resync after login failed; live events continue")
        for hook in list(self._login_hooks):
            try:
                await hook(self)
            except Exception:
                self._hook_errors += 1
                log.exception("AMI login hook %s failed", getattr(hook, "__qualname__", hook))

    async def _resync(self) -> None:
        """List live channels; the marker is enqueued by ``on_complete``, in stream order."""
        act = BridgeAction({"Action": "CoreShowChannels"})
        act.on_complete = self._resync_complete
        try:
            await self._send(act, timeout=self.resync_timeout, name="CoreShowChannels")
        except AMIActionTimeoutError:
            log.warning(
                "CoreShowChannels unanswered after %gs; no resync this login",
                self.resync_timeout,
            )

    def _resync_complete(self, act: BridgeAction) -> None:
        first = act.responses[0]
        if first.get("Response") in FAILED_RESPONSES:
            log.warning(
                "CoreShowChannels refused (%s): the AMI user needs read=system or reporting; "
                "no resync this login",
                first.get("Message", ""),
            )
            return
        uniqueids: list[str] = []
        linkedids: list[str] = []
        now = time.time()
        for item in act.responses:
            if item.get("Event") == "CoreShowChannel":
                uniqueids.append(str(item.get("Uniqueid", "")))
                linkedids.append(str(item.get("Linkedid", "")))
                # The items carry our ActionID, so the protocol kept them from the sink
                # (they answer an action); the tracker adopts the calls they describe,
                # so they go to the consumer too, just before the marker.
                self._queue.put_nowait(
                    AMIEvent(name="CoreShowChannel", headers=_plain(item), received=now)
                )
        self._resyncs += 1
        log.info("AMI resync: %d live channels", len(uniqueids))
        self._queue.put_nowait(
            AMIEvent(
                name=RESYNC_EVENT,
                headers={"Uniqueids": " ".join(uniqueids), "Linkedids": " ".join(linkedids)},
                received=time.time(),
            )
        )

    async def _watchdog(self) -> None:
        """Ping every ``ping_interval``; abort a link that does not answer in time.

        ``transport.abort()`` (not ``Manager.close()``, which sets ``closed`` first and so
        never reconnects) goes through ``connection_lost`` and panoramisk's reconnect.
        """
        while True:
            await asyncio.sleep(self.ping_interval)
            manager = self._manager
            if not self._connected or manager is None or manager.protocol is None:
                continue
            protocol = manager.protocol
            try:
                await self.send_action({"Action": "Ping"}, timeout=self.ping_timeout)
            except AMIActionTimeoutError:
                if protocol is manager.protocol and not protocol.closed:
                    self._watchdog_timeouts += 1
                    self._abort_reason = "no Ping answer"
                    log.warning(
                        "AMI at %s:%s did not answer Ping within %gs; aborting the link",
                        self.host,
                        self.port,
                        self.ping_timeout,
                    )
                    protocol.transport.abort()
            except Exception:
                log.exception("AMI watchdog ping failed")

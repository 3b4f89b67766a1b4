"""Panoramisk 1.4's ``Manager`` and ``Action`` with the fixes the bridge depends on.

Panoramisk 1.4 reconnects by itself, but it never checks a Ping reply, says nothing on bad
credentials (Asterisk drops the link and 1.4 retries forever with the same secret), waits
forever on some single-response actions (QueueAdd) and drops the link on an ``Originate``
without ``Async`` (a KeyError inside ``data_received``). The subclasses here close those
gaps and report every step of the connection's life to a :class:`LinkOwner` (the
:class:`~hotline.ami.bridge.AMIBridge`), which decides what to log, count and enqueue.

This module knows the bridge only through :class:`LinkOwner`, so the import runs one way:
bridge → manager → protocol → framing.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Mapping
from typing import IO, Any, Protocol

from panoramisk import Manager, actions
from panoramisk.message import Message

from hotline.ami.events import AMIEvent
from hotline.ami.framing import FramerStats
from hotline.ami.protocol import ProtocolStats, SafeAMIProtocol

__all__ = [
    "FAILED_RESPONSES",
    "SINGLE_RESPONSE_ACTIONS",
    "BridgeAction",
    "BridgeCommand",
    "BridgeManager",
    "LinkOwner",
    "build_action",
]

# ``Response:`` values that mean Asterisk refused the action.
FAILED_RESPONSES = frozenset({"Error", "Fail", "Failure"})
# Asterisk answers these with one "Added interface to queue"-style response, which 1.4
# mistakes for the start of a list (its rule: a message starting "added" and ending "to
# queue" is multi-response) and then waits for forever.
SINGLE_RESPONSE_ACTIONS = frozenset({"queueadd", "queueremove", "queuepenalty", "queuepause"})


class LinkOwner(Protocol):
    """What :class:`BridgeManager` reports to; the bridge implements it.

    Each hook runs on the event loop, inside panoramisk's callbacks, so it must not block.
    """

    @property
    def stopping(self) -> bool:
        """True once the owner is shutting down: no reconnect, no new login."""
        ...

    def on_connect_failed(self, exc: BaseException) -> None:
        """The TCP connect failed; the manager retries after ``reconnect_timeout``."""

    def on_tcp_connected(self, protocol: SafeAMIProtocol) -> None:
        """TCP is up and the Login action is sent; its answer comes to ``on_login_result``."""

    def on_login_result(self, protocol: SafeAMIProtocol, response: Message | None) -> None:
        """The Login answer (``None``: the action failed or was cancelled)."""

    def on_link_lost(self, exc: Any) -> None:
        """The link dropped (``exc``: an exception, a ``Shutdown`` message, or ``None``)."""


# panoramisk ships no type information, so its classes are ``Any`` to mypy.
class BridgeAction(actions.Action):  # type: ignore[misc]  # untyped base (panoramisk)
    """panoramisk's Action with 1.4's completion rules fixed.

    * an error response always completes (1.4 waits forever when ``as_list=True``);
    * a missing ``Async`` header no longer raises KeyError inside ``data_received``;
    * an Originate resolves to ``[Response, OriginateResponse]``;
    * ``on_complete(action)`` runs synchronously inside ``data_received`` when the action
      completes, i.e. at its exact place in the event stream (used for the resync marker);
    * an action whose caller gave up (future done) reports itself finished so the
      protocol stops tracking it instead of leaking it.
    """

    def __init__(self, *args: Any, originate: bool = False, **kwargs: Any) -> None:
        self.originate = originate
        self.on_complete: Callable[[BridgeAction], None] | None = None
        super().__init__(*args, **kwargs)

    @property
    def multi(self) -> bool:
        resp = self.responses[0]
        if resp.get("Response") in FAILED_RESPONSES:
            return False
        if self.originate:
            return True
        if self.as_list is not None:
            return bool(self.as_list)
        if resp.get("SubEvent") == "Start" or str(resp.get("EventList", "")).lower() == "start":
            return True
        message = str(resp.get("Message", "")).lower()
        if "will follow" in message:
            return True
        is_async = str(self.get("Async", "false")).lower() in ("true", "yes", "1")
        return message.endswith("successfully queued") and is_async

    @property
    def completed(self) -> bool:
        if self.originate and len(self.responses) > 1:
            return bool(self.responses[-1].get("Event") == "OriginateResponse")
        return bool(super().completed)

    def add_message(self, message: Message) -> bool:
        finished = super().add_message(message)
        if not self.future.done():
            return False
        if finished and self.on_complete is not None:
            self.on_complete(self)
        return True


class BridgeCommand(BridgeAction, actions.Command):  # type: ignore[misc]  # untyped base
    """``Action: Command`` with the same fixes (panoramisk keys it by CommandID)."""


class BridgeManager(Manager):  # type: ignore[misc]  # untyped base (panoramisk)
    """Manager whose connection life cycle reports to a :class:`LinkOwner`.

    Overrides only what 1.4 gets wrong for us: float reconnect delays (1.4 truncates
    them with ``int``), no blind pinger (the owner's watchdog checks replies), a login
    result that is checked and reported, no reconnect once the owner is stopping, and
    one log line per outage instead of one per retry (the owner logs).

    ``event_sink`` receives every plain event from :class:`SafeAMIProtocol`, inside
    ``data_received``: it must only enqueue.
    """

    protocol: SafeAMIProtocol | None

    def __init__(
        self, owner: LinkOwner, event_sink: Callable[[AMIEvent], None], **config: Any
    ) -> None:
        super().__init__(**config)
        self.owner = owner
        self.reconnect_timeout = float(config["reconnect_timeout"])
        self.config["protocol_factory"] = functools.partial(SafeAMIProtocol, self)
        self.event_sink = event_sink
        self.record_stream: IO[bytes] | None = None
        self.framer_stats = FramerStats()
        self.protocol_stats = ProtocolStats()
        self.connect_task: asyncio.Task[Any] | None = None

    def ping(self) -> None:
        """Disabled: 1.4 sends a Ping and never reads the answer; the watchdog does both."""

    def connect(
        self, run_forever: bool = False, on_startup: Any = None, on_shutdown: Any = None
    ) -> asyncio.Task[Any] | None:
        if self.owner.stopping:
            return None
        self.connect_task = super().connect()
        return self.connect_task

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled():
            return
        exc = f.exception()
        if self.owner.stopping:
            if exc is None:
                f.result()[0].close()
            return
        if self.protocol is not None:
            self.protocol.close()
        if exc is not None:
            self.owner.on_connect_failed(exc)
            self.loop.call_later(self.reconnect_timeout, self.connect)
            return
        protocol: SafeAMIProtocol
        _transport, protocol = f.result()
        self._connected = True
        self.loop.call_soon(self.on_connect, self)
        self.protocol = protocol
        protocol.factory = self
        protocol.log = self.log
        protocol.config = self.config
        protocol.encoding = self.encoding = self.config["encoding"]
        self.responses = protocol.responses = {}
        self.authenticated = False
        self.authenticated_future = self.send_action(
            {
                "Action": "Login",
                "Username": self.config["username"],
                "Secret": self.config["secret"],
                "Events": self.config["events"],
            }
        )
        self.authenticated_future.add_done_callback(functools.partial(self._login_done, protocol))
        self.owner.on_tcp_connected(protocol)

    def _login_done(self, protocol: SafeAMIProtocol, future: asyncio.Future[Any]) -> None:
        if protocol is not self.protocol or protocol.closed:
            return  # an older connection's login; its successor has its own
        self.authenticated_future = None
        response = None
        if not future.cancelled() and future.exception() is None:
            response = future.result()
        self.authenticated = bool(response is not None and response.success)
        if self.authenticated:
            self.loop.call_soon(self.on_login, self)
        self.owner.on_login_result(protocol, response)

    def connection_lost(self, exc: Any) -> None:
        self._connected = False
        self.authenticated = False
        self.owner.on_link_lost(exc)
        if self.owner.stopping:
            return
        self.loop.call_soon(self.on_disconnect, self, exc)
        self.loop.call_later(self.reconnect_timeout, self.connect)


def _lookup(mapping: Mapping[str, Any], key: str) -> str | None:
    """AMI header names are case-insensitive; callers' dicts may spell them any way."""
    lowered = key.lower()
    for name in mapping:
        if name.lower() == lowered:
            return name
    return None


def build_action(action: Mapping[str, Any], as_list: bool | None) -> tuple[BridgeAction, str]:
    """The fixed action to send for the header dict ``action``, and the action's name.

    Queue-member actions (:data:`SINGLE_RESPONSE_ACTIONS`) are forced single-response.
    ``Originate`` always goes ``Async: true`` (1.4 raises KeyError inside ``data_received``
    on the "successfully queued" answer without it, which drops the link) and gets a
    ``ChannelId`` unless given, so the caller knows the new leg's Uniqueid up front.
    ``Command`` becomes a :class:`BridgeCommand` (panoramisk keys it by CommandID).
    """
    data = dict(action)
    key = _lookup(data, "Action")
    name = str(data[key]) if key is not None else ""
    lowered = name.lower()
    if lowered in SINGLE_RESPONSE_ACTIONS:
        as_list = False
    originate = lowered == "originate"
    if originate:
        for existing in [k for k in data if k.lower() == "async"]:
            del data[existing]
        data["Async"] = "true"
        if _lookup(data, "ChannelId") is None:
            data["ChannelId"] = str(uuid.uuid4())
    klass = BridgeCommand if lowered == "command" else BridgeAction
    return klass(data, as_list=as_list, originate=originate), name

"""Sending supervisor actions over the AMI bridge, and owning the Originates that outlive
the request that started them.

A queue action (pause, add, remove) gets one response within :data:`ACTION_TIMEOUT`. An
Originate waits for the first phone to be answered, which can take the whole ring time:
:meth:`ActionRunner.originate` waits ``accept_wait`` seconds, and when Asterisk has not
settled it by then, a background task publishes the outcome on the supervisor stream
as an ``action`` frame. Those tasks belong to the :class:`ActionRunner`, whose owner (the
API's lifespan) closes it at shutdown, so none is left running on a closed loop.

The bridge's failures become this module's :class:`ActionError` family; the API maps
them to HTTP and this module knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hotline.ami.actions import (
    OriginateOutcome,
    OriginateStatus,
    first_response,
    originate_async,
    originate_outcome,
    succeeded,
)
from hotline.ami.bridge import AMIActionTimeoutError, AMINotConnectedError
from hotline.bus import Bus
from hotline.types import SUPERVISOR_STREAM

__all__ = [
    "ACTION_TIMEOUT",
    "RING_SECONDS",
    "ActionBridge",
    "ActionError",
    "ActionRunner",
    "NoAnswer",
    "NotConnected",
    "Originated",
    "Refused",
    "Sent",
]

log = logging.getLogger(__name__)

ACTION_TIMEOUT = 5.0  # s for single-response actions (QueuePause/Add/Remove)
RING_SECONDS = 30  # Originate Timeout: how long the first phone rings


class ActionBridge(Protocol):
    """What actions need of :class:`~hotline.ami.bridge.AMIBridge` (tests may fake it)."""

    @property
    def connected(self) -> bool: ...

    async def send_action(
        self, action: Mapping[str, Any], as_list: bool | None = None, *, timeout: float = 10.0
    ) -> Any: ...


class ActionError(Exception):
    """An action did not do what was asked; ``str()`` says why, in words for a person."""


class NotConnected(ActionError):
    """The bridge has no AMI link to send on."""


class NoAnswer(ActionError):
    """Asterisk did not answer in time; the bridge withdrew the action."""


class Refused(ActionError):
    """Asterisk answered with an error; ``message`` is its own words (at most 200 chars)."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"Asterisk refused {action}")
        self.action = action
        self.message = message[:200]


@dataclass(frozen=True, slots=True)
class Sent:
    """A single-response action Asterisk accepted."""

    action: str
    message: str


@dataclass(frozen=True, slots=True)
class Originated:
    """An Originate as far as it got: ``outcome`` is None while the phone still rings.

    ``frame`` is the ``action`` frame (``type``, what was asked, ``channel_id`` and, once
    settled, the outcome's ``ok``/``status``/``reason``).
    """

    frame: dict[str, Any]
    outcome: OriginateOutcome | None


def _settled(task: asyncio.Task[Any]) -> OriginateOutcome:
    """The outcome of a finished Originate task, its failures included."""
    try:
        reply = task.result()
    except AMINotConnectedError:
        return OriginateOutcome(False, OriginateStatus.AMI_UNAVAILABLE)
    except (AMIActionTimeoutError, TimeoutError):
        return OriginateOutcome(False, OriginateStatus.TIMEOUT)
    except Exception as exc:
        return OriginateOutcome(False, OriginateStatus.ERROR, type(exc).__name__)
    return originate_outcome(reply)


class ActionRunner:
    """Sends actions through whichever bridge the caller passes, and keeps the strong
    references to pending Originates (the event loop keeps only weak ones)."""

    def __init__(self, bus: Bus, *, clock: Callable[[], float] = time.time) -> None:
        self._bus = bus
        self._clock = clock
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def pending(self) -> int:
        """Background tasks still running (an Originate and the task that reports it)."""
        return len(self._tasks)

    async def send(self, bridge: ActionBridge, action: Mapping[str, str]) -> Sent:
        """Send a single-response action; raise :class:`ActionError` unless it succeeded."""
        try:
            reply = await bridge.send_action(action, timeout=ACTION_TIMEOUT)
        except AMINotConnectedError:
            raise NotConnected("AMI is not connected") from None
        except (AMIActionTimeoutError, TimeoutError):
            raise NoAnswer("Asterisk did not answer in time") from None
        first = first_response(reply)
        if first is None or not succeeded(first):
            message = str(first.get("Message", "")) if first is not None else ""
            raise Refused(action["Action"], message)
        return Sent(action["Action"], str(first.get("Message", "")))

    async def originate(
        self,
        bridge: ActionBridge,
        action: Mapping[str, str],
        frame: Mapping[str, Any],
        *,
        accept_wait: float,
    ) -> Originated:
        """Originate ``action``; ``frame`` says what was asked (``action``, ``linkedid``…).

        Settled within ``accept_wait`` seconds: the outcome is published and returned, or
        :class:`NotConnected`/:class:`NoAnswer` is raised (nothing is published then).
        Otherwise the outcome is None and a background task publishes it when it comes.
        """
        channel_id = str(uuid.uuid4())
        sent = originate_async(action, channel_id=channel_id, ring_seconds=RING_SECONDS)
        base = {"type": "action", **frame, "channel_id": channel_id}
        task = asyncio.create_task(bridge.send_action(sent, timeout=RING_SECONDS + 5))
        self._keep(task)  # kept even if this request is cancelled while it waits
        done, _ = await asyncio.wait({task}, timeout=accept_wait)
        if not done:
            self._keep(asyncio.create_task(self._follow(task, base)))
            ringing = OriginateOutcome(True, OriginateStatus.RINGING)
            return Originated({**base, **ringing.as_dict()}, None)
        outcome = _settled(task)
        if outcome.status is OriginateStatus.AMI_UNAVAILABLE:
            raise NotConnected("AMI is not connected")
        if outcome.status is OriginateStatus.TIMEOUT:
            raise NoAnswer("Asterisk did not answer")
        body = {**base, **outcome.as_dict()}
        await self._publish({**body, "at": self._clock()})
        return Originated(body, outcome)

    async def close(self) -> None:
        """Cancel what is still pending and wait for it to end (at shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, task: asyncio.Task[Any], frame: dict[str, Any]) -> None:
        await asyncio.wait({task})  # returns when it ends; never raises its exception
        await self._publish({**frame, **_settled(task).as_dict(), "at": self._clock()})

    async def _publish(self, frame: dict[str, Any]) -> None:
        try:
            await self._bus.publish(SUPERVISOR_STREAM, frame)
        except Exception as exc:  # the action happened; only its report is lost
            log.warning("action result not published: %s", type(exc).__name__)

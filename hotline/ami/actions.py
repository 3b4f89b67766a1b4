"""The AMI actions a supervisor can trigger, built as plain header dicts, and how to read
their replies.

Pure functions: values in, an action's headers out (or a reply in, an outcome out).
Nothing here sends; :mod:`hotline.live.actions` does. Keeping every header a request can
reach in one place makes the injection rule easy to audit: the callers pass only values
already checked against the patterns of ``hotline/api/routes/actions.py`` (no CR/LF
or control characters, no ``,`` or ``|`` where Asterisk splits arguments), and these
builders add nothing from outside.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CALLBACK_CONTEXT",
    "CHANSPY_OPTIONS",
    "Action",
    "OriginateOutcome",
    "OriginateStatus",
    "SpyMode",
    "callback_originate",
    "chanspy_target",
    "first_response",
    "originate_async",
    "originate_outcome",
    "queue_add",
    "queue_pause",
    "queue_remove",
    "spy_originate",
    "succeeded",
]

Action = dict[str, str]
"""One AMI action: header name → value, ``Action`` first."""

CALLBACK_CONTEXT: Final = "hotline-callback"
"""The dialplan context that dials the customer once the agent answers
(``dialplans/templates/extensions.conf``)."""


class SpyMode(enum.StrEnum):
    """How a supervisor joins an agent's call."""

    LISTEN = "listen"  # hears both sides; nobody hears the supervisor
    WHISPER = "whisper"  # only the agent hears the supervisor
    BARGE = "barge"  # both sides hear the supervisor


# ChanSpy options: q no beep, E end when the spied channel hangs up, w whisper, B barge.
CHANSPY_OPTIONS: Final[Mapping[SpyMode, str]] = {
    SpyMode.LISTEN: "qE",
    SpyMode.WHISPER: "qEw",
    SpyMode.BARGE: "qEB",
}


# -- queue membership ---------------------------------------------------------------------


def queue_pause(
    interface: str, *, paused: bool, queue: str | None = None, reason: str = ""
) -> Action:
    """QueuePause in every queue, or in ``queue``; the reason is sent only when pausing."""
    action = {
        "Action": "QueuePause",
        "Interface": interface,
        "Paused": "true" if paused else "false",
    }
    if queue is not None:
        action["Queue"] = queue
    if paused and reason:
        action["Reason"] = reason
    return action


def queue_add(queue: str, interface: str, *, member_name: str, penalty: int = 0) -> Action:
    """QueueAdd with ``MemberName`` = the agent id, which is how queue events name agents."""
    return {
        "Action": "QueueAdd",
        "Queue": queue,
        "Interface": interface,
        "MemberName": member_name,
        "Penalty": str(penalty),
    }


def queue_remove(queue: str, interface: str) -> Action:
    return {"Action": "QueueRemove", "Queue": queue, "Interface": interface}


# -- originates -----------------------------------------------------------------------------


def chanspy_target(interface: str, leg: str | None) -> tuple[str, str]:
    """ChanSpy's target and the extra option for it.

    ``u`` spies exactly one leg by uniqueid when the live state knows the agent's leg;
    otherwise the endpoint's channel-name prefix ``PJSIP/agent-1004-`` (the trailing dash
    keeps ``agent-10045`` out) picks the agent's only call, since queues run with
    ``ringinuse = no``.
    """
    if leg:
        return leg, "u"
    return f"{interface}-", ""


def spy_originate(
    phone: str, *, mode: SpyMode, target: tuple[str, str], agent_id: str, linkedid: str
) -> Action:
    """Ring the supervisor's ``phone`` into ChanSpy on ``target`` (a
    :func:`chanspy_target`), the agent's leg of call ``linkedid``."""
    channel, option = target
    return {
        "Action": "Originate",
        "Channel": phone,
        "Application": "ChanSpy",
        "Data": f"{channel},{CHANSPY_OPTIONS[mode]}{option}",
        "CallerID": f'"{mode}" <{agent_id}>',
        "Variable": f"HOTLINE_SPY_OF={linkedid}",
    }


def callback_originate(
    interface: str, *, number: str, linkedid: str, agent_id: str, queue: str
) -> Action:
    """Ring the agent's ``interface``; when answered, :data:`CALLBACK_CONTEXT` dials
    ``number`` (the caller who abandoned call ``linkedid`` in ``queue``)."""
    variables = {
        "HOTLINE_CALLBACK_NUMBER": number,
        "HOTLINE_CALLBACK_OF": linkedid,
        "HOTLINE_AGENT": agent_id,
        "HOTLINE_QUEUE": queue,
    }
    return {
        "Action": "Originate",
        "Channel": interface,
        "Context": CALLBACK_CONTEXT,
        "Exten": "s",
        "Priority": "1",
        "CallerID": f'"回拨" <{number}>',
        "Variable": ",".join(f"{k}={v}" for k, v in variables.items()),
    }


def originate_async(action: Mapping[str, str], *, channel_id: str, ring_seconds: int) -> Action:
    """``action`` as sent: asynchronous, with our own ``ChannelId`` (so the outcome can be
    matched to the request) and how long the first phone rings."""
    return {
        **action,
        "Async": "true",
        "ChannelId": channel_id,
        "Timeout": str(ring_seconds * 1000),
    }


# -- replies --------------------------------------------------------------------------------


def first_response(reply: Any) -> Mapping[str, Any] | None:
    """The ``Response`` message of a reply, whether the bridge gave one message or a list."""
    first = reply[0] if isinstance(reply, list) and reply else reply
    return first if isinstance(first, Mapping) else None


def succeeded(message: Mapping[str, Any] | None) -> bool:
    return message is not None and str(message.get("Response", "")).lower() == "success"


class OriginateStatus(enum.StrEnum):
    """What an Originate came to, as the ``action`` frame on ``/ws/supervisor`` says."""

    RINGING = "ringing"  # not settled yet; the outcome follows on the feed
    ANSWERED = "answered"  # the first phone answered
    QUEUED = "queued"  # accepted, but the reply carried no OriginateResponse
    REFUSED = "refused"  # Asterisk refused the action itself
    FAILED = "failed"  # the first phone did not answer (see ``reason``)
    TIMEOUT = "timeout"  # no answer from Asterisk in time
    AMI_UNAVAILABLE = "ami-unavailable"  # no AMI link to send on
    ERROR = "error"  # anything else went wrong while sending


@dataclass(frozen=True, slots=True)
class OriginateOutcome:
    ok: bool
    status: OriginateStatus
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "status": str(self.status)}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def originate_outcome(reply: Any) -> OriginateOutcome:
    """Read an Originate's reply: ``[Response]`` when refused, else
    ``[Response, OriginateResponse]``."""
    messages = reply if isinstance(reply, list) else [reply]
    first = first_response(messages)
    last = messages[-1] if messages else None
    if not succeeded(first):
        reason = str(first.get("Message", "")) if first is not None else ""
        return OriginateOutcome(False, OriginateStatus.REFUSED, reason)
    if last is first or not isinstance(last, Mapping):
        return OriginateOutcome(True, OriginateStatus.QUEUED)
    if str(last.get("Event", "")) != "OriginateResponse":
        return OriginateOutcome(True, OriginateStatus.QUEUED)
    if succeeded(last):
        return OriginateOutcome(True, OriginateStatus.ANSWERED)
    # OriginateResponse Reason: 1 hung up, 3 rang out, 5 busy, 8 congestion, 0 no such
    return OriginateOutcome(False, OriginateStatus.FAILED, str(last.get("Reason", "")))

"""Queue membership in Asterisk, made to match the agent directory over AMI.

:mod:`hotline.routing.skills` plans, without I/O, which dialect queues an agent belongs in
and at what penalty; :mod:`hotline.agents.directory` stores the agents. This module is the
AMI side:

* :func:`sync_membership` asks Asterisk what the queues hold (``QueueStatus``), diffs it
  against the skills and sends QueueAdd/QueueRemove/QueuePenalty one by one. One refused
  action is counted and the rest still go out: a half-applied membership is better than
  none for callers waiting now, and the next sync retries the rest;
* :func:`membership_login_hook` re-runs the sync after every AMI login. Dynamic members
  die with the Asterisk process, so after a restart the queues are empty until this runs.

Logging names agents, queues and interfaces (ids), never agents' display names.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from hotline.agents.directory import load_directory
from hotline.db.models import Agent
from hotline.routing.skills import AgentSkills, Member, current_members, desired_members, plan

__all__ = [
    "ACTION_TIMEOUT",
    "QUEUE_STATUS_TIMEOUT",
    "MembershipHook",
    "MembershipSyncError",
    "SyncReport",
    "membership_login_hook",
    "sync_membership",
]

log = logging.getLogger(__name__)

QUEUE_STATUS_TIMEOUT = 10.0
ACTION_TIMEOUT = 5.0


class MembershipSyncError(RuntimeError):
    """Asterisk's current membership could not be read, so nothing was changed.

    Planning against a guessed membership could remove members that are really there or
    re-add ones that are, so without a ``QueueStatus`` answer the sync does nothing.
    """


class _Bridge(Protocol):
    """What the sync needs of :class:`~hotline.ami.bridge.AMIBridge` (tests may fake it)."""

    @property
    def connected(self) -> bool: ...

    async def send_action(
        self, action: Mapping[str, Any], as_list: bool | None = None, *, timeout: float = 10.0
    ) -> Any: ...


@dataclass(slots=True)
class SyncReport:
    """What one sync found and did; ``failures`` say which actions Asterisk refused."""

    queues: list[str]
    desired: int = 0
    current: int = 0
    static: int = 0
    planned: int = 0
    applied: int = 0
    failed: int = 0
    not_sent: int = 0  # the link dropped mid-sync; the next login's sync does them
    left_alone: list[str] = field(default_factory=list)  # agents with invalid stored skills
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.not_sent == 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _headers(item: Any) -> Mapping[str, str] | None:
    """A QueueStatus list item's headers: our framer's ``Frame`` when present, else the
    panoramisk Message itself (a dict of headers)."""
    frame = getattr(item, "frame", None)
    if frame is not None:
        headers: Mapping[str, str] = frame.headers
        return headers
    return item if isinstance(item, Mapping) else None


def _response_ok(response: Any) -> tuple[bool, str]:
    first = response[0] if isinstance(response, list) and response else response
    headers = _headers(first) or {}
    status = str(headers.get("Response", ""))
    return status == "Success", str(headers.get("Message", "")) or status or "no response"


async def _read_members(bridge: _Bridge, timeout: float) -> tuple[list[Member], list[Member]]:
    try:
        result = await bridge.send_action({"Action": "QueueStatus"}, as_list=True, timeout=timeout)
    except Exception as exc:
        raise MembershipSyncError(f"QueueStatus failed: {type(exc).__name__}") from exc
    items = result if isinstance(result, list) else [result]
    ok, message = _response_ok(items)
    if not ok:
        raise MembershipSyncError(f"QueueStatus refused: {message}")
    events = [
        headers
        for item in items[1:]
        if (headers := _headers(item)) is not None and headers.get("Event") == "QueueMember"
    ]
    return current_members(events)


_locks: weakref.WeakKeyDictionary[object, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock_for(bridge: object) -> asyncio.Lock:
    """One sync at a time per bridge: two overlapping syncs (login hook and an API call)
    would plan against the same snapshot and send every QueueAdd twice."""
    lock = _locks.get(bridge)
    if lock is None:
        lock = _locks[bridge] = asyncio.Lock()
    return lock


async def sync_membership(
    bridge: _Bridge,
    agents: Iterable[AgentSkills],
    queues: Collection[str],
    *,
    leave_alone: Collection[str] = (),
    timeout: float = ACTION_TIMEOUT,
    status_timeout: float = QUEUE_STATUS_TIMEOUT,
) -> SyncReport:
    """Make the dialect ``queues`` in Asterisk hold exactly the members ``agents`` call for.

    Only ``queues`` are touched (others may be run by hand); static members (queues.conf)
    and interfaces in ``leave_alone`` are never changed. Each action is sent and checked on
    its own; a refusal or timeout is counted in the report and the sync goes on. If the
    link drops mid-way the rest is counted as ``not_sent`` (the next login syncs again).

    Raises :class:`MembershipSyncError` only when the current membership cannot be read;
    an unknown skill in ``agents`` raises ``ValueError`` before anything is sent.
    """
    queue_list = sorted(set(queues))
    desired = desired_members(agents, queue_list)
    async with _lock_for(bridge):
        dynamic, static = await _read_members(bridge, status_timeout)
        keep = set(leave_alone)
        actions = [
            a
            for a in plan(desired, dynamic, managed_queues=queue_list, static=static)
            if a["Interface"] not in keep
        ]
        report = SyncReport(
            queues=queue_list,
            desired=len(desired),
            current=len(dynamic),
            static=len(static),
            planned=len(actions),
        )
        for index, action in enumerate(actions):
            if not bridge.connected:
                report.not_sent = len(actions) - index
                log.warning("AMI link lost during membership sync; %d not sent", report.not_sent)
                break
            try:
                response = await bridge.send_action(action, timeout=timeout)
            except Exception as exc:
                ok, message = False, type(exc).__name__
            else:
                ok, message = _response_ok(response)
            if ok:
                report.applied += 1
                log.info(
                    "%s %s %s%s",
                    action["Action"],
                    action["Queue"],
                    action["Interface"],
                    f" penalty {action['Penalty']}" if "Penalty" in action else "",
                )
                continue
            report.failed += 1
            report.failures.append(
                {
                    "action": action["Action"],
                    "queue": action["Queue"],
                    "interface": action["Interface"],
                    "message": message[:200],
                }
            )
            log.warning(
                "%s %s %s failed: %s",
                action["Action"],
                action["Queue"],
                action["Interface"],
                message[:200],
            )
    log.info(
        "queue membership sync: %d desired, %d current, %d applied, %d failed",
        report.desired,
        report.current,
        report.applied,
        report.failed,
    )
    return report


class MembershipHook:
    """``await hook(bridge)`` loads the agents and syncs; install with
    ``bridge.add_login_hook(hook)`` so membership is back right after an Asterisk restart.

    A database error skips the sync instead of syncing an empty directory, which would
    remove every agent from every queue. The last report is kept for health pages.
    """

    def __init__(
        self, sessions: sessionmaker[Session] | Callable[[], Session], queues: Collection[str]
    ) -> None:
        self.sessions = sessions
        self.queues = tuple(queues)
        self.last_report: SyncReport | None = None
        self.last_error: str | None = None
        self.runs = 0

    def __repr__(self) -> str:
        return f"MembershipHook(queues={self.queues!r})"

    def _load(self) -> tuple[list[AgentSkills], list[Agent]]:
        with self.sessions() as session:
            return load_directory(session)

    async def __call__(self, bridge: _Bridge) -> None:
        self.runs += 1
        try:
            agents, bad = await asyncio.to_thread(self._load)
        except SQLAlchemyError as exc:
            # The class name only: the error text may carry SQL parameters.
            self.last_error = f"database: {type(exc).__name__}"
            log.warning("membership sync skipped: cannot read agents (%s)", type(exc).__name__)
            return
        try:
            report = await sync_membership(
                bridge, agents, self.queues, leave_alone={row.interface for row in bad}
            )
        except MembershipSyncError as exc:
            self.last_error = str(exc)
            log.warning("membership sync skipped: %s", exc)
            return
        report.left_alone = [row.id for row in bad]
        self.last_report, self.last_error = report, None


def membership_login_hook(
    sessions: sessionmaker[Session] | Callable[[], Session], queues: Collection[str]
) -> MembershipHook:
    """A login hook (``bridge.add_login_hook(...)``) that re-applies queue membership.

    ``sessions`` opens a database session (a ``sessionmaker``); ``queues`` are the dialect
    queues Hotline manages (``settings.queue_names``). Returns a :class:`MembershipHook`.
    """
    return MembershipHook(sessions, queues)

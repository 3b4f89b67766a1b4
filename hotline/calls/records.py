"""What the call tracker hands to the call-log writer.

A :class:`CallRecord` is a plain value: the tracker (sans-I/O) builds it from AMI
events and the writer upserts it keyed by ``linkedid``. Keeping it free of SQLAlchemy
lets the tracker be tested by replaying recorded streams with no database at all.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field


class SettledBy(enum.StrEnum):
    """Who wrote a row's final outcome: docs/reliability.md."""

    LIVE = "live"  # the tracker saw the call's last leg hang up on AMI
    RECONCILED = "reconciled"  # settled from Asterisk's record (CEL, queue_log)


# end_reason of a call Asterisk itself cut: docs/reliability.md.
ASTERISK_SHUTDOWN = "asterisk_shutdown"  # a shutdown hung up every channel
ASTERISK_CRASH = "asterisk_crash"  # Asterisk started again after the call's last sign
NO_RECORD = "no_record"  # the record lost the call's end; settled after the grace


class Outcome(enum.StrEnum):
    """How a call ended; docs/call-log.md gives the rule for each."""

    IN_PROGRESS = "in_progress"  # not ended yet: a provisional row
    ANSWERED = "answered"  # an agent connected
    ABANDONED = "abandoned"  # the caller hung up while queued
    SHORT_ABANDONED = "short_abandoned"  # ... within the short-abandon threshold
    TIMEOUT = "timeout"  # the queue gave up (QUEUESTATUS=TIMEOUT): not an abandon
    OVERFLOW = "overflow"  # left for another queue or could not join (FULL, JOINEMPTY, ...)
    IVR_ONLY = "ivr_only"  # never reached a queue
    FAILED = "failed"  # never set up: the caller leg was not answered by Asterisk


@dataclass(slots=True)
class CallRecord:
    """One row of the call log, keyed by the Asterisk Linkedid.

    Times are epoch seconds (float) as Asterisk stamped them; ``wait_seconds`` is from
    the first queue join to answer (or to leaving the queue when unanswered) and
    ``talk_seconds`` from answer to the end of the agent's part of the call.
    """

    linkedid: str
    outcome: Outcome = Outcome.IN_PROGRESS
    caller_uniqueid: str = ""
    caller_channel: str = ""
    caller_number: str = ""  # as Asterisk gave it
    caller_e164: str | None = None  # None when the number does not parse
    caller_name: str = ""
    customer_id: int | None = None  # from CUSTOMER_ID on the channel, if the IVR set one
    arrived_at: float | None = None
    queued_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    queue: str | None = None  # the last queue the caller was in
    queues: list[str] = field(default_factory=list)  # every queue, in order
    agent: str | None = None  # MemberName of the agent who answered
    agent_interface: str | None = None
    queue_status: str | None = None  # QUEUESTATUS from the dialplan's QueueResult event
    hangup_cause: int | None = None
    ivr_path: list[str] = field(default_factory=list)
    dialect: str | None = None  # the routing decision, from the IVR's CustomerIdentified
    route_source: str | None = None  # customer | ivr | region | default
    priority: int | None = None
    route_reasons: list[str] = field(default_factory=list)
    candidates: int | None = None  # customers sharing the caller's number
    survey_score: int | None = None  # 1 非常满意, 2 满意, 3 不满意
    # Set on the final record of a call that was bridged into an older one (transfer,
    # pickup): Asterisk gave both the older Linkedid, and that call's row carries on.
    merged_into: str | None = None
    # Final records only: who settled the row, and for a call the system cut (Asterisk
    # shut down or crashed, no record at all) why: "asterisk_shutdown", "asterisk_crash"...
    settled_by: SettledBy | None = None
    end_reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["outcome"] = str(self.outcome)
        data["settled_by"] = None if self.settled_by is None else str(self.settled_by)
        return data

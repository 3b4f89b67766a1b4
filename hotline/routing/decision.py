"""The routing decision: which dialect queue a caller joins, at what priority, and why.

Sans-I/O: the caller's number (already in E.164: it is normalised once, where the call
enters, with the configured region), what we know of the customer and the IVR choice go in;
a :class:`RouteDecision` comes out. The FastAGI route turns it into channel variables
(``__DIALECT``, ``QUEUE_PRIO``, the queue name) and the ``CustomerIdentified`` event carries
its reasons to the call log, so a supervisor can later read *why* a caller landed where
they did.

Precedence: the customer's recorded preference (the customer said so), else the caller's
IVR choice (the caller said so now), else the region of the number (a guess), else
Mandarin. Which dialects have a queue is configuration: a dialect without one walks its
fallback chain (``teochew → minnan``, ``southwestern → sichuanese``; data/regions.toml) and
ends at Mandarin, and the reasons say so.

:func:`decide` never raises: the caller is on the line, so a bug or bad data yields the
default queue with a reason rather than a dead call.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hotline.phones import to_e164
from hotline.routing.regions import MANDARIN, Location, RegionTable, default_table
from hotline.types import E164

__all__ = [
    "DEFAULT_ACCOUNT_MANAGER_SECONDS",
    "DEFAULT_QUEUES",
    "DEFAULT_TIER_PRIORITY",
    "AccountManagerRing",
    "CustomerFacts",
    "RouteDecision",
    "Source",
    "caller_e164",
    "choose_queue",
    "decide",
    "ivr_menu",
    "tier_priority",
]

log = logging.getLogger(__name__)

# Same order as dialplans.config.DEFAULT_DIALECTS, so the default IVR menu says "粤语请按2".
DEFAULT_QUEUES: tuple[str, ...] = ("mandarin", "cantonese", "minnan", "wu", "sichuanese")

DEFAULT_ACCOUNT_MANAGER_SECONDS = 10
"""Long enough for an agent at the desk to pick up (two or three rings), short enough that a
caller whose manager is away barely notices before the queue takes over."""

DEFAULT_TIER_PRIORITY: Mapping[str, int] = {
    "standard": 0,
    "vip": 10,
    "vip1": 10,
    "vip2": 20,
    "vip3": 30,
}
"""Customer tier → ``QUEUE_PRIO``. Asterisk's app_queue places a caller before every waiting
caller with a lower priority (equal priorities keep arrival order); steps of 10 leave room
for tiers in between. We read ``vipN`` as "higher N, more valuable" (membership levels)."""


class Source(enum.StrEnum):
    """Which signal chose the dialect."""

    CUSTOMER = "customer"
    IVR = "ivr"
    REGION = "region"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerFacts:
    """What the national record knows about the caller, when one customer matched."""

    customer_id: int | None = None
    preferred_dialect: str | None = None
    tier: str | None = None
    account_manager: str | None = None  # agent id


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountManagerRing:
    """Ring this agent alone for ``seconds`` before the caller joins the queue."""

    agent_id: str
    seconds: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteDecision:
    """Where the caller goes and why. ``dialect`` is what we believe the caller speaks;
    ``queue`` is where they go, which differs when that dialect has no queue."""

    queue: str
    dialect: str
    priority: int
    source: Source
    reasons: list[str] = field(default_factory=list)
    account_manager: AccountManagerRing | None = None
    caller_e164: E164 | None = None
    region: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, stable keys: the body of the routing explanation (API and CLI)."""
        return {
            "queue": self.queue,
            "dialect": self.dialect,
            "priority": self.priority,
            "source": str(self.source),
            "account_manager": (
                {"agent_id": self.account_manager.agent_id, "seconds": self.account_manager.seconds}
                if self.account_manager
                else None
            ),
            "reasons": list(self.reasons),
            "caller_e164": self.caller_e164,
            "region": self.region,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouteDecision:
        manager = data.get("account_manager")
        return cls(
            queue=str(data["queue"]),
            dialect=str(data["dialect"]),
            priority=int(data["priority"]),
            source=Source(data["source"]),
            reasons=[str(r) for r in data.get("reasons", ())],
            account_manager=(
                AccountManagerRing(
                    agent_id=str(manager["agent_id"]), seconds=int(manager["seconds"])
                )
                if manager
                else None
            ),
            caller_e164=E164(data["caller_e164"]) if data.get("caller_e164") else None,
            region=data.get("region"),
        )


def caller_e164(number: str | None, region: str) -> E164 | None:
    """``number`` as the call log and the national record key it, read with the configured
    ``region`` (settings ``default_region``); ``None`` when it is not a phone number."""
    e164 = to_e164(number, region)
    return E164(e164) if e164 else None


def ivr_menu(queues: Sequence[str]) -> dict[str, str]:
    """Digit → dialect for the dialect menu: ``1`` for the first configured queue, and so on.

    The IVR flow must announce the menu from this same function so the prompt and the
    routing never disagree.
    """
    return {str(i): queue for i, queue in enumerate(queues[:9], start=1)}


def tier_priority(tier: str | None, table: Mapping[str, int] | None = None) -> tuple[int, str]:
    """``QUEUE_PRIO`` for a tier, with the reason."""
    table = DEFAULT_TIER_PRIORITY if table is None else table
    if not tier:
        return 0, "no customer tier: priority 0"
    key = tier.strip().lower()
    if key in table:
        return int(table[key]), f"customer tier {key}: priority {int(table[key])}"
    return 0, f"unknown customer tier {tier!r}: priority 0"


def choose_queue(
    dialect: str,
    queues: Sequence[str],
    *,
    table: RegionTable,
    fallbacks: Mapping[str, Sequence[str]] | None = None,
    default_queue: str = MANDARIN,
) -> tuple[str, list[str]]:
    """The first queue along ``dialect``'s fallback chain that exists, with the reasons."""
    chain = table.fallback_chain(dialect, fallbacks)
    if default_queue not in chain:
        chain = (*chain, default_queue)
    reasons: list[str] = []
    for step in chain:
        if step in queues:
            if step != dialect:
                reasons.append(
                    f"no {dialect} queue is configured; falling back along "
                    f"{' → '.join(chain[: chain.index(step) + 1])} to queue {step}"
                )
            return step, reasons
    if queues:
        reasons.append(
            f"none of {', '.join(chain)} has a queue; using the first configured queue {queues[0]}"
        )
        return queues[0], reasons
    reasons.append(f"no queues are configured; using {default_queue}")
    return default_queue, reasons


def _dialect_from(
    text: str, what: str, table: RegionTable, queues: Sequence[str]
) -> tuple[str | None, str]:
    dialect = table.dialect_id(text)
    if dialect is None and text.strip() in queues:
        dialect = text.strip()  # a site-specific queue named after a dialect we do not list
    if dialect is None:
        return None, f"{what} {text!r} is not a dialect we know; ignored"
    return dialect, f"{what}: {dialect}"


def decide(
    caller_e164: E164 | None,
    *,
    customer: CustomerFacts | None = None,
    ivr_choice: str | None = None,
    queues: Sequence[str] = DEFAULT_QUEUES,
    default_queue: str = MANDARIN,
    account_manager_seconds: int = DEFAULT_ACCOUNT_MANAGER_SECONDS,
    tier_priorities: Mapping[str, int] | None = None,
    menu: Mapping[str, str] | None = None,
    fallbacks: Mapping[str, Sequence[str]] | None = None,
    table: RegionTable | None = None,
) -> RouteDecision:
    """Decide the queue for a call. See the module docstring for the order; never raises.

    ``caller_e164`` is ``None`` for a withheld or unparseable number: the region then
    says nothing and the reasons say so.

    ``ivr_choice`` is either the digits the caller pressed (looked up in ``menu``, by default
    :func:`ivr_menu` of ``queues``) or a dialect name the IVR already resolved.
    """
    try:
        return _decide(
            caller_e164,
            customer=customer,
            ivr_choice=ivr_choice,
            queues=list(queues),
            default_queue=default_queue,
            account_manager_seconds=account_manager_seconds,
            tier_priorities=tier_priorities,
            menu=menu,
            fallbacks=fallbacks,
            table=table or default_table(),
        )
    except Exception as exc:  # the call must go somewhere even if routing data is broken
        log.exception("routing decision failed; using the default queue")
        return RouteDecision(
            queue=default_queue,
            dialect=MANDARIN,
            priority=0,
            source=Source.DEFAULT,
            reasons=[f"routing failed ({type(exc).__name__}); default queue {default_queue}"],
        )


def _decide(
    e164: E164 | None,
    *,
    customer: CustomerFacts | None,
    ivr_choice: str | None,
    queues: list[str],
    default_queue: str,
    account_manager_seconds: int,
    tier_priorities: Mapping[str, int] | None,
    menu: Mapping[str, str] | None,
    fallbacks: Mapping[str, Sequence[str]] | None,
    table: RegionTable,
) -> RouteDecision:
    reasons: list[str] = []
    location: Location = table.locate(e164)
    dialect: str | None = None
    source = Source.DEFAULT

    # 1. the customer's recorded preference
    if customer is not None and customer.preferred_dialect:
        dialect, reason = _dialect_from(
            customer.preferred_dialect, "customer's preferred dialect", table, queues
        )
        reasons.append(reason)
        if dialect is not None:
            source = Source.CUSTOMER

    # 2. the IVR choice
    if ivr_choice is not None and ivr_choice.strip():
        choice = ivr_choice.strip()
        if dialect is not None:
            reasons.append(f"IVR choice {choice!r} not used: the customer's preference wins")
        elif choice.isdigit():
            entries = ivr_menu(queues) if menu is None else menu
            if choice in entries:
                dialect, reason = _dialect_from(
                    entries[choice], f"IVR digit {choice} chose", table, queues
                )
                reasons.append(reason)
            else:
                reasons.append(f"IVR digits {choice!r} match no menu entry; ignored")
        else:
            dialect, reason = _dialect_from(choice, "IVR choice", table, queues)
            reasons.append(reason)
        if dialect is not None and source is Source.DEFAULT:
            source = Source.IVR

    # 3. the region of the number
    if dialect is None:
        if location.dialect is not None:
            dialect = location.dialect
            source = Source.REGION
            reasons.append(f"{location.detail}; local dialect {dialect}")
        else:
            reasons.append(f"region unknown ({location.detail})")
    else:
        reasons.append(f"number region: {location.detail} (not used)")

    # 4. Mandarin
    if dialect is None:
        dialect = MANDARIN
        reasons.append("no dialect signal: mandarin")

    queue, queue_reasons = choose_queue(
        dialect, queues, table=table, fallbacks=fallbacks, default_queue=default_queue
    )
    reasons.extend(queue_reasons)
    reasons.append(f"queue {queue}")

    priority, reason = tier_priority(customer.tier if customer else None, tier_priorities)
    reasons.append(reason)

    manager: AccountManagerRing | None = None
    if customer is not None and customer.account_manager:
        if account_manager_seconds > 0:
            manager = AccountManagerRing(
                agent_id=customer.account_manager, seconds=int(account_manager_seconds)
            )
            reasons.append(
                f"account manager {customer.account_manager} rings first for "
                f"{manager.seconds} s, then queue {queue}"
            )
        else:
            reasons.append("account-manager ringing is disabled (0 s); straight to the queue")

    return RouteDecision(
        queue=queue,
        dialect=dialect,
        priority=priority,
        source=source,
        reasons=reasons,
        account_manager=manager,
        caller_e164=e164,
        region=location.region.label if location.region else location.province,
    )

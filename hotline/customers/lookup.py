"""Who owns a phone number, and the one rule that links a caller to a customer.

A number may belong to several customers: a family's landline, a shop's counter
(``CustomerPhone.e164`` is deliberately not unique). Such a number says nothing reliable
about *this* caller's name, dialect or tier, so everywhere a call meets the national
record (the IVR's identify, the routing explanation, the call-log writer) the rule is the
same: exactly one owner → that customer; no owner or several → nobody is assumed, and the
several are shown as candidates for the agent to choose from. :func:`sole_owner` is that
rule; the functions below only fetch the owners, and :func:`lookup_customer` turns a sole
owner into the facts routing uses.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from hotline.db.models import Customer, CustomerPhone
from hotline.routing.decision import CustomerFacts
from hotline.types import E164

__all__ = ["MAX_OWNERS", "lookup_customer", "owner_ids", "owners_of", "sole_owner"]

MAX_OWNERS = 20
"""Owners read for one number on a caller's path: a family or a shop's staff fit on the pop
as candidates, and a number typed into thousands of records (a switchboard) cannot make
identification load them all."""

_T = TypeVar("_T")


def sole_owner(owners: Collection[_T]) -> _T | None:
    """The customer a number identifies: its only owner, or ``None`` when shared or unknown."""
    return next(iter(owners)) if len(owners) == 1 else None


def owners_of(session: Session, e164: str, *, limit: int = MAX_OWNERS) -> list[Customer]:
    """The customers holding ``e164`` (E.164), lowest id first, at most ``limit`` of them.

    ``limit=2`` is enough to apply :func:`sole_owner`; a customer appears once however
    often the number is written on the record (one row per customer and number).
    """
    query = (
        select(Customer)
        .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
        .where(CustomerPhone.e164 == e164)
        .order_by(Customer.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def owner_ids(
    connection: Connection | Session, numbers: Iterable[str]
) -> dict[str, frozenset[int]]:
    """The owners' ids of many E.164 numbers in one query; an unowned number is absent.

    For batches (the call-log writer links a batch of calls at once), where loading whole
    customers per number would cost a query each.
    """
    wanted = set(numbers)
    if not wanted:
        return {}
    owners: dict[str, set[int]] = {}
    rows = connection.execute(
        select(CustomerPhone.e164, CustomerPhone.customer_id)
        .where(CustomerPhone.e164.in_(wanted))
        .distinct()
    )
    for e164, customer_id in rows:
        owners.setdefault(e164, set()).add(customer_id)
    return {e164: frozenset(ids) for e164, ids in owners.items()}


def lookup_customer(session: Session, e164: E164 | None) -> tuple[CustomerFacts | None, str]:
    """The routing facts of the number's sole owner, and a sentence saying how they were found.

    For the routing explanation (API and CLI), which shows the sentence as its first reason.
    """
    if e164 is None:
        return None, "no customer look-up: the number does not parse"
    owners = owners_of(session, e164, limit=2)
    owner = sole_owner(owners)
    if owner is None:
        if owners:
            return None, "several customers share this number; none is assumed"
        return None, "no customer has this number"
    facts = CustomerFacts(
        customer_id=owner.id,
        tier=owner.tier,
        preferred_dialect=owner.preferred_dialect,
        account_manager=owner.account_manager,
    )
    return facts, f"customer {owner.id} has this number"

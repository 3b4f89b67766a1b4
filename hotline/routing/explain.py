"""One explanation of a routing decision, shared by the API and the CLI.

``GET /api/routing/explain?caller=&digits=`` and ``hotline route explain NUMBER`` must say
the same thing, so both call :func:`explain`; they differ only in how they reach the
database for the customer facts (:func:`lookup_customer` takes whatever session they have).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.db.models import Customer, CustomerPhone
from hotline.phones import to_e164
from hotline.routing.decision import (
    DEFAULT_ACCOUNT_MANAGER_SECONDS,
    DEFAULT_QUEUES,
    CustomerFacts,
    decide,
    ivr_menu,
)
from hotline.routing.regions import MANDARIN, RegionTable, default_table

__all__ = ["explain", "lookup_customer"]


def lookup_customer(
    session: Session, caller: str | None, default_region: str = "CN"
) -> tuple[CustomerFacts | None, str]:
    """The customer facts for a caller number, and a sentence saying how they were found.

    Only a single match counts: a family or shop line shared by several customers says
    nothing reliable about *this* caller's dialect or tier (DESIGN §1 step 2).
    """
    e164 = to_e164(caller, default_region) if caller else None
    if e164 is None:
        return None, "no customer look-up: the number does not parse"
    columns = [Customer.id, Customer.tier, Customer.preferred_dialect]
    manager_column = getattr(Customer, "account_manager", None)  # added with the national record
    if manager_column is not None:
        columns.append(manager_column)
    rows = session.execute(
        select(*columns)
        .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
        .where(CustomerPhone.e164 == e164)
        .distinct()
        .limit(2)
    ).all()
    if not rows:
        return None, "no customer has this number"
    if len(rows) > 1:
        return None, "several customers share this number; none is assumed"
    row = rows[0]
    facts = CustomerFacts(
        customer_id=row.id,
        tier=row.tier,
        preferred_dialect=row.preferred_dialect,
        account_manager=getattr(row, "account_manager", None),
    )
    return facts, f"customer {row.id} has this number"


def explain(
    number: str,
    digits: str | None = None,
    *,
    customer: CustomerFacts | None = None,
    customer_note: str | None = None,
    queues: Sequence[str] = DEFAULT_QUEUES,
    default_queue: str = MANDARIN,
    account_manager_seconds: int = DEFAULT_ACCOUNT_MANAGER_SECONDS,
    fallbacks: Mapping[str, Sequence[str]] | None = None,
    default_region: str = "CN",
    table: RegionTable | None = None,
) -> dict[str, Any]:
    """The decision for ``number`` (and IVR ``digits``) with everything that went into it.

    Top-level keys are the decision's own (``queue``, ``dialect``, ``priority``,
    ``source``, ``reasons``, ``account_manager``, ``caller_e164``, ``region``) plus
    ``caller`` (as given), ``digits``, ``location`` (how the number was located),
    ``customer`` (the facts used, or ``None``), ``queues`` and ``menu``.
    """
    table = table or default_table()
    decision = decide(
        number,
        customer=customer,
        ivr_choice=digits,
        queues=queues,
        default_queue=default_queue,
        account_manager_seconds=account_manager_seconds,
        fallbacks=fallbacks,
        table=table,
        default_region=default_region,
    )
    location = table.locate(to_e164(number, default_region) if number else None)
    result = decision.to_dict()
    if customer_note:
        result["reasons"].insert(0, customer_note)
    result.update(
        {
            "caller": number,
            "digits": digits,
            "location": location.as_dict(),
            "customer": (
                {
                    "customer_id": customer.customer_id,
                    "tier": customer.tier,
                    "preferred_dialect": customer.preferred_dialect,
                    "account_manager": customer.account_manager,
                }
                if customer
                else None
            ),
            "queues": list(queues),
            "menu": ivr_menu(queues),
        }
    )
    return result

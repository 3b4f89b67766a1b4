"""One explanation of a routing decision, shared by the API and the CLI.

``GET /api/routing/explain?caller=&digits=`` and ``hotline route explain NUMBER`` must say
the same thing, so both call :func:`explain` with the configured queues. They normalise the
number once, with the configured region (:func:`hotline.routing.decision.caller_e164`), and
hand that E.164 value both to the customer look-up
(:func:`hotline.customers.lookup.lookup_customer`, with whatever database session they have)
and to :func:`explain`. Sans-I/O: the customer facts come in as values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hotline.routing.decision import (
    DEFAULT_ACCOUNT_MANAGER_SECONDS,
    DEFAULT_QUEUES,
    CustomerFacts,
    decide,
    ivr_menu,
)
from hotline.routing.regions import MANDARIN, RegionTable, default_table
from hotline.types import E164

__all__ = ["explain"]


def explain(
    number: str,
    e164: E164 | None,
    digits: str | None = None,
    *,
    customer: CustomerFacts | None = None,
    customer_note: str | None = None,
    queues: Sequence[str] = DEFAULT_QUEUES,
    default_queue: str = MANDARIN,
    account_manager_seconds: int = DEFAULT_ACCOUNT_MANAGER_SECONDS,
    fallbacks: Mapping[str, Sequence[str]] | None = None,
    table: RegionTable | None = None,
) -> dict[str, Any]:
    """The decision for ``number`` (``e164`` once normalised: :func:`.decision.caller_e164`)
    and IVR ``digits``, with everything that went into it.

    Top-level keys are the decision's own (``queue``, ``dialect``, ``priority``,
    ``source``, ``reasons``, ``account_manager``, ``caller_e164``, ``region``) plus
    ``caller`` (as given), ``digits``, ``location`` (how the number was located),
    ``customer`` (the facts used, or ``None``), ``queues`` and ``menu``.
    """
    table = table or default_table()
    decision = decide(
        e164,
        customer=customer,
        ivr_choice=digits,
        queues=queues,
        default_queue=default_queue,
        account_manager_seconds=account_manager_seconds,
        fallbacks=fallbacks,
        table=table,
    )
    location = table.locate(e164)
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

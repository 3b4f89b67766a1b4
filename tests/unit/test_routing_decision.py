"""Routing decision: precedence, fallbacks, VIP priority, account manager, never raising."""

from __future__ import annotations

import json

import pytest

from hotline.routing.decision import (
    DEFAULT_QUEUES,
    CustomerFacts,
    RouteDecision,
    Source,
    caller_e164,
    decide,
    ivr_menu,
)
from hotline.types import E164


def cn(number: str | None) -> E164 | None:
    """The number as the call path hands it to decide: normalised once, region CN."""
    return caller_e164(number, "CN")


GUANGZHOU = cn("020-87654321")
SHANTOU = cn("0754-88123456")
BEIJING_MOBILE = cn("13800138000")


def test_default_queues_match_the_rendered_dialplan() -> None:
    from dialplans.config import DEFAULT_DIALECTS

    assert DEFAULT_QUEUES == DEFAULT_DIALECTS


def test_default_menu_puts_cantonese_on_2() -> None:
    assert ivr_menu(DEFAULT_QUEUES)["2"] == "cantonese"
    assert list(ivr_menu([f"q{i}" for i in range(12)])) == [str(i) for i in range(1, 10)]


# -- precedence -----------------------------------------------------------------------------


def test_region_decides_when_nothing_else_is_known() -> None:
    decision = decide(GUANGZHOU)
    assert (decision.queue, decision.dialect, decision.source) == (
        "cantonese",
        "cantonese",
        Source.REGION,
    )
    assert decision.region == "广东省广州市"
    assert any("020" in r for r in decision.reasons)


def test_ivr_digit_overrides_region() -> None:
    decision = decide(BEIJING_MOBILE, ivr_choice="2")
    assert (decision.queue, decision.source) == ("cantonese", Source.IVR)
    assert any("IVR digit 2" in r for r in decision.reasons)


def test_ivr_dialect_name_is_accepted() -> None:
    assert decide(BEIJING_MOBILE, ivr_choice="粤语").queue == "cantonese"


def test_customer_preference_overrides_ivr_and_region() -> None:
    customer = CustomerFacts(customer_id=7, preferred_dialect="wu")
    decision = decide(GUANGZHOU, customer=customer, ivr_choice="2")
    assert (decision.queue, decision.dialect, decision.source) == ("wu", "wu", Source.CUSTOMER)
    assert any("preference wins" in r for r in decision.reasons)


def test_unknown_preference_is_ignored_with_a_reason() -> None:
    decision = decide(GUANGZHOU, customer=CustomerFacts(preferred_dialect="klingon"))
    assert (decision.queue, decision.source) == ("cantonese", Source.REGION)
    assert any("klingon" in r and "ignored" in r for r in decision.reasons)


def test_invalid_ivr_digit_falls_through_to_region() -> None:
    decision = decide(GUANGZHOU, ivr_choice="7")
    assert (decision.queue, decision.source) == ("cantonese", Source.REGION)
    assert any("match no menu entry" in r for r in decision.reasons)


def test_custom_menu() -> None:
    decision = decide(BEIJING_MOBILE, ivr_choice="9", menu={"9": "minnan"})
    assert decision.queue == "minnan"


# -- fallbacks ------------------------------------------------------------------------------


def test_teochew_goes_to_minnan_and_says_so() -> None:
    decision = decide(SHANTOU)
    assert (decision.dialect, decision.queue) == ("teochew", "minnan")
    assert any("no teochew queue" in r and "minnan" in r for r in decision.reasons)


def test_teochew_fallback_is_configuration() -> None:
    decision = decide(SHANTOU, fallbacks={"teochew": []})
    assert (decision.dialect, decision.queue) == ("teochew", "mandarin")


def test_dialect_without_queue_falls_back_to_mandarin() -> None:
    decision = decide(cn("0753-2123456"))  # Meizhou: Hakka
    assert (decision.dialect, decision.queue) == ("hakka", "mandarin")
    assert any("no hakka queue" in r for r in decision.reasons)


def test_configured_dialect_queue_is_used_when_it_exists() -> None:
    decision = decide(cn("0753-2123456"), queues=[*DEFAULT_QUEUES, "hakka"])
    assert decision.queue == "hakka"
    assert not any("falling back" in r for r in decision.reasons)


def test_cantonese_without_a_cantonese_queue() -> None:
    decision = decide(GUANGZHOU, queues=["mandarin", "wu"])
    assert (decision.dialect, decision.queue) == ("cantonese", "mandarin")


def test_no_mandarin_queue_uses_the_first_configured_queue() -> None:
    decision = decide(GUANGZHOU, queues=["wu"])
    assert decision.queue == "wu"
    assert any("first configured queue" in r for r in decision.reasons)


def test_no_queues_at_all() -> None:
    decision = decide(GUANGZHOU, queues=[])
    assert decision.queue == "mandarin"
    assert any("no queues are configured" in r for r in decision.reasons)


def test_southwestern_uses_the_sichuanese_queue() -> None:
    decision = decide(cn("0871-63123456"))  # Kunming
    assert (decision.dialect, decision.queue) == ("southwestern", "sichuanese")


# -- priority and account manager ----------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "priority"),
    [(None, 0), ("standard", 0), ("vip1", 10), ("VIP2", 20), ("vip3", 30), ("gold?", 0)],
)
def test_tier_gives_queue_prio(tier, priority) -> None:
    decision = decide(GUANGZHOU, customer=CustomerFacts(tier=tier))
    assert decision.priority == priority
    assert any("priority" in r for r in decision.reasons)


def test_vip_outranks_an_ordinary_caller() -> None:
    vip = decide(GUANGZHOU, customer=CustomerFacts(tier="vip1"))
    ordinary = decide(GUANGZHOU)
    assert vip.queue == ordinary.queue and vip.priority > ordinary.priority


def test_custom_tier_table() -> None:
    assert (
        decide(GUANGZHOU, customer=CustomerFacts(tier="gold"), tier_priorities={"gold": 5}).priority
        == 5
    )


def test_account_manager_rings_first() -> None:
    customer = CustomerFacts(customer_id=1, account_manager="1002")
    decision = decide(GUANGZHOU, customer=customer, account_manager_seconds=12)
    assert decision.account_manager is not None
    assert (decision.account_manager.agent_id, decision.account_manager.seconds) == ("1002", 12)
    assert any("account manager 1002" in r for r in decision.reasons)


def test_account_manager_disabled_with_zero_seconds() -> None:
    decision = decide(
        GUANGZHOU, customer=CustomerFacts(account_manager="1002"), account_manager_seconds=0
    )
    assert decision.account_manager is None
    assert any("disabled" in r for r in decision.reasons)


def test_no_account_manager() -> None:
    assert decide(GUANGZHOU, customer=CustomerFacts(tier="vip1")).account_manager is None


# -- garbage and robustness ---------------------------------------------------------------


@pytest.mark.parametrize(
    "caller",
    [
        None,
        "",
        "anonymous",
        "Restricted",
        "+",
        "0" * 70,
        "\x00\xff",
        "+1 212 555 0100",
        "4008123123",
        "１３８００１３８０００",
    ],
)
def test_garbage_numbers_get_the_default_with_a_reason(caller) -> None:
    decision = decide(cn(caller))
    assert decision.queue in DEFAULT_QUEUES
    assert decision.reasons
    if decision.source is Source.DEFAULT:
        assert decision.queue == "mandarin"
        assert any("region unknown" in r for r in decision.reasons)


def test_anonymous_is_default_mandarin() -> None:
    decision = decide(cn("anonymous"))
    assert (decision.queue, decision.dialect, decision.source) == (
        "mandarin",
        "mandarin",
        Source.DEFAULT,
    )


def test_internal_error_still_gives_a_queue(monkeypatch) -> None:
    from hotline.routing import decision as module

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(module, "_decide", broken)
    decision = decide(GUANGZHOU)
    assert (decision.queue, decision.source) == ("mandarin", Source.DEFAULT)
    assert "KeyError" in decision.reasons[0]


# -- serialisation ------------------------------------------------------------------------


def test_decision_round_trips_through_json() -> None:
    customer = CustomerFacts(customer_id=3, tier="vip2", account_manager="1001")
    decision = decide(SHANTOU, customer=customer, ivr_choice="8")
    data = json.loads(decision.to_json())
    assert data["queue"] == "minnan" and data["priority"] == 20 and data["source"] == "region"
    assert data["account_manager"] == {"agent_id": "1001", "seconds": 10}
    assert all(isinstance(r, str) for r in data["reasons"])
    assert RouteDecision.from_dict(data) == decision

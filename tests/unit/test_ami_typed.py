"""Typed AMI events: what each header becomes, parsed once, never raising."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from hotline.ami import events as events_module
from hotline.ami import typed as typed_module
from hotline.ami.events import AMIEvent, parse_typed
from hotline.ami.typed import (
    UP,
    AgentComplete,
    AgentConnect,
    ChannelEvent,
    CoreShowChannel,
    CustomerIdentified,
    Hangup,
    HotlineResync,
    MemberEvent,
    QueueCallerJoin,
    QueueEntry,
    QueueMember,
    QueueMemberStatus,
    QueueResult,
    SurveyResult,
    TypedEvent,
    known,
    number,
)

T = "1700000000.250000"
JUNK_HEADERS = (
    *("Timestamp", "Uniqueid", "Linkedid", "ChannelState", "Cause", "Queue", "Position"),
    *("HoldTime", "TalkTime", "Status", "Paused", "Wrapuptime", "InCall", "Duration"),
    *("Application", "ApplicationData", "Score", "QueuePrio", "Candidates", "Reasons"),
    *("Uniqueids", "Wait", "ServiceLevel", "Step", "Agent"),
)
USER_EVENTS = ("QueueResult", "IvrStep", "CustomerIdentified", "SurveyResult", "AccountManager")


def event(name: str, chanvars: dict[str, str] | None = None, **headers: str) -> AMIEvent:
    return AMIEvent(
        name,
        {"Event": name, "Timestamp": T, **headers},
        {"ChanVariable": chanvars} if chanvars is not None else {},
    )


def every_kind() -> list[AMIEvent]:
    """One event of every type and UserEvent kind that parses to a typed event."""
    names = [n for n in events_module._PARSERS if n != "UserEvent"]
    return [event(n) for n in names] + [event("UserEvent", UserEvent=k) for k in USER_EVENTS]


def test_every_kind_parses_with_every_field_set() -> None:
    for ami in every_kind():
        typed = parse_typed(ami)
        assert isinstance(typed, TypedEvent), ami.name
        assert ami.name == type(typed).EVENT
        for f in dataclasses.fields(typed):
            getattr(typed, f.name)  # a slot left unset would raise here
        assert typed.time == 1_700_000_000.25


def test_public_surface_names_every_event_class() -> None:
    classes = {type(parse_typed(ami)) for ami in every_kind()}
    assert {c.__name__ for c in classes} <= set(typed_module.__all__)


def test_channel_snapshot_is_read_as_sent() -> None:
    hangup = parse_typed(
        event(
            "Hangup",
            {"CUSTOMER_ID": " 42 "},
            Uniqueid="1.5",
            Linkedid="<unknown>",
            ChannelState=UP,
            Cause="16",
        )
    )
    assert hangup == Hangup(
        time=1_700_000_000.25,
        uniqueid="1.5",
        linkedid="<unknown>",  # a placeholder is left for the consumer to judge
        channel_state="6",
        customer_id=" 42 ",
        cause=16,
    )
    bare = parse_typed(AMIEvent("Hangup", {"Cause": "²"}, received=5.0))
    assert isinstance(bare, ChannelEvent) and isinstance(bare, Hangup)
    assert (bare.uniqueid, bare.linkedid, bare.customer_id, bare.time) == ("", "", None, 5.0)
    assert bare.cause is None  # isdigit() but not a number int() takes


def test_queue_and_agent_fields() -> None:
    join = parse_typed(
        event(
            "QueueCallerJoin",
            {"DIALECT": "cantonese"},
            Queue="support-yue",
            Position="2",
            CallerIDNum="13800138000",
        )
    )
    assert isinstance(join, QueueCallerJoin)
    assert (join.queue, join.position, join.caller_id_num, join.caller_id_name) == (
        "support-yue",
        2,
        "13800138000",
        "",
    )
    assert join.dialect == "cantonese"
    connect = parse_typed(
        event("AgentConnect", HoldTime="12", Interface="PJSIP/agent-1001", MemberName="1001")
    )
    assert isinstance(connect, AgentConnect)
    assert (connect.hold_time, connect.talk_time) == (12.0, None)
    assert (connect.interface, connect.member_name, connect.location, connect.name) == (
        "PJSIP/agent-1001",
        "1001",
        "",
        "",
    )
    complete = parse_typed(event("AgentComplete", TalkTime="nan", DestUniqueid="9.9"))
    assert isinstance(complete, AgentComplete)
    assert (complete.talk_time, complete.dest_uniqueid) == (None, "9.9")


def test_member_facts_are_none_when_not_reported() -> None:
    status = parse_typed(
        event(
            "QueueMemberStatus",
            Queue="q",
            Interface="PJSIP/a",
            Status="x",
            Paused=" 1 ",
            PausedReason=" lunch ",
            Wrapuptime="7.9",
        )
    )
    assert isinstance(status, QueueMemberStatus) and isinstance(status, MemberEvent)
    assert status.device_state == -1  # present but not a number
    assert (status.paused, status.paused_reason, status.wrapup, status.in_call) == (
        True,
        "lunch",
        7.0,
        None,
    )
    member = parse_typed(event("QueueMember", Queue="q", Name="1003", Location="PJSIP/b"))
    assert isinstance(member, QueueMember)
    assert (member.device_state, member.paused, member.wrapup) == (None, None, None)
    assert (member.location, member.name, member.interface) == ("PJSIP/b", "1003", "")
    entry = parse_typed(event("QueueEntry", Queue="q", Position="1", CallerID="139", Wait="4"))
    assert isinstance(entry, QueueEntry)
    assert (entry.position, entry.wait, entry.caller_id, entry.caller_id_num) == (1, 4.0, "139", "")


def test_dialplan_user_events_are_stripped() -> None:
    result = parse_typed(
        event("UserEvent", UserEvent="QueueResult", Queue=" q ", Status=" timeout")
    )
    assert isinstance(result, QueueResult) and (result.queue, result.status) == ("q", "TIMEOUT")
    identified = parse_typed(
        event(
            "UserEvent",
            UserEvent="CustomerIdentified",
            Dialect="cantonese",
            QueuePrio="10",
            Priority="7",
            Reasons="a; b ;; " + ";".join(str(i) for i in range(30)),
            Candidates="x",
        )
    )
    assert isinstance(identified, CustomerIdentified)
    assert identified.queue_prio == 10 and identified.candidates is None
    assert identified.reasons[:3] == ("a", "b", "0") and len(identified.reasons) == 20
    scores = [
        parse_typed(event("UserEvent", UserEvent="SurveyResult", Score=s)) for s in (" 2", "9")
    ]
    assert [s.score for s in scores if isinstance(s, SurveyResult)] == [2, None]


def test_resync_and_listing() -> None:
    resync = parse_typed(event("HotlineResync", Uniqueids=" 1.1  1.2 "))
    assert isinstance(resync, HotlineResync) and resync.alive == frozenset({"1.1", "1.2"})
    refused = parse_typed(event("HotlineResync"))
    assert isinstance(refused, HotlineResync) and refused.alive is None
    listed = parse_typed(
        event(
            "CoreShowChannel",
            Application="Queue",
            ApplicationData=" support-yue ,,,,600",
            Duration="01:00:40",
        )
    )
    assert isinstance(listed, CoreShowChannel)
    assert (listed.queue, listed.duration) == ("support-yue", 3640.0)
    other = parse_typed(event("CoreShowChannel", Application="Dial", ApplicationData="x"))
    assert isinstance(other, CoreShowChannel) and (other.queue, other.duration) == ("", None)


def test_unread_events_and_kinds_are_none() -> None:
    assert parse_typed(event("VarSet", Variable="X")) is None
    assert parse_typed(event("UserEvent", UserEvent="Something")) is None
    assert parse_typed(event("UserEvent")) is None


def test_typed_is_parsed_once_and_kept() -> None:
    ami = event("Hangup", Uniqueid="1.1", Cause="16")
    first = ami.typed
    assert first is ami.typed
    assert ami == AMIEvent(ami.name, ami.headers, ami.chanvars)  # the cache is not compared
    assert "typed" not in repr(ami)
    unread = event("VarSet")
    assert unread.typed is None and unread.typed is None


def test_typed_events_are_read_only_values() -> None:
    hangup = parse_typed(event("Hangup", Uniqueid="1.1", Cause="16"))
    assert isinstance(hangup, Hangup)
    assert dataclasses.replace(hangup, cause=17).cause == 17
    assert hangup == parse_typed(event("Hangup", Uniqueid="1.1", Cause="16"))
    assert hash(hangup) == hash(parse_typed(event("Hangup", Uniqueid="1.1", Cause="16")))
    with pytest.raises(TypeError):
        Hangup(time=1.0)  # type: ignore[call-arg]
    assert not hasattr(hangup, "__dict__")


def test_the_type_checker_refuses_to_change_an_event(tmp_path: Path) -> None:
    """Read-only is mypy's rule (typed.event_class says why): ``make test`` fails on it."""
    from mypy import api

    snippet = tmp_path / "change_an_event.py"
    snippet.write_text(
        "from hotline.ami.typed import Hangup\n"
        "h = Hangup(time=1.0, uniqueid='1', linkedid='1', channel_state='6',"
        " customer_id='', cause=16)\n"
        "h.cause = 17\n",
        encoding="utf-8",
    )
    out, _, status = api.run(["--strict", "--no-incremental", str(snippet)])
    assert status == 1 and '"cause" defined in "Hangup" is read-only' in out, out


def test_junk_never_raises() -> None:
    rng = random.Random(7)
    junk = ["", " ", "<unknown>", "-1", "1e400", "nan", "inf", "²", "01:02", "a:b:c", "é\x00", "1"]
    kinds = every_kind()
    for _ in range(300):
        template = rng.choice(kinds)
        headers = {"Event": template.name, "UserEvent": template.headers.get("UserEvent", "")}
        for key in JUNK_HEADERS:
            if rng.random() < 0.5:
                headers[key] = rng.choice(junk)
        if headers.get("Application"):
            headers["Application"] = "Queue"
        parse_typed(AMIEvent(template.name, headers, {"ChanVariable": {"CUSTOMER_ID": "x"}}))


def test_known_and_number() -> None:
    assert [known(v) for v in ("", "<unknown>", "(null)", "unknown", "1.2")] == [
        None,
        None,
        None,
        "unknown",  # the live state's extra placeholder is its own rule
        "1.2",
    ]
    assert [number(v) for v in (None, "", "x", "nan", "inf", "1e12", "12", " 3.5 ")] == [
        None,
        None,
        None,
        None,
        None,
        None,
        12.0,
        3.5,
    ]

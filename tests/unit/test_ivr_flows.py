"""The shipped IVR flows (welcome, dialect_menu, survey) end to end over FastAGI.

Each test starts the real route table (``ivr_flows.app.build_routes``) on a loopback
AGIServer and plays Asterisk with :class:`FakePeer`: the header block, then a canned
reply per command. Assertions are on the exact AGI command lines, the FlowOutcome and
the server's session report.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import pytest

from hotline.phones import to_e164
from hotline.routing.decision import RouteDecision, Source
from hotline.types import E164
from ivr_flows.app import (
    Caller,
    Identified,
    MemorySurveyStore,
    RouteRequest,
    StaticIdentify,
    build_routes,
    build_server,
    default_route,
)
from ivr_flows.flows import (
    ActionResult,
    FlowContext,
    FlowDefinitionError,
    FlowOutcome,
    load_flow,
    load_flows,
    parse_flow,
    run_flow,
)
from ivr_flows.server import AGIServer, SessionOutcome, SessionReport
from tests.unit.test_agi_server import DEADLINE, FakePeer, header_block, ok

HANGUPS = [
    "511 Command Not Permitted on a dead channel or intercept routine",
    "200 result=-1",
    "HANGUP",
]


def asterisk(get_data: Iterable[str], linkedid: str = "1700000000.7") -> Callable[[str], Any]:
    """Answer like Asterisk: GET DATA replies from ``get_data`` in order, the rest OK."""
    replies = iter(get_data)

    def answer(line: str) -> str:
        if line.startswith("GET DATA"):
            return next(replies)
        if line.startswith("GET VARIABLE CHANNEL(linkedid)"):
            return f"200 result=1 ({linkedid})"
        return ok(line)

    return answer


class IVR:
    """The real route table on a free port, with its outcomes and session reports."""

    def __init__(self, region: str = "CN", **deps: Any) -> None:
        self.outcomes: asyncio.Queue[FlowOutcome] = asyncio.Queue()
        self.reports: asyncio.Queue[SessionReport] = asyncio.Queue()
        self.server = AGIServer(
            build_routes(region=region, on_outcome=self.outcomes.put_nowait, **deps),
            port=0,
            on_session_end=self.reports.put_nowait,
        )

    async def call(
        self, script: str, answer: Callable[[str], Any], **headers: str
    ) -> tuple[list[str], FlowOutcome, SessionReport]:
        peer = await FakePeer(self.server.port).connect(header_block(script, **headers))
        sent = await asyncio.wait_for(peer.serve(answer), DEADLINE)
        await peer.aclose()
        # Each UserEvent is copied into CEL (a test of its own below); the flows' tests
        # read the commands without the copies.
        self.cel = [c for c in sent if c.startswith("EXEC CELGenUserEvent ")]
        commands = [c for c in sent if not c.startswith("EXEC CELGenUserEvent ")]
        outcome = await asyncio.wait_for(self.outcomes.get(), DEADLINE)
        report = await asyncio.wait_for(self.reports.get(), DEADLINE)
        return commands, outcome, report


@pytest.fixture
async def ivr_factory() -> AsyncIterator[Callable[..., Any]]:
    made: list[IVR] = []

    async def make(**deps: Any) -> IVR:
        ivr = IVR(**deps)
        await ivr.server.start()
        made.append(ivr)
        return ivr

    yield make
    for ivr in made:
        await ivr.server.stop()
        assert ivr.server.active_sessions == 0


def sets(commands: list[str]) -> dict[str, str]:
    """The SET VARIABLE commands as {name: raw quoted value}."""
    out = {}
    for line in commands:
        if line.startswith("SET VARIABLE "):
            name, value = line[len("SET VARIABLE ") :].split(" ", 1)
            out[name] = value
    return out


# -- welcome / identify ----------------------------------------------------------------------


async def test_welcome_single_confident_match(ivr_factory) -> None:
    identify = StaticIdentify(
        {
            "+8613800138000": Identified(
                candidates=(42,), confident=True, preferred_dialect="cantonese", tier="vip1"
            )
        }
    )
    ivr = await ivr_factory(identify=identify)
    commands, outcome, report = await ivr.call("identify", asterisk([]))
    assert identify.calls == [("+8613800138000", "张伟")]
    assert commands == [
        'EXEC UserEvent "IvrStep,Step: welcome"',
        'SET VARIABLE __CUSTOMER_ID "42"',
        'SET VARIABLE __CUSTOMER_CANDIDATES "1"',
        'SET VARIABLE __DIALECT "cantonese"',
        'SET VARIABLE DIALECT_SOURCE "customer"',
        'SET VARIABLE QUEUE_PRIO "10"',
        'SET VARIABLE ROUTE_QUEUE "cantonese"',
        'EXEC UserEvent "CustomerIdentified,CustomerID: 42,Candidates: 1,Dialect: cantonese,'
        "DialectSource: customer,QueuePrio: 10,"
        "Reasons: customer's preferred dialect: cantonese; number region: mobile block 1380013 "
        'is registered in 北京市 (not used); queue cantonese; customer tier vip1: priority 10"',
        'STREAM FILE hello ""',
    ]
    assert outcome.result == "identified"
    assert outcome.path == ["arrive", "identify", "route", "announce", "greet", "done"]
    assert outcome.variables["__CUSTOMER_ID"] == "42"
    # every fact also went into Asterisk's own record, form-encoded (docs/asterisk-record.md)
    assert ivr.cel[0] == 'EXEC CELGenUserEvent "IvrStep,Step=welcome"'
    assert ivr.cel[1].startswith(
        'EXEC CELGenUserEvent "CustomerIdentified,CustomerID=42&Candidates=1&Dialect=cantonese&'
    )
    assert "," not in ivr.cel[1].split(",", 1)[1].rstrip('"')  # one argument for the app
    assert report.outcome is SessionOutcome.OK


async def test_welcome_shared_family_number_links_nobody(ivr_factory) -> None:
    identify = StaticIdentify({"+8613800138000": Identified(candidates=(7, 8), confident=True)})
    ivr = await ivr_factory(identify=identify)
    commands, outcome, _ = await ivr.call("identify", asterisk([]))
    variables = sets(commands)
    assert "__CUSTOMER_ID" not in variables
    assert variables["__CUSTOMER_CANDIDATES"] == '"2"'
    assert variables["__DIALECT"] == '"mandarin"'
    assert variables["DIALECT_SOURCE"] == '"region"'  # a Beijing mobile: Mandarin by region
    assert variables["QUEUE_PRIO"] == '"0"'
    assert outcome.vars["CANDIDATES"] == "2"


async def test_welcome_unconfident_single_candidate_is_not_linked(ivr_factory) -> None:
    identify = StaticIdentify({"+8613800138000": Identified(candidates=(7,), confident=False)})
    ivr = await ivr_factory(identify=identify)
    commands, _, _ = await ivr.call("identify", asterisk([]))
    assert "__CUSTOMER_ID" not in sets(commands)
    assert sets(commands)["__CUSTOMER_CANDIDATES"] == '"1"'


async def test_welcome_withheld_number_skips_the_matcher(ivr_factory) -> None:
    identify = StaticIdentify()
    ivr = await ivr_factory(identify=identify)
    commands, outcome, _ = await ivr.call(
        "identify", asterisk([]), agi_callerid="unknown", agi_calleridname="unknown"
    )
    assert identify.calls == []
    assert sets(commands)["__CUSTOMER_CANDIDATES"] == '"0"'
    assert outcome.result == "identified"


async def test_welcome_matcher_failure_still_routes_the_call(ivr_factory, caplog) -> None:
    async def broken(caller: Caller) -> Identified:
        raise ConnectionError("database down")

    ivr = await ivr_factory(identify=broken)
    commands, outcome, report = await ivr.call("identify", asterisk([]))
    assert "identify:error" in outcome.path
    assert sets(commands)["__CUSTOMER_CANDIDATES"] == '"0"'
    assert sets(commands)["__DIALECT"] == '"mandarin"'
    assert outcome.result == "identified"
    assert report.outcome is SessionOutcome.OK
    assert "13800138000" not in caplog.text and "张伟" not in caplog.text


async def test_welcome_router_failure_falls_back_to_mandarin(ivr_factory) -> None:
    async def broken(request: RouteRequest) -> RouteDecision:
        raise RuntimeError("router bug")

    ivr = await ivr_factory(route=broken)
    commands, outcome, _ = await ivr.call("identify", asterisk([]))
    assert "route:error" in outcome.path
    assert sets(commands)["__DIALECT"] == '"mandarin"'
    assert sets(commands)["QUEUE_PRIO"] == '"0"'


async def test_welcome_non_utf8_caller_name(ivr_factory) -> None:
    identify = StaticIdentify()
    ivr = await ivr_factory(identify=identify)
    peer = await FakePeer(ivr.server.port).connect(
        header_block("identify", agi_calleridname="JosX").replace(b"JosX", b"Jos\xe9")
    )
    await asyncio.wait_for(peer.serve(asterisk([])), DEADLINE)
    await peer.aclose()
    outcome = await asyncio.wait_for(ivr.outcomes.get(), DEADLINE)
    assert outcome.result == "identified"
    assert identify.calls == [("+8613800138000", "Jos\ufffd")]
    assert outcome.vars["CALLER_NAME"] == "Jos\ufffd"


async def test_caller_number_is_read_with_the_configured_region(ivr_factory) -> None:
    """HOTLINE_DEFAULT_REGION=HK: identify sees the number the call log stores."""
    identify = StaticIdentify()
    ivr = await ivr_factory(region="HK", identify=identify)
    commands, outcome, _ = await ivr.call("identify", asterisk([]), agi_callerid="21234567")
    assert identify.calls == [("+85221234567", "张伟")]
    assert to_e164("21234567", "HK") == "+85221234567"  # what the call log stores (tracker)
    assert outcome.vars["CALLER_E164"] == "+85221234567"
    assert sets(commands)["__DIALECT"] == '"cantonese"'  # Hong Kong, not Shanghai (021)
    assert sets(commands)["DIALECT_SOURCE"] == '"region"'


async def test_identification_reaches_route_typed_with_the_account_manager(ivr_factory) -> None:
    seen: list[RouteRequest] = []

    async def route(request: RouteRequest) -> RouteDecision:
        seen.append(request)
        return await default_route(request)

    identify = StaticIdentify(
        {"+8613800138000": Identified(candidates=(42,), confident=True, account_manager="1002")}
    )
    ivr = await ivr_factory(identify=identify, route=route)
    commands, outcome, _ = await ivr.call("identify", asterisk([]))
    (request,) = seen
    assert request.caller == Caller(
        uniqueid="1700000000.7", number="13800138000", e164=E164("+8613800138000"), name="张伟"
    )
    assert request.customer is not None and request.customer.account_manager == "1002"
    assert [c for c in commands if c.startswith("SET VARIABLE")][2:6] == [
        'SET VARIABLE AM_AGENT "1002"',
        'SET VARIABLE AM_INTERFACE "PJSIP/agent-1002"',
        'SET VARIABLE AM_SECONDS "10"',
        'SET VARIABLE __DIALECT "mandarin"',
    ]
    assert outcome.variables["AM_INTERFACE"] == "PJSIP/agent-1002"


async def test_dialect_menu_routes_without_an_identification(ivr_factory) -> None:
    """The menu is an AGI call of its own: routing gets the caller, and no customer."""
    seen: list[RouteRequest] = []

    async def route(request: RouteRequest) -> RouteDecision:
        seen.append(request)
        return await default_route(request)

    ivr = await ivr_factory(route=route)
    await ivr.call("dialect", asterisk(["200 result=4"]))
    (request,) = seen
    assert (request.caller.e164, request.identified, request.ivr_dialect) == (
        "+8613800138000",
        None,
        "wu",
    )


# -- dialect menu ----------------------------------------------------------------------------


async def test_dialect_menu_choice(ivr_factory) -> None:
    ivr = await ivr_factory()
    commands, outcome, _ = await ivr.call("dialect", asterisk(["200 result=2"]))
    assert commands == [
        "GET DATA beep 5000 1",
        'SET VARIABLE IVR_DIALECT "cantonese"',
        'SET VARIABLE __DIALECT "cantonese"',
        'SET VARIABLE DIALECT_SOURCE "ivr"',
        'SET VARIABLE QUEUE_PRIO "0"',
        'SET VARIABLE ROUTE_QUEUE "cantonese"',
        'EXEC UserEvent "IvrStep,Step: dialect:cantonese"',
    ]
    assert outcome.result == "cantonese"
    assert outcome.path[:3] == ["ask", "ask:2", "cantonese"]


async def test_dialect_menu_digit_before_timeout_counts(ivr_factory) -> None:
    ivr = await ivr_factory()
    _, outcome, _ = await ivr.call("dialect", asterisk(["200 result=3 (timeout)"]))
    assert outcome.result == "minnan"


async def test_dialect_menu_invalid_timeout_invalid_then_default(ivr_factory) -> None:
    ivr = await ivr_factory()
    replies = ["200 result=9", "200 result= (timeout)", "200 result=*"]
    commands, outcome, report = await ivr.call("dialect", asterisk(replies))
    assert commands[:6] == [
        "GET DATA beep 5000 1",
        'STREAM FILE invalid ""',
        "GET DATA beep 5000 1",
        'STREAM FILE please-try-again ""',
        "GET DATA beep 5000 1",
        'STREAM FILE invalid ""',
    ]
    assert commands.count("GET DATA beep 5000 1") == 3
    assert outcome.path[:5] == ["ask", "ask:invalid", "ask:timeout", "ask:invalid", "ask:default"]
    assert sets(commands)["__DIALECT"] == '"mandarin"'
    assert sets(commands)["DIALECT_SOURCE"] == '"region"'  # no choice: the number's region
    assert "IVR_DIALECT" not in sets(commands)
    assert commands[-1] == 'EXEC UserEvent "IvrStep,Step: dialect:mandarin"'
    assert outcome.result == "mandarin"
    assert report.outcome is SessionOutcome.OK


async def test_dialect_menu_customer_preference_beats_choice(ivr_factory) -> None:
    async def route(request: RouteRequest) -> RouteDecision:
        assert request.ivr_dialect == "wu"
        return RouteDecision(queue="", dialect="sichuanese", priority=5, source=Source.CUSTOMER)

    ivr = await ivr_factory(route=route)
    commands, outcome, _ = await ivr.call("dialect", asterisk(["200 result=4"]))
    assert sets(commands)["__DIALECT"] == '"sichuanese"'
    assert "ROUTE_QUEUE" not in sets(commands)
    assert outcome.result == "sichuanese"


@pytest.mark.parametrize("hangup", HANGUPS)
async def test_dialect_menu_caller_hangs_up(ivr_factory, hangup: str) -> None:
    ivr = await ivr_factory()
    commands, outcome, report = await ivr.call("dialect", asterisk([hangup]))
    assert commands == ["GET DATA beep 5000 1"]
    assert outcome.result == "caller_gone"
    assert outcome.path == ["ask"]
    assert report.outcome is SessionOutcome.CALLER_GONE
    assert ivr.server.active_sessions == 0


async def test_hangup_during_invalid_prompt(ivr_factory) -> None:
    ivr = await ivr_factory()

    def answer(line: str) -> str:
        if line.startswith("GET DATA"):
            return "200 result=8"
        if line.startswith("STREAM FILE"):
            return "511 Command Not Permitted on a dead channel or intercept routine"
        return ok(line)

    commands, outcome, report = await ivr.call("dialect", answer)
    assert commands == ["GET DATA beep 5000 1", 'STREAM FILE invalid ""']
    assert outcome.result == "caller_gone"
    assert report.outcome is SessionOutcome.CALLER_GONE


async def test_garbage_reply_mid_flow(ivr_factory) -> None:
    ivr = await ivr_factory()
    commands, outcome, report = await ivr.call("dialect", asterisk(["OK then"]))
    assert commands == ["GET DATA beep 5000 1"]
    assert outcome.result == "agi_error"
    assert report.outcome is SessionOutcome.AGI_ERROR


async def test_get_data_non_digit_result_is_garbage(ivr_factory) -> None:
    ivr = await ivr_factory()
    _, outcome, _ = await ivr.call("dialect", asterisk(["200 result=abc"]))
    assert outcome.result == "agi_error"


async def test_many_concurrent_menu_calls_keep_their_own_state(ivr_factory) -> None:
    ivr = await ivr_factory()
    dialects = {"1": "mandarin", "2": "cantonese", "3": "minnan", "4": "wu", "5": "sichuanese"}

    async def one(i: int) -> tuple[str, str]:
        digit = str(i % 5 + 1)
        peer = await FakePeer(ivr.server.port).connect(
            header_block("dialect", agi_uniqueid=f"1700000000.{i}")
        )
        commands = await peer.serve(asterisk([f"200 result={digit}"]))
        await peer.aclose()
        return digit, sets(commands)["__DIALECT"]

    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(60))), 30)
    assert all(value == f'"{dialects[digit]}"' for digit, value in results)
    outcomes = [await asyncio.wait_for(ivr.outcomes.get(), DEADLINE) for _ in range(60)]
    assert sorted(o.result for o in outcomes) == sorted(dialects[d] for d, _ in results)


# -- survey ----------------------------------------------------------------------------------


async def test_survey_score_recorded_with_linkedid_from_args(ivr_factory) -> None:
    store = MemorySurveyStore()
    ivr = await ivr_factory(record_survey=store)
    commands, outcome, _ = await ivr.call(
        "survey", asterisk(["200 result=1"]), agi_arg_1="1700000000.3"
    )
    assert store.scores == [("1700000000.3", 1)]
    assert commands == [
        'EXEC UserEvent "IvrStep,Step: survey"',
        "GET DATA beep 6000 1",
        'EXEC UserEvent "SurveyResult,Score: 1"',
        'SET VARIABLE SURVEY_SCORE "1"',
        'EXEC UserEvent "IvrStep,Step: survey:1"',
        'STREAM FILE auth-thankyou ""',
    ]
    assert outcome.result == "scored"
    assert outcome.vars["SCORE_LABEL"] == "非常满意"


async def test_survey_reads_linkedid_from_the_channel_without_args(ivr_factory) -> None:
    store = MemorySurveyStore()
    ivr = await ivr_factory(record_survey=store)
    commands, _, _ = await ivr.call("survey", asterisk(["200 result=3"], linkedid="99.1"))
    assert commands[0] == "GET VARIABLE CHANNEL(linkedid)"
    assert store.scores == [("99.1", 3)]


async def test_survey_invalid_then_timeout_records_nothing(ivr_factory) -> None:
    store = MemorySurveyStore()
    ivr = await ivr_factory(record_survey=store)
    commands, outcome, _ = await ivr.call(
        "survey", asterisk(["200 result=4", "200 result= (timeout)"]), agi_arg_1="1.1"
    )
    assert store.scores == []
    assert outcome.result == "no_score"
    assert commands[-1] == 'STREAM FILE vm-goodbye ""'
    assert "SURVEY_SCORE" not in sets(commands)


async def test_survey_store_failure_still_tells_ami(ivr_factory) -> None:
    async def broken(linkedid: str, score: int) -> None:
        raise ConnectionError("db down")

    ivr = await ivr_factory(record_survey=broken)
    commands, outcome, _ = await ivr.call("survey", asterisk(["200 result=2"]), agi_arg_1="1.1")
    assert 'EXEC UserEvent "SurveyResult,Score: 2"' in commands
    assert "store:error" in outcome.path
    assert outcome.result == "scored"


@pytest.mark.parametrize("hangup", HANGUPS)
async def test_survey_caller_hangs_up(ivr_factory, hangup: str) -> None:
    store = MemorySurveyStore()
    ivr = await ivr_factory(record_survey=store)
    _, outcome, report = await ivr.call("survey", asterisk([hangup]), agi_arg_1="1.1")
    assert store.scores == []
    assert outcome.result == "caller_gone"
    assert report.outcome is SessionOutcome.CALLER_GONE


# -- the flow language -------------------------------------------------------------------------


def test_shipped_flows_load_and_declare_their_actions() -> None:
    flows = load_flows()
    assert set(flows) == {"welcome", "dialect_menu", "survey"}
    assert flows["welcome"].actions == {"identify", "route"}
    assert flows["dialect_menu"].actions == {"route"}
    assert flows["survey"].actions == {"record_survey"}


def test_prompt_override() -> None:
    flow = load_flow("dialect_menu", prompts={"menu": "hotline/zh/dialect-menu"})
    assert flow.prompts["menu"] == "hotline/zh/dialect-menu"
    assert flow.prompts["invalid"] == "invalid"


def test_bad_flow_lists_every_problem() -> None:
    doc = {
        "start": "nowhere",
        "surprise": 1,
        "prompts": {"p": "beep"},
        "steps": {
            "a": {"type": "menu", "prompt": "missing", "choices": {"1x": "b"}, "default": "b"},
            "b": {"type": "play", "prompt": "p", "next": "ghost", "colour": "red"},
            "c": {"type": "dance"},
            "d": {"type": "set"},
            "e": {
                "type": "menu",
                "prompt": "p",
                "choices": {"1": "b"},
                "default": "b",
                "attempts": 0,
            },
        },
    }
    with pytest.raises(FlowDefinitionError) as err:
        parse_flow(doc, name="bad")
    text = "; ".join(err.value.problems)
    for needle in (
        "start step 'nowhere'",
        "unknown top-level keys ['surprise']",
        "prompt 'missing' not in [prompts]",
        "choice '1x' is not DTMF digits",
        "unknown step 'ghost'",
        "unknown keys ['colour']",
        "unknown type 'dance'",
        "step 'd' (set) needs next",
        "attempts must be an integer 1..10",
    ):
        assert needle in text


class ScriptedSession:
    """A stand-in session for runner-only tests (no socket)."""

    uniqueid = "1.1"
    channel = "PJSIP/x"
    caller_number: str | None = None
    caller_name: str | None = None
    args: tuple[str, ...] = ()
    query: Mapping[str, str] = {}

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    async def set_variable(self, name: str, value: str) -> None:
        self.sent.append((name, value))

    async def user_event(self, name: str, headers: Mapping[str, str]) -> None:
        self.sent.append((name, dict(headers)))


async def test_goto_loop_is_stopped() -> None:
    flow = parse_flow(
        {
            "start": "a",
            "steps": {"a": {"type": "goto", "next": "b"}, "b": {"type": "goto", "next": "a"}},
        },
        name="loop",
    )
    outcome = await run_flow(flow, ScriptedSession(), FlowContext(max_steps=10))  # type: ignore[arg-type]
    assert outcome.result == "loop"
    assert len(outcome.path) == 10


async def test_branch_templates_and_missing_actions() -> None:
    flow = parse_flow(
        {
            "start": "check",
            "steps": {
                "check": {
                    "type": "branch",
                    "var": "ARG1",
                    "cases": {"vip": "vip"},
                    "default": "plain",
                },
                "vip": {"type": "set", "channel": {"X": "${ARG1}-$NOPE!"}, "next": "end"},
                "plain": {
                    "type": "action",
                    "action": "tag",
                    "next": "end",
                    "branches": {"odd": "vip"},
                },
                "end": {"type": "end", "result": "r-$ARG1"},
            },
        },
        name="t",
    )
    session = ScriptedSession()
    session.args = ("vip",)
    outcome = await run_flow(flow, session, FlowContext(actions={}))  # type: ignore[arg-type]
    assert outcome.result == "error" and "tag" in (outcome.error or "")

    async def tag(variables: Mapping[str, str]) -> ActionResult:
        return ActionResult(vars={"ARG1": "odd"}, branch="odd")

    outcome = await run_flow(flow, session, FlowContext(actions={"tag": tag}))  # type: ignore[arg-type]
    assert outcome.path == ["check", "vip", "end"]
    assert outcome.variables == {"X": "vip-!"}
    assert outcome.result == "r-vip"
    session.args = ("plain",)
    outcome = await run_flow(flow, session, FlowContext(actions={"tag": tag}))  # type: ignore[arg-type]
    assert outcome.path == ["check", "plain", "vip", "end"]
    assert outcome.variables == {"X": "odd-!"}


def known(**facts: Any) -> Identified:
    return Identified(candidates=(1,), confident=True, **facts)


async def test_default_route_order_and_priority() -> None:
    decide = default_route
    withheld = Caller(uniqueid="1.1")
    assert (await decide(RouteRequest(caller=withheld))).dialect == "mandarin"
    both = await decide(
        RouteRequest(
            caller=withheld, identified=known(preferred_dialect="wu"), ivr_dialect="cantonese"
        )
    )
    assert (both.dialect, both.source) == ("wu", "customer")
    chosen = await decide(
        RouteRequest(caller=withheld, identified=known(tier="VIP3"), ivr_dialect="cantonese")
    )
    assert (chosen.dialect, chosen.source, chosen.priority) == ("cantonese", "ivr", 30)
    odd = await decide(RouteRequest(caller=withheld, identified=known(preferred_dialect="klingon")))
    assert odd.dialect == "mandarin"


async def test_build_server_serves_the_three_routes() -> None:
    server = build_server(region="CN", port=0)
    assert set(server.routes) == {"identify", "dialect", "survey"}
    assert server.host == "127.0.0.1"
    async with server:
        peer = await FakePeer(server.port).connect(header_block("survey?x=1", agi_arg_1="5.5"))
        commands = await asyncio.wait_for(peer.serve(asterisk(["200 result=2"])), DEADLINE)
        await peer.aclose()
    assert "GET DATA beep 6000 1" in commands

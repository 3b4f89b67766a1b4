"""AGIServer and AGISession against a fake Asterisk FastAGI peer on 127.0.0.1.

The peer is the client side of a real TCP connection: it writes the ``agi_*`` block,
reads each command line and answers with canned reply lines, like Asterisk does.
Tests wait on events (session reports, socket EOF) with deadlines, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from ivr_flows.agi import (
    AGICommandError,
    AGIProtocolError,
    AGISession,
    AGITimeoutError,
    CallerGone,
    parse_reply,
    quote,
)
from ivr_flows.server import AGIServer, SessionOutcome, SessionReport

DEADLINE = 5.0


def header_block(script: str = "identify", **extra: str) -> bytes:
    headers = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_request": f"agi://127.0.0.1:4573/{script}",
        "agi_channel": "PJSIP/trunk-00000001",
        "agi_language": "en",
        "agi_uniqueid": "1700000000.7",
        "agi_callerid": "13800138000",
        "agi_calleridname": "张伟",
    }
    headers.update(extra)
    return "".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n"


class FakePeer:
    """One FastAGI connection as Asterisk would make it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.commands: list[str] = []

    async def connect(self, block: bytes | None = None) -> FakePeer:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        if block is not None:
            self.writer.write(block)
            await self.writer.drain()
        return self

    async def next_command(self) -> str:
        """The next command line the server sent ('' once the server closed)."""
        raw = await asyncio.wait_for(self.reader.readline(), DEADLINE)
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if line:
            self.commands.append(line)
        return line

    async def reply(self, *lines: str | bytes) -> None:
        for line in lines:
            data = line if isinstance(line, bytes) else line.encode()
            self.writer.write(data + b"\n")
        await self.writer.drain()

    async def expect(self, prefix: str, *replies: str | bytes) -> str:
        line = await self.next_command()
        assert line.startswith(prefix), (line, prefix)
        await self.reply(*replies)
        return line

    async def serve(self, answer: Callable[[str], list[str] | str | None]) -> list[str]:
        """Answer every command with ``answer(line)`` until the server closes; the log."""
        while True:
            line = await self.next_command()
            if not line:
                return self.commands
            replies = answer(line)
            if replies is None:
                continue  # stay silent
            await self.reply(*([replies] if isinstance(replies, str) else replies))

    async def wait_closed_by_server(self) -> bytes:
        """Everything left on the socket up to the server's close (EOF within the deadline)."""
        try:
            return await asyncio.wait_for(self.reader.read(), DEADLINE)
        except ConnectionResetError:  # closed with our bytes unread: a reset, still a close
            return b""

    def close(self) -> None:
        self.writer.close()

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def ok(line: str) -> str:
    """Asterisk's usual happy replies."""
    if line.startswith("SET VARIABLE"):
        return "200 result=1"
    if line.startswith("STREAM FILE"):
        return "200 result=0 endpos=8000"
    return "200 result=0"


class Harness:
    """An AGIServer on a free loopback port whose session reports land in a queue."""

    def __init__(self, routes: Mapping[str, Callable[[AGISession], Awaitable[Any]]], **kw: Any):
        self.reports: asyncio.Queue[SessionReport] = asyncio.Queue()
        self.server = AGIServer(routes, port=0, on_session_end=self.reports.put_nowait, **kw)
        self.peers: list[FakePeer] = []

    async def report(self) -> SessionReport:
        return await asyncio.wait_for(self.reports.get(), DEADLINE)

    def peer(self) -> FakePeer:
        peer = FakePeer(self.server.port)
        self.peers.append(peer)
        return peer


@pytest.fixture
async def harness_factory() -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    made: list[Harness] = []

    async def make(routes: Mapping[str, Any] | None = None, **kw: Any) -> Harness:
        harness = Harness(routes or {}, **kw)
        await harness.server.start()
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.server.stop()
        for peer in harness.peers:
            await peer.aclose()


# -- the header block -----------------------------------------------------------------------


async def test_early_eof_closes_without_spinning_the_loop(harness_factory) -> None:
    called: list[AGISession] = []

    async def route(session: AGISession) -> None:
        called.append(session)

    h = await harness_factory({"identify": route})
    loop = asyncio.get_running_loop()
    cpu_before = time.process_time()
    for chunk in (b"agi_network: yes\n", b"", b"agi_network_script: identify\nagi_uni"):
        peer = await h.peer().connect(chunk)
        peer.close()
        report = await h.report()
        assert report.outcome is SessionOutcome.EARLY_EOF
    # The loop must still run timers on time: Panoramisk 1.4 never yields here.
    fired = asyncio.Event()
    scheduled = loop.time()
    loop.call_later(0.05, fired.set)
    await asyncio.wait_for(fired.wait(), 1.0)
    assert loop.time() - scheduled < 0.5
    assert time.process_time() - cpu_before < 1.0
    assert called == []
    stats = h.server.stats()
    assert stats["early_eof"] == 3
    assert stats["active"] == 0
    assert h.server.active_sessions == 0


async def test_header_timeout_closes_the_socket(harness_factory) -> None:
    h = await harness_factory({"identify": lambda s: asyncio.sleep(0)}, header_timeout=0.2)
    peer = await h.peer().connect(b"agi_network: yes\nagi_network_script: identify\n")
    assert await peer.wait_closed_by_server() == b""
    assert (await h.report()).outcome is SessionOutcome.HEADER_TIMEOUT
    assert h.server.stats()["header_timeout"] == 1


async def test_oversized_header_block_is_refused(harness_factory) -> None:
    h = await harness_factory({"identify": lambda s: asyncio.sleep(0)}, max_header_bytes=1024)
    peer = await h.peer().connect(b"agi_x: " + b"a" * 4096 + b"\n")
    assert await peer.wait_closed_by_server() == b""
    assert (await h.report()).outcome is SessionOutcome.HEADER_TOO_LARGE


async def test_non_utf8_caller_name_does_not_kill_the_session(harness_factory) -> None:
    seen: dict[str, Any] = {}

    async def route(session: AGISession) -> None:
        seen["name"] = session.caller_name
        seen["number"] = session.caller_number
        await session.answer()

    h = await harness_factory({"identify": route})
    peer = await h.peer().connect(
        header_block(agi_calleridname="Jos\xe9").replace(b"\xc3\xa9", b"\xe9")
    )
    await peer.expect("ANSWER", "200 result=0")
    assert await peer.wait_closed_by_server() == b""
    assert (await h.report()).outcome is SessionOutcome.OK
    assert seen["name"] == "Jos\ufffd"
    assert seen["number"] == "13800138000"


async def test_utf8_chinese_caller_name_survives(harness_factory) -> None:
    seen: dict[str, Any] = {}

    async def route(session: AGISession) -> None:
        seen["name"] = session.caller_name

    h = await harness_factory({"identify": route})
    await h.peer().connect(header_block(agi_calleridname="王小明"))
    assert (await h.report()).outcome is SessionOutcome.OK
    assert seen["name"] == "王小明"


async def test_routes_on_path_with_query_and_args_apart(harness_factory) -> None:
    seen: dict[str, Any] = {}

    async def route(session: AGISession) -> None:
        seen.update(path=session.path, query=dict(session.query), args=session.args)

    h = await harness_factory({"/ivr/identify/": route})
    block = header_block(
        "ivr/identify?lang=yue&x=1", agi_arg_1="1700000000.7", agi_arg_2="", agi_arg_3="c d"
    )
    await h.peer().connect(block)
    report = await h.report()
    assert report.outcome is SessionOutcome.OK
    assert report.path == "ivr/identify"
    assert seen == {
        "path": "ivr/identify",
        "query": {"lang": "yue", "x": "1"},
        "args": ("1700000000.7", "", "c d"),
    }


async def test_unknown_route_closes_without_commands(harness_factory) -> None:
    h = await harness_factory({"identify": lambda s: asyncio.sleep(0)})
    peer = await h.peer().connect(header_block("nowhere?x=1"))
    assert await peer.wait_closed_by_server() == b""
    report = await h.report()
    assert report.outcome is SessionOutcome.UNKNOWN_ROUTE
    assert report.path == "nowhere"


async def test_header_block_without_script_is_bad(harness_factory) -> None:
    h = await harness_factory({"identify": lambda s: asyncio.sleep(0)})
    await h.peer().connect(b"agi_network: yes\nagi_uniqueid: 1.2\n\n")
    assert (await h.report()).outcome is SessionOutcome.BAD_HEADER


# -- isolation, limits, lifecycle -------------------------------------------------------------


async def test_route_exception_stays_in_its_session(harness_factory, caplog) -> None:
    release = asyncio.Event()

    async def broken(session: AGISession) -> None:
        raise RuntimeError("bug in a flow")

    async def slow(session: AGISession) -> None:
        await release.wait()
        await session.answer()

    h = await harness_factory({"broken": broken, "slow": slow})
    slow_peer = await h.peer().connect(header_block("slow"))
    broken_peer = await h.peer().connect(header_block("broken"))
    assert await broken_peer.wait_closed_by_server() == b""
    assert (await h.report()).outcome is SessionOutcome.ROUTE_ERROR
    release.set()
    await slow_peer.expect("ANSWER", "200 result=0")
    assert (await h.report()).outcome is SessionOutcome.OK
    assert "RuntimeError" in caplog.text
    assert "张伟" not in caplog.text and "13800138000" not in caplog.text


async def test_sessions_over_the_limit_are_refused(harness_factory) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def hold(session: AGISession) -> None:
        entered.set()
        await release.wait()

    h = await harness_factory({"identify": hold}, max_sessions=1)
    await h.peer().connect(header_block())
    await asyncio.wait_for(entered.wait(), DEADLINE)
    second = await h.peer().connect(header_block())
    assert await second.wait_closed_by_server() == b""
    assert (await h.report()).outcome is SessionOutcome.BUSY
    release.set()
    assert (await h.report()).outcome is SessionOutcome.OK
    assert h.server.stats()["busy"] == 1


async def test_stop_cancels_live_sessions_and_closes_sockets(harness_factory) -> None:
    async def route(session: AGISession) -> None:
        await session.answer()

    h = await harness_factory({"identify": route}, command_timeout=60)
    peer = await h.peer().connect(header_block())
    assert await peer.next_command() == "ANSWER"  # and never answer it
    await asyncio.wait_for(h.server.stop(), DEADLINE)
    assert await peer.wait_closed_by_server() == b""
    assert (await h.report()).outcome is SessionOutcome.CANCELLED
    assert h.server.active_sessions == 0
    assert not h.server.running


async def test_silent_peer_hits_the_command_deadline(harness_factory) -> None:
    errors: list[BaseException] = []

    async def route(session: AGISession) -> None:
        try:
            await session.answer()
        except AGITimeoutError as exc:
            errors.append(exc)
            raise

    h = await harness_factory({"identify": route}, command_timeout=0.2)
    peer = await h.peer().connect(header_block())
    assert await peer.next_command() == "ANSWER"
    assert await peer.wait_closed_by_server() == b""
    assert (await h.report()).outcome is SessionOutcome.AGI_ERROR
    assert len(errors) == 1


async def test_many_concurrent_sessions(harness_factory) -> None:
    both_in = asyncio.Event()
    inside = 0

    async def route(session: AGISession) -> None:
        nonlocal inside
        inside += 1
        if inside >= 2:
            both_in.set()
        await session.answer()
        await asyncio.wait_for(both_in.wait(), DEADLINE)
        await session.set_variable("__CUSTOMER_ID", session.args[0])

    h = await harness_factory({"identify": route})
    count = 150

    async def one(i: int) -> list[str]:
        peer = await h.peer().connect(header_block(agi_arg_1=f"c{i}", agi_uniqueid=f"17.{i}"))
        log = await peer.serve(ok)
        peer.close()
        return log

    logs = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), 30)
    for i, log in enumerate(logs):
        assert log == ["ANSWER", f'SET VARIABLE __CUSTOMER_ID "c{i}"']
    outcomes = [(await h.report()).outcome for _ in range(count)]
    assert outcomes == [SessionOutcome.OK] * count
    stats = h.server.stats()
    assert stats["ok"] == count and stats["connections"] == count
    assert stats["peak_active"] >= 2
    assert stats["active"] == 0


def test_binds_loopback_by_default() -> None:
    server = AGIServer({})
    assert (server.host, server.port) == ("127.0.0.1", 4573)


# -- replies and commands -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "hungup", "timed_out"),
    [
        ("200 result=0", 200, "0", "", False, False),
        ("200 result= (timeout)", 200, "", "timeout", False, True),
        ("200 result=12 (timeout)", 200, "12", "timeout", False, True),
        ("200 result=1 (王小明)", 200, "1", "王小明", False, False),
        ("200 result=0 endpos=12345", 200, "0", "endpos=12345", False, False),
        ("200 result=-1", 200, "-1", "", True, False),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            511,
            "",
            "Command Not Permitted on a dead channel or intercept routine",
            True,
            False,
        ),
        ("510 Invalid or unknown command", 510, "", "Invalid or unknown command", False, False),
        ("HANGUP", 0, "", "HANGUP", True, False),
    ],
)
def test_parse_reply(line, code, result, data, hungup, timed_out) -> None:
    parsed = parse_reply(line)
    assert (parsed.code, parsed.result, parsed.data, parsed.hungup) == (code, result, data, hungup)
    assert parsed.timed_out is timed_out


@pytest.mark.parametrize("line", ["", "hello", "20 result=0", "200 ok", "abc result=1"])
def test_parse_reply_rejects_garbage(line: str) -> None:
    with pytest.raises(AGIProtocolError):
        parse_reply(line)


def test_quote_escapes_for_res_agi() -> None:
    assert quote("张伟") == '"张伟"'
    assert quote('say "hi"') == '"say \\"hi\\""'
    assert quote("a\\b") == '"a\\\\b"'
    assert quote("one\ntwo\r\nthree") == '"one two three"'
    assert quote("") == '""'


async def run_session(
    harness_factory, body: Callable[[AGISession], Awaitable[Any]], **kw: Any
) -> tuple[Harness, FakePeer, asyncio.Future[Any]]:
    """Start a server whose one route runs ``body`` and stores its result or exception."""
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def route(session: AGISession) -> None:
        try:
            done.set_result(await body(session))
        except BaseException as exc:
            done.set_exception(exc)
            raise

    h = await harness_factory({"identify": route}, **kw)
    peer = await h.peer().connect(header_block())
    return h, peer, done


async def test_get_data_with_and_without_digits(harness_factory) -> None:
    async def body(session: AGISession) -> list[tuple[str, bool]]:
        return [await session.get_data("beep", 3000, 4) for _ in range(3)]

    _h, peer, done = await run_session(harness_factory, body)
    assert await peer.expect("GET DATA beep 3000 4", "200 result= (timeout)")
    await peer.expect("GET DATA", "200 result=12 (timeout)")
    await peer.expect("GET DATA", "200 result=1234")
    assert await asyncio.wait_for(done, DEADLINE) == [("", True), ("12", True), ("1234", False)]


@pytest.mark.parametrize(
    "hangup_reply",
    [
        "511 Command Not Permitted on a dead channel or intercept routine",
        "200 result=-1",
        "HANGUP",
    ],
)
async def test_caller_gone_raises_and_later_commands_do_not_touch_the_socket(
    harness_factory, hangup_reply: str
) -> None:
    second: list[BaseException] = []

    async def body(session: AGISession) -> None:
        try:
            await session.get_data("beep", 1000, 1)
        except CallerGone:
            try:
                await session.answer()
            except CallerGone as exc:
                second.append(exc)
            raise

    h, peer, done = await run_session(harness_factory, body)
    await peer.expect("GET DATA", hangup_reply)
    assert await peer.wait_closed_by_server() == b""  # no second command was written
    with pytest.raises(CallerGone):
        await asyncio.wait_for(done, DEADLINE)
    assert len(second) == 1
    assert (await h.report()).outcome is SessionOutcome.CALLER_GONE
    assert peer.commands == ["GET DATA beep 1000 1"]


async def test_socket_closed_by_asterisk_is_caller_gone(harness_factory) -> None:
    async def body(session: AGISession) -> None:
        await session.answer()

    h, peer, done = await run_session(harness_factory, body)
    assert await peer.next_command() == "ANSWER"
    peer.writer.write(b"200 resu")  # half a line, then EOF
    peer.writer.write_eof()
    with pytest.raises(CallerGone):
        await asyncio.wait_for(done, DEADLINE)
    assert (await h.report()).outcome is SessionOutcome.CALLER_GONE


async def test_garbage_reply_ends_the_session(harness_factory) -> None:
    async def body(session: AGISession) -> None:
        await session.answer()

    h, peer, done = await run_session(harness_factory, body)
    await peer.expect("ANSWER", b"\xff\xfe garbage")
    with pytest.raises(AGIProtocolError):
        await asyncio.wait_for(done, DEADLINE)
    assert (await h.report()).outcome is SessionOutcome.AGI_ERROR


async def test_usage_error_trying_lines_and_invalid_command(harness_factory) -> None:
    async def body(session: AGISession) -> list[Any]:
        out: list[Any] = []
        for line in ("GET DATA", "FOO BAR", "ANSWER"):
            try:
                out.append((await session.command(line)).result)
            except AGICommandError as exc:
                out.append(exc.result.code)
        return out

    _h, peer, done = await run_session(harness_factory, body)
    await peer.expect(
        "GET DATA",
        "520-Invalid command syntax.  Proper usage follows:",
        " Usage: GET DATA <file to be streamed> [timeout] [max digits]",
        "520 End of proper usage.",
    )
    await peer.expect("FOO BAR", "510 Invalid or unknown command")
    await peer.expect("ANSWER", "100 result=0 Trying...", "200 result=0")
    assert await asyncio.wait_for(done, DEADLINE) == [520, 510, "0"]


async def test_stream_file_digit_and_missing_prompt(harness_factory) -> None:
    async def body(session: AGISession) -> list[str | None]:
        return [
            await session.stream_file("beep", "123"),
            await session.stream_file("no-such-file"),
            await session.stream_file("beep"),
        ]

    _h, peer, done = await run_session(harness_factory, body)
    await peer.expect('STREAM FILE beep "123"', "200 result=50 endpos=1200")
    await peer.expect('STREAM FILE no-such-file ""', "200 result=-1 endpos=0")
    await peer.expect("CHANNEL STATUS", "200 result=6")  # still up: the file was missing
    await peer.expect("STREAM FILE beep", "200 result=0 endpos=8000")
    assert await asyncio.wait_for(done, DEADLINE) == ["2", None, None]


async def test_stream_file_hangup_during_playback(harness_factory) -> None:
    async def body(session: AGISession) -> None:
        await session.stream_file("beep")

    _h, peer, done = await run_session(harness_factory, body)
    await peer.expect("STREAM FILE beep", "200 result=-1 endpos=0")
    peer.writer.write_eof()  # Asterisk closes after a failed command on a hung-up channel
    with pytest.raises(CallerGone):
        await asyncio.wait_for(done, DEADLINE)


async def test_set_variable_quotes_chinese_and_quotes(harness_factory) -> None:
    async def body(session: AGISession) -> str | None:
        await session.set_variable("__CUSTOMER_NAME", '王"小"明 \\ x')
        await session.set_variable("CHANNEL(language)", "zh")
        await session.verbose("hello world", 9)
        await session.user_event("IvrStep", {"Step": "dialect:cantonese, again\n"})
        return await session.get_variable("CHANNEL(linkedid)")

    _h, peer, done = await run_session(harness_factory, body)
    line = await peer.expect("SET VARIABLE", "200 result=1")
    assert line == 'SET VARIABLE __CUSTOMER_NAME "王\\"小\\"明 \\\\ x"'
    await peer.expect('SET VARIABLE CHANNEL(language) "zh"', "200 result=1")
    await peer.expect('VERBOSE "hello world" 4', "200 result=1")
    await peer.expect('EXEC UserEvent "IvrStep,Step: dialect:cantonese  again"', "200 result=0")
    await peer.expect(
        'EXEC CELGenUserEvent "IvrStep,Step=dialect:cantonese%2C+again%0A"', "200 result=0"
    )
    await peer.expect("GET VARIABLE CHANNEL(linkedid)", "200 result=1 (1700000000.7)")
    assert await asyncio.wait_for(done, DEADLINE) == "1700000000.7"


async def test_bad_arguments_never_reach_the_wire(harness_factory) -> None:
    async def body(session: AGISession) -> list[str]:
        out = []
        for call in (
            lambda: session.set_variable("BAD NAME", "x"),
            lambda: session.set_variable('X"; HANGUP', "x"),
            lambda: session.command("ANSWER\nHANGUP"),
            lambda: session.stream_file("../../etc/passwd"),
            lambda: session.stream_file("beep", "12a"),
            lambda: session.exec("Sys tem", "x"),
        ):
            try:
                await call()
            except ValueError as exc:
                out.append(type(exc).__name__)
        await session.answer()
        return out

    _h, peer, done = await run_session(harness_factory, body)
    await peer.expect("ANSWER", "200 result=0")
    assert await asyncio.wait_for(done, DEADLINE) == ["ValueError"] * 6
    assert peer.commands == ["ANSWER"]

"""AMIBridge against an in-process fake Asterisk on 127.0.0.1 (random port).

The fake speaks just enough AMI: banner, Login (+ FullyBooted), Ping, CoreShowChannels,
QueueAdd and Originate. Tests wait on conditions with timeouts, never on sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hotline.ami.bridge import AMIActionTimeoutError, AMIBridge
from hotline.ami.events import AMIEvent
from hotline.ami.framing import AMIFramer

USER = "hotline"
SECRET = "s3cr3t-Value-42"


def frame(**headers: str) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


class FakeAMI:
    """A scripted Asterisk manager interface; one instance serves many connections."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.channels: list[tuple[str, str]] = [("1700000000.1", "1700000000.1")]
        self.after_list: bytes = b""  # written in the same chunk as the list's end
        self.silent_connections: set[int] = set()  # connection numbers that ignore Pings
        self.login_attempts = 0
        self.actions: list[dict[str, str]] = []
        self.changed = asyncio.Condition()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def push(self, data: bytes) -> None:
        writer = self.writers[-1]
        writer.write(data)
        await writer.drain()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 2.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = len(self.writers)
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = raw.decode().split("\r\n")
                action = dict(line.split(": ", 1) for line in lines if ": " in line)
                self.actions.append(action)
                if not await self._answer(number, action, writer):
                    return
                await writer.drain()
                await self._notify()
        finally:
            writer.close()
            await self._notify()

    async def _answer(self, number: int, action: dict[str, str], writer: Any) -> bool:
        name, action_id = action.get("Action"), action.get("ActionID", "")
        if name == "Login":
            self.login_attempts += 1
            if action.get("Username") != USER or action.get("Secret") != SECRET:
                writer.write(
                    frame(Response="Error", ActionID=action_id, Message="Authentication failed")
                )
                await writer.drain()
                return False  # Asterisk hangs up after a refused login
            writer.write(
                frame(Response="Success", ActionID=action_id, Message="Authentication accepted")
                + frame(Event="FullyBooted", Privilege="system,all", Status="Fully Booted")
            )
        elif name == "Ping":
            if number not in self.silent_connections:
                writer.write(frame(Response="Success", ActionID=action_id, Ping="Pong"))
        elif name == "CoreShowChannels":
            data = frame(
                Response="Success",
                ActionID=action_id,
                EventList="start",
                Message="Channels will follow",
            )
            for uniqueid, linkedid in self.channels:
                data += frame(
                    Event="CoreShowChannel",
                    ActionID=action_id,
                    Uniqueid=uniqueid,
                    Linkedid=linkedid,
                    ChanVariable="CUSTOMER_ID=42",
                )
            data += frame(
                Event="CoreShowChannelsComplete",
                ActionID=action_id,
                EventList="Complete",
                ListItems=str(len(self.channels)),
            )
            writer.write(data + self.after_list)
        elif name == "QueueAdd":
            writer.write(
                frame(Response="Success", ActionID=action_id, Message="Added interface to queue")
            )
        elif name == "Originate":
            writer.write(
                frame(
                    Response="Success", ActionID=action_id, Message="Originate successfully queued"
                )
                + frame(
                    Event="OriginateResponse",
                    ActionID=action_id,
                    Response="Success",
                    Channel=action.get("Channel", ""),
                    Uniqueid=action.get("ChannelId", ""),
                    Reason="4",
                )
            )
        else:
            writer.write(
                frame(Response="Error", ActionID=action_id, Message="Invalid/unknown command")
            )
        return True


class Collector:
    """A subscriber that lets a test wait until it has seen enough."""

    def __init__(self) -> None:
        self.events: list[AMIEvent] = []
        self.changed = asyncio.Event()

    def __call__(self, event: AMIEvent) -> None:
        self.events.append(event)
        self.changed.set()

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.events]

    async def wait_for(
        self, predicate: Callable[[list[AMIEvent]], bool], timeout: float = 2.0
    ) -> None:
        async def loop() -> None:
            while not predicate(self.events):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAMI]:
    server = FakeAMI()
    await server.start()
    yield server
    await server.close()


def make_bridge(fake: FakeAMI, secret: str = SECRET, **kwargs: Any) -> AMIBridge:
    options: dict[str, Any] = {"ping_interval": 5.0, "ping_timeout": 1.0, "reconnect_delay": 0.05}
    options.update(kwargs)
    return AMIBridge("127.0.0.1", fake.port, USER, secret, **options)


async def test_login_resync_then_live_events_in_order(fake: FakeAMI) -> None:
    fake.channels = [("1700000000.1", "1700000000.1"), ("1700000000.2", "1700000000.1")]
    # Events written right after the list's end, in the same TCP chunk, must come after
    # the resync marker: the tracker would otherwise close a call it just saw starting.
    fake.after_list = frame(Event="Newchannel", Uniqueid="1700000000.3", Linkedid="1700000000.3")
    bridge = make_bridge(fake)
    seen = Collector()
    bridge.subscribe(seen)
    hook_calls: list[bool] = []

    async def hook(b: AMIBridge) -> None:
        hook_calls.append(b.connected)

    bridge.add_login_hook(hook)
    await bridge.start()
    try:
        assert await bridge.wait_connected(2)
        await seen.wait_for(lambda evs: any(e.name == "Newchannel" for e in evs))
        await fake.push(b"".join(frame(Event="Newstate", Uniqueid=f"9.{i}") for i in range(50)))
        await seen.wait_for(lambda evs: len(evs) >= 55)
        # The listing's items reach the consumer (the tracker adopts live calls from
        # them), then the marker, then what came after the list.
        assert seen.names[:5] == [
            "FullyBooted",
            "CoreShowChannel",
            "CoreShowChannel",
            "HotlineResync",
            "Newchannel",
        ]
        assert [e["Uniqueid"] for e in seen.events[1:3]] == ["1700000000.1", "1700000000.2"]
        resync = seen.events[3]
        assert resync["Uniqueids"] == "1700000000.1 1700000000.2"
        assert resync["Linkedids"] == "1700000000.1 1700000000.1"
        assert [e.uniqueid for e in seen.events[5:]] == [f"9.{i}" for i in range(50)]
        assert hook_calls == [True]
        stats = bridge.stats()
        assert stats["connected"] is True
        assert stats["version"] == "9.0.0"
        assert stats["events"] == 52  # FullyBooted + Newchannel + 50 Newstate
        assert stats["reconnects"] == 0
    finally:
        await bridge.stop()
    assert not bridge.connected


async def test_raising_subscriber_loses_no_events_nor_the_link(fake: FakeAMI) -> None:
    bridge = make_bridge(fake)
    seen = Collector()

    def broken(event: AMIEvent) -> None:
        if event.name == "Boom":
            raise RuntimeError("subscriber bug")

    bridge.subscribe(broken)
    bridge.subscribe(seen)
    await bridge.start()
    try:
        assert await bridge.wait_connected(2)
        await seen.wait_for(lambda evs: "HotlineResync" in [e.name for e in evs])
        await fake.push(frame(Event="A") + frame(Event="Boom") + frame(Event="B"))
        await seen.wait_for(lambda evs: evs[-1].name == "B")
        assert seen.names[-3:] == ["A", "Boom", "B"]
        await fake.push(frame(Event="C"))
        await seen.wait_for(lambda evs: evs[-1].name == "C")
        assert bridge.connected
        assert bridge.stats()["handler_errors"] == 1
        assert len(fake.writers) == 1  # never reconnected
    finally:
        await bridge.stop()


async def test_bad_credentials_log_one_clear_error_without_the_secret(
    fake: FakeAMI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "WRONG-" + SECRET
    bridge = make_bridge(fake, secret=wrong)
    await bridge.start()
    try:
        await fake.wait_for(lambda: fake.login_attempts >= 3)  # it keeps retrying
        assert not bridge.connected
        assert not await bridge.wait_connected(0.05)
    finally:
        await bridge.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert "login refused" in message and USER in message and "Authentication failed" in message
    assert SECRET not in caplog.text and wrong not in caplog.text
    assert bridge.stats()["login_failures"] >= 3


async def test_watchdog_reconnects_a_half_open_link_and_resyncs(
    fake: FakeAMI, caplog: pytest.LogCaptureFixture
) -> None:
    fake.silent_connections = {0}  # the first connection stops answering Pings
    bridge = make_bridge(fake, ping_interval=0.05, ping_timeout=0.1)
    seen = Collector()
    bridge.subscribe(seen)
    await bridge.start()
    try:
        await seen.wait_for(lambda evs: [e.name for e in evs].count("HotlineResync") >= 2)
        names = [n for n in seen.names if n.startswith("Hotline")]
        assert names[:3] == ["HotlineResync", "HotlineDisconnected", "HotlineResync"]
        assert len(fake.writers) >= 2
        stats = bridge.stats()
        assert stats["reconnects"] >= 1
        assert stats["watchdog_timeouts"] >= 1
        assert bridge.connected
        assert "lost (no Ping answer)" in caplog.text
    finally:
        await bridge.stop()


async def test_queueadd_and_originate_resolve(fake: FakeAMI) -> None:
    bridge = make_bridge(fake)
    await bridge.start()
    try:
        assert await bridge.wait_connected(2)
        added = await bridge.send_action(
            {"Action": "QueueAdd", "Queue": "support-wu", "Interface": "PJSIP/1001"}, timeout=1
        )
        assert added.message == "Added interface to queue"
        result = await bridge.send_action(
            {"Action": "Originate", "Channel": "PJSIP/1001", "Exten": "4000"}, timeout=1
        )
        assert isinstance(result, list) and len(result) == 2
        response, originate = result
        assert response.success and originate.event == "OriginateResponse"
        sent = next(a for a in fake.actions if a.get("Action") == "Originate")
        assert sent["Async"] == "true"
        assert sent["ChannelId"] and originate.uniqueid == sent["ChannelId"]
        refused = await bridge.send_action({"Action": "NoSuchThing"}, as_list=True, timeout=1)
        assert refused.response == "Error"  # 1.4 would wait forever with as_list=True
    finally:
        await bridge.stop()


async def test_unanswered_action_times_out_and_is_withdrawn(fake: FakeAMI) -> None:
    fake.silent_connections = {0}
    bridge = make_bridge(fake)
    await bridge.start()
    try:
        assert await bridge.wait_connected(2)
        with pytest.raises(AMIActionTimeoutError):
            await bridge.send_action({"Action": "Ping"}, timeout=0.1)
        pending = bridge._manager.protocol.responses.values()
        assert not [a for a in pending if a["Action"] == "Ping"]  # no leak, no resend later
        assert bridge.connected  # a timed-out action alone does not drop the link
    finally:
        await bridge.stop()


async def test_stop_drains_queued_events_and_does_not_reconnect(fake: FakeAMI) -> None:
    bridge = make_bridge(fake)
    seen = Collector()
    bridge.subscribe(seen)
    await bridge.start()
    assert await bridge.wait_connected(2)
    await seen.wait_for(lambda evs: "HotlineResync" in [e.name for e in evs])
    for i in range(5):
        bridge._sink(AMIEvent(name="Queued", headers={"N": str(i)}))
    await bridge.stop()
    assert [e["N"] for e in seen.events if e.name == "Queued"] == ["0", "1", "2", "3", "4"]
    assert not bridge.connected
    await fake.wait_for(lambda: all(w.is_closing() for w in fake.writers))
    assert len(fake.writers) == 1


async def test_record_to_writes_the_raw_stream_for_fixtures(fake: FakeAMI, tmp_path: Path) -> None:
    path = tmp_path / "lab" / "session.ami"
    bridge = make_bridge(fake, record_to=path)
    seen = Collector()
    bridge.subscribe(seen)
    await bridge.start()
    try:
        await seen.wait_for(lambda evs: "HotlineResync" in [e.name for e in evs])
        await fake.push(frame(Event="Hangup", Uniqueid="1700000000.1", CallerIDName="张伟客户"))
        await seen.wait_for(lambda evs: evs[-1].name == "Hangup")
    finally:
        await bridge.stop()
    framer = AMIFramer()
    frames = framer.feed(path.read_bytes())
    assert framer.version == "9.0.0"  # the banner is recorded too
    assert [f.name for f in frames if f.name][-1] == "Hangup"
    assert frames[-1].headers["CallerIDName"] == "张伟客户"
    assert any(f.name == "CoreShowChannel" for f in frames)

"""SafeAMIProtocol: events to the sink, action frames to panoramisk, errors contained.

Drives the protocol directly with bytes and a fake transport (no socket), the simplest way
to reproduce panoramisk 1.4's own failure modes (see hotline/ami/manager.py).
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from panoramisk import Manager

from hotline.ami.events import AMIEvent
from hotline.ami.protocol import SafeAMIProtocol


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class RecordingManager(Manager):
    """A panoramisk Manager that records reconnect requests instead of connecting."""

    def __init__(self, **config: Any) -> None:
        super().__init__(loop=asyncio.get_running_loop(), **config)
        self.lost: list[Any] = []

    def connection_lost(self, exc: Any) -> None:
        self.lost.append(exc)


def wire(*frames: str) -> bytes:
    return "".join(f.strip("\n").replace("\n", "\r\n") + "\r\n\r\n" for f in frames).encode()


def make_protocol(*, sink: bool = True) -> tuple[SafeAMIProtocol, RecordingManager, list[AMIEvent]]:
    manager = RecordingManager()
    events: list[AMIEvent] = []
    if sink:
        manager.event_sink = events.append
    protocol = SafeAMIProtocol(factory=manager)
    protocol.connection_made(FakeTransport())
    protocol.encoding = "utf8"
    manager.protocol = protocol
    return protocol, manager, events


async def test_events_reach_sink_in_order_with_receive_time() -> None:
    protocol, _, events = make_protocol()
    data = b"Asterisk Call Manager/9.0.0\r\n" + wire(
        "Event: Newchannel\nUniqueid: 1.1\nCallerIDName: 张伟客户\nChanVariable: CUSTOMER_ID=42",
        "Event: Newstate\nUniqueid: 1.1",
        "Event: Hangup\nUniqueid: 1.1",
    )
    split = data.index("张".encode()) + 1  # cut inside the first character
    protocol.data_received(data[:split])
    protocol.data_received(data[split:])
    assert [e.name for e in events] == ["Newchannel", "Newstate", "Hangup"]
    assert events[0]["CallerIDName"] == "张伟客户"
    assert events[0].var("CUSTOMER_ID") == "42"
    assert all(e.received > 0 for e in events)
    assert protocol.version == "9.0.0"
    assert protocol.stats.events_sunk == 3


async def test_raising_sink_loses_nothing_after_it() -> None:
    protocol, _, _ = make_protocol()
    seen: list[str] = []

    def sink(event: AMIEvent) -> None:
        seen.append(event.name)
        if event.name == "Boom":
            raise ValueError("subscriber bug")

    protocol.factory.event_sink = sink
    protocol.data_received(wire("Event: Newchannel", "Event: Boom", "Event: Hangup"))
    assert seen == ["Newchannel", "Boom", "Hangup"]
    assert protocol.stats.handler_errors == 1
    assert not protocol.transport.closed


async def test_eventlist_items_resolve_the_action_not_the_sink() -> None:
    protocol, manager, events = make_protocol()
    future = manager.send_action({"Action": "CoreShowChannels", "ActionID": "csc-1"})
    protocol.data_received(
        wire(
            "Response: Success\nActionID: csc-1\nEventList: start\nMessage: Channels will follow",
            "Event: Newstate\nUniqueid: 7.7",  # a live event interleaved: goes to the sink
            "Event: CoreShowChannel\nActionID: csc-1\nUniqueid: 1.1\nChanVariable: VIP=1",
            "Event: CoreShowChannel\nActionID: other\nUniqueid: 2.2",  # not ours: sink
            "Event: CoreShowChannelsComplete\nActionID: csc-1\nEventList: Complete\nListItems: 1",
        )
    )
    result = await asyncio.wait_for(future, 1)
    assert [m.get("Event", m.get("Response")) for m in result] == [
        "Success",
        "CoreShowChannel",
        "CoreShowChannelsComplete",
    ]
    assert result[1].getdict("ChanVariable")["VIP"] == "1"
    assert [(e.name, e.uniqueid) for e in events] == [
        ("Newstate", "7.7"),
        ("CoreShowChannel", "2.2"),
    ]
    assert "csc-1" not in protocol.responses


async def test_sync_originate_keyerror_fails_the_action_but_keeps_the_link() -> None:
    # panoramisk 1.4 raises KeyError on "successfully queued" without an Async header.
    protocol, manager, events = make_protocol()
    future = manager.send_action({"Action": "Originate", "ActionID": "o1", "Channel": "PJSIP/1"})
    protocol.data_received(
        wire(
            "Response: Success\nActionID: o1\nMessage: Originate successfully queued",
            "Event: Newchannel\nUniqueid: 3.3",
        )
    )
    with pytest.raises(RuntimeError, match="o1"):
        await asyncio.wait_for(future, 1)
    assert protocol.stats.handler_errors == 1
    assert "o1" not in protocol.responses
    assert [e.name for e in events] == ["Newchannel"]
    assert not protocol.transport.closed


async def test_shutdown_event_is_delivered_and_triggers_reconnect() -> None:
    protocol, manager, events = make_protocol()
    protocol.data_received(wire("Event: Shutdown\nShutdown: Cleanly\nRestart: True"))
    assert [e.name for e in events] == ["Shutdown"]
    assert len(manager.lost) == 1 and manager.lost[0]["Event"] == "Shutdown"
    assert protocol.transport.closed


async def test_fullybooted_still_reaches_panoramisk_callbacks() -> None:
    protocol, manager, events = make_protocol()
    booted: list[str] = []
    manager.register_event("FullyBooted", lambda mgr, msg: booted.append(msg.event))
    manager.register_event("Newchannel", lambda mgr, msg: booted.append(msg.event))
    protocol.data_received(wire("Event: FullyBooted\nStatus: Fully Booted", "Event: Newchannel"))
    assert booted == ["FullyBooted"]  # with a sink, only the pass-through events
    assert [e.name for e in events] == ["FullyBooted", "Newchannel"]


async def test_without_sink_panoramisk_dispatch_is_used_and_isolated() -> None:
    protocol, manager, _ = make_protocol(sink=False)
    seen: list[str] = []

    def handler(mgr: Manager, message: Any) -> None:
        seen.append(message.event)
        if message.event == "Newchannel":
            raise ValueError("handler bug")  # 1.4 would drop the link and the Hangup

    manager.register_event("*", handler)
    protocol.data_received(wire("Event: Newchannel", "Event: Hangup"))
    assert seen == ["Newchannel", "Hangup"]
    assert protocol.stats.handler_errors == 1
    assert not protocol.transport.closed


async def test_garbage_between_events_is_counted_not_fatal() -> None:
    protocol, _, events = make_protocol()
    protocol.data_received(wire("Event: A") + b"\xff\xfe\x00junk\r\n\r\n" + wire("Event: B"))
    assert [e.name for e in events] == ["A", "B"]
    assert protocol.framer.stats.garbage_frames == 1


async def test_record_stream_gets_every_chunk_verbatim() -> None:
    protocol, manager, _ = make_protocol()
    manager.record_stream = io.BytesIO()
    chunks = [b"Asterisk Call Manager/9.0.0\r\nEvent: A\r", b"\n\r\n\xe5\xbc", b"\xa0"]
    for chunk in chunks:
        protocol.data_received(chunk)
    assert manager.record_stream.getvalue() == b"".join(chunks)

"""AMIFramer: the same frames whatever the TCP chunking, and junk never raises.

Every sample stream (the inline one below plus any recorded ``tests/fixtures/ami/**/*.ami``)
is framed whole, one byte at a time and at random split points, and all three must agree
(the h11 ``tr()`` pattern). A recorded lab fixture therefore gets these checks for free.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from hotline.ami.framing import AMIFramer, Frame

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"

CRLF = "\r\n"


def ami(*frames: str, banner: str | None = "Asterisk Call Manager/9.0.0") -> bytes:
    """Build wire bytes from frames written with plain newlines."""
    head = banner + CRLF if banner else ""
    body = "".join(frame.strip("\n").replace("\n", CRLF) + CRLF + CRLF for frame in frames)
    return (head + body).encode("utf-8")


QUEUE_CALL = ami(
    """
Response: Success
ActionID: action/login/1/1
Message: Authentication accepted
""",
    """
Event: FullyBooted
Privilege: system,all
Uptime: 3600
LastReload: 3600
Status: Fully Booted
""",
    """
Event: Newchannel
Privilege: call,all
Channel: PJSIP/trunk-00000001
ChannelState: 0
ChannelStateDesc: Down
CallerIDNum: 13800138000
CallerIDName: 张伟客户
ConnectedLineNum: <unknown>
ConnectedLineName: <unknown>
Language: zh
AccountCode:
Context: from-trunk
Exten: 4000
Priority: 1
Uniqueid: 1700000000.1
Linkedid: 1700000000.1
ChanVariable: CUSTOMER_ID=
""",
    """
Event: QueueCallerJoin
Privilege: agent,all
Channel: PJSIP/trunk-00000001
CallerIDNum: 13800138000
CallerIDName: 张伟客户
Uniqueid: 1700000000.1
Linkedid: 1700000000.1
ChanVariable: CUSTOMER_ID=42
ChanVariable: DIALECT=wu
ChanVariable: VIP=1
Queue: support-wu
Position: 1
Count: 1
""",
    """
Event: AgentCalled
Privilege: agent,all
Channel: PJSIP/trunk-00000001
CallerIDName: محمد
Uniqueid: 1700000000.1
Linkedid: 1700000000.1
ChanVariable: CUSTOMER_ID=42
DestChannel: PJSIP/1001-00000002
DestUniqueid: 1700000000.2
DestLinkedid: 1700000000.1
DestChanVariable: CUSTOMER_ID=42
Queue: support-wu
Interface: PJSIP/1001
MemberName: agent-1001
""",
    """
Event: Hangup
Privilege: call,all
Channel: PJSIP/trunk-00000001
Uniqueid: 1700000000.1
Linkedid: 1700000000.1
Cause: 16
Cause-txt: Normal Clearing
""",
)


def frame_all(data: bytes, cuts: list[int]) -> tuple[AMIFramer, list[Frame]]:
    framer = AMIFramer()
    frames: list[Frame] = []
    start = 0
    for cut in [*cuts, len(data)]:
        frames.extend(framer.feed(data[start:cut]))
        start = cut
    return framer, frames


def sample_streams() -> list[pytest.param]:
    params = [pytest.param(QUEUE_CALL, id="inline-queue-call")]
    for path in sorted(FIXTURES.glob("**/*.ami")):
        params.append(pytest.param(path.read_bytes(), id=str(path.relative_to(FIXTURES))))
    return params


@pytest.mark.parametrize("data", sample_streams())
def test_chunking_never_changes_frames(data: bytes) -> None:
    whole_framer, whole = frame_all(data, [])
    assert whole, "a sample stream must contain frames"
    _, bytewise = frame_all(data, list(range(1, len(data))))
    assert bytewise == whole
    rng = random.Random(len(data))
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(1, 40))))
        framer, frames = frame_all(data, cuts)
        assert frames == whole, f"cuts={cuts}"
        assert framer.version == whole_framer.version
        assert framer.stats == whole_framer.stats


def test_inline_sample_parses_as_expected() -> None:
    framer, frames = frame_all(QUEUE_CALL, [])
    assert framer.version == "9.0.0"
    assert [f.name for f in frames] == [
        None,
        "FullyBooted",
        "Newchannel",
        "QueueCallerJoin",
        "AgentCalled",
        "Hangup",
    ]
    assert frames[0].is_response and frames[0].action_id == "action/login/1/1"
    stats = framer.stats
    assert (stats.frames, stats.events, stats.responses) == (6, 5, 1)
    assert (stats.garbage_frames, stats.bad_lines) == (0, 0)
    newchannel = frames[2].to_event(12.5)
    assert newchannel.name == "Newchannel"
    assert newchannel["CallerIDName"] == "张伟客户"
    assert newchannel["AccountCode"] == ""  # "Key:" with nothing after the colon
    assert newchannel.received == 12.5
    assert newchannel.var("CUSTOMER_ID") == ""


def test_chanvariable_is_always_a_dict() -> None:
    _, frames = frame_all(QUEUE_CALL, [])
    single = frames[2].to_event()
    multi = frames[3].to_event()
    assert single.chanvars == {"ChanVariable": {"CUSTOMER_ID": ""}}
    assert multi.chanvars == {"ChanVariable": {"CUSTOMER_ID": "42", "DIALECT": "wu", "VIP": "1"}}
    assert "ChanVariable" not in multi.headers
    called = frames[4].to_event()
    assert called.var("CUSTOMER_ID") == "42"
    assert called.var("CUSTOMER_ID", prefix="Dest") == "42"
    assert called["CallerIDName"] == "محمد"
    assert frames[5].to_event().chanvars == {}


def test_chinese_name_split_mid_character_survives() -> None:
    data = ami("Event: Newchannel\nCallerIDName: 张伟客户\nUniqueid: 1.1", banner=None)
    first_char = data.index("张".encode())
    for cut in range(first_char + 1, first_char + 3):  # inside the 3-byte sequence
        _, frames = frame_all(data, [cut])
        assert frames[0].headers["CallerIDName"] == "张伟客户"


def test_non_utf8_bytes_become_replacement_chars() -> None:
    data = b"Event: Newchannel\r\nCallerIDName: Jos\xe9 \xff\xfe\r\nUniqueid: 1.2\r\n\r\n"
    framer, frames = frame_all(data, [25])
    assert frames[0].headers["CallerIDName"] == "Jos\ufffd \ufffd\ufffd"
    assert frames[0].headers["Uniqueid"] == "1.2"
    assert framer.stats.events == 1


def test_garbage_frames_are_skipped_and_counted() -> None:
    data = (
        ami("Event: Newchannel\nUniqueid: 1.1", banner="Asterisk Call Manager/5.0.1")
        + b"\x00\x01\x02binary junk\xff\r\n\r\n"
        + b"no colon here\r\nKey: but no Event nor Response\r\n\r\n"
        + ami("Event: Hangup\nUniqueid: 1.1\nthis line has no colon\nCause:16", banner=None)
    )
    framer, frames = frame_all(data, [])
    assert [f.name for f in frames] == ["Newchannel", "Hangup"]
    assert frames[1].headers["Cause"] == "16"  # "Key:Value" without the space
    assert framer.version == "5.0.1"
    assert framer.stats.garbage_frames == 2
    assert framer.stats.bad_lines == 1
    assert framer.stats.frames == 4


def test_oversized_buffer_is_discarded_and_framing_recovers() -> None:
    framer = AMIFramer(max_buffer=1024)
    assert framer.feed(b"Event: Huge\r\nData: " + b"x" * 2000) == []
    assert framer.stats.oversize_discards == 1
    assert framer.buffered == 0
    frames = framer.feed(b"x" * 100 + b"\r\n\r\nEvent: Next\r\nUniqueid: 9.9\r\n\r\n")
    assert [f.name for f in frames] == ["Next"]


def test_banner_without_frames_and_eof() -> None:
    framer = AMIFramer()
    assert framer.feed(b"Asterisk Call") == []
    assert framer.version is None
    assert framer.feed(b" Manager/9.1.0\r\n") == []
    assert framer.version == "9.1.0"
    assert framer.feed(b"Event: Half") == []
    assert framer.feed(b"") == []  # EOF drops the half frame
    assert framer.buffered == 0


def test_banner_heading_a_later_frame_is_consumed() -> None:
    # Two recorded connections concatenated: the second banner must not become junk.
    data = ami("Event: A") + ami("Event: B", banner="Asterisk Call Manager/9.0.1")
    framer, frames = frame_all(data, [])
    assert [f.name for f in frames] == ["A", "B"]
    assert framer.version == "9.0.1"
    assert framer.stats.bad_lines == 0


def test_repeated_headers_and_message_conversion() -> None:
    data = ami(
        """
Response: Success
ActionID: a1
Message: Command output follows
Output: line one
Output: line two
""",
        """
Event: CoreShowChannel
ActionID: a2
Uniqueid: 1.1
ChanVariable: CUSTOMER_ID=42
""",
        banner=None,
    )
    _, (response, item) = frame_all(data, [])
    assert response.headers["Output"] == "line one"
    assert response.repeated == {"Output": ["line one", "line two"]}
    message = response.to_message()
    assert message.success
    assert message.output == ["line one", "line two"]
    assert message.frame is response
    item_message = item.to_message()
    assert item_message.uniqueid == "1.1"
    assert item_message.getdict("ChanVariable")["customer_id"] == "42"  # 1.4 raises on a str


def test_random_bytes_never_raise() -> None:
    rng = random.Random(1234)
    alphabet = b"Event: Response:\r\n\xe5\xbc\xa0\xff=ab"
    for _ in range(300):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        framer = AMIFramer(max_buffer=128)
        cuts = sorted(rng.sample(range(1, len(data)), k=min(5, len(data) - 1))) if data else []
        start = 0
        for cut in [*cuts, len(data)]:
            for frame in framer.feed(data[start:cut]):
                assert "Event" in frame.headers or "Response" in frame.headers
            start = cut

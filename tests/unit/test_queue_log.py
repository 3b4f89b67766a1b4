"""queue_log recount: Asterisk's own log, counted as the wallboard counts (docs/wallboard.md).

The lines are written as Asterisk 22's app_queue writes them (``queue_log_to_file``,
``log_membername_as_agent = yes``). The last test is a small version of the lab
cross-check in tests/e2e/test_wallboard.py: the queue_log Asterisk wrote for the recorded
lab calls, counted here, equals what LiveState and the call tracker make of the AMI
recordings of the same calls.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from hotline.calls.records import Outcome
from hotline.live.queue_log import (
    QueueLogCounter,
    QueueLogEntry,
    count_queue_log,
    parse,
)
from hotline.live.state import LiveState
from hotline.record.entries import parse_queue_log_line as parse_line
from tests.support.replay import final_records, read_ami

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"

# 2026-03-02 09:00 Asia/Shanghai = 1772413200
MIXED = """\
1772413200|NONE|NONE|NONE|QUEUESTART|
1772413200|NONE|cantonese|1001|ADDMEMBER|
1772413201|1772413201.1|cantonese|NONE|ENTERQUEUE||13800000001|1
1772413211|1772413201.1|cantonese|1001|CONNECT|10|1772413209.2|2
1772413271|1772413201.1|cantonese|1001|COMPLETECALLER|10|60|1
1772413300|1772413300.3|cantonese|NONE|ENTERQUEUE||13800000002|1
1772413315|1772413300.3|cantonese|1002|RINGNOANSWER|15000
1772413330|1772413300.3|cantonese|1001|CONNECT|30|1772413316.4|15
1772413450|1772413300.3|cantonese|1001|COMPLETEAGENT|30|120|1
1772413500|1772413500.5|cantonese|NONE|ENTERQUEUE||13800000003|1
1772413525|1772413500.5|cantonese|NONE|ABANDON|1|1|25
1772413600|1772413600.6|cantonese|NONE|ENTERQUEUE||13800000004|2
1772413608|1772413600.6|cantonese|NONE|ABANDON|1|2|8
1772413700|1772413700.7|cantonese|NONE|ENTERQUEUE||13800000005|1
1772413703|1772413700.7|cantonese|NONE|ABANDON|1|1|3
1772413800|1772413800.8|cantonese|NONE|ENTERQUEUE||13800000006|1
1772413860|1772413800.8|cantonese|NONE|EXITWITHTIMEOUT|1|1|60
1772413900|1772413900.9|cantonese|NONE|ENTERQUEUE||13800000007|1
1772413905|1772413900.9|cantonese|NONE|EXITEMPTY|1|1|5
1772414000|1772414000.10|cantonese|NONE|ENTERQUEUE||13800000008|1
1772414004|1772414000.10|cantonese|NONE|EXITWITHKEY|2|1|1|4
1772414100|NONE|cantonese|1001|PAUSE|lunch
1772414200|NONE|cantonese|1001|UNPAUSE|
"""


def test_parse_line_fields() -> None:
    entry = parse_line("1772413211|1772413201.1|cantonese|1001|CONNECT|10|1772413209.2|2\n")
    assert entry == QueueLogEntry(
        1772413211.0, "1772413201.1", "cantonese", "1001", "CONNECT", ("10", "1772413209.2", "2")
    )
    assert entry.field(1) == "10" and entry.field(3) == "2" and entry.field(9) == ""


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "a|b|c|d|e",
        "1|2|3|4",
        "nan|x|q|NONE|ABANDON|1|1|1",
        "-5|x|q|a|ABANDON",
        "1|x|q|a|",
    ],
)
def test_parse_line_refuses_garbage(line: str) -> None:
    assert parse_line(line) is None


def test_mixed_day_figures() -> None:
    [(name, counts)] = count_queue_log(MIXED.splitlines()).items()
    assert name == "cantonese"
    assert counts.counts == {
        Outcome.ANSWERED: 2,
        Outcome.ABANDONED: 2,
        Outcome.SHORT_ABANDONED: 1,
        Outcome.TIMEOUT: 1,
        Outcome.OVERFLOW: 2,
    }
    assert counts.entered == 8
    assert (counts.answered_within_sl, counts.abandoned_within_sl) == (1, 1)
    assert counts.service_level == pytest.approx(1 / 2)
    assert counts.service_level2 == pytest.approx(2 / 4)
    assert counts.asa == pytest.approx(20)
    assert counts.abandon_rate == pytest.approx(2 / (2 + 2 + 1 + 2))
    assert (counts.handled, counts.talk) == (2, 180)
    assert counts.as_dict()["counts"]["short_abandoned"] == 1


def test_thresholds_are_options() -> None:
    counts = count_queue_log(
        MIXED.splitlines(), short_abandon_seconds=2, service_level_seconds={"cantonese": 30}
    )["cantonese"]
    assert counts.counts[Outcome.ABANDONED] == 3
    assert counts.counts[Outcome.SHORT_ABANDONED] == 0
    assert counts.service_level == 1.0


def test_duplicated_lines_count_once_and_garbage_is_counted() -> None:
    lines = MIXED.splitlines()
    counter = QueueLogCounter()
    counter.feed_lines([*lines, *lines[3:6], "not a queue_log line", ""])
    assert counter.queues["cantonese"].counts[Outcome.ANSWERED] == 2
    assert counter.skipped == 1


def test_day_filter_uses_the_timezone() -> None:
    # 1772380800 = 2026-03-02 00:00 in Shanghai, 2026-03-01 16:00 UTC
    lines = [
        "1772380799|a|q|NONE|ABANDON|1|1|30",
        "1772380801|b|q|NONE|ABANDON|1|1|30",
    ]
    shanghai = count_queue_log(lines, day=date(2026, 3, 2))
    assert shanghai["q"].counts[Outcome.ABANDONED] == 1
    utc = count_queue_log(lines, day=date(2026, 3, 1), timezone="UTC")
    assert utc["q"].counts[Outcome.ABANDONED] == 2


def test_transfers_are_handled_calls() -> None:
    lines = [
        "1|c1|q|1001|TRANSFER|2000|from-internal|5|40|1",
        "2|c2|q|1001|BLINDTRANSFER|2000|from-internal|5|50|1",
        "3|c3|q|1001|ATTENDEDTRANSFER|BRIDGE|1234|5|60|1",
    ]
    counts = count_queue_log(lines)["q"]
    assert (counts.handled, counts.talk) == (3, 150)


def test_parse_skips_garbage() -> None:
    assert [e.event for e in parse(["x", "1|c|q|a|connect|1"])] == ["CONNECT"]


# What Asterisk wrote to queue_log for the recorded lab calls (tests/fixtures/ami).
LAB_QUEUE_LOG = """\
1795438953|NONE|cantonese|1001|ADDMEMBER|
1795438953|1795438953.2|cantonese|NONE|ENTERQUEUE||4008001234|1
1795438955|1795438953.2|cantonese|1001|CONNECT|2|1795438953.3|2
1795438958|1795438953.2|cantonese|1001|COMPLETEAGENT|2|3|1
1795438958|NONE|cantonese|1001|REMOVEMEMBER|
1795438960|NONE|minnan|1002|ADDMEMBER|
1795438960|1795438960.4|minnan|NONE|ENTERQUEUE||4008001234|1
1795438966|1795438960.4|minnan|1002|RINGCANCELED|5504
1795438966|1795438960.4|minnan|NONE|ABANDON|1|1|6
1795438966|NONE|minnan|1002|REMOVEMEMBER|
1795438968|1795438967.6|wu|NONE|ENTERQUEUE||4008001234|1
1795438969|1795438967.6|wu|NONE|ABANDON|1|1|1
1795438971|1795438971.7|sichuanese|NONE|ENTERQUEUE||4008001234|1
1795438974|1795438971.7|sichuanese|NONE|EXITWITHTIMEOUT|1|1|3
1795438977|1795438976.8|wu|NONE|ENTERQUEUE||4008001234|1
1795438978|1795438976.8|wu|1003|RINGNOANSWER|1000
1795438979|1795438976.8|wu|1004|CONNECT|2|1795438978.10|1
1795438981|1795438976.8|wu|1004|COMPLETEAGENT|2|2|1
"""


def test_queue_log_live_state_and_call_log_agree_on_the_lab_calls() -> None:
    names = ["answered", "abandoned", "short_abandoned", "timeout", "rna_then_answer"]
    events = [e for name in names for e in read_ami(FIXTURES / f"{name}.ami")]
    live = LiveState()
    for event in events:
        live.feed(event)
    wallboard = {
        (q, k): n
        for q, view in live.snapshot(events[-1].time)["queues"].items()
        for k, n in view["counts"].items()
        if n
    }
    queue_log = {
        (q, str(k)): n
        for q, counts in count_queue_log(LAB_QUEUE_LOG.splitlines()).items()
        for k, n in counts.counts.items()
        if n
    }
    call_log = Counter((r.queue, str(r.outcome)) for r in final_records(events) if r.queue)
    assert wallboard == queue_log == dict(call_log)
    assert wallboard == {
        ("cantonese", "answered"): 1,
        ("minnan", "abandoned"): 1,
        ("wu", "short_abandoned"): 1,
        ("sichuanese", "timeout"): 1,
        ("wu", "answered"): 1,
    }

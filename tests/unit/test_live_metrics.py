"""Prometheus exposition of the live figures: valid text format, right numbers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hotline.live.metrics import CONTENT_TYPE, render
from hotline.live.state import LiveState
from tests.support.replay import read_ami

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? '
    r"(-?[0-9.e+-]+|NaN|[+-]Inf)$"
)


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out


def lab_snapshot() -> dict[str, Any]:
    live = LiveState()
    events = []
    for name in ("answered", "abandoned", "short_abandoned", "timeout"):
        events += read_ami(FIXTURES / f"{name}.ami")
    for event in events:
        live.feed(event)
    return live.snapshot(events[-1].time)


def test_every_line_is_valid_exposition_format() -> None:
    text = render(lab_snapshot())
    assert text.endswith("\n")
    families: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in families, f"{name} declared twice"
            families[name] = kind
        elif not line.startswith("# HELP "):
            assert SAMPLE.match(line), line
            assert line.split("{")[0].split(" ")[0] in families
    assert families["hotline_queue_calls_total"] == "counter"
    assert families["hotline_queue_waiting_callers"] == "gauge"
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_values_come_from_the_snapshot() -> None:
    values = samples(render(lab_snapshot()))
    assert values['hotline_queue_calls_total{queue="minnan",outcome="abandoned"}'] == 1
    assert values['hotline_queue_calls_total{queue="wu",outcome="short_abandoned"}'] == 1
    assert values['hotline_queue_calls_total{queue="sichuanese",outcome="timeout"}'] == 1
    assert values['hotline_queue_calls_today{queue="cantonese",outcome="answered"}'] == 1
    assert values['hotline_queue_service_level_ratio{queue="cantonese"}'] == 1
    assert abs(values['hotline_queue_asa_seconds{queue="cantonese"}'] - 2) < 0.1
    assert values['hotline_queue_abandon_rate_ratio{queue="minnan"}'] == 1
    assert values["hotline_ami_connected"] == 1
    assert values["hotline_live_events_total"] > 50


def test_no_data_is_omitted_not_zero() -> None:
    text = render(lab_snapshot())
    # nothing answered in "wu" yet: no service level sample rather than a false 0 %
    assert 'hotline_queue_service_level_ratio{queue="wu"}' not in text


def test_label_values_are_escaped() -> None:
    snapshot = {
        "queues": {'we"ird\\q\n': {"waiting_count": 1}},
        "stats": {"events": 1, "skipped.bad_field": 2},
    }
    text = render(snapshot)
    assert 'hotline_queue_waiting_callers{queue="we\\"ird\\\\q\\n"} 1' in text
    assert 'hotline_live_skipped_total{reason="bad_field"} 2' in text
    assert "hotline_ami_connected 0" in text


def test_empty_snapshot_renders() -> None:
    text = render({})
    assert "# TYPE hotline_agents gauge" in text

"""The IVR's facts as CEL text: read back whole by the record's parser, and short enough
that cel_custom's 1024-byte line (docs/asterisk-record.md) never cuts the row."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from hotline.record.cel_calls import user_fields
from hotline.record.entries import CelEvent
from ivr_flows.cel import CEL_TEXT_MAX, cel_text

REASONS = (
    "landline area code 028 is 四川省成都市 (code shared with 四川省眉山市、四川省资阳市); "
    "local dialect sichuanese; queue sichuanese; no customer tier: priority 0"
)


def _read(text: str) -> dict[str, str]:
    event = CelEvent(
        id=1,
        eventtype="USER_DEFINED",
        eventtime=0.0,
        uniqueid="1.0",
        linkedid="1.0",
        userdeftype="CustomerIdentified",
        extra=json.dumps({"extra": text}),
    )
    return user_fields(event)


def test_every_character_survives_the_round_trip() -> None:
    fields = {
        "Reasons": REASONS,
        "Odd": 'a&b=c+d,e;f"g\\h|i#j%k 100%\n李',
        "CustomerID": "42",
        "Empty": "",
    }
    text = cel_text(fields)
    assert dict(parse_qsl(text, keep_blank_values=True)) == fields
    assert _read(text) == {key.lower(): value for key, value in fields.items()}
    assert "," not in text and "\n" not in text  # would split the application's arguments
    assert "四川省成都市" in text  # raw UTF-8: 3 bytes a character, not 9


def test_a_long_explanation_is_cut_the_facts_beside_it_are_not() -> None:
    fields = {"CustomerID": "42", "Dialect": "cantonese", "Reasons": "原因；" * 200}
    text = cel_text(fields)
    assert len(text.encode()) <= CEL_TEXT_MAX
    back = _read(text)
    assert back["customerid"] == "42" and back["dialect"] == "cantonese"
    assert back["reasons"].endswith("…") and back["reasons"].startswith("原因；原因")

"""E.164 normalisation of the caller numbers trunks deliver."""

from __future__ import annotations

import logging

import pytest

from hotline.phones import masked, to_e164


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("02161234567", "+862161234567"),
        ("(021) 6123 4567", "+862161234567"),
        ("05925123456", "+865925123456"),
        ("+852 2123 4567", "+85221234567"),
        ("0085221234567", "+85221234567"),
    ],
)
def test_numbers_in_every_shape(raw: str, e164: str) -> None:
    assert to_e164(raw, "CN") == e164


@pytest.mark.parametrize(
    "raw", ["", None, "anonymous", "<unknown>", "12", "9" * 70, "☎☎☎", "+86 abc"]
)
def test_garbage_gives_none(raw: str | None) -> None:
    assert to_e164(raw, "CN") is None


def test_logs_never_show_the_whole_number(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hotline.phones")
    assert to_e164("0021987654321999", "CN") is None
    assert "0021987654321999" not in caplog.text
    assert masked("0021987654321999") in caplog.text

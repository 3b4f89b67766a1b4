"""Typed and trunk numbers in any form → E.164 candidates; regions for new mobile ranges."""

from __future__ import annotations

import pytest

from hotline.matching.phone import PhoneKeys, parse_phone, region_of
from hotline.routing.regions import default_table


@pytest.mark.parametrize(
    ("raw", "e164", "kind"),
    [
        ("+86 138 0013 8000", "+8613800138000", "mobile"),
        ("0086 13800138000", "+8613800138000", "mobile"),
        ("8613800138000", "+8613800138000", "mobile"),
        ("86-138-0013-8000", "+8613800138000", "mobile"),
        ("013800138000", "+8613800138000", "mobile"),  # trunk 0 before a mobile
        ("１３８００１３８０００", "+8613800138000", "mobile"),  # full-width
        ("(010) 6512 3456", "+861065123456", "landline"),
        ("010-65123456", "+861065123456", "landline"),
        ("0755-2345 6789", "+8675523456789", "landline"),
        ("2087654321", "+862087654321", "landline"),  # area code without the trunk 0
        ("862087654321", "+862087654321", "landline"),
        ("4008123123", "+864008123123", "service"),
        ("+1 650 253 0000", "+16502530000", "international"),
    ],
)
def test_forms(raw: str, e164: str, kind: str) -> None:
    parsed = parse_phone(raw)
    assert parsed is not None
    assert parsed.candidates == (e164,)
    assert parsed.kind == kind


@pytest.mark.parametrize(
    ("raw", "extension"),
    [("010-65123456-123", "123"), ("010 6512 3456 转801", "801"), ("0755-23456789 ext 12", "12")],
)
def test_extensions(raw: str, extension: str | None) -> None:
    parsed = parse_phone(raw)
    assert parsed is not None and parsed.extension == extension
    assert len(parsed.candidates) == 1


def test_local_number_without_area_code_gives_every_candidate() -> None:
    parsed = parse_phone("65123456")
    assert parsed is not None and len(parsed.candidates) > 10
    assert "+861065123456" in parsed.candidates
    hinted = parse_phone("65123456", area_codes=("20",))
    assert hinted is not None and hinted.candidates == ("+862065123456",)


@pytest.mark.parametrize("raw", ["", "abc", "123", "+86 123", "1380013800", "1" * 60, "😀"])
def test_garbage_is_none(raw: str) -> None:
    assert parse_phone(raw) is None


def where(e164: str) -> tuple[str, str] | None:
    found = region_of(e164)
    return (found.province, found.city) if found else None


def test_regions_cover_19x_16x_17x_and_landlines() -> None:
    assert where("+8613800138000") == ("北京市", "北京市")
    for e164 in ("+8619912345678", "+8616612345678", "+8617112345678"):
        found = region_of(e164)
        assert found is not None and found.city.endswith("市"), e164
    assert where("+862087654321") == ("广东省", "广州市")
    assert region_of("+16502530000") is None


@pytest.mark.parametrize(
    ("raw", "e164", "kind", "extension"),
    [
        ("010-65123456-808", "+861065123456", "landline", "808"),
        ("010 6512 3456 转808", "+861065123456", "landline", "808"),
        ("02087654321分机12", "+862087654321", "landline", "12"),
        ("+86 21 6123 4567 ext. 5", "+862161234567", "landline", "5"),
        ("13800138000 x123", "+8613800138000", "mobile", "123"),
        ("13800138000#123", "+8613800138000", "mobile", "123"),
        ("86 21 6123 4567", "+862161234567", "landline", None),
        ("85221234567", "+85221234567", "international", None),  # Hong Kong without "+"
        ("886912345678", "+886912345678", "international", None),
        ("+86 (0)21 6123 4567", "+862161234567", "landline", None),
        ("+44 (0)20 7946 0958", "+442079460958", "international", None),
        ("（021）6123\u30004567", "+862161234567", "landline", None),
        ("＋８６ １３８ ００１３ ８０００", "+8613800138000", "mobile", None),
    ],
)
def test_what_people_write(raw: str, e164: str, kind: str, extension: str | None) -> None:
    """The forms :mod:`hotline.phones` reads, seen through the matcher's parser."""
    assert parse_phone(raw) == PhoneKeys((e164,), kind, extension)


@pytest.mark.parametrize(
    "raw", ["\x00" * 11, "1" * 10_000, "a" * 10_000, "\udcff\udcfe13800138000", "转808"]
)
def test_garbage_never_raises(raw: str) -> None:
    assert parse_phone(raw) is None


def test_region_names_the_prefecture_as_the_table_does() -> None:
    """Location data says 恩施 and 万州; the record names the prefecture (恩施市 is only one
    county-level city of 恩施州, and 万州 is a district of the 重庆 municipality)."""
    assert where("+8613085194301") == ("湖北省", "恩施土家族苗族自治州")
    assert where("+8613452681083") == ("重庆市", "重庆市")


def test_region_agrees_with_routing() -> None:
    table = default_table()
    for e164 in ("+8613800138000", "+862087654321", "+865925123456", "+86202134556"):
        assert region_of(e164) is table.locate(e164).region, e164
    assert region_of("+86202134556") is None  # Guangzhou dials 8 digits: not a number
    assert region_of("+85221234567") is None  # the record's region is for mainland numbers

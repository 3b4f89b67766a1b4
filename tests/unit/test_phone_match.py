"""Typed and trunk numbers in any form → E.164 candidates; regions for new mobile ranges."""

from __future__ import annotations

import pytest

from hotline.matching.phone import Region, parse_phone, region_of


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
def test_forms(raw, e164, kind) -> None:
    parsed = parse_phone(raw)
    assert parsed is not None
    assert parsed.candidates == (e164,)
    assert parsed.kind == kind


@pytest.mark.parametrize(
    ("raw", "extension"),
    [("010-65123456-123", "123"), ("010 6512 3456 转801", "801"), ("0755-23456789 ext 12", "12")],
)
def test_extensions(raw, extension) -> None:
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
def test_garbage_is_none(raw) -> None:
    assert parse_phone(raw) is None


def test_regions_cover_19x_16x_17x_and_landlines() -> None:
    assert region_of("+8613800138000") == Region("北京市", "北京市")
    for e164 in ("+8619912345678", "+8616612345678", "+8617112345678"):
        found = region_of(e164)
        assert found is not None and found.city.endswith("市"), e164
    assert region_of("+862087654321") == Region("广东省", "广州市")
    assert region_of("+16502530000") is None

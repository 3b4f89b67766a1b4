"""Region → dialect table: full coverage of the number plan and the cities routing names."""

from __future__ import annotations

import struct
import tomllib

import pytest
from phonenumbers.geodata import GEOCODE_DATA

from hotline.phones import to_e164
from hotline.routing.regions import MANDARIN, REGIONS_FILE, RegionTable, default_table


@pytest.fixture(scope="module")
def table() -> RegionTable:
    return default_table()


def dialect_of(table: RegionTable, raw: str) -> str | None:
    return table.locate(to_e164(raw, "CN")).dialect


# -- the cities routing names ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "dialect"),
    [
        ("020-87654321", "cantonese"),  # Guangzhou
        ("13500000000", "cantonese"),  # Guangzhou mobile (phone package)
        ("0755-23456789", "cantonese"),  # Shenzhen: decided cantonese (see regions.toml)
        ("0592-5123456", "minnan"),  # Xiamen
        ("0754-88123456", "teochew"),  # Shantou: teochew, whose queue fallback is minnan
        ("021-62345678", "wu"),  # Shanghai
        ("0512-65123456", "wu"),  # Suzhou
        ("028-85123456", "sichuanese"),  # Chengdu
        ("023-63123456", "sichuanese"),  # Chongqing
        ("16612345678", "sichuanese"),  # Chongqing 166 mobile: only the phone package knows it
        ("13800138000", "mandarin"),  # Beijing mobile
        ("010-62345678", "mandarin"),  # Beijing landline (010 is absent from libphonenumber)
        ("+852 2123 4567", "cantonese"),  # Hong Kong
        ("00852 2123 4567", "cantonese"),
        ("+853 2812 3456", "cantonese"),  # Macau
        ("+886 2 2123 4567", "minnan"),  # Taiwan: decided minnan (see regions.toml)
        ("+886 912 345 678", "minnan"),
    ],
)
def test_named_cities(table: RegionTable, raw: str, dialect: str | None) -> None:
    assert dialect_of(table, raw) == dialect


def test_shantou_falls_back_to_minnan_then_mandarin(table: RegionTable) -> None:
    assert table.fallback_chain("teochew") == ("teochew", "minnan", MANDARIN)
    assert table.fallback_chain("teochew", {"teochew": []}) == ("teochew", MANDARIN)


def test_shared_area_code_names_the_other_areas(table: RegionTable) -> None:
    location = table.locate("+862885123456")
    assert location.region is not None and location.region.name == "成都市"
    assert set(location.shared_with) == {"四川省资阳市", "四川省眉山市"}
    assert "shared" in location.detail


# -- coverage -------------------------------------------------------------------------------


def test_every_prefecture_level_division_is_listed(table: RegionTable) -> None:
    prefectures = [r for r in table.regions if r.kind == "prefecture"]
    assert len(prefectures) == 333 + 4  # MCA 2023: 333 prefecture-level units + 4 municipalities
    assert len({(r.province, r.name) for r in table.regions}) == len(table.regions)
    mainland = [p for p in table.provinces.values() if p.country_code is None]
    assert len(mainland) == 31


def test_every_row_has_a_cited_source_and_known_dialect(table: RegionTable) -> None:
    for region in table.regions:
        assert region.sources, region.label
        assert set(region.sources) <= set(table.sources), region.label
        assert region.dialect in table.dialects
    for dialect in table.dialects.values():
        assert set(dialect.sources) <= set(table.sources), dialect.id
        assert set(dialect.fallback) <= set(table.dialects), dialect.id


def test_every_mainland_area_has_an_area_code(table: RegionTable) -> None:
    """The file writes codes as dialled (``020``); the table holds them as in E.164 (``20``)."""
    with open(REGIONS_FILE, "rb") as handle:
        data = tomllib.load(handle)
    written = [c for p in data["provinces"].values() for a in p["areas"] for c in a["codes"]]
    assert written and all(c.startswith("0") and c[1:].isdigit() for c in written)
    for region in table.regions:
        if region.kind != "sar" and region.kind != "taiwan":
            assert region.codes, region.label
            assert all(c.isdigit() and not c.startswith("0") for c in region.codes)
    assert table.by_area_code("020") == table.by_area_code("20") != []


def _libphonenumber_area_codes() -> dict[str, str]:
    return {
        key[2:]: value["zh"]
        for key, value in GEOCODE_DATA.items()
        if key.startswith("86") and not key.startswith("861") and value.get("zh")
    }


def test_every_libphonenumber_area_code_maps_to_the_same_province_and_dialect(
    table: RegionTable,
) -> None:
    """Our codes agree with libphonenumber's where it has data (it lacks 010, for one)."""
    codes = set(table.area_codes())
    for prefix, description in _libphonenumber_area_codes().items():
        length = 2 if prefix.startswith("2") else 3
        if len(prefix) < length:  # '33' covers 0335: some code of ours must start with it
            assert any(c.startswith(prefix) for c in codes), prefix
            continue
        regions = table.by_area_code(prefix[:length])
        assert regions, f"0{prefix[:length]} ({description}) missing"
        province, region = table.parse_description(description)
        assert province is not None and region is not None, description
        assert regions[0].province == region.province, (prefix, description)
        assert regions[0].dialect == region.dialect, (prefix, description)


def test_every_geocoder_description_resolves_to_a_region(table: RegionTable) -> None:
    """All of libphonenumber's CN descriptions (mobile blocks and area codes) are known."""
    descriptions = {
        value["zh"]
        for key, value in GEOCODE_DATA.items()
        if key.startswith("86") and value.get("zh") and value["zh"] != "中国"
    }
    assert len(descriptions) > 350
    unresolved = [d for d in descriptions if table.parse_description(d)[1] is None]
    assert unresolved == []


def _phone_package_cities() -> set[tuple[str, str]]:
    from phone import Phone

    db = Phone()
    pairs = set()
    offset = db.first_phone_record_offset
    while offset < len(db.buf):
        _, record_offset, _ = struct.unpack(
            db.phone_fmt, db.buf[offset : offset + db.phone_fmt_length]
        )
        offset += db.phone_fmt_length
        record = db.buf[record_offset : db.buf.find(b"\x00", record_offset)].decode()
        province, city = record.split("|")[:2]
        pairs.add((province, city))
    return pairs


def test_every_phone_package_city_resolves_to_a_region(table: RegionTable) -> None:
    """All (province, city) pairs of the 499,527 blocks in PyPI `phone` map to a row."""
    pairs = _phone_package_cities()
    assert len(pairs) > 350
    assert [pair for pair in pairs if table.find(*pair) is None] == []


@pytest.mark.parametrize(
    ("number", "method"),
    [
        ("+8619912345678", "mobile-phone"),  # 19x: only in the phone package
        ("+8613800138000", "mobile-phone"),
    ],
)
def test_mobile_numbers_use_the_phone_package_first(
    table: RegionTable, number: str, method: str
) -> None:
    assert table.locate(number).method == method


def test_geocoder_is_the_fallback_for_mobiles(
    table: RegionTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hotline.routing import regions

    monkeypatch.setattr(regions, "_phone_pkg_lookup", lambda nsn: None)
    location = table.locate("+8613500000000")
    assert location.method == "mobile-phonenumbers"
    assert location.region is not None and location.region.name == "广州市"


def test_unknown_city_falls_back_to_province_default_explicitly(
    table: RegionTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hotline.routing import regions

    monkeypatch.setattr(regions, "_phone_pkg_lookup", lambda nsn: ("广东", "新城"))
    location = table.locate("+8613500000000")
    assert location.region is None
    assert location.province == "广东省" and location.dialect == "cantonese"
    assert "not in the table" in location.detail


@pytest.mark.parametrize(
    "e164",
    [None, "", "not a number", "+12125550100", "+864008123123", "+866001234567", "+8612"],
)
def test_unlocatable_numbers_say_why(table: RegionTable, e164: str | None) -> None:
    location = table.locate(e164)
    assert location.dialect is None and location.region is None
    assert location.method == "none" and location.detail


def test_mobile_block_without_data_says_so(
    table: RegionTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hotline.routing import regions

    monkeypatch.setattr(regions, "_phone_pkg_lookup", lambda nsn: None)
    monkeypatch.setattr(regions, "_geocoder_description", lambda number: None)
    location = table.locate("+8619012345678")
    assert location.dialect is None and "no location" in location.detail


def test_phone_package_errors_do_not_escape(
    table: RegionTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hotline.routing import regions

    def broken() -> None:
        raise RuntimeError("corrupt data file")

    monkeypatch.setattr(regions, "_mobile_blocks", broken)
    assert table.locate("+8613500000000").dialect == "cantonese"  # via the geocoder


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("粤语", "cantonese"),
        ("Cantonese", "cantonese"),
        ("广东话", "cantonese"),
        ("台语", "minnan"),
        ("上海话", "wu"),
        ("SICHUANESE", "sichuanese"),
        ("klingon", None),
        ("", None),
        (None, None),
    ],
)
def test_dialect_aliases(table: RegionTable, text: str | None, dialect: str | None) -> None:
    assert table.dialect_id(text) == dialect


def test_a_table_with_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dialect"):
        RegionTable(
            {
                "dialects": {"mandarin": {}},
                "provinces": {
                    "X省": {"default": "mandarin", "areas": [{"name": "Y市", "dialect": "elvish"}]}
                },
            }
        )
    with pytest.raises(ValueError, match="mandarin"):
        RegionTable({"dialects": {}})


def test_data_file_is_shipped_next_to_the_module() -> None:
    assert REGIONS_FILE.is_file() and REGIONS_FILE.suffix == ".toml"


def test_mobile_blocks_per_region_are_what_locate_says(table: RegionTable) -> None:
    blocks = table.mobile_blocks()
    beijing = table.find("北京", "")
    assert beijing is not None and 1380013 in blocks[beijing]
    assert sum(map(len, blocks.values())) > 490_000
    for region, found in list(blocks.items())[::40]:
        assert table.locate(f"+86{found[0]}0000").region is region

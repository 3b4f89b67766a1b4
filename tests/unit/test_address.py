"""Address normalisation and parsing: spellings, numerals, areas of every province."""

from __future__ import annotations

import pytest

from hotline.matching.address import cn_numeral_to_int, normalise, parse_address

RECORD = "北京市朝阳区建国路88号SOHO现代城5号楼1502"


@pytest.mark.parametrize(
    "variant",
    [
        "北京朝阳建国路８８号ＳＯＨＯ现代城５号楼１５０２",
        "北京市朝阳区建国路88号SOHO现代城五号楼1502室",
        "北京市朝阳区建国路88号SOHO现代城5栋1502",
        "北京市朝阳区建国路88号SOHO现代城5幢1502",
        "北京市 朝阳区 建国路88号 SOHO现代城 5座 1502",
    ],
)
def test_variants_normalise_to_the_record(variant) -> None:
    assert parse_address(variant).normalised == parse_address(RECORD).normalised


def test_numerals_and_triples() -> None:
    assert cn_numeral_to_int("一五零二") == 1502
    assert cn_numeral_to_int("十二") == 12
    assert cn_numeral_to_int("二百零五") == 205
    assert normalise("金碧花园3-2-1502") == "金碧花园3栋2单元1502"
    assert normalise("长安大街1号（近地铁）") == "长安街1号"


def test_district_alone_and_ambiguity() -> None:
    tianhe = parse_address("天河区")
    assert (tianhe.province, tianhe.city, tianhe.district) == ("广东省", "广州市", "天河区")
    chaoyang = parse_address("朝阳区建国路88号")
    assert chaoyang.district == "朝阳区" and chaoyang.city is None and chaoyang.ambiguous_district
    with_prior = parse_address("朝阳区建国路88号", prior_city="长春市")
    assert with_prior.city == "长春市"
    assert parse_address("长春市朝阳区建国路88号").province == "吉林省"
    assert parse_address("朝阳路5号").district is None  # a road, not the district
    assert parse_address("广州天河体育西路103号").street == "体育西路103号"


def test_a_province_short_name_inside_a_district_name_is_not_the_province() -> None:
    """河北区 is a district of 天津市, not 河北省 followed by "区" (the one recall miss)."""
    hebei = parse_address("河北区")
    assert (hebei.province, hebei.city, hebei.district, hebei.detail) == (
        "天津市",
        "天津市",
        "河北区",
        "",
    )
    assert parse_address("河北省石家庄市").province == "河北省"  # the province still is
    assert parse_address("河北石家庄").city == "石家庄市"
    assert parse_address("北京市朝阳区").district == "朝阳区"  # a full name before 区


# -- every province, not just the big cities -------------------------------------------


@pytest.mark.parametrize(
    ("text", "province", "city", "district"),
    [
        ("甘肃省平凉市崆峒区西大街12号", "甘肃省", "平凉市", "崆峒区"),
        ("崆峒区西大街12号", "甘肃省", "平凉市", "崆峒区"),  # a district named alone
        ("平凉崆峒西大街12号", "甘肃省", "平凉市", "崆峒区"),  # short names
        ("新疆乌鲁木齐天山区解放北路1号", "新疆维吾尔自治区", "乌鲁木齐市", "天山区"),
        ("延边州延吉市人民路5号", "吉林省", "延边朝鲜族自治州", "延吉市"),
        ("黔东南州凯里市北京东路3号", "贵州省", "黔东南苗族侗族自治州", "凯里市"),
        ("临沧双江县勐勐镇", "云南省", "临沧市", "双江拉祜族佤族布朗族傣族自治县"),
        (
            "双江拉祜族佤族布朗族傣族自治县勐勐镇",
            "云南省",
            "临沧市",
            "双江拉祜族佤族布朗族傣族自治县",
        ),
        ("内蒙古呼和浩特新城区新华大街1号", "内蒙古自治区", "呼和浩特市", "新城区"),
        ("西藏拉萨城关区北京中路1号", "西藏自治区", "拉萨市", "城关区"),
        ("湖北神农架松柏镇", "湖北省", "神农架林区", None),  # county-level, under the province
        ("海南省琼海市嘉积镇", "海南省", "琼海市", None),
        ("万柏林区", "山西省", "太原市", "万柏林区"),  # not 万柏 + 林区
    ],
)
def test_areas_of_every_province_are_read(text, province, city, district) -> None:
    parsed = parse_address(text)
    assert (parsed.province, parsed.city, parsed.district) == (province, city, district)


def test_short_names_that_are_both_a_city_and_a_district() -> None:
    """朝阳 is 辽宁's 朝阳市 and 北京's (and 长春's) 朝阳区; 西安 is a capital and a district."""
    assert parse_address("北京朝阳建国路88号").district == "朝阳区"  # not 辽宁's city
    bare = parse_address("朝阳建国路88号")
    assert (bare.city, bare.district, bare.ambiguous_district) == (None, "朝阳区", True)
    assert parse_address("朝阳双塔区友谊街3号").city == "朝阳市"  # its own district follows
    assert parse_address("西安雁塔区长安南路88号").city == "西安市"
    assert parse_address("长沙芙蓉区五一大道1号").city == "长沙市"
    assert parse_address("吉林市船营区").province == "吉林省"
    assert parse_address("吉林长春朝阳区").city == "长春市"


@pytest.mark.parametrize(
    ("text", "city", "district", "detail"),
    [
        ("青岛市北区东风大街68号", "青岛市", "市北区", "东风街68号"),
        ("青岛市市北区东风大街68号", "青岛市", "市北区", "东风街68号"),
        ("山东省青岛市南区香港中路1号", "青岛市", "市南区", "香港中路1号"),
        ("济南市中区和平大道276号", "济南市", "市中区", "和平大道276号"),
        ("乐山市中区", "乐山市", "市中区", ""),
        # only the district's full name shares the 市: these are roads of the city
        ("青岛市北京路88号", "青岛市", None, "北京路88号"),
        ("济南市中山路1号", "济南市", None, "中山路1号"),
    ],
)
def test_a_district_that_begins_with_the_cities_shi(text, city, district, detail) -> None:
    """市北区, 市南区, 市中区: people write the 市 once (青岛市北区), and the parser read
    青岛市 + 北区 (no district, 北区 in the detail) until 2026-12-01."""
    parsed = parse_address(text)
    assert (parsed.city, parsed.district, parsed.detail) == (city, district, detail)


def test_traditional_characters_parse_like_simplified() -> None:
    written = parse_address("廣東省廣州市天河區體育西路103號維多利廣場B座")
    simplified = parse_address("广东省广州市天河区体育西路103号维多利广场B座")
    assert written == simplified
    assert (written.city, written.district, written.street) == ("广州市", "天河区", "体育西路103号")
    assert parse_address("陝西省咸陽市乾縣城關鎮").district == "乾县"


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        ("中山路一百二十三号", "中山路123号"),
        ("中山路１２３号", "中山路123号"),
        ("中山路一二三号", "中山路123号"),  # read digit by digit
        ("中山路1２三号", "中山路123号"),  # mixed: full-width, ASCII and a numeral
        ("中山路一百23号", "中山路123号"),
        ("三栋2单元十一楼", "3栋2单元11楼"),
        ("5栋2单元一五零二", "5栋2单元1502"),  # the room at the end, without 室
        ("5栋2单元幺五零二室", "5栋2单元1502"),  # 幺 is how 1 is read out
        ("第三栋", "3栋"),
        ("幸福里三期二栋", "幸福里3期2栋"),
        ("二十三号楼", "23栋"),
    ],
)
def test_numbers_written_in_chinese_numerals_full_width_or_mixed(written, digits) -> None:
    assert normalise(written) == digits


@pytest.mark.parametrize(
    "text", ["中山一路", "五一大道1号", "二七区", "星期三", "十字路口", "三元里大道"]
)
def test_numerals_that_are_part_of_a_name_stay(text) -> None:
    assert normalise(text) == text


def test_every_generated_address_written_with_numerals_normalises_the_same() -> None:
    """The labelled set's numeral rewrite of each synthetic address (said, digit by
    digit, full-width, mixed, 幺, the room's 室 left off) reads as the address itself."""
    import random

    from hotline.customers.gen import generate
    from tests.matching.labelled import _numerals

    rng = random.Random(3)
    raws = [raw for record in generate(300, 5) for raw in record["addresses"]]
    for raw in raws:
        written = _numerals(raw, rng) or raw
        assert parse_address(written).normalised == parse_address(raw).normalised, written

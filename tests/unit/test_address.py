"""Address normalisation and parsing (research §3.4)."""

from __future__ import annotations

import pytest

from screenpop.address import cn_numeral_to_int, normalise, parse_address

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

"""Name keys: surname readings pypinyin gets wrong, homophones, initials, typed pinyin,
traditional characters."""

from __future__ import annotations

import pytest

from hotline.matching.keys import (
    name_keys,
    normalise_typed_pinyin,
    split_surname,
    to_simplified,
    traditional_forms,
)


@pytest.mark.parametrize(
    ("name", "pinyin", "initials"),
    [
        ("曾小贤", "zengxiaoxian", "zxx"),  # pypinyin alone says ceng
        ("单田芳", "shantianfang", "stf"),
        ("解缙", "xiejin", "xj"),
        ("区志明", "ouzhiming", "ozm"),
        ("朴树", "piaoshu", "ps"),
        ("覃海燕", "qinhaiyan", "qhy"),
        ("欧阳娜娜", "ouyangnana", "oynn"),
        ("长孙无忌", "zhangsunwuji", "zswj"),
        ("吕布", "lvbu", "lb"),
    ],
)
def test_surname_aware_keys(name, pinyin, initials) -> None:
    keys = name_keys(name)
    assert (keys.pinyin, keys.initials) == (pinyin, initials)


def test_homophones_share_one_key_and_fold_accents() -> None:
    assert {name_keys(n).pinyin for n in ("张伟", "章伟", "张玮", "张炜", "张维")} == {"zhangwei"}
    assert name_keys("张伟").fuzzy == name_keys("赞伟").fuzzy
    assert name_keys("张伟").pinyin != name_keys("赞伟").pinyin


def test_typed_pinyin_and_compound_split() -> None:
    assert normalise_typed_pinyin("Zhang Wei") == "zhangwei"
    assert normalise_typed_pinyin("zhang'wei") == "zhangwei"
    assert normalise_typed_pinyin("lü") == "lv"
    assert split_surname("欧阳娜娜") == ("欧阳", "娜娜")
    assert split_surname("欧阳") == ("欧", "阳")  # two characters: a surname and a name
    assert name_keys("Tom").pinyin == "tom"


@pytest.mark.parametrize(
    ("written", "simplified"),
    [
        ("張偉", "张伟"),
        ("歐陽娜娜", "欧阳娜娜"),
        ("廣東省廣州市天河區", "广东省广州市天河区"),
        ("陝西省咸陽市乾縣", "陕西省咸阳市乾县"),  # 乾 stays: simplified text writes it too
        ("李乾", "李乾"),  # not 李干
        ("於明", "於明"),  # 於 is a surname of its own
        ("张伟", "张伟"),  # simplified text comes back as it is
        ("Tom 𠮷祥", "Tom 𠮷祥"),
        ("", ""),
    ],
)
def test_traditional_characters_read_as_simplified(written, simplified) -> None:
    assert to_simplified(written) == simplified


def test_a_traditional_name_keys_as_its_simplified_reading() -> None:
    assert name_keys("張偉") == name_keys("张伟")
    assert name_keys("單田芳").pinyin == "shantianfang"  # the surname table, not pypinyin's dan
    assert name_keys("歐陽娜娜").initials == "oynn"  # the compound surname is found
    assert name_keys("李乾").pinyin == "liqian"
    assert traditional_forms("张") == ("张", "張")
    assert traditional_forms("王") == ("王",)

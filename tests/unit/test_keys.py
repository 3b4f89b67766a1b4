"""Name keys: surname readings pypinyin gets wrong, homophones, initials, typed pinyin."""

from __future__ import annotations

import pytest

from hotline.matching.keys import name_keys, normalise_typed_pinyin, split_surname


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

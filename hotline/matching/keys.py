"""Search keys for Chinese names: surname-aware pinyin, initials and an accent fold.

Why keys and not Hanzi trigrams: pg_trgm sees no similarity at all between 张伟 and
章伟 (research §4.2), while both are ``zhangwei`` in pinyin, so homophones become one
exact B-tree lookup. Why our own surname table: pypinyin has no surname mode and reads
曾 as *ceng*, 单 as *dan*, 解 as *jie*, 区 as *qu*, 朴 as *pu*, 覃 as *tan*
(mozillazg/python-pinyin#297, still open), so 曾伟 would never be found by ``zengwei``.

All functions are pure and cache per character, because the importer computes keys for
millions of rows and ``lazy_pinyin`` costs ~20 µs a call.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import lazy_pinyin

__all__ = [
    "COMMON_SURNAMES",
    "COMPOUND_SURNAMES",
    "SURNAME_READINGS",
    "NameKeys",
    "fuzzy_fold",
    "is_hanzi",
    "name_keys",
    "normalise_typed_pinyin",
    "split_surname",
    "syllables",
]

# Surnames whose reading differs from the character's everyday reading (space-separated
# syllables for compounds; issue #297 of
# python-pinyin lists ~90; these are the ones that actually occur in call-centre data).
SURNAME_READINGS: dict[str, str] = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "仇": "qiu",
    "区": "ou",
    "朴": "piao",
    "查": "zha",
    "盖": "ge",
    "覃": "qin",
    "缪": "miao",
    "乐": "yue",
    "翟": "zhai",
    "纪": "ji",
    "种": "chong",
    "秘": "bi",
    "繁": "po",
    "过": "guo",
    "冼": "xian",
    "隗": "wei",
    "召": "shao",
    "员": "yun",
    "句": "gou",
    "尉": "yu",
    "宓": "fu",
    "应": "ying",
    "华": "hua",
    "任": "ren",
    "沈": "shen",
    "长": "chang",
    "折": "she",
    "黑": "he",
    "阚": "kan",
    "柏": "bai",
    "朝": "chao",
    "都": "du",
    "藏": "zang",
    "重": "chong",
    "万俟": "mo qi",
    "尉迟": "yu chi",
    "长孙": "zhang sun",
    "单于": "chan yu",
}

COMPOUND_SURNAMES: frozenset[str] = frozenset(
    [
        "欧阳",
        "司马",
        "诸葛",
        "上官",
        "东方",
        "皇甫",
        "尉迟",
        "长孙",
        "万俟",
        "单于",
        "夏侯",
        "令狐",
        "公孙",
        "慕容",
        "司徒",
        "司空",
        "宇文",
        "轩辕",
        "呼延",
        "端木",
        "南宫",
        "西门",
        "独孤",
        "澹台",
        "公冶",
        "钟离",
        "闻人",
    ]
)

# The most common single-character surnames (the 2019 and 2020 Ministry of Public Security
# name reports list the top 100, which cover about 85 % of people [recall]). Used to tell
# a short place name that is also a person's name (高明, 罗湖) from one that is not (天河).
COMMON_SURNAMES: frozenset[str] = (
    frozenset(
        "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余"
        "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史"
        "陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟"
        "殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游"
        "辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫"
        "费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明"
        "佘池查麻苑迟邝"
    )
    | COMPOUND_SURNAMES
)

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002a6df]")
_NOT_LETTERS = re.compile(r"[^a-z]")


def is_hanzi(text: str) -> bool:
    """True when every character of ``text`` is a CJK ideograph (and it is not empty)."""
    return bool(text) and all(_HAN.fullmatch(ch) for ch in text)


def split_surname(name: str) -> tuple[str, str]:
    """Split a Hanzi name into (surname, given name); compound surnames first."""
    if len(name) > 2 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[:1], name[1:]


@lru_cache(maxsize=65536)
def _char_pinyin(ch: str) -> str:
    reading = lazy_pinyin(ch, errors="ignore")
    return reading[0].lower() if reading else ""


def syllables(name: str) -> list[str]:
    """Toneless syllables of a Hanzi name with the surname read as a surname.

    Characters without a reading (Latin letters, digits) are dropped; ü is ``v`` as
    people type it on a keyboard.
    """
    surname, given = split_surname(name)
    out: list[str] = []
    if surname in SURNAME_READINGS:
        out.extend(SURNAME_READINGS[surname].split())
    else:
        out.extend(p for ch in surname if (p := _char_pinyin(ch)))
    out.extend(p for ch in given if (p := _char_pinyin(ch)))
    return out


_FOLDS = (
    (re.compile(r"^(z|c|s)h"), r"\1"),  # zh/ch/sh → z/c/s (southern accents, IME fuzzy mode)
    (re.compile(r"^n(?!g)"), "l"),  # n → l
    (re.compile(r"^hu(?=a)"), "f"),  # hua/huang → fa/fang
    (re.compile(r"(an|en|in)g$"), r"\1"),  # -ng → -n
)


@lru_cache(maxsize=8192)
def _fold_syllable(syllable: str) -> str:
    for pattern, replacement in _FOLDS:
        syllable = pattern.sub(replacement, syllable)
    return syllable


def fuzzy_fold(parts: list[str]) -> str:
    """The accent-folded key: 张伟 = 赞伟 (``zanwei``), 陈静 = 岑金, 刘洋 = 牛洋."""
    return "".join(_fold_syllable(p) for p in parts)


@dataclass(frozen=True, slots=True)
class NameKeys:
    pinyin: str  # "zengxiaoxian"
    initials: str  # "zxx"
    fuzzy: str  # accent-folded pinyin


@lru_cache(maxsize=1 << 18)
def name_keys(name: str) -> NameKeys:
    """Keys stored with a customer (and computed for a Hanzi query the same way).

    Cached per whole name: names repeat heavily (384 k distinct in 1 M customers), and
    the importer, the ORM validator and every Hanzi query ask for the same few. The
    result is immutable, so sharing it is safe.

    A name with no Hanzi (a company called "ABC", a foreigner) keys on its letters,
    lower-cased, so typed queries still find it.
    """
    text = unicodedata.normalize("NFKC", name).strip()
    hanzi = "".join(ch for ch in text if _HAN.fullmatch(ch))
    if not hanzi:
        letters = _NOT_LETTERS.sub("", text.lower())
        return NameKeys(letters, letters[:1], letters)
    parts = syllables(hanzi)
    return NameKeys("".join(parts), "".join(p[0] for p in parts), fuzzy_fold(parts))


def normalise_typed_pinyin(text: str) -> str:
    """``Zhang Wei``, ``zhang'wei``, ``ZHANGWEI``, ``lü`` → ``zhangwei``/``lv``."""
    text = unicodedata.normalize("NFKC", text).lower().replace("ü", "v").replace("u:", "v")
    return _NOT_LETTERS.sub("", text)

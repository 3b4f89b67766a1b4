"""Search keys for Chinese names: surname-aware pinyin, initials and an accent fold.

Why keys and not Hanzi trigrams: pg_trgm sees no similarity at all between 张伟 and
章伟, while both are ``zhangwei`` in pinyin, so homophones become one exact B-tree
lookup. Why our own surname table: pypinyin has no surname mode and reads 曾 as *ceng*,
单 as *dan*, 解 as *jie*, 区 as *qu*, 朴 as *pu*, 覃 as *tan* (an open issue of
python-pinyin, mozillazg/python-pinyin#297), so 曾伟 would never be found by ``zengwei``.

Keys are those of the simplified reading (:func:`to_simplified`): a record exported from
Hong Kong or Taiwan writes 張偉 and 單田芳, an agent types 张伟, and pypinyin alone
would read 單 as *dan*, past the surname table.

All functions are pure and cache per character, because the importer computes keys for
millions of rows and ``lazy_pinyin`` costs ~20 µs a call. :class:`KeyIndex` holds the
distinct keys of the record in memory for the search's typo and wrong-character lookups.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from opencc import OpenCC
from pypinyin import lazy_pinyin
from rapidfuzz import process
from rapidfuzz.distance import OSA

__all__ = [
    "COMMON_SURNAMES",
    "COMPOUND_SURNAMES",
    "SURNAME_READINGS",
    "KeyIndex",
    "NameKeys",
    "all_syllables",
    "fuzzy_fold",
    "is_hanzi",
    "name_keys",
    "normalise_typed_pinyin",
    "split_surname",
    "syllables",
    "to_simplified",
    "traditional_forms",
]

# Surnames whose reading differs from the character's everyday reading (space-separated
# syllables for compounds; the upstream report above lists ~90; these are the ones that
# actually occur in call-centre data).
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

# The most common single-character surnames (the Ministry of Public Security's 2019 and
# 2020 name reports list the top 100, which cover about 85 % of people). Used to tell a
# short place name that is also a person's name (高明, 罗湖) from one that is not (天河).
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


# Characters that OpenCC's traditional → simplified table maps away, yet simplified text
# also writes as they are (the table's candidates for them include themselves): 乾 is
# 干 in 乾燥 but stays in 乾坤, 乾隆 and the names 李乾 (*qian*, not *gan*) and 乾县; 於
# and 昇 are surnames and name characters of their own. Left as written, so a simplified
# record keeps its keys; their readings are those of the simplified text.
_ALSO_SIMPLIFIED = "谿扞昇釐麽陞薹脩蒐袷祕於氾剋劄徵夥吒乾"
_KEEP = re.compile(f"([{_ALSO_SIMPLIFIED}])")
# Traditional characters outside the BMP are rare (names with 𠮷): any such character
# sends the text through the converter, which leaves what it does not know alone.
_ASTRAL_HAN = "\U00020000-\U000323af"


@cache
def _t2s() -> OpenCC:
    return OpenCC("t2s")


@cache
def _s2t() -> OpenCC:
    return OpenCC("s2t")


@cache
def _traditional() -> re.Pattern[str]:
    """A character class of every BMP ideograph the converter changes on its own.

    Why: most text is simplified already, and a search of this class (one C pass over
    the text, ~0.3 µs for an address) is what lets that text skip the converter (~2 µs a
    call). Built from OpenCC's own table on first use (~0.1 s), so the two never
    disagree. The astral planes are one range: a Python character class holding
    characters above U+FFFF is matched item by item (100 µs an address).
    """
    chars = [chr(c) for c in (*range(0x3400, 0xA000), *range(0xF900, 0xFB00))]
    simplified = _t2s().convert("\n".join(chars)).split("\n")
    changed = "".join(
        a for a, b in zip(chars, simplified, strict=True) if a != b and a not in _ALSO_SIMPLIFIED
    )
    return re.compile(f"[{changed}{_ASTRAL_HAN}]")


def to_simplified(text: str) -> str:
    """``text`` with traditional characters read as simplified: 張偉 → 张伟,
    廣東省廣州市天河區 → 广东省广州市天河区; simplified text comes back as it is.

    OpenCC's ``t2s`` (phrases first, then characters), except for the characters that
    simplified text also uses (:data:`_ALSO_SIMPLIFIED`), which are kept: the text is
    converted in the pieces between them.
    """
    if not _traditional().search(text):
        return text
    pieces = _KEEP.split(text)
    convert = _t2s().convert
    return "".join(p if i % 2 else convert(p) for i, p in enumerate(pieces) if p)


def traditional_forms(text: str) -> tuple[str, ...]:
    """``text`` and its traditional spelling when that differs (张 → (张, 張)): the forms
    a record may hold a simplified query's text in, for an SQL equality."""
    traditional = _s2t().convert(text)
    return (text,) if traditional == text else (text, traditional)


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
    the importer, the API's writes and every Hanzi query ask for the same few. The
    result is immutable, so sharing it is safe.

    A name with no Hanzi (a company called "ABC", a foreigner) keys on its letters,
    lower-cased, so typed queries still find it. A traditional name keys as its
    simplified reading (張偉 as 张伟).
    """
    text = to_simplified(unicodedata.normalize("NFKC", name).strip())
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


# -- the known keys, for typo and wrong-character lookups ----------------------------------

_MAX_TYPO_DISTANCE = 2


class KeyIndex:
    """Distinct ``name_pinyin`` keys, held for typo and wrong-character lookups.

    Bucketed by (first letter, length) for the typo scan: a key within two edits of the
    query is at most two letters longer or shorter, so :meth:`near` hands rapidfuzz five
    prepared lists instead of filtering a whole first-letter bucket (40 k keys at 1 M
    customers) in Python.

    One wrong character whose reading is far off (:meth:`spliced`) needs no structure
    of its own: the key the caller meant is the query's key with one syllable
    replaced, and pypinyin knows only 425 toneless syllables, so trying each of them
    in the set of known keys lists every candidate, at any position, in 80–105 µs
    (measured at 523 k keys, the 10 M-customer record). That includes a misheard
    surname (季伟明 for 李伟明), whose changed *first* letters neither the B-tree on
    ``name_pinyin`` nor the first-letter buckets can reach. Extra memory: the
    syllable tuple, 42 kB; the set and buckets above are 21 MB plus 31 MB of key
    strings at 523 k keys. Measured and dropped: the keys sorted backwards for suffix
    bisection, which would cost 36 MB of reversed strings at 523 k keys (8 MB as two
    sort orders of the same strings), and still had to filter in Python the
    run of keys ending in the given name's last syllable, 1.4–2.3 ms for a wrong
    middle character behind a common surname (``wang?ming``) at 264 k keys.
    """

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._buckets: dict[tuple[str, int], list[str]] = defaultdict(list)
        self._known: set[str] = set()
        for key in keys:
            self.add(key)

    def __len__(self) -> int:
        return len(self._known)

    def add(self, key: str) -> None:
        if key and key not in self._known:
            self._known.add(key)
            self._buckets[(key[0], len(key))].append(key)

    def near(self, key: str, max_distance: int = _MAX_TYPO_DISTANCE, limit: int = 20) -> list[str]:
        """Keys within ``max_distance`` OSA edits (a transposition is one edit)."""
        if not key:
            return []
        found: list[tuple[int, str]] = []
        for size in range(len(key) - max_distance, len(key) + max_distance + 1):
            bucket = self._buckets.get((key[0], size))
            if not bucket:
                continue
            for match, distance, _ in process.extract(
                key, bucket, scorer=OSA.distance, score_cutoff=max_distance, limit=limit
            ):
                if distance > 0:
                    found.append((int(distance), match))
        found.sort()
        return sorted(match for _, match in found[:limit])

    def spliced(self, prefix: str, suffix: str) -> list[str]:
        """Known keys ``prefix + S + suffix`` for any one toneless syllable S.

        ``prefix`` and ``suffix`` are the pinyin of the characters before and after
        the wrong one, so these are the keys of every name that differs from the
        query in that one character. Without either side it would be every
        one-syllable name, which says nothing about the caller: nothing is returned.
        """
        if not (prefix or suffix):
            return []
        known = self._known
        keys = [prefix + s + suffix for s in all_syllables()]  # two passes: 1/3 faster
        return [key for key in keys if key in known]


@cache
def all_syllables() -> tuple[str, ...]:
    """Every toneless reading in pypinyin's character table, spelt as :mod:`.keys`
    spells them (``lv``), sorted: 425 syllables, built once (0.1–0.2 s)."""
    from pypinyin.constants import PINYIN_DICT
    from pypinyin.contrib.tone_convert import to_normal

    readings = {r for value in PINYIN_DICT.values() for r in value.split(",")}
    return tuple(sorted({s for r in readings if (s := to_normal(r)).isascii() and s.isalpha()}))

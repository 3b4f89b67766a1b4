"""Address normalisation and parsing, pure and table-driven.

Callers say the same place many ways: with or without the province and city, ``5号楼``
/ ``5栋`` / ``5幢`` / ``五号楼``, numbers in full-width digits from a phone keyboard or in
Chinese numerals (``一百二十三号``, ``一五零二``, mixed as ``三栋2单元十一楼``),
``5-1-1502`` for building-unit-room, a district on its own, traditional characters
(``廣州市天河區``). Both the stored address and the query go through :func:`normalise` so
the database compares like with like, and a substring of a normalised query (road +
number) is a substring of the normalised record.

An ambiguous district (朝阳区 is in 北京 and 长春, 鼓楼区 in four cities) is never resolved
by guessing; only a ``prior_city`` (from the caller's number) resolves it: the cpca
package's global guess for such districts was wrong half the time when we measured it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from typing import Any

from hotline.matching.keys import to_simplified
from hotline.matching.places import CITIES, City, city_named, short_name

__all__ = [
    "ParsedAddress",
    "cn_numeral_to_int",
    "is_official_name",
    "normalise",
    "parse_address",
]

# 幺 is how 1 is read out in a room or house number (一 sounds like 七 on a bad line)
_CN_DIGITS = dict(
    zip("零〇幺一二两三四五六七八九", (0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True)
)
_DIGIT_VALUES = {**_CN_DIGITS, **{str(d): d for d in range(10)}}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_UNIT_WORDS = "号楼|号院|号|栋|幢|座|单元|楼|层|室|弄|巷|组|队|户|期|排"
# A number before a unit word in Chinese numerals, digits mixed in after the first
# numeral (十1楼, 一百23号, 五02室). Digits before it stay and read on digit by digit
# (12三号 → 123号, 1五02室 → 1502室). Starting at a numeral keeps a plain 88号 from
# costing a conversion, and the pattern a third faster than one starting with digits.
_NUMERALS = "零〇幺一二两三四五六七八九十百千"
_CN_NUMBER = re.compile(rf"[{_NUMERALS}][0-9{_NUMERALS}]*(?=(?:{_UNIT_WORDS}))")
# A room number read digit by digit at the end, after its building, unit or floor:
# 5栋一五零二 (no 室 to mark it).
_CN_ROOM = re.compile(r"(?<=[栋幢座元楼层号])[零〇幺一二两三四五六七八九]{2,}$")
_ORDINAL = re.compile(r"第(?=\d)")  # 第3栋 is 3栋
_TRIPLE = re.compile(r"(?<![\d])(\d{1,3})-(\d{1,2})-(\d{3,4})(?![\d])")
# What a building, room, floor or compound word after a number becomes. One pattern
# with a table instead of a pattern per spelling: normalise runs for every address of
# millions of customers, and each pass over the text cost ~0.8 µs whether it matched or
# not (four passes 3.6 µs, this one 1.7 µs). Longer spellings first (房间 before 房).
# One pass does not rewrite what a removal uncovers (5室层 stays 5层, where four passes
# gave 5楼); no generated or seen address has such a pair.
_AFTER_NUMBER = {
    **dict.fromkeys(("号楼", "号栋", "号座", "栋", "幢", "座"), "栋"),
    **dict.fromkeys(("号房", "房间", "房", "户", "室"), ""),
    "层": "楼",
    "号院": "号",
}
# looking behind for the digit instead of capturing ``(\d+)``: the engine then searches
# for the suffix instead of trying ``\d+`` at every digit
_NUMBER_SUFFIX = re.compile(
    r"(?<=\d)(?:" + "|".join(sorted(_AFTER_NUMBER, key=len, reverse=True)) + ")"
)
_BRACKETED = re.compile(r"[(（\[【].*?[)）\]】]")  # bracketed notes: （近地铁站）
_PUNCTUATION = re.compile(r"[\s,，.。·、\-—_#/\\:：;；'\"]+")
_AREA_SUFFIXES = frozenset("省市区县旗盟州")
_ROAD = re.compile(r"^(.{1,12}?(?:路|街|大道|道|巷|弄|胡同|里))(\d+号)?")


def cn_numeral_to_int(text: str) -> int:
    """一五零二 → 1502, 十二 → 12, 二百零五 → 205, 幺五零二 → 1502, and with digits
    mixed in 五02 → 502, 十1 → 11, 一百23 → 123 (house numbers, so up to 9999)."""
    if all(ch in _DIGIT_VALUES for ch in text):
        return int("".join(str(_DIGIT_VALUES[ch]) for ch in text))
    total = current = 0
    for ch in text:
        if ch in _DIGIT_VALUES:
            current = current * 10 + _DIGIT_VALUES[ch]
        else:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
    return total + current


def _as_digits(match: re.Match[str]) -> str:
    return str(cn_numeral_to_int(match.group(0)))


def normalise(text: str) -> str:
    """The canonical spelling of an address fragment (no parsing of areas)."""
    out = to_simplified(unicodedata.normalize("NFKC", text).upper())
    out = _CN_NUMBER.sub(_as_digits, out)
    if out[-1:] in _CN_DIGITS:
        out = _CN_ROOM.sub(_as_digits, out)
    if "第" in out:
        out = _ORDINAL.sub("", out)
    if "-" in out:  # 5-1-1502 (building-unit-room); most addresses have no dash
        out = _TRIPLE.sub(r"\1栋\2单元\3", out)
    out = _BRACKETED.sub("", out)
    out = _NUMBER_SUFFIX.sub(lambda m: _AFTER_NUMBER[m.group()], out)
    # literal rewrites: str.replace is a third of a regex pass
    out = out.replace("大街", "街").replace("小区", "").replace("社区", "")
    return _PUNCTUATION.sub("", out)


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    province: str | None
    city: str | None
    district: str | None
    street: str | None  # road and house number: 建国路88号
    detail: str  # everything after the district, normalised
    ambiguous_district: bool = False

    @property
    def normalised(self) -> str:
        """The text stored for trigram search: full area names, then the detail."""
        parts = [self.province, None if self.city == self.province else self.city, self.district]
        return "".join(p for p in parts if p) + self.detail


@dataclass(frozen=True, slots=True)
class _Tables:
    provinces: dict[str, str]  # any spelling → full name
    cities: dict[str, list[City]]
    districts: dict[str, list[tuple[City, str]]]
    city_names: frozenset[str]  # full names, for 北京市 being a province and a city
    official: frozenset[str]  # every full name of every level
    municipal_shorts: frozenset[str]  # short names of the municipalities' districts (朝阳)
    province_lengths: dict[str, tuple[int, ...]]
    city_lengths: dict[str, tuple[int, ...]]
    district_lengths: dict[str, tuple[int, ...]]


_MUNICIPALITIES = frozenset({"北京市", "上海市", "天津市", "重庆市"})


def _spellings(name: str) -> set[str]:
    """The official name, its short form, and for autonomous areas the form people write:
    延边州, 凉山州 for the prefectures, 双江县 for 双江拉祜族佤族布朗族傣族自治县."""
    spellings = {name, short_name(name)}
    for suffix in ("州", "县", "旗"):
        if name.endswith("自治" + suffix):
            spellings.add(short_name(name) + suffix)
    return spellings


@cache
def _tables() -> _Tables:
    provinces: dict[str, str] = {}
    cities: dict[str, list[City]] = defaultdict(list)
    districts: dict[str, list[tuple[City, str]]] = defaultdict(list)
    official: set[str] = set()
    municipal: set[str] = set()
    for city in CITIES:
        for spelling in {city.province, short_name(city.province)}:
            provinces[spelling] = city.province
        for spelling in _spellings(city.name):
            cities[spelling].append(city)
        official.update((city.province, city.name))
        for district in city.districts:
            official.add(district)
            for spelling in _spellings(district):
                districts[spelling].append((city, district))
            if city.name in _MUNICIPALITIES:
                municipal.add(short_name(district))
    tables = _Tables(
        provinces,
        dict(cities),
        dict(districts),
        frozenset(c.name for c in CITIES),
        frozenset(official),
        frozenset(municipal - official),
        _lengths_by_first(provinces),
        _lengths_by_first(cities),
        _lengths_by_first(districts),
    )
    return tables


def _lengths_by_first(names: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """First character → the lengths of the names starting with it, longest first.

    Why: names now run from 2 to 15 characters (双江拉祜族佤族布朗族傣族自治县), and a
    first character starts few of them, so :func:`_take` tries two or three slices
    instead of fourteen.
    """
    lengths: dict[str, set[int]] = defaultdict(set)
    for name in names:
        lengths[name[0]].add(len(name))
    return {ch: tuple(sorted(sizes, reverse=True)) for ch, sizes in lengths.items()}


def _take(
    text: str, names: dict[str, Any], lengths: dict[str, tuple[int, ...]]
) -> tuple[str, str] | None:
    """The longest known name at the start of ``text`` (and the rest)."""
    for size in lengths.get(text[:1], ()):
        head = text[:size]
        if size > len(text) or head not in names:
            continue
        rest = text[size:]
        # a short name followed by a road suffix is a road (朝阳路), not an area
        if rest[:1] in ("路", "街", "道", "巷") or rest.startswith("大道"):
            continue
        # nor, followed by an area suffix, is it this area: 河北区 is Tianjin's
        # district, not 河北省 + "区"
        if rest[:1] in _AREA_SUFFIXES and head[-1] not in _AREA_SUFFIXES:
            continue
        return head, rest
    return None


def _city_reading(head: str, rest: str, province: str | None, tables: _Tables) -> list[City]:
    """The cities ``head`` names here, or none when it is better read as something else.

    With every prefecture known, some short names are also districts: 朝阳 is 辽宁's
    朝阳市 and 北京's 朝阳区, 西安 is 陕西's capital and a district of 辽源. A city of
    another province than the one just read is no reading (北京朝阳 → 朝阳区). A bare
    short name that a municipality's district also has is the district (people say
    朝阳 for 北京朝阳区 far more often than for 朝阳市), unless one of that city's own
    districts follows (朝阳双塔区). Otherwise the city wins (西安, 长沙, 中山).
    """
    cities = [c for c in tables.cities[head] if province in (None, c.province)]
    if cities and head in tables.municipal_shorts:
        cities = [c for c in cities if any(rest.startswith(d) for d in c.districts)]
    return cities


def _district_sharing_shi(cities: list[City], rest: str) -> tuple[City, str] | None:
    """The district of 青岛市北区 and 济南市中区: 市北区 and 市中区 begin with the 市 that
    ended the city's name, so people write it once, and the longest city name (青岛市)
    leaves 北区, which is no district. Only the full name counts: 青岛市北京路 is a road
    of 青岛, not 市北 + 京路."""
    for city in cities:
        for district in city.districts:
            if district[0] == "市" and rest.startswith(district[1:]):
                return city, district
    return None


def is_official_name(text: str) -> bool:
    """True when ``text`` is the full official name of a province, city or district."""
    return text in _tables().official


def parse_address(text: str, prior_city: str | None = None) -> ParsedAddress:
    """Split an address into province / city / district / street / detail.

    Missing levels are filled from the level below when that is unambiguous (天河区 →
    广州市, 广东省). ``prior_city`` (a full city name) resolves a district that exists in
    several cities; without it the district stays, the city stays empty and
    ``ambiguous_district`` is set.
    """
    tables = _tables()
    rest = normalise(text)
    province = city_name = district = None
    candidates: list[City] = []
    if taken := _take(rest, tables.provinces, tables.province_lengths):
        province, rest = tables.provinces[taken[0]], taken[1]
    city_head = ""
    if (taken := _take(rest, tables.cities, tables.city_lengths)) and (
        cities := _city_reading(taken[0], taken[1], province, tables)
    ):
        (city_head, rest), candidates = taken, cities
    if not candidates and province in tables.city_names:  # 北京市 is both
        candidates = [city_named(province)]
    if taken := _take(rest, tables.districts, tables.district_lengths):
        options = [
            (c, d) for c, d in tables.districts[taken[0]] if not candidates or c in candidates
        ]
        if options:
            rest = taken[1]
            if len(options) > 1 and prior_city:
                options = [(c, d) for c, d in options if c.name == prior_city] or options
            district = options[0][1]
            if len({c for c, _ in options}) == 1:
                candidates = [options[0][0]]
    if (
        district is None
        and city_head.endswith("市")
        and (shared := _district_sharing_shi(candidates, rest))
    ):
        (city, district), rest = shared, rest[len(shared[1]) - 1 :]
        candidates = [city]
    ambiguous = district is not None and len(candidates) != 1
    if len(candidates) == 1:
        city_name, province = candidates[0].name, candidates[0].province
    street = None
    if match := _ROAD.match(rest):
        street = match.group(0)
    return ParsedAddress(province, city_name, district, street, rest, ambiguous)

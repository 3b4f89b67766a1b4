"""Address normalisation and parsing (research §3.3–3.4), pure and table-driven.

Callers say the same place many ways: with or without the province and city, ``5号楼``
/ ``5栋`` / ``5幢`` / ``五号楼``, full-width digits from a phone keyboard, ``5-1-1502``
for building-unit-room, a district on its own. Both the stored address and the query go
through :func:`normalise` so the database compares like with like, and a substring of a
normalised query (road + number) is a substring of the normalised record.

An ambiguous district (朝阳区 is in 北京 and 长春, 鼓楼区 in four cities) is never resolved
by guessing; only a ``prior_city`` (from the caller's number) resolves it, as cpca's
global guess was wrong half the time in the research.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from screenpop.regions import CITIES, City, short_name

__all__ = ["ParsedAddress", "cn_numeral_to_int", "normalise", "parse_address"]

_CN_DIGITS = dict(
    zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True)
)
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_UNIT_WORDS = "号楼|号院|号|栋|幢|座|单元|楼|层|室|弄|巷|组|队|户"
_CN_NUMBER = re.compile(rf"[零〇一二两三四五六七八九十百千]+(?=({_UNIT_WORDS}))")
_TRIPLE = re.compile(r"(?<![\d])(\d{1,3})-(\d{1,2})-(\d{3,4})(?![\d])")
# The number-suffix rules look behind for the digit instead of capturing ``(\d+)``:
# same result, but the engine then searches for the literal suffix instead of trying
# ``\d+`` at every digit (normalise went from 14 to ~6 µs; the importer runs it for
# every address of millions of customers).
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[(（\[【].*?[)）\]】]"), ""),  # bracketed notes: （近地铁站）
    (re.compile(r"(?<=\d)(?:号楼|号栋|号座|栋|幢|座)"), "栋"),
    (re.compile(r"(?<=\d)(?:号房|房间|房|户|室)"), ""),
    (re.compile(r"(?<=\d)层"), "楼"),
    (re.compile(r"(?<=\d)号院"), "号"),
    (re.compile(r"大街"), "街"),
    (re.compile(r"(小区|社区)"), ""),
    (re.compile(r"[\s,，.。·、\-—_#/\\:：;；'\"]+"), ""),
)
_AREA_SUFFIXES = frozenset("省市区县旗盟州")
_ROAD = re.compile(r"^(.{1,12}?(?:路|街|大道|道|巷|弄|胡同|里))(\d+号)?")


def cn_numeral_to_int(text: str) -> int:
    """一五零二 → 1502, 十二 → 12, 二百零五 → 205 (house numbers, so up to 9999)."""
    if all(ch in _CN_DIGITS for ch in text):
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total = current = 0
    for ch in text:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        else:
            total += (current or 1) * _CN_UNITS[ch]
            current = 0
    return total + current


def normalise(text: str) -> str:
    """The canonical spelling of an address fragment (no parsing of areas)."""
    out = unicodedata.normalize("NFKC", text).upper()
    out = _CN_NUMBER.sub(lambda m: str(cn_numeral_to_int(m.group(0))), out)
    if "-" in out:  # 5-1-1502 (building-unit-room); most addresses have no dash
        out = _TRIPLE.sub(r"\1栋\2单元\3", out)
    for pattern, replacement in _RULES:
        out = pattern.sub(replacement, out)
    return out


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


@cache
def _tables() -> _Tables:
    provinces: dict[str, str] = {}
    cities: dict[str, list[City]] = defaultdict(list)
    districts: dict[str, list[tuple[City, str]]] = defaultdict(list)
    for city in CITIES:
        for spelling in {city.province, short_name(city.province)}:
            provinces[spelling] = city.province
        for spelling in {city.name, short_name(city.name)}:
            cities[spelling].append(city)
        for district in city.districts:
            for spelling in {district, short_name(district)}:
                districts[spelling].append((city, district))
    tables = _Tables(provinces, dict(cities), dict(districts), frozenset(c.name for c in CITIES))
    for names in (tables.provinces, tables.cities, tables.districts):
        _NAMES_BY_ID[id(names)] = names
    return tables


_NAMES_BY_ID: dict[int, dict[str, Any]] = {}


def _take(text: str, names: dict[str, object]) -> tuple[str, str] | None:
    """The longest known name at the start of ``text`` (and the rest)."""
    size = _head_size(text[:11], id(names))
    return (text[:size], text[size:]) if size else None


@lru_cache(maxsize=1 << 16)
def _head_size(prefix: str, table: int) -> int:
    """Length of the known name that ``prefix`` starts with, or 0 (memoised for the importer).

    The answer depends on the first 11 characters only (a name is at most 9, then the
    two-character road check), and addresses share their first ones (四川省成都市…),
    so caching on that prefix skips most of the slicing. ``table`` is the ``id`` of one
    of the :func:`_tables` dictionaries, which live as long as the process.
    """
    names = _NAMES_BY_ID[table]
    text = prefix
    for size in range(min(9, len(text)), 1, -1):
        head = text[:size]
        if head in names:
            rest = text[size:]
            # a short name followed by a road suffix is a road (朝阳路), not an area
            if rest[:1] in ("路", "街", "道", "巷") or rest.startswith("大道"):
                continue
            # nor, followed by an area suffix, is it this area: 河北区 is Tianjin's
            # district, not 河北省 + "区"
            if rest[:1] in _AREA_SUFFIXES and head[-1] not in _AREA_SUFFIXES:
                continue
            return size
    return 0


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
    if taken := _take(rest, tables.provinces):
        province, rest = tables.provinces[taken[0]], taken[1]
    if taken := _take(rest, tables.cities):
        candidates = [c for c in tables.cities[taken[0]] if province in (None, c.province)]
        rest = taken[1]
    if not candidates and province in tables.city_names:  # 北京市 is both
        candidates = [c for c in CITIES if c.name == province]
    if taken := _take(rest, tables.districts):
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
    ambiguous = district is not None and len(candidates) != 1
    if len(candidates) == 1:
        city_name, province = candidates[0].name, candidates[0].province
    street = None
    if match := _ROAD.match(rest):
        street = match.group(0)
    return ParsedAddress(province, city_name, district, street, rest, ambiguous)

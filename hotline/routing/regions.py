"""Where a caller's number is registered (归属地), and which dialect that region speaks.

The table lives in ``data/regions.toml`` (sources cited there, row by row) so linguists and
operators can correct a prefecture without touching code; this module only loads it and
answers two questions: *which region is this number from* and *which dialect is spoken there*.

This is the product's one locator: routing asks :meth:`RegionTable.locate`, caller matching
and the customer record ask it through :func:`hotline.matching.phone.region_of`, so a number
has the same region everywhere. How a number is located:

- ``+852``/``+853``/``+886`` by country calling code (Hong Kong, Macau, Taiwan).
- ``+86`` landlines by area code (``10``, ``2x``, then three-digit codes), from our table, when
  libphonenumber's CN metadata says the number is valid for that code (it knows which areas
  dial 7 and which 8 digits); shared codes (``024`` Shenyang/Fushun/Benxi/Tieling) resolve to
  the first listed area.
- ``+86`` mobiles by 7-digit block: PyPI ``phone`` first, because libphonenumber's geocoder
  has no data for 16x, 19x and most of 17x; then that geocoder, imported only on that miss
  because importing it costs ~100 MB and 0.3 s per process.

Area codes are held without the trunk 0 (``"20"``, as in E.164); the TOML file writes them as
people dial them (``"020"``) and is converted when it is loaded, and messages show the ``0``.
Names are compared in their everyday form (:func:`short_name`: ``广州市`` → ``广州``), the one
suffix stripper of the product.

Nothing here raises on bad input: an unlocatable number gives a :class:`Location` with
``region=None`` and a ``detail`` that says why, because the caller is on the line and the
router must still choose a queue.
"""

from __future__ import annotations

import bisect
import logging
import re
import sys
import tomllib
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import phonenumbers

from hotline.phones import MOBILE, area_code, split_e164, valid_national

__all__ = [
    "MANDARIN",
    "REGIONS_FILE",
    "Dialect",
    "Location",
    "Province",
    "Region",
    "RegionTable",
    "default_table",
    "short_name",
]

log = logging.getLogger(__name__)

REGIONS_FILE = Path(__file__).with_name("data") / "regions.toml"
MANDARIN = "mandarin"

_NON_GEOGRAPHIC = ("400", "800")
_SEPARATORS = re.compile(r"[、/,，]")

# -- names ------------------------------------------------------------------------------------
# The 55 minority nationalities, for the names of autonomous areas: 延边朝鲜族自治州 is
# said 延边, 黔东南苗族侗族自治州 黔东南. Longest first, so 土家 is tried before 土.
_PEOPLES = (
    "蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 "
    "高山 拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 "
    "普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 "
    "珞巴 基诺"
)
_ETHNIC = sorted(_PEOPLES.split(), key=len, reverse=True)
# tried in order: a longer suffix before the shorter one it ends with (自治区 before 区)
_SUFFIXES = (
    "特别行政区",
    "自治区",
    "自治州",
    "自治县",
    "自治旗",
    "新区",
    "地区",
    "省",
    "市",
    "区",
    "县",
    "盟",
)
# a forestry district (万柏林区 is 万柏林 + 区), and the one autonomous region without 族
_IRREGULAR = {"神农架林区": "神农架", "新疆维吾尔自治区": "新疆"}


def _without_peoples(stem: str) -> str:
    """黔东南苗族侗族 → 黔东南, 管城回族 → 管城 (the stem keeps two characters at least)."""
    stripped = "族" in stem
    while stripped:
        stripped = False
        for people in _ETHNIC:
            cut = stem.removesuffix(people + "族")
            if cut != stem and len(cut) >= 2:
                stem, stripped = cut, True
                break
    return stem


def short_name(name: str) -> str:
    """The everyday form of an area name: 广东省 → 广东, 浦东新区 → 浦东, 梅县区 → 梅县.

    Number-location data, addresses and callers use it. The stem keeps at least two
    characters (市中区 stays, 城关区 → 城关 is fine, but a one-character stem such as
    新区 → 新 would match everything, so it is refused). Autonomous areas drop the
    nationalities too: 恩施土家族苗族自治州 → 恩施.
    """
    if name in _IRREGULAR:
        return _IRREGULAR[name]
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return _without_peoples(name[: -len(suffix)])
    return name


@dataclass(frozen=True, slots=True)
class Dialect:
    """A dialect group; ``fallback`` lists the groups tried, in order, before Mandarin."""

    id: str
    zh: str
    en: str
    aliases: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Region:
    """One prefecture-level area (or a directly governed county, or HK/Macau/Taiwan)."""

    province: str
    name: str
    dialect: str
    codes: tuple[str, ...] = ()  # area codes without the trunk 0: ("20",), ("755",)
    aliases: tuple[str, ...] = ()
    kind: str = "prefecture"
    note: str = ""
    sources: tuple[str, ...] = ()

    label: str = field(init=False, compare=False, repr=False)
    """``广东省广州市``; ``北京市`` for municipalities; ``香港`` for the SARs (every locate
    message names it, so it is computed once)."""

    def __post_init__(self) -> None:
        label = self.name if self.name.startswith(short_name(self.province)) else None
        object.__setattr__(self, "label", label or self.province + self.name)

    @property
    def city(self) -> str:
        """The official name, under the word the customer record and addresses use."""
        return self.name


@dataclass(frozen=True, slots=True)
class Province:
    name: str
    short: str
    default: str
    kind: str = "province"
    country_code: str | None = None
    regions: tuple[Region, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """Where a number is registered and how that was found.

    ``dialect`` is the region's dialect, or the province default when only the province is
    known, or ``None`` when nothing is known. ``method`` is one of ``country-code``,
    ``area-code``, ``mobile-phone``, ``mobile-phonenumbers`` or ``none``.
    """

    e164: str | None
    method: str
    detail: str
    region: Region | None = None
    province: str | None = None
    dialect: str | None = None
    shared_with: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "e164": self.e164,
            "method": self.method,
            "detail": self.detail,
            "province": self.province,
            "region": self.region.label if self.region else None,
            "dialect": self.dialect,
            "shared_with": list(self.shared_with),
        }


class _Found(NamedTuple):
    """What a look-up found, before it becomes a :class:`Location` (a tuple: cheap to make)."""

    method: str
    detail: str
    region: Region | None = None
    province: Province | None = None
    shared_with: tuple[str, ...] = ()


class RegionTable:
    """The loaded region → dialect table with its look-ups (immutable after construction)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.sources: dict[str, str] = dict(data.get("sources", {}))
        self.dialects: dict[str, Dialect] = {
            key: Dialect(
                id=key,
                zh=value.get("zh", key),
                en=value.get("en", key),
                aliases=tuple(value.get("aliases", ())),
                fallback=tuple(value.get("fallback", ())),
                sources=tuple(value.get("src", ())),
            )
            for key, value in data.get("dialects", {}).items()
        }
        if MANDARIN not in self.dialects:
            raise ValueError("the region table must define the mandarin dialect")
        self.provinces: dict[str, Province] = {}
        self._by_code: dict[str, list[Region]] = {}
        self._by_country: dict[str, Province] = {}
        self._province_keys: dict[str, Province] = {}
        self._names: dict[tuple[str, str], Region] = {}
        for pname, pdata in data.get("provinces", {}).items():
            default = pdata.get("default", MANDARIN)
            self._check_dialect(default, pname)
            regions = []
            for area in pdata.get("areas", ()):
                dialect = area.get("dialect", default)
                self._check_dialect(dialect, f"{pname} {area['name']}")
                regions.append(
                    Region(
                        province=pname,
                        name=area["name"],
                        dialect=dialect,
                        codes=tuple(_without_trunk(code) for code in area.get("codes", ())),
                        aliases=tuple(area.get("aliases", ())),
                        kind=area.get("kind", pdata.get("kind", "prefecture")),
                        note=area.get("note", ""),
                        sources=tuple(area.get("src", pdata.get("src", ()))),
                    )
                )
            province = Province(
                name=pname,
                short=pdata.get("short", short_name(pname)),
                default=default,
                kind=pdata.get("kind", "province"),
                country_code=pdata.get("country_code"),
                regions=tuple(regions),
                sources=tuple(pdata.get("src", ())),
            )
            self.provinces[pname] = province
            for key in {pname, province.short, short_name(pname)}:
                self._province_keys[key] = province
            if province.country_code:
                self._by_country[province.country_code] = province
            for region in regions:
                for code in region.codes:
                    self._by_code.setdefault(code, []).append(region)
                for name in (region.name, *region.aliases):
                    for key in {name, short_name(name)}:
                        self._names.setdefault((pname, key), region)
        # (province, city) as location data names it → what it resolves to; filled on use
        self._places: dict[tuple[str, str], tuple[Province, Region | None] | None] = {}
        self._province_pattern = re.compile(
            "^("
            + "|".join(sorted(map(re.escape, self._province_keys), key=len, reverse=True))
            + ")"
        )

    def _check_dialect(self, dialect: str, where: str) -> None:
        if dialect not in self.dialects:
            raise ValueError(f"{where}: unknown dialect {dialect!r}")

    @classmethod
    def load(cls, path: Path | str = REGIONS_FILE) -> RegionTable:
        with open(path, "rb") as handle:
            return cls(tomllib.load(handle))

    # -- look-ups -----------------------------------------------------------------------
    @property
    def regions(self) -> tuple[Region, ...]:
        return tuple(r for p in self.provinces.values() for r in p.regions)

    def area_codes(self) -> dict[str, list[Region]]:
        """Every area code (without the trunk 0) → the regions using it, first listed first."""
        return {code: list(regions) for code, regions in self._by_code.items()}

    def by_area_code(self, code: str) -> list[Region]:
        """The regions of an area code, written with or without its trunk 0."""
        return list(self._by_code.get(_without_trunk(code), ()))

    def province(self, name: str | None) -> Province | None:
        if not name:
            return None
        return self._province_keys.get(name) or self._province_keys.get(short_name(name))

    def find(self, province: str | None, city: str | None) -> Region | None:
        """The region for a (province, city) pair in any of the forms location data uses.

        ``("广东", "广州")``, ``("广东省", "广州市")`` and a municipality with no city
        (``("北京市", "")``) all work; an unknown pair gives ``None``.
        """
        prov = self.province(province)
        if prov is None:
            return None
        city = (city or "").strip()
        found = self._names.get((prov.name, city)) or self._names.get((prov.name, short_name(city)))
        if found is None and city in ("", prov.name, prov.short) and len(prov.regions) == 1:
            return prov.regions[0]  # municipalities and SARs: the province is the area
        return found

    def parse_description(self, text: str) -> tuple[Province | None, Region | None]:
        """Split a phonenumbers geocoder description (``广东省广州市``, ``广西南宁市``,
        ``四川省成都市、资阳市、眉山市``, ``云南西双版纳``, ``天津``) into province and region.
        Several cities: the first one, which is the one the area code belongs to."""
        match = self._province_pattern.match(text or "")
        if not match:
            return None, None
        prov = self._province_keys[match.group(1)]
        rest = _SEPARATORS.split(text[match.end() :])[0]
        return prov, self.find(prov.name, rest)

    def dialect_id(self, text: str | None) -> str | None:
        """Map free text (``粤语``, ``Cantonese``, ``yue``) to a dialect id, or ``None``."""
        if not text:
            return None
        key = text.strip().lower()
        if key in self.dialects:
            return key
        for dialect in self.dialects.values():
            if key in (alias.lower() for alias in dialect.aliases) or key in (
                dialect.zh,
                dialect.en.lower(),
            ):
                return dialect.id
        return None

    def fallback_chain(
        self, dialect: str, overrides: Mapping[str, Sequence[str]] | None = None
    ) -> tuple[str, ...]:
        """``dialect``, its configured fallbacks, then Mandarin, without repeats."""
        if overrides is not None and dialect in overrides:
            extra: Sequence[str] = overrides[dialect]
        elif dialect in self.dialects:
            extra = self.dialects[dialect].fallback
        else:
            extra = ()
        chain: list[str] = []
        for item in (dialect, *extra, MANDARIN):
            if item not in chain:
                chain.append(item)
        return tuple(chain)

    # -- numbers ------------------------------------------------------------------------
    def locate(self, e164: str | None, *, geocoder: bool = True) -> Location:
        """Locate an E.164 number (see :func:`hotline.phones.to_e164`) and say how; never
        raises.

        ``geocoder=False`` skips libphonenumber's geocoder for mobile blocks the phone package
        lacks (149 blocks of 14x/17x/18x): the bulk importer's workers would each import its
        ~100 MB for them, and a customer record's region is only a hint.
        """
        if not e164:
            return Location(e164=None, method="none", detail="no usable caller number")
        found = self._find(e164, geocoder)
        region, prov = found.region, found.province
        return Location(
            e164=e164,
            method=found.method,
            detail=found.detail,
            region=region,
            province=prov.name if prov else None,
            dialect=region.dialect if region else prov.default if prov else None,
            shared_with=found.shared_with,
        )

    def region_of(self, e164: str, *, geocoder: bool = True) -> Region | None:
        """The region :meth:`locate` finds, without its account of how: the importer asks
        this for millions of numbers, and a :class:`Location` costs more than the look-up."""
        return self._find(e164, geocoder).region if e164 else None

    def _find(self, e164: str, geocoder: bool) -> _Found:
        split = split_e164(e164)
        if split is None:
            return _Found("none", f"{e164} is not an E.164 number")
        country, nsn = str(split[0]), split[1]
        if country in self._by_country:
            prov = self._by_country[country]
            region = prov.regions[0] if prov.regions else None
            return _Found("country-code", f"country code +{country} is {prov.short}", region, prov)
        if country != "86":
            return _Found("none", f"international number (+{country}); no Chinese region")
        if MOBILE.fullmatch(nsn):
            return self._find_mobile(nsn, geocoder)
        return self._find_landline(e164, nsn)

    def _find_landline(self, e164: str, nsn: str) -> _Found:
        if nsn.startswith(_NON_GEOGRAPHIC):
            return _Found("none", f"+86 {nsn[:3]}… is a non-geographic number")
        code = area_code(nsn)
        regions = self._by_code.get(code)
        if not regions:
            return _Found("none", f"area code 0{code} is not in the region table")
        if not valid_national(86, nsn):
            why = f"{e164} is not a valid number for area code 0{code}; region not used"
            return _Found("none", why)
        region = regions[0]
        shared = tuple(r.label for r in regions[1:])
        detail = f"landline area code 0{code} is {region.label}"
        if shared:
            detail += f" (code shared with {'、'.join(shared)})"
        return _Found("area-code", detail, region, self.provinces[region.province], shared)

    def _find_mobile(self, nsn: str, geocoder: bool) -> _Found:
        block = nsn[:7]
        found = _phone_pkg_lookup(nsn)
        place = self._place(*found) if found is not None else None
        method, raw = "mobile-phone", "".join(found or ())
        if place is None and geocoder and (description := _geocoder_description(nsn)):
            prov, region = self.parse_description(description)
            place = (prov, region) if prov is not None else None
            method, raw = "mobile-phonenumbers", description
        if place is None:
            return _Found("none", f"mobile block {block} has no location in either data set")
        prov, region = place
        if region is not None:
            why = f"mobile block {block} is registered in {region.label}"
            return _Found(method, why, region, prov)
        why = (
            f"mobile block {block} is registered in {raw!r}, a city not in the table; "
            f"using the {prov.name} default"
        )
        return _Found(method, why, None, prov)

    def mobile_blocks(self) -> dict[Region, tuple[int, ...]]:
        """Every region's 7-digit mobile blocks (``1380013``…), from the same data and with
        the same names as :meth:`locate`: for tools that need real numbers of a city."""
        data = _mobile_blocks()
        blocks: dict[Region, list[int]] = {}
        for block, record in zip(data.blocks, data.records, strict=True):
            place = self._place(*data.places[record])
            if place is not None and place[1] is not None:
                blocks.setdefault(place[1], []).append(block)
        return {region: tuple(found) for region, found in blocks.items()}

    def _place(self, province: str, city: str) -> tuple[Province, Region | None] | None:
        """A (province, city) pair of location data → our province and region, cached: the
        phone package names about 380 places, looked up for every mobile number."""
        key = (province, city)
        if key not in self._places:
            prov = self.province(province)
            self._places[key] = None if prov is None else (prov, self.find(prov.name, city))
        return self._places[key]


def _without_trunk(code: str) -> str:
    """``"020"`` → ``"20"``: the data edge, where codes written as dialled become E.164 digits."""
    return code.removeprefix("0")


@dataclass(frozen=True, slots=True)
class _MobileBlocks:
    """PyPI ``phone``'s 7-digit mobile blocks (data 2023-12, 499,527 blocks), sorted, with the
    place each is registered in: ``places[records[i]]`` for ``blocks[i]``."""

    blocks: array[int]
    records: array[int]
    places: dict[int, tuple[str, str]]


@lru_cache(maxsize=1)
def _mobile_blocks() -> _MobileBlocks:
    """Read PyPI ``phone``'s data file once into two arrays (4 MB, ~0.1 s), then a C bisect
    per number: the package's own ``find`` is a Python binary search (22 µs a number), too
    slow for the importer's millions, and a dict of the blocks would take 40 MB.
    """
    from phone import Phone

    db = Phone()
    if db.phone_fmt != "<iiB":
        raise ValueError(f"unknown phone.dat record format {db.phone_fmt!r}")
    data: bytes = db.buf[db.first_phone_record_offset :]
    size = db.phone_fmt_length
    count = len(data) // size

    def column(offset: int) -> array[int]:  # one little-endian int32 of every record
        packed = bytearray(4 * count)
        for byte in range(4):
            packed[byte::4] = data[offset + byte : count * size : size]
        values = array("i", bytes(packed))
        if sys.byteorder == "big":
            values.byteswap()
        return values

    places: dict[int, tuple[str, str]] = {}  # the ~380 records sit between header and blocks
    offset = db.head_fmt_length
    for record in db.buf[offset : db.first_phone_record_offset].split(b"\x00")[:-1]:
        province, city = record.decode("utf-8").split("|")[:2]
        places[offset] = (province, city)
        offset += len(record) + 1
    return _MobileBlocks(column(0), column(4), places)


def _phone_pkg_lookup(nsn: str) -> tuple[str, str] | None:
    """(province, city) of a mobile's block from PyPI ``phone``, or ``None``."""
    try:
        data = _mobile_blocks()
    except Exception:  # a third-party data file: never fail a call over it
        log.warning("phone package data unreadable; block %s not located", nsn[:7], exc_info=True)
        return None
    block = int(nsn[:7])
    index = bisect.bisect_left(data.blocks, block)
    if index == len(data.blocks) or data.blocks[index] != block:
        return None
    province, city = data.places[data.records[index]]
    return (province, city) if province else None


def _geocoder_description(nsn: str) -> str | None:
    """libphonenumber's zh description (``广东省广州市``); ``None`` for ``中国``/nothing."""
    from phonenumbers import geocoder  # ~100 MB: only when the phone package missed

    try:
        number = phonenumbers.PhoneNumber(country_code=86, national_number=int(nsn))
        text = geocoder.description_for_number(number, "zh")
    except Exception:
        log.warning("geocoder failed for a +86 number", exc_info=True)
        return None
    return text if text and text != "中国" else None


@lru_cache(maxsize=1)
def default_table() -> RegionTable:
    """The shipped table, loaded once per process."""
    return RegionTable.load()

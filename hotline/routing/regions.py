"""Where a caller's number is registered (归属地), and which dialect that region speaks.

The table lives in ``data/regions.toml`` (sources cited there, row by row) so linguists and
operators can correct a prefecture without touching code; this module only loads it and
answers two questions: *which region is this number from* and *which dialect is spoken there*.

How a number is located (research caller-matching.md §1):

- ``+852``/``+853``/``+886`` by country calling code (Hong Kong, Macau, Taiwan).
- ``+86`` landlines by area code (``010``, ``02x``, then three-digit codes), from our table;
  shared codes (``024`` Shenyang/Fushun/Benxi/Tieling) resolve to the first listed area.
- ``+86`` mobiles by 7-digit block: PyPI ``phone`` first, because libphonenumber has no data
  for 16x/17x/19x; then phonenumbers' geocoder, imported only on that miss because importing
  it costs ~100 MB and 0.3 s per process.

Nothing here raises on bad input: an unlocatable number gives a :class:`Location` with
``region=None`` and a ``detail`` that says why, because the caller is on the line and the
router must still choose a queue.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import phonenumbers

__all__ = [
    "MANDARIN",
    "REGIONS_FILE",
    "Dialect",
    "Location",
    "Province",
    "Region",
    "RegionTable",
    "default_table",
]

log = logging.getLogger(__name__)

REGIONS_FILE = Path(__file__).with_name("data") / "regions.toml"
MANDARIN = "mandarin"

_SUFFIXES = ("特别行政区", "自治区", "地区", "林区", "省", "市", "盟", "县")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_NON_GEOGRAPHIC = ("400", "800")
_SEPARATORS = re.compile(r"[、/,，]")


def _strip(name: str) -> str:
    """``广州市`` → ``广州``, ``锡林郭勒盟`` → ``锡林郭勒``: the form location data uses."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
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
    codes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    kind: str = "prefecture"
    note: str = ""
    sources: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``广东省广州市``; ``北京市`` for municipalities; ``香港`` for the SARs."""
        return (
            self.name if self.name.startswith(_strip(self.province)) else self.province + self.name
        )


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
                        codes=tuple(area.get("codes", ())),
                        aliases=tuple(area.get("aliases", ())),
                        kind=area.get("kind", pdata.get("kind", "prefecture")),
                        note=area.get("note", ""),
                        sources=tuple(area.get("src", pdata.get("src", ()))),
                    )
                )
            province = Province(
                name=pname,
                short=pdata.get("short", _strip(pname)),
                default=default,
                kind=pdata.get("kind", "province"),
                country_code=pdata.get("country_code"),
                regions=tuple(regions),
                sources=tuple(pdata.get("src", ())),
            )
            self.provinces[pname] = province
            for key in {pname, province.short, _strip(pname)}:
                self._province_keys[key] = province
            if province.country_code:
                self._by_country[province.country_code] = province
            for region in regions:
                for code in region.codes:
                    self._by_code.setdefault(code, []).append(region)
                for name in (region.name, *region.aliases):
                    for key in {name, _strip(name)}:
                        self._names.setdefault((pname, key), region)
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
        """Every area code (with trunk 0) → the regions using it, first listed first."""
        return {code: list(regions) for code, regions in self._by_code.items()}

    def by_area_code(self, code: str) -> list[Region]:
        code = code if code.startswith("0") else "0" + code
        return list(self._by_code.get(code, ()))

    def province(self, name: str | None) -> Province | None:
        if not name:
            return None
        return self._province_keys.get(name) or self._province_keys.get(_strip(name))

    def find(self, province: str | None, city: str | None) -> Region | None:
        """The region for a (province, city) pair in any of the forms location data uses.

        ``("广东", "广州")``, ``("广东省", "广州市")`` and a municipality with no city
        (``("北京市", "")``) all work; an unknown pair gives ``None``.
        """
        prov = self.province(province)
        if prov is None:
            return None
        city = (city or "").strip()
        found = self._names.get((prov.name, city)) or self._names.get((prov.name, _strip(city)))
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
    def locate(self, e164: str | None) -> Location:
        """Locate an E.164 number (see :func:`hotline.phones.to_e164`); never raises."""
        if not e164:
            return Location(e164=None, method="none", detail="no usable caller number")
        try:
            number = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return Location(e164=e164, method="none", detail=f"{e164} is not an E.164 number")
        country = str(number.country_code)
        nsn = phonenumbers.national_significant_number(number)
        if country in self._by_country:
            prov = self._by_country[country]
            region = prov.regions[0] if prov.regions else None
            return Location(
                e164=e164,
                method="country-code",
                detail=f"country code +{country} is {prov.short}",
                region=region,
                province=prov.name,
                dialect=region.dialect if region else prov.default,
            )
        if country != "86":
            return Location(
                e164=e164,
                method="none",
                detail=f"international number (+{country}); no Chinese region",
            )
        if _MOBILE.fullmatch(nsn):
            return self._locate_mobile(e164, nsn, number)
        return self._locate_landline(e164, nsn, number)

    def _locate_landline(self, e164: str, nsn: str, number: phonenumbers.PhoneNumber) -> Location:
        if nsn.startswith(_NON_GEOGRAPHIC):
            return Location(
                e164=e164, method="none", detail=f"+86 {nsn[:3]}… is a non-geographic number"
            )
        code = "0" + (nsn[:2] if nsn.startswith(("10", "2")) else nsn[:3])
        regions = self._by_code.get(code)
        if not regions:
            return Location(
                e164=e164, method="none", detail=f"area code {code} is not in the region table"
            )
        if not phonenumbers.is_valid_number(number):
            return Location(
                e164=e164,
                method="none",
                detail=f"{e164} is not a valid number for area code {code}; region not used",
            )
        region = regions[0]
        shared = tuple(r.label for r in regions[1:])
        detail = f"landline area code {code} is {region.label}"
        if shared:
            detail += f" (code shared with {'、'.join(shared)})"
        return Location(
            e164=e164,
            method="area-code",
            detail=detail,
            region=region,
            province=region.province,
            dialect=region.dialect,
            shared_with=shared,
        )

    def _locate_mobile(self, e164: str, nsn: str, number: phonenumbers.PhoneNumber) -> Location:
        found = _phone_pkg_lookup(nsn)
        if found is not None:
            province, city = found
            location = self._from_names(e164, "mobile-phone", province, city, nsn)
            if location is not None:
                return location
        description = _geocoder_description(number)
        if description:
            prov, region = self.parse_description(description)
            if prov is not None:
                return self._location(e164, "mobile-phonenumbers", prov, region, description, nsn)
        return Location(
            e164=e164,
            method="none",
            detail=f"mobile block {nsn[:7]} has no location in either data set",
        )

    def _from_names(
        self, e164: str, method: str, province: str, city: str, nsn: str
    ) -> Location | None:
        prov = self.province(province)
        if prov is None:
            return None
        return self._location(e164, method, prov, self.find(prov.name, city), province + city, nsn)

    def _location(
        self,
        e164: str,
        method: str,
        prov: Province,
        region: Region | None,
        raw: str,
        nsn: str,
    ) -> Location:
        if region is not None:
            return Location(
                e164=e164,
                method=method,
                detail=f"mobile block {nsn[:7]} is registered in {region.label}",
                region=region,
                province=prov.name,
                dialect=region.dialect,
            )
        return Location(
            e164=e164,
            method=method,
            detail=f"mobile block {nsn[:7]} is registered in {raw!r}, a city not in the table; "
            f"using the {prov.name} default",
            province=prov.name,
            dialect=prov.default,
        )


@lru_cache(maxsize=1)
def _phone_db() -> Any:
    from phone import Phone  # type: ignore[import-untyped]

    return Phone()


def _phone_pkg_lookup(nsn: str) -> tuple[str, str] | None:
    """(province, city) from PyPI ``phone`` (data 2023-12), or ``None``."""
    try:
        found = _phone_db().find(nsn)
    except Exception:  # a third-party binary search over a data file: never fail a call
        log.warning("phone package lookup failed for block %s", nsn[:7], exc_info=True)
        return None
    if not found or not found.get("province"):
        return None
    return str(found["province"]), str(found.get("city") or "")


def _geocoder_description(number: phonenumbers.PhoneNumber) -> str | None:
    """libphonenumber's zh description (``广东省广州市``); ``None`` for ``中国``/nothing."""
    from phonenumbers import geocoder  # ~100 MB: only when the phone package missed

    try:
        text = geocoder.description_for_number(number, "zh")
    except Exception:
        log.warning("geocoder failed for a +86 number", exc_info=True)
        return None
    return text if text and text != "中国" else None


@lru_cache(maxsize=1)
def default_table() -> RegionTable:
    """The shipped table, loaded once per process."""
    return RegionTable.load()

"""Caller and typed numbers in any form → E.164 candidates, and the region a number is from.

Reading is :mod:`hotline.phones`' (width, punctuation, extension, country code with or without
``+``); what this module adds is what a *partial* number can mean. An agent types numbers the
way callers say them (``65123456`` without an area code, a mobile with a stray trunk ``0``),
and one typed number can stand for several stored ones (a local number without its area code).
So this returns *candidates*, never one guess, and the caller decides what ambiguity means.
Mainland numbers are checked against the numbering plan's shape by hand, not by
phonenumbers: 1.4 µs instead of 15 µs, for the matcher's queries and the importer's rows.

The region (归属地) is routing's locator (:meth:`hotline.routing.regions.RegionTable.locate`),
so the customer record and the router agree on where a number is from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import phonenumbers

from hotline.phones import cn_national, read, split_area
from hotline.routing.regions import Region, default_table

__all__ = ["PhoneKeys", "area_code_of", "known_area_codes", "parse_phone", "region_of"]

_REGION = "CN"  # the national record is mainland China's


@dataclass(frozen=True, slots=True)
class PhoneKeys:
    """What a typed number can mean: E.164 candidates (best first) and its kind."""

    candidates: tuple[str, ...]
    kind: str  # "mobile", "landline", "service", "international"
    extension: str | None = None


@cache
def known_area_codes() -> tuple[str, ...]:
    """Every mainland area code (without the trunk 0), from routing's region table."""
    return tuple(sorted(default_table().area_codes()))


def parse_phone(raw: str, area_codes: tuple[str, ...] | None = None) -> PhoneKeys | None:
    """Parse a number as typed or as delivered by a trunk; ``None`` when it is not one.

    ``area_codes`` are tried, in order, for a local number without its area code (the
    caller's or the site's city first); without them every known area code is tried,
    so the search can show each customer that number might be.
    """
    written = read(raw, _REGION)
    if written is None:
        return None
    digits, extension = written.digits, written.extension
    if written.international:
        if not digits.startswith("86"):
            return _international(digits, extension)
        return _national(digits[2:].removeprefix("0"), extension, area_codes, strict=True)
    return _national(digits, extension, area_codes, strict=False)


def _international(digits: str, extension: str | None) -> PhoneKeys | None:
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneKeys((e164,), "international", extension)


def _national(
    digits: str, extension: str | None, area_codes: tuple[str, ...] | None, strict: bool
) -> PhoneKeys | None:
    whole = cn_national(digits)
    if whole is not None:
        return PhoneKeys((f"+86{whole[0]}",), whole[1], extension)
    if strict or len(digits) not in (7, 8) or digits[0] in "01":
        return None
    codes = area_codes if area_codes else known_area_codes()
    local = [code for code in codes if len(code) + len(digits) in (9, 10, 11)]
    return PhoneKeys(tuple(f"+86{code}{digits}" for code in local), "landline", extension)


def area_code_of(e164: str) -> str | None:
    """The area code of a mainland landline in E.164 (without the trunk 0), or ``None``."""
    if not e164.startswith("+86"):
        return None
    split = split_area(e164[3:])
    return split[0] if split else None


def region_of(e164: str) -> Region | None:
    """Where a mainland number is registered (归属地), or ``None`` when unknown.

    A weak hint (numbers move with their owners, and migrants keep theirs), good for ranking
    and as the address parser's prior city, never for refusing a match. Numbers of Hong Kong,
    Macau and Taiwan give ``None``: the record's region column is for mainland numbers.
    """
    if not e164.startswith("+86"):
        return None
    return default_table().region_of(e164, geocoder=False)

"""Reading a phone number, once, for the whole product.

Trunks deliver numbers in every shape (``+86…``, ``0086…``, national with a trunk 0, bare
subscriber numbers), and a CRM export or an agent adds more: an extension (``010-12345678-808``,
``转808``, ``分机12``, ``ext. 5``, ``x123``, ``#123``), a country code without ``+`` or ``00``
(``8613800138000``, ``85221234567``), a trunk ``(0)`` after the country code
(``+44 (0)20 7946 0958``), full-width digits and brackets (``１３８…``, ``（021）``) and
ideographic spaces. The call log, the customer record, routing and caller matching all key on
E.164, so every one of them reads through this module:

- :func:`read`: what was written (the digits, whether they begin with a country code, the
  extension), without deciding whether it is a real number; caller matching builds its
  candidates from it (:mod:`hotline.matching.phone`);
- :func:`parse_number` / :func:`to_e164`: the reading checked by libphonenumber (PyPI
  ``phonenumbers``); an extension is kept apart and never makes a number invalid;
- :func:`split_e164` and the Chinese numbering plan as far as reading needs it
  (:func:`cn_national`, :func:`area_code`): routing's locator (:mod:`hotline.routing.regions`)
  uses them.

Garbage gives ``None`` and a log line that never shows the whole number (:func:`masked`), never
an exception: this runs in the call path.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import phonenumbers

from hotline.types import E164

__all__ = [
    "MOBILE",
    "PhoneNumber",
    "Written",
    "area_code",
    "cn_national",
    "masked",
    "parse_number",
    "read",
    "split_area",
    "split_e164",
    "to_e164",
    "valid_national",
]

log = logging.getLogger(__name__)


def masked(raw: str) -> str:
    """What a log line may show of a caller's number: its length and last four characters."""
    return f"<{len(raw)} chars …{raw[-4:]!r}>"


# -- the Chinese numbering plan ----------------------------------------------------------------
# Mobiles are 11 digits from 13x to 19x; 400/800 numbers are nationwide services (10 digits);
# landline area codes are 10 and 20–29 (two digits) or three digits, and a local number is 7 or
# 8 digits that never starts with 0 (the trunk prefix) or 1 (special services such as 110 and
# 12345). This is the MIIT numbering plan as libphonenumber's CN metadata encodes it.

MOBILE = re.compile(r"1[3-9]\d{9}")
_SERVICE = re.compile(r"[48]00\d{7}")


def area_code(national: str) -> str:
    """The area-code part of a mainland number without its trunk 0 (``2161234567`` → ``21``).

    Only the split: whether such a code exists is the region table's question.
    """
    return national[:2] if national.startswith(("10", "2")) else national[:3]


def split_area(national: str) -> tuple[str, str] | None:
    """A landline without its trunk 0 as (area code, local number), or ``None`` when it does
    not have that shape (a 1x code other than 10, a local part not 7–8 digits or led by 0/1)."""
    if not national or national[0] == "0":
        return None
    code = area_code(national)
    local = national[len(code) :]
    if national[0] == "1" and code != "10":
        return None
    if len(local) not in (7, 8) or local[0] in "01":
        return None
    return code, local


def cn_national(digits: str) -> tuple[str, str] | None:
    """A whole mainland number written nationally → (national significant number, kind).

    ``kind`` is ``mobile``, ``service`` or ``landline``. A trunk 0 is accepted before a
    landline and, because agents type it, before a mobile. A local number without its area
    code is not whole: ``None`` (the matcher expands those itself).
    """
    if len(digits) == 12 and digits[0] == "0" and MOBILE.fullmatch(digits[1:]):
        return digits[1:], "mobile"
    if MOBILE.fullmatch(digits):
        return digits, "mobile"
    if _SERVICE.fullmatch(digits):
        return digits, "service"
    if digits.startswith("0"):
        split = split_area(digits[1:])
    elif len(digits) >= 9:
        split = split_area(digits)
    else:
        return None
    return (split[0] + split[1], "landline") if split else None


# -- what was written --------------------------------------------------------------------------

_MAX_RAW = 128  # characters; a longer field is a note, not a number
_MAX_DIGITS = 24
# an extension after the number: "ext. 5", "extn 5", "x123", "#123", "转808", "转分机808", "分机12"
_EXTENSION = re.compile(
    r"[\s,;]*(?:ext(?:ension|n)?\.?|x|转分机|转|分机|#)\s*:?\s*(\d{1,6})\s*#?$", re.IGNORECASE
)
# a landline written with dashes and the extension after one more: "010-12345678-808",
# "(0755) 2345 6789-12", "+86 (0)10 6512 3456-808"
_DASH_EXTENSION = re.compile(
    r"^((?:(?:\+|00)86[\s-]*(?:\(0\))?[\s-]*\(?0?|\(?0)[1-9]\d{1,2}\)?[\s-]?\d{3,4}[\s-]?\d{4})"
    r"-(\d{1,5})$"
)
_EXTENSION_MARK = re.compile(r"[xX#转机]")  # cheap test before the pattern: rare in a number
_NOISE = re.compile(r"[\s\-\u2010-\u2015\u2212().\[\]/]")
# Country codes read without "+" or "00": mainland China and the three codes next to it, which
# a Chinese CRM writes bare. Any other code is too easily a Chinese national number of the
# wrong length (measured: a tenth of 11-digit landlines with a wrong-length local part read as
# a valid foreign number), so it needs its "+" or "00".
_BARE_COUNTRY_CODES = ("86", "852", "853", "886")


@dataclass(frozen=True, slots=True)
class Written:
    """A number as written: its digits, whether they start with a country code, its extension.

    ``digits`` are ASCII, without punctuation, the ``+``/``00`` or the extension; when
    ``international`` they begin with the country code, else they are a national number of
    the region it was read for.
    """

    digits: str
    international: bool
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A number in E.164 and the extension written after it, kept apart (``None`` if none)."""

    e164: E164
    extension: str | None = None


def read(raw: str | None, region: str) -> Written | None:
    """What ``raw`` says, for a number written in ``region``; ``None`` when it is no number.

    Width (NFKC: full-width digits, brackets and ideographic spaces), a ``tel:`` prefix,
    punctuation and the extension are dealt with here; a country code is recognised after
    ``+``/``00`` or, bare, when the digits are not a whole national number (see
    :data:`_BARE_COUNTRY_CODES`). A trunk ``(0)`` after the country code stays in the digits:
    libphonenumber drops it where the country dials one (``+44 (0)20…``) and keeps it where it
    is part of the number (Italy's ``+39 06…``).
    """
    if not raw or len(raw) > _MAX_RAW:
        return None
    text = (raw if raw.isascii() else unicodedata.normalize("NFKC", raw)).strip()
    if text[:4].lower() == "tel:":
        text = text[4:]
    extension = None
    if _EXTENSION_MARK.search(text) and (match := _EXTENSION.search(text)):
        extension, text = match.group(1), text[: match.start()]
    elif "-" in text and (match := _DASH_EXTENSION.match(text)):
        text, extension = match.group(1), match.group(2)
    text = text.strip().rstrip("#").rstrip()
    plus = text.startswith("+")
    digits = _NOISE.sub("", text.lstrip("+"))
    if not digits or len(digits) > _MAX_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    if plus or digits.startswith("00"):
        digits = digits[2:] if digits.startswith("00") else digits
        return Written(digits, True, extension) if digits else None
    return Written(digits, _country_code_first(digits, region), extension)


def _country_code_first(digits: str, region: str) -> bool:
    """Whether bare ``digits`` (no ``+``/``00``) begin with a country code.

    A national number is never misread: a trunk ``0…`` stays national, so does an 11-digit
    ``1…`` in China (a mobile), and so does anything that is a valid national number of
    ``region``. ``86`` before a whole mainland number (``8613800138000``, ``862161234567``) is
    a country code; ``852``/``853``/``886`` when the rest is a valid number there.
    """
    if digits[0] == "0" or len(digits) < 10:
        return False
    if region == "CN":
        if len(digits) == 11 and digits[0] == "1":
            return False
        if digits[:2] == "86" and len(digits) in (12, 13) and cn_national(digits[2:]):
            return True
    code = next((c for c in _BARE_COUNTRY_CODES if digits.startswith(c)), None)
    if code is None:
        return False
    if valid_national(phonenumbers.country_code_for_region(region), digits):
        return False
    return valid_national(int(code), digits[len(code) :])


def valid_national(country_code: int, national: str) -> bool:
    """libphonenumber's ``is_valid_number`` for a national number (digits), at a tenth of its
    cost: its patterns compiled once per country (the locator checks every landline it
    locates). Leading zeros are dropped, as a trunk 0 after the country code would be.
    """
    nsn = national.lstrip("0")
    if not country_code or not nsn:
        return False
    check = _validator(country_code)
    if check is not None:
        return check(nsn)
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(nsn))
    return bool(phonenumbers.is_valid_number(number))


# libphonenumber's number types; any order gives the same answer, the common ones go first
_NUMBER_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
_Desc = tuple[frozenset[int], re.Pattern[str]]


@cache
def _validator(country_code: int) -> Callable[[str], bool] | None:
    """libphonenumber's validity rule for a country (a number is valid when it matches the
    general description and one number type), or ``None`` when several regions share the
    code and libphonenumber must first choose one."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) != 1:
        return None
    meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, regions[0])
    if meta is None:
        return None

    def desc(number_desc: Any) -> _Desc | None:
        if number_desc is None or not number_desc.national_number_pattern:
            return None
        lengths = frozenset(number_desc.possible_length or ())
        return lengths, re.compile(number_desc.national_number_pattern)

    general = desc(meta.general_desc)
    kinds = [d for d in (desc(getattr(meta, name)) for name in _NUMBER_TYPES) if d is not None]

    def matches(nsn: str, found: _Desc) -> bool:
        lengths, pattern = found
        return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None

    def check(nsn: str) -> bool:
        return (
            general is not None
            and matches(nsn, general)
            and any(matches(nsn, kind) for kind in kinds)
        )

    return check


# -- E.164 -------------------------------------------------------------------------------------


def parse_number(raw: str | None, region: str) -> PhoneNumber | None:
    """The number ``raw`` writes, in E.164 with its extension apart; ``None`` if it is not a
    possible phone number (libphonenumber's length check: lenient, as callers need)."""
    written = read(raw, region)
    if written is None:
        if raw:
            log.info("caller number rejected (not a number or too long): %s", masked(raw))
        return None
    mainland = _mainland(written, region)
    if mainland is not None:
        return PhoneNumber(E164("+86" + mainland), written.extension)
    text = "+" + written.digits if written.international else written.digits
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        log.info("caller number does not parse: %s", masked(str(raw)))
        return None
    if not phonenumbers.is_possible_number(number):
        log.info("caller number is not a possible number: %s", masked(str(raw)))
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneNumber(E164(e164), written.extension)


def _mainland(written: Written, region: str) -> str | None:
    """The national significant number of a whole mainland number, checked by its shape.

    libphonenumber reads these the same way (a test compares them) at five times the cost,
    and the call path and the importer read mostly these.
    """
    if written.international:
        if written.digits[:2] != "86":
            return None
        found = cn_national(written.digits[2:])
    elif region == "CN" and written.digits[:2] != "86":  # 86…: libphonenumber's own rules
        found = cn_national(written.digits)
    else:
        return None
    if found is None or found[0].startswith("179"):  # 179xx: a carrier prefix to libphonenumber
        return None
    return found[0]


def to_e164(raw: str | None, region: str) -> E164 | None:
    """Return the number in E.164 (its extension dropped), or ``None`` if it is not a possible
    phone number. ``region`` is the configured one (``HOTLINE_DEFAULT_REGION``)."""
    number = parse_number(raw, region)
    return number.e164 if number is not None else None


_MAINLAND_E164 = re.compile(r"\+86(1[3-9]\d{9}|10\d{5,10}|[2-9]\d{6,11})")


def split_e164(e164: str) -> tuple[int, str] | None:
    """(country code, national significant number) of an E.164 number, ``None`` if it is not
    one. Mainland numbers take a fast path (the bulk importer locates millions of them)."""
    if match := _MAINLAND_E164.fullmatch(e164):
        return 86, match.group(1)
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    if number.country_code is None:
        return None
    return number.country_code, phonenumbers.national_significant_number(number)

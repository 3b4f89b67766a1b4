"""Caller numbers to E.164.

Trunks deliver numbers in every shape (``+86…``, ``0086…``, national with a trunk 0,
bare subscriber numbers). The call log and the customer record both key on E.164, so
normalisation is one function used by both sides; garbage gives ``None`` and a log
line, never an exception in the call path.
"""

from __future__ import annotations

import logging
import re

import phonenumbers

log = logging.getLogger(__name__)


def masked(raw: str) -> str:
    """What a log line may show of a caller's number: its length and last four characters."""
    return f"<{len(raw)} chars …{raw[-4:]!r}>"


_NOISE = re.compile(r"[\s\-().\u3000]")
_MAX_INPUT = 64


def to_e164(raw: str | None, region: str) -> str | None:
    """Return the number in E.164, or ``None`` if it is not a possible phone number."""
    if not raw:
        return None
    text = _NOISE.sub("", raw.strip())
    if not text or len(text) > _MAX_INPUT:
        log.info("caller number rejected (empty or too long): %s", masked(raw))
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    elif region == "CN" and text.startswith("86") and len(text) == 13 and text[2] == "1":
        text = "+" + text  # 86 + 11-digit mobile, sent without the plus by some trunks
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        log.info("caller number does not parse: %s", masked(raw))
        return None
    if not phonenumbers.is_possible_number(number):
        log.info("caller number is not a possible number: %s", masked(raw))
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

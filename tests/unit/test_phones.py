"""Reading numbers as trunks deliver them and as people write them in a CRM or type them."""

from __future__ import annotations

import logging
import random

import phonenumbers
import pytest

from hotline import phones
from hotline.phones import PhoneNumber, Written, masked, parse_number, read, to_e164
from hotline.types import E164


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("0086 138-0013-8000", "+8613800138000"),  # not 0086 as an area code, 8000 as extension
        ("0086-10-6512-3456", "+861065123456"),
        ("0138-0013-8000", "+8613800138000"),
        ("0755-2345-6789", "+8675523456789"),
        ("02161234567", "+862161234567"),
        ("(021) 6123 4567", "+862161234567"),
        ("05925123456", "+865925123456"),
        ("+852 2123 4567", "+85221234567"),
        ("0085221234567", "+85221234567"),
    ],
)
def test_numbers_in_every_shape(raw: str, e164: str) -> None:
    assert to_e164(raw, "CN") == e164


@pytest.mark.parametrize(
    "raw", ["", None, "anonymous", "<unknown>", "12", "9" * 70, "☎☎☎", "+86 abc"]
)
def test_garbage_gives_none(raw: str | None) -> None:
    assert to_e164(raw, "CN") is None


def test_logs_never_show_the_whole_number(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hotline.phones")
    assert to_e164("0021987654321999", "CN") is None
    assert "0021987654321999" not in caplog.text
    assert masked("0021987654321999") in caplog.text


# -- what people write ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164", "extension"),
    [
        ("010-12345678-808", "+861012345678", "808"),
        ("010 1234 5678 转808", "+861012345678", "808"),
        ("010 1234 5678 转分机 808", "+861012345678", "808"),
        ("02012345678分机12", "+862012345678", "12"),
        ("+86 21 1234 5678 ext. 5", "+862112345678", "5"),
        ("+86 21 1234 5678 extension 5", "+862112345678", "5"),
        ("13800138000 x123", "+8613800138000", "123"),
        ("13800138000#123", "+8613800138000", "123"),
        ("+1 650 253 0000 x123", "+16502530000", "123"),
        ("(0755) 2345 6789-12", "+8675523456789", "12"),
        ("+86 (0)10 6512 3456-808", "+861065123456", "808"),
        ("0086-10-6512-3456-808", "+861065123456", "808"),
        ("（010）6512－3456 转 ８０８", "+861065123456", "808"),
    ],
)
def test_extensions_are_kept_apart(raw: str, e164: str, extension: str) -> None:
    assert parse_number(raw, "CN") == PhoneNumber(E164(e164), extension)
    assert to_e164(raw, "CN") == e164  # never glued onto the digits


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("8613800138000", "CN", "+8613800138000"),
        ("86 21 1234 5678", "CN", "+862112345678"),
        ("862112345678", "CN", "+862112345678"),
        ("8602161234567", "CN", "+862161234567"),  # 86, then the trunk 0 kept by habit
        ("85221234567", "CN", "+85221234567"),  # Hong Kong, bare
        ("853 2821 2345", "CN", "+85328212345"),  # Macau
        ("886912345678", "CN", "+886912345678"),  # Taiwan mobile
        ("8613800138000", "HK", "+8613800138000"),
        ("85221234567", "HK", "+85221234567"),
        ("21234567", "HK", "+85221234567"),
    ],
)
def test_a_country_code_without_plus_or_00(raw: str, region: str, e164: str) -> None:
    assert to_e164(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800138000", "+8613800138000"),  # an 11-digit 1… is a mobile, whatever follows 1
        ("16502530000", "+8616502530000"),  # not +1 650 …: national first
        ("02112345678", "+862112345678"),  # a trunk 0 is national
        ("2161234567", "+862161234567"),  # a landline without its trunk 0
        ("8863123456", "+868863123456"),  # 0886 Nujiang without its trunk 0, not Taiwan
        ("4008123123", "+864008123123"),
    ],
)
def test_a_national_number_is_never_read_as_a_country_code(raw: str, e164: str) -> None:
    assert to_e164(raw, "CN") == e164


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+86 (0)21 1234 5678", "+862112345678"),
        ("+86(0)21-6123-4567", "+862161234567"),
        ("0086 (0) 138 0013 8000", "+8613800138000"),
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("+39 06 1234 5678", "+390612345678"),  # Italy's 0 is part of the number
    ],
)
def test_a_trunk_zero_after_the_country_code(raw: str, e164: str) -> None:
    assert to_e164(raw, "CN") == e164


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("１３８００１３８０００", "+8613800138000"),
        ("（021）6123 4567", "+862161234567"),
        ("（０２１）６１２３－４５６７", "+862161234567"),
        ("＋８６　１３８　００１３　８０００", "+8613800138000"),
        ("021\u30006123\u30004567", "+862161234567"),
        ("\u3000０２０－８７６５４３２１\u3000", "+862087654321"),
        ("tel:+8613800138000", "+8613800138000"),
    ],
)
def test_full_width_and_ideographic_spaces(raw: str, e164: str) -> None:
    assert to_e164(raw, "CN") == e164


@pytest.mark.parametrize(
    "raw",
    [
        "\x00",
        "\x00" * 11,
        "1380013\x008000",
        "1" * 10_000,
        "a" * 10_000,
        "+86 " + "1" * 10_000,
        "abcdefghijk",
        "转808",
        "ext. 5",
        "#123",
        "+",
        "00",
        "++",
        "\udcff\udcfe13800138000",  # bytes that were not UTF-8, decoded with surrogateescape
        "\ud83d",
        "😀",
        "13800138000x",
        "  ",
    ],
)
def test_garbage_never_raises(raw: str) -> None:
    for region in ("CN", "HK", "ZZ"):
        assert read(raw, region) is None
        assert parse_number(raw, region) is None
        assert to_e164(raw, region) is None


def test_what_was_written() -> None:
    assert read("+86 (0)10 6512 3456 转808", "CN") == Written("8601065123456", True, "808")
    assert read("010-6512 3456", "CN") == Written("01065123456", False, None)
    assert read("85221234567", "CN") == Written("85221234567", True, None)


# -- the shortcuts agree with libphonenumber ----------------------------------------------------


def _mainland_forms() -> list[str]:
    """Mobiles over every 13x–19x block, landlines over every area code (7 and 8 digits, led
    by every digit), 400/800, carrier prefixes (179xx, 125xx), each written six ways."""
    from hotline.routing.regions import default_table

    rng = random.Random(20)
    digits = [f"{p}{rng.randrange(10**8):08d}" for p in range(130, 200) for _ in range(15)]
    digits += [f"{p}{rng.randrange(10**6):06d}" for p in ("17951", "17911", "12593", "10193")]
    for code in [*default_table().area_codes(), "11", "19", "400", "800", "852", "862"]:
        for size in (6, 7, 8, 9):
            digits += [
                f"{code}{first}{rng.randrange(10 ** (size - 1)):0{size - 1}d}"
                for first in "0123456789"
            ]
    return [f for d in digits for f in (d, "0" + d, "+86" + d, "86" + d, "+860" + d, "860" + d)]


def test_mainland_numbers_read_as_libphonenumber_reads_them() -> None:
    """:func:`to_e164` reads whole mainland numbers by their shape, without phonenumbers:
    it must give what phonenumbers gives (which strips 179xx and 86 in its own way)."""
    compared = 0
    for raw in _mainland_forms():
        written = read(raw, "CN")
        if written is None or (nsn := phones._mainland(written, "CN")) is None:
            continue
        compared += 1
        text = "+" + written.digits if written.international else written.digits
        number = phonenumbers.parse(text, "CN")
        assert phonenumbers.is_possible_number(number), raw
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == (
            "+86" + nsn
        ), raw
    assert compared > 20_000


def test_validity_is_libphonenumbers() -> None:
    rng = random.Random(21)
    cases = [(86, f) for f in _mainland_forms()[::6]]
    for code in (86, 852, 853, 886, 1, 44, 39, 7):
        cases += [
            (code, str(rng.randrange(10 ** (n - 1), 10**n)))
            for n in range(5, 13)
            for _ in range(200)
        ]
    valid = 0
    for code, national in cases:
        number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
        expected = phonenumbers.is_valid_number(number)
        assert phones.valid_national(code, national) == expected, (code, national)
        valid += expected
    assert valid > 1_000

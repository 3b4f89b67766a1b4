"""The national record's rows as written: what every writer computes before it stores one.

A customer row carries columns derived from what was typed: the name's search keys, an
address's parsed and normalised parts, a number's E.164 and 归属地. The database layer
stores them and computes none of them (it imports nothing of the matching code), so
this module is where they are computed, once, for every writer:

* the bulk importer's worker processes (:func:`prepare_batch`: validate a record, then
  render each table's row as ``COPY`` text or a tuple). It is pure, data in and data
  out, because it runs in other processes; :mod:`hotline.customers.importer` does the
  I/O around it (reading the file, merging, COPY, indexes).
* the writers that go through the ORM: the customers API, the demo, tests
  (:func:`with_name_keys`, :func:`address_row`, :func:`phone_region`).

Names are stored as written, traditional characters included; the keys are those of
the simplified reading (:func:`hotline.matching.keys.name_keys`), so 張偉 and 张伟 share
them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from hotline.db.models import Address, Customer, Tier
from hotline.matching.address import ParsedAddress, parse_address
from hotline.matching.keys import name_keys
from hotline.matching.phone import parse_phone, region_of

__all__ = [
    "Batch",
    "Encoded",
    "Prepared",
    "RowError",
    "address_row",
    "encode",
    "parse_json_line",
    "phone_region",
    "prepare",
    "prepare_batch",
    "with_name_keys",
]

_MAX_NAME = 200
_MAX_ADDRESS = 500
_TIERS = frozenset(str(t) for t in Tier)


class RowError(ValueError):
    """A row the importer refuses; the message goes to the report file."""


# What a worker sends back for one good row (compact: it is pickled between processes):
# (name, [(e164, phone values)], customer values, [(normalised address, values)],
#  [(serial or None, product values)]). "values" are the table's columns after the id
# (and after customer_id for child tables): a COPY text line on PostgreSQL, a tuple on
# SQLite.
Encoded = tuple[
    str,
    list[tuple[str, Any]],
    Any,
    list[tuple[str, Any]],
    list[tuple[str | None, Any]],
]

# (line number, record): a parsed CSV row, or a raw JSONL line the worker parses
Batch = list[tuple[int, dict[str, Any] | str | bytes]]

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


# -- the ORM writers ---------------------------------------------------------------------


def with_name_keys(customer: Customer) -> Customer:
    """``customer`` with ``name_pinyin`` and ``name_initials`` set from its ``name``.

    Call it whenever a name is set: on a new customer before it is added, and after a
    rename (``customer.name = new; with_name_keys(customer)``). A customer stored without
    it keeps the empty keys and is not found by a pinyin, initials or Hanzi search.
    """
    keys = name_keys(customer.name)
    customer.name_pinyin = keys.pinyin
    customer.name_initials = keys.initials
    return customer


def address_row(raw: str, prior_city: str | None = None) -> Address:
    """The address with its parsed columns filled in, as every writer but the bulk
    importer (which renders rows itself, :func:`encode`) stores one. ``prior_city`` (a
    full city name, e.g. from the caller's number) resolves a district that exists in
    several cities."""
    parsed = parse_address(raw, prior_city=prior_city)
    return Address(
        raw=raw,
        province=parsed.province,
        city=parsed.city,
        district=parsed.district,
        street=parsed.street,
        detail=parsed.detail,
        normalised=parsed.normalised,
    )


def phone_region(e164: str) -> str | None:
    """Where a number is registered, as stored in ``customer_phones.region``:
    ``广东省广州市``, or ``北京市`` once for a municipality; None for a block or area
    code nobody has data for."""
    found = region_of(e164)
    if found is None:
        return None
    return f"{found.province}{'' if found.city == found.province else found.city}"


# -- the importer's workers --------------------------------------------------------------


def _copy_line(fields: tuple[Any, ...]) -> str:
    """The values as one line of PostgreSQL's COPY text format (``\\N`` is NULL).

    One loop without a call per value: this runs for ~40 values per imported row, and a
    helper function per value was a fifth of the worker's time.
    """
    parts = []
    for value in fields:
        if value is None:
            parts.append("\\N")
        elif value.__class__ is str:
            parts.append(value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value)
        else:
            parts.append(str(value))  # int, date (ISO format)
    return "\t".join(parts)


def _values(fields: tuple[Any, ...], copy_text: bool) -> Any:
    return _copy_line(fields) if copy_text else fields


@dataclass(slots=True)
class Prepared:
    name: str
    pinyin: str
    initials: str
    tier: str
    preferred_dialect: str | None
    account_manager: str | None
    tags: list[str]
    site: str | None
    phones: list[tuple[str, str, str | None]]  # e164, kind, region
    addresses: list[tuple[str, ParsedAddress]]  # raw, parsed
    products: list[tuple[Any, ...]]  # model, serial, dates, dealer… (the columns)


def _text(value: Any, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowError(f"{name} must be text")
    value = value.strip()
    if len(value) > limit:
        raise RowError(f"{name} longer than {limit} characters")
    return value or None


def _date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RowError(f"{name} is not an ISO date: {str(value)[:20]!r}") from None


def _list(value: Any, name: str) -> list[Any]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [part for part in (p.strip() for p in value.split(";")) if part]
    if isinstance(value, list):
        return value
    raise RowError(f"{name} must be a list")


def _products(value: Any) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowError("products is not JSON") from None
    products = []
    for item in _list(value, "products"):
        if not isinstance(item, dict):
            raise RowError("a product must be an object")
        model = _text(item.get("model"), "product model", 80)
        if not model:
            raise RowError("a product has no model")
        products.append(
            (  # the products table's columns, in order
                model,
                _text(item.get("serial"), "serial", 80),
                _date(item.get("purchase_date"), "purchase_date"),
                _date(item.get("install_date"), "install_date"),
                _text(item.get("dealer"), "dealer", 120),
                _text(item.get("service_provider"), "service_provider", 120),
                _date(item.get("warranty_end"), "warranty_end"),
            )
        )
    return products


def prepare(row: dict[str, Any], region: str = "CN") -> Prepared:
    """Validate one record and compute its keys; raises :class:`RowError` with the reason."""
    name = _text(row.get("name"), "name", _MAX_NAME)
    if not name:
        raise RowError("name is missing")
    keys = name_keys(name)
    if not keys.pinyin:
        raise RowError("name has no letters or Hanzi")
    tier = _text(row.get("tier"), "tier", 16) or "standard"
    if tier not in _TIERS:
        raise RowError(f"unknown tier {tier!r}")
    phones: list[tuple[str, str, str | None]] = []
    for raw in _list(row.get("phones", row.get("phone")), "phones"):
        parsed = parse_phone(str(raw))
        if parsed is None or len(parsed.candidates) != 1:
            raise RowError(f"invalid phone number {str(raw)[:24]!r}")
        e164 = parsed.candidates[0]
        if e164 not in (p[0] for p in phones):
            phones.append((e164, parsed.kind, phone_region(e164)))
    if not phones:
        raise RowError("no phone number")
    addresses = []
    for raw in _list(row.get("addresses", row.get("address")), "addresses"):
        raw_text = _text(raw, "address", _MAX_ADDRESS)
        if raw_text:
            addresses.append((raw_text, parse_address(raw_text)))
    products = _products(row.get("products") or [])
    tags = [str(t)[:40] for t in _list(row.get("tags"), "tags")]
    return Prepared(
        name=name,
        pinyin=keys.pinyin,
        initials=keys.initials,
        tier=tier,
        preferred_dialect=_text(row.get("preferred_dialect"), "preferred_dialect", 32),
        account_manager=_text(row.get("account_manager"), "account_manager", 80),
        tags=tags,
        site=_text(row.get("site"), "site", 80),
        phones=phones,
        addresses=addresses,
        products=products,
    )


def encode(p: Prepared, copy_text: bool) -> Encoded:
    """The row as the tables' column values (see :data:`Encoded`), rendered in the worker."""
    home = p.addresses[0][1] if p.addresses else None
    customer = _values(
        (
            p.name,
            p.pinyin,
            p.initials,
            p.tier,
            p.preferred_dialect,
            p.account_manager,
            orjson.dumps(p.tags).decode(),
            p.site,
            home.city if home else None,
            home.district if home else None,
        ),
        copy_text,
    )
    phones = [(e164, _values((e164, kind, region), copy_text)) for e164, kind, region in p.phones]
    addresses = []
    for raw, parsed in p.addresses:
        normalised = parsed.normalised
        values = (
            raw,
            parsed.province,
            parsed.city,
            parsed.district,
            parsed.street,
            parsed.detail,
            normalised,
        )
        addresses.append((normalised, _values(values, copy_text)))
    products = [(item[1], _values(item, copy_text)) for item in p.products]
    return p.name, phones, customer, addresses, products


def prepare_batch(batch: Batch, copy_text: bool = False) -> list[tuple[int, Encoded | str, Any]]:
    """Prepare a batch (in a worker process): (line, encoded row or reason, original row).

    A ``bytes`` record is a raw JSONL line, parsed here rather than in the main process
    (parsing and pickling dicts there was a third of its time).
    """
    out: list[tuple[int, Encoded | str, Any]] = []
    for line, record in batch:
        if isinstance(record, bytes):
            record = parse_json_line(record)
        if isinstance(record, str):
            out.append((line, record, ""))
            continue
        try:
            out.append((line, encode(prepare(record), copy_text), None))
        except RowError as exc:
            out.append((line, str(exc), record))
    return out


def parse_json_line(line: bytes) -> dict[str, Any] | str:
    """The record of one JSONL line, or the reason it is not one.

    orjson, because parsing is the largest single cost of an import after the address
    parser (11 µs a row instead of 19 µs with the standard library, measured on the
    synthetic data); it is also stricter (invalid UTF-8, ``NaN``), which is a reason
    in the report rather than a surprise in the record.
    """
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"not valid JSON: {exc}"
    if not isinstance(record, dict):
        return "not a JSON object"
    return record

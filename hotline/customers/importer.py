"""``hotline import FILE``: load customers from CSV or JSONL into the national record.

Contract:

* **Nothing is dropped silently.** Every row that cannot be imported is written to a
  report file (line number, reason, the row) and counted; the run still imports the rest.
* **Duplicates merge by phone + name**, inside the file and against the database: the
  first occurrence keeps its fields, later ones add their phones, addresses and products.
  A shared number with a *different* name is a family or shop line: a separate customer.
* **Keys are computed here** with the same functions as the ORM (pinyin, initials, parsed
  address, E.164 and 归属地), because bulk rows bypass the ORM validators.
* **PostgreSQL fast path:** ``COPY`` per batch; into an empty record the secondary
  indexes and foreign keys are dropped first and rebuilt once at the end (building a
  GIN index once is ~10× cheaper than maintaining it per row), on two connections at
  once (the GIN build on one, the B-trees and constraints on the other), followed by
  ``VACUUM (ANALYZE)``: without statistics the planner probes ``e164 = ANY(...)``
  through the wrong index (258 ms instead of 0.15 ms, measured at 1 M). SQLite uses
  batched ``executemany`` in the same transactions.
* **Where the CPU goes** (1 M rows must fit in 2 minutes on 2 cores): the worker
  processes parse the JSON, validate, compute the keys *and* render each table row
  as ``COPY`` text (escaped, without ids); the main process only reads raw lines,
  merges duplicates, prefixes ids and writes one string per table per batch. Sending
  raw lines instead of parsed dicts, and text instead of dataclasses, took the main
  process from ~150 µs to ~15 µs per row, which was the bottleneck.

Ids are assigned here (max id + 1…) so one batch's phones, addresses and products can be
written without a round trip per customer; the importer assumes it is the only writer
of customers while it runs, and PostgreSQL's sequences are moved past the ids at the end.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import orjson
from sqlalchemy import Connection, Engine, func, select, text

from hotline.db.models import Address, Customer, CustomerPhone, Product, Tier
from hotline.matching.address import parse_address
from hotline.matching.keys import name_keys
from hotline.matching.phone import parse_phone, region_of

__all__ = ["ImportReport", "Importer", "import_file"]

log = logging.getLogger(__name__)

BATCH = 20_000
_MAX_NAME = 200
_MAX_ADDRESS = 500
_TIERS = frozenset(str(t) for t in Tier)
_TABLES = ("customers", "customer_phones", "addresses", "products")
_PACE_EVERY = 500_000  # rows between two pace lines in the log


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

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


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
    addresses: list[tuple[str, Any]]  # raw, ParsedAddress
    products: list[tuple[Any, ...]]  # model, serial, dates, dealer… (the columns)


@dataclass
class ImportReport:
    rows: int = 0
    customers: int = 0
    merged: int = 0
    rejected: int = 0
    phones: int = 0
    addresses: int = 0
    products: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0  # parse, validate, merge and COPY
    index_seconds: float = 0.0  # bulk path: rebuilding the dropped indexes and keys
    vacuum_seconds: float = 0.0  # bulk path: VACUUM (ANALYZE)
    report_path: Path | None = None
    bulk: bool = False
    workers: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


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
            found = region_of(e164)  # None for a block or area code nobody has data for
            where = (
                f"{found.province}{'' if found.city == found.province else found.city}"
                if found
                else None
            )
            phones.append((e164, parsed.kind, where))
    if not phones:
        raise RowError("no phone number")
    addresses = []
    for raw in _list(row.get("addresses", row.get("address")), "addresses"):
        raw_text = _text(raw, "address", _MAX_ADDRESS)
        if raw_text:
            addresses.append((raw_text, parse_address(raw_text)))
    products_in = row.get("products") or []
    if isinstance(products_in, str):
        try:
            products_in = json.loads(products_in)
        except json.JSONDecodeError:
            raise RowError("products is not JSON") from None
    products = []
    for item in _list(products_in, "products"):
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
        addresses.append(
            (
                normalised,
                _values(
                    (
                        raw,
                        parsed.province,
                        parsed.city,
                        parsed.district,
                        parsed.street,
                        parsed.detail,
                        normalised,
                    ),
                    copy_text,
                ),
            )
        )
    products = [(item[1], _values(item, copy_text)) for item in p.products]
    return p.name, phones, customer, addresses, products


Batch = list[tuple[int, dict[str, Any] | str | bytes]]


def prepare_batch(batch: Batch, copy_text: bool = False) -> list[tuple[int, Encoded | str, Any]]:
    """Prepare a batch (in a worker process): (line, encoded row or reason, original row).

    A ``bytes`` record is a raw JSONL line, parsed here rather than in the main process
    (parsing and pickling dicts there was a third of its time).
    """
    out: list[tuple[int, Encoded | str, Any]] = []
    for line, record in batch:
        if isinstance(record, bytes):
            record = _parse_json_line(record)
        if isinstance(record, str):
            out.append((line, record, ""))
            continue
        try:
            out.append((line, encode(prepare(record), copy_text), None))
        except RowError as exc:
            out.append((line, str(exc), record))
    return out


def _worker_start() -> None:
    """Turn off the cyclic garbage collector in a worker process.

    A worker only turns lines into tuples of strings, which hold no reference cycles,
    so reference counting frees each batch. The collector still ran every ~700
    allocations and walked the batch being built, about a tenth of a worker's time
    (prepare_batch 63.9 instead of 70.7 µs a row, measured on 100 k synthetic rows).
    """
    gc.disable()


def _parse_json_line(line: bytes) -> dict[str, Any] | str:
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


def _batches(path: Path, size: int, sizes: list[int]) -> Iterator[Batch]:
    batch: Batch = []
    for line, done, record in _raw_rows(path):
        batch.append((line, record))
        if len(batch) >= size:
            sizes.append(done)
            yield batch
            batch = []
    if batch:
        sizes.append(-1)
        yield batch


def _raw_rows(path: Path) -> Iterator[tuple[int, int, dict[str, Any] | bytes]]:
    """Like :func:`read_rows`, but JSONL lines stay raw bytes for the workers to parse."""
    if path.suffix.lower() == ".csv":
        yield from read_rows(path)  # type: ignore[misc]
        return
    with path.open("rb") as raw:
        done = 0
        for number, line in enumerate(raw, start=1):
            done += len(line)
            if line.strip():
                yield number, done, line


def read_rows(path: Path) -> Iterator[tuple[int, int, dict[str, Any] | str]]:
    """Yield (line number, bytes read so far, record or the error text) from CSV or JSONL."""
    with path.open("rb") as raw:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
            for row in reader:
                yield reader.line_num, raw.tell(), dict(row)
            return
        done = 0
        for number, line in enumerate(raw, start=1):
            done += len(line)
            if not line.strip():
                continue
            yield number, done, _parse_json_line(line)


class Importer:
    """One import run into ``engine``. Not thread-safe; one run at a time per database."""

    def __init__(
        self,
        engine: Engine,
        *,
        report_path: Path,
        batch: int = BATCH,
        bulk: bool | None = None,
        progress: Callable[[int, int, int], None] | None = None,
        workers: int | None = None,
    ) -> None:
        self.engine = engine
        self.report_path = report_path
        self.batch = batch
        self.bulk = bulk
        self.progress = progress
        self.workers = workers
        self.postgres = engine.dialect.name == "postgresql"
        self._keys: dict[tuple[str, str], int] = {}  # (e164, name) → customer id
        self._seen: set[int] = set()  # hashes of (customer, phone/address/serial) written
        self._next: dict[str, int] = {}

    def run(self, path: Path) -> ImportReport:
        report = ImportReport(report_path=self.report_path)
        started = time.perf_counter()
        with self.engine.connect() as conn:
            empty = conn.execute(select(func.count()).select_from(Customer)).scalar() == 0
            for table in _TABLES:
                self._next[table] = (
                    conn.execute(text(f"SELECT max(id) FROM {table}")).scalar() or 0
                ) + 1
        self.fresh = empty
        bulk = self.postgres and empty if self.bulk is None else self.bulk and self.postgres
        report.bulk = bool(bulk)
        saved: list[str] = []
        with self.report_path.open("w", encoding="utf-8") as rejects:
            rejects.write("line\treason\trow\n")
            if bulk:
                saved = self._drop_indexes()
            try:
                self._load(path, rejects, report)
            finally:
                report.load_seconds = time.perf_counter() - started
                if bulk:
                    self._restore_indexes(saved)
                    report.index_seconds = time.perf_counter() - started - report.load_seconds
        if bulk:
            mark = time.perf_counter()
            self._vacuum_analyze()
            report.vacuum_seconds = time.perf_counter() - mark
        if self.postgres:
            with self.engine.begin() as conn:
                for table in _TABLES:
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT COALESCE(max(id), 1) FROM {table}))"
                        )
                    )
        report.seconds = time.perf_counter() - started
        log.info(
            "import: %d rows, %d customers, %d merged, %d rejected in %.1fs",
            report.rows,
            report.customers,
            report.merged,
            report.rejected,
            report.seconds,
        )
        return report

    def _load(self, path: Path, rejects: Any, report: ImportReport) -> None:
        """Parse, validate and render rows in worker processes, merge and write here.

        Two workers on a two-core machine overlap key computation with COPY (the main
        process and the PostgreSQL backend take the rest); small files stay in-process,
        where starting a pool costs more than it saves.
        """
        workers = self.workers
        if workers is None:
            workers = 2 if path.stat().st_size > 20_000_000 else 0
        report.workers = workers
        sizes: list[int] = []
        batches = _batches(path, self.batch, sizes)
        work = partial(prepare_batch, copy_text=self.postgres)
        if workers:
            import multiprocessing

            pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_start)
            results: Iterator[list[tuple[int, Encoded | str, Any]]] = pool.imap(work, batches)
        else:
            pool = None
            results = map(work, batches)
        frozen_before = gc.get_freeze_count()
        # the pace log: whether the main process (the merge) or the workers set the rate
        pace, next_mark = (time.perf_counter(), time.process_time(), 0), _PACE_EVERY
        try:
            for index, prepared in enumerate(results):
                good: list[Encoded] = []
                for line, item, row in prepared:
                    report.rows += 1
                    if isinstance(item, str):
                        self._reject(rejects, report, line, item, row)
                    else:
                        good.append(item)
                if good:
                    self._write(good, report)
                # The merge state (a dict and a set with one entry per phone, address and
                # product) is long-lived: move it out of the cyclic GC's generations, or
                # every full collection walks it again.
                gc.freeze()
                if report.rows >= next_mark:
                    next_mark += _PACE_EVERY
                    now, cpu = time.perf_counter(), time.process_time()
                    log.info(
                        "import: %d rows, %.0f rows/s lately, main process at %.0f%% of a core",
                        report.rows,
                        (report.rows - pace[2]) / (now - pace[0]),
                        100 * (cpu - pace[1]) / (now - pace[0]),
                    )
                    pace = (now, cpu, report.rows)
                if self.progress:
                    self.progress(
                        sizes[index] if index < len(sizes) else -1, report.rows, report.rejected
                    )
        finally:
            if pool is not None:
                pool.close()
                pool.join()
            if not frozen_before:  # hand the objects back to the GC (tests, a long process)
                gc.unfreeze()

    @staticmethod
    def _reject(out: Any, report: ImportReport, line: int, reason: str, row: Any) -> None:
        report.rejected += 1
        key = reason.split(" ", 2)[0] + " " + reason.split(" ", 2)[1] if " " in reason else reason
        report.reasons[key] = report.reasons.get(key, 0) + 1
        shown = json.dumps(row, ensure_ascii=False, default=str) if row != "" else ""
        out.write(f"{line}\t{reason}\t{shown}\n")

    def _take_id(self, table: str) -> int:
        value = self._next[table]
        self._next[table] = value + 1
        return value

    def _existing(self, conn: Connection, batch: list[Encoded]) -> None:
        """Load (e164, name) → id for numbers of this batch already in the database."""
        if self.fresh:
            return
        numbers = {e164 for _, phones, _, _, _ in batch for e164, _ in phones}
        numbers -= {k[0] for k in self._keys}
        for chunk_start in range(0, len(numbers), 5000):
            chunk = list(numbers)[chunk_start : chunk_start + 5000]
            rows = conn.execute(
                select(CustomerPhone.e164, Customer.name, Customer.id)
                .join(Customer, Customer.id == CustomerPhone.customer_id)
                .where(CustomerPhone.e164.in_(chunk))
            )
            found: set[int] = set()
            for e164, name, cid in rows:
                self._keys.setdefault((e164, name), cid)
                self._seen.add(hash((cid, "p", e164)))
                found.add(cid)
            # what those customers already have, so a re-import adds nothing twice
            for cid, e164 in conn.execute(
                select(CustomerPhone.customer_id, CustomerPhone.e164).where(
                    CustomerPhone.customer_id.in_(found)
                )
            ):
                self._seen.add(hash((cid, "p", e164)))
            for cid, normalised in conn.execute(
                select(Address.customer_id, Address.normalised).where(
                    Address.customer_id.in_(found)
                )
            ):
                self._seen.add(hash((cid, "a", normalised)))
            for cid, serial in conn.execute(
                select(Product.customer_id, Product.serial).where(Product.customer_id.in_(found))
            ):
                if serial:
                    self._seen.add(hash((cid, "s", serial)))

    def _write(self, batch: list[Encoded], report: ImportReport) -> None:
        """Merge duplicates, assign ids and write one batch in one transaction.

        This runs in the single main process, so it does as little per row as possible:
        dictionary and set look-ups, and (PostgreSQL) an f-string putting the ids in
        front of the worker-rendered COPY line.
        """
        copy_text = self.postgres
        out: dict[str, list[Any]] = {table: [] for table in _TABLES}
        customers, phones, addresses, products = (out[t] for t in _TABLES)
        keys, seen, take = self._keys, self._seen, self._take_id
        with self.engine.begin() as conn:
            self._existing(conn, batch)
            for name, phone_rows, customer, address_rows, product_rows in batch:
                cid = next((c for e164, _ in phone_rows if (c := keys.get((e164, name)))), None)
                if cid is None:
                    cid = take("customers")
                    customers.append(f"{cid}\t{customer}\n" if copy_text else (cid, *customer))
                    report.customers += 1
                else:
                    report.merged += 1
                for e164, values in phone_rows:
                    keys.setdefault((e164, name), cid)
                    mark = hash((cid, "p", e164))
                    if mark in seen:
                        continue
                    seen.add(mark)
                    phones.append(self._row(take("customer_phones"), cid, values))
                for normalised, values in address_rows:
                    mark = hash((cid, "a", normalised))
                    if mark in seen:
                        continue
                    seen.add(mark)
                    addresses.append(self._row(take("addresses"), cid, values))
                for serial, values in product_rows:
                    if serial:
                        mark = hash((cid, "s", serial))
                        if mark in seen:
                            continue
                        seen.add(mark)
                    products.append(self._row(take("products"), cid, values))
            report.phones += len(phones)
            report.addresses += len(addresses)
            report.products += len(products)
            self._insert(conn, customers, phones, addresses, products)

    def _row(self, row_id: int, cid: int, values: Any) -> Any:
        if self.postgres:
            return f"{row_id}\t{cid}\t{values}\n"
        return (row_id, cid, *values)

    _COLUMNS: ClassVar[dict[str, str]] = {
        "customers": (
            "id, name, name_pinyin, name_initials, tier, preferred_dialect, "
            "account_manager, tags, site, city, district"
        ),
        "customer_phones": "id, customer_id, e164, kind, region",
        "addresses": "id, customer_id, raw, province, city, district, street, detail, normalised",
        "products": (
            "id, customer_id, model, serial, purchase_date, install_date, dealer, "
            "service_provider, warranty_end"
        ),
    }

    def _insert(self, conn: Connection, *rows: list[Any]) -> None:
        for table, data in zip(_TABLES, rows, strict=True):
            if not data:
                continue
            columns = self._COLUMNS[table]
            if self.postgres:
                cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write("".join(data))
                continue
            names = [c.strip() for c in columns.split(",")]
            marks = ", ".join(f":{n}" for n in names)
            conn.execute(
                text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"),
                [dict(zip(names, row, strict=True)) for row in data],
            )

    def _drop_indexes(self) -> list[str]:
        """Drop secondary indexes and foreign keys of the record tables; return their DDL."""
        saved: list[str] = []
        with self.engine.begin() as conn:
            for name, table, ddl in conn.execute(
                text(
                    "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) "
                    "FROM pg_constraint WHERE contype IN ('f', 'u') "
                    "AND conrelid::regclass::text = ANY(:tables)"
                ),
                {"tables": list(_TABLES)},
            ):
                saved.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}')
                conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
            for name, ddl in conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:tables) "
                    "AND indexname NOT LIKE 'pk_%' AND indexname NOT IN "
                    "(SELECT conname FROM pg_constraint)"
                ),
                {"tables": list(_TABLES)},
            ):
                saved.insert(0, ddl)
                conn.execute(text(f'DROP INDEX "{name}"'))
        log.info("bulk import: dropped %d indexes and constraints", len(saved))
        return saved

    def _restore_indexes(self, saved: list[str]) -> None:
        """Rebuild on two connections at once: the GIN trigram index alone on one (it is
        half the rebuild time), the B-trees, unique and foreign keys in order on the
        other. PostgreSQL builds each index single-threaded, so this uses both cores."""
        gin = [ddl for ddl in saved if " USING gin " in ddl]
        # a foreign key on addresses waits for the GIN build's lock: put it last
        rest = sorted(
            (ddl for ddl in saved if " USING gin " not in ddl),
            key=lambda ddl: ddl.startswith("ALTER TABLE addresses"),
        )

        def build(statements: list[str]) -> None:
            with self.engine.begin() as conn:
                conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
                for ddl in statements:
                    started = time.perf_counter()
                    conn.execute(text(ddl))
                    log.info("rebuilt in %.1fs: %s", time.perf_counter() - started, ddl[:90])

        with ThreadPoolExecutor(max_workers=2) as pool:
            for done in [pool.submit(build, part) for part in (gin, rest) if part]:
                done.result()

    def _vacuum_analyze(self) -> None:
        """Statistics and visibility map for the freshly loaded tables, two at a time."""

        def vacuum(table: str) -> None:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                started = time.perf_counter()
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
                log.info("vacuum analyze %s in %.1fs", table, time.perf_counter() - started)

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(vacuum, _TABLES))


def import_file(
    engine: Engine,
    path: Path,
    *,
    report_path: Path | None = None,
    show_progress: bool = True,
    bulk: bool | None = None,
) -> ImportReport:
    """Import ``path`` with a rich progress bar (rows, rows/s, ETA) on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    report_path = report_path or path.with_name(path.name + ".rejected.tsv")
    if not show_progress:
        return Importer(engine, report_path=report_path, bulk=bulk).run(path)
    size = max(path.stat().st_size, 1)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]import[/bold]"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rows]:,} rows · {task.fields[rate]:,.0f} rows/s"),
        TextColumn("· {task.fields[rejected]:,} rejected"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("import", total=size, rows=0, rate=0.0, rejected=0)

        def progress(done: int, rows: int, rejected: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-6)
            bar.update(
                task,
                completed=size if done < 0 else done,
                rows=rows,
                rate=rate,
                rejected=rejected,
            )

        return Importer(engine, report_path=report_path, progress=progress, bulk=bulk).run(path)

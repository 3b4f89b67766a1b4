"""The matcher's database half: fetch candidates by indexed keys, then rank with :mod:`.matcher`.

Every candidate query is an equality or substring lookup that both backends index:
E.164 (B-tree), name and (pinyin | initials, city | district) composites (B-tree),
and the normalised address (pg_trgm GIN on PostgreSQL, FTS5 trigram on SQLite).
Ranking happens in Python on the union, so SQLite and PostgreSQL return the same
candidates in the same order as long as no lookup hits its cap (``CAP`` rows per
lookup, which only a bare common name such as 张伟 does at national scale; a name is
never unique, 294 282 people are called 张伟, so the agent adds a place).

Latency budget (phone p99 < 1 ms, name/address top-10 p99 < 50 ms at 10 M customers;
docs/benchmarks-matching.md has the figures), and what it dictates here:

* **A number is one round trip.** A number alone ranks every owner equally (the phone
  points and nothing else), so the owners' rows are not loaded at all: one prepared
  ``customer_phones.e164 = ANY(...)`` probe is the whole search. On PostgreSQL it runs
  on a per-thread autocommit psycopg connection (:class:`_PhoneProbe`), because a
  pooled SQLAlchemy connection adds a pre-ping, a ``BEGIN`` and a reset ``ROLLBACK``:
  three extra round trips, 0.5 ms of a 1 ms budget. The first version made four round
  trips and compiled four ORM statements per call (p99 13 ms at 1 M).
* **Candidates are loaded in one round trip** (customers, phones and addresses as one
  ``UNION ALL``), not three.
* **Fallbacks only when the exact keys find nobody.** The one-wrong-character lookup
  and the in-memory typo scan cost 10–500 ms at 1 M in their first versions; a query
  whose exact keys already found a customer in the place is not a typo, so they do
  not run for it.
* **The exact Hanzi lookup only runs without a place:** with a place, the pinyin +
  place composite already returns every exact-name customer (same name → same pinyin),
  whereas ``name = '张伟'`` then filtering by district reads thousands of heap rows.

Typo tolerance (one wrong character, a mistyped pinyin) uses the distinct pinyin keys
held in memory (:class:`hotline.matching.keys.KeyIndex`): pg_trgm on short pinyin measured
a 1.9 s p99, an OSA scan over the distinct keys full recall in a few milliseconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, Integer, Select, bindparam, column, select, text
from sqlalchemy.sql.elements import ColumnElement, TextClause

from hotline.db.models import Address, Customer
from hotline.matching.keys import (
    KeyIndex,
    all_syllables,
    name_keys,
    syllables,
    to_simplified,
    traditional_forms,
)
from hotline.matching.matcher import (
    PHONE_POINTS,
    Candidate,
    CustomerView,
    Query,
    parse_query,
    score,
)
from hotline.matching.places import city_named

__all__ = ["CAP", "CustomerSearch"]

log = logging.getLogger(__name__)

CAP = 200
_KEY_REFRESH_S = 600.0


def _in(name: str, postgres: bool) -> tuple[str, dict[str, Any]]:
    """``= ANY(:name)`` on PostgreSQL (one statement text whatever the list's length, so
    psycopg prepares it once per connection), an expanding ``IN`` on SQLite."""
    return (f"= ANY(:{name})", {}) if postgres else (f"IN :{name}", {"expanding": True})


def _statement(sql: str, postgres: bool, *lists: str) -> TextClause:
    params = []
    for name in lists:
        clause, options = _in(name, postgres)
        sql = sql.replace("{" + name + "}", clause)
        params.append(bindparam(name, **options))
    return text(sql).bindparams(*params)


class _Statements:
    """The hot-path statements, built once per backend (no ORM compilation per call)."""

    def __init__(self, postgres: bool) -> None:
        self.phone_owners = _statement(
            "SELECT DISTINCT customer_id FROM customer_phones WHERE e164 {phones} LIMIT :cap",
            postgres,
            "phones",
        )
        self.views = _statement(
            "SELECT 0 AS part, id AS cid, name AS a, name_pinyin AS b, name_initials AS c, "
            "city AS d, district AS e, id AS ord FROM customers WHERE id {ids} "
            "UNION ALL SELECT 1, customer_id, e164, NULL, NULL, NULL, NULL, id "
            "FROM customer_phones WHERE customer_id {ids} "
            "UNION ALL SELECT 2, customer_id, province, city, district, detail, NULL, id "
            "FROM addresses WHERE customer_id {ids} "
            "ORDER BY 1, 8",
            postgres,
            "ids",
        )
        # customers whose key is one of a list, in the place: one statement per place
        # shape (district and city, district, city, none), the list bound as one array
        self.by_keys = {
            (district, city): _statement(
                "SELECT id FROM customers WHERE name_pinyin {keys}"
                + (" AND district = :district" if district else "")
                + (" AND city = :city" if city else "")
                + " LIMIT :cap",
                postgres,
                "keys",
            )
            for district in (True, False)
            for city in (True, False)
        }
        # customers with a surname in a place: a range of the (district, name_pinyin)
        # index, the name's first characters checked on the rows found. A city alone is
        # the list of its districts, so the same index serves it.
        surname = (
            " AND name_pinyin >= :low AND name_pinyin < :high"
            " AND substr(name, 1, :size) {forms} ORDER BY id LIMIT :cap"
        )
        self.by_surname = {
            "district": _statement(
                "SELECT id FROM customers WHERE district = :district" + surname,
                postgres,
                "forms",
            ),
            "district+city": _statement(
                "SELECT id FROM customers WHERE district = :district AND city = :city" + surname,
                postgres,
                "forms",
            ),
            "city": _statement(
                "SELECT id FROM customers WHERE district {districts} AND city = :city" + surname,
                postgres,
                "forms",
                "districts",
            ),
        }


class _PhoneProbe:
    """``customer_id`` of the owners of some E.164 numbers, one round trip (PostgreSQL).

    A few autocommit psycopg connections shared by all threads (at most ``size`` open,
    so an API worker with a 40-thread pool does not hold 40 extra server connections);
    psycopg prepares the statement server-side after its fifth use on a connection. A
    broken connection is dropped and the probe retried once on a new one, so a database
    restart costs one reconnect, as ``pool_pre_ping`` does for the engine.
    """

    _SQL = "SELECT DISTINCT customer_id FROM customer_phones WHERE e164 = ANY(%s) LIMIT %s"

    def __init__(self, engine: Engine, size: int = 4) -> None:
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        # fail fast when the database is down, like the engine (hotline.db.session)
        kwargs.setdefault("connect_timeout", 5)
        self._connect_args = (args, kwargs)
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def _connect(self) -> Any:
        import psycopg

        args, kwargs = self._connect_args
        return psycopg.connect(*args, **kwargs, autocommit=True)

    def owners(self, phones: Sequence[str], cap: int) -> list[int]:
        import psycopg

        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            for attempt in (1, 2):
                try:
                    with conn.cursor() as cursor:
                        cursor.execute(self._SQL, (list(phones), cap))
                        found = [row[0] for row in cursor.fetchall()]
                    self._idle.put(conn)
                    return found
                except psycopg.OperationalError:
                    conn.close()
                    if attempt == 2:
                        raise
                    conn = self._connect()
        raise AssertionError("unreachable")

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class CustomerSearch:
    """Search the national record. Thread-safe; one instance per engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._sql = _Statements(self.postgres)
        self._probe = _PhoneProbe(engine) if self.postgres else None
        self._keys: KeyIndex | None = None
        self._keys_at = 0.0
        self._refreshing = False
        self._lock = threading.Lock()

    # -- typo index -----------------------------------------------------------------
    def _load_keys(self) -> KeyIndex:
        all_syllables()  # built with the keys, not inside the first wrong-name search
        to_simplified("")  # the same for the traditional-character table
        with self.engine.connect() as conn:
            return KeyIndex(conn.scalars(select(Customer.name_pinyin).distinct()))

    def key_index(self) -> KeyIndex:
        """The typo index; loaded on first use, then refreshed in the background.

        Why in the background: at 10 M customers a reload reads ~1 M distinct keys
        (seconds); doing it inside a search every ten minutes would put that reload
        into the agent's p99. Names added through the API are added at once
        (:meth:`remember`), so the stale copy only misses other writers' names.
        """
        with self._lock:
            if self._keys is None:
                self._keys = self._load_keys()
                self._keys_at = time.monotonic()
            elif time.monotonic() - self._keys_at > _KEY_REFRESH_S and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh, name="key-index", daemon=True).start()
            return self._keys

    def _refresh(self) -> None:
        try:
            fresh = self._load_keys()
            with self._lock:
                self._keys, self._keys_at = fresh, time.monotonic()
        except Exception:  # a failed refresh keeps the old index; the next call retries
            log.exception("typo key index refresh failed")
        finally:
            self._refreshing = False

    def remember(self, name: str) -> None:
        """Make a new customer's name findable by typo at once (the API calls this)."""
        if self._keys is not None:
            self._keys.add(name_keys(name).pinyin)

    # -- search ----------------------------------------------------------------------
    def search(self, text_query: str, limit: int = 10) -> list[Candidate]:
        """Ranked candidates for ``text_query``; raises :class:`QueryError` on bad input."""
        query = parse_query(text_query)
        found = self.search_query(query, limit)
        if not found and query.alternative is not None:  # 罗湖: nobody so named, so the place
            found = self.search_query(query.alternative, limit)
        return found

    def search_query(self, query: Query, limit: int = 10) -> list[Candidate]:
        if query.phones and _number_only(query):
            # every owner scores exactly the phone's points (see matcher.score), so
            # their rows are not needed: one round trip in all
            return [
                Candidate(cid, PHONE_POINTS, ("phone",))
                for cid in sorted(self._phone_owners(query.phones))[:limit]
            ]
        with self.engine.connect() as conn:
            if query.phones:
                ids = set(
                    conn.scalars(self._sql.phone_owners, {"phones": list(query.phones), "cap": CAP})
                )
            else:
                ids = self._candidates(conn, query)
            if not ids:
                return []
            views = self._views(conn, ids)
        ranked = [c for c in (score(query, v) for v in views) if c.score > 0]
        ranked.sort(key=lambda c: (-c.score, c.customer_id))
        return ranked[:limit]

    def _phone_owners(self, phones: Sequence[str]) -> set[int]:
        if self._probe is not None:
            return set(self._probe.owners(phones, CAP))
        with self.engine.connect() as conn:
            return set(conn.scalars(self._sql.phone_owners, {"phones": list(phones), "cap": CAP}))

    def close(self) -> None:
        """Close the idle phone-probe connections (tests, shutdown)."""
        if self._probe is not None:
            self._probe.close()

    # -- candidates ---------------------------------------------------------------
    def _candidates(self, conn: Connection, query: Query) -> set[int]:
        ids: set[int] = set()

        def run(statement: Select[Any]) -> None:
            ids.update(conn.scalars(statement.limit(CAP)))

        place = self._place_filter(query)
        pinyin_keys: list[str] = []
        if query.hanzi_name:
            if not place:  # with a place the pinyin + place lookup below covers it
                run(select(Customer.id).where(Customer.name == query.hanzi_name))
            pinyin_keys.append(name_keys(query.hanzi_name).pinyin)
        if query.typed:
            pinyin_keys.append(query.typed)
            run(select(Customer.id).where(Customer.name_initials == query.typed, *place))
        for key in dict.fromkeys(pinyin_keys):
            run(select(Customer.id).where(Customer.name_pinyin == key, *place))
        # a name that is also a place (罗湖) is somebody only if somebody has exactly
        # that name: no typo fallbacks for it, the search reads it as the place instead
        if not ids and (query.hanzi_name or query.typed) and query.alternative is None:
            self._fallbacks(query, pinyin_keys, conn, ids)
        if query.address is not None and query.address.detail:
            ids.update(self._address_candidates(conn, query))
        if query.surname and (query.district or query.city):
            ids.update(self._with_surname(conn, query))
        if not ids and not query.has_name and query.district:
            run(select(Customer.id).where(*place).order_by(Customer.id))
        return ids

    def _with_surname(self, conn: Connection, query: Query) -> list[int]:
        """Customers of the query's place whose name starts with its surname (姓王 天河区),
        the lowest ids first when there are more than ``CAP``.

        The surname's pinyin bounds a range of the ``(district, name_pinyin)`` index, so
        only that surname's homophones in the place are read (王 and 汪 are both
        ``wang``); the name's first characters, in simplified or traditional spelling,
        keep the surname itself.
        """
        assert query.surname is not None
        low = name_keys(query.surname).pinyin
        if not low:
            return []
        size = len(query.surname)
        params: dict[str, Any] = {
            "low": low,
            "high": low[:-1] + chr(ord(low[-1]) + 1),
            "size": size,
            "forms": [f for f in traditional_forms(query.surname) if len(f) == size],
            "cap": CAP,
        }
        if query.district:
            params["district"] = query.district
            shape = "district"
            if query.city:
                params["city"], shape = query.city, "district+city"
        else:
            assert query.city is not None
            districts = _districts_of(query.city)
            if not districts:
                return []
            params["city"], params["districts"], shape = query.city, list(districts), "city"
        return list(conn.scalars(self._sql.by_surname[shape], params))

    def _fallbacks(
        self, query: Query, pinyin_keys: Sequence[str], conn: Connection, ids: set[int]
    ) -> None:
        """The expensive lookups, for a name whose exact keys found nobody.

        One wrong character in a Hanzi name of three or more characters, wherever it
        is: the last (张伟民 for 张伟明), a middle one (张大明 for 张伟明) or the first
        (a misheard surname, 季伟明 for 李伟明), is one lookup of the known keys that
        differ from the query's in one syllable (:meth:`KeyIndex.spliced`), inside the
        place when given (the ``(district, name_pinyin)`` index, migration 0004). It
        replaces the B-tree range on the pinyin before the last character, which could
        only reach that one position. All positions are listed together rather than
        stopping at the first that finds someone: for 季伟明, ``jiwei?`` finds any
        纪伟华 of the district, who is not the 李伟明 the caller meant. When the lookup finds
        someone the name is explained and the typo scan is skipped: a Hanzi name has
        no typed letters to swap, and the scan was two thirds of this path's time.

        A two-character name gets no wrong-character lookup: with one of its two
        characters wrong, half the name is all that is left, so 李伟 would list every
        X伟 and 李X of the district (hundreds at 10 M customers), which is not
        evidence of anyone; the scorer gives such a name no points either
        (:func:`hotline.matching.matcher._name_points` wants three characters). A wrong
        character that sounds close (陈金 for 陈静) is still found by the typo scan.

        A mistyped pinyin (``zhagnwei``) is an OSA scan over the national distinct
        keys held in memory: they saturate (523 k keys at 10 M customers), and the
        scan (p50 2.8 ms there) beat reading the district's keys through the
        ``(district, name_pinyin)`` index (p50 6.9 ms; the synthetic districts hold
        up to 150 k customers), with the same recall.
        """
        if query.hanzi_name and len(query.hanzi_name) >= 3:
            parts = syllables(query.hanzi_name)
            if len(parts) == len(query.hanzi_name):  # one syllable per character
                index = self.key_index()
                keys = {
                    key
                    for i in range(len(parts))
                    for key in index.spliced("".join(parts[:i]), "".join(parts[i + 1 :]))
                }
                keys.difference_update(pinyin_keys)  # looked up already, found nobody
                ids.update(self._with_keys(conn, keys, query))
                if ids:
                    return
        for key in dict.fromkeys(pinyin_keys):
            if len(key) >= 4 and (near := self.key_index().near(key)):
                ids.update(self._with_keys(conn, near, query))

    def _with_keys(self, conn: Connection, keys: Iterable[str], query: Query) -> list[int]:
        """Customers whose pinyin key is one of ``keys``, in the query's place.

        A text statement with the keys bound as one array (:func:`_in`), not the
        ORM's expanding ``IN``: for the ~100 keys of a wrong character, the ORM's
        ``IN`` with one parameter per key took p50 2.3 ms at 1 M customers, the
        array 0.7 ms (same rows).
        """
        if not (keys := sorted(keys)):
            return []
        district = query.district
        city = query.city
        params: dict[str, Any] = {"keys": keys, "cap": CAP}
        if district:
            params["district"] = district
        if city:
            params["city"] = city
        return list(conn.scalars(self._sql.by_keys[(bool(district), bool(city))], params))

    @staticmethod
    def _place_filter(query: Query) -> list[ColumnElement[bool]]:
        if query.district:
            return [Customer.district == query.district] + (
                [Customer.city == query.city] if query.city else []
            )
        if query.city:
            return [Customer.city == query.city]
        return []

    def _address_candidates(self, conn: Connection, query: Query) -> set[int]:
        """Customers with an address whose detail holds the query's road and number, or
        failing that the start of its detail, inside the query's district and city.

        The text index covers the detail only (migration 0005): a needle is always cut
        from the query's detail, and the place is matched by the district and city
        columns, so the stored area names would only add trigrams. The final
        ``needle in stored`` check keeps the two backends' rows the same where their
        indexes differ (FTS5's trigram tokenizer folds case, LIKE does not).
        """
        assert query.address is not None
        detail = query.address.detail
        needles = [n for n in (query.address.street, detail[:12], detail[:6]) if n and len(n) >= 3]
        for needle in dict.fromkeys(needles):
            if self.postgres:
                escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                statement = select(Address.customer_id, Address.detail).where(
                    Address.detail.like(f"%{escaped}%", escape="\\")
                )
            else:
                phrase = '"' + needle.replace('"', '""') + '"'
                statement = select(Address.customer_id, Address.detail).where(
                    Address.id.in_(
                        text("SELECT rowid FROM addresses_fts WHERE addresses_fts MATCH :q")
                        .bindparams(q=phrase)
                        .columns(column("rowid", Integer))
                    )
                )
            if query.address.district:
                statement = statement.where(Address.district == query.address.district)
            if query.address.city:
                statement = statement.where(Address.city == query.address.city)
            rows = conn.execute(statement.order_by(Address.id).limit(CAP)).all()
            found = {cid for cid, stored in rows if needle in stored}
            if found:
                return found
        return set()

    def _views(self, conn: Connection, ids: set[int]) -> list[CustomerView]:
        """The candidates with their phones and addresses, in one round trip."""
        ordered = sorted(ids)
        views: dict[int, CustomerView] = {}
        for part, cid, a, b, c, d, e, _ord in conn.execute(self._sql.views, {"ids": ordered}):
            if part == 0:
                views[cid] = CustomerView(cid, a, b, c, d, e)
            elif cid in views:
                if part == 1:
                    views[cid].phones.add(a)
                else:
                    views[cid].addresses.append((a, b, c, d))
        return [views[i] for i in ordered if i in views]


@cache
def _districts_of(city: str) -> tuple[str, ...]:
    """The districts of a city (full names), for a surname looked up in a whole city."""
    try:
        return tuple(sorted(city_named(city).districts))
    except KeyError:
        return ()


def _number_only(query: Query) -> bool:
    """True when the query is a number and nothing that could rank its owners apart."""
    return not (query.has_name or query.address or query.district or query.city)

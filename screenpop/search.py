"""The matcher's database half: fetch candidates by indexed keys, then rank with :mod:`.matcher`.

Every candidate query is an equality or substring lookup that both backends index:
E.164 (B-tree), name and (pinyin | initials, city | district) composites (B-tree),
and the normalised address (pg_trgm GIN on PostgreSQL, FTS5 trigram on SQLite).
Ranking happens in Python on the union, so SQLite and PostgreSQL return the same
candidates in the same order as long as no lookup hits its cap (``CAP`` rows per
lookup, which only a bare common name such as 张伟 does at national scale; a name is
never unique, research §3.1, and the agent adds a place).

Typo tolerance (one wrong character, a mistyped pinyin) uses the distinct pinyin keys
held in memory (:class:`KeyIndex`), as the research measured pg_trgm on short pinyin at
a 1.9 s p99 and an OSA scan over distinct keys at full recall.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable

from rapidfuzz import process
from rapidfuzz.distance import OSA
from sqlalchemy import Engine, Integer, column, select, text

from hotline.db.models import Address, Customer, CustomerPhone
from screenpop.keys import name_keys, syllables
from screenpop.matcher import Candidate, CustomerView, Query, parse_query, score

__all__ = ["CAP", "CustomerSearch", "KeyIndex"]

CAP = 200
_KEY_REFRESH_S = 600.0


class KeyIndex:
    """Distinct ``name_pinyin`` keys bucketed by first letter, for typo lookups."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._buckets: dict[str, set[str]] = defaultdict(set)
        for key in keys:
            self.add(key)

    def add(self, key: str) -> None:
        if key:
            self._buckets[key[0]].add(key)

    def near(self, key: str, max_distance: int = 2, limit: int = 20) -> list[str]:
        """Keys within ``max_distance`` OSA edits (a transposition is one edit)."""
        if not key:
            return []
        bucket = [k for k in self._buckets.get(key[0], ()) if abs(len(k) - len(key)) <= 2]
        found = process.extract(
            key, bucket, scorer=OSA.distance, score_cutoff=max_distance, limit=limit
        )
        return sorted((k for k, distance, _ in found if distance > 0))


class CustomerSearch:
    """Search the national record. Thread-safe; one instance per engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._keys: KeyIndex | None = None
        self._keys_at = 0.0
        self._lock = threading.Lock()

    def key_index(self) -> KeyIndex:
        with self._lock:
            if self._keys is None or time.monotonic() - self._keys_at > _KEY_REFRESH_S:
                with self.engine.connect() as conn:
                    keys = conn.scalars(select(Customer.name_pinyin).distinct())
                    self._keys = KeyIndex(keys)
                self._keys_at = time.monotonic()
            return self._keys

    def remember(self, name: str) -> None:
        """Make a new customer's name findable by typo at once (the API calls this)."""
        if self._keys is not None:
            self._keys.add(name_keys(name).pinyin)

    def search(self, text_query: str, limit: int = 10) -> list[Candidate]:
        """Ranked candidates for ``text_query``; raises :class:`QueryError` on bad input."""
        query = parse_query(text_query)
        return self.search_query(query, limit)

    def search_query(self, query: Query, limit: int = 10) -> list[Candidate]:
        ids = self._candidates(query)
        if not ids:
            return []
        views = self._views(ids)
        ranked = [c for c in (score(query, v) for v in views) if c.score > 0]
        ranked.sort(key=lambda c: (-c.score, c.customer_id))
        return ranked[:limit]

    # -- candidates ---------------------------------------------------------------
    def _candidates(self, query: Query) -> set[int]:
        ids: set[int] = set()
        with self.engine.connect() as conn:

            def run(statement) -> None:  # type: ignore[no-untyped-def]
                ids.update(conn.scalars(statement.limit(CAP)))

            if query.phones:
                run(select(CustomerPhone.customer_id).where(CustomerPhone.e164.in_(query.phones)))
                return ids  # a number decides the candidates; names and places rank them
            place = self._place_filter(query)
            pinyin_keys: list[str] = []
            if query.hanzi_name:
                run(select(Customer.id).where(Customer.name == query.hanzi_name, *place))
                pinyin_keys.append(name_keys(query.hanzi_name).pinyin)
            if query.hanzi_name and len(query.hanzi_name) >= 3:
                # one wrong last character (张伟民 for 张伟明): a B-tree range on the
                # pinyin of the characters before it, inside the place when given
                head = "".join(syllables(query.hanzi_name[:-1]))
                run(
                    select(Customer.id).where(
                        Customer.name_pinyin >= head, Customer.name_pinyin < head + "{", *place
                    )
                )
            if query.typed:
                pinyin_keys.append(query.typed)
                run(select(Customer.id).where(Customer.name_initials == query.typed, *place))
            for key in pinyin_keys:
                before = len(ids)
                run(select(Customer.id).where(Customer.name_pinyin == key, *place))
                if len(ids) - before < 3 and len(key) >= 4:
                    near = self.key_index().near(key)
                    if near:
                        run(select(Customer.id).where(Customer.name_pinyin.in_(near), *place))
            if query.address is not None and query.address.detail:
                ids.update(self._address_candidates(conn, query))
            if not ids and not query.has_name and query.district:
                run(select(Customer.id).where(*place).order_by(Customer.id))
        return ids

    @staticmethod
    def _place_filter(query: Query) -> list:  # type: ignore[type-arg]
        if query.district:
            return [Customer.district == query.district] + (
                [Customer.city == query.city] if query.city else []
            )
        if query.city:
            return [Customer.city == query.city]
        return []

    def _address_candidates(self, conn, query: Query) -> set[int]:  # type: ignore[no-untyped-def]
        assert query.address is not None
        detail = query.address.detail
        needles = [n for n in (query.address.street, detail[:12], detail[:6]) if n and len(n) >= 3]
        for needle in dict.fromkeys(needles):
            if self.postgres:
                escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                statement = select(Address.customer_id, Address.normalised).where(
                    Address.normalised.like(f"%{escaped}%", escape="\\")
                )
            else:
                phrase = '"' + needle.replace('"', '""') + '"'
                statement = select(Address.customer_id, Address.normalised).where(
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
            found = {cid for cid, normalised in rows if needle in normalised}
            if found:
                return found
        return set()

    def _views(self, ids: set[int]) -> list[CustomerView]:
        ordered = sorted(ids)
        views: dict[int, CustomerView] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(
                select(
                    Customer.id,
                    Customer.name,
                    Customer.name_pinyin,
                    Customer.name_initials,
                    Customer.city,
                    Customer.district,
                ).where(Customer.id.in_(ordered))
            ):
                views[row.id] = CustomerView(
                    row.id, row.name, row.name_pinyin, row.name_initials, row.city, row.district
                )
            for cid, e164 in conn.execute(
                select(CustomerPhone.customer_id, CustomerPhone.e164).where(
                    CustomerPhone.customer_id.in_(ordered)
                )
            ):
                views[cid].phones.add(e164)
            for row in conn.execute(
                select(
                    Address.customer_id,
                    Address.province,
                    Address.city,
                    Address.district,
                    Address.detail,
                )
                .where(Address.customer_id.in_(ordered))
                .order_by(Address.id)
            ):
                views[row.customer_id].addresses.append(
                    (row.province, row.city, row.district, row.detail)
                )
        return [views[i] for i in ordered if i in views]

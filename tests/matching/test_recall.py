"""Recall of the matcher on the labelled query set (≥ 300 queries), on both backends."""

from __future__ import annotations

from collections import defaultdict

import pytest

from hotline.db.session import make_engine, upgrade
from hotline.matching.search import CustomerSearch
from tests.matching import labelled


@pytest.fixture
def loaded(db_url, tmp_path):
    upgrade(db_url)
    engine = make_engine(db_url)
    labelled.load(engine, tmp_path)
    queries = labelled.add_hard_cases(engine) + labelled.build(engine)
    queries += labelled.build_written(engine)
    yield engine, queries
    engine.dispose()


def _ranks(engine, queries) -> list[int | None]:
    search = CustomerSearch(engine)
    ranks: list[int | None] = []
    for item in queries:
        ids = [c.customer_id for c in search.search(item.query, limit=10)]
        ranks.append(ids.index(item.target) + 1 if item.target in ids else None)
    return ranks


def test_recall_at_3_is_at_least_98_percent(loaded, capsys) -> None:
    engine, queries = loaded
    assert len(queries) >= 300
    ranks = _ranks(engine, queries)
    per_kind: dict[str, list[int | None]] = defaultdict(list)
    for item, rank in zip(queries, ranks, strict=True):
        per_kind[item.kind].append(rank)
    for kind in labelled.WRITTEN_KINDS:  # each way of writing is measured, not a few cases
        assert len(per_kind[kind]) >= 20, kind
    at1 = sum(r == 1 for r in ranks) / len(ranks)
    at3 = sum(r is not None and r <= 3 for r in ranks) / len(ranks)
    with capsys.disabled():
        print(
            f"\n[{engine.dialect.name}] {len(ranks)} queries: "
            f"recall@1 {at1:.1%}, recall@3 {at3:.1%}"
        )
        for kind, values in sorted(per_kind.items()):
            hit1 = sum(r == 1 for r in values)
            hit3 = sum(r is not None and r <= 3 for r in values)
            print(f"  {kind:27} n={len(values):3}  @1 {hit1:3}  @3 {hit3:3}")
        misses = [(q.query, q.kind) for q, r in zip(queries, ranks, strict=True) if not r or r > 3]
        print("  misses:", misses[:15])
    assert at3 >= 0.98, f"recall@3 {at3:.1%}"


def test_sqlite_and_postgresql_rank_the_same(sqlite_url, pg_url, tmp_path) -> None:
    results = []
    for url in (sqlite_url, pg_url):
        upgrade(url)
        engine = make_engine(url)
        (tmp_path / engine.dialect.name).mkdir()
        labelled.load(engine, tmp_path / engine.dialect.name)
        queries = labelled.add_hard_cases(engine) + labelled.build(engine, count=120)
        queries += labelled.build_written(engine, per_kind=10)
        search = CustomerSearch(engine)
        results.append([(q.query, search.search(q.query, limit=10)) for q in queries])
        engine.dispose()
    assert results[0] == results[1]

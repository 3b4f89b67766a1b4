"""The search's fast paths give the same answers as the general path, on both backends.

Why these exist: the number-only path skips loading and scoring the owners, and the
typo fallbacks were gated behind "the exact keys found nobody" for speed
(docs/benchmarks-matching.md); both are shortcuts that could silently change results, so
they are pinned here. The surname-in-a-place lookup is its own candidate path.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from hotline.customers.rows import with_name_keys
from hotline.db.models import Address, Customer, CustomerPhone
from hotline.db.session import make_engine, upgrade
from hotline.matching.keys import KeyIndex
from hotline.matching.matcher import PHONE_POINTS, parse_query, score
from hotline.matching.search import CustomerSearch


def _seed(url: str):
    upgrade(url)
    engine = make_engine(url)
    people = [
        ("王芳", "+8613800138000", "朝阳区", "北京市"),
        ("李强", "+8613800138000", "朝阳区", "北京市"),  # a shared family line
        ("张伟明", "+8613900139000", "天河区", "广州市"),
        ("周俊平", "+8613700137000", "海淀区", "北京市"),
    ]
    with Session(engine) as session, session.begin():
        for name, e164, district, city in people:
            customer = with_name_keys(Customer(name=name, city=city, district=district))
            customer.phones = [CustomerPhone(e164=e164, kind="mobile")]
            raw = f"{city}{district}一路1号"
            customer.addresses = [Address(raw=raw, city=city, district=district, detail="一路1号")]
            session.add(customer)
    return engine


def test_number_only_path_matches_general_scoring(db_url) -> None:
    engine = _seed(db_url)
    search = CustomerSearch(engine)
    found = search.search("138 0013 8000")
    assert [c.customer_id for c in found] == [1, 2]  # both owners, never one silently
    assert {(c.score, c.matched) for c in found} == {(PHONE_POINTS, ("phone",))}
    # the general path (load the owners, score them) gives the same candidates
    query = parse_query("138 0013 8000")
    with engine.connect() as conn:
        views = search._views(conn, {1, 2})
    assert [score(query, v) for v in views] == found
    # a surname after the number takes the general path and ranks 李强 first
    assert search.search("138 0013 8000 李")[0].customer_id == 2
    search.close()
    engine.dispose()


def test_typo_fallbacks_run_only_when_exact_keys_find_nobody(db_url, monkeypatch) -> None:
    engine = _seed(db_url)
    search = CustomerSearch(engine)
    calls: list[str] = []
    original = search._fallbacks

    def spy(query, *args):  # type: ignore[no-untyped-def]
        calls.append(query.raw)
        return original(query, *args)

    monkeypatch.setattr(search, "_fallbacks", spy)
    assert search.search("张伟明 天河区")[0].customer_id == 3
    assert search.search("zhangweiming 天河")[0].customer_id == 3
    assert calls == []  # exact keys found the customer: no range, no typo scan
    assert search.search("张伟民 天河区")[0].customer_id == 3  # wrong last character
    assert search.search("zhoujunipng 海淀区")[0].customer_id == 4  # transposed letters
    assert calls == ["张伟民 天河区", "zhoujunipng 海淀区"]
    search.close()
    engine.dispose()


def test_typo_scan_is_skipped_when_a_wrong_character_lookup_explains(db_url, monkeypatch) -> None:
    """A Hanzi name found by a one-wrong-character lookup (at any position) skips the
    typo scan; a typed pinyin, or a Hanzi name that no lookup explains, still gets it."""
    engine = _seed(db_url)
    search = CustomerSearch(engine)
    scanned: list[str] = []
    original = KeyIndex.near

    def spy(index, key, *args, **kwargs):  # type: ignore[no-untyped-def]
        scanned.append(key)
        return original(index, key, *args, **kwargs)

    monkeypatch.setattr(KeyIndex, "near", spy)
    assert search.search("张伟民 天河区")[0].customer_id == 3  # keys "zhangwei?"
    assert search.search("蒋伟明 天河区")[0].customer_id == 3  # keys ending in "weiming"
    assert search.search("张大明 天河区")[0].customer_id == 3  # keys "zhang?ming"
    assert scanned == []  # each was explained: no typo scan
    assert search.search("张伟民 海淀区") == []  # no lookup finds anyone there: scan runs
    assert scanned == ["zhangweimin"]
    assert search.search("zhoujunipng 海淀区")[0].customer_id == 4
    assert scanned == ["zhangweimin", "zhoujunipng"]
    search.close()
    engine.dispose()


def test_key_index_near_uses_length_buckets() -> None:
    index = KeyIndex(["zhangwei", "zhangweiming", "zhoujunping", "zhang", "lina"])
    assert index.near("zhagnwei") == ["zhangwei"]  # a transposition is one edit
    assert index.near("zhangwei") == []  # the key itself is not a typo of itself
    assert index.near("zhoujunipng") == ["zhoujunping"]
    assert index.near("zhangweimin") == ["zhangweiming"]  # one letter shorter
    assert index.near("lina") == [] and index.near("") == []
    index.add("zhangwie")
    assert index.near("zhangwei") == ["zhangwie"] and len(index) == 6


def test_phone_probe_survives_a_dropped_connection(pg_url) -> None:
    """The probe bypasses the pool's pre-ping, so it must reconnect by itself."""
    from sqlalchemy import text

    engine = _seed(pg_url)
    search = CustomerSearch(engine)
    assert [c.customer_id for c in search.search("13900139000")] == [3]
    with engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    assert killed >= 1
    assert [c.customer_id for c in search.search("13900139000")] == [3]
    search.close()
    engine.dispose()


def test_a_surname_with_a_place_finds_that_surname_there(db_url) -> None:
    """姓王 天河区 / 王先生 广州: the customers of that surname in the place, lowest id
    first; not a homophone surname (汪), not the same surname elsewhere, and a record
    written in traditional characters (王偉) too."""
    upgrade(db_url)
    engine = make_engine(db_url)
    people = [
        ("王芳", "天河区", "广州市"),
        ("汪洋", "天河区", "广州市"),  # wang too, another surname
        ("王偉", "越秀区", "广州市"),  # as a Hong Kong record writes it
        ("王强", "海淀区", "北京市"),
        ("万刚", "天河区", "广州市"),  # wangang: its key starts with wang
        ("诸葛亮", "襄城区", "襄阳市"),
        ("張伟", "天河区", "广州市"),
    ]
    with Session(engine) as session, session.begin():
        for name, district, city in people:
            session.add(with_name_keys(Customer(name=name, city=city, district=district)))
    search = CustomerSearch(engine)
    assert [c.customer_id for c in search.search("姓王 天河区")] == [1]
    assert [c.customer_id for c in search.search("王先生 广州")] == [1, 3]
    assert [c.customer_id for c in search.search("王 海淀区")] == [4]
    assert [c.customer_id for c in search.search("姓诸葛，襄阳的")] == [6]
    assert [c.customer_id for c in search.search("张先生 天河")] == [7]  # 張 in the record
    assert [c.customer_id for c in search.search("姓汪 天河区")] == [2]
    assert search.search("王先生") == []  # a surname alone is nobody
    search.close()
    engine.dispose()

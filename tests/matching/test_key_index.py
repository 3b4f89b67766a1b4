"""One wrong character at any position: the key listing, and the search that uses it.

Why pinned: before this lookup only a wrong *last* character was retrieved (a B-tree
range on the characters before it), so a misheard surname (蒋伟明 for 李伟明) or a
wrong middle character (张大明 for 张伟明) whose reading is far off found nobody, and
the labelled set did not notice because it only ever corrupted the last character.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from hotline.customers.rows import with_name_keys
from hotline.db.models import Customer
from hotline.db.session import make_engine, upgrade
from hotline.matching.keys import KeyIndex, all_syllables
from hotline.matching.matcher import parse_query
from hotline.matching.search import CustomerSearch

KEYS = ["liweiming", "zhangweiming", "zhangxiaoming", "zhangweihua", "weiming", "liming"]


def test_spliced_finds_a_wrong_first_syllable_and_not_an_unrelated_key() -> None:
    index = KeyIndex([*KEYS, "wangjunping", "liweimin", "xweiming"])
    # 蒋伟明: keys ending in "weiming" with one syllable before it; "weiming" (no
    # syllable there) and "xweiming" (x is not a syllable) are not such names
    assert index.spliced("", "weiming") == ["liweiming", "zhangweiming"]
    assert "wangjunping" not in index.spliced("", "junming")
    assert index.spliced("", "junping") == ["wangjunping"]


def test_spliced_finds_a_wrong_middle_or_last_syllable() -> None:
    index = KeyIndex(KEYS)
    assert index.spliced("zhang", "ming") == ["zhangweiming", "zhangxiaoming"]  # 张大明
    assert index.spliced("zhangwei", "") == ["zhangweihua", "zhangweiming"]  # 张伟民
    assert index.spliced("li", "ming") == ["liweiming"]  # "liming" has no syllable between
    assert index.spliced("", "") == []  # a one-character name: no anchor, nothing listed


def test_spliced_sees_keys_added_after_the_load() -> None:
    index = KeyIndex(KEYS)
    assert index.spliced("", "junping") == []
    index.add("zhoujunping")
    assert index.spliced("", "junping") == ["zhoujunping"]


def test_the_syllable_inventory_covers_the_readings_keys_produce() -> None:
    syllables = all_syllables()
    assert len(syllables) > 400 and len(set(syllables)) == len(syllables)
    # ü spelt v as in keys (吕 lv, 女 nv), surname readings, the longest syllables
    for s in ("lv", "nv", "zeng", "piao", "zhuang", "shuang", "a", "er"):
        assert s in syllables
    assert all(s.isascii() and s.isalpha() and s.islower() for s in syllables)


def _seed(url: str, people: list[tuple[str, str]]):
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        for name, district in people:
            session.add(with_name_keys(Customer(name=name, city="广州市", district=district)))
    return engine


def test_search_finds_one_wrong_character_at_any_position(db_url) -> None:
    engine = _seed(
        db_url,
        [
            ("李伟明", "天河区"),  # 1
            ("张伟明", "越秀区"),  # 2: another district
            ("李伟华", "天河区"),  # 3: shares "李伟" with the misheard 李伟X
            ("欧阳娜娜", "天河区"),  # 4
            ("张伟强", "天河区"),  # 5
        ],
    )
    search = CustomerSearch(engine)
    ids = lambda q: [c.customer_id for c in search.search(q)]  # noqa: E731
    assert ids("蒋伟明 天河区") == [1]  # misheard surname, reading far off
    assert ids("李大明 天河区") == [1]  # wrong middle character
    assert ids("蒋阳娜娜 天河区") == [4]  # one character of a compound surname
    assert ids("欧阳丽娜 天河区") == [4]  # a middle character of a four-character name
    with engine.connect() as conn:  # the lookup keeps to the place: 张伟明 is not fetched
        assert search._candidates(conn, parse_query("蒋伟明 天河区")) == {1}
    # every position is tried, not the first that finds someone: for 张伟华,
    # "zhangwei?" finds 张伟强 and "?weihua" finds 李伟华, both one character off
    assert sorted(ids("张伟华 天河区")) == [3, 5]
    assert ids("蒋伟明 越秀区") == [2]
    search.close()
    engine.dispose()


def test_a_two_character_name_gets_no_wrong_character_lookup(db_url, monkeypatch) -> None:
    """李芳 for 王芳: half the name is all that is left, which is no evidence."""
    engine = _seed(db_url, [("王芳", "天河区"), ("王芳芳", "天河区")])
    search = CustomerSearch(engine)
    spliced: list[tuple[str, str]] = []
    original = KeyIndex.spliced

    def spy(index, prefix, suffix):  # type: ignore[no-untyped-def]
        spliced.append((prefix, suffix))
        return original(index, prefix, suffix)

    monkeypatch.setattr(KeyIndex, "spliced", spy)
    assert search.search("蒋芳 天河区") == []
    assert spliced == []
    assert [c.customer_id for c in search.search("蒋芳芳 天河区")] == [2]
    assert spliced == [("", "fangfang"), ("jiang", "fang"), ("jiangfang", "")]
    search.close()
    engine.dispose()

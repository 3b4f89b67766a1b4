"""Query parsing and scoring (pure): combined queries, ambiguity, bad input."""

from __future__ import annotations

import pytest

from screenpop.matcher import CustomerView, QueryError, parse_query, score


def view(cid: int, name: str, phones=(), district=None, city=None, addresses=()) -> CustomerView:
    from screenpop.keys import name_keys

    keys = name_keys(name)
    return CustomerView(
        cid, name, keys.pinyin, keys.initials, city, district, set(phones), list(addresses)
    )


def test_combined_queries_are_split() -> None:
    q = parse_query("138 0013 8000 王")
    assert q.phones == ("+8613800138000",) and q.surname == "王"
    q = parse_query("张伟 朝阳区")
    assert q.hanzi_name == "张伟" and q.district == "朝阳区"
    q = parse_query("zw 广州天河")
    assert q.typed == "zw" and q.city == "广州市" and q.district == "天河区"
    assert parse_query("王13800138000").surname == "王"


@pytest.mark.parametrize("bad", ["", "  ", "x" * 201, "😀", "12345", "--"])
def test_unsearchable_queries_raise(bad) -> None:
    with pytest.raises(QueryError):
        parse_query(bad)


def test_homophone_ranks_below_exact_and_place_decides() -> None:
    q = parse_query("张伟 朝阳区")
    exact = score(q, view(1, "张伟", district="朝阳区"))
    homophone = score(q, view(2, "章伟", district="朝阳区"))
    elsewhere = score(q, view(3, "张伟", district="天河区"))
    assert exact.score > homophone.score > 0
    assert 0 < elsewhere.score < homophone.score  # moved house: shown, but below
    assert "name" in exact.matched and "district" in exact.matched


def test_shared_number_scores_every_owner() -> None:
    q = parse_query("13800138000")
    a = score(q, view(1, "王芳", phones={"+8613800138000"}))
    b = score(q, view(2, "李强", phones={"+8613800138000"}))
    assert a.score == b.score > 0
    named = parse_query("13800138000 李")
    assert (
        score(named, view(2, "李强", phones={"+8613800138000"})).score
        > score(named, view(1, "王芳", phones={"+8613800138000"})).score
    )
    assert score(q, view(3, "王芳", phones={"+8613900000000"})).score <= 0

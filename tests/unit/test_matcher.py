"""Query parsing and scoring (pure): combined queries, ambiguity, bad input."""

from __future__ import annotations

import pytest

from hotline.matching.matcher import CustomerView, QueryError, parse_query, score


def view(cid: int, name: str, phones=(), district=None, city=None, addresses=()) -> CustomerView:
    from hotline.matching.keys import name_keys

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


def test_a_place_name_that_is_also_a_persons_name() -> None:
    """高明 is 佛山's 高明区 and an everyday name; 天河 is only a place."""
    q = parse_query("高明 天河区")  # another place is given: 高明 is only the person
    assert (q.hanzi_name, q.district, q.alternative) == ("高明", "天河区", None)
    alone = parse_query("高明")
    assert alone.hanzi_name == "高明" and alone.alternative is not None
    assert alone.alternative.district == "高明区"
    with_name = parse_query("罗湖 张伟")  # a real name is given: 罗湖 is the place
    assert (with_name.hanzi_name, with_name.district, with_name.alternative) == (
        "张伟",
        "罗湖区",
        None,
    )
    suffixed = parse_query("高明区")  # with its suffix it is only the district
    assert (suffixed.hanzi_name, suffixed.district) == (None, "高明区")
    place = parse_query("天河")
    assert (place.hanzi_name, place.district, place.alternative) == (None, "天河区", None)
    typed = parse_query("gaoming 高明")  # a typed name: 高明 is the place
    assert (typed.typed, typed.district) == ("gaoming", "高明区")


def test_places_of_every_province_in_queries() -> None:
    q = parse_query("王芳 平凉崆峒")
    assert (q.hanzi_name, q.city, q.district) == ("王芳", "平凉市", "崆峒区")
    q = parse_query("zw 延边州")
    assert (q.typed, q.city) == ("zw", "延边朝鲜族自治州")


@pytest.mark.parametrize(
    ("text", "surname", "city", "district"),
    [
        ("姓诸葛，襄阳的", "诸葛", "襄阳市", None),
        ("姓王 天河区", "王", "广州市", "天河区"),
        ("王先生 广州", "王", "广州市", None),
        ("诸葛女士 襄阳", "诸葛", "襄阳市", None),
        ("我姓欧阳，住在天河区", "欧阳", "广州市", "天河区"),
        ("姓王，天河那边的", "王", "广州市", "天河区"),
        ("王 天河区", "王", "广州市", "天河区"),  # nobody is named just 王
        ("诸葛 襄阳", "诸葛", "襄阳市", None),
        ("姓張 廣州天河", "张", "广州市", "天河区"),
    ],
)
def test_a_surname_with_a_place_and_no_given_name(text, surname, city, district) -> None:
    q = parse_query(text)
    assert (q.surname, q.hanzi_name, q.city, q.district) == (surname, None, city, district)
    assert q.address is None


def test_a_title_after_a_full_name_and_a_bare_surname_without_a_place() -> None:
    assert parse_query("王伟先生 天河区").hanzi_name == "王伟"
    assert parse_query("138 0013 8000 王先生").surname == "王"
    alone = parse_query("王")  # no number, no place: still read as a (one-character) name
    assert (alone.hanzi_name, alone.surname) == ("王", None)
    assert parse_query("姓名 张伟 天河区").surname is None  # the form's label, not 姓 名


def test_surname_scores_only_that_surname_in_the_place() -> None:
    q = parse_query("姓王 天河区")
    here = score(q, view(1, "王芳", district="天河区", city="广州市"))
    homophone = score(q, view(2, "汪芳", district="天河区", city="广州市"))
    elsewhere = score(q, view(3, "王芳", district="海淀区", city="北京市"))
    written = score(q, view(4, "王偉", district="天河区", city="广州市"))
    assert here.score > 0 and written.score == here.score
    assert "name" in here.matched and "district" in here.matched
    assert homophone.score <= 0 and elsewhere.score <= 0


def test_traditional_queries_and_records_meet() -> None:
    q = parse_query("張偉 天河區")
    assert (q.hanzi_name, q.district) == ("张伟", "天河区")
    simplified = score(parse_query("张伟 天河区"), view(1, "張偉", district="天河区"))
    assert simplified.score == score(q, view(2, "张伟", district="天河区")).score
    assert "name" in simplified.matched  # the exact name, not a homophone

"""Synthetic data: deterministic, realistic numbers, shared lines, duplicates."""

from __future__ import annotations

from collections import Counter

from hotline.customers.gen import generate
from hotline.matching.phone import parse_phone, region_of


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert list(generate(300, 5)) == list(generate(300, 5))
    assert list(generate(50, 5)) != list(generate(50, 6))


def test_numbers_parse_and_mostly_belong_to_the_home_city() -> None:
    records = list(generate(2000, 3))
    home = 0
    mobiles = 0
    for r in records:
        first = parse_phone(r["phones"][0])
        assert first is not None, r["phones"][0]
        if first.kind == "mobile":
            mobiles += 1
            found = region_of(first.candidates[0])
            home += found is not None and found.city == r["_city"]
    assert home / mobiles > 0.8
    shared = Counter(parse_phone(r["phones"][0]).candidates[0] for r in records)  # type: ignore[union-attr]
    assert max(shared.values()) >= 2  # family / shop lines and duplicate entries
    assert any("duplicate-entry" in r["tags"] for r in records)
    assert all(r["products"] for r in records)
    surnames = Counter(r["name"][0] for r in records)
    assert surnames.most_common(1)[0][0] in "王李张"

"""Customers of every province are found by their place, on both backends.

Why: the synthetic data lives in 45 big cities, so the labelled set cannot show that a
caller from 平凉, 延边 or 临沧 is found by "name + district" the way a Beijing caller is.
These records go through the real importer (the address parser sets their city and
district), then through the same search the API runs.
"""

from __future__ import annotations

import json

import pytest

from hotline.customers.cli import import_file
from hotline.db.session import make_engine, upgrade
from hotline.matching.search import CustomerSearch

RECORDS = [
    ("马建国", "09335123456", "甘肃省平凉市崆峒区西大街12号"),
    ("金哲洙", "13904431234", "延边州延吉市人民路5号"),
    ("岩温", "08836123456", "临沧双江县勐勐镇团结路8号"),
    ("格桑", "08916123456", "西藏拉萨城关区北京中路1号"),
    ("阿依古丽", "19909911234", "新疆乌鲁木齐天山区解放北路1号"),
    ("高明", "13500001111", "佛山市南海区桂城街道海八路1号"),
    ("张伟", "13500002222", "佛山市高明区荷城街道文华路2号"),
    ("李娜", "13500003333", "深圳市罗湖区东门中路1号"),
    ("罗华", "13500004444", "广州市天河区体育西路9号"),  # luohua: one letter from luohu
]

QUERIES = [
    ("马建国 崆峒区", 0),
    ("马建国 平凉", 0),
    ("majianguo 崆峒", 0),
    ("金哲洙 延边州", 1),
    ("jzz 延吉", 1),
    ("岩温 双江县", 2),
    ("格桑 城关区", 3),  # 城关区 is in 兰州 and 拉萨: both are searched
    ("阿依古丽 天山区", 4),
    ("(0933)5123456", 0),
    ("西大街12号", 0),
    ("高明", 5),  # the person named 高明, not everyone in 高明区
    ("高明 南海区", 5),
    ("张伟 高明区", 6),
    ("姓马，平凉的", 0),  # a surname and a place, no given name
    ("金先生 延边州", 1),
    ("馬建國 崆峒區", 0),  # traditional characters
]


@pytest.fixture
def search(db_url, tmp_path):
    upgrade(db_url)
    engine = make_engine(db_url)
    data = tmp_path / "national.jsonl"
    with data.open("w", encoding="utf-8") as out:
        for name, phone, address in RECORDS:
            out.write(json.dumps({"name": name, "phones": [phone], "addresses": [address]}) + "\n")
    report = import_file(engine, data, report_path=tmp_path / "rejected.tsv", show_progress=False)
    assert report.rejected == 0
    with engine.connect() as conn:
        ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM customers ORDER BY id")]
    searcher = CustomerSearch(engine)
    yield searcher, ids
    searcher.close()
    engine.dispose()


@pytest.mark.parametrize(("query", "target"), QUERIES)
def test_found_first(search, query, target) -> None:
    searcher, ids = search
    found = searcher.search(query)
    assert found, query
    assert found[0].customer_id == ids[target], (query, found[:3])


def test_a_name_like_place_falls_back_to_the_place_when_nobody_has_that_name(search) -> None:
    """罗湖 could be a person; nobody is called that here, so it is 深圳's 罗湖区 (and
    not 罗华, whose pinyin is one letter away: no typo search for a name-like place)."""
    searcher, ids = search
    assert [c.customer_id for c in searcher.search("罗湖")] == [ids[7]]
    # 高明 is somebody: the person comes first, not the resident of 高明区
    assert searcher.search("高明")[0].customer_id == ids[5]

"""``hotline import``: CSV and JSONL, rejected rows reported, duplicates merged."""

from __future__ import annotations

import gc
import json
from pathlib import Path

from sqlalchemy import func, select

from hotline.customers.cli import import_file
from hotline.customers.gen import generate, write_csv, write_jsonl
from hotline.db.models import Address, Customer, CustomerPhone, Product
from hotline.db.session import make_engine, upgrade


def _count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar()


def test_jsonl_import_with_rejects_and_merges(db_url, tmp_path: Path) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    rows = [
        {"name": "曾伟", "phones": ["138 0013 8000"], "addresses": ["北京市朝阳区建国路1号"]},
        {
            "name": "曾伟",
            "phones": ["+8613800138000"],
            "addresses": ["北京市海淀区中关村大街1号"],
            "products": [{"model": "JSQ25", "serial": "S1", "warranty_end": "2030-01-01"}],
        },
        {"name": "曾小红", "phones": ["13800138000"]},  # same line, other person
        {"name": "", "phones": ["13800138001"]},
        {"name": "王五", "phones": ["12345"]},
        {"name": "王六", "phones": ["13800138002"], "tier": "gold"},
        {
            "name": "王七",
            "phones": ["13800138003"],
            "products": [{"model": "X", "purchase_date": "2020-13-01"}],
        },
    ]
    data = tmp_path / "in.jsonl"
    data.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{not json\n[1]\n",
        encoding="utf-8",
    )
    report = import_file(engine, data, report_path=tmp_path / "rej.tsv", show_progress=False)
    assert (report.rows, report.customers, report.merged, report.rejected) == (9, 2, 1, 6)
    lines = (tmp_path / "rej.tsv").read_text(encoding="utf-8").splitlines()[1:]
    reasons = {int(line.split("\t")[0]): line.split("\t")[1] for line in lines}
    assert reasons == {
        4: "name is missing",
        5: "invalid phone number '12345'",
        6: "unknown tier 'gold'",
        7: "purchase_date is not an ISO date: '2020-13-01'",
        8: reasons[8],
        9: "not a JSON object",
    }
    assert reasons[8].startswith("not valid JSON")
    assert _count(engine, Customer) == 2
    assert _count(engine, Address) == 2 and _count(engine, Product) == 1
    with engine.connect() as conn:
        owners = conn.execute(
            select(func.count()).where(CustomerPhone.e164 == "+8613800138000")
        ).scalar()
        keys = conn.execute(select(Customer.name_pinyin).order_by(Customer.id)).scalars().all()
    assert owners == 2
    assert keys == ["zengwei", "zengxiaohong"]
    # importing the same file again merges everything into the existing record
    again = import_file(engine, data, report_path=tmp_path / "rej2.tsv", show_progress=False)
    assert again.customers == 0 and again.merged == 3
    assert _count(engine, Customer) == 2 and _count(engine, Address) == 2
    engine.dispose()


def test_csv_and_jsonl_of_the_same_data_import_the_same(db_url, tmp_path: Path) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    with (tmp_path / "a.csv").open("w", encoding="utf-8", newline="") as out:
        write_csv(generate(400, 9), out)
    report = import_file(
        engine, tmp_path / "a.csv", report_path=tmp_path / "r.tsv", show_progress=False
    )
    assert report.rejected == 0 and report.rows == 400
    customers = _count(engine, Customer)
    engine.dispose()
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    with (tmp_path / "a.jsonl").open("w", encoding="utf-8") as out:
        write_jsonl(generate(400, 9), out)
    again = import_file(
        other, tmp_path / "a.jsonl", report_path=tmp_path / "r2.tsv", show_progress=False
    )
    assert again.customers == customers and again.phones == report.phones
    other.dispose()


def test_copy_text_escaping_round_trips(db_url, tmp_path: Path) -> None:
    """Workers render COPY text themselves; a tab, newline or backslash must survive."""
    from hotline.customers.rows import _copy_line

    assert _copy_line((None, 7, "a\tb\\c\nd\re", "plain")) == "\\N\t7\ta\\tb\\\\c\\nd\\re\tplain"
    upgrade(db_url)
    engine = make_engine(db_url)
    tricky = "北京市朝阳区建国路1号\t(近\\地铁)\n2单元"
    rows = [
        {
            "name": "王\\五",
            "phones": ["13800138009"],
            "addresses": [tricky],
            "tags": ['vip"\\x'],
            "products": [{"model": "M\tX", "serial": "S\\1", "purchase_date": "2020-01-02"}],
        }
    ]
    data = tmp_path / "tricky.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    report = import_file(engine, data, report_path=tmp_path / "rej.tsv", show_progress=False)
    assert (report.customers, report.rejected) == (1, 0)
    with engine.connect() as conn:
        customer = conn.execute(select(Customer.name, Customer.tags)).one()
        assert customer == ("王\\五", ['vip"\\x'])
        assert conn.execute(select(Address.raw)).scalar() == tricky.strip()
        product = conn.execute(select(Product.model, Product.serial, Product.purchase_date)).one()
        assert (product.model, product.serial, str(product.purchase_date)) == (
            "M\tX",
            "S\\1",
            "2020-01-02",
        )
    engine.dispose()


def test_non_utf8_and_non_standard_json_lines_are_reported_not_imported(
    sqlite_url, tmp_path: Path
) -> None:
    """A line with bytes that are not UTF-8 (a GBK export), or with NaN, is a reported
    reject; the lines around it still import."""
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    good = json.dumps({"name": "李雷", "phones": ["13800138010"]}, ensure_ascii=False)
    gbk = '{"name": "韩梅梅", "phones": ["13800138011"]}'.encode("gbk")
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(
        good.encode() + b"\n" + gbk + b"\n" + b'{"name": "x", "tier": NaN}\n' + good.encode()
    )
    frozen = gc.get_freeze_count()
    report = import_file(engine, data, report_path=tmp_path / "rej.tsv", show_progress=False)
    assert gc.get_freeze_count() == frozen  # the merge state's GC freeze was undone
    assert (report.rows, report.customers, report.merged, report.rejected) == (4, 1, 1, 2)
    lines = (tmp_path / "rej.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert [line.split("\t")[0] for line in lines] == ["2", "3"]
    assert all(line.split("\t")[1].startswith("not valid JSON") for line in lines)
    engine.dispose()


def test_numbers_from_places_without_location_data_import_with_no_region(
    db_url, tmp_path: Path
) -> None:
    """A mobile block no data source knows (140x) or an unassigned area code (030) is a
    valid number of a real customer: it imports, with no region. (It used to abort the
    whole import with an AttributeError.)"""
    upgrade(db_url)
    engine = make_engine(db_url)
    data = tmp_path / "noregion.jsonl"
    rows = [
        {"name": "赵一", "phones": ["14000001234"]},
        {"name": "赵二", "phones": ["030-95123456"]},
        {"name": "赵三", "phones": ["0933-5123456"]},  # 平凉: located since the national table
    ]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    report = import_file(engine, data, report_path=tmp_path / "rej.tsv", show_progress=False)
    assert report.rejected == 0
    with engine.connect() as conn:
        regions = dict(conn.execute(select(CustomerPhone.e164, CustomerPhone.region)).all())
    assert regions == {
        "+8614000001234": None,
        "+863095123456": None,
        "+869335123456": "甘肃省平凉市",
    }
    engine.dispose()


def test_traditional_records_import_with_simplified_keys(sqlite_url, tmp_path: Path) -> None:
    """A record exported from Hong Kong or Taiwan: the name and the address are stored as
    written, the keys and the parsed address are those of the simplified reading."""
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    row = {"name": "單田芳", "phones": ["13800138020"], "addresses": ["廣州市天河區中山路一百號"]}
    data = tmp_path / "hk.jsonl"
    data.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    report = import_file(engine, data, report_path=tmp_path / "rej.tsv", show_progress=False)
    assert report.rejected == 0
    with engine.connect() as conn:
        customer = conn.execute(
            select(Customer.name, Customer.name_pinyin, Customer.city, Customer.district)
        ).one()
        address = conn.execute(select(Address.raw, Address.detail, Address.normalised)).one()
    assert tuple(customer) == ("單田芳", "shantianfang", "广州市", "天河区")
    assert tuple(address) == (
        "廣州市天河區中山路一百號",
        "中山路100号",
        "广东省广州市天河区中山路100号",
    )
    engine.dispose()


def test_orm_writers_fill_the_derived_columns(sqlite_url) -> None:
    """The database layer computes no keys: writers call with_name_keys and address_row."""
    from sqlalchemy.orm import Session

    from hotline.customers.rows import address_row, phone_region, with_name_keys

    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with Session(engine) as session, session.begin():
        customer = with_name_keys(Customer(name="曾小贤"))
        customer.addresses = [address_row("朝阳区建国路88号", prior_city="长春市")]
        session.add(customer)
    with Session(engine) as session, session.begin():
        stored = session.scalars(select(Customer)).one()
        assert (stored.name_pinyin, stored.name_initials) == ("zengxiaoxian", "zxx")
        stored.name = "張偉"  # a rename: the writer recomputes the keys
        with_name_keys(stored)
    with engine.connect() as conn:
        assert conn.execute(select(Customer.name_pinyin)).scalar() == "zhangwei"
        address = conn.execute(select(Address.city, Address.district, Address.street)).one()
    assert tuple(address) == ("长春市", "朝阳区", "建国路88号")
    assert phone_region("+8613800138000") == "北京市"
    assert phone_region("+8614000001234") is None
    engine.dispose()

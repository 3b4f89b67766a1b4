"""The schema: migrations match the models, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.db import Base, Customer, CustomerPhone, make_engine, session_factory, upgrade
from hotline.db.models import managed_by_migrations_only
from hotline.db.session import alembic_config, normalise_url
from hotline.settings import SettingsError, load_settings


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_migrated_schema_matches_models(engine) -> None:
    with engine.connect() as conn:
        # Search indexes differ per backend (pg_trgm GIN, SQLite FTS5) and live in
        # migrations only; everything else must match the models exactly.
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": managed_by_migrations_only}
        )
        assert compare_metadata(context, Base.metadata) == []
    tables = set(inspect(engine).get_table_names())
    assert {"customers", "customer_phones", "call_logs", "api_tokens"} <= tables


def test_upgrade_twice_is_a_no_op(engine, db_url) -> None:
    upgrade(db_url)  # by URL this time: the app and the CLI both do this at start
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head


def test_chinese_names_round_trip_and_times_are_aware(engine) -> None:
    name = "欧阳𠮷祥 (廣東)"  # includes a character outside the BMP
    sessions = session_factory(engine)
    with sessions.begin() as session:
        session.add(Customer(name=name, tier="vip2", preferred_dialect="cantonese"))
    with sessions() as session:
        customer = session.scalars(select(Customer)).one()
    assert customer.name == name
    assert customer.tier == "vip2"
    assert customer.created_at.tzinfo is not None
    assert abs(customer.created_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_datetimes_are_stored_as_utc(engine) -> None:
    beijing = timezone(timedelta(hours=8))
    local = datetime(2026, 1, 2, 8, 30, tzinfo=beijing)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        session.add(Customer(name="王", created_at=local, updated_at=local))
    with sessions() as session:
        created = session.scalars(select(Customer.created_at)).one()
    assert created == local
    assert created.utcoffset() == timedelta(0)


def test_one_number_may_belong_to_several_customers_but_not_twice_to_one(engine) -> None:
    with Session(engine) as session, session.begin():
        mother, son = Customer(name="李梅"), Customer(name="李雷")
        session.add_all([mother, son])
        session.flush()
        mother_id = mother.id
        session.add_all(
            [
                CustomerPhone(customer_id=mother.id, e164="+862088886666", kind="landline"),
                CustomerPhone(customer_id=son.id, e164="+862088886666", kind="landline"),
            ]
        )
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        session.add(CustomerPhone(customer_id=mother_id, e164="+862088886666"))


def test_foreign_keys_are_enforced(engine) -> None:
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        session.add(CustomerPhone(customer_id=424242, e164="+8613800138000"))


def test_sqlite_engine_uses_wal_and_foreign_keys(sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() > 0
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url", ["postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"]
)
def test_plain_postgresql_urls_use_psycopg3(url) -> None:
    assert normalise_url(url).drivername == "postgresql+psycopg"
    engine = make_engine(url)  # no connection is opened
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_unsupported_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        make_engine("mysql://x/y")


def test_settings_error_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="HOTLINE_DATABASE_URL"):
        load_settings(database_url="mysql://x")


def test_settings_error_never_shows_secrets() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(ami_secret=["not", "a", "string"])
    assert "HOTLINE_AMI_SECRET" in str(info.value)
    assert "not" not in str(info.value).split("HOTLINE_AMI_SECRET", 1)[1]


def _search_indexes(engine) -> dict[str, list[str]]:
    """The address and customer search indexes by name, with their columns."""
    inspector = inspect(engine)
    return {
        index["name"]: index["column_names"]
        for table in ("addresses", "customers")
        for index in inspector.get_indexes(table)
    }


def test_place_first_search_indexes_and_their_downgrade(db_url) -> None:
    """0004: district leads the pinyin index and, on PostgreSQL, the address GIN; its
    downgrade restores 0003's indexes and upgrading again lands on the same schema."""
    from alembic import command

    engine = make_engine(db_url)
    upgrade(engine, "0004")
    postgres = engine.dialect.name == "postgresql"
    indexes = _search_indexes(engine)
    assert indexes["ix_customers_district_name_pinyin"] == ["district", "name_pinyin"]
    assert "ix_customers_name_pinyin_district" not in indexes
    if postgres:
        assert indexes["ix_addresses_district_normalised_trgm"][0] == "district"
        assert "ix_addresses_normalised_trgm" not in indexes
        assert "ix_addresses_district_city" not in indexes
        with engine.connect() as conn:
            definition = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                {"n": "ix_addresses_district_normalised_trgm"},
            ).scalar()
        assert "USING gin (district, normalised gin_trgm_ops)" in definition
    else:
        assert indexes["ix_addresses_district_city"] == ["district", "city"]

    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
    before = _search_indexes(engine)
    assert before["ix_customers_name_pinyin_district"] == ["name_pinyin", "district"]
    assert "ix_customers_district_name_pinyin" not in before
    assert "ix_addresses_district_city" in before
    assert ("ix_addresses_normalised_trgm" in before) == postgres
    upgrade(engine, "0004")
    assert _search_indexes(engine) == indexes
    engine.dispose()


def _index_definition(engine, name: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": name}
        ).scalar()


def _fts_sql(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'addresses_fts'")
        ).scalar()


def _assert_address_text_index_over(engine, column: str, not_over: str) -> None:
    if engine.dialect.name == "postgresql":
        definition = _index_definition(engine, f"ix_addresses_district_{column}_trgm")
        assert f"USING gin (district, {column} gin_trgm_ops)" in definition
        assert _index_definition(engine, f"ix_addresses_district_{not_over}_trgm") is None
    else:
        assert f"fts5({column}," in _fts_sql(engine)


def test_address_detail_search_index_and_its_downgrade(db_url) -> None:
    """0005: the address text index covers the detail, on both backends; addresses
    stored before the upgrade are found after it (the FTS5 table is rebuilt, the GIN
    built over the rows), and the downgrade restores the normalised-text index."""
    from alembic import command

    from hotline.customers.rows import address_row
    from hotline.matching.search import CustomerSearch

    engine = make_engine(db_url)
    upgrade(engine, "0004")
    with Session(engine) as session, session.begin():
        customer = Customer(name="林小红")
        customer.addresses.append(address_row("广州市天河区体育西路103号维多利广场B座"))
        session.add(customer)
        session.flush()
        customer_id = customer.id
    upgrade(engine)
    _assert_address_text_index_over(engine, "detail", not_over="normalised")
    found = CustomerSearch(engine).search("天河区体育西路103号")
    assert [c.customer_id for c in found] == [customer_id]
    assert "address" in found[0].matched

    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    _assert_address_text_index_over(engine, "normalised", not_over="detail")
    engine.dispose()


def test_migration_0002_keys_customers_stored_before_it(sqlite_url) -> None:
    """0002 added the name keys and filled them for the customers already there, with the
    key function frozen inside the migration (it imports no live code): the surname read
    as a surname, a compound surname whole, a name without Hanzi keyed on its letters."""
    engine = make_engine(sqlite_url)
    upgrade(engine, "0001")
    names = ["曾小贤", "欧阳娜娜", "单田芳", "张伟", "Tom Lee", "長孫無忌"]
    with engine.begin() as conn:
        for name in names:
            conn.execute(text("INSERT INTO customers (name) VALUES (:n)"), {"n": name})
    upgrade(engine)
    with engine.connect() as conn:
        keys = conn.execute(
            text("SELECT name_pinyin, name_initials FROM customers ORDER BY id")
        ).all()
    assert [tuple(k) for k in keys] == [
        ("zengxiaoxian", "zxx"),
        ("ouyangnana", "oynn"),
        ("shantianfang", "stf"),
        ("zhangwei", "zw"),
        ("tomlee", "t"),
        ("zhangsunwuji", "zswj"),
    ]
    engine.dispose()

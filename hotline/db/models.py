"""Typed SQLAlchemy models of the national record, the call log and API tokens.

The same models run on SQLite (the embedded default) and PostgreSQL (production), so
every type here is one both backends store faithfully. Two choices follow from that:

* Datetimes go through :class:`UTCDateTime`. SQLite has no time-zone type and hands
  back naive values; normalising to UTC on the way in and tagging UTC on the way out
  means callers always get aware datetimes, whichever backend is behind.
* Constraint names come from :data:`NAMING_CONVENTION`, so Alembic migrations name (and
  can later drop) the same constraints on both backends.

Alembic owns the schema (``hotline/db/migrations``); nothing here calls ``create_all``.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "NAMING_CONVENTION",
    "Address",
    "Agent",
    "ApiToken",
    "Base",
    "CallLog",
    "Customer",
    "CustomerLink",
    "CustomerPhone",
    "JsonList",
    "PhoneKind",
    "Product",
    "Tier",
    "UTCDateTime",
    "managed_by_migrations_only",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON on SQLite, JSONB on PostgreSQL (indexable, compact); the migration uses the same.
JsonList = JSON().with_variant(JSONB(), "postgresql")


# Search structures that exist per backend and so cannot be declared once in the
# metadata: the (district, detail) GIN index on PostgreSQL (btree_gin + pg_trgm; or, where
# btree_gin is missing, a detail-only GIN and a (district, city) B-tree), the (district,
# city) B-tree and the FTS5 table over the detail with its shadow tables on SQLite
# (migrations 0002, 0004, 0005; the older names stay listed for databases on the way
# through them). Schema comparisons skip them through managed_by_migrations_only().
_BACKEND_SEARCH_INDEXES = frozenset(
    {
        "ix_addresses_district_detail_trgm",
        "ix_addresses_detail_trgm",
        "ix_addresses_district_normalised_trgm",
        "ix_addresses_normalised_trgm",
        "ix_addresses_district_city",
    }
)
_BACKEND_SEARCH_TABLE_PREFIX = "addresses_fts"


def managed_by_migrations_only(
    _obj: object, name: str | None, type_: str, reflected: bool, _compare_to: object
) -> bool:
    """Alembic ``include_object`` hook: False for the per-backend search structures.

    Use it in ``MigrationContext.configure(opts={"include_object": ...})`` so that a
    model/migration comparison does not report them as drift.
    """
    if not reflected or name is None:
        return True
    if type_ == "table" and name.startswith(_BACKEND_SEARCH_TABLE_PREFIX):
        return False
    return not (type_ == "index" and name in _BACKEND_SEARCH_INDEXES)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC on every backend.

    A naive value is taken to be UTC already (that is what SQLite's
    ``CURRENT_TIMESTAMP`` gives); anything else is converted, so comparisons in SQL
    (``arrived_at >= :since``) mean the same on SQLite, where the value is text.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Created = Annotated[
    datetime, mapped_column(UTCDateTime(), default=utcnow, server_default=func.now())
]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - SQLAlchemy reads it as a class attr
        datetime: UTCDateTime(),
        list[str]: JsonList,
    }


class Tier(enum.StrEnum):
    """Service tier; VIP levels raise the queue priority (hotline/routing/decision.py)."""

    STANDARD = "standard"
    VIP1 = "vip1"
    VIP2 = "vip2"
    VIP3 = "vip3"


class PhoneKind(enum.StrEnum):
    MOBILE = "mobile"
    LANDLINE = "landline"
    SERVICE = "service"  # 400/800 numbers of a shop or dealer
    INTERNATIONAL = "international"


class Customer(Base):
    """One customer of the national record (a person or a shop).

    ``name_pinyin`` and ``name_initials`` are search keys derived from ``name``. This
    layer stores them and does not compute them (it imports nothing of the matching
    code): every writer fills them with :func:`hotline.customers.rows.with_name_keys`,
    or, in bulk, renders them with the same key function (the importer).
    ``city`` and ``district`` copy the primary address's, because a name is never
    unique (294 282 people are called 张伟) and the matcher narrows it by place with one
    composite B-tree lookup instead of a join over millions of addresses.
    """

    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_name", "name"),
        Index("ix_customers_name_pinyin_city", "name_pinyin", "city"),
        # district first: the wrong-last-character fallback is a range on the pinyin
        Index("ix_customers_district_name_pinyin", "district", "name_pinyin"),
        Index("ix_customers_name_initials_city", "name_initials", "city"),
        Index("ix_customers_name_initials_district", "name_initials", "district"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_pinyin: Mapped[str] = mapped_column(String(200), default="", server_default="")
    name_initials: Mapped[str] = mapped_column(String(50), default="", server_default="")
    tier: Mapped[str] = mapped_column(String(16), default="standard", server_default="standard")
    preferred_dialect: Mapped[str | None] = mapped_column(String(32))
    account_manager: Mapped[str | None] = mapped_column(String(80))  # an agent id
    tags: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    site: Mapped[str | None] = mapped_column(String(80))  # the site that created it
    city: Mapped[str | None] = mapped_column(String(32))
    district: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[Created]
    updated_at: Mapped[Created] = mapped_column(onupdate=utcnow)

    phones: Mapped[list[CustomerPhone]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", lazy="raise"
    )
    addresses: Mapped[list[Address]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        lazy="raise",
        order_by="Address.id",
    )
    products: Mapped[list[Product]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        lazy="raise",
        order_by="Product.id",
    )

    def __repr__(self) -> str:  # no name: logs must not carry personal data
        return f"Customer(id={self.id!r}, tier={self.tier!r})"


class CustomerPhone(Base):
    """A number a customer can call from.

    ``e164`` is deliberately not unique: a family or shop line belongs to several
    customers, and the screen-pop and the call-log writer must see all of them to know
    the match is ambiguous. ``region`` is where the number is registered (归属地,
    ``广东省广州市``), a routing hint only.
    """

    __tablename__ = "customer_phones"
    __table_args__ = (UniqueConstraint("customer_id", "e164"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    e164: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="mobile", server_default="mobile")
    region: Mapped[str | None] = mapped_column(String(64))

    customer: Mapped[Customer] = relationship(back_populates="phones", lazy="raise")

    def __repr__(self) -> str:
        return f"CustomerPhone(id={self.id!r}, customer_id={self.customer_id!r})"


class Address(Base):
    """An address as given (``raw``) and as parsed; writers build one with
    :func:`hotline.customers.rows.address_row`, which fills the parsed columns.

    ``normalised`` is the whole address in canonical spelling (full area names then the
    normalised detail, so ``5号楼``/``五栋``/``5幢`` and full-width digits all meet); the
    importer merges duplicate addresses on it. Text search looks in ``detail`` inside
    the ``district``: PostgreSQL with one GIN over (district, trigrams of the detail),
    SQLite with an FTS5 trigram table over the detail kept in sync by triggers and a
    (district, city) B-tree (migrations 0002, 0004, 0005); those per-backend indexes
    are not declared here.
    """

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(16), default="home", server_default="home")
    raw: Mapped[str] = mapped_column(Text)
    province: Mapped[str | None] = mapped_column(String(32))
    city: Mapped[str | None] = mapped_column(String(32))
    district: Mapped[str | None] = mapped_column(String(32))
    street: Mapped[str | None] = mapped_column(String(120))
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")
    normalised: Mapped[str] = mapped_column(Text, default="", server_default="")

    customer: Mapped[Customer] = relationship(back_populates="addresses", lazy="raise")

    def __repr__(self) -> str:
        return f"Address(id={self.id!r}, customer_id={self.customer_id!r})"


class Product(Base):
    """A product a customer bought, with what the agent needs for a service call."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    model: Mapped[str] = mapped_column(String(80))
    serial: Mapped[str | None] = mapped_column(String(80), index=True)
    purchase_date: Mapped[date | None] = mapped_column(Date)
    install_date: Mapped[date | None] = mapped_column(Date)
    dealer: Mapped[str | None] = mapped_column(String(120))
    service_provider: Mapped[str | None] = mapped_column(String(120))
    warranty_end: Mapped[date | None] = mapped_column(Date)

    customer: Mapped[Customer] = relationship(back_populates="products", lazy="raise")

    def __repr__(self) -> str:
        return f"Product(id={self.id!r}, customer_id={self.customer_id!r})"


class CallLog(Base):
    """One row per call, keyed by the Asterisk Linkedid (see :class:`CallRecord`).

    Written by :class:`hotline.calls.writer.CallLogWriter` as an idempotent upsert;
    ``notes`` and ``disposition`` belong to the agent's wrap-up and are never touched
    by that upsert.
    """

    __tablename__ = "call_logs"
    __table_args__ = (
        Index("ix_call_logs_agent_arrived_at", "agent", "arrived_at"),
        Index("ix_call_logs_outcome", "outcome"),  # the reconciler's open rows
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(150), unique=True)
    outcome: Mapped[str] = mapped_column(String(32))
    caller_uniqueid: Mapped[str] = mapped_column(String(150), default="", server_default="")
    caller_channel: Mapped[str] = mapped_column(String(255), default="", server_default="")
    caller_number: Mapped[str] = mapped_column(String(80), default="", server_default="")
    caller_e164: Mapped[str | None] = mapped_column(String(32), index=True)
    caller_name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    arrived_at: Mapped[datetime | None] = mapped_column(index=True)
    queued_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    queue: Mapped[str | None] = mapped_column(String(80))
    queues: Mapped[list[str]] = mapped_column(default=list)
    agent: Mapped[str | None] = mapped_column(String(80))
    agent_interface: Mapped[str | None] = mapped_column(String(255))
    queue_status: Mapped[str | None] = mapped_column(String(32))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    ivr_path: Mapped[list[str]] = mapped_column(default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    disposition: Mapped[str | None] = mapped_column(String(64))
    wrapped_up_at: Mapped[datetime | None]
    # the routing decision, as the IVR announced it
    dialect: Mapped[str | None] = mapped_column(String(32))
    route_source: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[int | None] = mapped_column(Integer)
    route_reasons: Mapped[list[str]] = mapped_column(default=list)
    candidates: Mapped[int | None] = mapped_column(Integer)  # customers sharing the number
    survey_score: Mapped[int | None] = mapped_column(Integer)
    # who linked the customer: "ivr" (CUSTOMER_ID), "number" (sole holder), "agent"
    customer_link_source: Mapped[str | None] = mapped_column(String(16))
    # who settled the outcome: "live" (AMI) or "reconciled" (Asterisk's record), when,
    # and for a call the system cut, why (docs/reliability.md)
    settled_by: Mapped[str | None] = mapped_column(String(16))
    settled_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))

    def __repr__(self) -> str:
        return f"CallLog(id={self.id!r}, linkedid={self.linkedid!r}, outcome={self.outcome!r})"


class CustomerLink(Base):
    """Audit of an agent switching the customer a call is linked to (never silent)."""

    __tablename__ = "call_customer_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call_logs.id", ondelete="CASCADE"), index=True)
    from_customer_id: Mapped[int | None] = mapped_column(Integer)
    to_customer_id: Mapped[int | None] = mapped_column(Integer)
    agent_id: Mapped[str | None] = mapped_column(String(80))
    at: Mapped[Created]


class Agent(Base):
    """An agent: the queue member interface that rings, and dialect skills."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # MemberName in queues
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    interface: Mapped[str] = mapped_column(String(255), unique=True)  # e.g. PJSIP/agent-1001
    skills: Mapped[list[str]] = mapped_column(default=list)  # ["cantonese:native", ...]
    created_at: Mapped[Created]


class ApiToken(Base):
    """A bearer token for the API. Only its SHA-256 is stored, never the token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[Created]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def __repr__(self) -> str:
        return f"ApiToken(id={self.id!r}, name={self.name!r}, role={self.role!r})"


# -- Asterisk's own record (docs/asterisk-record.md) ------------------------------------
# Asterisk writes these two tables itself on PostgreSQL (cel_pgsql, realtime queue_log);
# on the SQLite default hotline/record/ingest.py copies its files into them. Column
# names are Asterisk's, so cel_pgsql and res_config_pgsql find them; times are naive
# UTC (cel_pgsql ``usegmtime``, ``queue_log_realtime_use_gmt``).

_BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only


class Cel(Base):
    """One Channel Event Logging row, as cel_pgsql writes it."""

    __tablename__ = "cel"
    __table_args__ = (
        Index("ix_cel_linkedid", "linkedid"),
        Index("ix_cel_uniqueid", "uniqueid"),
        Index("ix_cel_eventtype_id", "eventtype", "id"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    eventtype: Mapped[str] = mapped_column(String(30))
    eventtime: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    userdeftype: Mapped[str] = mapped_column(String(255), default="", server_default="")
    cid_name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    cid_num: Mapped[str] = mapped_column(String(255), default="", server_default="")
    cid_ani: Mapped[str] = mapped_column(String(255), default="", server_default="")
    cid_rdnis: Mapped[str] = mapped_column(String(255), default="", server_default="")
    cid_dnid: Mapped[str] = mapped_column(String(255), default="", server_default="")
    exten: Mapped[str] = mapped_column(String(255), default="", server_default="")
    context: Mapped[str] = mapped_column(String(255), default="", server_default="")
    channame: Mapped[str] = mapped_column(String(255), default="", server_default="")
    appname: Mapped[str] = mapped_column(String(255), default="", server_default="")
    appdata: Mapped[str] = mapped_column(Text, default="", server_default="")
    amaflags: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    accountcode: Mapped[str] = mapped_column(String(80), default="", server_default="")
    peeraccount: Mapped[str] = mapped_column(String(80), default="", server_default="")
    uniqueid: Mapped[str] = mapped_column(String(150), default="", server_default="")
    linkedid: Mapped[str] = mapped_column(String(150), default="", server_default="")
    userfield: Mapped[str] = mapped_column(String(255), default="", server_default="")
    peer: Mapped[str] = mapped_column(String(255), default="", server_default="")
    extra: Mapped[str] = mapped_column(Text, default="", server_default="")


class QueueLog(Base):
    """One app_queue ``queue_log`` fact (realtime columns, ``queue_adaptive_realtime``)."""

    __tablename__ = "queue_log"
    __table_args__ = (Index("ix_queue_log_callid", "callid"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    callid: Mapped[str] = mapped_column(String(80), default="", server_default="")
    queuename: Mapped[str] = mapped_column(String(80), default="", server_default="")
    agent: Mapped[str] = mapped_column(String(80), default="", server_default="")
    event: Mapped[str] = mapped_column(String(32), default="", server_default="")
    data1: Mapped[str] = mapped_column(String(100), default="", server_default="")
    data2: Mapped[str] = mapped_column(String(100), default="", server_default="")
    data3: Mapped[str] = mapped_column(String(100), default="", server_default="")
    data4: Mapped[str] = mapped_column(String(100), default="", server_default="")
    data5: Mapped[str] = mapped_column(String(100), default="", server_default="")


class RecordCursor(Base):
    """How far a reader of the record has got: a file's identity and offset, or a row id.

    Committed in the same transaction as what was read up to it, so a crash neither
    doubles nor drops a row.
    """

    __tablename__ = "record_cursors"

    source: Mapped[str] = mapped_column(String(80), primary_key=True)
    identity: Mapped[str] = mapped_column(String(80), default="", server_default="")
    position: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

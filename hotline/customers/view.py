"""The customer as an agent reads it: phones, addresses, products and the latest calls.

One view for two readers: ``GET /api/customers/{id}`` returns it, and the screen-pop
carries it as its customer block (prepared at identification, see :mod:`hotline.ivr`), so
the pop and the customer page can never show an agent two different records. The models
are pydantic because both readers send them as JSON; the API declares them as its
response models.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hotline.db.models import CallLog, Customer

__all__ = [
    "RECENT_CALLS",
    "AddressOut",
    "CallBrief",
    "CustomerNotFound",
    "CustomerOut",
    "PhoneOut",
    "ProductOut",
    "customer_view",
    "load_customer",
    "view_customer",
]

RECENT_CALLS = 20
"""Calls listed on the view, newest first: enough for "you called last week about…"."""


class CustomerNotFound(LookupError):
    """No customer has this id (never created, or deleted since it was linked)."""


class PhoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    e164: str
    kind: str
    region: str | None


class AddressOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    label: str
    raw: str
    province: str | None
    city: str | None
    district: str | None
    street: str | None
    detail: str


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    model: str
    serial: str | None
    purchase_date: date | None
    install_date: date | None
    dealer: str | None
    service_provider: str | None
    warranty_end: date | None


class CallBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    linkedid: str
    outcome: str
    arrived_at: datetime | None
    agent: str | None
    queue: str | None
    notes: str | None
    disposition: str | None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    name_pinyin: str
    name_initials: str
    tier: str
    preferred_dialect: str | None
    account_manager: str | None
    tags: list[str]
    site: str | None
    city: str | None
    district: str | None
    created_at: datetime
    updated_at: datetime
    phones: list[PhoneOut]
    addresses: list[AddressOut]
    products: list[ProductOut]
    recent_calls: list[CallBrief] = []


def load_customer(session: Session, customer_id: int) -> Customer:
    """The customer with its phones, addresses and products loaded; raises
    :class:`CustomerNotFound`. The relationships are ``lazy="raise"``, so this is the one
    place that says what a view needs."""
    customer = session.scalars(
        select(Customer)
        .where(Customer.id == customer_id)
        .options(
            selectinload(Customer.phones),
            selectinload(Customer.addresses),
            selectinload(Customer.products),
        )
    ).one_or_none()
    if customer is None:
        raise CustomerNotFound(f"no customer {customer_id}")
    return customer


def customer_view(session: Session, customer: Customer) -> CustomerOut:
    """The view of a customer from :func:`load_customer`, with its latest calls."""
    calls = session.scalars(
        select(CallLog)
        .where(CallLog.customer_id == customer.id)
        .order_by(CallLog.arrived_at.desc().nulls_last(), CallLog.id.desc())
        .limit(RECENT_CALLS)
    ).all()
    out = CustomerOut.model_validate(customer)
    out.recent_calls = [CallBrief.model_validate(c) for c in calls]
    return out


def view_customer(session: Session, customer_id: int) -> CustomerOut:
    """:func:`load_customer` then :func:`customer_view`; raises :class:`CustomerNotFound`."""
    return customer_view(session, load_customer(session, customer_id))

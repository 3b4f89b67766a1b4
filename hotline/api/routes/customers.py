"""``/api/customers``: search the national record, read, create and update a customer.

Access: every route needs a token. Agents search, read, create and correct customers:
on a live call the agent is the one who learns a new number or address, and the
national promise is *enter once*; waiting for a supervisor would mean not entering it.
What an agent may not change is the commercial part (``tier`` and
``account_manager``), which needs a supervisor; that is checked per field.

Search input is hostile by default (it is a free-text box): it is length-capped,
parsed by :func:`hotline.matching.matcher.parse_query` into keys that go to SQL as bound
parameters only, and anything unsearchable (emoji only, an impossible number) is a
clean 422 with ``error_id`` ``invalid-query``.

Which customers an agent may open, change or link is the rule of docs/access.md
(:mod:`hotline.api.routes.customer_access`): those of their own calls and searches;
supervisors open any.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import String, select
from sqlalchemy.orm import Session, selectinload

from hotline.api.auth import Principal, Role, require
from hotline.api.deps import SessionDep
from hotline.api.errors import (
    BODY_ERRORS,
    CustomerNotAllowed,
    Forbidden,
    InvalidRequest,
    NoSuchCustomer,
    responses,
)
from hotline.api.routes.customer_access import check_customer, grants_of
from hotline.customers.rows import address_row, phone_region, with_name_keys
from hotline.customers.view import CustomerNotFound, CustomerOut, load_customer, view_customer
from hotline.db.models import Address, Customer, CustomerPhone, Product, Tier
from hotline.matching.matcher import MAX_QUERY, QueryError
from hotline.matching.phone import parse_phone, region_of
from hotline.matching.search import CustomerSearch

__all__ = ["router"]

router = APIRouter(prefix="/api/customers", tags=["customers"])

_INT32_MAX = 2**31 - 1

Phone = Annotated[str, Field(max_length=64)]
AddressText = Annotated[str, Field(max_length=500)]
Tag = Annotated[str, Field(max_length=40)]


class SearchHit(BaseModel):
    id: int
    name: str
    score: float
    matched: list[str]
    city: str | None
    district: str | None
    tier: str
    phones: list[str]  # masked to the last four digits: the list is for choosing, not dialling


class SearchResult(BaseModel):
    query: str
    items: list[SearchHit]
    count: int
    ambiguous: bool  # several customers share the best score: never pick one silently


class ProductIn(BaseModel):
    model: str = Field(min_length=1, max_length=80)
    serial: str | None = Field(default=None, max_length=80)
    purchase_date: date | None = None
    install_date: date | None = None
    dealer: str | None = Field(default=None, max_length=120)
    service_provider: str | None = Field(default=None, max_length=120)
    warranty_end: date | None = None


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    phones: list[Phone] = Field(default_factory=list, max_length=20)
    addresses: list[AddressText] = Field(default_factory=list, max_length=20)
    products: list[ProductIn] = Field(default_factory=list, max_length=50)
    tier: Tier = Tier.STANDARD
    preferred_dialect: str | None = Field(default=None, max_length=32)
    account_manager: str | None = Field(default=None, max_length=80)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    site: str | None = Field(default=None, max_length=80)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name is blank")
        return value

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [a.strip() for a in value if a.strip()]


class CustomerPatch(BaseModel):
    """Fields to change; ``phones``/``addresses`` given here are *added* to the record."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    tier: Tier | None = None
    preferred_dialect: str | None = Field(default=None, max_length=32)
    account_manager: str | None = Field(default=None, max_length=80)
    tags: list[Tag] | None = Field(default=None, max_length=50)
    add_phones: list[Phone] = Field(default_factory=list, max_length=20)
    add_addresses: list[AddressText] = Field(default_factory=list, max_length=20)


def _search(request: Request) -> CustomerSearch:
    """One :class:`CustomerSearch` per app (it caches the pinyin key index)."""
    state = request.app.state
    search: CustomerSearch | None = getattr(state, "customer_search", None)
    if search is None or search.engine is not state.engine:
        search = state.customer_search = CustomerSearch(state.engine)
    return search


def _mask(e164: str) -> str:
    return "*" * max(len(e164) - 4, 0) + e164[-4:]


def _fit(row: object) -> None:
    """Cut values *derived* from the input (pinyin keys, parsed address parts) to their
    column: a 200-character name has 1,000 letters of pinyin, and PostgreSQL refuses a
    value longer than ``varchar(n)``. Input fields are bounded by the models above."""
    for column in row.__table__.columns:  # type: ignore[attr-defined]
        length = getattr(column.type, "length", None)
        value = getattr(row, column.key, None)
        if isinstance(column.type, String) and isinstance(value, str) and length:
            setattr(row, column.key, value[:length])  # a no-op when it fits


@router.get(
    "/search",
    response_model=SearchResult,
    name="search",
    responses=responses(Forbidden),
)
def search_customers(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.AGENT))],
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY, description="Free text.")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SearchResult:
    """Ranked candidates by phone, name (Hanzi, homophone, pinyin, initials), place, address."""
    try:
        found = _search(request).search(q, limit=limit)
    except QueryError as exc:
        raise InvalidRequest(str(exc), error_id="invalid-query") from None
    ids = [c.customer_id for c in found]
    customers = {
        c.id: c
        for c in session.scalars(
            select(Customer).where(Customer.id.in_(ids)).options(selectinload(Customer.phones))
        )
    }
    items = [
        SearchHit(
            id=c.customer_id,
            name=customers[c.customer_id].name,
            score=c.score,
            matched=list(c.matched),
            city=customers[c.customer_id].city,
            district=customers[c.customer_id].district,
            tier=customers[c.customer_id].tier,
            phones=[_mask(p.e164) for p in customers[c.customer_id].phones],
        )
        for c in found
        if c.customer_id in customers
    ]
    if principal.agent_id and not principal.has(Role.SUPERVISOR):
        grants_of(request).give(principal.agent_id, [item.id for item in items])
    ambiguous = len(items) > 1 and items[0].score == items[1].score
    return SearchResult(query=q, items=items, count=len(items), ambiguous=ambiguous)


def _loaded(session: Session, customer_id: int) -> Customer:
    try:
        return load_customer(session, customer_id)
    except CustomerNotFound as exc:
        raise NoSuchCustomer(str(exc)) from None


def _view(session: Session, customer_id: int) -> CustomerOut:
    try:
        return view_customer(session, customer_id)
    except CustomerNotFound as exc:
        raise NoSuchCustomer(str(exc)) from None


def _exists(session: Session, customer_id: int) -> None:
    if session.get(Customer, customer_id) is None:
        raise NoSuchCustomer()


@router.get(
    "/{customer_id}",
    response_model=CustomerOut,
    name="get",
    responses=responses(CustomerNotAllowed, NoSuchCustomer),
)
def get_customer(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.AGENT))],
    customer_id: Annotated[int, Path(ge=1, le=_INT32_MAX)],
) -> CustomerOut:
    """The whole record: phones, addresses, products and the latest calls. Agents open
    the customers of their own calls and searches (docs/access.md)."""
    _exists(session, customer_id)
    check_customer(session, principal, customer_id, grants_of(request))
    return _view(session, customer_id)


def _phone_rows(numbers: list[str], existing: set[str]) -> list[CustomerPhone]:
    rows = []
    for raw in numbers:
        parsed = parse_phone(raw)
        if parsed is None or len(parsed.candidates) != 1:
            raise InvalidRequest(
                "invalid phone number (give the area code for a landline)",
                error_id="invalid-phone",
                details={"phone": raw[:40]},
            )
        e164 = parsed.candidates[0]
        if e164 in existing:
            continue
        existing.add(e164)
        rows.append(CustomerPhone(e164=e164, kind=parsed.kind, region=phone_region(e164)))
    return rows


def _address_rows(raws: list[str], prior_city: str | None) -> list[Address]:
    return [address_row(raw, prior_city) for raw in raws]


def _check_commercial(principal: Principal, tier: Tier | None, manager: str | None) -> None:
    if (tier not in (None, Tier.STANDARD) or manager) and not principal.has(Role.SUPERVISOR):
        raise Forbidden("only a supervisor may set the tier or the account manager")


@router.post(
    "",
    response_model=CustomerOut,
    status_code=201,
    name="create",
    responses=responses(Forbidden, *BODY_ERRORS),
)
def create_customer(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.AGENT))],
    body: CustomerIn,
) -> CustomerOut:
    """Create a customer; at least one valid phone number is required."""
    _check_commercial(principal, body.tier, body.account_manager)
    phones = _phone_rows(body.phones, set())
    if not phones:
        raise InvalidRequest("at least one phone number is required", error_id="invalid-phone")
    first = region_of(phones[0].e164)
    addresses = _address_rows(body.addresses, first.city if first else None)
    customer = Customer(
        name=body.name,
        tier=str(body.tier),
        preferred_dialect=body.preferred_dialect,
        account_manager=body.account_manager,
        tags=list(body.tags),
        site=body.site,
        city=addresses[0].city if addresses else None,
        district=addresses[0].district if addresses else None,
    )
    with_name_keys(customer)
    customer.phones = phones
    customer.addresses = addresses
    customer.products = [Product(**p.model_dump()) for p in body.products]
    for row in (customer, *addresses):
        _fit(row)
    session.add(customer)
    session.commit()
    _search(request).remember(customer.name)
    if principal.agent_id and not principal.has(Role.SUPERVISOR):
        grants_of(request).give(principal.agent_id, [customer.id])  # docs/access.md
    return _view(session, customer.id)


@router.patch(
    "/{customer_id}",
    response_model=CustomerOut,
    name="update",
    responses=responses(CustomerNotAllowed, NoSuchCustomer, *BODY_ERRORS),
)
def update_customer(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Role.AGENT))],
    customer_id: Annotated[int, Path(ge=1, le=_INT32_MAX)],
    body: CustomerPatch,
) -> CustomerOut:
    """Change fields and add phones or addresses (removal stays a supervisor's tool)."""
    customer = _loaded(session, customer_id)
    check_customer(session, principal, customer_id, grants_of(request))
    fields = body.model_fields_set
    if ("tier" in fields or "account_manager" in fields) and not principal.has(Role.SUPERVISOR):
        _check_commercial(principal, Tier.VIP1, "x")
    if body.name is not None:
        if not body.name.strip():
            raise InvalidRequest("name is blank")
        customer.name = body.name.strip()
        with_name_keys(customer)
    if "tier" in fields and body.tier is not None:
        customer.tier = str(body.tier)
    for name in ("preferred_dialect", "account_manager"):
        if name in fields:
            setattr(customer, name, getattr(body, name))
    if body.tags is not None:
        customer.tags = list(body.tags)
    customer.phones.extend(_phone_rows(body.add_phones, {p.e164 for p in customer.phones}))
    new_addresses = _address_rows(body.add_addresses, customer.city)
    customer.addresses.extend(new_addresses)
    if customer.city is None and new_addresses:
        customer.city, customer.district = new_addresses[0].city, new_addresses[0].district
    for row in (customer, *new_addresses):
        _fit(row)
    session.commit()
    if body.name is not None:
        _search(request).remember(customer.name)
    return _view(session, customer.id)

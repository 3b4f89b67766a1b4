"""``hotline.ivr`` over FastAGI: the national record behind identify, the pop prepared at
arrival, the routing decision noted on it, and the pop's customer block.

The real route table (``IVR.routes()``) runs on a loopback AGIServer with a SQLite record;
:class:`FakePeer` plays Asterisk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from hotline.bus import MemoryBus
from hotline.customers.view import view_customer
from hotline.db.models import Agent, Customer, CustomerPhone
from hotline.db.session import make_engine, session_factory, upgrade
from hotline.ivr import IVR, customer_loader
from ivr_flows.server import AGIServer
from screenpop.push import PopPublisher
from tests.unit.test_agi_server import DEADLINE, FakePeer, header_block, ok

LINKEDID = "1700000000.7"  # header_block's agi_uniqueid: the inbound channel's


@pytest.fixture
def sessions(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def add_customer(sessions: sessionmaker[Session], name: str, *numbers: str, **fields: Any) -> int:
    with sessions() as session, session.begin():
        customer = Customer(name=name, **fields)
        session.add(customer)
        session.flush()
        session.add_all(CustomerPhone(customer_id=customer.id, e164=n) for n in numbers)
        return customer.id


class Stack:
    def __init__(self, sessions: sessionmaker[Session], region: str) -> None:
        self.publisher = PopPublisher(MemoryBus(), customer_loader(sessions))
        self.ivr = IVR(
            sessions,
            self.publisher,
            region=region,
            queues=["mandarin", "cantonese", "minnan", "wu", "sichuanese"],
        )
        self.server = self.ivr.server("127.0.0.1", 0)

    async def call(
        self, script: str, answer: Callable[[str], Any] = ok, **headers: str
    ) -> dict[str, str]:
        """One AGI call; the SET VARIABLE commands as ``{name: value}``, in order."""
        peer = await FakePeer(self.server.port).connect(header_block(script, **headers))
        commands = await asyncio.wait_for(peer.serve(answer), DEADLINE)
        await peer.aclose()
        out = {}
        for line in commands:
            if line.startswith("SET VARIABLE "):
                name, value = line[len("SET VARIABLE ") :].split(" ", 1)
                out[name] = value.strip('"')
        return out


@pytest.fixture
async def stack(sessions) -> AsyncIterator[Callable[..., Any]]:
    made: list[AGIServer] = []

    async def make(region: str = "CN") -> Stack:
        built = Stack(sessions, region)
        await built.server.start()
        made.append(built.server)
        return built

    yield make
    for server in made:
        await server.stop()


async def test_caller_number_is_read_with_the_configured_region(sessions, stack) -> None:
    """HOTLINE_DEFAULT_REGION=HK: the number identify looks up is the call log's."""
    hk = add_customer(sessions, "陳大文", "+85221234567")
    add_customer(sessions, "上海客户", "+8621234567")
    built = await stack(region="HK")
    variables = await built.call("identify", agi_callerid="21234567")
    assert variables["__CUSTOMER_ID"] == str(hk)
    assert (variables["__DIALECT"], variables["DIALECT_SOURCE"]) == ("cantonese", "region")
    pop = built.publisher.payload(LINKEDID)
    assert (pop["caller_e164"], pop["caller_number"]) == ("+85221234567", "21234567")
    assert pop["customer"]["id"] == hk and pop["customer"]["name"] == "陳大文"


async def test_sole_owner_routes_and_rings_the_account_manager_first(sessions, stack) -> None:
    with sessions() as session, session.begin():
        session.add(Agent(id="1002", interface="PJSIP/desk-1002"))
    owner = add_customer(
        sessions,
        "王芳",
        "+8613800138000",
        tier="vip1",
        preferred_dialect="wu",
        account_manager="1002",
    )
    built = await stack()
    variables = await built.call("identify")
    assert list(variables) == [
        "__CUSTOMER_ID",
        "__CUSTOMER_CANDIDATES",
        "AM_AGENT",
        "AM_INTERFACE",
        "AM_SECONDS",
        "__DIALECT",
        "DIALECT_SOURCE",
        "QUEUE_PRIO",
        "ROUTE_QUEUE",
    ]
    assert variables["__CUSTOMER_ID"] == str(owner)
    assert (variables["AM_AGENT"], variables["AM_INTERFACE"]) == ("1002", "PJSIP/desk-1002")
    assert (variables["__DIALECT"], variables["DIALECT_SOURCE"]) == ("wu", "customer")
    assert variables["QUEUE_PRIO"] == "10"
    pop = built.publisher.payload(LINKEDID)
    assert (pop["dialect"], pop["queue"], pop["ivr_path"]) == ("wu", "wu", ["welcome"])


async def test_shared_number_gives_candidates_and_links_nobody(sessions, stack) -> None:
    add_customer(sessions, "李娜", "+8613911112222", tier="vip3", account_manager="1002")
    add_customer(sessions, "李强", "+8613911112222")
    built = await stack()
    variables = await built.call("identify", agi_callerid="13911112222")
    assert "__CUSTOMER_ID" not in variables and "AM_AGENT" not in variables
    assert (variables["__CUSTOMER_CANDIDATES"], variables["QUEUE_PRIO"]) == ("2", "0")
    pop = built.publisher.payload(LINKEDID)
    assert pop["customer"] is None
    assert {c["name"] for c in pop["candidates"]} == {"李娜", "李强"}


async def test_menu_choice_is_noted_on_the_pop(sessions, stack) -> None:
    built = await stack()
    await built.call("identify")
    variables = await built.call(
        "dialect", lambda line: "200 result=4" if line.startswith("GET DATA") else ok(line)
    )
    assert (variables["__DIALECT"], variables["DIALECT_SOURCE"]) == ("wu", "ivr")
    pop = built.publisher.payload(LINKEDID)
    assert (pop["dialect"], pop["queue"], pop["ivr_path"]) == (
        "wu",
        "wu",
        ["welcome", "dialect:wu"],
    )


async def test_withheld_number_prepares_no_pop_and_routes_by_default(sessions, stack) -> None:
    built = await stack()
    variables = await built.call("identify", agi_callerid="unknown")
    assert variables["__CUSTOMER_CANDIDATES"] == "0"
    assert (variables["__DIALECT"], variables["DIALECT_SOURCE"]) == ("mandarin", "default")
    assert built.publisher.payload(LINKEDID)["caller_number"] == ""


async def test_the_pops_customer_block_is_the_api_view(sessions) -> None:
    customer_id = add_customer(sessions, "张伟", "+8613800138000")
    load = customer_loader(sessions)
    with sessions() as session:
        expected = view_customer(session, customer_id).model_dump(mode="json")
    assert await load(customer_id) == expected
    assert await load(customer_id + 1000) is None

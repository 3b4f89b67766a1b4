"""``hotline demo``: the whole stack on a real Asterisk with a trickle of demo calls.

It is what a newcomer runs first, so it does everything itself: starts the lab, seeds a
handful of customers, starts the agents' phones (SIPp) and puts them in the dialect
queues over AMI (through the bridge, as production does), serves the API, and keeps
placing calls with a mix of outcomes until stopped or until ``calls`` have been placed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from dataclasses import dataclass

from rich.console import Console
from sqlalchemy import func, select

from hotline.settings import Settings

DEMO_CUSTOMERS = (
    ("张伟", "+8613800138000", "vip1", "mandarin"),
    ("陈美玲", "+8613922223333", "standard", "cantonese"),
    ("林志明", "+865925123456", "standard", "minnan"),
    ("王芳", "+862161234567", "vip2", "wu"),
    ("刘洋", "+862887654321", "standard", "sichuanese"),
    ("李娜", "+8613700000001", "standard", None),
    ("李强", "+8613700000001", "standard", None),  # a family line: two customers, one number
)


DEMO_SKILLS = {
    "1001": ["mandarin:native", "cantonese:good", "sichuanese:fallback"],
    "1002": ["cantonese:native", "mandarin:good"],
    "1003": ["minnan:native", "mandarin:good", "wu:fallback"],
    "1004": ["wu:native", "sichuanese:native", "mandarin:native"],
}


@dataclass(frozen=True, slots=True)
class DemoCall:
    number: str
    name: str
    queue: str
    hold: float
    ivr_only: bool = False


def seed_customers(database_url: str) -> int:
    """Insert the demo customers once (idempotent by name + number)."""
    from hotline.customers.rows import with_name_keys
    from hotline.db.models import Customer, CustomerPhone
    from hotline.db.session import make_engine, session_factory

    engine = make_engine(database_url)
    added = 0
    with session_factory(engine)() as session:
        for name, e164, tier, dialect in DEMO_CUSTOMERS:
            exists = session.scalar(
                select(func.count(Customer.id))
                .join(CustomerPhone, CustomerPhone.customer_id == Customer.id)
                .where(Customer.name == name, CustomerPhone.e164 == e164)
            )
            if exists:
                continue
            customer = with_name_keys(Customer(name=name, tier=tier, preferred_dialect=dialect))
            session.add(customer)
            session.flush()
            kind = "mobile" if e164.startswith("+861") else "landline"
            session.add(CustomerPhone(customer_id=customer.id, e164=e164, kind=kind))
            added += 1
        session.commit()
    engine.dispose()
    return added


def next_call(rng: random.Random, queues: list[str]) -> DemoCall:
    name, e164, _tier, dialect = rng.choice(DEMO_CUSTOMERS)
    # As a trunk would send them: mobiles bare, landlines with the trunk 0.
    number = e164[3:] if e164.startswith("+861") else "0" + e164[3:]
    roll = rng.random()
    if roll < 0.1:
        return DemoCall(number, name, "", 5, ivr_only=True)
    queue = dialect if dialect in queues else rng.choice(queues)
    hold = rng.uniform(2, 5) if roll < 0.3 else rng.uniform(15, 30)  # some give up early
    return DemoCall(number, name, queue, hold)


async def _demo(settings: Settings, calls: int, interval: float, console: Console) -> int:
    import uvicorn

    from dialplans.lab import Lab
    from dialplans.sipp import CallSpec, SippRun, start_agent, start_calls
    from hotline.api.app import create_app
    from hotline.api.auth import Role, create_token
    from hotline.db.session import make_engine, upgrade
    from hotline.lab import lab_config
    from hotline.service import CallService

    cfg = lab_config(settings)
    lab = Lab(settings.lab_root)
    await asyncio.to_thread(lab.up, cfg, say=console.print)
    upgrade(settings.database_url)
    console.print(f"seeded {seed_customers(settings.database_url)} demo customers")
    engine = make_engine(settings.database_url)
    from hotline.agents.directory import save_agent
    from hotline.db.session import session_factory

    with session_factory(engine)() as session:  # the service's login hook applies these
        for agent in cfg.agents:
            skills = DEMO_SKILLS.get(agent.id, ["mandarin:native"])
            save_agent(
                session, agent.id, interface=agent.interface, skills=skills, name=f"坐席{agent.id}"
            )
    tokens = {
        role: create_token(
            engine, role=role, name=f"demo-{role}", agent_id="1001" if role == Role.AGENT else None
        )
        for role in (Role.ADMIN, Role.SUPERVISOR, Role.AGENT)
    }
    engine.dispose()

    service = CallService(settings)
    host, port = Settings.split_bind(settings.api_bind)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, service=service), host=host, port=port, log_level="warning"
        )
    )
    server_task = asyncio.create_task(server.serve())
    while not server.started:
        if server_task.done():
            await server_task
            return 1
        await asyncio.sleep(0.05)
    await service.wait_ready(timeout=15)

    queues = [q.name for q in cfg.queues]
    rng = random.Random(2026)
    phones: list[SippRun] = []
    for agent in cfg.agents:
        phones.append(
            start_agent(agent, cfg, ring_seconds=rng.uniform(1, 4), talk_seconds=rng.uniform(8, 20))
        )

    base = f"http://{host}:{port}"
    console.rule("Hotline demo")
    console.print(f"Agent page:          {base}/agent   (sign in with the agent token)")
    console.print(f"Wallboard:           {base}/wallboard   (supervisor token)")
    console.print(f"API docs (OpenAPI):  {base}/docs")
    console.print(f"Call log:            {base}/api/calls   (Authorization: Bearer <token>)")
    console.print(f"Health:              {base}/api/health")
    for role, token in tokens.items():
        console.print(f"{role:<11} token:   {token}")
    console.print(
        f"example: curl -H 'Authorization: Bearer {tokens[Role.SUPERVISOR]}' {base}/api/calls"
    )
    console.print(
        f"Asterisk 22 lab: AMI {cfg.ami_host}:{cfg.ami_port}, SIP {cfg.sip_host}:{cfg.sip_port}; "
        f"{len(cfg.agents)} agents' phones; Ctrl-C to stop"
    )
    console.rule()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running: list[SippRun] = []
    placed = 0
    try:
        while not stop.is_set() and (calls == 0 or placed < calls):
            call = next_call(rng, queues)
            spec = [CallSpec(call.number, call.name, queue=call.queue)]
            if call.ivr_only:  # dials the IVR-only number; the others dial sipp's default
                run = start_calls(spec, cfg, hold_seconds=call.hold, exten=cfg.ivr_only_exten)
            else:
                run = start_calls(spec, cfg, hold_seconds=call.hold)
            running.append(run)
            placed += 1
            console.print(f"call {placed}: {call.name} {call.number} → {call.queue or 'IVR'}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
        if calls:  # a bounded demo waits for its calls to finish
            for run in running:
                while run.proc.poll() is None and not stop.is_set():
                    await asyncio.sleep(0.2)
            await asyncio.sleep(1.5)
            await service.flush()
    finally:
        for run in running + phones:
            run.cleanup()
        for agent in cfg.agents:  # leave the lab's queues as we found them
            for queue in queues:
                with contextlib.suppress(Exception):
                    await service.bridge.send_action(
                        {"Action": "QueueRemove", "Queue": queue, "Interface": agent.interface}
                    )
        server.should_exit = True
        await server_task
    console.print(f"placed {placed} calls; see them with `hotline calls`")
    return 0


def run_demo(settings: Settings, *, calls: int, interval: float, console: Console) -> int:
    return asyncio.run(_demo(settings, calls, interval, console))

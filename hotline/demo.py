"""``hotline demo``: the whole stack on a real Asterisk with a trickle of demo calls.

It is what a newcomer runs first, so it does everything itself: starts the lab, seeds a
handful of customers, starts the agents' phones (SIPp) and puts them in the dialect
queues over AMI (through the bridge, as production does), serves the API, and keeps
placing calls with a mix of outcomes until stopped or until ``calls`` have been placed.

However it stops (Ctrl-C, SIGTERM, the last call, an exception) it leaves nothing
behind (docs/lab.md, "Cleaning up"): it hangs up, in Asterisk, every call it placed,
whatever state the call is in, then reaps every SIPp it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from sqlalchemy import func, select

from hotline.settings import Settings

if TYPE_CHECKING:
    from dialplans.sipp import SippRun
    from hotline.ami.bridge import AMIBridge

log = logging.getLogger(__name__)

HANGUP_TIMEOUT = 8.0  # seconds to wait for Asterisk to drop the demo's channels
CALLER_EXIT_WAIT = 2.0  # seconds a hung-up caller's SIPp gets to take the BYE and exit
_AMI_TIMEOUT = 5.0  # seconds per AMI action while cleaning up

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
    from dialplans.sipp import CallSpec, start_agent, start_calls
    from hotline.api.app import create_app
    from hotline.api.auth import Role, create_token
    from hotline.api.logs import uvicorn_log_config
    from hotline.db.session import make_engine, upgrade
    from hotline.lab import lab_config, prepare_record
    from hotline.service import CallService

    # The demo owns SIGINT and SIGTERM from the start (uvicorn does not take them, see
    # _Server): a signal only sets ``stop``, and the ``finally`` below cleans up.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    cfg = lab_config(settings)
    lab = Lab(settings.lab_root)
    upgrade(settings.database_url)
    prepare_record(settings)  # cel_pgsql needs its table before Asterisk loads it
    await asyncio.to_thread(lab.up, cfg, say=console.print)
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

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the demo's handlers stay in place; ``should_exit`` stops the server

    service = CallService(settings)
    host, port = Settings.split_bind(settings.api_bind)
    server = _Server(
        uvicorn.Config(
            create_app(settings, service=service),
            host=host,
            port=port,
            log_level="warning",
            log_config=uvicorn_log_config(),  # no token in a request line (docs/access.md)
        )
    )
    server_task = asyncio.create_task(server.serve())
    queues = [q.name for q in cfg.queues]
    phones: list[SippRun] = []
    running: list[SippRun] = []
    placed = 0
    try:
        while not server.started:
            if server_task.done():
                await server_task
                return 1
            await asyncio.sleep(0.05)
        await service.wait_ready(timeout=15)

        rng = random.Random(2026)
        for agent in cfg.agents:
            if stop.is_set():
                break
            phones.append(
                start_agent(
                    agent, cfg, ring_seconds=rng.uniform(1, 4), talk_seconds=rng.uniform(8, 20)
                )
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
            f"Asterisk 22 lab: AMI {cfg.ami_host}:{cfg.ami_port}, "
            f"SIP {cfg.sip_host}:{cfg.sip_port}; {len(cfg.agents)} agents' phones; Ctrl-C to stop"
        )
        console.rule()

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
                while run.alive() and not stop.is_set():
                    await asyncio.sleep(0.2)
            if not stop.is_set():
                await asyncio.sleep(1.5)
                await service.flush()
    finally:
        if stop.is_set():
            console.print("stopping: hanging up the demo's calls and stopping its phones")
        try:
            await clean_up(service.bridge, running, phones, console=console)
            for agent in cfg.agents:  # leave the lab's queues as we found them
                for queue in queues:
                    with contextlib.suppress(Exception):
                        await service.bridge.send_action(
                            {"Action": "QueueRemove", "Queue": queue, "Interface": agent.interface},
                            timeout=_AMI_TIMEOUT,
                        )
        finally:
            server.should_exit = True
            await server_task
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    console.print(f"placed {placed} calls; see them with `hotline calls`")
    return 0


async def clean_up(
    bridge: AMIBridge,
    callers: Sequence[SippRun],
    phones: Sequence[SippRun],
    *,
    console: Console | None = None,
) -> tuple[int, int]:
    """Hang up every call the demo placed, then stop every SIPp it started.

    Asterisk hangs the calls up first, so each party gets a BYE (or a CANCEL) whatever
    state its call is in (IVR, queued, ringing, talking); a caller's SIPp then ends on
    its own. Every SIPp is stopped after that anyway (process group, reaped), even if
    AMI is down, and a second pass hangs up a call whose INVITE reached Asterisk
    meanwhile. Returns (channels hung up, SIPp processes that were still running).
    """
    ports = {run.sip_port for run in callers}
    endpoints = tuple(f"{run.interface}-" for run in phones if run.interface)
    started = time.monotonic()
    hung_up = 0
    try:
        hung_up += await hang_up_calls(bridge, ports, endpoints)
        deadline = time.monotonic() + CALLER_EXIT_WAIT
        while any(run.alive() for run in callers) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        runs = [*callers, *phones]
        alive = sum(run.alive() for run in runs)
        await asyncio.gather(*(asyncio.to_thread(run.cleanup) for run in runs))
    hung_up += await hang_up_calls(bridge, ports, endpoints)
    if console is not None:
        console.print(
            f"hung up {hung_up} channels of the demo's calls, stopped {alive} SIPp processes "
            f"in {time.monotonic() - started:.1f} s"
        )
    return hung_up, alive


async def hang_up_calls(
    bridge: AMIBridge, caller_ports: set[int], phone_prefixes: tuple[str, ...]
) -> int:
    """Hang up the channels of the demo's calls and wait until Asterisk has dropped them.

    A call is the demo's when its trunk channel came from one of the demo's callers
    (``CHANNEL(pjsip,remote_addr)`` ends with a caller's SIP port); every channel with
    that call's Linkedid goes, and so does any channel to one of the demo's phones.
    Other calls on the same Asterisk are left alone. Returns how many were hung up; 0
    when AMI cannot answer (logged: the SIPp side is still cleaned up).
    """
    try:
        names = await _demo_channels(bridge, caller_ports, phone_prefixes)
        for name in names:
            await bridge.send_action(
                {"Action": "Hangup", "Channel": name, "Cause": 16}, timeout=_AMI_TIMEOUT
            )
        deadline = time.monotonic() + HANGUP_TIMEOUT
        left = set(names)
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            left &= {str(item.get("Channel")) for item in await _channels(bridge)}
        if left:
            log.warning("demo: %d channels still up after hang-up: %s", len(left), sorted(left))
        return len(names)
    except Exception as exc:  # AMI down or stalled: the SIPp side is cleaned up anyway
        log.warning("demo: could not hang up its calls over AMI: %s", exc.__class__.__name__)
        return 0


async def _channels(bridge: AMIBridge) -> list[Any]:
    reply = await bridge.send_action(
        {"Action": "CoreShowChannels"}, as_list=True, timeout=_AMI_TIMEOUT
    )
    items = reply if isinstance(reply, list) else [reply]
    return [item for item in items if item.get("Event") == "CoreShowChannel"]


async def _demo_channels(
    bridge: AMIBridge, caller_ports: set[int], phone_prefixes: tuple[str, ...]
) -> list[str]:
    channels = await _channels(bridge)
    linkedids: set[str] = set()
    for item in channels:
        name = str(item.get("Channel", ""))
        if not name.startswith("PJSIP/trunk-"):
            continue
        reply = await bridge.send_action(
            {"Action": "Getvar", "Channel": name, "Variable": "CHANNEL(pjsip,remote_addr)"},
            timeout=_AMI_TIMEOUT,
        )
        first = reply[0] if isinstance(reply, list) else reply
        port = str(first.get("Value") or "").rpartition(":")[2]
        if port.isdigit() and int(port) in caller_ports:
            linkedids.add(str(item.get("Linkedid")))
    return [
        str(item.get("Channel"))
        for item in channels
        if item.get("Linkedid") in linkedids
        or str(item.get("Channel", "")).startswith(phone_prefixes)
    ]


def run_demo(settings: Settings, *, calls: int, interval: float, console: Console) -> int:
    return asyncio.run(_demo(settings, calls, interval, console))

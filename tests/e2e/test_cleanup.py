"""The demo and the lab clean up after themselves (docs/lab.md, "Cleaning up").

* ``hotline demo`` stopped by SIGINT (Ctrl-C) or an exception, with calls in
  every state, leaves no SIPp process and no channel in Asterisk, within a bound.
* A caller who vanishes without a BYE (SIPp killed -9: no BYE, no more RTP) is hung up
  by Asterisk's ``rtp_timeout`` and frees the agent, while a call whose parties keep
  sending RTP outlives that timeout.

Asterisk is asked directly over its own AMI socket (``CoreShowChannels``,
``QueueStatus``), not through Hotline, so the tests judge the demo from outside. The lab
is used by one test run at a time (``flock /tmp/hotline-lab.lock``), so every channel on
it during these tests is theirs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dialplans.config import LabConfig
from dialplans.sipp import CallSpec, start_calls
from hotline.lab import lab_config as lab_config_of
from hotline.settings import load_settings
from tests.e2e.conftest import LAB_ROOT

pytestmark = pytest.mark.asterisk

Message = dict[str, str]

DEMO_EXIT_BOUND = 25.0  # seconds from the signal to the demo's exit, everything cleaned
CLEAR_MARGIN = 5.0  # seconds beyond rtp_timeout for Asterisk to clear a vanished caller


# -- Asterisk, asked directly -------------------------------------------------------------


def ami(cfg: LabConfig, action: dict[str, str], timeout: float = 10.0) -> list[Message]:
    """One AMI action on a fresh login; its response and, for a list, its events."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((cfg.ami_host, cfg.ami_port), timeout=timeout) as sock:
        reader = sock.makefile("rb")

        def send(fields: dict[str, str]) -> None:
            sock.sendall(("".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode())

        def read() -> Message:
            msg: Message = {}
            while time.monotonic() < deadline:
                line = reader.readline().decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if msg:
                        return msg
                    continue
                key, _, value = line.partition(": ")
                msg.setdefault(key, value)
            raise TimeoutError(f"AMI {action['Action']} unanswered")

        reader.readline()  # banner
        send({"Action": "Login", "Username": cfg.ami_user, "Secret": cfg.ami_secret,
              "Events": "off", "ActionID": "login"})  # fmt: skip
        while read().get("ActionID") != "login":
            pass
        send({**action, "ActionID": "t1"})
        out: list[Message] = []
        while True:
            msg = read()
            if msg.get("ActionID") != "t1":
                continue
            out.append(msg)
            listing = out[0].get("EventList") == "start"
            if not listing or msg.get("EventList") == "Complete":
                break
        send({"Action": "Logoff"})
        return out


def channels(cfg: LabConfig) -> list[Message]:
    return [
        m for m in ami(cfg, {"Action": "CoreShowChannels"}) if m.get("Event") == "CoreShowChannel"
    ]


def members(cfg: LabConfig, queue: str) -> dict[str, Message]:
    """The queue's members by interface (``Status`` 1 = not in use, ``InCall`` 0/1)."""
    listing = ami(cfg, {"Action": "QueueStatus", "Queue": queue})
    return {
        m.get("Location") or m.get("Interface", ""): m
        for m in listing
        if m.get("Event") == "QueueMember"
    }


async def until(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Poll ``check`` until it holds; the seconds it took (fails after ``timeout``)."""
    start = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - start


@contextmanager
def queue_members(cfg: LabConfig, queue: str, *agent_ids: str) -> Iterator[None]:
    for agent_id in agent_ids:
        interface = cfg.agent(agent_id).interface
        ami(cfg, {"Action": "QueueRemove", "Queue": queue, "Interface": interface})
        reply = ami(cfg, {"Action": "QueueAdd", "Queue": queue, "Interface": interface,
                          "MemberName": agent_id})  # fmt: skip
        assert reply[0].get("Response") == "Success", reply
    try:
        yield
    finally:
        for agent_id in agent_ids:
            interface = cfg.agent(agent_id).interface
            ami(cfg, {"Action": "QueueRemove", "Queue": queue, "Interface": interface})


@pytest.fixture
def idle_lab(lab, lab_config: LabConfig) -> Iterator[LabConfig]:
    """The lab with no channel at the start (a crashed earlier run's calls are given
    ``rtp_timeout`` to go), and none left behind by a failing test."""
    deadline = time.monotonic() + lab_config.rtp_timeout + CLEAR_MARGIN
    while channels(lab_config):
        if time.monotonic() > deadline:
            pytest.fail(f"the lab is not idle: {[c['Channel'] for c in channels(lab_config)]}")
        time.sleep(0.5)
    yield lab_config
    for channel in channels(lab_config):
        ami(lab_config, {"Action": "Hangup", "Channel": channel["Channel"]})


# -- processes -------------------------------------------------------------------------


def sipp_processes() -> dict[int, int]:
    """Every SIPp on the machine: pid → parent pid."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "sipp":
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("State", "").startswith("Z"):
            continue
        found[int(entry.name)] = int(fields.get("PPid", "0").strip())
    return found


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# -- a caller who vanishes --------------------------------------------------------------


async def test_vanished_caller_is_cleared_and_frees_the_agent(idle_lab, phones):
    """Two calls talk; one caller's SIPp is killed -9 (no BYE, no RTP any more).

    Asterisk hangs that call up within rtp_timeout + a margin and its agent is free
    again, while the other call, whose parties stream RTP, outlives rtp_timeout and ends
    with its caller's BYE. Without ``rtp_timeout`` the dead call stays up forever;
    without RTP from SIPp the live call is cut at ``rtp_timeout`` too.
    """
    cfg: LabConfig = idle_lab
    timeout = cfg.rtp_timeout
    queue = "sichuanese"
    for agent_id in ("1001", "1002"):
        phones(cfg.agent(agent_id), cfg, ring_seconds=0.3, talk_seconds=timeout * 4 + 60)
    with queue_members(cfg, queue, "1001", "1002"):
        live = start_calls([CallSpec("13900000001", "一直在", queue=queue)], cfg,
                           hold_seconds=timeout + 10)  # fmt: skip
        gone = start_calls([CallSpec("13900000002", "掉线了", queue=queue)], cfg,
                           hold_seconds=timeout * 4 + 60)  # fmt: skip
        with live, gone:

            def both_talking() -> bool:
                now = channels(cfg)
                bridged = {c["Linkedid"] for c in now if c["Channel"].startswith("PJSIP/trunk-")
                           and c["CallerIDNum"] in ("13900000001", "13900000002")
                           and c.get("BridgeId")}  # fmt: skip
                agents = {c["Linkedid"] for c in now if c["Channel"].startswith("PJSIP/agent-")
                          and c.get("ChannelStateDesc") == "Up"}  # fmt: skip
                return len(bridged & agents) == 2

            await until("both calls talking", both_talking, 30)
            now = channels(cfg)
            by_number = {
                c["CallerIDNum"]: c for c in now if c["Channel"].startswith("PJSIP/trunk-")
            }
            dead_linkedid = by_number["13900000002"]["Linkedid"]
            live_linkedid = by_number["13900000001"]["Linkedid"]
            dead_agent = next(
                c["Channel"].rsplit("-", 1)[0]
                for c in now
                if c["Linkedid"] == dead_linkedid and c["Channel"].startswith("PJSIP/agent-")
            )
            assert members(cfg, queue)[dead_agent]["InCall"] == "1"

            gone.vanish()
            cleared = await until(
                "the vanished caller's call cleared",
                lambda: all(c["Linkedid"] != dead_linkedid for c in channels(cfg)),
                timeout + CLEAR_MARGIN,
            )
            print(f"vanished caller cleared {cleared:.1f} s after kill -9 (rtp_timeout {timeout})")
            # the other call is still talking, although older than rtp_timeout by now
            assert sum(c["Linkedid"] == live_linkedid for c in channels(cfg)) == 2

            def agent_free() -> bool:
                member = members(cfg, queue)[dead_agent]
                return member["InCall"] == "0" and member["Status"] == "1"  # AST_DEVICE_NOT_INUSE

            await until("the agent free again", agent_free, 5)
            code = await asyncio.to_thread(live.wait, timeout + 40)
            assert code == 0, live.output()[-600:]  # it hung up itself, after hold_seconds
            assert time.time() - live.started > timeout + 10


# -- the demo ---------------------------------------------------------------------------


_RAISER = """
import pathlib, sys
import hotline.demo as demo
flag = pathlib.Path(sys.argv[1])
real = demo.next_call
def next_call(rng, queues):
    if flag.exists():
        raise RuntimeError("demo test: a failure while calls are live")
    return real(rng, queues)
demo.next_call = next_call
sys.argv = ["hotline", "demo", *sys.argv[2:]]
from hotline.cli import app
app()
"""


def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# SIGTERM takes the same handler as SIGINT (hotline/demo.py sets one for both): it is
# left out to keep this suite short (CI time).
@pytest.mark.parametrize("how", ["SIGINT", "exception"])
async def test_demo_stopped_leaves_no_sipp_and_no_channel(idle_lab, record_url, tmp_path, how):
    """Calls in every state (IVR, queued, ringing, talking) when the demo is stopped.

    The demo must exit within a bound, with no SIPp it started still running (by PID
    and by process group) and no channel left in Asterisk: it hangs its calls up rather
    than leave them to time out.
    """
    cfg: LabConfig = idle_lab
    env = {
        **os.environ,
        "HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "HOTLINE_RECORD_URL": record_url,
        "HOTLINE_API_BIND": f"127.0.0.1:{_free_tcp_port()}",
        "HOTLINE_LAB_ROOT": str(LAB_ROOT),
    }
    env.pop("HOTLINE_REDIS_URL", None)  # the in-process bus: nothing else to clean up
    demo_env = {k[len("HOTLINE_") :].lower(): v for k, v in env.items() if k.startswith("HOTLINE_")}
    # The demo must find the lab as the tests run it, or it would restart the shared lab.
    assert lab_config_of(load_settings(**demo_env)).fingerprint() == cfg.fingerprint()
    before = set(sipp_processes())
    flag = tmp_path / "raise-now"
    args = ["--interval", "0.5"]
    if how == "exception":
        cmd = [sys.executable, "-c", _RAISER, str(flag), *args]
    else:
        cmd = [sys.executable, "-m", "hotline.cli", "demo", *args]
    with open(tmp_path / "demo.out", "wb") as out:
        demo = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:

        def calls_in_every_state() -> bool:
            now = channels(cfg)
            talking = [c for c in now if c["Channel"].startswith("PJSIP/agent-")
                       and c.get("ChannelStateDesc") == "Up"]  # fmt: skip
            waiting = [c for c in now if c["Channel"].startswith("PJSIP/trunk-")
                       and not c.get("BridgeId")]  # fmt: skip
            return len(talking) >= 2 and len(waiting) >= 2

        waited = await until("demo calls live", calls_in_every_state, 90)
        children = {pid for pid, ppid in sipp_processes().items() if ppid == demo.pid}
        assert len(children) >= 6, children  # 4 phones and the callers
        live = channels(cfg)
        print(f"{how}: {len(live)} channels, {len(children)} SIPp after {waited:.1f} s")

        started = time.monotonic()
        if how == "exception":
            flag.touch()
        else:
            demo.send_signal(getattr(signal, how))
        code = await asyncio.to_thread(demo.wait, DEMO_EXIT_BOUND)
        took = time.monotonic() - started
        left = channels(cfg)
        print(f"{how}: demo exited {code} after {took:.1f} s; channels left: {len(left)}")
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    output = (tmp_path / "demo.out").read_text(errors="replace")
    if how == "exception":
        assert code != 0 and "a failure while calls are live" in output, output[-2000:]
    else:
        assert code == 0, output[-2000:]
    assert [c["Channel"] for c in left] == [], output[-2000:]
    assert not any(group_exists(pid) for pid in children)  # each SIPp led its own group
    assert set(sipp_processes()) <= before
    for queue in cfg.queues:  # and the queues are as the demo found them
        assert not members(cfg, queue.name), queue.name

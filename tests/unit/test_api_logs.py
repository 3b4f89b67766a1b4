"""No API token in any log line (docs/access.md): the real ``hotline serve``, its whole
output captured, every token it was shown grepped for.

The server runs with ``--verbose`` (DEBUG: the WebSocket library's handshake lines too)
and is sent the token every way a client might: the Authorization header, ``?token=`` on
the WebSockets (how the pages do it), ``?token=`` and ``?access_token=`` on HTTP routes
(refused, but the request line is logged first), a percent-encoded key, a token that is
unknown. The test also checks that the request lines *are* in the log, so it cannot pass
on a log that recorded nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from hotline.api.auth import Role, create_token
from hotline.api.logs import REDACTED, redact
from hotline.db.session import make_engine, upgrade

START_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_served_api_logs_no_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hotline.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    tokens = {
        "agent": create_token(engine, role=Role.AGENT, name="A", agent_id="1001"),
        "supervisor": create_token(engine, role=Role.SUPERVISOR, name="S"),
        "admin": create_token(engine, role=Role.ADMIN, name="R"),
    }
    engine.dispose()
    unknown = "u" * 43
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env.update(HOTLINE_DATABASE_URL=url, HOTLINE_API_BIND=f"127.0.0.1:{port}")
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "hotline.cli", "serve", "--no-bridge", "--verbose"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        bearer = {"Authorization": f"Bearer {tokens['admin']}"}
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx.get(f"{base}/api/health", headers=bearer, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "hotline serve did not start"
            time.sleep(0.1)

        with httpx.Client(base_url=base, timeout=5) as client:
            assert client.get("/api/calls", headers=bearer).status_code == 200
            assert client.get(f"/api/calls?token={tokens['supervisor']}").status_code == 401
            assert client.get(f"/api/health?access_token={tokens['admin']}").status_code == 401
            assert client.get(f"/api/calls?limit=5&%74oken={tokens['admin']}").status_code == 401
            assert client.get(f"/nowhere?token={tokens['agent']}").status_code == 404
            bad = client.get("/api/calls", headers={"Authorization": f"Bearer {unknown}"})
            assert bad.status_code == 401

        for path, token in [
            ("/ws/agent", tokens["agent"]),
            ("/ws/supervisor", tokens["supervisor"]),
        ]:
            with connect(f"ws://127.0.0.1:{port}{path}?token={token}", open_timeout=5) as ws:
                assert ws.recv(timeout=5)  # the hello: the socket was served
        refused = f"ws://127.0.0.1:{port}/ws/agent?token={unknown}"
        with pytest.raises(InvalidStatus), connect(refused, open_timeout=5):
            pass
        with connect(
            f"ws://127.0.0.1:{port}/ws/agent",
            additional_headers={"Authorization": f"Bearer {tokens['agent']}"},
            open_timeout=5,
        ) as ws:
            assert ws.recv(timeout=5)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    log = log_path.read_text(errors="replace")
    # the log did record the requests (else this test would prove nothing) ...
    assert "/api/calls" in log and "/ws/agent" in log and "/ws/supervisor" in log, log[-3000:]
    assert f"token={REDACTED}" in log
    # ... and no token, in any form
    for name, token in [*tokens.items(), ("unknown", unknown)]:
        for shown in (token, token[:16], token[-16:]):
            assert shown not in log, f"the {name} token is in the log"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '"GET /ws/agent?token=abc HTTP/1.1" 101',
            f'"GET /ws/agent?token={REDACTED} HTTP/1.1" 101',
        ),
        ("/x?a=1&access_token=abc&b=2", f"/x?a=1&access_token={REDACTED}&b=2"),
        ("/x?%74oken=abc", f"/x?%74oken={REDACTED}"),
        ("/x?TOKEN=abc", f"/x?TOKEN={REDACTED}"),
        ("Authorization: Bearer abc.def-ghi", f"Authorization: Bearer {REDACTED}"),
        ("/x?tokens=abc&q=token", "/x?tokens=abc&q=token"),  # other names are kept
    ],
)
def test_redact(line: str, expected: str) -> None:
    assert redact(line) == expected

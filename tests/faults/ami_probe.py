"""A plain AMI client for the fault suite's own questions to Asterisk, past the proxy.

The suite needs answers that do not depend on the code under test: which channels are
live (and whose number they carry), which members a queue has, and a way to clean the
members out at the end. So this is a few lines of blocking socket code, straight to
Asterisk's AMI port, with its own login; never through ``hotline.ami`` or the proxy.
"""

from __future__ import annotations

import itertools
import socket
import time
from dataclasses import dataclass

from dialplans.config import LabConfig

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class LiveChannel:
    channel: str
    uniqueid: str
    linkedid: str
    caller_number: str
    connected_number: str
    application: str


class AMIProbe:
    """One short-lived login per question: the suite asks rarely, and Asterisk restarts."""

    def __init__(self, config: LabConfig, timeout: float = 5.0) -> None:
        self.config = config
        self.timeout = timeout

    def ask(self, action: dict[str, str]) -> list[dict[str, str]]:
        """Send one action; return its response and, for a list action, every item."""
        action_id = f"faults-{next(_ids)}"
        deadline = time.monotonic() + self.timeout
        with socket.create_connection(
            (self.config.ami_host, self.config.ami_port), timeout=self.timeout
        ) as sock:
            login = {
                "Action": "Login",
                "Username": self.config.ami_user,
                "Secret": self.config.ami_secret,
                "Events": "off",
                "ActionID": "faults-login",
            }
            sock.sendall(_frame(login))
            sock.sendall(_frame({**action, "ActionID": action_id}))
            buf = b""
            found: list[dict[str, str]] = []
            listing = False
            while time.monotonic() < deadline:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\r\n\r\n" in buf:
                    raw, buf = buf.split(b"\r\n\r\n", 1)
                    message = _parse(raw)
                    if message.get("ActionID") != action_id:
                        continue
                    found.append(message)
                    if "Response" in message:
                        listing = message.get("EventList", "").lower() == "start"
                        if not listing:
                            return found
                    elif message.get("EventList", "").lower() == "complete":
                        return found
        raise TimeoutError(f"AMI {action.get('Action')} got no complete answer")

    def live_channels(self) -> list[LiveChannel]:
        items = self.ask({"Action": "CoreShowChannels"})
        return [
            LiveChannel(
                channel=i.get("Channel", ""),
                uniqueid=i.get("Uniqueid", ""),
                linkedid=i.get("Linkedid", ""),
                caller_number=i.get("CallerIDNum", ""),
                connected_number=i.get("ConnectedLineNum", ""),
                application=i.get("Application", ""),
            )
            for i in items
            if i.get("Event") == "CoreShowChannel"
        ]

    def members(self, queue: str) -> list[str]:
        """The member interfaces of ``queue`` now."""
        items = self.ask({"Action": "QueueStatus", "Queue": queue})
        return [
            i.get("Location") or i.get("Interface", "")
            for i in items
            if i.get("Event") == "QueueMember"
        ]

    def wait_members(self, queue: str, interfaces: list[str], timeout: float = 30.0) -> None:
        """Until every one of ``interfaces`` is a member of ``queue`` (the service's
        membership sync put them there); TimeoutError naming who is in it after
        ``timeout``."""
        deadline = time.monotonic() + timeout
        members: list[str] = []
        while time.monotonic() < deadline:
            members = self.members(queue)
            if set(interfaces) <= set(members):
                return
            time.sleep(0.1)
        raise TimeoutError(f"agents not in {queue} after {timeout:.0f} s (have {members})")

    def remove_member(self, queue: str, interface: str) -> None:
        self.ask({"Action": "QueueRemove", "Queue": queue, "Interface": interface})


def _frame(headers: dict[str, str]) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"


def _parse(raw: bytes) -> dict[str, str]:
    message: dict[str, str] = {}
    for line in raw.decode(errors="replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            message.setdefault(key.strip(), value.strip())
    return message

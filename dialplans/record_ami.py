"""The AMI side of a lab recording: one raw login whose bytes become the fixture.

Kept apart from the scenarios so the capture stays a plain socket with no knowledge of
what is played on it: the fixture must hold what Asterisk 22 sent, byte for byte, not
what a parser made of it. The scenarios drive the lab through the same login
(:meth:`AMICapture.action`), so their responses are in the recording too.
"""

from __future__ import annotations

import socket
import threading
import time

from dialplans.config import LabConfig

Frame = dict[str, str]


class RecordError(RuntimeError):
    """A scenario could not be played as written (an AMI action failed, an event never came)."""


class AMICapture:
    """Capture every byte the AMI sends to a fresh login, on a thread.

    The same login sends the scenario's actions, so their responses are in the recording
    too (the replay skips responses, as the bridge's consumer does).
    """

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.data = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._actions = 0
        self._sock = socket.create_connection((config.ami_host, config.ami_port), timeout=5)
        self._sock.sendall(
            (
                f"Action: Login\r\nUsername: {config.ami_user}\r\n"
                f"Secret: {config.ami_secret}\r\n\r\n"
            ).encode()
        )
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.data.extend(chunk)

    def send(self, text: str) -> None:
        self._sock.sendall(text.encode())

    def frames(self) -> list[Frame]:
        """What arrived so far, one dict per frame (first value of each header)."""
        with self._lock:
            text = bytes(self.data).decode("utf-8", errors="replace")
        frames = []
        for block in text.split("\r\n\r\n"):
            frame: Frame = {}
            for line in block.split("\r\n"):
                key, sep, value = line.partition(": ")
                if sep:
                    frame.setdefault(key, value)
            frames.append(frame)
        return frames

    def wait_for(self, event: str, timeout: float = 20.0, **match: str) -> Frame:
        """The first frame of ``event`` whose headers include ``match`` (polls the capture)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self.frames():
                if frame.get("Event") == event and all(frame.get(k) == v for k, v in match.items()):
                    return frame
            time.sleep(0.05)
        raise RecordError(f"no {event} {match} within {timeout:g} s")

    def action(self, name: str, **headers: str) -> Frame:
        """Send an AMI action and wait for its response; an error response raises."""
        self._actions += 1
        action_id = f"rec-{self._actions}-{name.lower()}"
        lines = [f"Action: {name}", *(f"{k}: {v}" for k, v in headers.items())]
        self.send("\r\n".join([*lines, f"ActionID: {action_id}"]) + "\r\n\r\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for frame in self.frames():
                if frame.get("ActionID") == action_id and "Response" in frame:
                    if frame["Response"] == "Error":
                        raise RecordError(f"{name} {headers}: {frame.get('Message')}")
                    return frame
            time.sleep(0.02)
        raise RecordError(f"no response to {name} within 10 s")

    def stop(self, settle: float = 1.0) -> bytes:
        time.sleep(settle)  # let the last Hangup events arrive
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
        with self._lock:
            return bytes(self.data)


__all__ = ["AMICapture", "Frame", "RecordError"]

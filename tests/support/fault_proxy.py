"""A TCP proxy that fails on command: the fault suite's link between the service and a server.

``hotline serve`` reaches AMI and PostgreSQL through one of these (tests/faults/,
docs/reliability.md), so an outage is exact and hits only the service: Asterisk's own
CEL writes go to PostgreSQL directly, and the e2e tests' connections never pass here.

Modes:

* ``forward``: bytes flow both ways (the default);
* ``cut``: every open connection is reset (RST, as a crashed server or a dropped link
  looks) and new ones are refused (accepted and reset at once);
* ``blackhole``: connections are accepted and held, and no byte moves either way, on
  old or new connections: a frozen server (SIGSTOP) or a silent network. ``restore``
  lets the held bytes through again, as a thawed server would.

The proxy runs its own event loop on a daemon thread, so a test that blocks its own loop
(``Lab.down()`` waits for Asterisk synchronously) never stalls the link by accident.
Every method is thread-safe and returns when the mode is in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

Mode = Literal["forward", "cut", "blackhole"]
T = TypeVar("T")

_CHUNK = 65536


@dataclass(slots=True)
class ProxyStats:
    accepted: int = 0
    refused: int = 0
    reset: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) instead of a FIN: the peer sees a reset connection."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: FaultProxy, client: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)
        for task in self.tasks:
            task.cancel()

    async def pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool
    ) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                await self.proxy._flowing.wait()  # blackhole: hold the bytes here
                writer.write(data)
                await writer.drain()
                if up:
                    self.proxy.stats.bytes_up += len(data)
                else:
                    self.proxy.stats.bytes_down += len(data)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except (OSError, RuntimeError):
                pass


class FaultProxy:
    """``FaultProxy(upstream_host, upstream_port).start()`` → listens on ``self.port``."""

    def __init__(self, upstream_host: str, upstream_port: int, *, name: str = "proxy") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.name = name
        self.host = "127.0.0.1"
        self.port = 0
        self.mode: Mode = "forward"
        self.stats = ProxyStats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._server: asyncio.Server | None = None
        self._pairs: set[_Pair] = set()
        self._flowing = asyncio.Event()

    # -- thread-safe control --------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until :meth:`restore`."""
        self._call(self._set("cut"))

    def blackhole(self) -> None:
        """Accept, hold, and move no byte until :meth:`restore`."""
        self._call(self._set("blackhole"))

    def restore(self) -> None:
        self._call(self._set("forward"))

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # -- the loop's side ------------------------------------------------------------------
    async def _start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for pair in list(self._pairs):
            pair.reset()
        self._pairs.clear()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _set(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "blackhole":
            self._flowing.clear()
            return
        if mode == "cut":
            self._flowing.set()  # let held pumps run into their reset
            for pair in list(self._pairs):
                pair.reset()
                self.stats.reset += 1
            self._pairs.clear()
            return
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            self.stats.refused += 1
            _reset(writer)
            return
        self.stats.accepted += 1
        pair = _Pair(self, writer)
        self._pairs.add(pair)
        try:
            if self.mode == "blackhole":
                await self._flowing.wait()  # a frozen server: accepted, never answered
                if self.mode == "cut" or pair not in self._pairs:
                    _reset(writer)
                    return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                _reset(writer)
                return
            pair.upstream = up_writer
            if pair not in self._pairs:  # cut while connecting
                pair.reset()
                return
            pair.tasks = [
                asyncio.create_task(pair.pump(reader, up_writer, up=True)),
                asyncio.create_task(pair.pump(up_reader, writer, up=False)),
            ]
            await asyncio.gather(*pair.tasks, return_exceptions=True)
        finally:
            self._pairs.discard(pair)
            for w in (writer, pair.upstream):
                if w is not None and not w.is_closing():
                    w.close()

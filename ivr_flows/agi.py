"""A typed FastAGI session: one command line out, one parsed reply in.

Panoramisk 1.4's ``Request.send_command`` returns loosely-typed dicts, loses the
``(timeout)`` marker of ``200 result= (timeout)``, reads an inline ``HANGUP`` line as the
reply to the pending command (every later reply is then off by one), and waits for a
reply forever. :class:`AGISession` fixes those:

* every reply is an :class:`AGIResult` (``code``, ``result``, ``data``, ``hungup``);
* a caller who is gone (``511`` dead channel, an inline ``HANGUP``, ``200 result=-1``, or
  Asterisk closing the socket) raises :class:`CallerGone`, so a flow ends where it is
  instead of talking to a dead channel;
* ``510``/``520`` raise :class:`AGICommandError`, unparseable lines :class:`AGIProtocolError`
  (the stream is out of step after that, so the session must end);
* each command has a deadline (:class:`AGITimeoutError`): a silent peer cannot hold a
  session, its task and its socket forever;
* arguments are quoted for res_agi's ``parse_args`` (``"`` toggles quoting, ``\\``
  escapes the next byte), so values with spaces, quotes or Chinese text arrive intact,
  and a newline can never smuggle a second command onto the wire.

Run the dialplan with ``Set(AGISIGHUP=no)`` before ``AGI()``: Asterisk then answers
``511`` after a hang-up instead of writing ``HANGUP`` at a random point. Both are handled.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ivr_flows.cel import cel_text

__all__ = [
    "AGICommandError",
    "AGIError",
    "AGIProtocolError",
    "AGIResult",
    "AGISession",
    "AGITimeoutError",
    "CallerGone",
    "quote",
]

log = logging.getLogger(__name__)

# res_agi reads a command into a 2048-byte buffer (AGI_BUF_LEN); longer lines are cut.
MAX_COMMAND_BYTES = 2000
_REPLY = re.compile(r"^(\d{3})([ -])(.*)$")
_RESULT = re.compile(r"^result=(\S*)\s*(.*)$")
# NAME, _NAME, __NAME, or a dialplan function such as CHANNEL(language).
_VARIABLE_NAME = re.compile(r"^_{0,2}[A-Za-z][A-Za-z0-9_]*(\([A-Za-z0-9_,.\-]*\))?$")
_ESCAPE_DIGITS = re.compile(r"^[0-9*#]*$")
_PROMPT = re.compile(r"^[A-Za-z0-9_\-/.&]+$")
_APP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class AGIError(Exception):
    """Base for everything a session can raise about the AGI conversation."""


class CallerGone(AGIError):
    """The channel hung up (511, ``HANGUP``, ``result=-1`` or the socket closed).

    Not a fault: callers hang up. Flows catch it and end; the server counts it.
    """

    def __init__(self, reason: str, result: AGIResult | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = result


class AGICommandError(AGIError):
    """Asterisk refused the command (510 unknown command, 520 usage, other codes)."""

    def __init__(self, command: str, result: AGIResult) -> None:
        super().__init__(f"{command.split(' ', 1)[0]!s} refused with {result.code}")
        self.result = result


class AGIProtocolError(AGIError):
    """A reply that is not AGI: the stream cannot be trusted any more."""


class AGITimeoutError(AGIError):
    """No reply within the command's deadline."""


@dataclass(frozen=True, slots=True)
class AGIResult:
    """One parsed reply.

    ``result`` is the text after ``result=`` (``""`` for ``200 result= (timeout)``);
    ``data`` is what follows it, without the parentheses when there are some
    (``"timeout"``, a variable's value, ``"endpos=1234"``).
    """

    code: int
    result: str
    data: str
    hungup: bool = False

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None


def quote(value: str) -> str:
    """Quote one AGI argument for res_agi's parser.

    Why not ``shlex.quote``: Asterisk does not speak POSIX shell; its ``parse_args``
    only knows double quotes and backslash escapes. CR/LF would end the command line
    and start another one, so they become spaces; NUL would truncate the C string.
    """
    cleaned = value.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\0", "")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_reply(line: str) -> AGIResult:
    """Parse one ``NNN ...`` reply line (without the newline).

    Raises :class:`AGIProtocolError` for anything that is not ``NNN text``.
    """
    if line.strip() == "HANGUP":
        return AGIResult(code=0, result="", data="HANGUP", hungup=True)
    match = _REPLY.match(line)
    if match is None:
        raise AGIProtocolError(f"not an AGI reply: {line[:60]!r}")
    code, rest = int(match.group(1)), match.group(3).strip()
    if code == 511:
        return AGIResult(code=code, result="", data=rest, hungup=True)
    if code != 200:
        return AGIResult(code=code, result="", data=rest)
    result = _RESULT.match(rest)
    if result is None:
        raise AGIProtocolError(f"200 reply without result=: {line[:60]!r}")
    value, tail = result.group(1), result.group(2).strip()
    if tail.startswith("(") and tail.endswith(")"):
        tail = tail[1:-1]
    return AGIResult(code=code, result=value, data=tail, hungup=value == "-1")


class AGISession:
    """One FastAGI connection, seen by a flow.

    ``headers`` are the ``agi_*`` lines Asterisk sent (decoded with ``errors="replace"``),
    ``args`` the ``AGI(url,arg1,arg2)`` arguments in order, ``query`` the parsed
    ``?a=b`` of the AGI URL, ``path`` the route it was sent to. Commands are serialised
    with a lock: AGI is strictly one command, one reply, and an interleaved pair would
    shift every later reply onto the wrong command.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: Mapping[str, str],
        *,
        path: str = "",
        query: Mapping[str, str] | None = None,
        command_timeout: float = 30.0,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.headers: Mapping[str, str] = dict(headers)
        self.path = path
        self.query: Mapping[str, str] = dict(query or {})
        self.args: tuple[str, ...] = _args(headers)
        self.command_timeout = command_timeout
        self.commands_sent = 0
        self._lock = asyncio.Lock()
        self._gone: CallerGone | None = None

    # -- header shortcuts ---------------------------------------------------------------

    @property
    def uniqueid(self) -> str:
        return self.headers.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.headers.get("agi_channel", "")

    @property
    def caller_number(self) -> str | None:
        return _known(self.headers.get("agi_callerid"))

    @property
    def caller_name(self) -> str | None:
        return _known(self.headers.get("agi_calleridname"))

    @property
    def gone(self) -> bool:
        return self._gone is not None

    # -- the wire -------------------------------------------------------------------------

    async def command(
        self, line: str, *, timeout: float | None = None, raise_on_hangup: bool = True
    ) -> AGIResult:
        """Send one command line and return its parsed reply.

        Raises :class:`CallerGone` when the channel is gone (unless ``raise_on_hangup``
        is false and the reply itself says so, e.g. ``result=-1``: the result then comes
        back with ``hungup=True``), :class:`AGICommandError` on 510/520/other codes,
        :class:`AGIProtocolError` on garbage and :class:`AGITimeoutError` past the deadline.
        Once the caller is known to be gone every later command raises at once, without
        touching the socket.
        """
        if "\n" in line or "\r" in line or "\0" in line:
            raise ValueError("an AGI command is one line")
        data = line.encode("utf-8") + b"\n"
        if len(data) > MAX_COMMAND_BYTES:
            raise ValueError(f"AGI command longer than {MAX_COMMAND_BYTES} bytes")
        if self._gone is not None:
            raise CallerGone(self._gone.reason, self._gone.result)
        async with self._lock:
            try:
                async with asyncio.timeout(
                    timeout if timeout is not None else self.command_timeout
                ):
                    self._writer.write(data)
                    await self._writer.drain()
                    self.commands_sent += 1
                    result = await self._read_reply()
            except TimeoutError:
                raise AGITimeoutError(f"no reply to {line.split(' ', 1)[0]!s}") from None
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                raise self._mark_gone(f"socket closed ({type(exc).__name__})") from None
        if result.data == "HANGUP" and result.code == 0:
            raise self._mark_gone("HANGUP", result)
        if result.code == 511:
            raise self._mark_gone("511 dead channel", result)
        if result.code != 200:
            raise AGICommandError(line, result)
        if result.hungup and raise_on_hangup:
            raise self._mark_gone("result=-1", result)
        return result

    async def _read_reply(self) -> AGIResult:
        while True:
            try:
                raw = await self._reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                raise AGIProtocolError("reply line too long") from None
            if not raw.endswith(b"\n"):
                raise asyncio.IncompleteReadError(raw, None)
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("100 ") or line.startswith("100-"):
                continue  # "100 result=0 Trying..." precedes the real reply
            if line.startswith("520-"):
                return await self._read_usage(line)
            return parse_reply(line)

    async def _read_usage(self, first: str) -> AGIResult:
        """Swallow the multi-line ``520-`` usage text up to ``520 End of proper usage.``."""
        lines = [first[4:]]
        for _ in range(200):
            raw = await self._reader.readline()
            if not raw.endswith(b"\n"):
                raise asyncio.IncompleteReadError(raw, None)
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("520 "):
                return AGIResult(code=520, result="", data=lines[0].strip())
            lines.append(line)
        raise AGIProtocolError("520 usage text never ended")

    def _mark_gone(self, reason: str, result: AGIResult | None = None) -> CallerGone:
        self._gone = CallerGone(reason, result)
        return self._gone

    # -- helpers ---------------------------------------------------------------------------

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        """Play a prompt; return the escape digit pressed, or ``None``.

        res_agi answers ``200 result=-1 endpos=0`` both for a missing sound file and for
        a hang-up during playback. After a hang-up it also closes the socket, so a
        ``CHANNEL STATUS`` probe tells the two apart: a live channel means the file was
        missing (logged, the flow goes on), anything else means the caller is gone.
        """
        _check_prompt(name)
        if not _ESCAPE_DIGITS.match(escape_digits):
            raise ValueError(f"bad escape digits {escape_digits!r}")
        result = await self.command(
            f"STREAM FILE {name} {quote(escape_digits)}", raise_on_hangup=False
        )
        if result.hungup:
            status = await self.command("CHANNEL STATUS", raise_on_hangup=True)
            log.warning(
                "agi %s: prompt %r could not be played (channel status %s)",
                self.uniqueid,
                name,
                status.result,
            )
            return None
        code = result.result_int
        return chr(code) if code and 0 < code < 256 else None

    async def get_data(
        self, prompt: str, timeout_ms: int = 5000, max_digits: int = 1
    ) -> tuple[str, bool]:
        """Play ``prompt`` and collect up to ``max_digits`` DTMF digits.

        Returns ``(digits, timed_out)``: ``("", True)`` when nothing was pressed,
        ``("12", True)`` when the caller stopped after two digits, ``("1", False)`` when
        the digit count was reached or ``#`` ended the input. A missing prompt file is
        skipped by Asterisk (the digits are still collected).
        """
        _check_prompt(prompt)
        if not 1 <= max_digits <= 64 or timeout_ms < 0:
            raise ValueError("max_digits must be 1..64 and timeout_ms >= 0")
        result = await self.command(
            f"GET DATA {prompt} {int(timeout_ms)} {int(max_digits)}",
            timeout=self.command_timeout + timeout_ms / 1000,
        )
        digits = result.result
        if not _ESCAPE_DIGITS.match(digits):
            raise AGIProtocolError(f"GET DATA returned non-digits {digits[:20]!r}")
        return digits, result.timed_out

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable; the value is sent quoted, literally (no ``${}`` expansion)."""
        if not _VARIABLE_NAME.match(name):
            raise ValueError(f"bad channel variable name {name!r}")
        await self.command(f"SET VARIABLE {name} {quote(str(value))}")

    async def get_variable(self, name: str) -> str | None:
        """Read a channel variable or function; ``None`` when it is not set."""
        if not _VARIABLE_NAME.match(name):
            raise ValueError(f"bad channel variable name {name!r}")
        result = await self.command(f"GET VARIABLE {name}")
        return result.data if result.result == "1" else None

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {quote(message)} {max(1, min(int(level), 4))}")

    async def exec(self, application: str, arguments: str = "") -> AGIResult:
        """Run a dialplan application. ``-2`` (no such application) raises AGICommandError."""
        if not _APP_NAME.match(application):
            raise ValueError(f"bad application name {application!r}")
        line = f"EXEC {application} {quote(arguments)}" if arguments else f"EXEC {application}"
        result = await self.command(line)
        if result.result == "-2":
            raise AGICommandError(line, result)
        return result

    async def user_event(self, name: str, headers: Mapping[str, str] | None = None) -> None:
        """``UserEvent(name,Key: value,...)`` — how flows tell the AMI bridge what happened.

        Commas would split the application's arguments and ``|``/newlines are separators
        on some versions, so they are replaced in values; names are checked.
        """
        if not _APP_NAME.match(name):
            raise ValueError(f"bad user event name {name!r}")
        parts = [name]
        for key, value in (headers or {}).items():
            if not _APP_NAME.match(key):
                raise ValueError(f"bad user event header {key!r}")
            parts.append(f"{key}: {_event_value(value)}")
        await self.exec("UserEvent", ",".join(parts))
        # The same fact into Asterisk's own record (CEL), so a call whose AMI events were
        # missed is still classified from it (docs/asterisk-record.md). Form-encoded:
        # commas would split the application's arguments. Best effort: the AMI event
        # is out, and a CEL without this fact only loses detail, not the call.
        extra = cel_text({key: str(value) for key, value in (headers or {}).items()})
        try:
            await self.exec("CELGenUserEvent", f"{name},{extra}" if extra else name)
        except AGICommandError as exc:  # app_celgenuserevent not loaded
            log.warning("CELGenUserEvent %s failed: %s", name, exc)


def _args(headers: Mapping[str, str]) -> tuple[str, ...]:
    numbered: list[tuple[int, str]] = []
    for key, value in headers.items():
        if key.startswith("agi_arg_"):
            try:
                numbered.append((int(key[8:]), value))
            except ValueError:
                continue
    return tuple(value for _, value in sorted(numbered))


def _known(value: str | None) -> str | None:
    """Asterisk writes ``unknown`` for an absent caller id."""
    if value is None:
        return None
    value = value.strip()
    return None if value in ("", "unknown") else value


def _check_prompt(name: str) -> None:
    if not _PROMPT.match(name) or ".." in name:
        raise ValueError(f"bad prompt name {name!r}")


def _event_value(value: str) -> str:
    return re.sub(r"[,|\r\n\0]", " ", str(value)).strip()

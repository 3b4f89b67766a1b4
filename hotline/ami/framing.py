"""Sans-I/O AMI framer: bytes in, parsed frames out (the h11 pattern).

Panoramisk 1.4 decodes every TCP read on its own with ``errors="ignore"``, so a UTF-8
character split across two reads vanishes (a Chinese caller name loses a glyph), and it
splits on ``utils.EOL``, which ``panoramisk.testing`` mutates process-wide. This framer
keeps *bytes* until a whole frame (``b"\\r\\n\\r\\n"``) is there and only then decodes, with
``errors="replace"``, so split characters survive and bad bytes become U+FFFD instead of
an exception. It never touches a socket and never raises on peer input: junk is skipped,
logged and counted in :attr:`AMIFramer.stats`, which keeps it replayable in tests and
safe inside ``data_received``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from urllib.parse import unquote

from panoramisk.message import Message

from hotline.ami.events import CHANVAR_HEADERS, AMIEvent

__all__ = ["BANNER_PREFIX", "MAX_BUFFER", "AMIFramer", "Frame", "FramerStats"]

log = logging.getLogger(__name__)

BANNER_PREFIX = b"Asterisk Call Manager/"
_BANNER_TEXT = BANNER_PREFIX.decode()
FRAME_END = b"\r\n\r\n"
# A real AMI frame is a few KiB at most (a CoreShowChannel with many channelvars);
# anything this big without a frame end is a broken or hostile peer.
MAX_BUFFER = 1 << 20


@dataclass(slots=True)
class FramerStats:
    """Counters for /api/health: every skip must be visible, never silent."""

    frames: int = 0
    events: int = 0
    responses: int = 0
    garbage_frames: int = 0
    bad_lines: int = 0
    oversize_discards: int = 0
    bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class Frame:
    """One AMI frame, parsed once, convertible to either consumer's type.

    ``headers`` holds the first value of each header in Asterisk's spelling; any
    header seen more than once also has all its values in ``repeated`` (AMI values are
    single-line, so nothing is lost). The ``ChanVariable`` family never appears in
    ``headers``: it lives in ``chanvars`` as ``{header: {var: value}}``. ``content`` is
    the colon-less body of old-style ``Response: Follows`` replies.
    """

    headers: dict[str, str]
    chanvars: dict[str, dict[str, str]] = field(default_factory=dict)
    repeated: dict[str, list[str]] = field(default_factory=dict)
    content: str = ""

    @property
    def name(self) -> str | None:
        """The ``Event`` name, or ``None`` for a response."""
        return self.headers.get("Event")

    @property
    def is_response(self) -> bool:
        return "Response" in self.headers

    @property
    def action_id(self) -> str | None:
        return self.headers.get("ActionID")

    def to_event(self, received: float = 0.0) -> AMIEvent:
        """The domain view; shares ``headers``/``chanvars`` with the frame (no copy: hot path)."""
        return AMIEvent(
            name=self.headers.get("Event", ""),
            headers=self.headers,
            chanvars=self.chanvars,
            received=received,
        )

    def to_message(self) -> Message:
        """A panoramisk ``Message`` so its action futures resolve as upstream expects.

        Repeated headers become lists as in panoramisk, but the ``ChanVariable`` family is
        *always* a list, so 1.4's ``getdict()`` works with a single variable too. The
        frame rides along as ``message.frame`` for callers that want the typed view.
        """
        headers: dict[str, str | list[str]] = dict(self.headers)
        for key, values in self.repeated.items():
            headers[key] = list(values)
        for key, variables in self.chanvars.items():
            headers[key] = [f"{var}={value}" for var, value in variables.items()]
        for key in [k for k in headers if k.lower() in Message.quoted_keys]:
            value = headers[key]
            if isinstance(value, str):
                headers[key] = unquote(value).strip()
        message = Message(headers, self.content)
        message.frame = self
        return message


class AMIFramer:
    """Incremental AMI parser: ``feed(data)`` returns the frames completed by ``data``.

    One framer per TCP connection: the banner (``Asterisk Call Manager/x.y.z``) is expected
    only at stream start. A banner line heading a later frame (two recorded connections
    concatenated in one fixture) is also consumed, so replays stay clean.
    """

    def __init__(self, *, max_buffer: int = MAX_BUFFER, stats: FramerStats | None = None) -> None:
        self.version: str | None = None
        self.stats = stats if stats is not None else FramerStats()
        self.max_buffer = max_buffer
        self._buf = bytearray()
        self._scan = 0  # where to resume looking for FRAME_END (avoids O(n²) on tiny reads)
        self._banner_pending = True
        self._skipping = False  # after an oversize discard: drop bytes up to the next frame end

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes from the peer; never raises on their content.

        ``b""`` (EOF) drops any half frame, because a frame cut by a disconnect can never be
        completed by the next connection's bytes.
        """
        if not data:
            if self._buf:
                log.warning("AMI stream ended inside a frame; dropping %d bytes", len(self._buf))
                self._buf.clear()
            self._scan = 0
            self._banner_pending = True
            self._skipping = False
            return []
        buf = self._buf
        buf += data
        self.stats.bytes += len(data)
        if self._banner_pending and not self._take_banner():
            return []
        end = buf.rfind(FRAME_END, self._scan)
        if end < 0:
            if len(buf) > self.max_buffer:
                self._discard_oversize()
            else:
                self._scan = max(0, len(buf) - 3)
            return []
        # Frame ends are pure ASCII and never occur inside a UTF-8 sequence, so decoding
        # every complete frame in one call equals decoding them one by one, only faster.
        text = buf[:end].decode("utf-8", "replace")
        del buf[: end + 4]
        self._scan = 0
        if self._skipping:
            self._skipping = False
            _, sep, text = text.partition("\r\n\r\n")
            if not sep:
                text = ""
        frames = self._parse_blocks(text.split("\r\n\r\n")) if text else []
        if len(buf) > self.max_buffer:
            self._discard_oversize()
        return frames

    def _take_banner(self) -> bool:
        """Consume the banner line if present; ``False`` means: need more bytes to know."""
        buf = self._buf
        head = bytes(buf[: len(BANNER_PREFIX)])
        if not BANNER_PREFIX.startswith(head):
            self._banner_pending = False  # not a banner (e.g. a fixture without one)
            return True
        if len(head) < len(BANNER_PREFIX):
            return False
        eol = buf.find(b"\r\n")
        if eol < 0:
            if len(buf) > 256:  # no banner is this long: give up and frame normally
                self._banner_pending = False
                return True
            return False
        self.version = bytes(buf[len(BANNER_PREFIX) : eol]).decode("utf-8", "replace").strip()
        log.info("AMI banner: version %s", self.version)
        del buf[: eol + 2]
        self._banner_pending = False
        return True

    def _discard_oversize(self) -> None:
        log.warning(
            "AMI buffer exceeded %d bytes without a frame end; discarding %d bytes",
            self.max_buffer,
            len(self._buf),
        )
        self._buf.clear()
        self._scan = 0
        self._skipping = True
        self.stats.oversize_discards += 1

    def _parse_blocks(self, blocks: list[str]) -> list[Frame]:
        # One tight loop, locals only: this runs for every AMI event, and framing + tracker
        # must keep up with 50,000 events/s per core (measured in docs/benchmarks.md).
        frames: list[Frame] = []
        append = frames.append
        chanvar_headers = CHANVAR_HEADERS
        n_events = n_responses = n_garbage = n_bad = 0
        for block in blocks:
            if not block:
                continue
            headers: dict[str, str] = {}
            chanvars: dict[str, dict[str, str]] = {}
            repeated: dict[str, list[str]] | None = None
            extra: list[str] | None = None
            for line in block.split("\r\n"):
                key, sep, value = line.partition(": ")
                if not sep or ":" in key:  # rare: "Key:Value", or no colon at all
                    key, sep, value = line.partition(":")
                    if not sep:
                        if line:
                            if extra is None:
                                extra = []
                            extra.append(line)
                        continue
                    if value[:1] == " ":
                        value = value[1:]
                if key in chanvar_headers:
                    var, _, var_value = value.partition("=")
                    found = chanvars.get(key)
                    if found is None:
                        chanvars[key] = {var: var_value}
                    else:
                        found[var] = var_value
                elif key in headers:
                    if repeated is None:
                        repeated = {}
                    values = repeated.get(key)
                    if values is None:
                        repeated[key] = [headers[key], value]
                    else:
                        values.append(value)
                else:
                    headers[key] = value
            if extra is not None and extra[0].startswith(_BANNER_TEXT):
                self.version = extra[0][len(_BANNER_TEXT) :].strip()
                del extra[0]
                if not extra:
                    extra = None
            if "Event" in headers:
                n_events += 1
                if extra is not None:
                    n_bad += len(extra)
                    extra = None
            elif "Response" in headers:
                n_responses += 1
            else:
                n_garbage += 1
                log.warning(
                    "skipping AMI frame with neither Event nor Response (%d chars, %d headers)",
                    len(block),
                    len(headers),
                )
                continue
            append(
                Frame(
                    headers,
                    chanvars,
                    repeated if repeated is not None else {},
                    "\n".join(extra) if extra is not None else "",
                )
            )
        stats = self.stats
        stats.frames += n_events + n_responses + n_garbage
        stats.events += n_events
        stats.responses += n_responses
        stats.garbage_frames += n_garbage
        if n_bad:
            stats.bad_lines += n_bad
            log.warning("dropped %d AMI header lines without a colon", n_bad)
        return frames

"""The AMI event as the rest of Hotline sees it.

Panoramisk's ``Message`` is a case-insensitive dict that turns a repeated header into a
list only sometimes (one ``ChanVariable`` stays a str, two become a list). Domain code
should not care, so every frame is parsed once into an :class:`AMIEvent` with plain
dicts: headers keep Asterisk's spelling (it is fixed per event type) and the
``ChanVariable`` family is always a dict, whatever the count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Headers Asterisk may repeat, one variable per line, in two-channel events too.
CHANVAR_HEADERS = frozenset(
    {
        "ChanVariable",
        "DestChanVariable",
        "TargetChanVariable",
        "TransfereeChanVariable",
        "TransfererChanVariable",
        "SecondTransfererChanVariable",
        "OrigTransfererChanVariable",
        "LocalOneChanVariable",
        "LocalTwoChanVariable",
    }
)


@dataclass(slots=True)
class AMIEvent:
    """One AMI frame that carried an ``Event`` header.

    ``received`` is the monotonic-free wall clock (epoch seconds) at which the bridge read
    the frame; ``time`` prefers Asterisk's own ``Timestamp`` header (``timestampevents``)
    so that replaying a recorded stream gives the same times as the live run.
    """

    name: str
    headers: dict[str, str]
    chanvars: dict[str, dict[str, str]] = field(default_factory=dict)
    received: float = 0.0

    def get(self, key: str, default: str = "") -> str:
        return self.headers.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self.headers[key]

    def __contains__(self, key: object) -> bool:
        return key in self.headers

    def var(self, name: str, prefix: str = "") -> str | None:
        """A channel variable from the snapshot (``prefix='Dest'`` for the called leg)."""
        return self.chanvars.get(prefix + "ChanVariable", {}).get(name)

    @property
    def time(self) -> float:
        stamp = self.headers.get("Timestamp")
        if stamp:
            try:
                return float(stamp)
            except ValueError:
                pass
        return self.received

    @property
    def uniqueid(self) -> str:
        return self.headers.get("Uniqueid", "")

    @property
    def linkedid(self) -> str:
        return self.headers.get("Linkedid", "")

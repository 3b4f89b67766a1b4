"""A user event's fields as the text of ``CELGenUserEvent`` (docs/asterisk-record.md).

The IVR tells the AMI bridge what happened with ``UserEvent`` and writes the same fact
into Asterisk's own record with ``CELGenUserEvent``, so a call whose AMI events were
missed is still classified from CEL (:mod:`hotline.record.cel_calls` reads it back).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote as url_quote

__all__ = ["CEL_TEXT_MAX", "cel_text"]

# cel_custom writes at most 1024 bytes a line and cuts the rest (docs/asterisk-record.md,
# "Line length"); a user event's text is in the line twice (appdata and extra), so it
# is kept to this many bytes.
CEL_TEXT_MAX = 320
_CEL_ESCAPED = frozenset('%&=+,;"\\|#')


def _cel_value(text: str) -> str:
    """Form-encoding that leaves non-ASCII as it is: 3 bytes a Chinese character, not 9."""
    out: list[str] = []
    for char in text:
        if char in _CEL_ESCAPED or ord(char) < 0x20 or char == "\x7f":
            out.append(url_quote(char, safe=""))
        else:
            out.append("+" if char == " " else char)
    return "".join(out)


def cel_text(fields: Mapping[str, str]) -> str:
    """``key=value&…`` for ``CELGenUserEvent``, read back with ``parse_qsl``.

    Over :data:`CEL_TEXT_MAX` bytes, the longest value is cut (with ``…``) until it
    fits: a routing explanation loses its tail, never the facts beside it.
    """
    values = dict(fields)

    def encoded() -> str:
        return "&".join(f"{key}={_cel_value(value)}" for key, value in values.items())

    text = encoded()
    while len(text.encode()) > CEL_TEXT_MAX:
        longest = max(values, key=lambda key: len(_cel_value(values[key]).encode()))
        value = values[longest]
        if len(value) <= 1:
            break
        excess = len(text.encode()) - CEL_TEXT_MAX
        values[longest] = value[: max(1, len(value) - max(2, excess // 3)) - 1] + "…"
        text = encoded()
    return text

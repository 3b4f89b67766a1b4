"""What the reconciler needs to ask Asterisk itself: which calls are live, since when it runs.

Both answers come over AMI and both may be unknown (the link is down): the reconciler
then settles only what the record says is over (``LINKEDID_END``), which is always safe.
"""

from __future__ import annotations

import logging
from typing import Any

from hotline.ami.bridge import AMIBridge
from hotline.ami.events import AMIEvent

__all__ = ["live_linkedids", "started_at"]

log = logging.getLogger(__name__)

_TIMEOUT = 5.0  # seconds; a pass must not hang on a stalled link (the watchdog aborts it)


def _items(reply: Any) -> list[Any]:
    return reply if isinstance(reply, list) else [reply]


async def live_linkedids(bridge: AMIBridge) -> frozenset[str] | None:
    """Linkedids of every channel alive in Asterisk now, or None when AMI cannot say."""
    if not bridge.connected:
        return None
    try:
        reply = await bridge.send_action(
            {"Action": "CoreShowChannels"}, as_list=True, timeout=_TIMEOUT
        )
    except Exception as exc:
        log.warning("CoreShowChannels for the reconciler failed: %s", exc.__class__.__name__)
        return None
    items = _items(reply)
    if not items or items[0].get("Response") == "Error":
        return None
    return frozenset(
        str(item.get("Linkedid"))
        for item in items
        if item.get("Event") == "CoreShowChannel" and item.get("Linkedid")
    )


def started_at(event: AMIEvent) -> float | None:
    """Epoch seconds of Asterisk's last start, from the ``FullyBooted`` every login gets.

    Its ``Uptime`` header counts seconds, so the answer does not depend on the time zone
    Asterisk runs in (``CoreStatus`` gives a local date and time), and it needs no
    ``command`` privilege (``core show uptime`` would).
    """
    if event.name != "FullyBooted":
        return None
    uptime = event.headers.get("Uptime", "")
    if not uptime.isdigit():
        return None
    return event.received - int(uptime)

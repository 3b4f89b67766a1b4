"""The calls a fault meets: one of each state at the moment it strikes, with distinct numbers.

The module's four agents' phones (tests/faults/conftest.py) are two quick ones (ring
``FAST_RING`` s, talk ``FAST_TALK`` s) and two slow ones (ring ``SLOW_RING`` s, talk
``SLOW_TALK`` s), so the first four callers are split between talking and ringing a few
seconds in. Times below are seconds after the mix starts; ``fault_at`` is when the fault
strikes. With ``fault_at = 3``:

========== ======================================= ================================
number     what it does                            state at the fault
========== ======================================= ================================
…01–…04    patient (hold 16 s)                     2 talking, 2 ringing
…05        queue timeout 6 s                       queued, about to time out
…06        hangs up after 8 s                      queued, abandoning (abandoned)
…07        placed at F − 2.4, hangs up after 3.6 s queued, abandoning (short)
…08        patient but hangs up after 14 s         queued; rung ~11 s, answered or gone
…09        the ``ivr`` extension, placed at F − 1  in the IVR (its message is 5.5 s)
========== ======================================= ================================

The intended fates are only the plan: what each call really did is read from Asterisk's
queue_log afterwards (tests/faults/truth.py), so a call that went otherwise is still
judged right or wrong against what happened.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAST_RING, FAST_TALK = 1.0, 10.0
SLOW_RING, SLOW_TALK = 6.0, 6.0
HOTLINE_EXTEN = "4008001234"
IVR_EXTEN = "ivr"


@dataclass(frozen=True, slots=True)
class Planned:
    """One call to place: ``at`` seconds after the mix starts, hanging up after ``hold``."""

    number: str
    intent: str
    at: float
    hold: float
    queue: str = ""
    queue_timeout: int | None = None
    exten: str = HOTLINE_EXTEN

    @property
    def ivr(self) -> bool:
        return self.exten == IVR_EXTEN


class Numbers:
    """Distinct CN mobile numbers for one run: ``139`` + a random run prefix + a counter,
    so no row of an earlier run (or of another test) can be mistaken for one of ours."""

    def __init__(self) -> None:
        self.prefix = f"139{random.randrange(10_000):04d}"
        self.next = 1

    def take(self) -> str:
        number = f"{self.prefix}{self.next:04d}"
        self.next += 1
        return number


def call_mix(numbers: Numbers, queue: str, *, fault_at: float = 3.0) -> list[Planned]:
    """A call in every state at ``fault_at`` (the table above)."""
    n = numbers.take
    patient = [Planned(n(), "talking or ringing", 0.0, 16.0, queue) for _ in range(4)]
    return [
        *patient,
        Planned(n(), "about to time out", 0.4, 30.0, queue, queue_timeout=6),
        Planned(n(), "abandoning", 0.5, 8.0, queue),
        # It hangs up ~1.2 s after the fault, never at the same moment: a call that ends
        # on its own as Asterisk stops would be judged cut (tests/faults/scenario.py).
        Planned(n(), "abandoning (short)", max(0.6, fault_at - 2.4), 3.6, queue),
        Planned(n(), "queued", 0.7, 14.0, queue),
        Planned(n(), "in the IVR", max(0.0, fault_at - 1.0), 30.0, exten=IVR_EXTEN),
    ]


def gap_calls(numbers: Numbers, queue: str, *, start: float, spread: float = 6.0) -> list[Planned]:
    """Calls that start while the fault lasts: an IVR call, a queue timeout, an abandon, a
    patient caller, ``spread`` seconds apart at most."""
    n = numbers.take
    step = spread / 3
    return [
        Planned(n(), "gap: IVR only", start, 30.0, exten=IVR_EXTEN),
        Planned(n(), "gap: times out", start + step, 30.0, queue, queue_timeout=3),
        Planned(n(), "gap: abandons", start + 2 * step, 8.0, queue),
        Planned(n(), "gap: patient", start + 3 * step, 14.0, queue),
    ]


def load_mix(numbers: Numbers, queue: str, *, calls: int = 200, rate: float = 5.0) -> list[Planned]:
    """``calls`` at ``rate`` per second: every other one IVR only, the rest queued with a
    2 s queue timeout for one in three and a 4 s hold (answered, timed out or abandoned
    as the four agents allow)."""
    planned = []
    for i in range(calls):
        at = i / rate
        if i % 2 == 0:
            planned.append(Planned(numbers.take(), "load: IVR", at, 30.0, exten=IVR_EXTEN))
        else:
            timeout = 2 if i % 3 == 0 else None
            planned.append(
                Planned(numbers.take(), "load: queued", at, 4.0, queue, queue_timeout=timeout)
            )
    return planned

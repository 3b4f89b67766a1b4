"""Record raw AMI streams from the lab as test fixtures (``hotline lab record``).

The tracker's and the wallboard's tests replay what Asterisk 22 really sends, byte for
byte (the cacofonisk pattern), instead of what we believe it sends. Each scenario places
SIPp calls against the running lab, and sends the AMI actions a supervisor or an agent's
phone would (transfer, pause, withdraw), while a plain socket captures the AMI bytes.
The capture is written to ``tests/fixtures/ami/[<family>/]<scenario>.ami`` together with
a JSON file saying what was placed; docs/lab.md lists the families and what each shows.

The first seven scenarios sit at the top of the folder, where several test modules read
them by name; later families each have a sub-folder.

With ``asterisk_record=True`` (``hotline lab record --asterisk-record``) a scenario also
keeps what Asterisk itself wrote down about the same calls: the CEL lines cel_custom
appended to its CSV and the lines app_queue appended to the queue_log while the scenario
ran. They go, with the same AMI bytes, to ``tests/fixtures/record/<scenario>.*``, where
the reconciler's classification is checked against the live tracker call for call.

This module is the recorder itself: the catalog of scenarios, what is played by default,
and :func:`record`, which writes the files. The parts each have their own module, so one
concern changes without the others: the AMI socket (``record_ami``), Asterisk's own
files (``record_asterisk``), how a scenario is written (``record_staff``) and the
scenarios (``record_scenarios``). The names the CLI and tests import stay importable
from here.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from dialplans.config import LabConfig
from dialplans.lab import Lab
from dialplans.record_ami import AMICapture, RecordError
from dialplans.record_asterisk import AsteriskRecord, started_at
from dialplans.record_scenarios import FAILED, FAMILIES, FIRST_SEVEN
from dialplans.record_staff import Phone, Scenario, staffed

log = logging.getLogger(__name__)

SCENARIOS = {s.name: s for s in (*FIRST_SEVEN, *FAMILIES, *FAILED)}
# What ``hotline lab record`` plays by default: the AMI fixtures never stop the lab.
AMI_DEFAULT = tuple(s.name for s in (*FIRST_SEVEN, *FAMILIES))
# ... and with ``--asterisk-record``: one or more scenarios per outcome family the
# reconciler classifies (tests/fixtures/record/, docs/lab.md), kept small (~430 KB):
# the other transfers and rna_then_answer also pass, but add 150 KB for little.
RECORD_DEFAULT = (
    "answered",
    "abandoned",
    "short_abandoned",
    "timeout",
    "ivr_only",
    "withdrawn",
    "timeout_then_answered",
    "timeout_twice",
    "caller_hangs_up_first",
    "blind_to_queue",
    "attended_to_queue",
    "bridged_from_queue",
    "mixed_six",
    "cut_by_restart",
)


def record(
    lab: Lab,
    config: LabConfig,
    names: list[str],
    out_dir: Path,
    *,
    asterisk_record: bool = False,
) -> list[Path]:
    """Play ``names`` and write their recordings; returns the paths written.

    A recording that already exists is skipped, never overwritten: tests pin what it
    holds (its ``.expected.json``, and ``queue_log`` lines for the first seven), so
    re-recording one is a deliberate step: delete it, record, regenerate the expectation.

    ``asterisk_record``: also keep Asterisk's own record of the calls, and write every
    scenario flat into ``out_dir`` as ``<name>.ami``, ``.cel.csv``, ``.queue_log`` and
    ``.json`` (with ``asterisk_started_at`` and ``default_dialect``, the dialplan's
    ``DIALECT`` before the IVR decides, which CEL does not show).
    """
    lab.up(config)
    written = []
    for name in names:
        scenario = SCENARIOS[name]
        path = out_dir / (f"{name}.ami" if asterisk_record else scenario.relative)
        if path.exists():
            log.warning("%s exists: not recorded again (delete it first)", path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        marks = AsteriskRecord(lab) if asterisk_record else None
        cap = AMICapture(config)
        time.sleep(0.3)
        meta: dict[str, object] = {}
        if marks is not None:  # what the reconciler is told besides the record
            meta = {"asterisk_started_at": started_at(lab), "default_dialect": config.default_queue}
        meta.update(scenario.play(lab, config, cap))
        data = cap.stop()
        if marks is not None:
            cel, queue_log = marks.take()
            path.with_suffix(".cel.csv").write_bytes(cel)
            path.with_suffix(".queue_log").write_bytes(queue_log)
        path.write_bytes(data)
        meta = {"scenario": name, "description": scenario.description, **meta}
        text = json.dumps(meta, ensure_ascii=False, indent=2) + "\n"
        path.with_suffix(".json").write_text(text, encoding="utf-8")
        written.append(path)
    return written


__all__ = [
    "AMI_DEFAULT",
    "RECORD_DEFAULT",
    "SCENARIOS",
    "AMICapture",
    "AsteriskRecord",
    "Phone",
    "RecordError",
    "Scenario",
    "record",
    "staffed",
    "started_at",
]

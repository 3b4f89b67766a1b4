"""Render Asterisk's configuration from Hotline's own description of the centre.

The templates under ``dialplans/templates`` are the only Asterisk configuration we
maintain; everything variable (AMI credentials, agents, dialect queues) comes from a
:class:`LabConfig`, so the lab, the demo and a production node render the same files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).with_name("templates")

DEFAULT_DIALECTS = ("mandarin", "cantonese", "minnan", "wu", "sichuanese")


@dataclass(frozen=True, slots=True)
class LabAgent:
    """An agent's phone: endpoint ``agent-<id>``, reached at ``sip:<id>@host:port``."""

    id: str
    port: int

    @property
    def interface(self) -> str:
        return f"PJSIP/agent-{self.id}"


@dataclass(frozen=True, slots=True)
class LabQueue:
    name: str
    ring_timeout: int = 15  # seconds a member rings before the queue tries the next
    service_level: int = 20  # seconds; queues.conf servicelevel (SL = share answered within)
    rule: str = "widen"


# Asterisk's own record (docs/asterisk-record.md). cel_custom appends one CSV line per
# CEL event to <astlogdir>/cel-custom/<CEL_CSV_FILE>; the queue_log file is <astlogdir>/
# queue_log. The ingester (hotline/record/ingest.py) reads both into the ``cel`` and
# ``queue_log`` tables, so the CSV's columns are named here once: (the ``cel`` table's
# column, the cel_custom field that fills it), in file order. ``eventenum`` is
# USER_DEFINED for a CELGenUserEvent (as cel_pgsql's show_user_defined), its name is in
# ``userdeftype``; ``eventtime`` is "<epoch seconds>.<6 digits>" (no cel.conf dateformat).
CEL_CSV_DIR = "cel-custom"
CEL_CSV_FILE = "hotline-cel.csv"
QUEUE_LOG_FILE = "queue_log"
CEL_CSV_FIELDS: tuple[tuple[str, str], ...] = (
    ("eventtype", "eventenum"),
    ("eventtime", "eventtime"),
    ("userdeftype", "userdeftype"),
    ("cid_name", "name"),
    ("cid_num", "num"),
    ("cid_ani", "ani"),
    ("cid_rdnis", "rdnis"),
    ("cid_dnid", "dnid"),
    ("exten", "exten"),
    ("context", "context"),
    ("channame", "channame"),
    ("appname", "appname"),
    ("appdata", "appdata"),
    ("amaflags", "amaflags"),
    ("accountcode", "accountcode"),
    ("peeraccount", "peeraccount"),
    ("uniqueid", "uniqueid"),
    ("linkedid", "linkedid"),
    ("userfield", "userfield"),
    ("peer", "peer"),
    ("extra", "eventextra"),
)


@dataclass(frozen=True, slots=True)
class RecordDB:
    """Where Asterisk writes its record (cel_pgsql, realtime queue_log): PostgreSQL only.

    The password is rendered into cel_pgsql.conf and res_pgsql.conf only; it is kept
    out of ``repr`` so no log line or traceback shows it.
    """

    host: str = "127.0.0.1"
    port: int = 5432
    name: str = "hotline"
    user: str = "postgres"
    password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        # One line each in an Asterisk .conf: a line break would start a new setting.
        for value in (self.host, self.name, self.user, self.password):
            if any(c in value for c in "\r\n\0"):
                raise ValueError("record database settings must be single-line")


@dataclass(frozen=True, slots=True)
class LabConfig:
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "hotline"
    ami_secret: str = "hotline-lab-secret"
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_start: int = 20000
    rtp_end: int = 20999
    agents: tuple[LabAgent, ...] = field(default_factory=tuple)
    queues: tuple[LabQueue, ...] = field(default_factory=tuple)
    default_queue: str = "mandarin"
    queue_timeout: int = 300
    ivr_only_exten: str = "ivr"
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    trunk_out_port: int = 15060  # where call-backs to customers go (a SIPp phone in the lab)
    # A party that vanishes without a BYE (crashed phone, cut network) must not hold an
    # agent or a queue slot forever: pjsip.conf rtp_timeout / rtp_timeout_hold / timers.
    rtp_timeout: int = 30  # seconds without RTP on a call not on hold
    rtp_timeout_hold: int = 300  # ... on hold (music on hold sends nothing back)
    session_timers_expires: int = 1800  # RFC 4028 session refresh interval, seconds
    record_db: RecordDB | None = None  # None: CEL and queue_log go to files only

    @classmethod
    def default(
        cls,
        *,
        agents: int = 4,
        first_agent: int = 1001,
        first_agent_port: int = 16001,
        dialects: tuple[str, ...] = DEFAULT_DIALECTS,
        **overrides: Any,
    ) -> LabConfig:
        return cls(
            agents=tuple(
                LabAgent(id=str(first_agent + i), port=first_agent_port + i) for i in range(agents)
            ),
            queues=tuple(LabQueue(name=d) for d in dialects),
            **overrides,
        )

    def agent(self, agent_id: str) -> LabAgent:
        for agent in self.agents:
            if agent.id == agent_id:
                return agent
        raise KeyError(agent_id)

    def fingerprint(self) -> str:
        """Changes whenever the rendered files would: the lab restarts Asterisk only then."""
        rendered = json.dumps(render(self), sort_keys=True).encode()
        return hashlib.sha256(rendered).hexdigest()[:16]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def conf_value(value: object) -> str:
    """A value for ``key = value`` in an Asterisk .conf: ``;`` would start a comment.

    Asterisk's parser turns ``\\;`` into ``;`` and leaves every other backslash alone.
    """
    return str(value).replace(";", "\\;")


def render(config: LabConfig) -> dict[str, str]:
    """Every configuration file, by file name, rendered for ``config``."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Asterisk .conf files, not HTML
    )
    env.filters["conf"] = conf_value
    context = {
        "ami_host": config.ami_host,
        "ami_port": config.ami_port,
        "ami_user": config.ami_user,
        "ami_secret": config.ami_secret,
        "sip_host": config.sip_host,
        "sip_port": config.sip_port,
        "rtp_start": config.rtp_start,
        "rtp_end": config.rtp_end,
        "agents": config.agents,
        "queues": config.queues,
        "default_queue": config.default_queue,
        "queue_timeout": config.queue_timeout,
        "ivr_only_exten": config.ivr_only_exten,
        "agi_host": config.agi_host,
        "agi_port": config.agi_port,
        "trunk_out_port": config.trunk_out_port,
        "rtp_timeout": config.rtp_timeout,
        "rtp_timeout_hold": config.rtp_timeout_hold,
        "session_timers_expires": config.session_timers_expires,
        "record_db": config.record_db,
        "cel_csv_file": CEL_CSV_FILE,
        "cel_csv_fields": ",".join(name for _column, name in CEL_CSV_FIELDS),
    }
    return {
        path.name: env.get_template(path.name).render(context)
        for path in sorted(TEMPLATES.iterdir())
        if path.suffix == ".conf"
    }

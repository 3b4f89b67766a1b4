"""The lab's configuration from the service's settings.

One function both the CLI (``hotline lab …``) and the demo call, so the agents, the AMI
address and the secret the lab renders are always the ones the service logs in with. It
lives apart from :mod:`hotline.cli` so :mod:`hotline.demo` needs nothing from the CLI.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

from dialplans.config import LabConfig, RecordDB
from hotline.settings import Settings

__all__ = ["lab_config", "prepare_record", "record_db"]


def record_db(url: str | None) -> RecordDB | None:
    """The connection Asterisk's cel_pgsql and res_config_pgsql use, from a URL."""
    if not url:
        return None
    parsed = make_url(url)
    return RecordDB(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        name=parsed.database or "hotline",
        user=parsed.username or "postgres",
        password=parsed.password or "",
    )


def lab_config(settings: Settings) -> LabConfig:
    return LabConfig.default(
        agents=settings.lab_agents,
        ami_host=settings.ami_host,
        ami_port=settings.ami_port,
        ami_user=settings.ami_user,
        ami_secret=settings.ami_secret.get_secret_value(),
        record_db=record_db(settings.record_database_url),
        rtp_timeout=settings.lab_rtp_timeout,
        rtp_timeout_hold=settings.lab_rtp_timeout_hold,
        session_timers_expires=settings.lab_session_timers_expires,
    )


def prepare_record(settings: Settings) -> None:
    """Create the record's tables before Asterisk starts: cel_pgsql reads the ``cel``
    table's columns when it loads and writes nothing without them."""
    from hotline.db.session import upgrade

    url = settings.record_database_url
    if url:
        upgrade(url)

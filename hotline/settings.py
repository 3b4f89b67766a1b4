"""Process-wide settings, read once from ``HOTLINE_*`` environment variables.

A wrong value must stop the process at start with a message that names the variable,
not surface later as a confusing connection error, so :func:`load_settings` turns
pydantic's validation report into one line per bad setting.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "HOTLINE_"


class SettingsError(RuntimeError):
    """Raised when the environment holds a value Hotline cannot start with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str = Field(
        default="sqlite:///./hotline.sqlite3",
        description="SQLAlchemy URL of the national record and call log.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL; without it an in-process bus serves a single process.",
    )
    ami_host: str = "127.0.0.1"
    ami_port: int = Field(default=5038, ge=1, le=65535)
    ami_user: str = "hotline"
    ami_secret: SecretStr = SecretStr("hotline-lab-secret")
    ami_ping_interval: float = Field(default=5.0, gt=0)
    ami_ping_timeout: float = Field(default=3.0, gt=0)
    agi_bind: str = Field(default="127.0.0.1:4573", description="FastAGI listen address host:port.")
    api_bind: str = Field(
        default="127.0.0.1:8080", description="HTTP API listen address host:port."
    )
    default_region: str = Field(
        default="CN", description="Region for numbers without a country code."
    )
    short_abandon_seconds: float = Field(default=5.0, ge=0)
    queues: str = Field(
        default="mandarin,cantonese,minnan,wu,sichuanese",
        description="Dialect queues that exist in Asterisk, comma-separated; others fall back.",
    )
    default_queue: str = "mandarin"
    pop_ack_timeout: float = Field(
        default=0.5,
        ge=0,
        le=5,
        description="Seconds the pre-dial step holds an agent's phone for the page's ack.",
    )
    agi_enabled: bool = True
    lab_root: Path = Field(
        default=Path("/var/lib/hotline/sid-root"),
        description="Debian sid chroot holding Asterisk 22 for the lab (cached between runs).",
    )
    lab_agents: int = Field(default=4, ge=1, le=200)
    # A party that vanishes without a BYE is hung up (docs/lab.md, "Cleaning up").
    lab_rtp_timeout: int = Field(
        default=30, ge=5, le=3600, description="Seconds without RTP before Asterisk hangs up."
    )
    lab_rtp_timeout_hold: int = Field(
        default=300, ge=5, le=7200, description="The same, while the call is on hold."
    )
    lab_session_timers_expires: int = Field(
        default=1800, ge=90, le=86_400, description="RFC 4028 session interval, seconds."
    )
    # -- Asterisk's own record (docs/asterisk-record.md) --
    record_url: str | None = Field(
        default=None,
        description=(
            "PostgreSQL URL where Asterisk writes CEL and the queue_log (cel_pgsql, "
            "realtime); default: the database when it is PostgreSQL, else files only."
        ),
    )
    asterisk_log_dir: Path = Field(
        default=Path("/var/lib/hotline/sid-root/var/log/asterisk"),
        description="Asterisk's log dir (cel_custom CSV, queue_log), read when no record_url.",
    )
    # -- the reconciler (docs/reliability.md) --
    reconcile_interval: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds between reconciler passes (it also runs after every AMI login).",
    )
    record_grace: float = Field(
        default=600.0,
        ge=0,
        le=86_400,
        description=(
            "Seconds an open call-log row that Asterisk says is not live may wait for its "
            "end in the record; then it is settled from what is known (end_reason "
            "no_record: answered stays answered, anything else failed)."
        ),
    )
    reconcile_lookback: float = Field(
        default=86_400.0,
        ge=0,
        description="On a first start, how far back the record's ended calls are taken in.",
    )
    # -- the API under bad input and outages (docs/access.md) --
    api_max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request body the API reads; a larger one is a 413.",
    )
    token_cache_ttl: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description=(
            "Seconds a verified API token is trusted without asking the database: how long "
            "token checks survive a database outage, and the longest a token revoked by "
            "another process still works (0: every request asks the database)."
        ),
    )
    token_cache_size: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Verified tokens kept per process."
    )
    db_probe_timeout: float = Field(
        default=0.5,
        gt=0,
        le=5,
        description=(
            "Seconds a token check or /api/health waits for the database (on a pool of its "
            "own, with this statement timeout) before answering 503 or 'down'."
        ),
    )
    db_probe_pool_size: int = Field(
        default=4, ge=1, le=64, description="Connections of that pool (no overflow)."
    )
    customer_grant_ttl: float = Field(
        default=3600.0,
        ge=0,
        le=86_400,
        description="Seconds an agent may open a customer a search gave them or they created.",
    )
    customer_grant_size: int = Field(
        default=100_000, ge=1, le=10_000_000, description="Such grants kept per process."
    )
    agi_max_sessions: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="FastAGI connections served at once; more are refused with a log line.",
    )
    agi_header_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds a FastAGI connection may take to send its agi_* block.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a SQLAlchemy URL: {exc}") from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("only sqlite and postgresql are supported")
        return value

    @field_validator("record_url")
    @classmethod
    def _record_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith("postgresql"):
            raise ValueError("must be a postgresql:// URL (Asterisk writes CEL there)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("agi_bind", "api_bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port with a port between 1 and 65535")
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            if host != "localhost":
                raise ValueError("host must be an IP address or localhost") from None
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        import phonenumbers

        value = value.upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("not a region phonenumbers knows (e.g. CN, HK)")
        return value

    @property
    def record_database_url(self) -> str | None:
        """Where Asterisk's record is in a database, or None (files, ingested)."""
        if self.record_url:
            return self.record_url
        return self.database_url if self.database_url.startswith("postgresql") else None

    @property
    def queue_names(self) -> tuple[str, ...]:
        return tuple(q.strip() for q in self.queues.split(",") if q.strip())

    @staticmethod
    def split_bind(bind: str) -> tuple[str, int]:
        host, _, port = bind.rpartition(":")
        return host.strip("[]"), int(port)


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; raise :class:`SettingsError` naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            shown = "" if "secret" in field else f" (got {err.get('input')!r})"
            lines.append(f"{ENV_PREFIX}{field.upper()}: {err['msg']}{shown}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

"""Build the reconciler a process uses from its settings (the one place that decides).

Where Asterisk's record lives decides how it is read (docs/reliability.md):

* **database mode**: ``record_database_url`` is set (``HOTLINE_RECORD_URL``, or the
  call-log database itself when it is PostgreSQL): Asterisk writes CEL with cel_pgsql
  and the queue_log through realtime, so the reconciler reads those tables and ingests
  nothing;
* **file mode** (the SQLite default): Asterisk writes cel_custom's CSV and the
  queue_log file under ``asterisk_log_dir``, and every pass first copies what is new
  into the call-log database's own ``cel`` and ``queue_log`` tables
  (:mod:`hotline.record.ingest`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from hotline.calls.writer import CallLogWriter
from hotline.db.session import make_engine
from hotline.record.reconciler import Reconciler
from hotline.settings import Settings

__all__ = ["make_reconciler"]


def make_reconciler(
    settings: Settings, *, engine: Engine | None = None, writer: CallLogWriter | None = None
) -> tuple[Reconciler, Callable[[], None]]:
    """The reconciler, and what to call when done with it (disposes the engines it made).

    ``engine`` and ``writer``: the service passes its own, so rows go through the same
    writer (one owner of the upsert) and pool; the CLI lets this build them.
    """
    owned: list[Engine] = []
    if engine is None:
        engine = make_engine(settings.database_url)
        owned.append(engine)
    record_url = settings.record_database_url
    if record_url is None:
        record_engine, log_dir = engine, settings.asterisk_log_dir
    elif record_url == settings.database_url:
        record_engine, log_dir = engine, None
    else:
        record_engine, log_dir = make_engine(record_url), None
        owned.append(record_engine)
    reconciler = Reconciler(
        engine,
        writer or CallLogWriter(engine, region=settings.default_region),
        record_engine=record_engine,
        log_dir=log_dir,
        short_abandon_seconds=settings.short_abandon_seconds,
        region=settings.default_region,
        lookback_seconds=settings.reconcile_lookback,
        record_grace_seconds=settings.record_grace,
        default_dialect=settings.default_queue,  # the dialplan's DEFAULT_QUEUE
    )

    def dispose() -> None:
        for each in owned:
            each.dispose()

    return reconciler, dispose

"""``hotline calls reconcile``: settle the call log from Asterisk's record by hand.

The running service does this by itself (after every AMI login, on every handover and
every ``HOTLINE_RECONCILE_INTERVAL`` seconds); this is for an operator after an outage,
or to rebuild a period's rows (``--since``) without touching the stored cursor. Without
AMI it cannot know which calls are still live, so it settles only calls the record says
are over: safe to run next to the service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["reconcile_command"]

console = Console()
err = Console(stderr=True)


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        err.print(f"[red]--since must be an ISO date or date-time, got {value!r}[/red]")
        raise typer.Exit(2) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the operator's local time
    return moment.astimezone(UTC).timestamp()


def reconcile_command(
    since: Annotated[
        str | None,
        typer.Option(help="rescan calls that ended from then on (ISO date-time, local time)"),
    ] = None,
) -> None:
    """Settle open rows and create missing ones from CEL and the queue_log."""
    from hotline.db.session import upgrade
    from hotline.record.wiring import make_reconciler
    from hotline.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    upgrade(settings.database_url)
    reconciler, dispose = make_reconciler(settings)
    try:
        report = reconciler.run_once(live=None, since=_since(since))
    finally:
        dispose()
    console.print(
        f"settled {report.settled} open row(s), created {report.created}, "
        f"{report.waiting} waiting for the record, {report.open_rows} open "
        f"({report.seconds:.2f} s)"
    )

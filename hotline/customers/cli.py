"""``hotline import`` and ``hotline gen``: plain typer commands the main CLI registers.

Kept apart from :mod:`hotline.cli` so the record tools can be developed and tested
without the telephony commands, and registered there with two lines. The import's
progress bar lives here too: the importer only reports progress through a callback.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:  # imported when used: every ``hotline`` command loads this module
    from sqlalchemy import Engine

    from hotline.customers.importer import ImportReport

__all__ = ["gen_command", "import_command", "import_file"]

console = Console(stderr=True)


def import_file(
    engine: Engine,
    path: Path,
    *,
    report_path: Path | None = None,
    show_progress: bool = True,
    bulk: bool | None = None,
) -> ImportReport:
    """Import ``path`` (rejects to ``report_path``, default ``FILE.rejected.tsv``), with a
    rich progress bar (rows, rows/s, ETA) on stderr unless ``show_progress`` is off."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from hotline.customers.importer import Importer

    report_path = report_path or path.with_name(path.name + ".rejected.tsv")
    if not show_progress:
        return Importer(engine, report_path=report_path, bulk=bulk).run(path)
    size = max(path.stat().st_size, 1)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]import[/bold]"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rows]:,} rows · {task.fields[rate]:,.0f} rows/s"),
        TextColumn("· {task.fields[rejected]:,} rejected"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("import", total=size, rows=0, rate=0.0, rejected=0)

        def progress(done: int, rows: int, rejected: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-6)
            bar.update(
                task,
                completed=size if done < 0 else done,
                rows=rows,
                rate=rate,
                rejected=rejected,
            )

        return Importer(engine, report_path=report_path, progress=progress, bulk=bulk).run(path)


def import_command(
    file: Annotated[Path, typer.Argument(help="CSV (header row) or JSONL file of customers.")],
    report: Annotated[
        Path | None,
        typer.Option(help="Where rejected rows go (default FILE.rejected.tsv)."),
    ] = None,
    database_url: Annotated[str | None, typer.Option(help="Default: HOTLINE_DATABASE_URL.")] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Import customers; every rejected row is listed with its reason in the report file."""
    from hotline.db.session import make_engine, upgrade
    from hotline.settings import load_settings

    if not file.is_file():
        console.print(f"[red]no such file: {file}[/red]")
        raise typer.Exit(2)
    url = database_url or load_settings().database_url
    engine = make_engine(url)
    try:
        upgrade(engine)
        result = import_file(engine, file, report_path=report, show_progress=progress)
    finally:
        engine.dispose()
    console.print(
        f"{result.rows:,} rows in {result.seconds:.1f}s ({result.rows_per_second:,.0f} rows/s): "
        f"{result.customers:,} customers, {result.merged:,} merged into existing, "
        f"{result.rejected:,} rejected → {result.report_path}"
    )
    for reason, count in sorted(result.reasons.items(), key=lambda kv: -kv[1])[:10]:
        console.print(f"  {count:>8,}  {reason}")
    if result.rejected:
        raise typer.Exit(1)


def gen_command(
    out: Annotated[Path, typer.Argument(help="Output file; .csv for CSV, else JSONL.")],
    customers: Annotated[int, typer.Option(min=1, max=50_000_000)] = 10_000,
    seed: Annotated[int, typer.Option(help="Same seed, same file.")] = 1,
) -> None:
    """Write deterministic synthetic national customer data (never commit the output)."""
    from hotline.customers.gen import write_file

    written = write_file(out, customers, seed)
    console.print(f"wrote {written:,} customers to {out}")

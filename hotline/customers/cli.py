"""``hotline import`` and ``hotline gen``: plain typer commands the main CLI registers.

Kept apart from :mod:`hotline.cli` so the record tools can be developed and tested
without the telephony commands, and registered there with two lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["gen_command", "import_command"]

console = Console(stderr=True)


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
    from hotline.customers.importer import import_file
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

"""``hotline route explain NUMBER``: the routing decision for a number, from a terminal.

Prints the same body as ``GET /api/routing/explain`` (:func:`hotline.routing.explain.explain`).
The customer look-up needs the database; when it is unreachable the explanation is still
given, without customer facts, and says so, because the usual question ("which queue does
this region go to?") does not need it.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from hotline.routing.decision import DEFAULT_QUEUES, CustomerFacts

__all__ = ["route_app"]

route_app = typer.Typer(help="Dialect routing.", no_args_is_help=True)
console = Console()


@route_app.callback()
def _group() -> None:
    """Dialect routing (a group even with one command, so ``explain`` stays a word)."""


@route_app.command("explain")
def explain_command(
    number: Annotated[str, typer.Argument(help="caller number in any form")],
    digits: Annotated[
        str | None, typer.Option(help="digits pressed at the IVR dialect menu")
    ] = None,
    queues: Annotated[
        str, typer.Option(help="configured dialect queues, comma-separated")
    ] = ",".join(DEFAULT_QUEUES),
    customer: Annotated[
        bool, typer.Option(help="look the number up in the national record")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Explain which queue NUMBER would reach, at what priority, and why."""
    from hotline.routing.explain import explain

    queue_list = [q.strip() for q in queues.split(",") if q.strip()]
    facts, note, region = None, None, "CN"
    if customer:
        facts, note, region = _customer(number)
    result = explain(
        number, digits, customer=facts, customer_note=note, queues=queue_list, default_region=region
    )
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    console.print(
        f"[bold]{result['queue']}[/bold]  dialect={result['dialect']}  "
        f"priority={result['priority']}  source={result['source']}"
    )
    if result["account_manager"]:
        manager = result["account_manager"]
        console.print(f"account manager {manager['agent_id']} first for {manager['seconds']} s")
    for reason in result["reasons"]:
        console.print(f"  - {reason}", markup=False)


def _customer(number: str) -> tuple[CustomerFacts | None, str | None, str]:
    from pathlib import Path

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from hotline.db.session import make_engine, session_factory
    from hotline.routing.explain import lookup_customer
    from hotline.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        return None, f"no customer look-up: {exc}".splitlines()[0], "CN"
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        # do not create an empty database file just to find nobody in it
        return (
            None,
            "no customer look-up: the SQLite database does not exist",
            settings.default_region,
        )
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            facts, note = lookup_customer(session, number, settings.default_region)
    except SQLAlchemyError as exc:
        return (
            None,
            f"no customer look-up: database error {type(exc).__name__}",
            settings.default_region,
        )
    finally:
        engine.dispose()
    return facts, note, settings.default_region

"""``hotline route explain NUMBER``: the routing decision for a number, from a terminal.

Prints the same body as ``GET /api/routing/explain`` (:func:`hotline.routing.explain.explain`),
from the same settings the live routing reads: the region the number is read with
(``HOTLINE_DEFAULT_REGION``), the queues that exist (``HOTLINE_QUEUES``, unless ``--queues``
asks "what if") and the default queue. Invalid settings stop the command, as in every
``hotline`` command: an explanation computed from other values would not be the decision a
call gets. The customer look-up needs the database; when it is unreachable the explanation
is still given, without customer facts, and says so, because the usual question ("which
queue does this region go to?") does not need it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from hotline.routing.decision import CustomerFacts, caller_e164
from hotline.types import E164

if TYPE_CHECKING:
    from hotline.settings import Settings

__all__ = ["route_app"]

route_app = typer.Typer(help="Dialect routing.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


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
        str | None,
        typer.Option(help="dialect queues, comma-separated (default: HOTLINE_QUEUES)"),
    ] = None,
    customer: Annotated[
        bool, typer.Option(help="look the number up in the national record")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """Explain which queue NUMBER would reach, at what priority, and why."""
    from hotline.routing.explain import explain
    from hotline.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]", markup=True)
        raise typer.Exit(2) from None
    queue_list = (
        [q.strip() for q in queues.split(",") if q.strip()]
        if queues is not None
        else list(settings.queue_names)
    )
    e164 = caller_e164(number, settings.default_region)
    facts, note = _customer(settings, e164) if customer else (None, None)
    result = explain(
        number,
        e164,
        digits,
        customer=facts,
        customer_note=note,
        queues=queue_list,
        default_queue=settings.default_queue,
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


def _customer(settings: Settings, e164: E164 | None) -> tuple[CustomerFacts | None, str]:
    """The customer facts from the configured database, or none with the reason why."""
    from pathlib import Path

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from hotline.customers.lookup import lookup_customer
    from hotline.db.session import make_engine, session_factory

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        # do not create an empty database file just to find nobody in it
        return None, "no customer look-up: the SQLite database does not exist"
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            return lookup_customer(session, e164)
    except SQLAlchemyError as exc:
        return None, f"no customer look-up: database error {type(exc).__name__}"
    finally:
        engine.dispose()

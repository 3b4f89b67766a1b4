"""``hotline agents add|list|remove``: the agent directory from a terminal.

The same validation as ``PUT /api/agents/directory/{id}``
(:func:`hotline.agents.directory.save_agent`), so a skill typo is refused here too instead
of quietly keeping an agent out of a queue.
Nothing here talks to Asterisk: the running service re-applies membership at its next AMI
login, or at once through ``POST /api/agents/sync``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["agents_app"]

agents_app = typer.Typer(help="Agents: phone interfaces and dialect skills.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _sessions() -> tuple[Engine, sessionmaker[Session]]:
    """A sessionmaker on the configured database, migrated to head (first use just works)."""
    from hotline.db.session import make_engine, session_factory, upgrade
    from hotline.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]", markup=True)
        raise typer.Exit(2) from None
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return engine, session_factory(engine)


@agents_app.command("add")
def add_command(
    agent_id: Annotated[str, typer.Argument(help="agent id (the queue MemberName)")],
    interface: Annotated[str, typer.Option(help="phone interface, e.g. PJSIP/agent-1001")],
    skill: Annotated[
        list[str] | None,
        typer.Option(help="<dialect>:<native|good|fallback>, repeatable"),
    ] = None,
    name: Annotated[str, typer.Option(help="display name")] = "",
) -> None:
    """Add an agent, or replace the one with this id (interface, skills and name)."""
    from hotline.agents.directory import InterfaceInUseError, InvalidAgentError, save_agent

    engine, sessions = _sessions()
    try:
        with sessions() as session:
            row, created = save_agent(
                session, agent_id, interface=interface, skills=skill or [], name=name
            )
    except (InvalidAgentError, InterfaceInUseError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    verb = "added" if created else "updated"
    console.print(f"{verb} {row.id} {row.interface} {' '.join(row.skills)}", markup=False)


@agents_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON only")] = False,
) -> None:
    """List agents with interface and skills."""
    from sqlalchemy import select

    from hotline.db.models import Agent

    engine, sessions = _sessions()
    try:
        with sessions() as session:
            rows = session.scalars(select(Agent).order_by(Agent.id)).all()
    finally:
        engine.dispose()
    if as_json:
        items = [
            {"id": r.id, "name": r.name, "interface": r.interface, "skills": list(r.skills)}
            for r in rows
        ]
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    table = Table("id", "name", "interface", "skills")
    for r in rows:
        table.add_row(r.id, r.name, r.interface, " ".join(r.skills))
    console.print(table)


@agents_app.command("remove")
def remove_command(
    agent_id: Annotated[str, typer.Argument(help="agent id")],
) -> None:
    """Remove an agent (the next sync takes it out of its queues)."""
    from hotline.agents.directory import remove_agent

    engine, sessions = _sessions()
    try:
        with sessions() as session:
            removed = remove_agent(session, agent_id)
    finally:
        engine.dispose()
    if not removed:
        err.print(f"no agent {agent_id}", markup=False)
        raise typer.Exit(1)
    console.print(f"removed {agent_id}", markup=False)

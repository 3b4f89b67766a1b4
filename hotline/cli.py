"""The ``hotline`` command: serve, demo, the Asterisk lab, database and tokens."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hotline.agents.cli import agents_app
from hotline.customers.cli import gen_command, import_command
from hotline.lab import lab_config
from hotline.record.cli import reconcile_command
from hotline.routing.cli import route_app
from hotline.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="Hotline: call-centre backend on Asterisk.", no_args_is_help=True)
lab_app = typer.Typer(
    help="The Asterisk 22 lab (Debian sid chroot) and SIPp.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
dialplan_app = typer.Typer(help="Asterisk configuration.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(dialplan_app, name="dialplan")
app.add_typer(route_app, name="route")
app.add_typer(agents_app, name="agents")
app.command("import")(import_command)
app.command("gen")(gen_command)

console = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _logging(verbose: bool) -> None:
    """Our log format, and no API token in any line (``?token=`` of the pages' WebSockets
    is in uvicorn's request lines): :func:`hotline.api.logs.install_redaction`."""
    from hotline.api.logs import install_redaction

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_redaction()


# -- serve -----------------------------------------------------------------------------
@app.command()
def serve(
    bind: Annotated[str | None, typer.Option(help="host:port (default HOTLINE_API_BIND)")] = None,
    bridge: Annotated[bool, typer.Option(help="Run the AMI bridge in this process.")] = True,
    verbose: bool = False,
) -> None:
    """Run the HTTP API (and the AMI bridge feeding the call log)."""
    import uvicorn

    from hotline.api.app import create_app
    from hotline.api.logs import uvicorn_log_config
    from hotline.service import CallService

    _logging(verbose)
    settings = _settings()
    host, port = Settings.split_bind(bind or settings.api_bind)
    service = CallService(settings) if bridge else None
    uvicorn.run(
        create_app(settings, service=service),
        host=host,
        port=port,
        log_level="info",
        log_config=uvicorn_log_config(),  # its handlers redact tokens too
    )


# -- db and tokens -----------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    from hotline.db.session import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    console.print("schema is at head")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="agent, supervisor or admin")],
    name: Annotated[str, typer.Option(help="who holds it")],
    agent: Annotated[str | None, typer.Option(help="agent id, for agent tokens")] = None,
) -> None:
    """Print a new API token (shown once; only its hash is stored)."""
    from hotline.api.auth import Role, create_token
    from hotline.db.session import make_engine, upgrade

    try:
        role_value = Role(role)
    except ValueError:
        err.print(f"[red]--role must be one of: {', '.join(r.value for r in Role)}[/red]")
        raise typer.Exit(2) from None
    settings = _settings()
    upgrade(settings.database_url)
    token = create_token(
        make_engine(settings.database_url), role=role_value, name=name, agent_id=agent
    )
    console.print(token)


calls_app = typer.Typer(help="The call log.", invoke_without_command=True)
app.add_typer(calls_app, name="calls")
calls_app.command("reconcile")(reconcile_command)


@calls_app.callback()
def calls(ctx: typer.Context, limit: int = 20) -> None:
    """Show the newest rows of the call log (``hotline calls reconcile``: settle it)."""
    if ctx.invoked_subcommand is not None:
        return
    from sqlalchemy import select

    from hotline.db.models import CallLog
    from hotline.db.session import make_engine, session_factory, upgrade

    settings = _settings()
    upgrade(settings.database_url)
    with session_factory(make_engine(settings.database_url))() as session:
        rows = session.scalars(select(CallLog).order_by(CallLog.id.desc()).limit(limit)).all()
    table = Table(
        "linkedid", "caller", "name", "outcome", "queue", "agent", "wait", "talk", "settled"
    )
    for r in rows:
        table.add_row(
            r.linkedid,
            r.caller_e164 or r.caller_number,
            r.caller_name,
            r.outcome,
            r.queue or "",
            r.agent or "",
            f"{r.wait_seconds:.1f}" if r.wait_seconds is not None else "",
            f"{r.talk_seconds:.1f}" if r.talk_seconds is not None else "",
            r.settled_by or "",
        )
    console.print(table)


# -- the lab -------------------------------------------------------------------------------
@lab_app.command("up")
def lab_up() -> None:
    """Provision (once) and start Asterisk 22 with the rendered configuration."""
    from dialplans.lab import Lab, LabError
    from hotline.lab import prepare_record

    settings = _settings()
    prepare_record(settings)
    try:
        Lab(settings.lab_root).up(lab_config(settings), say=console.print)
    except LabError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@lab_app.command("down")
def lab_down() -> None:
    """Stop the lab's Asterisk."""
    from dialplans.lab import Lab

    stopped = Lab(_settings().lab_root).down()
    console.print("stopped" if stopped else "not running")


@lab_app.command("status")
def lab_status() -> None:
    """Is the chroot there, is Asterisk running, does the AMI answer?"""
    from dialplans.lab import Lab

    settings = _settings()
    status = Lab(settings.lab_root).status(lab_config(settings))
    console.print_json(json.dumps(status.as_dict()))
    if not status.ami_ready:
        raise typer.Exit(1)


@lab_app.command("call")
def lab_call(
    number: Annotated[str, typer.Option(help="caller number")] = "13800138000",
    name: Annotated[str, typer.Option(help="caller display name (UTF-8)")] = "张伟",
    queue: Annotated[str, typer.Option(help="queue to join (lab header)")] = "",
    hold: Annotated[float, typer.Option(help="seconds the caller stays after answer")] = 10.0,
    dtmf: Annotated[str, typer.Option(help="digits sent as SIP INFO after answer")] = "",
    count: Annotated[int, typer.Option(help="number of calls")] = 1,
    rate: Annotated[float, typer.Option(help="calls per second")] = 5.0,
    ivr_only: Annotated[bool, typer.Option(help="dial the IVR-only extension")] = False,
) -> None:
    """Place SIPp calls into the lab (the lab must be up)."""
    from dialplans.sipp import CallSpec, place_calls

    settings = _settings()
    cfg = lab_config(settings)
    calls = [CallSpec(number, name, queue=queue, dtmf=dtmf) for _ in range(count)]
    extra = {"exten": cfg.ivr_only_exten} if ivr_only else {}
    run = place_calls(calls, cfg, hold_seconds=hold, rate=rate, **extra)
    code = run.proc.returncode
    console.print(f"SIPp finished with exit code {code}")
    run.cleanup()
    raise typer.Exit(0 if code == 0 else 1)


@lab_app.command("record")
def lab_record(
    scenario: Annotated[list[str] | None, typer.Argument(help="scenarios (default: all)")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="fixture folder (default tests/fixtures/ami, or record)"),
    ] = None,
    asterisk_record: Annotated[
        bool,
        typer.Option(
            "--asterisk-record",
            help="also keep the CEL and queue_log lines Asterisk wrote (tests/fixtures/record)",
        ),
    ] = False,
) -> None:
    """Record raw AMI streams of lab scenarios as replay fixtures."""
    from dialplans.lab import Lab
    from dialplans.record import AMI_DEFAULT, RECORD_DEFAULT, SCENARIOS, record

    settings = _settings()
    names = scenario or list(RECORD_DEFAULT if asterisk_record else AMI_DEFAULT)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        err.print(f"[red]unknown scenario(s) {unknown}; known: {list(SCENARIOS)}[/red]")
        raise typer.Exit(2)
    folder = out or Path("tests/fixtures/record" if asterisk_record else "tests/fixtures/ami")
    lab = Lab(settings.lab_root)
    for path in record(lab, lab_config(settings), names, folder, asterisk_record=asterisk_record):
        console.print(f"wrote {path}")


@dialplan_app.command("render")
def dialplan_render(
    out: Annotated[
        Path | None, typer.Option(help="write files here instead of listing them")
    ] = None,
) -> None:
    """Render Asterisk's configuration from the settings."""
    from dialplans.config import render

    files = render(lab_config(_settings()))
    if out is None:
        for name, text in files.items():
            console.print(f"[bold]; ---- {name}[/bold]")
            sys.stdout.write(text)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    console.print(f"wrote {len(files)} files to {out}")


@app.command()
def demo(
    calls: Annotated[int, typer.Option(help="demo calls to place (0 = until Ctrl-C)")] = 0,
    interval: Annotated[float, typer.Option(help="seconds between demo calls")] = 4.0,
    verbose: bool = False,
) -> None:
    """Lab up, API up, agents' phones ringing and a trickle of demo calls; prints the URLs."""
    from hotline.demo import run_demo

    _logging(verbose)
    raise typer.Exit(run_demo(_settings(), calls=calls, interval=interval, console=console))


if __name__ == "__main__":  # pragma: no cover
    app()

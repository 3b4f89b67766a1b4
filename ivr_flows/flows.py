"""Declarative IVR flows: a small step language in TOML, and the runner that plays it.

Why TOML: it is in the standard library (``tomllib``), so no dependency; it is data, not
code, so a flow file cannot run anything and can be reviewed by people who do not write
Python; it has comments and takes Chinese text as is; and unlike YAML it never turns a
menu key into a number or a boolean (``1``, ``no``): menu digits are quoted strings.
Every file is validated when loaded (unknown step types or keys, dangling ``next``,
unknown prompts), so a typo fails at start-up, not on a caller.

A flow is a ``start`` step name and a ``[steps.<name>]`` table per step. Step types:

=========  ===========================================================================
answer     ``ANSWER``; ``next``
play       ``STREAM FILE`` of ``prompt``; ``next``
menu       ``GET DATA prompt timeout_ms max_digits``; ``choices = {"1" = step}``;
           ``attempts`` tries in all (timeout or invalid digit → ``timeout_prompt`` /
           ``invalid_prompt`` and again), then ``default``; ``store`` keeps the digits
set        ``local = {NAME = "template"}`` flow variables, ``channel = {NAME = ...}``
           channel variables (``SET VARIABLE``); ``next``
action     calls the injected coroutine named ``action``; its :class:`ActionResult`
           sets variables and may pick ``branches[label]``; ``on_error`` on exception
event      ``UserEvent(event, headers...)``; ``next``
ivr_step   ``UserEvent(IvrStep, Step: <step>)``, the call log's IVR path; ``next``
branch     ``cases[vars[var]]``, else ``default``
goto       ``next``
end        stops with ``result``
=========  ===========================================================================

Prompts are logical names resolved through the flow's ``[prompts]`` table, which the
deployment can override (the lab has only Asterisk's English core prompts). Values are
``string.Template`` text (``$CUSTOMER_ID``, ``${IVR_DIALECT}``); a missing variable
renders empty. Flow variables are seeded from the session: ``CALLER_NUMBER``,
``CALLER_NAME``, ``UNIQUEID``, ``CHANNEL``, ``ARG1``…``ARGn`` and ``Q_<key>`` per query item.
"""

from __future__ import annotations

import logging
import string
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ivr_flows.agi import AGIError, AGISession, CallerGone

__all__ = [
    "AGI_ERROR",
    "CALLER_GONE",
    "ERROR",
    "FLOW_DIR",
    "LOOP",
    "ActionResult",
    "Flow",
    "FlowAction",
    "FlowContext",
    "FlowDefinitionError",
    "FlowOutcome",
    "Step",
    "load_flow",
    "load_flows",
    "parse_flow",
    "run_flow",
    "seed_vars",
]

log = logging.getLogger(__name__)

FLOW_DIR = Path(__file__).parent / "flows"

# Results the runner gives itself (a flow's own ``end`` results are free text).
CALLER_GONE = "caller_gone"
AGI_ERROR = "agi_error"
ERROR = "error"
LOOP = "loop"

_COMMON = {"type", "next"}
_KEYS: dict[str, set[str]] = {
    "answer": _COMMON,
    "play": _COMMON | {"prompt"},
    "menu": {
        "type",
        "prompt",
        "choices",
        "timeout_ms",
        "max_digits",
        "attempts",
        "invalid_prompt",
        "timeout_prompt",
        "store",
        "default",
    },
    "set": _COMMON | {"local", "channel"},
    "action": _COMMON | {"action", "branches", "on_error"},
    "event": _COMMON | {"event", "headers"},
    "ivr_step": _COMMON | {"step"},
    "branch": {"type", "var", "cases", "default"},
    "goto": _COMMON,
    "end": {"type", "result"},
}
_NEEDS_NEXT = {"answer", "play", "set", "action", "event", "ivr_step", "goto"}
_DIGITS = set("0123456789*#")


class FlowDefinitionError(ValueError):
    """A flow file that cannot run; ``problems`` lists every fault found, not just one."""

    def __init__(self, name: str, problems: list[str]) -> None:
        super().__init__(f"flow {name!r}: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One parsed step. Fields a type does not use keep their defaults."""

    name: str
    type: str
    next: str | None = None
    prompt: str | None = None
    choices: Mapping[str, str] = field(default_factory=dict)
    timeout_ms: int = 5000
    max_digits: int = 1
    attempts: int = 3
    invalid_prompt: str | None = None
    timeout_prompt: str | None = None
    store: str | None = None
    default: str | None = None
    local: Mapping[str, str] = field(default_factory=dict)
    channel: Mapping[str, str] = field(default_factory=dict)
    action: str | None = None
    branches: Mapping[str, str] = field(default_factory=dict)
    on_error: str | None = None
    event: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    step: str | None = None
    var: str | None = None
    cases: Mapping[str, str] = field(default_factory=dict)
    result: str = "done"


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    start: str
    steps: Mapping[str, Step]
    prompts: Mapping[str, str]
    description: str = ""

    @property
    def actions(self) -> frozenset[str]:
        """Action names the flow calls: the context must provide each."""
        return frozenset(s.action for s in self.steps.values() if s.action)


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an injected action gives back: variables to set and an optional branch label."""

    channel: Mapping[str, str] = field(default_factory=dict)
    vars: Mapping[str, str] = field(default_factory=dict)
    branch: str | None = None


# An action sees the flow's variables (read-only) and returns data; the runner does the I/O.
FlowAction = Callable[[Mapping[str, str]], Awaitable[ActionResult]]


@dataclass(slots=True)
class FlowContext:
    """Per-run inputs: extra flow variables and the actions the flow may call."""

    vars: Mapping[str, str] = field(default_factory=dict)
    actions: Mapping[str, FlowAction] = field(default_factory=dict)
    max_steps: int = 200


@dataclass(slots=True)
class FlowOutcome:
    """What happened: the steps taken, the channel variables set, and how it ended.

    ``path`` holds step names, with menu results as ``"<menu>:<digits>"``,
    ``"<menu>:timeout"``, ``"<menu>:invalid"``, ``"<menu>:default"`` and failed actions as
    ``"<step>:error"``. ``result`` is the ``end`` step's result, or ``caller_gone``,
    ``agi_error``, ``error`` or ``loop``.
    """

    flow: str
    result: str = ""
    path: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def completed(self) -> bool:
        return self.result not in (CALLER_GONE, AGI_ERROR, ERROR, LOOP)


# -- loading ----------------------------------------------------------------------------


def load_flow(source: str | Path, prompts: Mapping[str, str] | None = None) -> Flow:
    """Load a flow by name (from :data:`FLOW_DIR`) or path; ``prompts`` override the file's."""
    path = Path(source)
    if path.suffix != ".toml":
        path = FLOW_DIR / f"{source}.toml"
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return parse_flow(data, name=path.stem, prompts=prompts)


def load_flows(
    directory: Path = FLOW_DIR, prompts: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, Flow]:
    """Every ``*.toml`` in ``directory``, keyed by file stem; ``prompts`` per flow name."""
    prompts = prompts or {}
    return {p.stem: load_flow(p, prompts.get(p.stem)) for p in sorted(directory.glob("*.toml"))}


def parse_flow(
    data: Mapping[str, Any], *, name: str, prompts: Mapping[str, str] | None = None
) -> Flow:
    """Validate a decoded flow document; raises :class:`FlowDefinitionError` with all faults."""
    problems: list[str] = []
    table = {str(k): str(v) for k, v in dict(data.get("prompts", {})).items()}
    table.update(prompts or {})
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, Mapping) or not raw_steps:
        raise FlowDefinitionError(name, ["no [steps] table"])
    steps: dict[str, Step] = {}
    for step_name, raw in raw_steps.items():
        step = _parse_step(str(step_name), raw, table, problems)
        if step is not None:
            steps[step.name] = step
    start = data.get("start")
    if start not in raw_steps:
        problems.append(f"start step {start!r} does not exist")
    for step in steps.values():
        for target in _targets(step):
            if target not in raw_steps:
                problems.append(f"step {step.name!r} goes to unknown step {target!r}")
    unknown_top = set(data) - {"name", "description", "start", "steps", "prompts"}
    if unknown_top:
        problems.append(f"unknown top-level keys {sorted(unknown_top)}")
    if problems:
        raise FlowDefinitionError(name, problems)
    return Flow(
        name=str(data.get("name", name)),
        start=str(start),
        steps=MappingProxyType(steps),
        prompts=MappingProxyType(table),
        description=str(data.get("description", "")),
    )


def _parse_step(
    name: str, raw: Any, prompts: Mapping[str, str], problems: list[str]
) -> Step | None:
    if not isinstance(raw, Mapping):
        problems.append(f"step {name!r} is not a table")
        return None
    kind = raw.get("type")
    if kind not in _KEYS:
        problems.append(f"step {name!r} has unknown type {kind!r}")
        return None
    extra = set(raw) - _KEYS[kind]
    if extra:
        problems.append(f"step {name!r} ({kind}) has unknown keys {sorted(extra)}")
    if kind in _NEEDS_NEXT and not raw.get("next"):
        problems.append(f"step {name!r} ({kind}) needs next")
    fields: dict[str, Any] = {k: v for k, v in raw.items() if k in _KEYS[kind] and k != "type"}
    for key in ("prompt", "invalid_prompt", "timeout_prompt"):
        if key in fields and fields[key] not in prompts:
            problems.append(f"step {name!r}: prompt {fields[key]!r} not in [prompts]")
    for key in ("choices", "local", "channel", "branches", "headers", "cases"):
        if key in fields:
            if not isinstance(fields[key], Mapping):
                problems.append(f"step {name!r}: {key} must be a table")
                fields.pop(key)
            else:
                fields[key] = MappingProxyType({str(k): str(v) for k, v in fields[key].items()})
    if kind == "menu":
        if "prompt" not in fields or "default" not in fields or not fields.get("choices"):
            problems.append(f"step {name!r} (menu) needs prompt, choices and default")
        for digits in fields.get("choices", {}):
            if not digits or not set(digits) <= _DIGITS:
                problems.append(f"step {name!r}: choice {digits!r} is not DTMF digits")
        for key, low, high in (
            ("attempts", 1, 10),
            ("max_digits", 1, 32),
            ("timeout_ms", 0, 60000),
        ):
            value = fields.get(key, 1)
            if not isinstance(value, int) or not low <= value <= high:
                problems.append(f"step {name!r}: {key} must be an integer {low}..{high}")
    if kind == "play" and "prompt" not in fields:
        problems.append(f"step {name!r} (play) needs prompt")
    if kind == "action" and not fields.get("action"):
        problems.append(f"step {name!r} (action) needs action")
    if kind == "event" and not fields.get("event"):
        problems.append(f"step {name!r} (event) needs event")
    if kind == "ivr_step" and not fields.get("step"):
        problems.append(f"step {name!r} (ivr_step) needs step")
    if kind == "branch" and (not fields.get("var") or not fields.get("default")):
        problems.append(f"step {name!r} (branch) needs var and default")
    try:
        return Step(name=name, type=kind, **fields)
    except TypeError as exc:
        problems.append(f"step {name!r}: {exc}")
        return None


def _targets(step: Step) -> list[str]:
    out = [t for t in (step.next, step.default, step.on_error) if t]
    out += list(step.choices.values()) + list(step.branches.values()) + list(step.cases.values())
    return out


# -- running ------------------------------------------------------------------------------


class _Vars(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _render(template: str, variables: Mapping[str, str]) -> str:
    return string.Template(template).safe_substitute(_Vars(variables))


def seed_vars(session: AGISession) -> dict[str, str]:
    """The flow variables every run starts with, taken from the AGI headers."""
    out = {
        "CALLER_NUMBER": session.caller_number or "",
        "CALLER_NAME": session.caller_name or "",
        "UNIQUEID": session.uniqueid,
        "CHANNEL": session.channel,
    }
    for i, value in enumerate(session.args, start=1):
        out[f"ARG{i}"] = value
    for key, value in session.query.items():
        if key.isidentifier():
            out[f"Q_{key}"] = value
    return out


async def run_flow(flow: Flow, session: AGISession, context: FlowContext) -> FlowOutcome:
    """Play ``flow`` on ``session``; never raises for the caller's or Asterisk's doing.

    A hang-up (:class:`CallerGone`) ends the run with ``result="caller_gone"``, an AGI
    fault with ``"agi_error"``; either way the outcome still lists the path taken and
    the variables already set, which is what the call log wants. Programming errors in
    the flow runner itself do propagate (the server logs and counts them).
    """
    missing = flow.actions - set(context.actions)
    outcome = FlowOutcome(flow=flow.name)
    if missing:
        outcome.result, outcome.error = ERROR, f"actions not provided: {sorted(missing)}"
        return outcome
    variables = _Vars({**seed_vars(session), **context.vars})
    outcome.vars = variables
    current: str | None = flow.start
    try:
        for _ in range(context.max_steps):
            step = flow.steps[current or ""]
            outcome.path.append(step.name)
            if step.type == "end":
                outcome.result = _render(step.result, variables)
                return outcome
            current = await _run_step(flow, step, session, context, variables, outcome)
            if current is None:
                return outcome
        outcome.result, outcome.error = LOOP, f"more than {context.max_steps} steps"
        log.warning("flow %s on %s: step limit reached", flow.name, session.uniqueid)
    except CallerGone as exc:
        outcome.result, outcome.error = CALLER_GONE, exc.reason
    except AGIError as exc:
        outcome.result, outcome.error = AGI_ERROR, f"{type(exc).__name__}: {exc}"
    return outcome


async def _run_step(
    flow: Flow,
    step: Step,
    session: AGISession,
    context: FlowContext,
    variables: dict[str, str],
    outcome: FlowOutcome,
) -> str | None:
    """Run one step and return the next step's name (``None`` stops the run)."""
    kind = step.type
    if kind == "answer":
        await session.answer()
    elif kind == "play":
        await session.stream_file(flow.prompts[step.prompt or ""])
    elif kind == "menu":
        return await _run_menu(flow, step, session, variables, outcome)
    elif kind == "set":
        for name, template in step.local.items():
            variables[name] = _render(template, variables)
        await _set_channel(session, step.channel, variables, outcome, render=True)
    elif kind == "action":
        action = context.actions[step.action or ""]
        try:
            result = await action(MappingProxyType(dict(variables)))
        except AGIError:
            raise
        except Exception as exc:  # an injected look-up or router failing must not drop the call
            log.warning(
                "flow %s on %s: action %s raised %s",
                flow.name,
                session.uniqueid,
                step.action,
                type(exc).__name__,
                exc_info=True,
            )
            outcome.path.append(f"{step.name}:error")
            if step.on_error:
                return step.on_error
            outcome.result, outcome.error = ERROR, f"action {step.action} raised"
            return None
        variables.update({str(k): str(v) for k, v in result.vars.items()})
        await _set_channel(session, result.channel, variables, outcome, render=False)
        if result.branch is not None and result.branch in step.branches:
            return step.branches[result.branch]
    elif kind == "event":
        headers = {k: _render(v, variables) for k, v in step.headers.items()}
        await session.user_event(step.event or "", headers)
    elif kind == "ivr_step":
        await session.user_event("IvrStep", {"Step": _render(step.step or "", variables)})
    elif kind == "branch":
        return step.cases.get(variables.get(step.var or "", ""), step.default)
    return step.next


async def _set_channel(
    session: AGISession,
    values: Mapping[str, str],
    variables: dict[str, str],
    outcome: FlowOutcome,
    *,
    render: bool,
) -> None:
    for name, value in values.items():
        text = _render(value, variables) if render else str(value)
        await session.set_variable(name, text)
        outcome.variables[name] = text


async def _run_menu(
    flow: Flow, step: Step, session: AGISession, variables: dict[str, str], outcome: FlowOutcome
) -> str | None:
    """Ask up to ``attempts`` times; a timeout or an unknown choice asks again.

    ``GET DATA`` returns the digits typed before the timeout too (``200 result=12
    (timeout)``), so a short entry that matches a choice counts as that choice.
    """
    prompt = flow.prompts[step.prompt or ""]
    for attempt in range(1, step.attempts + 1):
        digits, _timed_out = await session.get_data(prompt, step.timeout_ms, step.max_digits)
        if not digits:
            outcome.path.append(f"{step.name}:timeout")
            if step.timeout_prompt and attempt < step.attempts:
                await session.stream_file(flow.prompts[step.timeout_prompt])
            continue
        target = step.choices.get(digits)
        if target is None:
            outcome.path.append(f"{step.name}:invalid")
            if step.invalid_prompt:
                await session.stream_file(flow.prompts[step.invalid_prompt])
            continue
        outcome.path.append(f"{step.name}:{digits}")
        if step.store:
            variables[step.store] = digits
        return target
    outcome.path.append(f"{step.name}:default")
    return step.default

"""Imports run one way: the layers of ``hotline``, ``screenpop``, ``ivr_flows`` and ``dialplans``.

A module may import from its own layer's package and from any layer *below* it, never from
one above. The layers, top to bottom (each line one layer; siblings on a line may not
import one another):

    hotline.cli                      the ``hotline`` command; wires every subcommand
    hotline.demo                     ``hotline demo``: lab + service + API in one process
    hotline.api                      HTTP and WebSocket routes
    hotline.service                  the running service: AMI fan-out, call-log writer, AGI
    hotline.ivr                      the IVR's wiring: flows + routing + the pop
    screenpop | hotline.live | hotline.agents
    hotline.record                   Asterisk's own record (CEL, queue_log), the reconciler
    hotline.calls                    call tracking and the call log
    hotline.customers                the national record: number owners, customer view
    hotline.matching                 caller matching (names, places, addresses)
    ivr_flows                        the generic FastAGI framework and TOML flows
    hotline.routing                  number location, the routing decision, skills
    hotline.lab                      the lab's config from the settings
    hotline.ami | hotline.bus | hotline.db | dialplans | hotline.settings
    hotline.phones                   the one to_e164
    hotline.types                    ids, stream names: imports nothing of ours

A package's ``cli.py`` (``hotline agents``, ``hotline routing explain``, ...) is that
package's terminal front end, as ``hotline.api`` is its HTTP one: it belongs with
``hotline.cli`` at the top, whatever package it is filed in. So its own imports are left out
of the layer and cycle checks; instead it may import anything except another front end
(``hotline.cli``, ``hotline.demo``, ``hotline.api``, another ``cli``), and only
``hotline.cli`` may import it.

Two cuts differ from a flat "domain / infrastructure" split, because the code asks for them:
``hotline.calls`` sits above ``hotline.customers`` (the call-log writer is to apply the
single-owner rule of a number, which ``customers`` owns; number owners know nothing of
calls), and
``ivr_flows`` sits just above ``hotline.routing`` with an allow-list of its own (it may read
routing's decision types, ``phones`` and ``types``, nothing else of ours), so the framework
stays reusable while the IVR's route step can speak routing's language.

Besides the layers: no cycles between packages, nothing imports ``tests``, ``hotline.db``
imports only ``hotline.types`` of ours, and migrations import no live code at all (a
migration replays history, so it carries a frozen copy of any helper it needs).

Every failure message lists the offending import chains with line numbers.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import grimp
import pytest

PACKAGES = ("hotline", "screenpop", "ivr_flows", "dialplans")
ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "hotline" / "db" / "migrations"

# Top to bottom; a tuple of several names is one layer of independent siblings.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("hotline.cli",),
    ("hotline.demo",),
    ("hotline.api",),
    ("hotline.service",),
    ("hotline.ivr",),
    ("screenpop", "hotline.live", "hotline.agents"),
    ("hotline.record",),
    ("hotline.calls",),
    ("hotline.customers",),
    ("hotline.matching",),
    ("ivr_flows",),
    ("hotline.routing",),
    ("hotline.lab",),
    ("hotline.ami", "hotline.bus", "hotline.db", "dialplans", "hotline.settings"),
    ("hotline.phones",),
    ("hotline.types",),
)

# The front ends, where every package's cli.py belongs too.
TOP = ("hotline.cli", "hotline.demo", "hotline.api")

# Packages whose imports of our own code are limited to a short list.
ALLOWED_IMPORTS: dict[str, tuple[str, ...]] = {
    "ivr_flows": ("hotline.routing", "hotline.phones", "hotline.types"),
    "hotline.db": ("hotline.types",),
}

# Alembic's env.py is how alembic finds the models' metadata and the database URL.
MIGRATIONS_ENV_ALLOWED = ("hotline.db", "hotline.settings")


def build() -> grimp.ImportGraph:
    # External packages are kept (squashed) so that an import of ``tests`` shows up.
    return grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)


def front_ends(graph: grimp.ImportGraph) -> list[str]:
    """``hotline.<package>.cli`` modules: terminal front ends filed inside a package."""
    return sorted(
        m
        for m in graph.modules
        if m.startswith("hotline.") and m.count(".") == 2 and m.endswith(".cli")
    )


def detach_front_ends(graph: grimp.ImportGraph) -> grimp.ImportGraph:
    """The graph without the front ends' own imports (they are checked on their own)."""
    for module in front_ends(graph):
        for imported in graph.find_modules_directly_imported_by(module):
            graph.remove_import(importer=module, imported=imported)
    return graph


@pytest.fixture(scope="module")
def full_graph() -> grimp.ImportGraph:
    return build()


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return detach_front_ends(build())


def component(module: str) -> str:
    """The package a module belongs to for layering: ``hotline.<child>`` or the top package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "hotline" and len(parts) > 1 else parts[0]


def ours(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules if m.split(".")[0] in PACKAGES)


def hop(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    lines = sorted(
        {d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)}
    )
    return f"{importer}:{','.join(map(str, lines)) or '?'}"


def chain_text(graph: grimp.ImportGraph, chain: tuple[str, ...]) -> str:
    """``a:12 -> b:40 -> c``: each module with the line numbers of its import of the next."""
    return " -> ".join([hop(graph, a, b) for a, b in itertools.pairwise(chain)] + [chain[-1]])


# -- the checks (each returns readable violations; the tests assert none) ----------------


def layer_violations(graph: grimp.ImportGraph) -> list[str]:
    layers = [grimp.Layer(*names, independent=True) for names in LAYERS]
    found = []
    for dep in graph.find_illegal_dependencies_for_layers(layers=layers):
        for route in dep.routes:
            for head, tail in itertools.product(sorted(route.heads), sorted(route.tails)):
                chain = (head, *route.middle, tail)
                found.append(f"{dep.importer} imports {dep.imported}: {chain_text(graph, chain)}")
    return sorted(found)


def unlayered(graph: grimp.ImportGraph) -> list[str]:
    layered = {name for names in LAYERS for name in names}
    return sorted({component(m) for m in ours(graph)} - layered - {"hotline"})


def package_cycles(graph: grimp.ImportGraph) -> list[str]:
    components = sorted({component(m) for m in ours(graph)} - {"hotline"})
    found = []
    for a, b in itertools.combinations(components, 2):
        there = graph.find_shortest_chain(importer=a, imported=b, as_packages=True)
        back = graph.find_shortest_chain(importer=b, imported=a, as_packages=True)
        if there and back:
            found.append(
                f"{a} <-> {b}: {chain_text(graph, there)}  AND BACK  {chain_text(graph, back)}"
            )
    return found


def front_end_violations(graph: grimp.ImportGraph) -> list[str]:
    found = []
    ends = front_ends(graph)
    for module in ends:
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if component(imported) in TOP or imported in ends:
                found.append(
                    f"front end imports a front end: {chain_text(graph, (module, imported))}"
                )
        for importer in sorted(graph.find_modules_that_directly_import(module)):
            if importer != "hotline.cli":
                found.append(
                    f"only hotline.cli may import it: {chain_text(graph, (importer, module))}"
                )
    return found


def imports_of_tests(graph: grimp.ImportGraph) -> list[str]:
    if "tests" not in graph.modules:
        return []
    return sorted(
        hop(graph, m, "tests") + " -> tests"
        for m in graph.find_modules_that_directly_import("tests")
        if m.split(".")[0] in PACKAGES
    )


def outside_allow_list(graph: grimp.ImportGraph, package: str) -> list[str]:
    allowed = (package, *ALLOWED_IMPORTS[package])
    found = []
    for module in ours(graph):
        if component(module) != package:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported.split(".")[0] not in PACKAGES:
                continue  # third-party
            if not any(imported == a or imported.startswith(a + ".") for a in allowed):
                found.append(chain_text(graph, (module, imported)))
    return found


def imported_names(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in a file, ``(line, module)``, wherever it is written."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def migration_violations(directory: Path = MIGRATIONS) -> list[str]:
    """Migrations are not a package (alembic loads them by path), so grimp cannot see them."""
    found = []
    for path in sorted(directory.rglob("*.py")):
        allowed = MIGRATIONS_ENV_ALLOWED if path.name == "env.py" else ()
        for line, name in imported_names(path):
            if name.split(".")[0] not in PACKAGES:
                continue
            if not any(name == a or name.startswith(a + ".") for a in allowed):
                shown = path.relative_to(ROOT if path.is_relative_to(ROOT) else directory.parent)
                found.append(f"{shown}:{line} imports {name}")
    return found


def report(title: str, violations: list[str]) -> str:
    return f"{title} ({len(violations)}):\n  " + "\n  ".join(violations)


# -- tests ---------------------------------------------------------------------------------


def test_every_package_is_in_a_layer(graph: grimp.ImportGraph) -> None:
    missing = unlayered(graph)
    assert not missing, report("packages in no layer: add them to LAYERS", missing)


def test_no_module_imports_from_a_higher_layer(graph: grimp.ImportGraph) -> None:
    violations = layer_violations(graph)
    assert not violations, report("imports from a higher layer", violations)


def test_no_import_cycles_between_packages(graph: grimp.ImportGraph) -> None:
    cycles = package_cycles(graph)
    assert not cycles, report("import cycles between packages", cycles)


def test_package_front_ends_stay_at_the_top(full_graph: grimp.ImportGraph) -> None:
    found = front_end_violations(full_graph)
    assert not found, report("package cli modules out of place", found)


def test_nothing_imports_tests(full_graph: grimp.ImportGraph) -> None:
    found = imports_of_tests(full_graph)
    assert not found, report("application code importing tests", found)


@pytest.mark.parametrize("package", sorted(ALLOWED_IMPORTS))
def test_package_imports_only_its_allow_list(full_graph: grimp.ImportGraph, package: str) -> None:
    found = outside_allow_list(full_graph, package)
    assert not found, report(f"{package} imports outside {ALLOWED_IMPORTS[package]}", found)


def test_migrations_import_no_live_code() -> None:
    assert MIGRATIONS.is_dir()
    found = migration_violations()
    assert not found, report("migrations importing live code", found)


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """Each check reports what it must: imports planted in a fresh graph and a fake migration."""
    graph = detach_front_ends(build())
    plant = [
        ("hotline.types", "hotline.api"),  # upward
        ("hotline.db", "tests"),  # application code importing tests
        ("ivr_flows.app", "hotline.matching.keys"),  # outside ivr_flows' allow-list
        ("hotline.api.app", "hotline.routing.cli"),  # a front end imported by a non-cli
    ]
    for number, (importer, imported) in enumerate(plant, start=1):
        graph.add_import(
            importer=importer, imported=imported, line_number=number, line_contents="…"
        )
    assert "hotline.types imports hotline.api: hotline.types:1 -> hotline.api" in (
        layer_violations(graph)
    )
    assert any(c.startswith("hotline.api <-> hotline.types: ") for c in package_cycles(graph))
    assert imports_of_tests(graph) == ["hotline.db:2 -> tests"]
    assert "ivr_flows.app:3 -> hotline.matching.keys" in outside_allow_list(graph, "ivr_flows")
    assert (
        "only hotline.cli may import it: hotline.api.app:4 -> hotline.routing.cli"
        in front_end_violations(graph)
    )

    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (tmp_path / "migrations" / "env.py").write_text("from hotline.db.models import Base\n")
    (versions / "0099_x.py").write_text(
        "import sqlalchemy\n\ndef f():\n    import hotline.phones\n"
    )
    assert migration_violations(tmp_path / "migrations") == [
        "migrations/versions/0099_x.py:4 imports hotline.phones"
    ]

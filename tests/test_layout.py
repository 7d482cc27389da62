"""The package layout: no import cycle (type-only imports included), and each folder imports only what its role allows.

The graph is built from the source with `ast`: every ``import domainfit...``
and ``from domainfit... import ...`` counts, wherever it stands (module level,
inside a function, under ``if TYPE_CHECKING:``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import domainfit

PACKAGE = Path(domainfit.__file__).parent
#: Packages that do the work and know nothing of the workspace or the command line.
CAPABILITIES = (
    "data",
    "text",
    "retrieval",
    "evaluation",
    "synth",
    "mine",
    "train",
    "compress",
    "recipe",
    "budget",
    "monitor",
    "migrate",
    "index",
    "serve",
)
WORKSPACE = "domainfit.core.workspace"


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an import names: the longest dotted prefix that is one of ours."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Map each module to the modules of ours it imports (anywhere in its source)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            for target in targets:
                if target.split(".")[0] != "domainfit":
                    continue
                found = _resolve(target, modules)
                if found is not None and found != name:
                    graph[name].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _in(module: str, package: str) -> bool:
    return module == f"domainfit.{package}" or module.startswith(f"domainfit.{package}.")


def test_the_graph_sees_function_level_and_type_only_imports():
    graph = import_graph()
    # imported inside a function body only
    assert "domainfit.data.beir" in graph["domainfit.cli.validate"]
    # imported under `if TYPE_CHECKING:` only
    assert "domainfit.data.beir" in graph["domainfit.data.judged"]


def test_there_is_no_import_cycle():
    assert _cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_capabilities_know_nothing_of_stages_cli_render_or_the_workspace():
    bad = []
    for module, targets in import_graph().items():
        if not any(_in(module, package) for package in CAPABILITIES):
            continue
        for target in targets:
            if _in(target, "stages") or _in(target, "cli") or _in(target, "render") or target == WORKSPACE:
                bad.append(f"{module} -> {target}")
    assert bad == []


def test_render_and_core_stay_below_the_stages():
    bad = []
    for module, targets in import_graph().items():
        if _in(module, "render"):
            bad += [f"{module} -> {t}" for t in targets if _in(t, "stages") or _in(t, "cli")]
        if _in(module, "core"):
            bad += [f"{module} -> {t}" for t in targets if not _in(t, "core") and t != "domainfit"]
    assert bad == []


def test_only_the_command_line_imports_the_command_line():
    bad = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        if not _in(module, "cli")
        for target in targets
        if _in(target, "cli")
    ]
    assert bad == []


def test_the_root_config_composes_sections_and_imports_no_stage():
    targets = import_graph()["domainfit.config"]
    assert not [t for t in targets if _in(t, "stages") or _in(t, "cli") or _in(t, "render") or t == WORKSPACE]


def test_at_most_six_modules_at_the_top_of_the_package():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top


def test_every_capability_defines_its_settings_in_its_own_config_module():
    for package in CAPABILITIES:
        assert (PACKAGE / package / "config.py").is_file(), package

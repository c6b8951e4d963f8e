"""The package's walls, read from the source with ast: who may import what, and no import circles.

The rooms and their rules are written in each subpackage's ``__init__`` docstring and in the
README's layout section; this test is what keeps them true. Imports inside functions count
(they run too); imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "whatnext"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path) -> set[str]:
    """Every module imported by ``path`` at run time (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                subs = [f"{base}.{a.name}" for a in child.names if f"{base}.{a.name}" in MODULES]
                found.update(subs)  # `from whatnext import engine` imports the module whatnext.engine
                if len(subs) < len(child.names):  # a name defined in the package itself
                    found.add(base)
            visit(child)

    visit(tree)
    return found


IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def _internal(name: str) -> set[str]:
    return {m for m in IMPORTS[name] if m in MODULES}


def _inside(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def _importers(top: str) -> list[str]:
    return sorted(m for m, deps in IMPORTS.items() if any(_inside(d, top) for d in deps))


def test_the_package_was_found() -> None:
    assert "whatnext.engine" in MODULES and "whatnext.cli" in MODULES and len(MODULES) > 20


@pytest.mark.parametrize("library", ["typer", "rich", "click"])
def test_only_the_cli_imports_terminal_libraries(library: str) -> None:
    offenders = [m for m in _importers(library) if not _inside(m, "whatnext.cli")]
    assert not offenders, f"{library} imported outside whatnext.cli by {offenders}"


@pytest.mark.parametrize("room", ["whatnext.config", "whatnext.data", "whatnext.search", "whatnext.errors"])
def test_torch_free_rooms(room: str) -> None:
    offenders = [m for m in _importers("torch") if _inside(m, room)]
    assert not offenders, f"{offenders} import torch; {room} must stay usable without it"


@pytest.mark.parametrize("module", ["whatnext.evaluation.metrics", "whatnext.evaluation.diversify"])
def test_pure_array_modules_import_nothing_of_whatnext(module: str) -> None:
    """Metrics are pure functions over arrays; the learning code may use these two without a circle."""
    mine = [m for m in IMPORTS[module] if _inside(m, "whatnext")]
    assert not mine, f"{module} imports {mine}"


def test_learning_code_uses_only_the_pure_part_of_evaluation() -> None:
    pure = {"whatnext.evaluation.metrics", "whatnext.evaluation.diversify"}
    for m in MODULES:
        if _inside(m, "whatnext.rl"):
            bad = [d for d in _internal(m) if _inside(d, "whatnext.evaluation") and d not in pure]
            assert not bad, f"{m} imports {bad}"


def test_the_algorithm_registry_does_not_import_the_agent() -> None:
    assert "whatnext.rl.agent" not in IMPORTS["whatnext.rl.algorithms"]


def test_nothing_below_the_doors_imports_engine_or_cli() -> None:
    doors = ("whatnext.engine", "whatnext.cli", "whatnext.__main__")
    for door in ("whatnext.engine", "whatnext.cli"):
        offenders = [m for m in _importers(door) if not any(_inside(m, d) for d in doors)]
        assert not offenders, f"{offenders} import {door}; only the CLI and __main__ may"


def test_serving_stays_below_the_doors() -> None:
    """Serving may use everything below the engine; never the engine, the CLI or the terminal libraries."""
    serving = [m for m in MODULES if _inside(m, "whatnext.serving")]
    assert "whatnext.serving.recommender" in serving
    for m in serving:
        bad = [d for d in IMPORTS[m] if any(_inside(d, x) for x in ("whatnext.engine", "whatnext.cli", "typer", "rich", "click"))]
        assert not bad, f"{m} imports {bad}"


def test_heavy_serving_libraries_stay_in_serving() -> None:
    """fastapi, uvicorn and prometheus_client are imported only by the serving room (and only when serving)."""
    for library in ("fastapi", "uvicorn", "prometheus_client", "starlette"):
        offenders = [m for m in _importers(library) if not _inside(m, "whatnext.serving")]
        assert not offenders, f"{library} imported outside whatnext.serving by {offenders}"
    eager = [m for m in ("whatnext.serving", "whatnext.serving.recommender") if IMPORTS[m] & {"fastapi", "uvicorn"}]
    assert not eager


def test_ground_floor_imports_only_the_ground_floor() -> None:
    ground = {"whatnext.errors", "whatnext.checkpoints", "whatnext.runlock", "whatnext.safefiles", "whatnext.search"}
    for m in ground:
        assert _internal(m) <= ground, f"{m} imports {_internal(m) - ground}"


def test_config_and_data_sit_below_the_learning_code() -> None:
    upper = ("whatnext.models", "whatnext.rl", "whatnext.evaluation", "whatnext.serving")
    for m in MODULES:
        if _inside(m, "whatnext.config") or _inside(m, "whatnext.data"):
            bad = [d for d in _internal(m) if any(_inside(d, u) for u in upper)]
            assert not bad, f"{m} imports {bad}"
        if _inside(m, "whatnext.config"):
            bad = [d for d in _internal(m) if _inside(d, "whatnext.data")]
            assert not bad, f"{m} imports {bad}: config is read before any data"


def test_models_know_nothing_of_learning_or_evaluation() -> None:
    for m in MODULES:
        if _inside(m, "whatnext.models"):
            bad = [d for d in _internal(m) if _inside(d, "whatnext.rl") or _inside(d, "whatnext.evaluation")]
            assert not bad, f"{m} imports {bad}"


def test_no_import_circles() -> None:
    """Depth-first search for a cycle among the package's modules (a package's __init__ is a module)."""
    graph = {m: _internal(m) - {m} for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := dfs(m)):
            pytest.fail("import circle: " + " -> ".join(cycle))


def test_every_subpackage_says_what_it_owns_and_may_import() -> None:
    for path in PKG.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert len(doc) > 80 and "import" in doc, f"{path}: the docstring must say what it owns and may import"


def test_plots_stay_below_the_doors_and_off_torch() -> None:
    """Figures are drawn from plain results: never torch, the engine, the CLI or the terminal libraries."""
    plots = [m for m in MODULES if _inside(m, "whatnext.plots")]
    assert "whatnext.plots.style" in plots
    for m in plots:
        bad = [d for d in IMPORTS[m] if any(_inside(d, x) for x in (
            "torch", "whatnext.engine", "whatnext.cli", "whatnext.rl", "whatnext.models", "typer", "rich", "click"))]
        assert not bad, f"{m} imports {bad}"


def test_plotting_and_tensorboard_libraries_stay_in_their_rooms() -> None:
    """matplotlib only in whatnext.plots, tensorboard only in the metrics writers (both imported only when used)."""
    for library, room in (("matplotlib", "whatnext.plots"), ("cycler", "whatnext.plots"),
                          ("tensorboard", "whatnext.rl.callbacks"), ("torch.utils.tensorboard", "whatnext.rl.callbacks")):
        offenders = [m for m in _importers(library) if not _inside(m, room)]
        assert not offenders, f"{library} imported outside {room} by {offenders}"
    for m in ("whatnext.plots", "whatnext.plots.style", "whatnext.rl.callbacks"):
        tree = ast.parse(MODULES[m].read_text(encoding="utf-8"))
        top = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        top |= {n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom)}
        assert not [t for t in top if t.split(".")[0] in ("matplotlib", "tensorboard") or "tensorboard" in t], m

"""The core's module layering: no import cycles (lazy imports included), no private functions borrowed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import registry_core

ROOT = Path(registry_core.__file__).parent


def _module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST, typing_too: bool = False) -> list[ast.AST]:
    """Every node of the tree except those under ``if TYPE_CHECKING:`` (never imported at run time)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if (not typing_too and isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"):
            todo += node.orelse
            continue
        todo += list(ast.iter_child_nodes(node))
    return out


def _imports(path: Path, prefixes: tuple[str, ...] = ("registry_core",),
             typing_too: bool = False) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every import of ``prefixes`` in the file, at any depth (lazy ones too)."""
    out = []
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8")), typing_too):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(prefixes):
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith(prefixes)]
    return out


def _graph(typing_too: bool = False) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, names in _imports(path, typing_too=typing_too):
            # ``from registry_core.nn import X`` may name a submodule; ``from registry_core import _lock`` too.
            for dep in [f"{target}.{n}" for n in names if f"{target}.{n}" in modules] or [target]:
                # A package's __init__ re-exporting its own modules is not a dependency of theirs on it.
                if dep in modules and dep != name and not name.startswith(dep + ".") and dep != "registry_core":
                    graph[name].add(dep)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_registry_core_has_no_import_cycle() -> None:
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_no_cycle_even_through_type_only_imports() -> None:
    """The modules form a tree even counting ``if TYPE_CHECKING:`` imports (an option's ``ref=`` is checked
    against the registry the schema is given, so the schema never names the registry's module)."""
    graph = _graph(typing_too=True)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_cli_uses_no_private_function_of_another_module() -> None:
    borrowed = []
    for path in (ROOT / "cli").glob("*.py"):
        for module, names in _imports(path):
            if module.startswith("registry_core.cli"):
                continue
            borrowed += [f"{path.name}: {module}.{n}" for n in names if n.startswith("_")]
    assert borrowed == []


#: What sits above the rest of the core: the CLI, the docs generator and the report's page builder (its public
#: records, ``registry_core.report`` and ``.figures``, are for plugins). Only the CLI (started by ``__main__``)
#: and the layer itself import them (the docs generator, which documents the CLI, counts as its side).
UPPER_LAYERS = ("registry_core.cli", "registry_core.docs", "registry_core.report._")


@pytest.mark.parametrize("layer", UPPER_LAYERS)
def test_upper_layers_are_imported_by_the_cli_alone(layer: str) -> None:
    own = layer.rstrip("._")
    users = sorted(m for m, deps in _graph().items() if any(d.startswith(layer) for d in deps)
                   and not m.startswith((own, "registry_core.cli", "registry_core.docs")) and m != "registry_core.__main__")
    assert users == [], f"{layer} is imported by {users}"


#: The layers above the kernel (the top-level modules: hooks, specs, schemas, registry, contracts, errors, ...).
ABOVE_KERNEL = ("registry_core.pipeline", "registry_core.cli", "registry_core.docs", "registry_core.report",
                "registry_core.nn", "registry_core.training", "registry_core.serve")
#: Top-level modules that are doors upward by design: ``python -m`` and the old name of ``report.figures``.
DOORS = {"registry_core.__main__", "registry_core.figures"}


def test_the_kernel_imports_no_layer_above_it() -> None:
    """The kernel imports none of pipeline/, cli/, docs/, report/, nn/, training/ at run time (the package's
    lazy names load them by string, on first use)."""
    upward = sorted(f"{m} -> {d}" for m, deps in _graph().items() for d in deps
                    if m.count(".") == 1 and m not in DOORS and not m.startswith(ABOVE_KERNEL)
                    and d.startswith(ABOVE_KERNEL))
    assert upward == []


# --- the bundled plugins: the same rules, applied to each distribution's package ---------------------------

import registry_gfm  # noqa: E402
import registry_llm  # noqa: E402

PLUGIN_ROOTS = {"registry_llm": Path(registry_llm.__file__).parent, "registry_gfm": Path(registry_gfm.__file__).parent}
OURS = ("registry_core", "registry_llm", "registry_gfm")


def _package_graph(root: Path) -> dict[str, set[str]]:
    """Imports between the modules of one package (``registry_*``), lazy ones included, type-only ones not."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, names in _imports(path, OURS):
            for dep in [f"{target}.{n}" for n in names if f"{target}.{n}" in modules] or [target]:
                if dep in modules and dep != name and not name.startswith(dep + ".") and dep != root.name:
                    graph[name].add(dep)
    return graph


def _private_borrowings(root: Path) -> list[str]:
    """Imports of a private module (or private name) that lives outside the importing module's own package."""
    found = []
    for path in root.rglob("*.py"):
        me = _module_name(path, root)
        home = me if path.name == "__init__.py" else me.rpartition(".")[0]
        for target, names in _imports(path, OURS):
            for full in [target] + [f"{target}.{n}" for n in names]:
                parts = full.split(".")
                private = [i for i, p in enumerate(parts) if p.startswith("_") and not p.startswith("__")]
                if private and not (home + ".").startswith(".".join(parts[: private[0]]) + "."):
                    found.append(f"{me} imports {'.'.join(parts[: private[0] + 1])}")
    return sorted(set(found))


@pytest.mark.parametrize("package", sorted(PLUGIN_ROOTS))
def test_plugin_has_no_import_cycle(package: str) -> None:
    graph = _package_graph(PLUGIN_ROOTS[package])
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


@pytest.mark.parametrize("package", sorted(PLUGIN_ROOTS))
def test_plugin_imports_no_private_module_of_another_package(package: str) -> None:
    assert _private_borrowings(PLUGIN_ROOTS[package]) == []


def test_private_borrowing_finder_finds_one(tmp_path: Path) -> None:
    pkg = tmp_path / "registry_gfm"
    (pkg / "report").mkdir(parents=True)
    (pkg / "evaluators").mkdir()
    (pkg / "report" / "model.py").write_text("def f():\n    from registry_gfm.evaluators._batches import collate\n")
    (pkg / "evaluators" / "probe.py").write_text("from registry_gfm.evaluators._batches import collate\n")
    assert _private_borrowings(pkg) == ["registry_gfm.report.model imports registry_gfm.evaluators._batches"]

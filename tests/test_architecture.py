"""The import directions of docs/architecture.md, enforced.

An app imports only the apps below it; no project module imports another
inside a function to dodge an import cycle, and there is no cycle between
modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first: an app may import the apps before it in this list, never after.
LAYERS = ["core", "jobs", "events", "invoices", "emailsync", "monitoring", "config"]


def _modules() -> dict[str, Path]:
    found = {}
    for app in LAYERS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _project_imports(tree: ast.AST, module: str):
    """(imported module, node, whether at module level) for every import of a project module."""
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package (a package's __init__ is its own)
                package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        inside_function = False
        parent = parents.get(id(node))
        while parent is not None:
            if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef):
                inside_function = True
                break
            parent = parents.get(id(parent))
        for name in names:
            if name.split(".")[0] in LAYERS:
                yield name, node, not inside_function


def _app(module: str) -> str:
    return module.split(".")[0]


# Imports that stay inside a function, each for a reason the module level cannot give:
# AppConfig.ready() registers the app's checks, job kinds, signal handlers and hooks (Django's
# documented way; apps.py is imported before any model exists), and the Celery app adds its
# worker step when it is configured.
ALLOWED_INSIDE_FUNCTIONS = {
    "apps.py": "AppConfig.ready() and what it connects",
    "config/celery.py": "the worker-start step",
}


def _allowed_inside_a_function(path: Path) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    return path.name in ALLOWED_INSIDE_FUNCTIONS or relative in ALLOWED_INSIDE_FUNCTIONS


def test_apps_import_only_the_apps_below_them():
    wrong = []
    for module, path in MODULES.items():
        for name, node, _ in _project_imports(ast.parse(path.read_text()), module):
            if LAYERS.index(_app(name)) > LAYERS.index(_app(module)):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert wrong == [], "imports against the direction of docs/architecture.md:\n" + "\n".join(wrong)


@pytest.mark.parametrize("app", LAYERS)
def test_no_project_import_hides_inside_a_function(app):
    hidden = []
    for module, path in MODULES.items():
        if _app(module) != app or _allowed_inside_a_function(path):
            continue
        for name, node, at_module_level in _project_imports(ast.parse(path.read_text()), module):
            if not at_module_level:
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert sorted(set(hidden)) == [], "imports inside functions:\n" + "\n".join(sorted(set(hidden)))


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module, path in MODULES.items():
        for name, _node, _ in _project_imports(ast.parse(path.read_text()), module):
            target = name
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
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

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_apps():
    """Two apps that import each other (at module level or inside a function) have no direction."""
    graph = _graph()
    apps: dict[str, set[str]] = {app: set() for app in LAYERS}
    for module, targets in graph.items():
        apps[_app(module)] |= {_app(target) for target in targets if _app(target) != _app(module)}
    assert _cycles(apps) == [], "apps that import each other (docs/architecture.md: one direction)"


@pytest.mark.parametrize("app", LAYERS)
def test_no_import_cycle_between_modules(app):
    graph = _graph()
    cycles = [cycle for cycle in _cycles(graph) if any(_app(m) == app for m in cycle)]
    assert cycles == []

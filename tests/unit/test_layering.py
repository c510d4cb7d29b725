"""The layering of the project's own modules, read from their import statements (ast, every .py outside
tests/ and .venv/): no import circle; the services never import the tools (`labctl`) nor one another;
`lab_common` imports neither a service nor the tools; a service's routes (`app`) import no adapter, which
only its composition root (`bootstrap`) chooses. Imports inside functions and under TYPE_CHECKING
count: they are dependencies all the same."""

from __future__ import annotations

import ast
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("facade_service", "logging_service", "messages_service", "config_server")
TOOLS = "labctl"  # kept in scripts/labctl/, installed as the package labctl (pyproject.toml)
TOOLS_FOLDER = ("scripts",)  # the folder a package is found in, which is not part of its name
SHARED = "lab_common"
SKIPPED = {"tests", "build", "dist", "node_modules", "__pycache__"}  # and every folder whose name starts with "."


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the project's module it names
    where: str  # path:line of the statement

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}  ({self.where})"


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file of every module of the project's own packages."""
    found = {}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED and not name.startswith(".")]
        for name in files:
            if not name.endswith(".py"):
                continue
            path = Path(folder, name)
            parts = list(path.relative_to(root).with_suffix("").parts)
            if tuple(parts[:len(TOOLS_FOLDER)]) == TOOLS_FOLDER:
                parts = parts[len(TOOLS_FOLDER):]
            if parts[-1] == "__init__":
                parts.pop()
            if parts:
                found[".".join(parts)] = path
    return dict(sorted(found.items()))


def _named(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` stands for: itself, or the nearest enclosing module that is one."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(modules: dict[str, Path], root: Path = ROOT) -> list[Import]:
    """Every import of one project module by another (the standard library and third parties left out)."""
    edges = []
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import name` names the submodule pkg.name when there is one, else pkg itself
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            where = f"{path.relative_to(root)}:{node.lineno}"
            for target in {_named(name, modules) for name in names} - {None, module}:
                edges.append(Import(module, target, where))
    return edges


def circles(edges: list[Import]) -> list[tuple[list[str], list[Import]]]:
    """Each group of modules that import one another round a circle (Tarjan's strongly connected
    components), with the shortest circle through the group's first module."""
    graph: dict[str, list[Import]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge)
        graph.setdefault(edge.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(start: str) -> None:  # iterative, so a deep graph cannot overflow the recursion limit
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            edge = next(pending, None)
            if edge is not None:
                if edge.target not in index:
                    index[edge.target] = low[edge.target] = len(index)
                    stack.append(edge.target)
                    on_stack.add(edge.target)
                    work.append((edge.target, iter(graph[edge.target])))
                elif edge.target in on_stack:
                    low[node] = min(low[node], index[edge.target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [(sorted(group), _circle_through(min(group), group, graph)) for group in groups]


def _circle_through(first: str, group: set[str], graph: dict[str, list[Import]]) -> list[Import]:
    """The shortest chain of imports inside `group` from `first` back to itself (breadth first)."""
    came_by: dict[str, Import] = {}
    frontier = [first]
    while frontier:
        following = []
        for node in frontier:
            for edge in sorted(graph[node], key=lambda e: e.target):
                if edge.target not in group:
                    continue
                if edge.target == first:
                    chain = [edge]
                    while chain[0].source != first:
                        chain.insert(0, came_by[chain[0].source])
                    return chain
                if edge.target not in came_by:
                    came_by[edge.target] = edge
                    following.append(edge.target)
        frontier = following
    raise AssertionError(f"no way back to {first} inside {sorted(group)}")


def _top(module: str) -> str:
    return module.partition(".")[0]


def forbidden(edges: list[Import]) -> list[tuple[str, Import]]:
    """Each import that runs against the layering, with the rule it breaks."""
    broken = []
    for edge in edges:
        source, target = _top(edge.source), _top(edge.target)
        if source in SERVICES and target == TOOLS:
            broken.append(("a service imports the tools", edge))
        elif source in SERVICES and target in SERVICES and source != target:
            broken.append(("a service imports another service", edge))
        elif source == SHARED and (target in SERVICES or target == TOOLS):
            broken.append((f"{SHARED} imports a service or the tools", edge))
        elif edge.source.endswith(".app") and source in SERVICES and _is_adapter(edge.target):
            broken.append(("a service's routes choose an adapter (that is its bootstrap's job)", edge))
    return broken


# What only a service's composition root (its bootstrap module) may pick: the cluster, Kafka and Consul
# clients, the discovery's factory, a service's own adapters (its `adapters` package) and its Task 1 stub.
ADAPTERS = ("lab_common.cluster", "lab_common.kafka", "lab_common.consul_support", "lab_common.discovery_factory")


def _is_adapter(module: str) -> bool:
    service, _, name = module.partition(".")
    return module in ADAPTERS or (service in SERVICES and name.split(".")[0] in ("adapters", "stub"))


def _shown(group: list[str], chain: list[Import]) -> str:
    lines = [f"  among {', '.join(group)}:", "    " + " -> ".join([chain[0].source, *(e.target for e in chain)])]
    return "\n".join(lines + [f"      {edge}" for edge in chain])


@functools.cache
def _project_imports() -> tuple[Import, ...]:
    return tuple(imports(project_modules()))


def test_the_project_s_modules_import_one_another_without_a_circle():
    found = circles(list(_project_imports()))
    if found:
        pytest.fail("import circles:\n" + "\n".join(_shown(*circle) for circle in found), pytrace=False)


def test_no_import_runs_against_the_layers():
    found = forbidden(list(_project_imports()))
    if found:
        pytest.fail("imports against the layering:\n" + "\n".join(f"  {rule}: {edge}" for rule, edge in found),
                    pytrace=False)


def test_the_import_reader_finds_a_circle_and_a_forbidden_import_in_a_made_up_tree(tmp_path):
    """The checks themselves can fail: a small tree with a circle, a service importing the tools and routes that
    pick their store."""
    files = {
        "lab_common/__init__.py": "",
        "lab_common/a.py": "from lab_common import b\n",
        "lab_common/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\n",
        "lab_common/c.py": "def f():\n    import lab_common.a\n",
        "facade_service/__init__.py": "",
        "facade_service/app.py": "from labctl.launcher import plan\nimport logging_service.app\n",
        "logging_service/__init__.py": "",
        "logging_service/app.py": "import os\nfrom logging_service.adapters import hazelcast\n",
        "logging_service/adapters/__init__.py": "",
        "logging_service/adapters/hazelcast.py": "",
        "logging_service/bootstrap.py": "from logging_service import app\nimport logging_service.adapters.hazelcast\n",
        "scripts/labctl/__init__.py": "",
        "scripts/labctl/launcher.py": "from lab_common.a import x\n",
        "tests/test_x.py": "import labctl.launcher\nimport facade_service.app\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edges = imports(project_modules(tmp_path), tmp_path)
    [(group, chain)] = circles(edges)
    assert group == ["lab_common.a", "lab_common.b", "lab_common.c"]
    assert [edge.source for edge in chain] == ["lab_common.a", "lab_common.b", "lab_common.c"]
    assert chain[1].where == "lab_common/b.py:3"
    rules = sorted((rule, edge.target) for rule, edge in forbidden(edges))
    assert rules == [("a service imports another service", "logging_service.app"),
                     ("a service imports the tools", "labctl.launcher"),
                     ("a service's routes choose an adapter (that is its bootstrap's job)",
                      "logging_service.adapters.hazelcast")]

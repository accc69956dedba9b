"""The package's imports run one way: capture → store → read → analyze → render.

Read from the source (every ``import``, at the top or inside a function), so a late import
cannot hide a cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "hotmess"

#: What each part may import of hotmess (besides itself). The bottom modules import nothing of
#: hotmess but each other as listed; analyzers see only tables and results, never the store,
#: the tracer, SQLite or OpenTelemetry.
ALLOWED = {
    "_version": set(),
    "durations": set(),
    "errors": {"redact"},
    "progress": set(),
    "redact": set(),
    "results": set(),
    "tables": set(),
    "parquet": {"errors", "tables"},
    "otlp_parquet": {"errors", "integrations", "parquet", "tables"},
    "tools": set(),
    "verdict": set(),
    "vocab": {"redact"},
    "tracer": {"_version", "errors", "redact", "store", "vocab"},
    "store": {"errors", "progress", "redact", "tables", "vocab"},
    "integrations": {"errors", "progress", "redact", "store", "tables", "tools", "tracer", "vocab"},
    "analyzers": {"errors", "progress", "results", "tables", "tools", "vocab"},
    "report": {"analyzers", "errors", "results", "tables", "verdict"},
    "api": {"analyzers", "errors", "integrations", "parquet", "progress", "report", "results", "store", "tables"},
    "engine": {"analyzers", "errors", "parquet", "progress", "results", "tables"},
    "demo": {"hotmess", "integrations", "store", "tracer"},
    "cli": {"analyzers", "api", "demo", "durations", "engine", "errors", "harness", "hotmess", "integrations", "otlp_parquet",
            "progress", "report",
            "results", "serve", "store", "tables", "tracer", "verdict"},
    "serve": {"api", "durations", "errors", "integrations", "report", "store", "tables"},
    "harness": {"analyzers", "errors", "progress", "results", "store", "tracer", "verdict", "vocab"},
    "pytest_plugin": {"analyzers", "hotmess", "tracer", "vocab"},
    "hotmess": {"_version", "tracer", "api", "harness", "integrations"},
}
#: Third-party and standard modules a part must not import.
FORBIDDEN = {
    "analyzers": {"sqlite3", "opentelemetry"},
    "report": {"sqlite3", "opentelemetry"},
    "vocab": {"sqlite3"},
    "results": {"sqlite3", "opentelemetry"},
}


def _part(path: Path) -> str:
    rel = path.relative_to(SRC)
    if len(rel.parts) == 1:
        return "hotmess" if rel.stem == "__init__" else rel.stem
    return rel.parts[0]


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((a.name, [], node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:  # relative: resolve it
            base = _module(path).split(".")
            if path.name != "__init__.py":
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
            found.append((module, [a.name for a in node.names], node.lineno))
    return found


def _target_part(module: str, names: list[str]) -> list[str]:
    parts = module.split(".")
    if parts[0] != "hotmess":
        return []
    if len(parts) == 1:  # from hotmess import x
        return [n for n in names if (SRC / n).is_dir() or (SRC / f"{n}.py").exists()] or ["hotmess"]
    return [parts[1]]


FILES = sorted(SRC.rglob("*.py"))


def test_every_part_is_known():
    assert {_part(p) for p in FILES} <= set(ALLOWED), "a new module or package: say what it may import"


def test_imports_run_one_way():
    wrong = []
    for path in FILES:
        part = _part(path)
        for module, names, line in _imports(path):
            for target in _target_part(module, names):
                if target != part and target not in ALLOWED[part]:
                    wrong.append(f"{path.relative_to(SRC)}:{line}: {part} imports {module}")
            if module.split(".")[0] in FORBIDDEN.get(part, ()):
                wrong.append(f"{path.relative_to(SRC)}:{line}: {part} imports {module}")
    assert wrong == []


def test_no_cycle_between_parts():
    graph: dict[str, set[str]] = defaultdict(set)
    for path in FILES:
        part = _part(path)
        for module, names, _ in _imports(path):
            graph[part].update(t for t in _target_part(module, names) if t != part)
    # the package's __init__ re-exports; everything else must form a DAG
    graph.pop("hotmess", None)
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " → ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_no_module_takes_another_modules_private_names():
    wrong = []
    for path in FILES:
        me = _module(path)
        for module, names, line in _imports(path):
            if not module.startswith("hotmess") or module == me:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            hidden_module = any(p.startswith("_") and p != "__init__" and p != "_version" for p in module.split("."))
            if private or hidden_module:
                wrong.append(f"{path.relative_to(SRC)}:{line}: from {module} import {', '.join(names)}")
    assert wrong == []


def test_modules_stay_small():
    """One job per module: past about 600 lines a module has grown a second one."""
    long = {str(p.relative_to(SRC)): n for p in FILES if (n := len(p.read_text(encoding="utf-8").splitlines())) > 650}
    assert long == {}

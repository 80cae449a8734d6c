"""innerpo's imports point down its layers (innerpo.layers): no import of a higher-rank
package (nor of same-rank packages in a cycle), no import cycle between modules, no
private name imported from another module, and every package placed in the table.

The checker parses the source (imports at any depth, relative ones included); it
imports nothing it checks.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from innerpo.layers import LAYERS

SRC = Path(__file__).resolve().parents[1] / "src" / "innerpo"


@dataclass
class Findings:
    upward: dict[tuple[str, str], str] = field(default_factory=dict)
    """(importer, imported module) → what is wrong, for the first such import."""
    cycles: dict[frozenset[str], str] = field(default_factory=dict)
    """Each knot of mutually importing modules → one cycle through it, as a path."""
    private: dict[tuple[str, str], str] = field(default_factory=dict)
    """(importer, private name) → where it is used, the first time."""
    unplaced: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every .py file under `root` (the package `package`)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _owner(dotted: str, modules) -> str | None:
    """The longest prefix of `dotted` that is one of `modules`."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return None


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def scan_module(name: str, path: Path, modules, package: str) -> tuple[list[Edge], dict[tuple[str, str], str]]:
    """The module's imports of `package` modules, and its uses of their private names."""
    tree = ast.parse(path.read_text(), str(path))
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges: list[Edge] = []
    private: dict[tuple[str, str], str] = {}
    bound: dict[str, str] = {}  # local name → the package module it stands for

    def add(target: str | None, line: int):
        if target is not None and target != name:
            edges.append(Edge(name, target, line))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != package:
                    continue
                add(_owner(alias.name, modules), node.lineno)
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    bound[package] = package
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here.split(".")[: len(here.split(".")) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base.split(".")[0] != package:
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in modules:
                    add(full, node.lineno)
                    bound[alias.asname or alias.name] = full
                    continue
                target = _owner(base, modules)
                add(target, node.lineno)
                if _is_private(alias.name) and target != name:
                    private.setdefault(
                        (name, alias.name), f"{name} imports {alias.name} from {target}, line {node.lineno}"
                    )
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain, value = [node.attr], node.value
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if not isinstance(value, ast.Name) or value.id not in bound:
            continue
        full = ".".join([bound[value.id], *reversed(chain)])
        owner = _owner(full, modules)
        rest = full[len(owner) + 1 :].split(".") if owner and full != owner else []
        if rest and _is_private(rest[0]) and owner != name:
            private.setdefault((name, rest[0]), f"{name} uses {owner}.{rest[0]}, line {node.lineno}")
    return edges, private


def _knots(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            knot = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                knot.add(w)
                if w == v:
                    break
            if len(knot) > 1:
                out.append(frozenset(knot))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _cycle_path(graph: dict[str, set[str]], knot: frozenset[str]) -> str:
    """A shortest cycle through the knot's first module, as `a -> b -> a`."""
    start = min(knot)
    came: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v] & knot):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came[path[-1]])
                return " -> ".join([start, *reversed(path[:-1]), start])
            if w not in came:
                came[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle in {sorted(knot)}")


def check(root: Path, package: str, layers) -> Findings:
    rank = {name: r for r, row in enumerate(layers) for name in row}
    modules = module_files(root, package)
    found = Findings()
    edges: list[Edge] = []
    for name, path in modules.items():
        more, private = scan_module(name, path, modules, package)
        edges += more
        found.private.update(private)

    def unit(module: str) -> str:
        return ".".join(module.split(".")[:2])

    units = {unit(m) for m in modules} - {package}
    found.unplaced = sorted(units - set(rank))
    found.stale = sorted(set(rank) - units)
    same_rank: dict[str, set[str]] = {}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for e in edges:
        graph[e.source].add(e.target)
        su, tu = unit(e.source), unit(e.target)
        rs, rt = rank.get(su, 0 if su == package else None), rank.get(tu, 0 if tu == package else None)
        if su == tu or rs is None or rt is None:
            continue
        if rt > rs:
            found.upward.setdefault(
                (e.source, e.target), f"{e.source} (rank {rs}) imports {e.target} (rank {rt}), line {e.line}"
            )
        elif rt == rs:
            same_rank.setdefault(su, set()).add(tu)
    for knot in _knots(same_rank):
        found.upward[tuple(sorted(knot))] = f"same-rank packages import one another: {_cycle_path(same_rank, knot)}"
    for knot in _knots(graph):
        path = _cycle_path(graph, knot)
        others = sorted(knot - set(path.split(" -> ")))
        found.cycles[knot] = path + (f" (in one knot with {', '.join(others)})" if others else "")
    return found


def _listing(lines) -> str:
    return "\n  " + "\n  ".join(lines)


FINDINGS = check(SRC, "innerpo", LAYERS)


def test_every_package_is_placed_in_the_layer_table():
    assert not FINDINGS.unplaced, "add these to innerpo.layers.LAYERS:" + _listing(FINDINGS.unplaced)
    assert not FINDINGS.stale, "innerpo.layers.LAYERS names packages that do not exist:" + _listing(FINDINGS.stale)


def test_imports_point_down_the_layers():
    assert not FINDINGS.upward, "imports against innerpo.layers.LAYERS:" + _listing(sorted(FINDINGS.upward.values()))


def test_no_import_cycles():
    assert not FINDINGS.cycles, "import cycles between modules:" + _listing(sorted(FINDINGS.cycles.values()))


def test_no_private_names_across_modules():
    assert not FINDINGS.private, "private names used outside their module:" + _listing(
        sorted(FINDINGS.private.values())
    )


def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


FAKE_LAYERS = (("pkg.base",), ("pkg.low",), ("pkg.high",))
CLEAN = {
    "__init__.py": "",
    "base.py": "X = 1\n_HIDDEN = 2\n",
    "low/__init__.py": "",
    "low/a.py": "from pkg.base import X\nfrom . import b\n",
    "low/b.py": "import os\n",
    "high/__init__.py": "",
    "high/c.py": "from ..low import a\nimport pkg.base as base\nY = base.X\n",
}


def test_checker_passes_a_clean_tree(tmp_path):
    found = check(_plant(tmp_path, CLEAN), "pkg", FAKE_LAYERS)
    assert found == Findings()


def test_checker_catches_an_upward_import(tmp_path):
    tree = {**CLEAN, "low/b.py": "def later():\n    from pkg.high import c\n"}
    found = check(_plant(tmp_path, tree), "pkg", FAKE_LAYERS)
    assert list(found.upward.values()) == ["pkg.low.b (rank 1) imports pkg.high.c (rank 2), line 2"]


def test_checker_catches_a_cycle(tmp_path):
    tree = {**CLEAN, "low/b.py": "def later():\n    from .a import X\n"}
    found = check(_plant(tmp_path, tree), "pkg", FAKE_LAYERS)
    assert list(found.cycles.values()) == ["pkg.low.a -> pkg.low.b -> pkg.low.a"]


def test_checker_catches_private_names(tmp_path):
    tree = {**CLEAN, "low/b.py": "from pkg.base import _HIDDEN\nimport pkg.base\nZ = pkg.base._HIDDEN\n"}
    found = check(_plant(tmp_path, tree), "pkg", FAKE_LAYERS)
    assert list(found.private.values()) == ["pkg.low.b imports _HIDDEN from pkg.base, line 1"]
    tree = {**CLEAN, "low/b.py": "import pkg.base as b\nimport pkg.low.a\nZ = b._HIDDEN\nW = pkg.low.a._x\n"}
    found = check(_plant(tmp_path / "attr", tree), "pkg", FAKE_LAYERS)
    assert list(found.private.values()) == [
        "pkg.low.b uses pkg.base._HIDDEN, line 3",
        "pkg.low.b uses pkg.low.a._x, line 4",
    ]


def test_checker_catches_an_unplaced_package_and_same_rank_cycles(tmp_path):
    tree = {**CLEAN, "extra/__init__.py": "", "base.py": "import pkg.other\n", "other.py": "from pkg import base\n"}
    layers = (("pkg.base", "pkg.other"), ("pkg.low",), ("pkg.high",))
    found = check(_plant(tmp_path, tree), "pkg", layers)
    assert found.unplaced == ["pkg.extra"]
    assert list(found.upward.values()) == ["same-rank packages import one another: pkg.base -> pkg.other -> pkg.base"]

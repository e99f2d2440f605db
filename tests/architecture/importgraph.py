"""Static import graph of the ``runyard`` package and the layering rules checked on it.

Only the standard library (``ast``) is used; nothing under ``src/runyard`` is imported.

Every ``.py`` file of the package is parsed and each import of a ``runyard`` module becomes an
:class:`Edge` (importer, imported, line, kind):

* ``module``: runs when the importer is imported (module level, class bodies, ``try/except``);
* ``function``: inside a function, method or lambda;
* ``type_checking``: under ``if TYPE_CHECKING:`` (anywhere);
* ``dynamic``: ``importlib.import_module("runyard...")`` / ``__import__("runyard...")`` with a
  literal string argument (a relative name with a literal or ``__package__`` package too).

Relative imports are resolved. ``from runyard.x import y`` is an edge to ``runyard.x.y`` when that
is a module of the tree, else to ``runyard.x``. A package's ``__init__.py`` is the package's
module. Imports of a module by itself are dropped, and the parent packages that Python imports
implicitly (``runyard.a`` for ``import runyard.a.b``) are NOT edges: only explicit imports count.

The ``check_*`` functions are pure: they take the graph (and a layer map) and return a sorted list
of human-readable violations, empty when the rule holds.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

PACKAGE = "runyard"
KINDS = ("module", "function", "type_checking", "dynamic")
# Compute kinds that are known even while they are still plain modules (compute/local.py);
# every subpackage of runyard.compute is a kind as well.
DEFAULT_COMPUTE_KINDS = ("local", "cluster", "remote")

Layers = Sequence[tuple[str, Sequence[str]]]
Graph = Mapping[str, Iterable["Edge"]]


@dataclass(frozen=True, order=True)
class Edge:
    importer: str
    imported: str
    line: int
    kind: str

    def where(self) -> str:
        return f"{self.importer}:{self.line}"

    def describe(self) -> str:
        """``importer:line imports imported`` plus how, when not a plain module-level import."""
        text = f"{self.where()} imports {self.imported}"
        suffix = {
            "function": " [inside a function]",
            "type_checking": " [under TYPE_CHECKING]",
            "dynamic": " [dynamic import]",
        }.get(self.kind, "")
        return text + suffix


# --------------------------------------------------------------------------------------------
# Building the graph


def _package_dir(src_root: Path, package: str) -> Path:
    """Accept either the folder that holds the package (``src``) or the package folder."""
    src_root = Path(src_root)
    if (src_root / package).is_dir():
        return src_root / package
    if src_root.name == package and src_root.is_dir():
        return src_root
    raise FileNotFoundError(f"no package {package!r} under {src_root}")


def module_files(src_root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    pkg_dir = _package_dir(src_root, package)
    modules: dict[str, Path] = {}
    for path in sorted(pkg_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = [package, *path.relative_to(pkg_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_ours(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_is_type_checking(value) for value in test.values)
    return False


def _is_import_call(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module" or (
            func.attr == "__import__"
            and isinstance(func.value, ast.Name)
            and func.value.id == "builtins"
        )
    if isinstance(func, ast.Name):
        return func.id in ("import_module", "__import__")
    return False


class _Collector:
    """Walks statements only (imports are statements), which keeps a full parse of the tree
    fast; calls are searched for dynamic imports only in files that mention them."""

    def __init__(self, module: str, is_package: bool, modules: set[str], package: str) -> None:
        self.module = module
        # the package that "." means for a relative import made from this module
        self.here = module if is_package else module.rpartition(".")[0]
        self.modules = modules
        self.package = package
        self.edges: set[Edge] = set()

    def _add(self, imported: str, line: int, kind: str) -> None:
        if _is_ours(imported, self.package) and imported != self.module:
            self.edges.add(Edge(self.module, imported, line, kind))

    def collect(self, tree: ast.Module, dynamic: bool) -> set[Edge]:
        self._statements(tree.body, "module")
        if dynamic:
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    self._call(node)
        return self.edges

    # -- statements ---------------------------------------------------------------------------
    def _statements(self, body: Iterable[ast.stmt], kind: str) -> None:
        for stmt in body:
            self._statement(stmt, kind)

    def _statement(self, stmt: ast.stmt, kind: str) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                self._add(alias.name, stmt.lineno, kind)
        elif isinstance(stmt, ast.ImportFrom):
            self._import_from(stmt, kind)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            self._statements(stmt.body, "type_checking" if kind == "type_checking" else "function")
        elif isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            self._statements(stmt.body, "type_checking")
            self._statements(stmt.orelse, kind)  # the else branch runs for real
        elif isinstance(stmt, ast.Match):
            for case in stmt.cases:
                self._statements(case.body, kind)
        else:  # class bodies, if/else, try/except/else/finally, with, for, while
            for field in ("body", "orelse", "finalbody"):
                self._statements(getattr(stmt, field, ()), kind)
            for handler in getattr(stmt, "handlers", ()):
                self._statements(handler.body, kind)

    def _import_from(self, node: ast.ImportFrom, kind: str) -> None:
        base = self._resolve(node.level, node.module) if node.level else node.module
        if base is None or not _is_ours(base, self.package):
            return
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            target = candidate if alias.name != "*" and candidate in self.modules else base
            self._add(target, node.lineno, kind)

    def _resolve(self, level: int, name: str | None, package: str | None = None) -> str | None:
        """Absolute name of a relative import of ``level`` dots from ``package`` (default:
        this module's package); None when it climbs above the top-level package."""
        parts = (self.here if package is None else package).split(".")
        if level > len(parts):
            return None
        parts = parts[: len(parts) - (level - 1)]
        return ".".join([*parts, name] if name else parts)

    # -- dynamic imports ----------------------------------------------------------------------
    def _call(self, node: ast.Call) -> None:
        if not _is_import_call(node.func) or not node.args:
            return
        arg = node.args[0]
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return  # only literal names can be resolved statically
        name: str | None = arg.value
        if arg.value.startswith("."):
            package = self._package_argument(node)
            if package is None:
                return
            rest = arg.value.lstrip(".")
            name = self._resolve(len(arg.value) - len(rest), rest, package)
        if name is not None:
            self._add(name, node.lineno, "dynamic")

    def _package_argument(self, node: ast.Call) -> str | None:
        value: ast.expr | None = node.args[1] if len(node.args) > 1 else None
        for keyword in node.keywords:
            if keyword.arg == "package":
                value = keyword.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
        if isinstance(value, ast.Name) and value.id == "__package__":
            return self.here
        return None


class ImportGraph(dict[str, set[Edge]]):
    """``build_graph``'s result: a plain dict plus ``packages``, the modules that are packages
    (an ``__init__.py``), which module names alone cannot tell."""

    packages: frozenset[str] = frozenset()


def build_graph(src_root: Path, package: str = PACKAGE) -> dict[str, set[Edge]]:
    """Module -> its import edges to other modules of ``package``, for every module of the tree.

    ``src_root`` is the folder that holds the package (``src``); the package folder itself is
    accepted too. Every module is a key, also those that import nothing.
    """
    files = module_files(src_root, package)
    modules = set(files)
    graph = ImportGraph()
    graph.packages = frozenset(m for m, path in files.items() if path.name == "__init__.py")
    for module, path in files.items():
        source = path.read_bytes()
        dynamic = b"import_module" in source or b"__import__" in source
        if package.encode() not in source and b"from ." not in source and not dynamic:
            graph[module] = set()  # cannot import a module of the package: skip the parse
            continue
        try:
            tree = ast.parse(source, filename=str(path))
        except SyntaxError as exc:
            raise SyntaxError(f"cannot parse {path}: {exc}") from exc
        collector = _Collector(module, path.name == "__init__.py", modules, package)
        graph[module] = collector.collect(tree, dynamic)
    return graph


def all_edges(graph: Graph) -> list[Edge]:
    """Every edge, by importer, then line."""
    return sorted(
        (edge for edges in graph.values() for edge in edges),
        key=lambda e: (e.importer, e.line, e.imported, e.kind),
    )


# --------------------------------------------------------------------------------------------
# Layers


def layers_of(module: str, layers: Layers) -> list[str]:
    """Names of every layer with a pattern matching ``module`` (fnmatch on dotted names)."""
    return [
        name
        for name, patterns in layers
        if any(fnmatchcase(module, pattern) for pattern in patterns)
    ]


def check_every_module_has_a_layer(graph: Graph, layers: Layers) -> list[str]:
    """Rule a: each module of the tree matches exactly one layer."""
    problems = []
    for module in sorted(graph):
        found = layers_of(module, layers)
        if not found:
            problems.append(f"{module} belongs to no layer (add it to the layer map)")
        elif len(found) > 1:
            problems.append(f"{module} belongs to several layers: {', '.join(found)}")
    return problems


def unused_patterns(graph: Graph, layers: Layers) -> list[str]:
    """Layer patterns that match no module of the tree (informational, not a rule)."""
    return [
        f"{name}: {pattern}"
        for name, patterns in layers
        for pattern in patterns
        if not any(fnmatchcase(module, pattern) for module in graph)
    ]


def check_imports_point_down(graph: Graph, layers: Layers) -> list[str]:
    """Rule b: an import targets the importer's layer or a lower one (every edge kind counts).

    Modules without exactly one layer are left to rule a, except an imported module that is
    not in the tree and matches no layer, which is reported here.
    """
    rank = {name: index for index, (name, _) in enumerate(layers)}
    problems = []
    for edge in all_edges(graph):
        source = layers_of(edge.importer, layers)
        target = layers_of(edge.imported, layers)
        if not target and edge.imported not in graph:
            problems.append(
                f"{edge.describe()}, which is not a module under src/{PACKAGE} and has no layer"
            )
            continue
        if len(source) != 1 or len(target) != 1:
            continue
        if rank[target[0]] > rank[source[0]]:
            problems.append(f"{edge.describe()} ({source[0]} -> {target[0]}: upward)")
    return problems


def check_workspace_not_imported_below_sdk(
    graph: Graph,
    layers: Layers,
    sdk_layer: str,
    workspace: str = f"{PACKAGE}.workspace",
) -> list[str]:
    """Rule f: no module in a layer below ``sdk_layer`` imports the SDK ``Workspace`` module."""
    rank = {name: index for index, (name, _) in enumerate(layers)}
    problems = []
    for edge in all_edges(graph):
        if edge.imported != workspace and not edge.imported.startswith(workspace + "."):
            continue
        source = layers_of(edge.importer, layers)
        if len(source) == 1 and rank[source[0]] < rank[sdk_layer]:
            problems.append(
                f"{edge.describe()} ({source[0]} is below {sdk_layer}: nothing below the SDK "
                f"imports {workspace}; pass a WorkspaceContext or a WorkspaceClient instead)"
            )
    return problems


# --------------------------------------------------------------------------------------------
# Dedicated rules


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def check_runtime_imports_only_runtime(
    graph: Graph, runtime: str = f"{PACKAGE}.runtime"
) -> list[str]:
    """Rule c: ``runyard.runtime`` ships alone to remote hosts, so it imports only itself."""
    return [
        f"{edge.describe()} ({runtime} may import only {runtime}.*: it ships alone to remote "
        f"hosts)"
        for edge in all_edges(graph)
        if _under(edge.importer, runtime) and not _under(edge.imported, runtime)
    ]


def compute_kinds(
    graph: Graph,
    compute: str = f"{PACKAGE}.compute",
    known: Iterable[str] = DEFAULT_COMPUTE_KINDS,
) -> set[str]:
    """Kind names: the known ones plus every subpackage of ``compute`` found in the tree."""
    kinds = set(known)
    prefix = compute + "."
    for module in getattr(graph, "packages", ()):
        if module.startswith(prefix) and "." not in module[len(prefix) :]:
            kinds.add(module[len(prefix) :])
    for module in graph:
        if module.startswith(prefix):
            rest = module[len(prefix) :].split(".")
            if len(rest) > 1:  # runyard.compute.<kind>.<something>: <kind> is a package
                kinds.add(rest[0])
    return kinds


def _kind_of(module: str, compute: str, kinds: set[str]) -> str | None:
    prefix = compute + "."
    if not module.startswith(prefix):
        return None
    head = module[len(prefix) :].split(".")[0]
    return head if head in kinds else None


def check_kinds_do_not_import_each_other(
    graph: Graph,
    compute: str = f"{PACKAGE}.compute",
    known: Iterable[str] = DEFAULT_COMPUTE_KINDS,
) -> list[str]:
    """Rule d: ``compute.<kind>`` packages are siblings; shared code lives directly in compute."""
    kinds = compute_kinds(graph, compute, known)
    problems = []
    for edge in all_edges(graph):
        mine = _kind_of(edge.importer, compute, kinds)
        theirs = _kind_of(edge.imported, compute, kinds)
        if mine and theirs and mine != theirs:
            problems.append(
                f"{edge.describe()} (compute kind {mine!r} -> kind {theirs!r}: kinds never "
                f"import each other; move shared code directly under {compute})"
            )
    return problems


def strongly_connected_components(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components in a deterministic order, members sorted."""
    succ = _successors(graph)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(succ):
        if root in index:
            continue
        work: list[tuple[str, Iterable[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(sorted(succ[root]))))
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(succ[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return sorted(components)


def _successors(graph: Graph) -> dict[str, set[str]]:
    succ: dict[str, set[str]] = {module: set() for module in graph}
    for edge in all_edges(graph):
        succ.setdefault(edge.importer, set()).add(edge.imported)
        succ.setdefault(edge.imported, set())
    return succ


def _shortest_cycle(component: list[str], succ: dict[str, set[str]]) -> list[str]:
    """Shortest cycle inside one component (ties: the lexicographically smallest path)."""
    members = set(component)
    best: list[str] | None = None
    for start in component:  # sorted, so the first found among equals is the smallest
        parent: dict[str, str] = {}
        queue = deque([start])
        seen = {start}
        found: str | None = None
        while queue and found is None:
            node = queue.popleft()
            for child in sorted(succ[node] & members):
                if child == start:
                    found = node
                    break
                if child not in seen:
                    seen.add(child)
                    parent[child] = node
                    queue.append(child)
        if found is None:
            continue
        path = [found]
        while path[-1] != start:
            path.append(parent[path[-1]])
        path.reverse()
        if best is None or len(path) < len(best):
            best = path
    assert best is not None
    return best


def check_no_import_cycles(graph: Graph) -> list[str]:
    """Rule e: no cycle among modules (all edge kinds). One line per strongly connected
    component: its shortest cycle with the line of each import, then the whole component when
    it is larger than that cycle."""
    succ = _successors(graph)
    first_edge: dict[tuple[str, str], Edge] = {}
    for edge in all_edges(graph):  # sorted: the first per pair has the lowest line
        first_edge.setdefault((edge.importer, edge.imported), edge)
    problems = []
    for component in strongly_connected_components(graph):
        if len(component) < 2:
            continue  # self-imports are dropped while building the graph
        cycle = _shortest_cycle(component, succ)
        hops = [first_edge[(a, b)] for a, b in zip(cycle, [*cycle[1:], cycle[0]], strict=True)]
        text = f"import cycle: {' -> '.join([*cycle, cycle[0]])}"
        text += " (" + ", ".join(
            f"{hop.where()}" + ("" if hop.kind == "module" else f" {hop.kind}") for hop in hops
        ) + ")"
        if len(component) > len(cycle):
            text += (
                f"; part of a strongly connected component of {len(component)} modules: "
                + ", ".join(component)
            )
        problems.append(text)
    return problems

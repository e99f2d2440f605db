"""Architecture test: imports inside src/runyard point down the layers, and never in a cycle.

The layer map below is the single place to place a module; see /work/shared/DESIGN.md,
"Layers (imports point down only)". Every import counts: module level, inside functions, under
``TYPE_CHECKING`` and literal ``importlib.import_module("runyard...")`` calls.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from .importgraph import (
    Edge,
    build_graph,
    check_every_module_has_a_layer,
    check_imports_point_down,
    check_kinds_do_not_import_each_other,
    check_no_import_cycles,
    check_runtime_imports_only_runtime,
    check_workspace_not_imported_below_sdk,
    strongly_connected_components,
)

pytestmark = pytest.mark.unit

# Ordered, lowest first. Patterns are fnmatch patterns on dotted module names.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "L0 base",
        [
            "runyard.errors",
            "runyard.entities",
            "runyard.settings",
            "runyard.naming",
            "runyard.logcap",
            "runyard.secrets",
            "runyard.plugins",  # entry-point discovery: imports only errors
            "runyard.runtime",
            "runyard.runtime.*",
        ],
    ),
    (
        "L1 foundation",
        [
            "runyard.store",
            "runyard.store.*",
            "runyard.snapshots",
            "runyard.snapshots.*",
            "runyard.artifacts",
            "runyard.artifacts.*",
            "runyard.datastores",
            "runyard.datastores.*",
            "runyard.environments",
            "runyard.environments.*",
            "runyard.environment",
            "runyard.runconfig",
            # pure data: the VM-size table and what a run may ask of a node of a size
            # (RunConfiguration validates amlcompute settings against it)
            "runyard.compute.vmsizes",
        ],
    ),
    ("L2 context", ["runyard.context"]),
    (
        "L3 compute",
        [
            # shared modules, then one package per kind (a new kind must be placed here)
            "runyard.compute",
            "runyard.compute.base",
            "runyard.compute.capabilities",
            "runyard.compute.config",
            "runyard.compute.kinds",
            "runyard.compute.procs",
            "runyard.compute.moved",
            "runyard.compute.local",
            "runyard.compute.local.*",
            "runyard.compute.cluster",
            "runyard.compute.cluster.*",
            "runyard.compute.remote",
            "runyard.compute.remote.*",
        ],
    ),
    ("L4 services", ["runyard.services", "runyard.services.*"]),
    ("L5 client", ["runyard.client", "runyard.client.*"]),
    (
        "L6 sdk",
        [
            "runyard",
            "runyard.workspace",
            "runyard.experiment",
            "runyard.run",
            "runyard.model",
            "runyard.computetarget",
            "runyard.datastore",
            "runyard.dataset",
            "runyard.dataio",
            "runyard.sdktypes",
            "runyard.sweeps",
            "runyard.sweeps.*",
        ],
    ),
    (
        "L7 surface",
        [
            "runyard.compat",
            "runyard.compat.*",
            "runyard.cli",
            "runyard.cli.*",
            "runyard.server",
            "runyard.server.*",
        ],
    ),
]
SDK_LAYER = "L6 sdk"

SRC_ROOT = Path(__file__).resolve().parents[2] / "src"


def _report(title: str, problems: list[str]) -> str:
    return f"{len(problems)} {title}:\n" + "\n".join(f"  {line}" for line in problems)


#: The only upward edge allowed: the deprecated aliases that keep the old import paths of the
#: user-facing compute classes working (one literal ``importlib.import_module`` in
#: ``runyard.compute.moved``, reached from module ``__getattr__`` hooks that warn with
#: DeprecationWarning). Nothing else may be added here.
DEPRECATED_ALIASES: set[tuple[str, str]] = {
    ("runyard.compute.moved", "runyard.computetarget"),
}


@pytest.fixture(scope="module")
def full_graph() -> dict[str, set[Edge]]:
    return build_graph(SRC_ROOT)


@pytest.fixture(scope="module")
def graph(full_graph: dict[str, set[Edge]]) -> dict[str, set[Edge]]:
    """The import graph without the allow-listed deprecated-alias edges."""
    out = type(full_graph)(full_graph)
    out.packages = getattr(full_graph, "packages", frozenset())  # type: ignore[attr-defined]
    for importer, edges in full_graph.items():
        out[importer] = {e for e in edges
                         if (e.importer, e.imported) not in DEPRECATED_ALIASES}
    return out


def test_deprecated_aliases_are_only_dynamic_imports(
        full_graph: dict[str, set[Edge]]) -> None:
    found = {(e.importer, e.imported): e.kind for edges in full_graph.values() for e in edges
             if (e.importer, e.imported) in DEPRECATED_ALIASES}
    assert set(found) == DEPRECATED_ALIASES  # every entry is real (the list cannot rot)
    assert set(found.values()) == {"dynamic"}


# --------------------------------------------------------------------------------------------
# The real tree


def test_layer_map_is_well_formed() -> None:
    names = [name for name, _ in LAYERS]
    assert len(set(names)) == len(names)
    assert SDK_LAYER in names
    assert all(patterns for _, patterns in LAYERS)


def test_every_module_has_a_layer(graph: dict[str, set[Edge]]) -> None:
    assert len(graph) > 10, f"no modules found under {SRC_ROOT}"
    problems = check_every_module_has_a_layer(graph, LAYERS)
    assert not problems, _report("modules without exactly one layer", problems)


def test_imports_point_down_only(graph: dict[str, set[Edge]]) -> None:
    problems = check_imports_point_down(graph, LAYERS)
    assert not problems, _report("imports that do not point down", problems)


def test_nothing_below_the_sdk_imports_workspace(graph: dict[str, set[Edge]]) -> None:
    problems = check_workspace_not_imported_below_sdk(graph, LAYERS, SDK_LAYER)
    assert not problems, _report("imports of runyard.workspace below the SDK", problems)


def test_runtime_imports_only_runtime(graph: dict[str, set[Edge]]) -> None:
    problems = check_runtime_imports_only_runtime(graph)
    assert not problems, _report("runtime imports outside runyard.runtime", problems)


def test_kinds_do_not_import_each_other(graph: dict[str, set[Edge]]) -> None:
    problems = check_kinds_do_not_import_each_other(graph)
    assert not problems, _report("imports between compute kinds", problems)


def test_no_import_cycles(graph: dict[str, set[Edge]]) -> None:
    problems = check_no_import_cycles(graph)
    assert not problems, _report("import cycles", problems)


# --------------------------------------------------------------------------------------------
# The checker itself, on synthetic trees

FAKE_LAYERS: list[tuple[str, list[str]]] = [
    ("L0 base", ["runyard.errors", "runyard.runtime", "runyard.runtime.*"]),
    ("L1 foundation", ["runyard.store", "runyard.store.*"]),
    ("L3 compute", ["runyard.compute", "runyard.compute.*"]),
    ("L6 sdk", ["runyard", "runyard.workspace"]),
]


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, set[Edge]]:
    """Write a fake ``runyard`` package under tmp_path/src and return its graph."""
    src = tmp_path / "src"
    for name, text in {"runyard/__init__.py": "", **files}.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return build_graph(src)


def _upward(graph: dict[str, set[Edge]]) -> list[str]:
    return check_imports_point_down(graph, FAKE_LAYERS)


BASE = {"runyard/workspace.py": "", "runyard/errors.py": "", "runyard/store/__init__.py": ""}


def test_upward_import_at_module_level(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**BASE, "runyard/store/base.py": """
        import os

        from runyard.workspace import Workspace
        """})
    assert graph["runyard.store.base"] == {
        Edge("runyard.store.base", "runyard.workspace", 3, "module")
    }
    assert _upward(graph) == [
        "runyard.store.base:3 imports runyard.workspace (L1 foundation -> L6 sdk: upward)"
    ]
    assert check_workspace_not_imported_below_sdk(graph, FAKE_LAYERS, "L6 sdk") == [
        "runyard.store.base:3 imports runyard.workspace (L1 foundation is below L6 sdk: nothing "
        "below the SDK imports runyard.workspace; pass a WorkspaceContext or a WorkspaceClient "
        "instead)"
    ]


def test_upward_import_inside_a_function(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**BASE, "runyard/store/base.py": """
        class Store:
            def open(self):
                import runyard.workspace as ws
                return ws
        """})
    assert _upward(graph) == [
        "runyard.store.base:3 imports runyard.workspace [inside a function] "
        "(L1 foundation -> L6 sdk: upward)"
    ]


def test_upward_import_under_type_checking(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**BASE, "runyard/store/base.py": """
        from typing import TYPE_CHECKING
        import typing

        if TYPE_CHECKING:
            from runyard.workspace import Workspace
        else:
            from runyard.errors import NotFound
        if typing.TYPE_CHECKING:
            import runyard
        """})
    assert sorted(graph["runyard.store.base"]) == [
        Edge("runyard.store.base", "runyard", 9, "type_checking"),
        Edge("runyard.store.base", "runyard.errors", 7, "module"),
        Edge("runyard.store.base", "runyard.workspace", 5, "type_checking"),
    ]
    assert _upward(graph) == [
        "runyard.store.base:5 imports runyard.workspace [under TYPE_CHECKING] "
        "(L1 foundation -> L6 sdk: upward)",
        "runyard.store.base:9 imports runyard [under TYPE_CHECKING] "
        "(L1 foundation -> L6 sdk: upward)",
    ]


def test_relative_upward_import(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**BASE, "runyard/store/base.py": """
        from .. import workspace
        from ..errors import NotFound
        from . import base
        """, "runyard/store/sub/__init__.py": """
        from ... import workspace as ws
        from .. import base
        """})
    assert graph["runyard.store.base"] == {
        Edge("runyard.store.base", "runyard.workspace", 1, "module"),
        Edge("runyard.store.base", "runyard.errors", 2, "module"),
    }
    assert graph["runyard.store.sub"] == {
        Edge("runyard.store.sub", "runyard.workspace", 1, "module"),
        Edge("runyard.store.sub", "runyard.store.base", 2, "module"),
    }
    assert _upward(graph) == [
        "runyard.store.base:1 imports runyard.workspace (L1 foundation -> L6 sdk: upward)",
        "runyard.store.sub:1 imports runyard.workspace (L1 foundation -> L6 sdk: upward)",
    ]


def test_dynamic_import(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**BASE, "runyard/store/base.py": """
        import importlib
        from importlib import import_module

        def load(name):
            importlib.import_module(name)  # not a literal: unknown
            return importlib.import_module("runyard.workspace")

        errors = import_module(".errors", package="runyard")
        """})
    assert graph["runyard.store.base"] == {
        Edge("runyard.store.base", "runyard.workspace", 6, "dynamic"),
        Edge("runyard.store.base", "runyard.errors", 8, "dynamic"),
    }
    assert _upward(graph) == [
        "runyard.store.base:6 imports runyard.workspace [dynamic import] "
        "(L1 foundation -> L6 sdk: upward)"
    ]


def test_from_import_of_a_submodule_or_a_name(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**BASE, "runyard/store/base.py": "", "runyard/store/sql.py": """
        from runyard.store import base, Record
        from runyard.store.sql import helper
        import runyard.store.base
        """})
    # runyard.store.sql imports itself (dropped); no implicit edge to the parent packages
    assert graph["runyard.store.sql"] == {
        Edge("runyard.store.sql", "runyard.store.base", 1, "module"),
        Edge("runyard.store.sql", "runyard.store", 1, "module"),
        Edge("runyard.store.sql", "runyard.store.base", 3, "module"),
    }


def test_kind_importing_a_sibling_kind(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {
        "runyard/compute/__init__.py": "",
        "runyard/compute/base.py": "",
        "runyard/compute/local.py": "from runyard.compute import base\n",
        "runyard/compute/cluster/__init__.py": "",
        "runyard/compute/cluster/kind.py": """
            from runyard.compute.base import ComputeTarget
            from ..local import LocalTarget
            """,
        "runyard/compute/spark/__init__.py": """
            def make():
                from runyard.compute.cluster import kind
            """,
    })
    assert check_kinds_do_not_import_each_other(graph) == [
        "runyard.compute.cluster.kind:2 imports runyard.compute.local (compute kind 'cluster' "
        "-> kind 'local': kinds never import each other; move shared code directly under "
        "runyard.compute)",
        "runyard.compute.spark:2 imports runyard.compute.cluster.kind [inside a function] "
        "(compute kind 'spark' -> kind 'cluster': kinds never import each other; move shared "
        "code directly under runyard.compute)",
    ]


def test_runtime_importing_outside_runtime(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {
        **BASE,
        "runyard/runtime/__init__.py": "",
        "runyard/runtime/spool.py": "",
        "runyard/runtime/run.py": """
            from runyard.runtime import spool
            from runyard.errors import RunyardError
            """,
    })
    assert check_runtime_imports_only_runtime(graph) == [
        "runyard.runtime.run:2 imports runyard.errors (runyard.runtime may import only "
        "runyard.runtime.*: it ships alone to remote hosts)"
    ]
    assert _upward(graph) == []


def test_three_module_cycle(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {
        "runyard/store/__init__.py": "",
        "runyard/store/a.py": "import os\nfrom runyard.store import b\n",
        "runyard/store/b.py": "def f():\n    from runyard.store import c\n",
        "runyard/store/c.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import runyard.store.a\n"
        ),
        "runyard/store/d.py": "import runyard.store.a\n",
    })
    assert [c for c in strongly_connected_components(graph) if len(c) > 1] == [
        ["runyard.store.a", "runyard.store.b", "runyard.store.c"]
    ]
    assert check_no_import_cycles(graph) == [
        "import cycle: runyard.store.a -> runyard.store.b -> runyard.store.c -> runyard.store.a "
        "(runyard.store.a:2, runyard.store.b:2 function, runyard.store.c:3 type_checking)"
    ]


def test_cycle_reported_once_with_its_shortest_path(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {
        "runyard/store/__init__.py": "",
        "runyard/store/a.py": "from runyard.store import b, c\n",
        "runyard/store/b.py": "from runyard.store import c\n",
        "runyard/store/c.py": "from runyard.store import a\n",
    })
    assert check_no_import_cycles(graph) == [
        "import cycle: runyard.store.a -> runyard.store.c -> runyard.store.a "
        "(runyard.store.a:1, runyard.store.c:1); part of a strongly connected component of 3 "
        "modules: runyard.store.a, runyard.store.b, runyard.store.c"
    ]


def test_module_without_or_with_two_layers(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {
        **BASE,
        "runyard/newthing.py": "",
        "runyard/store/base.py": "from runyard import gone\nimport runyard.nowhere\n",
    })
    layers = [*FAKE_LAYERS, ("L7 extra", ["runyard.errors"])]
    assert check_every_module_has_a_layer(graph, layers) == [
        "runyard.errors belongs to several layers: L0 base, L7 extra",
        "runyard.newthing belongs to no layer (add it to the layer map)",
    ]
    assert _upward(graph) == [
        "runyard.store.base:1 imports runyard (L1 foundation -> L6 sdk: upward)",
        "runyard.store.base:2 imports runyard.nowhere, which is not a module under src/runyard "
        "and has no layer",
    ]

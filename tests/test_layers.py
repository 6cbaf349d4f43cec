"""The package layering, read from the source with ``ast`` (nothing is imported):

- the core (nni_snn's folders snn, data, files, train, and its torch-free errors, registry, nni_compat) imports
  nothing from ``search_spaces``, ``strategies`` or the application, not even inside a function;
- ``search_spaces`` and ``strategies`` import only the core (and their own package);
- the application (the folders commands, experiment, cli, and networks) is the only one that wires them in;
- no cycle among the modules' top-level imports;
- NNI's internals (anything beyond its documented API) are reached only through ``nni_snn.nni_compat``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nni_snn", "search_spaces", "strategies")
# The layers, by folder of nni_snn (and its few top-level modules): the core's import nothing from search_spaces,
# strategies or the application's; the application's wire them in.
CORE_PARTS = ("snn", "data", "files", "train", "errors", "registry", "nni_compat")
APPLICATION_PARTS = ("commands", "experiment", "cli", "networks", "__main__")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "nni_snn" or len(parts) == 1:
        return None
    return "core" if parts[1] in CORE_PARTS else "application" if parts[1] in APPLICATION_PARTS else None


CORE = {name for name in MODULES if _layer(name) == "core"}
APPLICATION = {name for name in MODULES if _layer(name) == "application"}


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """The project modules ``path`` imports (``from pkg import sub`` counts as ``pkg.sub`` when that is a module)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = ast.iter_child_nodes(tree) if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                     for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in PACKAGES)
    return found


def test_every_module_has_a_layer():
    nni_snn = {name for name in MODULES if name.split(".")[0] == "nni_snn"}
    assert nni_snn - CORE - APPLICATION == {"nni_snn"}  # the package itself: its names are imported lazily
    folders = {path.parent.name for path in (ROOT / "nni_snn").glob("*/__init__.py")} - {"examples"}
    assert folders <= set(CORE_PARTS) | set(APPLICATION_PARTS), "a new folder of nni_snn needs its layer here"


def test_folders_hold_their_layer():
    # A folder is one layer: a module that is core by its folder imports only the core (below), so a module that
    # needs the model space belongs in an application folder.
    assert {name.split(".")[1] for name in CORE} <= set(CORE_PARTS)


@pytest.mark.parametrize("module", sorted(CORE))
def test_core_imports_only_core(module):
    outside = {name for name in _imports(MODULES[module], top_level_only=False) if name not in CORE}
    assert not outside, f"{module} imports {sorted(outside)}"


@pytest.mark.parametrize("module", sorted(name for name in MODULES if name.split(".")[0] != "nni_snn"))
def test_spaces_and_strategies_import_only_core(module):
    package = module.split(".")[0]
    outside = {name for name in _imports(MODULES[module], top_level_only=False)
               if name not in CORE and name.split(".")[0] != package}
    assert not outside, f"{module} imports {sorted(outside)}"


def test_package_init_imports_nothing_at_top_level():
    # ``import nni_snn.snn.neuron`` runs nni_snn/__init__.py first: it must not pull in the model space.
    assert _imports(MODULES["nni_snn"], top_level_only=True) == set()


def test_no_import_cycle():
    graph = {name: {target for target in _imports(path, top_level_only=True) if target in MODULES}
             for name, path in MODULES.items()}
    # Importing ``a.b.c`` runs ``a``'s and ``a.b``'s __init__ first (those the importer is not inside already).
    for name, targets in graph.items():
        for target in list(targets):
            parts = target.split(".")
            for k in range(1, len(parts)):
                package = ".".join(parts[:k])
                if package in MODULES and not name.startswith(package + ".") and package != name:
                    targets.add(package)
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycle = path[path.index(target):] + [target]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


# NNI's documented API, importable anywhere; every other NNI module goes through nni_snn.nni_compat.
NNI_PUBLIC = {"nni", "nni.trial", "nni.nas.nn.pytorch", "nni.nas.strategy", "nni.nas.strategy.middleware",
              "nni.nas.evaluator", "nni.nas.evaluator.pytorch", "nni.nas.experiment"}


def _nni_internals(path: Path) -> set[str]:
    """The NNI modules beyond :data:`NNI_PUBLIC` that ``path`` imports, and its private ``nni.x._y`` attributes."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "nni")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "nni":
            found.add(node.module)
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            parts, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id == "nni":
                found.add(".".join(["nni", *reversed(parts)]))
    return found - NNI_PUBLIC


@pytest.mark.parametrize("module", sorted(set(MODULES) - {"nni_snn.nni_compat"}))
def test_nni_internals_only_through_nni_compat(module):
    internals = _nni_internals(MODULES[module])
    assert not internals, f"{module} reaches NNI's internals {sorted(internals)}: go through nni_snn.nni_compat"

"""The package layering, read from the source with ``ast`` (nothing is imported):

- core (``nni_snn``'s building blocks) imports nothing from ``search_spaces``, ``strategies`` or the application
  modules, not even inside a function;
- ``search_spaces`` and ``strategies`` import only the core (and their own package);
- the application modules (cli, search, retrain, multitrial_baseline, nni_trial, nnictl, networks, ...) are the
  only ones that wire them in;
- no cycle among the modules' top-level imports;
- NNI's internals (anything beyond its documented API) are reached only through ``nni_snn.nni_compat``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nni_snn", "search_spaces", "strategies")
CORE = {f"nni_snn.{name}" for name in ("neuron", "ops", "attention", "spikes", "genotype", "data", "events", "training",
                                        "regularizers", "baselines", "plot", "front", "archfile", "errors",
                                        "nni_compat", "registry", "userfiles", "energy", "hardware",
                                        "runfolder", "spec")}
APPLICATION = {f"nni_snn.{name}" for name in ("cli", "flags", "options", "runtime", "search", "retrain", "estimate",
                                               "export", "multitrial_baseline", "nni_trial", "nnictl", "networks", "tuners",
                                               "__main__", "manager_host", "memory")}


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


MODULES = _modules()


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
    assert CORE | APPLICATION <= set(MODULES)


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
    # ``import nni_snn.neuron`` runs nni_snn/__init__.py first: it must not pull in the model space.
    assert _imports(MODULES["nni_snn"], top_level_only=True) == set()


def test_no_import_cycle():
    graph = {name: {target for target in _imports(path, top_level_only=True) if target in MODULES}
             for name, path in MODULES.items()}
    # Importing ``a.b`` runs ``a``'s __init__ first (unless the importer is inside ``a`` already).
    for name, targets in graph.items():
        for target in list(targets):
            package = target.split(".")[0]
            if package != target and package != name.split(".")[0]:
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

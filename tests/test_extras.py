"""Optional dependencies (pyproject's extras): a command that needs one that is not installed says in one line which
extra to install, exit code 2. Each run blocks the package in a fresh interpreter with a ``None`` entry in
``sys.modules``, which is how Python itself reports a module that cannot be imported (ModuleNotFoundError)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nni_snn.errors import UsageError, optional_import

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "benchmarks" / "results" / "energy_front" / "sOvdF" / "arch.json"


def _without(package: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = (f"import sys; sys.modules[{package!r}] = None\n"
            "from nni_snn.cli.main import main\n"
            f"sys.exit(main({args!r}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("package,extra,what,args", [
    ("nir", "export", "nni-snn export", ["export", ".", "--output", "net.nir"]),
    ("tonic", "events", "event-camera data", ["show", str(ARCH), "--dataset", "digits-events", "--batches", "1"]),
])
def test_a_missing_extra_is_named_in_one_line(package, extra, what, args, tmp_path):
    done = _without(package, args, tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    line = f"nni-snn: error: {what} needs the {package} package, which is not installed: pip install 'nni-snn[{extra}]'"
    assert done.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "net.nir").exists()


def test_an_installed_package_that_fails_inside_is_not_called_missing(tmp_path, monkeypatch):
    """Only the package itself missing names the extra: a broken dependency of an installed one stays its error."""
    (tmp_path / "halfinstalled").mkdir()
    (tmp_path / "halfinstalled" / "__init__.py").write_text("import no_such_dependency_of_it\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_of_it"):
        optional_import("halfinstalled", "export", "testing")
    with pytest.raises(UsageError, match=r"pip install 'nni-snn\[export\]'"):
        optional_import("not_installed_anywhere.sub", "export", "testing")


def test_every_module_imports_without_the_extras(tmp_path):
    """`pip install nni-snn` brings the core only: no module imports an extra's package when it is imported."""
    code = ("import sys, pkgutil, importlib\n"
            "for blocked in ('tonic', 'nir', 'snntorch', 'norse', 'nirtorch'):\n"
            "    sys.modules[blocked] = None\n"
            "import nni_snn, search_spaces, strategies\n"
            "for package in (nni_snn, search_spaces, strategies):\n"
            "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
            "        if not module.name.endswith('__main__'):  # that one runs the command\n"
            "            importlib.import_module(module.name)\n"
            "print('imported')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr[-3000:]

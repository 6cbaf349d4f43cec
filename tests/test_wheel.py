"""Release: ``python -m build`` gives an sdist and a wheel that carry what a user needs, and the wheel, installed into
a fresh environment, works from a folder outside the checkout: ``nni-snn --help``, a tiny search, the example configs
(``nni-snn examples DIR``, ``nni-snn experiment quickstart``) and the Python tutorial.

The fresh environment gets its dependencies (torch, NNI, Lightning, ...) from this test environment through a
``.pth`` file listing its site-packages folders: a ``.pth`` line adds a folder to ``sys.path`` without processing the
``.pth`` files inside it, so this checkout's editable install stays out and ``nni_snn`` is the wheel's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from test_api import check_tutorial_run, run_tutorial

from nni_snn import load_arch

ROOT = Path(__file__).resolve().parents[1]
VERSION = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
# What the wheel must carry besides the packages' modules: the assets the code reads at run time (the zoo's
# architectures too) and every example config of experiments/ (shipped as nni_snn/examples/experiments).
ASSETS = ["nni_snn/experiment/manager_listen.cjs", *(f"nni_snn/zoo/{p.name}" for p in (ROOT / "nni_snn" / "zoo").glob("*.json"))]
EXAMPLES = sorted(p.name for p in (ROOT / "experiments").iterdir() if p.suffix in (".yml", ".sh"))

def _env() -> dict:
    """The environment of a user's shell: nothing of this checkout on PYTHONPATH."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _run(args: list, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True,
                            timeout=600, check=False)
    if check:
        assert result.returncode == 0, f"{args}: {result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel, built as a release is (the wheel from the sdist), without fetching build tools."""
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT], cwd=dist)
    return {"sdist": next(dist.glob("*.tar.gz")), "wheel": next(dist.glob("*.whl"))}


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed (its dependencies: this environment's, see above)."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root)
    python = root / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index",
          built["wheel"]], cwd=root)
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).stdout
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site.strip()) / "dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    return root


@pytest.mark.slow
def test_wheel_carries_the_packages_assets_and_example_configs(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    assert built["wheel"].name == f"nni_snn-{VERSION}-py3-none-any.whl"
    for package in ("nni_snn", "search_spaces", "strategies"):
        assert {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")} <= names
    assert set(ASSETS) <= names
    assert {name.rsplit("/", 1)[1] for name in names if name.startswith("nni_snn/examples/experiments/")} == \
        set(EXAMPLES)
    assert not any(name.startswith(("tests/", "benchmarks/", "docs/")) for name in names)


@pytest.mark.slow
def test_sdist_carries_tests_and_docs(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"pyproject.toml", "README.md", "tests/conftest.py", "tests/test_wheel.py",
            "docs/tutorials/nas_experiment.py", *(f"experiments/{name}" for name in EXAMPLES), *ASSETS} <= names


@pytest.mark.slow
def test_installed_wheel_runs_from_outside_the_checkout(venv, tmp_path):
    bin_dir = venv / "bin"
    where = _run([bin_dir / "python", "-c", "import nni_snn; print(nni_snn.__file__, nni_snn.__version__)"],
                 cwd=tmp_path).stdout.split()
    assert Path(where[0]).is_relative_to(venv) and where[1] == VERSION  # the wheel's package, not the checkout's
    assert "search" in _run([bin_dir / "nni-snn", "--help"], cwd=tmp_path).stdout
    assert _run([bin_dir / "nni-snn", "--version"], cwd=tmp_path).stdout.strip() == f"nni-snn {VERSION}"

    # A tiny search: a valid arch.json.
    _run([bin_dir / "nni-snn", "search", "--dataset", "digits", "--width", "4", "--cells", "3", "--epochs", "1",
          "--batch-size", "128", "--no-progress", "--output", "run"], cwd=tmp_path)
    assert load_arch(tmp_path / "run" / "arch.json")["attention"] == "ma"

    # The example configs: by name, from inside the installed package (its trialCodeDirectory there too), and copied
    # out, never over existing files.
    code = ("from nni_snn.experiment.nnictl import config_path, read_config; p = config_path('quickstart'); print(p); "
            "print((p.parent / read_config(p)['trialCodeDirectory']).resolve())")
    found = _run([bin_dir / "python", "-c", code], cwd=tmp_path).stdout.split()
    assert Path(found[0]).is_relative_to(venv) and Path(found[1]) == Path(found[0]).parent.parent
    _run([bin_dir / "nni-snn", "examples", "mine"], cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "mine" / "experiments").iterdir()) == EXAMPLES
    again = _run([bin_dir / "nni-snn", "examples", "mine"], cwd=tmp_path, check=False)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1 and "exists" in again.stderr

    # The Python tutorial, against the installed package.
    folder = tmp_path / "tutorial"
    folder.mkdir()
    check_tutorial_run(folder, run_tutorial(bin_dir / "python", folder, _env()))


def test_example_configs_by_name_and_copied_out_never_over_a_file(tmp_path, capsys):
    from nni_snn.cli.main import main
    from nni_snn.experiment.nnictl import config_path, example_configs

    assert config_path("quickstart").resolve() == ROOT / "experiments" / "quickstart.yml"
    assert "efficient_fashionmnist" not in example_configs()  # search options for --config, not an nnictl config
    assert main(["experiment", "quickstrat"]) == 2
    assert "quickstart" in capsys.readouterr().err  # the one line names the examples there are

    assert main(["examples", str(tmp_path)]) == 0
    copied = tmp_path / "experiments"
    assert sorted(p.name for p in copied.iterdir()) == EXAMPLES
    assert (copied / "quickstart.yml").read_text() == (ROOT / "experiments" / "quickstart.yml").read_text()
    (copied / "search_cifar10.yml").unlink()
    (copied / "quickstart.yml").write_text("# mine\n")
    capsys.readouterr()
    assert main(["examples", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "exists: not overwriting it" in err
    # Refused before writing anything: the user's file is kept, the missing one not copied again.
    assert (copied / "quickstart.yml").read_text() == "# mine\n" and not (copied / "search_cifar10.yml").exists()


def test_version(capsys):
    from nni_snn.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"nni-snn {VERSION}"

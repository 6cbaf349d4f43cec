"""A run's output folder, in one place: which file holds what, how each is written (atomically: a reader never
sees half a file, a killed run leaves the previous whole) and how a run's config is read back.

A run folder (``--output``, or an NNI trial's own folder)::

    arch.json              the architecture found (search, multi-trial)
    metrics.json           the run's results
    config.yaml            every option it ran with, readable back with --config
    normal.png, reduce.png the cells (search)
    checkpoints/           last.ckpt (every epoch: what --resume continues from), best.ckpt (retrain: the epoch
                           best on validation)
    tensorboard/version_N  one TensorBoard version per run
    retrain/               the retrain after a search: a run folder of its own
    front.json, front/lambda-L/
                           an energy-front search: one row per lambda, and each lambda's run folder

Torch-free: the command line reads and claims folders before anything heavy is imported.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from nni_snn.errors import UsageError
from nni_snn.files.userfiles import load_yaml, read_user_file

ARCH, METRICS, CONFIG = "arch.json", "metrics.json", "config.yaml"
RESULTS = (ARCH, METRICS)  # a finished run: search writes both, retrain metrics.json
# nni_snn.files.genotype.CELL_TYPES, spelt out: importing it would import torch.
CELL_TYPES = ("normal", "reduce")
CONFIG_LIMIT = 4 << 20  # a config holds a few kB


class RunFolder:
    """The files of the run in ``path``; nothing is created until something is written."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.arch = self.path / ARCH
        self.metrics = self.path / METRICS
        self.config = self.path / CONFIG
        self.checkpoints = self.path / "checkpoints"
        self.resume_checkpoint = self.checkpoints / "last.ckpt"
        self.best_checkpoint = self.checkpoints / "best.ckpt"
        self.tensorboard = self.path / "tensorboard"
        self.front_table = self.path / "front.json"

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def retrain(self) -> RunFolder:
        return RunFolder(self.path / "retrain")

    def front(self, lam: float) -> RunFolder:
        """Lambda ``lam``'s run of an energy-front search."""
        return RunFolder(self.path / "front" / f"lambda-{lam:g}")

    def picture(self, cell_type: str) -> Path:
        return self.path / f"{cell_type}.png"

    @staticmethod
    def below(root: Path) -> list[RunFolder]:
        """``root`` when it holds a run (an arch.json), else every run below it (e.g. in an NNI experiment's
        folder), in path order."""
        root = Path(root)
        if RunFolder(root).arch.is_file():
            return [RunFolder(root)]
        return [RunFolder(folder) for folder in sorted(p.parent for p in root.rglob(ARCH))]

    def read_config(self, error: type[Exception] = UsageError) -> dict:
        """The options config.yaml records; a file that cannot be read is an ``error`` in one line."""
        return read_mapping(self.config, str(self.config), error=error)

    def write_config(self, settings: dict) -> None:
        write_text_atomic(self.config, config_text(settings))

    def write_arch(self, arch: dict) -> None:
        write_json_atomic(self.arch, arch)

    def write_metrics(self, metrics: dict) -> None:
        write_json_atomic(self.metrics, metrics)

    def run_files(self, keep: set[Path]) -> list[str]:
        """The results and checkpoints of a run here and in its retrain/, relative to this folder, except those in
        ``keep`` (resolved paths): what makes the folder another run's."""
        return self._run_files(keep) + [f"{self.retrain.path.name}/{name}" for name in self.retrain._run_files(keep)]

    def _run_files(self, keep: set[Path]) -> list[str]:
        found = [p.name for p in (self.arch, self.metrics) if p.is_file() and p.resolve() not in keep]
        return found + [f"{self.checkpoints.name}/{c.name}" for c in sorted(self.checkpoints.glob("*.ckpt"))]

    def remove_run(self, keep: set[Path]) -> None:
        """Remove what a run wrote here and in its retrain/, except the files in ``keep``. Nothing else: the folder
        may hold other things, and the TensorBoard logs stay (each run logs into a version folder of its own)."""
        for folder in (self, self.retrain):
            for path in (folder.arch, folder.metrics, folder.config, *map(folder.picture, CELL_TYPES)):
                if path.resolve() not in keep:
                    path.unlink(missing_ok=True)
            for checkpoint in folder.checkpoints.glob("*.ckpt"):
                checkpoint.unlink()


def read_mapping(path: str | Path, source: str, *, error: type[Exception] = UsageError,
                 expected: str = "a mapping of option names to values", syntax: str = "YAML/JSON") -> dict:
    """The mapping in a YAML (or JSON) file: a run's config.yaml, a user's --config, an nnictl config. Read within
    :data:`CONFIG_LIMIT` and safely (:mod:`nni_snn.files.userfiles`); a file that cannot be read, parsed or is not a
    mapping is an ``error`` in one line starting with ``source``."""
    import yaml

    try:
        data = load_yaml(read_user_file(path, limit=CONFIG_LIMIT))
    except OSError as err:
        raise error(f"{source}: cannot read ({err.strerror})") from None
    except (yaml.YAMLError, RecursionError) as err:
        why = (str(err).splitlines() or [type(err).__name__])[0]
        raise error(f"{source}: not valid {syntax} ({why})") from None
    if not isinstance(data, dict):
        raise error(f"{source}: expected {expected}")
    return data


def config_text(settings: dict) -> str:
    """config.yaml's text: the options in their order, as ``--print-config`` shows them too."""
    import yaml

    return yaml.safe_dump(settings, sort_keys=False)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON next to ``path`` and rename it over: readers never see a half-written file."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` next to ``path`` and rename it over: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make results unreadable to others
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

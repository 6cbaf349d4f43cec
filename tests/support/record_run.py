"""``nni-snn`` with recorders, for the DDP tests: ``python tests/support/record_run.py FOLDER search|retrain ...``.

Runs the command line as ``python -m nni_snn`` does, and records in every process of the run:

- after every training step, the architecture weights this process holds (every ``_arch_alpha`` parameter, by name:
  none in a retrain) and its own share of the step (the labels of its training batch and its loss);
- at the end of each fit, its trained parameters;
- every file it opens for writing, or renames into place, under the current directory's ``--output`` (Python's
  audit hooks see each ``open`` and ``os.replace``: the JSON files, pictures, checkpoints and TensorBoard events).

Each process saves ``FOLDER/<search|retrain>_rank<global rank>.pt`` after each fit and ``FOLDER/writes_rank<global
rank>.json`` at exit, so a test can compare what the processes held and check which of them wrote. Lightning's DDP
starts a machine's other processes by running this same script, so they get the recorders too.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

from nni_snn.cli import main as cli
from nni_snn.commands import retrain, search

RANK = {"rank": None}
WRITES: list[str] = []


class Record(pl.Callback):
    def __init__(self, folder: Path, kind: str):
        self.folder, self.kind, self.steps = folder, kind, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        alphas = {name: p.detach().clone() for name, p in pl_module.named_parameters() if "_arch_alpha" in name}
        labels = (batch["train"] if isinstance(batch, dict) else batch)[1]
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.steps.append({"alpha": alphas, "labels": labels.clone(), "loss": float(loss)})

    def on_fit_end(self, trainer, pl_module):
        RANK["rank"] = trainer.global_rank
        final = {name: p.detach().clone() for name, p in pl_module.named_parameters()}
        self.folder.mkdir(parents=True, exist_ok=True)
        torch.save({"steps": self.steps, "final": final}, self.folder / f"{self.kind}_rank{trainer.global_rank}.pt")


def main() -> int:
    folder, argv = Path(sys.argv[1]).resolve(), sys.argv[2:]
    output = Path(argv[argv.index("--output") + 1]).resolve()

    def audit(event, args):
        if event == "open" and isinstance(args[0], (str, os.PathLike)):
            path, mode, flags = args
            writing = any(c in (mode or "") for c in "wax+") or (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        elif event == "os.rename":
            path, writing = args[1], True
        else:
            return
        if writing and isinstance(path, (str, os.PathLike)) and Path(os.fspath(path)).resolve().is_relative_to(output):
            WRITES.append(os.fspath(path))

    sys.addaudithook(audit)

    @atexit.register
    def save_writes():
        rank = RANK["rank"]
        if rank is not None:
            (folder / f"writes_rank{rank}.json").write_text(json.dumps(WRITES))

    for module, kind in ((search, "search"), (retrain, "retrain")):
        plain = module.trainer

        def with_recorder(opts, out, callbacks, _plain=plain, _kind=kind, **kwargs):
            return _plain(opts, out, [*callbacks, Record(folder, _kind)], **kwargs)

        module.trainer = with_recorder
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())

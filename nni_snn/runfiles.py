"""Where a run's files lie in its output folder, torch-free: the options (a search's retrain resumes when its
checkpoint is there), the command line and the trainer all ask here."""

from __future__ import annotations

from pathlib import Path


def resume_path(output: Path) -> Path:
    """The checkpoint ``--resume`` (and a resumed NNI trial) continues from, rewritten after every epoch."""
    return output / "checkpoints" / "last.ckpt"

"""The machinery every training command shares: data loaders and their sampler, devices, the Lightning trainer,
checkpoints, and the allocator tuning. What to train and what to record is ``search``, ``retrain`` and
``multitrial_baseline``'s.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger

from nni_snn.files.runfolder import RunFolder
from nni_snn.train.hardware import uses_cuda
from nni_snn.train.lightning import NonFiniteGuard

if TYPE_CHECKING:
    from nni_snn.cli.options import TrainOptions


class EpochShuffle(torch.utils.data.Sampler):
    """A shuffle that depends only on (seed, epoch): a resumed run sees the same batches as an uninterrupted one.
    ``shuffle=False``: the dataset's order.

    Lightning calls ``set_epoch`` at the start of every training epoch. Under DDP each process takes every
    (processes)-th index of that one order, from its rank on (padded at the end with the first indices to a multiple
    of the processes, as torch's DistributedSampler does, so that every process runs as many batches): the
    processes' k-th batches together are the k-th batch of one process with their summed batch size. The trainer
    leaves samplers alone (``use_distributed_sampler=False``); Lightning's own would reshuffle the order.
    """

    def __init__(self, size: int, seed: int, shuffle: bool = True):
        self.size, self.seed, self.shuffle, self.epoch = size, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @staticmethod
    def _shard() -> tuple[int, int]:
        """(rank, processes) of the running distributed job, read when iterating (the group exists by then)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def __iter__(self):
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        rank, processes = self._shard()
        if processes > 1:
            order += order[:len(self) * processes - self.size]
        return iter(order[rank::processes])

    def __len__(self) -> int:
        return math.ceil(self.size / self._shard()[1])


def loader(dataset, batch_size: int, shuffle: bool, num_workers: int, seed: int, cuda: bool = False):
    """A traced DataLoader (as NNI's evaluators want). On a GPU its batches come in pinned memory, so the copy to
    the device can overlap compute; with workers, they live across epochs instead of being restarted. Under DDP
    each process loads its own share of every batch (:class:`EpochShuffle`)."""
    from nni.nas.evaluator.pytorch import DataLoader

    return DataLoader(dataset, batch_size=batch_size, sampler=EpochShuffle(len(dataset), seed, shuffle),
                      num_workers=num_workers, pin_memory=cuda, persistent_workers=num_workers > 0)


def loader_workers(num_workers: int | None, accelerator: str) -> int:
    """``--num-workers``, or its default: 0 on the CPU (the in-memory datasets need no workers, and worker processes
    would compete with training for the cores), up to 4 on a GPU (decoding and augmenting CIFAR images for a GPU
    step takes several cores)."""
    if num_workers is not None:
        return num_workers
    return min(4, os.cpu_count() or 1) if uses_cuda(accelerator) else 0


def last_checkpoint(output: Path):
    """The callback that writes the run's ``resume_checkpoint`` (:class:`~nni_snn.files.runfolder.RunFolder`) after every
    training epoch (what ``--resume`` and a resumed NNI trial continue from), for search and retrain alike.

    Not ``save_last=True``: Lightning 2.6 writes save_last's file only in an epoch where a monitored (top-k)
    checkpoint was saved, so a search (no other checkpoint) wrote it once, when training ended, and a retrain with
    ``--val-every N`` or no new best lost epochs. An unmonitored top-1 checkpoint named "last" is rewritten every
    epoch."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    resume = RunFolder(output).resume_checkpoint
    return ModelCheckpoint(dirpath=resume.parent, filename=resume.stem, save_top_k=1, save_on_train_epoch_end=True,
                           enable_version_counter=False)


def tensorboard_version(output: Path, resume: bool) -> int:
    """The version folder (``output/tensorboard/version_N``) this run logs into: a new one per run, so that two
    runs' curves never mix in one folder; a resumed run continues the latest, its own (a run started after it
    replaced its checkpoints, so it could no longer be resumed)."""
    versions = [int(p.name[len("version_"):]) for p in RunFolder(output).tensorboard.glob("version_*")
                if p.name[len("version_"):].isdigit()]
    if not versions:
        return 0
    return max(versions) if resume else max(versions) + 1


class _NoAdverts(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing ..." lines: adverts for services, not facts about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡")


def trainer(opts: TrainOptions, output: Path, callbacks: list, traced: bool = False, **kwargs):
    """The Lightning trainer of ``opts`` (its epochs, hardware and terminal settings), for search (``traced`` for NNI's
    evaluator), retrain and the multi-trial trials, logging to TensorBoard in ``output``. Without ``--verbose`` it
    prints no model summary table and no tips, only the progress bar and the result."""
    from nni.nas.evaluator.pytorch import Trainer

    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero"):
        log = logging.getLogger(name)
        for f in [f for f in log.filters if isinstance(f, _NoAdverts)]:
            log.removeFilter(f)
        if not opts.verbose:
            log.addFilter(_NoAdverts())
    kwargs.setdefault("enable_model_summary", opts.verbose)

    return (Trainer if traced else pl.Trainer)(
        max_epochs=opts.epochs, accelerator=opts.accelerator, devices=opts.devices, num_nodes=opts.num_nodes,
        strategy=opts.strategy, precision=opts.precision,
        logger=TensorBoardLogger(str(output), name=RunFolder(output).tensorboard.name,
                                 version=tensorboard_version(output, getattr(opts, "resume", False))),
        callbacks=[NonFiniteGuard(), *callbacks], num_sanity_val_steps=0, log_every_n_steps=1,
        use_distributed_sampler=False,  # the loaders' EpochShuffle shards itself under DDP
        enable_progress_bar=opts.progress, **kwargs)


def is_global_zero(opts: TrainOptions) -> bool:
    """Whether this process is rank 0 of ``opts``'s run: the one that writes the run's files and reports to NNI.

    Lightning's DDP starts the other processes of a machine by running the same command with ``LOCAL_RANK`` set,
    and a user (or a cluster) starts each machine's with ``NODE_RANK`` (torchrun: ``RANK``), so before the process
    group exists the environment says; once it exists, its rank does. A run on one device is rank 0 whatever the
    environment holds.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    if opts.devices * opts.num_nodes == 1:
        return True
    return all(int(os.environ.get(name) or 0) == 0 for name in ("RANK", "NODE_RANK", "LOCAL_RANK"))


def wait_for_all() -> None:
    """A barrier across the processes of a distributed run (e.g. for rank 0's arch.json before a retrain reads it);
    nothing on one process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def keep_freed_memory() -> None:
    """Have glibc's malloc keep freed blocks up to 32 MiB for reuse instead of returning them to the OS.

    Its defaults return large blocks (above a threshold that starts at 128 KiB) and the next allocation of the same
    size faults every page in again. A CPU training step allocates and frees the same activation-sized tensors
    over and over: measured on a T = 4 retrain step (width 16, 6 cells, batch 32, 32x32), 375,000 page faults and
    about a quarter of the step's time. Linux with glibc only; anywhere else this does nothing. Safe to call twice.

    A user who sets glibc's malloc tunables (``MALLOC_MMAP_THRESHOLD_`` and the like, or ``GLIBC_TUNABLES``) keeps
    them: the heap that this keeps raises the peak RSS (a search step at T = 2, width 8: 1.5x the bytes in use; with
    ``MALLOC_MMAP_THRESHOLD_=262144`` about NNI's ANN DARTS step's peak, at 1.75x the step time; see
    docs/benchmarks.md, "Where a search step's time and memory go").
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    if any(name.startswith("MALLOC_") and name.endswith("_") for name in os.environ) or \
            "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's maximum: blocks below it come from the heap, and are reused
    mallopt(m_trim_threshold, 1 << 30)  # do not shrink the heap after every large free
    mallopt(m_top_pad, 64 << 20)  # grow it in large steps

"""What ``nni-snn search`` and ``nni-snn retrain`` do, once their options are known and valid.

Application layer: with ``networks``, ``multitrial_baseline`` and ``cli``, the only modules of ``nni_snn`` that wire
in ``search_spaces`` and ``strategies`` (the core imports neither; tests/test_layers.py).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger

from nni_snn.archfile import make_arch, write_json_atomic
from nni_snn.data import load_for, split_for_search
from nni_snn.genotype import CELL_TYPES, genotype_from_sample
from nni_snn.networks import build_network
from nni_snn.neuron import NEURONS, neuron_options
from nni_snn.training import (
    COUNTED,
    RESULT_COUNTS,
    DropPathSchedule,
    EpochReporter,
    NonFiniteGuard,
    SNNClassifier,
    trial_result,
)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def network_parameters(net: torch.nn.Module) -> dict:
    """``params``: the network a user deploys, without the auxiliary head (a training aid);
    ``params_with_auxiliary_head``: with it, as DARTS-style papers count (equal when ``net`` has none)."""
    total = count_parameters(net)
    head = getattr(net, "auxiliary_head", None)
    return {"params": total - (count_parameters(head) if head is not None else 0),
            "params_with_auxiliary_head": total}


class EpochShuffle(torch.utils.data.Sampler):
    """A shuffle that depends only on (seed, epoch): a resumed run sees the same batches as an uninterrupted one.

    Lightning calls ``set_epoch`` at the start of every training epoch (and wraps it for DDP).
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def keep_freed_memory() -> None:
    """Have glibc's malloc keep freed blocks up to 32 MiB for reuse instead of returning them to the OS.

    Its defaults return large blocks (above a threshold that starts at 128 KiB) and the next allocation of the same
    size faults every page in again. A CPU training step allocates and frees the same activation-sized tensors
    over and over: measured on a T = 4 retrain step (width 16, 6 cells, batch 32, 32x32), 375,000 page faults and
    about a quarter of the step's time. Linux with glibc only; anywhere else this does nothing. Safe to call twice.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
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


def uses_cuda(accelerator: str) -> bool:
    """Whether Lightning's ``accelerator`` option will train on a CUDA GPU here."""
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def loader_workers(opts: dict) -> int:
    """``--num-workers``, or its default: 0 on the CPU (the in-memory datasets need no workers, and worker processes
    would compete with training for the cores), up to 4 on a GPU (decoding and augmenting CIFAR images for a GPU
    step takes several cores)."""
    if opts.get("num_workers") is not None:
        return opts["num_workers"]
    return min(4, os.cpu_count() or 1) if uses_cuda(opts.get("accelerator", "auto")) else 0


def _loader(dataset, batch_size: int, shuffle: bool, num_workers: int, seed: int, cuda: bool = False):
    """A traced DataLoader (as NNI's evaluators want). On a GPU its batches come in pinned memory, so the copy to
    the device can overlap compute; with workers, they live across epochs instead of being restarted."""
    from nni.nas.evaluator.pytorch import DataLoader

    sampler = EpochShuffle(len(dataset), seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, pin_memory=cuda,
                      persistent_workers=num_workers > 0)


def _checkpoints(output: Path, **kwargs):
    """Lightning checkpoints under ``output/checkpoints``: ``last.ckpt`` after every training epoch (what
    ``--resume`` continues from), written after the NaN guard has checked the epoch."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    return ModelCheckpoint(dirpath=output / "checkpoints", save_last=True, save_on_train_epoch_end=True, **kwargs)


def resume_path(output: Path) -> Path:
    return output / "checkpoints" / "last.ckpt"


class _NoAdverts(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing ..." lines: adverts for services, not facts about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡")


def _trainer(opts: dict, output: Path, callbacks: list, traced: bool = False, **kwargs):
    """The Lightning trainer of search (``traced`` for NNI's evaluator) and retrain. Without ``--verbose`` it prints
    no model summary table and no tips, only the progress bar and the result."""
    from nni.nas.evaluator.pytorch import Trainer

    verbose = bool(opts.get("verbose"))
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero"):
        log = logging.getLogger(name)
        for f in [f for f in log.filters if isinstance(f, _NoAdverts)]:
            log.removeFilter(f)
        if not verbose:
            log.addFilter(_NoAdverts())
    kwargs.setdefault("enable_model_summary", verbose)

    return (Trainer if traced else pl.Trainer)(
        max_epochs=opts["epochs"], accelerator=opts["accelerator"], devices=opts["devices"],
        precision=opts.get("precision", "32"),
        logger=TensorBoardLogger(str(output), name="tensorboard", version=""),
        callbacks=[NonFiniteGuard(), *callbacks], num_sanity_val_steps=0, log_every_n_steps=1,
        enable_progress_bar=opts.get("progress", True), **kwargs)


# What a retrain was trained with, recorded in its metrics.json under "recipe" (the keys a caller may leave out
# default as in nni-snn retrain's options).
RECIPE_KEYS = ("width", "cells", "epochs", "batch_size", "lr", "lr_min", "auxiliary_weight", "grad_clip", "drop_path",
               "cutout", "subset_per_class", "val_every")

def _final_metrics(reporter: EpochReporter, params: dict) -> dict:
    last = reporter.history[-1]
    return {"accuracy": last.get("val_acc"), **{k: last[k] for k in COUNTED}, **params,
            "energy_pj": dict(zip(("ac", "mac"), reporter.energy_pj)), "history": reporter.history}


def neuron_spec(opts: dict, base: dict | None = None) -> dict:
    """The neuron spec (``nni_snn.neuron.make_neuron``) of ``opts``, over ``base`` (an arch file's) where an option
    is None, holding the keys given that the neuron takes (``nni_snn.neuron.neuron_options``): e.g. ``{"kind":
    "lif", "tau": ..., "v_threshold": ..., "surrogate": ..., "alpha": ..., "detach_reset": ...}`` or ``{"kind":
    "relu"}``."""
    spec = dict(base or {})
    options = (("kind", "neuron"), ("tau", "tau"), ("v_threshold", "v_threshold"), ("surrogate", "surrogate"),
               ("alpha", "surrogate_alpha"), ("detach_reset", "detach_reset"))
    for key, option in options:
        if opts.get(option) is not None:
            spec[key] = opts[option]
    kind = spec.pop("kind", "lif")
    if kind not in NEURONS:  # make_neuron names the problem
        return {"kind": kind, **spec}
    taken = neuron_options(kind)
    return {"kind": kind, **{k: v for k, v in spec.items() if k in taken}}


def _reporter(opts: dict, trial) -> EpochReporter:
    return EpochReporter(report=trial.intermediate if trial else None, e_ac_pj=opts["e_ac_pj"],
                         e_mac_pj=opts["e_mac_pj"])


def run_search(opts: dict, output: Path, trial=None) -> dict:
    """MA-DARTS on ``opts['dataset']``; writes arch.json, metrics.json, cell pictures and TensorBoard logs."""
    from nni.nas.evaluator.pytorch import Lightning
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace

    from search_spaces import SNNDartsSpace
    from strategies import MADarts

    keep_freed_memory()
    pl.seed_everything(opts["seed"], workers=True, verbose=False)
    data = load_for(opts, opts["timesteps"])
    weight_half, alpha_half = split_for_search(data.train, opts["seed"])
    neuron = neuron_spec(opts)
    space = SNNDartsSpace(width=opts["width"], num_cells=opts["cells"], timesteps=opts["timesteps"],
                          attention=opts["attention"], num_classes=data.num_classes, in_channels=data.in_channels,
                          neuron=neuron, normalize=opts["normalize"], attention_cells=opts["attention_cells"],
                          cell_norm=opts["cell_norm"], partial_channels=opts["partial_channels"])
    reporter = _reporter(opts, trial)
    workers, cuda = loader_workers(opts), uses_cuda(opts["accelerator"])
    evaluator = Lightning(
        SNNClassifier(num_classes=data.num_classes, learning_rate=opts["lr"]),
        _trainer(opts, output, [reporter, _checkpoints(output, save_top_k=0)], traced=True),
        train_dataloaders=_loader(weight_half, opts["batch_size"], True, workers, opts["seed"], cuda),
        val_dataloaders=_loader(alpha_half, opts["batch_size"], False, workers, opts["seed"], cuda),
        # Resumed checkpoints are loaded as plain tensors and containers: nothing in them is unpickled as code.
        fit_kwargs={"ckpt_path": str(resume_path(output)), "weights_only": True} if opts.get("resume") else None,
    )
    # NNI's DARTS writes every edge's alpha to the logger every n steps, copying each to the host (a GPU sync per
    # edge): once per epoch, at its first step, like the rest of what an epoch reports.
    steps_per_epoch = -(-len(weight_half) // opts["batch_size"])
    strategy = MADarts(reporter=reporter, arc_learning_rate=opts["arc_lr"], spike_penalty=opts["spike_penalty"],
                       warmup_epochs=opts["warmup_epochs"], log_prob_every_n_step=steps_per_epoch)
    strategy(RawFormatModelSpace.from_model(space, evaluator), SequentialExecutionEngine())

    selection = None
    if opts["select"] == "perturbation":  # the final supernet's weights are the ones in memory: its epoch is written
        mode, record = "last", reporter.history[-1]
        sample, selection = _select_by_perturbation(strategy.supernet, alpha_half, opts)
    else:
        mode = opts.get("export", "best")
        record = reporter.history[choose_export(reporter.history, mode, opts["warmup_epochs"])]
        sample = record["nni_sample"]
    arch = make_arch(attention=opts["attention"], attention_cells=opts["attention_cells"], timesteps=opts["timesteps"],
                     genotype=genotype_from_sample(sample), neuron=neuron, normalize=opts["normalize"],
                     cell_norm=opts["cell_norm"],
                     alpha=record["alpha"], nni_sample=sample,
                     search={**{k: opts[k] for k in ("dataset", "subset_per_class", "width", "cells", "epochs",
                                                     "batch_size", "seed", "lr", "arc_lr", "warmup_epochs",
                                                     "spike_penalty", "select", "partial_channels")},
                             **({k: opts[k] for k in ("frames_by", "event_size")} if data.frames else {}),
                             "export": mode, "export_epoch": record["epoch"]})
    metrics = _final_metrics(reporter, derived_params(arch, opts, data))  # the final epoch's, params the export's
    metrics["supernet_params"] = count_parameters(space)
    metrics["export"] = {"mode": mode, "epoch": record["epoch"], "accuracy": record.get("val_acc")}
    if selection is not None:
        metrics["selection"] = selection
    # The results are those of the exported epoch's supernet (its alpha, weights and validation pass).
    arch["results"] = {"accuracy": record.get("val_acc"),
                       **{k: record[k] for k in RESULT_COUNTS},
                       **{k: metrics[k] for k in ("params", "params_with_auxiliary_head")}}
    write_search_outputs(output, arch, metrics)
    return metrics


def _select_by_perturbation(supernet: torch.nn.Module, alpha_half, opts: dict) -> tuple[dict, dict]:
    """DARTS-PT's sample and scores (:mod:`strategies.perturbation`) on the first ``select_images`` of the alpha half,
    read once so that every perturbation is scored on the same images."""
    from strategies.perturbation import select_by_perturbation

    device = torch.device("cuda" if uses_cuda(opts["accelerator"]) else "cpu")
    batches, left = [], opts["select_images"]
    for x, y in _loader(alpha_half, opts["batch_size"], False, 0, opts["seed"]):
        batches.append((x[:left].to(device), y[:left].to(device)))
        left -= len(batches[-1][1])
        if left <= 0:
            break
    start = time.perf_counter()
    sample, scores = select_by_perturbation(supernet.to(device), batches)
    return sample, {**scores, "images": sum(len(y) for _, y in batches), "seconds": time.perf_counter() - start}


def choose_export(history: list[dict], mode: str, warmup_epochs: int = 0) -> int:
    """The index in ``history`` (= the 0-based epoch) of the architecture a search writes.

    ``last``: the final epoch. ``best``: the epoch whose supernet reached the highest validation accuracy on the alpha
    half (the paper keeps the structure "according to accuracy"); on a tie the later epoch, whose alpha had more
    training. Warm-up epochs do not train alpha, so their architecture is the initial one and is not a candidate
    unless the whole run was warm-up. An epoch without an accuracy ranks below any with one.
    """
    if not history:
        raise ValueError("the search recorded no epoch")
    if mode == "last":
        return len(history) - 1
    if mode != "best":
        raise ValueError(f"unknown export {mode!r}")
    candidates = [i for i in range(len(history)) if history[i]["epoch"] >= warmup_epochs] or range(len(history))

    def score(i: int) -> tuple:
        acc = history[i].get("val_acc")
        measured = acc is not None and not math.isnan(acc)
        return (measured, acc if measured else 0.0, i)

    return max(candidates, key=score)


def derived_params(arch: dict, opts: dict, data) -> dict:
    """Parameters of the network ``arch`` describes, at the search's width and depth (:func:`network_parameters`)."""
    return network_parameters(build_network(arch, width=opts["width"], num_cells=opts["cells"], auxiliary=True,
                                            num_classes=data.num_classes, in_channels=data.in_channels))


def write_search_outputs(output: Path, arch: dict, metrics: dict) -> None:
    """What every search (MA-DARTS or multi-trial) leaves: arch.json, metrics.json and the cell pictures."""
    from nni_snn.plot import draw_cell

    write_json_atomic(output / "arch.json", arch)
    write_json_atomic(output / "metrics.json", metrics)
    for cell_type in CELL_TYPES:
        draw_cell(arch["genotype"][cell_type], f"{cell_type} cell ({arch['attention']} attention)",
                  output / f"{cell_type}.png")


def estimate_energy(net: torch.nn.Module, images, batches: int, checkpoint: str | None, e_ac_pj: float,
                    e_mac_pj: float) -> dict:
    """Spikes, SOPs, MACs and energy per sample of ``net`` in evaluation mode over the first ``batches`` batches
    of 64 from ``images``, with the weights of a retrain ``checkpoint`` if given (``nni-snn show --dataset``);
    untrained weights get BN statistics from those batches first (:func:`fit_batch_norm`)."""
    from itertools import islice

    from nni_snn.archfile import ArchError
    from nni_snn.spikes import calibrate, energy_uj

    if checkpoint:
        try:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
            # The auxiliary head is a training aid: the estimate is of the network a user deploys.
            net.load_state_dict({k.removeprefix("_model."): v for k, v in state.items()
                                 if k.startswith("_model.") and not k.startswith("_model.auxiliary_head.")})
        except (OSError, KeyError, TypeError, RuntimeError, ValueError, pickle.UnpicklingError) as err:
            raise ArchError(f"--checkpoint {checkpoint}: not a retrain checkpoint of this network at this width "
                            f"and depth ({str(err).splitlines()[0][:160]})") from None
    loader = torch.utils.data.DataLoader(images, batch_size=64)
    if not checkpoint:
        fit_batch_norm(net, islice(loader, batches))
    counts = calibrate(net, islice(loader, batches))
    counts["energy_uj_per_sample"] = energy_uj(counts["sops_per_sample"], counts["macs_per_sample"], e_ac_pj,
                                               e_mac_pj)
    return counts


@torch.no_grad()
def fit_batch_norm(net: torch.nn.Module, batches) -> None:
    """Set every BN's running statistics to those of ``batches`` (images, or (images, labels) pairs).

    Untrained BNs hold mean 0 and variance 1; in evaluation mode the network then turns every input into the same
    spikes and logits (measured: identical logits for all digits), so an estimate on untrained weights would
    describe no network anyone runs. Training sets these statistics; this does it without touching the weights.
    """
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    training = net.training
    net.train()
    try:
        for batch in batches:
            net(batch[0] if isinstance(batch, (list, tuple)) else batch)
    finally:
        net.train(training)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


def final_result(metrics: dict) -> dict:
    """The trial's final result: ``default`` is the final validation accuracy."""
    return trial_result({"val_acc": metrics["accuracy"], **metrics})


def frame_settings(opts: dict, arch: dict | None) -> dict:
    """``frames_by`` and ``event_size`` for event data: the options', else the search's (``arch.json``'s search
    block, when it searched the same dataset), else time bins at the sensor's size."""
    search = (arch or {}).get("search", {}) if (arch or {}).get("search", {}).get("dataset") == opts["dataset"] else {}
    return {"frames_by": opts.get("frames_by") or search.get("frames_by") or "time",
            "event_size": opts.get("event_size") or search.get("event_size")}


def exported_result(metrics: dict) -> dict:
    """A search-only trial's final result: that of the epoch whose architecture was written (``--export``), so
    that NNI ranks trials by the architectures they hand over, not by their final epochs."""
    return trial_result(metrics["history"][metrics["export"]["epoch"]])


def run_retrain(opts: dict, output: Path, trial=None) -> dict | None:
    """Train the fixed network of ``opts['arch']`` (or the reference ``opts['baseline']``); writes metrics.json,
    the best checkpoint, TensorBoard logs.

    Returns the metrics on the global-zero process (``None`` on the other DDP ranks).
    """
    from nni_snn.archfile import load_arch
    from nni_snn.baselines import build_baseline

    keep_freed_memory()
    pl.seed_everything(opts["seed"], workers=True, verbose=False)
    arch = load_arch(opts["arch"]) if opts["arch"] else None
    timesteps = opts["timesteps"] or (arch["timesteps"] if arch else 2)
    data = load_for({**opts, **frame_settings(opts, arch)}, timesteps, cutout=opts["cutout"])
    neuron = neuron_spec(opts, arch.get("neuron") if arch else None)
    if arch is None:
        net = build_baseline(opts["baseline"], width=opts["width"], num_classes=data.num_classes,
                             in_channels=data.in_channels, image_size=data.image_size, timesteps=timesteps,
                             neuron=neuron)
    else:
        net = build_network(arch, width=opts["width"], num_cells=opts["cells"], num_classes=data.num_classes,
                            in_channels=data.in_channels, auxiliary=opts["auxiliary_weight"] > 0,
                            timesteps=timesteps, neuron=neuron, normalize=opts["normalize"],
                            attention_cells=opts["attention_cells"], cell_norm=opts["cell_norm"])
    module = SNNClassifier(num_classes=data.num_classes, learning_rate=opts["lr"],
                           auxiliary_weight=opts["auxiliary_weight"], lr_min=opts["lr_min"])
    module.set_model(net)
    reporter = _reporter(opts, trial)
    # Lightning writes save_last's last.ckpt only in an epoch where the monitored checkpoint was saved: with
    # --val-every N (no val_acc in between) or no new best, --resume would lose epochs. So last.ckpt has a
    # callback of its own, unmonitored, written after every epoch.
    from pytorch_lightning.callbacks import ModelCheckpoint

    last = ModelCheckpoint(dirpath=output / "checkpoints", filename="last", save_top_k=1, save_on_train_epoch_end=True,
                           enable_version_counter=False)
    best = ModelCheckpoint(dirpath=output / "checkpoints", filename="best", monitor="val_acc", mode="max",
                           save_top_k=1, every_n_epochs=opts["val_every"], save_on_train_epoch_end=True)
    extra = [DropPathSchedule(opts["drop_path"])] if opts["drop_path"] else []
    # DARTS clips at 5 too; without it, measured on digits at lr 0.1, one large step can silence a network for good.
    trainer = _trainer(opts, output, [reporter, *extra, best, last], strategy=opts["strategy"],
                       gradient_clip_val=opts.get("grad_clip") or None, check_val_every_n_epoch=opts["val_every"])
    workers, cuda = loader_workers(opts), uses_cuda(opts["accelerator"])
    trainer.fit(module, _loader(data.train, opts["batch_size"], True, workers, opts["seed"], cuda),
                _loader(data.test, opts["batch_size"], False, workers, opts["seed"], cuda),
                ckpt_path=str(resume_path(output)) if opts.get("resume") else None, weights_only=True)
    if not trainer.is_global_zero:
        return None
    metrics = _final_metrics(reporter, network_parameters(net))
    metrics["best_accuracy"] = float(best.best_model_score) if best.best_model_score is not None else None
    metrics["timesteps"] = timesteps
    metrics["network"] = {"arch": opts["arch"], "baseline": opts["baseline"], "neuron": neuron,
                          "normalize": getattr(net, "normalize", None),  # the file's unless overridden
                          "attention_cells": getattr(net, "attention_cells", None),
                          "cell_norm": getattr(net, "cell_norm", None)}
    metrics["recipe"] = {key: opts[key] for key in RECIPE_KEYS}
    write_json_atomic(output / "metrics.json", metrics)
    return metrics

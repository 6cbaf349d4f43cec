"""``nni-snn search``: MA-DARTS (or DARTS, CT-DARTS) over ``search_spaces.SNNDartsSpace``, then which epoch's
architecture to write and the files every search leaves (arch.json, metrics.json, cell pictures).

Application layer: wires in ``search_spaces`` and ``strategies`` (tests/test_layers.py).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch

from nni_snn.commands.runtime import (
    is_global_zero,
    keep_freed_memory,
    last_checkpoint,
    loader,
    loader_workers,
    trainer,
    wait_for_all,
)
from nni_snn.data.images import load_for, split_for_search
from nni_snn.files.archfile import arch_from_sample
from nni_snn.files.genotype import CELL_TYPES
from nni_snn.files.runfolder import RunFolder, write_json_atomic
from nni_snn.networks import build_network, count_parameters, network_parameters
from nni_snn.train.hardware import uses_cuda
from nni_snn.train.lightning import RESULT_COUNTS, EpochReporter, SNNClassifier, final_metrics, trial_result
from nni_snn.train.memory import check_step

if TYPE_CHECKING:
    from nni_snn.cli.options import SearchOptions


def run_search(opts: SearchOptions, output: Path, trial=None) -> dict | None:
    """MA-DARTS on ``opts.dataset``; writes arch.json, metrics.json, cell pictures and TensorBoard logs.

    Under DDP (``--devices N --strategy ddp``, ``--num-nodes``) every process trains its share of each batch and
    holds the same alpha (DDP averages its gradient like the weights'); only rank 0 writes and returns the metrics,
    the other processes return ``None`` once rank 0's files are written.
    """
    from nni.nas.evaluator.pytorch import Lightning

    from nni_snn.nni_compat import RawFormatModelSpace, SequentialExecutionEngine
    from search_spaces import SNNDartsSpace
    from strategies import MADarts

    keep_freed_memory()
    pl.seed_everything(opts.seed, workers=True, verbose=False)
    data = load_for(opts, opts.timesteps)
    check_step("search", opts, data)  # sizes that cannot fit: one line now, not an out-of-memory kill later
    weight_half, alpha_half = split_for_search(data.train, opts.seed)
    space = SNNDartsSpace(width=opts.width, num_cells=opts.cells, num_classes=data.num_classes,
                          in_channels=data.in_channels, partial_channels=opts.partial_channels,
                          image_size=data.image_size, **opts.network_spec().settings())
    reporter = EpochReporter(report=trial.intermediate if trial else None, energy=opts.energy())
    workers, cuda = loader_workers(opts.num_workers, opts.accelerator), uses_cuda(opts.accelerator)
    evaluator = Lightning(
        SNNClassifier(num_classes=data.num_classes, learning_rate=opts.lr),
        trainer(opts, output, [reporter, last_checkpoint(output)], traced=True),
        train_dataloaders=loader(weight_half, opts.batch_size, True, workers, opts.seed, cuda),
        val_dataloaders=loader(alpha_half, opts.batch_size, False, workers, opts.seed, cuda),
        # Resumed checkpoints are loaded as plain tensors and containers: nothing in them is unpickled as code.
        fit_kwargs=({"ckpt_path": str(RunFolder(output).resume_checkpoint), "weights_only": True}
                    if opts.resume else None),
    )
    # NNI's DARTS writes every edge's alpha to the logger every n steps, copying each to the host (a GPU sync per
    # edge): once per epoch, at its first step, like the rest of what an epoch reports.
    steps_per_epoch = -(-len(weight_half) // opts.batch_size)
    strategy = MADarts(reporter=reporter, arc_learning_rate=opts.arc_lr, spike_penalty=opts.spike_penalty,
                       energy_front=opts.front_lambdas() or None, warmup_epochs=opts.warmup_epochs,
                       log_prob_every_n_step=steps_per_epoch)
    strategy(RawFormatModelSpace.from_model(space, evaluator), SequentialExecutionEngine())
    # Each epoch's record: what the reporter measured, and the architecture the strategy's module derived after it.
    derived = {a["epoch"]: a for a in strategy.oneshot_module.architectures}
    history = [{**record, **derived.get(record["epoch"], {})} for record in reporter.history]

    if not is_global_zero(opts):
        wait_for_all()  # until rank 0 has written arch.json: a retrain after the search reads it in every process
        return None
    recorded = ("dataset", "subset_per_class", "width", "cells", "epochs", "batch_size", "seed", "lr", "arc_lr",
                "warmup_epochs", "spike_penalty", "energy_profile", "select", "partial_channels",
                *(("frames_by", "event_size") if data.frames else ()))
    if strategy.energy_front:
        metrics = write_front(output, strategy.oneshot_module.front, space, opts, data, reporter,
                              {k: getattr(opts, k) for k in recorded}, alpha_half)
        wait_for_all()
        return metrics
    selection = None
    if opts.select == "perturbation":  # the final supernet's weights are the ones in memory: its epoch is written
        mode, record = "last", history[-1]
        sample, selection = _select_by_perturbation(strategy.supernet, alpha_half, opts)
    else:
        mode = opts.export
        record = history[choose_export(history, mode, opts.warmup_epochs)]
        sample = record["nni_sample"]
    arch = arch_from_sample(sample, space, alpha=record["alpha"],
                            search={**{k: getattr(opts, k) for k in recorded}, "export": mode,
                                    "export_epoch": record["epoch"]})
    metrics = final_metrics(reporter, derived_params(arch, opts, data))  # the final epoch's, params the export's
    metrics["history"] = history
    metrics["supernet_params"] = count_parameters(space)
    metrics["export"] = {"mode": mode, "epoch": record["epoch"], "accuracy": record.get("val_acc")}
    if selection is not None:
        metrics["selection"] = selection
    # The results are those of the exported epoch's supernet (its alpha, weights and validation pass).
    arch["results"] = {"accuracy": record.get("val_acc"), "energy_profile": reporter.energy.name,
                       **{k: record[k] for k in RESULT_COUNTS},
                       **{k: metrics[k] for k in ("params", "params_with_auxiliary_head")}}
    write_search_outputs(output, arch, metrics)
    wait_for_all()
    return metrics


def write_front(output: Path, front, space, opts: SearchOptions, data, reporter: EpochReporter, search: dict,
                alpha_half) -> dict:
    """An energy-front search's files: per lambda, ``front/lambda-<lambda>/`` with its arch.json (``search``
    records its lambda as ``spike_penalty``) and cell pictures; ``front.json`` and metrics.json with one row per lambda.

    Each lambda's epoch: with ``--export best`` the one of lowest architecture loss on the alpha half (without the
    penalty: how well its alphas fit the data), ties to the later; ``last``, the final one. Its energy is estimated
    as ``nni-snn show --dataset`` does (the derived network at the search's size, untrained weights, BN statistics
    from two batches of 64 of the alpha half): the supernet's counts mix every set's alphas, and the front is for
    choosing which lambdas to retrain, whose runs measure the energy that counts."""
    from nni_snn.train.estimate import estimate_energy

    run, rows = RunFolder(output), []
    for lam, records in zip(front.lambdas, front.architectures):
        candidates = [r for r in records if r["epoch"] >= opts.warmup_epochs and r["alpha_loss"] is not None]
        if opts.export == "last" or not candidates:
            record = records[-1]
        else:
            record = min(reversed(candidates), key=lambda r: r["alpha_loss"])  # reversed: a tie goes to the later
        arch = arch_from_sample(record["nni_sample"], space, alpha=record["alpha"],
                                search={**search, "spike_penalty": lam, "energy_front": front.lambdas,
                                        "export": opts.export, "export_epoch": record["epoch"]})
        torch.manual_seed(opts.seed)
        net = build_network(arch, width=opts.width, num_cells=opts.cells, num_classes=data.num_classes,
                            in_channels=data.in_channels, image_size=data.image_size)
        with torch.no_grad():
            counts = estimate_energy(net, alpha_half, 2, None, reporter.energy)
        arch["results"] = {"alpha_loss": record["alpha_loss"], "energy_profile": reporter.energy.name,
                           "estimated_untrained": True, **{k: counts[k] for k in RESULT_COUNTS if k in counts},
                           **derived_params(arch, opts, data)}
        folder = run.front(lam)
        write_search_outputs(folder.path, arch, {"lambda": lam, "epoch": record["epoch"], **arch["results"]})
        rows.append({"lambda": lam, "epoch": record["epoch"], "arch": str(folder.arch), **arch["results"]})
    metrics = final_metrics(reporter, {"params": None, "params_with_auxiliary_head": None})
    metrics["supernet_params"] = count_parameters(space)
    # NNI's result of the trial: its final epoch's (the front's points are in front.json, one row per lambda).
    last = len(reporter.history) - 1
    metrics["export"] = {"mode": "last", "epoch": last, "accuracy": reporter.history[-1].get("val_acc")}
    metrics["front"] = rows
    write_json_atomic(run.front_table, {"energy_profile": reporter.energy.name, "rows": rows})
    run.write_metrics(metrics)
    return metrics


def _select_by_perturbation(supernet: torch.nn.Module, alpha_half, opts: SearchOptions) -> tuple[dict, dict]:
    """DARTS-PT's sample and scores (:mod:`strategies.perturbation`) on the first ``select_images`` of the alpha half,
    read once so that every perturbation is scored on the same images."""
    from strategies.perturbation import select_by_perturbation

    device = torch.device("cuda" if uses_cuda(opts.accelerator) else "cpu")
    batches, left = [], opts.select_images
    # A plain loader: this runs on rank 0 alone, which must see all the images (loader() shards them under DDP).
    for x, y in torch.utils.data.DataLoader(alpha_half, batch_size=opts.batch_size):
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


def derived_params(arch: dict, opts, data) -> dict:
    """Parameters of the network ``arch`` describes, at the search's width and depth (:func:`network_parameters`)."""
    return network_parameters(build_network(arch, width=opts.width, num_cells=opts.cells, auxiliary=True,
                                            num_classes=data.num_classes, in_channels=data.in_channels,
                                            image_size=data.image_size))


def write_search_outputs(output: Path, arch: dict, metrics: dict) -> None:
    """What every search (MA-DARTS or multi-trial) leaves: arch.json, metrics.json and the cell pictures."""
    from nni_snn.files.plot import draw_cell

    run = RunFolder(output)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_arch(arch)
    run.write_metrics(metrics)
    for cell_type in CELL_TYPES:
        if arch["genotype"][cell_type] is not None:  # a search of 1 or 2 cells has no reduction cell to draw
            draw_cell(arch["genotype"][cell_type], f"{cell_type} cell ({arch['attention']} attention)",
                      run.picture(cell_type))


def exported_result(metrics: dict) -> dict:
    """A search-only trial's final result: that of the epoch whose architecture was written (``--export``), so
    that NNI ranks trials by the architectures they hand over, not by their final epochs."""
    return trial_result(metrics["history"][metrics["export"]["epoch"]])

"""``nni-snn retrain``: train the fixed network of an arch.json (or a hand-designed baseline), and
:func:`train_fixed`, the training of a fixed network that retrain and the multi-trial trials share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pytorch_lightning as pl
import torch

from nni_snn.commands.runtime import (
    keep_freed_memory,
    last_checkpoint,
    loader,
    loader_workers,
    trainer,
)
from nni_snn.data.images import load_for, split_for_validation, unaugmented
from nni_snn.files.runfolder import RunFolder
from nni_snn.networks import build_network, network_parameters
from nni_snn.train.hardware import uses_cuda
from nni_snn.train.lightning import (
    DropPathSchedule,
    EpochReporter,
    SNNClassifier,
    final_metrics,
    trial_result,
)
from nni_snn.train.memory import check_step

if TYPE_CHECKING:
    from nni_snn.cli.options import RetrainOptions

# What a retrain was trained with, recorded in its metrics.json under "recipe".
RECIPE_KEYS = ("width", "cells", "epochs", "batch_size", "lr", "lr_min", "auxiliary_weight", "grad_clip", "drop_path",
               "cutout", "subset_per_class", "val_split", "val_every")


def run_retrain(opts: RetrainOptions, output: Path, trial=None) -> dict | None:
    """Train the fixed network of ``opts.arch`` (or the reference ``opts.baseline``); writes metrics.json, the best
    checkpoint, TensorBoard logs.

    Returns the metrics on the global-zero process (``None`` on the other DDP ranks).
    """
    from nni_snn.files.archfile import load_arch
    from nni_snn.snn.spiking_cnn import build_baseline

    keep_freed_memory()
    pl.seed_everything(opts.seed, workers=True, verbose=False)
    arch = load_arch(opts.arch) if opts.arch else None
    opts = opts.against(arch)
    if arch is not None and opts.space == "deployable":
        from nni_snn.errors import ArchError
        from nni_snn.files.genotype import deployable_problem

        problem = deployable_problem(arch)
        if problem:
            raise ArchError(f"{opts.arch}: outside the deployable space: {problem}", [("space", "deployable")])
    data = load_for(opts, opts.timesteps, cutout=opts.cutout)
    if arch is not None:  # sizes that cannot fit: one line now, not an out-of-memory kill later
        check_step("retrain", opts, data)
    neuron = opts.neuron_spec()
    if arch is None:
        net = build_baseline(opts.baseline, width=opts.width, num_classes=data.num_classes,
                             in_channels=data.in_channels, image_size=data.image_size, timesteps=opts.timesteps,
                             neuron=neuron)
    else:
        net = build_network(arch, width=opts.width, num_cells=opts.cells, num_classes=data.num_classes,
                            in_channels=data.in_channels, auxiliary=opts.auxiliary_weight > 0,
                            image_size=data.image_size, **opts.network_settings())
    train, val = data.train, data.test
    if opts.val_split:
        train, val = split_for_validation(data.train, opts.val_split, opts.seed,
                                          plain=unaugmented(data.train, data.test))
    reporter = EpochReporter(report=trial.intermediate if trial else None, energy=opts.energy())
    fitted = train_fixed(net, train, val, test=data.test, num_classes=data.num_classes, opts=opts, output=output,
                         reporter=reporter)
    if not fitted.is_global_zero:
        return None
    metrics = final_metrics(reporter, network_parameters(net))
    # "accuracy" is what a user (and every study) reads as the final network's accuracy: the test accuracy of the
    # network selected on validation, and the counts beside it are that network's on the test split (without a
    # test pass, the last epoch's on the validation split).
    if reporter.test_counts is not None:
        metrics.update(reporter.test_counts)
    metrics["counted_on"] = "test" if reporter.test_counts is not None else "validation"
    metrics["accuracy"] = fitted.test_accuracy
    metrics["test_accuracy"] = fitted.test_accuracy
    metrics["val_accuracy"] = metrics["best_accuracy"] = fitted.best_accuracy
    metrics["selected_epoch"] = next((r["epoch"] for r in reporter.history if r.get("val_acc") == fitted.best_accuracy),
                                     None)
    metrics["split"] = {"val_split": opts.val_split, "train_images": len(train),
                        "val_images": len(val) if opts.val_split else 0, "test_images": len(data.test),
                        "validated_on": "validation" if opts.val_split else "test"}
    metrics["timesteps"] = opts.timesteps
    # Every setting the network was built with (the file's unless overridden); a baseline has its neuron only.
    spec = getattr(net, "spec", None)
    metrics["network"] = {"arch": opts.arch, "baseline": opts.baseline,
                          **(spec.settings() if spec is not None else {"neuron": neuron})}
    metrics["recipe"] = {key: getattr(opts, key) for key in RECIPE_KEYS}
    RunFolder(output).write_metrics(metrics)
    return metrics


class Fitted(NamedTuple):
    """What :func:`train_fixed` returns."""

    is_global_zero: bool
    best_accuracy: float | None  # the best checkpoint's validation accuracy
    test_accuracy: float | None  # the best checkpoint's accuracy on the test split, read once after training


def train_fixed(net, train, val, *, test=None, num_classes: int, opts: RetrainOptions, output: Path,
                reporter: EpochReporter, checkpoints: bool = True) -> Fitted:
    """Train the fixed network ``net`` on ``train``, validating on ``val``, by ``opts``'s recipe (SGD momentum 0.9,
    cosine from ``lr`` to ``lr_min``, auxiliary head weight, gradient clip, drop-path, ``val_every``) on its
    hardware, logging to TensorBoard in ``output``; ``reporter`` counts and reports every epoch.

    With ``checkpoints``, ``output/checkpoints`` gets ``best.ckpt`` (the epoch of highest validation accuracy; ties:
    the first) and ``last.ckpt`` (every epoch: what ``opts.resume`` continues from); with ``test`` too, the best
    checkpoint is then evaluated on ``test``, one pass, and ``net`` is left with its weights.
    """
    module = SNNClassifier(num_classes=num_classes, learning_rate=opts.lr, auxiliary_weight=opts.auxiliary_weight,
                           lr_min=opts.lr_min)
    module.set_model(net)
    callbacks = [reporter, *([DropPathSchedule(opts.drop_path)] if opts.drop_path else [])]
    best = None
    if checkpoints:
        from pytorch_lightning.callbacks import ModelCheckpoint

        best_path = RunFolder(output).best_checkpoint
        best = ModelCheckpoint(dirpath=best_path.parent, filename=best_path.stem, monitor="val_acc", mode="max",
                               save_top_k=1, every_n_epochs=opts.val_every, save_on_train_epoch_end=True)
        callbacks += [best, last_checkpoint(output)]
    # DARTS clips at 5 too; without it, measured on digits at lr 0.1, one large step can silence a network for good.
    fit = trainer(opts, output, callbacks, enable_checkpointing=checkpoints,
                  gradient_clip_val=opts.grad_clip or None, check_val_every_n_epoch=opts.val_every)
    workers, cuda = loader_workers(opts.num_workers, opts.accelerator), uses_cuda(opts.accelerator)
    fit.fit(module, loader(train, opts.batch_size, True, workers, opts.seed, cuda),
            loader(val, opts.batch_size, False, workers, opts.seed, cuda),
            ckpt_path=str(RunFolder(output).resume_checkpoint) if opts.resume else None, weights_only=True)
    if best is None or best.best_model_score is None:
        return Fitted(fit.is_global_zero, None, None)
    test_accuracy = None
    if test is not None:
        # The weights only: test's ckpt_path would also restore the callbacks, rewinding the reporter's history to the
        # best epoch. Every process takes part (DDP); test_acc is then the one over all of them.
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
        fit.test(module, loader(test, opts.batch_size, False, workers, opts.seed, cuda), verbose=False)
        test_accuracy = float(fit.callback_metrics["test_acc"])
    return Fitted(fit.is_global_zero, float(best.best_model_score), test_accuracy)


def final_result(metrics: dict) -> dict:
    """A retraining trial's final result: ``default`` is the selected network's validation accuracy, what a tuner
    may optimise; its test accuracy rides along, for reading only."""
    return {**trial_result({**metrics, "val_acc": metrics["val_accuracy"]}), "test_accuracy": metrics["test_accuracy"]}

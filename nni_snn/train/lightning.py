"""Lightning pieces shared by search and retrain: the SNN classification module and the per-epoch reporter.

The reporter is the one place that decides what an epoch reports: it counts spikes, synaptic operations and energy
(``nni_snn.snn.spikes``), logs them to the Lightning logger (TensorBoard), keeps the history for ``metrics.json`` and,
inside an NNI trial, sends ``nni.report_intermediate_result`` with ``default`` = validation accuracy.
"""

from __future__ import annotations

import dataclasses
import math

import nni
import pytorch_lightning as pl
import torch
import torchmetrics
from nni.nas.evaluator.pytorch import LightningModule
from torch import nn

from nni_snn.errors import NonFiniteError
from nni_snn.snn.energy import DEFAULT_PROFILE, EnergyProfile, profile
from nni_snn.snn.regularizers import set_drop_path_prob
from nni_snn.snn.spikes import SpikeMonitor, default_group_of

# What the spike accounting measures: every epoch's record (EpochReporter) and a run's metrics.json carry COUNTED;
# a trial's final result and arch.json's "results" carry the totals per sample, RESULT_COUNTS.
COUNTED = ("spikes_per_sample", "sops_per_sample", "macs_per_sample", "adds_per_sample", "neuron_updates_per_sample",
           "memory_accesses_per_sample", "energy_uj_per_sample", "energy_uj_by_term", "energy_uj_by_profile",
           "spikes_per_cell", "sops_per_cell", "macs_per_cell", "energy_uj_per_cell")
RESULT_COUNTS = ("spikes_per_sample", "sops_per_sample", "neuron_updates_per_sample", "memory_accesses_per_sample",
                 "energy_uj_per_sample")


def cell_group(name: str) -> str:
    """Spike groups: ``cells.3`` for everything inside the 4th cell, else the top-level module name (a numbered
    child of any other container, e.g. ``stem.0``, stays in its container's group)."""
    return default_group_of(name, indexed=("cells",))


@nni.trace
class SNNClassifier(LightningModule):
    """Cross-entropy on T-averaged logits (+ ``auxiliary_weight`` x the auxiliary head's), top-1 accuracy.

    Weights: SGD with momentum and a cosine schedule over the trainer's epochs from ``learning_rate`` down to
    ``lr_min`` (paper 4.2: lr 0.005 for search, 0.0025 for retraining; DARTS's search floors at 0.001).
    """

    def __init__(self, num_classes: int = 10, learning_rate: float = 0.005, momentum: float = 0.9,
                 weight_decay: float = 3e-4, auxiliary_weight: float = 0.4, lr_min: float = 0.0):
        super().__init__()
        self.save_hyperparameters()
        self.criterion = nn.CrossEntropyLoss()
        self.train_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.test_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self(x)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss = self.criterion(logits, y)
        if aux is not None:
            loss = loss + self.hparams.auxiliary_weight * self.criterion(aux, y)
        self.train_acc(logits, y)
        # sync_dist: under DDP the epoch's loss is the mean over all processes, not rank 0's own (once per epoch).
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True, sync_dist=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val_loss", self.criterion(logits, y), prog_bar=True, on_step=False, on_epoch=True, sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True, on_step=False, on_epoch=True)

    def test_step(self, batch, batch_idx):
        # Its own metric: the test split is read once, after training, and never mixes with validation's.
        x, y = batch
        self.test_acc(self(x), y)
        self.log("test_acc", self.test_acc, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.learning_rate,
                                    momentum=self.hparams.momentum, weight_decay=self.hparams.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.trainer.max_epochs),
                                                               eta_min=self.hparams.lr_min)
        return [optimizer], [scheduler]


class DropPathSchedule(pl.Callback):
    """DARTS's ramp: at the start of epoch ``e`` (0-based) of ``E``, drop-path probability ``p * e / E``.

    So the first epoch trains without drop-path and the last one at ``p * (E - 1) / E``, as in DARTS's
    ``train.py`` (``model.drop_path_prob = args.drop_path_prob * epoch / args.epochs``). Computed from the trainer's
    epoch, so a resumed run continues the ramp where it stopped. The value is logged as ``drop_path_prob``.
    """

    def __init__(self, p: float):
        self.p = p

    def probability(self, epoch: int, epochs: int) -> float:
        return self.p * epoch / max(1, epochs)

    def on_train_epoch_start(self, trainer, pl_module):
        prob = self.probability(trainer.current_epoch, trainer.max_epochs)
        set_drop_path_prob(pl_module.model, prob)
        pl_module.log("drop_path_prob", prob, on_step=False, on_epoch=True)


class NonFiniteGuard(pl.Callback):
    """Stops a run whose epoch loss or alpha is not finite, before the epoch's checkpoint is written.

    Checked once per epoch on the epoch-mean loss (NaN survives the mean), so the hot path has no host sync; the
    last checkpoint and any earlier ``arch.json`` stay those of the last good epoch.
    """

    def on_train_epoch_end(self, trainer, pl_module):
        loss = trainer.callback_metrics.get("train_loss")
        alphas = pl_module.arch_parameters() if hasattr(pl_module, "arch_parameters") else []
        bad = [] if loss is None or torch.isfinite(loss).all() else ["training loss"]
        bad += ["architecture weights"] if any(not torch.isfinite(a).all() for a in alphas) else []
        if bad:
            raise NonFiniteError(f"{' and '.join(bad)} became NaN/inf in epoch {trainer.current_epoch}; the last "
                                 "good checkpoint is kept: lower --lr (or --arc-lr) and --resume")


class EpochReporter(pl.Callback):
    """Counts spikes and synaptic operations per phase and reports every epoch to the logger, ``history`` and NNI.

    Per layer group (``cell_group``: the stem, each cell, the classifier, the auxiliary head) it also logs the
    firing rate (``firing_rate/{phase}/{group}``) and the weights' gradient norm (``grad_norm/{group}``, the root
    mean square over the epoch's weight steps), so a dead, saturated or starved layer shows at a glance.

    Phases: ``train`` counts every training-mode forward of the epoch (in a DARTS search, both the weight step and
    the alpha step); ``val`` counts the validation loop. Counts are per sample: see ``nni_snn.snn.spikes``. Energy is
    priced with ``energy`` (:mod:`nni_snn.snn.energy`; default the ``memory-45nm`` profile), which a search's energy
    penalty uses too.
    """

    def __init__(self, report=None, energy: EnergyProfile | None = None):
        self.report = report  # e.g. Trial.intermediate: called with trial_result(record) every epoch
        self.energy = energy or profile(DEFAULT_PROFILE)
        self.monitor: SpikeMonitor | None = None
        self.history: list[dict] = []
        self.test_counts: dict | None = None  # the counts of a test pass (counted_record), if one ran
        self._val: dict = {}
        self._resume_phase: str | None = None  # the phase to return to after a validation loop
        self._grad_groups: dict[str, list[nn.Parameter]] = {}
        self._grad_sq: torch.Tensor | None = None  # per group: sum over steps of the squared gradient norm
        self._grad_steps = 0

    def on_fit_start(self, trainer, pl_module):
        if self.monitor is None:
            # The auxiliary head runs in training only: its counts are reported as a group of their own
            # (spikes_per_cell["auxiliary_head"]) and kept out of the totals, so train and val totals compare.
            self.monitor = SpikeMonitor(pl_module.model, group_of=cell_group, apart=("auxiliary_head",))
        self._grad_groups = {}
        for name, param in pl_module.model.named_parameters():
            if param.requires_grad and "_arch_alpha" not in name:  # weights only: alpha has NNI's own curves
                self._grad_groups.setdefault(cell_group(name), []).append(param)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        """Gradient norm per layer group at every weight step, summed on the device (no host sync per step)."""
        if trainer.optimizers and optimizer is not trainer.optimizers[0]:
            return  # the architecture optimizer of a DARTS search
        squares = []
        for params in self._grad_groups.values():
            grads = [p.grad for p in params if p.grad is not None]
            squares.append(torch.stack(torch._foreach_norm(grads)).square().sum() if grads
                           else torch.zeros((), device=pl_module.device))
        if squares:
            step = torch.stack(squares).float()
            self._grad_sq = step if self._grad_sq is None else self._grad_sq + step
            self._grad_steps += 1

    def on_fit_end(self, trainer, pl_module):
        if self.monitor is not None:
            self.monitor.remove()
            self.monitor = None

    def on_test_epoch_start(self, trainer, pl_module):
        # A test pass (retrain's one reading of the test split, after training): the selected network's counts.
        self.monitor = SpikeMonitor(pl_module.model, group_of=cell_group, apart=("auxiliary_head",))
        self.monitor.phase = "test"

    def on_test_epoch_end(self, trainer, pl_module):
        self.monitor.phase = None
        self.test_counts = counted_record(self._log_spikes(trainer, pl_module, "test"))
        self.monitor.remove()
        self.monitor = None

    def on_train_epoch_start(self, trainer, pl_module):
        self.monitor.reset("train")
        self.monitor.phase = "train"
        self._grad_sq, self._grad_steps = None, 0
        self._val = {}  # this epoch's validation counts, if it validates

    def on_validation_epoch_start(self, trainer, pl_module):
        self._resume_phase = self.monitor.phase if self.monitor else None
        if self.monitor is not None:
            self.monitor.reset("val")
            self.monitor.phase = "val"

    def on_validation_epoch_end(self, trainer, pl_module):
        if self.monitor is None or trainer.sanity_checking:
            return
        self.monitor.phase = self._resume_phase
        self._val = self._log_spikes(trainer, pl_module, "val")

    def on_train_epoch_end(self, trainer, pl_module):
        self.monitor.phase = None
        train = self._log_spikes(trainer, pl_module, "train")
        # The weights' (first) optimizer. It and the gradient norms (of gradients already averaged over DDP's
        # processes) are alike in every process: sync_dist only keeps Lightning from warning that they might not be.
        pl_module.log("lr", trainer.optimizers[0].param_groups[0]["lr"], sync_dist=True)
        if self._grad_sq is not None:  # root mean square over the epoch's steps of each group's gradient norm
            rms = (self._grad_sq / self._grad_steps).sqrt().tolist()
            pl_module.log_dict({f"grad_norm/{group}": value for group, value in zip(self._grad_groups, rms)},
                               sync_dist=True)
        validated = bool(self._val)
        # Lightning keeps the last validation's metrics between validations (retrain --val-every N): an epoch that
        # did not validate records no val_* values, its training counts, and is not reported to NNI.
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if "/" not in k and (validated or not k.startswith("val_"))}
        counted = self._val or train  # validation counts when the epoch validated
        record = {"epoch": trainer.current_epoch, **metrics, **counted_record(counted),
                  **{f"train_{key}": train[key] for key in RESULT_COUNTS}}
        self.history.append(record)
        skipped = not validated and (trainer.check_val_every_n_epoch or 1) > 1
        if self.report is not None and trainer.is_global_zero and not skipped:
            self.report(trial_result(record))

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict["history"])

    def _log_spikes(self, trainer, pl_module, phase: str) -> dict:
        # Under DDP each process counted its own share of the batches: the counts and sample numbers are summed over
        # processes before dividing, so every process records the figures of all the samples.
        reduce = None
        if trainer.world_size > 1:
            def reduce(flat):
                return trainer.strategy.reduce(flat.to(pl_module.device), reduce_op="sum")
        summary = self.monitor.summary(phase, reduce, self.energy)
        logged = {f"spikes/{phase}/per_sample": summary["spikes_per_sample"],
                  f"spikes/{phase}/firing_rate": summary["firing_rate"],
                  f"sops/{phase}/per_sample": summary["sops_per_sample"],
                  f"macs/{phase}/per_sample": summary["macs_per_sample"],
                  f"neuron_updates/{phase}/per_sample": summary["neuron_updates_per_sample"],
                  f"memory_accesses/{phase}/per_sample": summary["memory_accesses_per_sample"],
                  f"energy/{phase}/uj_per_sample": summary["energy_uj_per_sample"]}
        logged.update({f"energy/{phase}/{term}": value for term, value in summary["energy_uj_by_term"].items()})
        logged.update({f"spikes/{phase}/{group}": value for group, value in summary["spikes_per_group"].items()})
        logged.update({f"firing_rate/{phase}/{group}": value
                       for group, value in summary["firing_rate_per_group"].items()})
        logged.update({f"sops/{phase}/{group}": value for group, value in summary["sops_per_group"].items()})
        pl_module.log_dict(logged, sync_dist=True)  # alike in every process already: only silences the warning
        return summary


def counted_record(summary: dict) -> dict:
    """The :data:`COUNTED` keys (per sample, and per cell from the groups) of a :meth:`SpikeMonitor.summary`, and
    the samples counted (over all processes under DDP)."""
    return {**{key: summary[key] for key in COUNTED if key.endswith(("_per_sample", "_by_term", "_by_profile"))},
            "spikes_per_cell": summary["spikes_per_group"], "sops_per_cell": summary["sops_per_group"],
            "macs_per_cell": summary["macs_per_group"], "energy_uj_per_cell": summary["energy_uj_per_group"],
            "samples": summary["samples"]}


def trial_result(record: dict) -> dict:
    """An NNI metric dict: ``default`` is the validation accuracy; spikes, SOPs and energy ride along."""
    result = {"default": record.get("val_acc", math.nan),
              **{key: record[key] for key in RESULT_COUNTS}}
    result.update({f"spikes_{group}": value for group, value in record["spikes_per_cell"].items()})
    return result


def final_metrics(reporter: EpochReporter, params: dict) -> dict:
    """What a run's metrics.json starts with: the final epoch's accuracy and counts, ``params`` (the network's
    parameter counts), the energy profile (its name, and its constants and source as ``energy_model``) and every
    epoch's record."""
    last = reporter.history[-1]
    return {"accuracy": last.get("val_acc"), **{k: last[k] for k in COUNTED}, **params,
            "energy_profile": reporter.energy.name, "energy_model": dataclasses.asdict(reporter.energy),
            "history": reporter.history}

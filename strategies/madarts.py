"""MA-DARTS (paper 3.4): NNI's first-order DARTS with attention at the cell concatenation and spike counting.

What it adds to :class:`nni.nas.strategy.DARTS`:

- the attention (``none | ct | ma``: DARTS, CT-DARTS or MA-DARTS) is the search space's, set by its ``attention=``
  argument (one door: the export and every rebuilt network carry it);
- spike counting: an :class:`~nni_snn.train.lightning.EpochReporter` (``reporter=``, or a default one) is attached to the
  trainer, so per-cell spikes per sample of the training and validation batches reach TensorBoard and, inside an
  NNI trial, the intermediate results; the module and the energy penalty are handed the same reporter.
- the paper's defaults: alpha by Adam at lr 3e-4 (NNI's DARTS betas and weight decay), gradient clipping at 5;
  weights by whatever the evaluator's module configures (``SNNClassifier``: SGD, momentum 0.9, cosine, lr 0.005).
- a validation pass over the alpha half every epoch, so the accuracy and spikes of the supernet are reported;
- pictures of the cells derived after every epoch, in TensorBoard (next to NNI's own per-edge alpha curves);
- every epoch's architecture, kept by the module (``architectures``: ``epoch``, ``nni_sample`` from ``export()``,
  ``alpha`` from ``export_probs()`` and ``genotype``), so that a run can pair each with that epoch's validation
  accuracy (the reporter's history) and export the epoch whose supernet validated best (``nni-snn search --export
  best``); the module saves them in the checkpoint, so a resumed run has them all;
- first-order DARTS without the wasted half of each step: the weights are frozen (``requires_grad`` off) through the
  alpha step's forward and backward and the alphas through the weight step's (:class:`Frozen`), so autograd records
  and computes only what each optimiser steps: no convolution weight gradients in the alpha step, no graph at all for
  the first cell's edges from its inputs there, no alpha gradients in the weight step. The gradients each optimiser
  reads are the ones NNI's DARTS computes (it computes the rest too, and the other optimiser zeroes them);
- ``spike_penalty`` (lambda > 0): energy-aware search, lambda x the expected energy of the mixed edges added to the
  architecture loss (:mod:`strategies.penalty`; it starts at lambda: 1 is a strong pressure);
- ``energy_front`` (lambda_1, ..., lambda_K): the accuracy-energy front from one search. One supernet, one set of
  alphas per lambda (:class:`FrontAlphas`). Batch b trains set k = b mod K: its architecture step under penalty
  lambda_k, then the weight step under its alphas, so the weights, the expensive part, are shared and a batch costs
  what it costs in a single search. Each set takes every K-th architecture step at K times the architecture learning
  rate (Adam's steps are about the learning rate in size), so that it moves about as far as a single search's alphas.
  Every epoch records each set's architecture and its mean architecture loss on the alpha half (without the penalty):
  the front's ``export_top_models``/``list_models`` give one model per lambda.

It runs with NNI's stock evaluators too (for example ``nni.nas.evaluator.pytorch.Classification``) given a space
whose forward returns logits.
"""

from __future__ import annotations

import torch
from nni.nas.strategy import DARTS
from pytorch_lightning.strategies import ParallelStrategy

from nni_snn.files.genotype import genotype_from_sample
from nni_snn.files.plot import render_cell
from nni_snn.nni_compat import DartsLightningModule
from nni_snn.train.lightning import EpochReporter
from strategies.penalty import ExpectedEnergyPenalty


class MADartsModule(DartsLightningModule):
    """DARTS's search loop plus a validation loop over the alpha half (NNI's DARTS has none) and the architecture
    derived after every epoch (``architectures``); ``reporter`` is the search's :class:`EpochReporter`, handed over
    by :class:`MADarts`."""

    def __init__(self, training_module, *, reporter: EpochReporter, energy_front: list[float] | None = None,
                 **kwargs):
        super().__init__(training_module, **kwargs)
        self.reporter = reporter
        self.architectures: list[dict] = []
        self.front = FrontAlphas(energy_front) if energy_front else None

    def arch_parameters(self) -> list:
        """The α of every supernet module, in the supernet's module order: the same in every process.

        NNI 3.0's DARTS returns ``list(set(...))`` here, an order that follows the parameters' memory addresses and
        so changes from process to process. The architecture optimizer (Adam) is built on this list and a checkpoint
        keys its moments by position: resumed in a new process, each α took another α's moments (measured: the
        checkpoints of two runs of one seed held the same α and a permutation of their Adam state), and a resumed
        search went its own way from its first resumed epoch."""
        seen, params = set(), []
        for module in self.supernet_modules():
            for param in (module.arch_parameters() if hasattr(module, "arch_parameters") else ()):
                if id(param) not in seen:
                    seen.add(id(param))
                    params.append(param)
        return params

    def training_step(self, batch, batch_idx):
        if self.front is None:
            return self._step(batch, batch_idx)
        k = batch_idx % len(self.front.lambdas)  # the set this batch trains (module docstring)
        alphas, optimizer = self.arch_parameters(), self.architecture_optimizers()
        self.front.load(k, alphas, optimizer)
        self.penalty.scale = self.front.lambdas[k]
        out = self._step(batch, batch_idx)
        alpha_step = self.warmup_epochs == 0 or self.trainer.current_epoch >= self.warmup_epochs
        self.front.store(k, alphas, optimizer, self.penalty.last_loss if alpha_step else None)
        return out

    def _step(self, batch, batch_idx):
        # NNI's step runs the alpha step (after warm-up: forward, backward, Adam), then the weight step. Each builds
        # its graph only for what its optimiser steps (first-order DARTS): the weights are frozen from here to the
        # alpha step's backward, the alphas from there to the end of the step. Not under DDP (even on one device),
        # whose reducer expects every weight's gradient in every backward.
        if isinstance(self.trainer.strategy, ParallelStrategy):
            return super().training_step(batch, batch_idx)
        alphas = self.arch_parameters()
        ids = {id(p) for p in alphas}
        weights = [p for p in self.parameters() if id(p) not in ids]
        alpha_step = self.warmup_epochs == 0 or self.trainer.current_epoch >= self.warmup_epochs
        with Frozen(weights if alpha_step else []) as self._thaw_weights, Frozen([]) as self._freeze_alphas_later:
            return super().training_step(batch, batch_idx)

    def configure_architecture_optimizers(self):
        optimizer = super().configure_architecture_optimizers()
        if self.front is not None:  # each set steps every K-th batch: K times the rate (module docstring)
            for group in optimizer.param_groups:
                group["lr"] *= len(self.front.lambdas)
        return optimizer

    def manual_backward(self, loss, *args, **kwargs):
        super().manual_backward(loss, *args, **kwargs)
        thaw = getattr(self, "_thaw_weights", None)
        if thaw is not None and thaw.active:  # the alpha step's backward is done: on to the weight step
            thaw.restore()
            self._freeze_alphas_later.freeze(self.arch_parameters())

    def validation_step(self, batch, batch_idx):
        return self.training_module.validation_step(batch, batch_idx)

    def on_validation_epoch_start(self):
        return self.training_module.on_validation_epoch_start()

    def on_validation_epoch_end(self):
        return self.training_module.on_validation_epoch_end()

    def on_fit_start(self):
        super().on_fit_start()
        if self.front is not None:
            self.front.start(self.arch_parameters())
        if isinstance(self.penalty, ExpectedEnergyPenalty):
            # Lightning runs the callbacks' on_fit_start first: the reporter's monitor of the supernet exists now.
            self.penalty.bind(self.model, self.reporter.monitor)

    def on_train_epoch_end(self):
        super().on_train_epoch_end()
        # After this epoch's validation loop (Lightning runs it first), so the architecture is that of the supernet
        # whose accuracy the epoch reports; before the checkpoint callbacks, so it is saved with the epoch.
        sample = self.export()
        # Plain JSON types: NNI's labels are str subclasses, which a weights-only checkpoint cannot load back.
        record = {"epoch": self.current_epoch, "nni_sample": _plain(sample), "alpha": _plain(self.export_probs())}
        try:
            record["genotype"] = genotype_from_sample(sample)
        except KeyError:  # a space other than SNNDartsSpace: no DARTS cells
            pass
        self.architectures.append(record)
        if "genotype" in record:
            self._log_cells(record["genotype"])
        if self.front is not None:
            self.front.end_epoch(self.current_epoch, self.arch_parameters(), self._export_now)

    def _export_now(self) -> dict:
        """The live alphas' architecture: sample, probabilities and genotype, as plain JSON."""
        sample = self.export()
        record = {"nni_sample": _plain(sample), "alpha": _plain(self.export_probs())}
        try:
            record["genotype"] = genotype_from_sample(sample)
        except KeyError:
            pass
        return record

    def front_samples(self) -> list[dict]:
        """Each lambda's NNI sample from its final alphas (what ``list_models`` freezes)."""
        alphas = self.arch_parameters()
        samples = []
        for k in range(len(self.front.lambdas)):
            self.front.load(k, alphas)
            samples.append(self.export())
        return samples

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["architectures"] = self.architectures
        if self.front is not None:
            checkpoint["energy_front"] = self.front.state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.architectures = list(checkpoint.get("architectures", []))
        if self.front is not None and "energy_front" in checkpoint:
            self.front.restore(checkpoint["energy_front"])

    def _log_cells(self, genotype: dict):
        """Pictures of the cells derived from the current alpha, one per epoch, in TensorBoard."""
        experiment = getattr(self.logger, "experiment", None)
        if not hasattr(experiment, "add_image") or not self.trainer.is_global_zero:
            return
        for cell_type, pairs in genotype.items():
            if pairs is None:  # no cell of this type in the supernet (1 or 2 cells)
                continue
            image = render_cell(pairs, f"{cell_type} cell after epoch {self.current_epoch}")
            experiment.add_image(f"cells/{cell_type}", image, self.current_epoch, dataformats="HWC")


class FrontAlphas:
    """The K alpha sets of an energy-front search (one per lambda) and each set's Adam state, swapped into the
    supernet's live alphas and its one architecture optimizer for the set's steps; and per epoch, each set's
    architecture and mean architecture loss on the alpha half (``architectures[k]``, a list over epochs)."""

    def __init__(self, lambdas: list[float]):
        if not lambdas or any(lam < 0 for lam in lambdas) or len(set(lambdas)) != len(lambdas):
            raise ValueError(f"energy_front needs distinct lambdas >= 0, got {lambdas!r}")
        self.lambdas = [float(lam) for lam in lambdas]
        self.alphas: list[list] = []  # [K][alpha]: each set's values
        self.states: list[list] = []  # [K][alpha]: each set's Adam state of that alpha
        self.losses = [[0.0, 0] for _ in self.lambdas]  # this epoch's architecture-loss sum and count, per set
        self.architectures: list[list[dict]] = [[] for _ in self.lambdas]

    def start(self, live: list) -> None:
        if not self.alphas:  # not when a resumed checkpoint has already restored the sets
            self.alphas = [[p.detach().clone() for p in live] for _ in self.lambdas]
            self.states = [[{} for _ in live] for _ in self.lambdas]

    def load(self, k: int, live: list, optimizer=None) -> None:
        with torch.no_grad():
            for p, value in zip(live, self.alphas[k]):
                p.copy_(value)
        if optimizer is not None:
            state = getattr(optimizer, "optimizer", optimizer).state  # Lightning wraps the optimizer
            for p, saved in zip(live, self.states[k]):
                state[p] = saved

    def store(self, k: int, live: list, optimizer, loss) -> None:
        state = getattr(optimizer, "optimizer", optimizer).state
        self.alphas[k] = [p.detach().clone() for p in live]
        self.states[k] = [state.get(p, {}) for p in live]
        if loss is not None:  # summed on the device: read once per epoch, not a host sync per batch
            self.losses[k][0] = self.losses[k][0] + (loss.detach() if torch.is_tensor(loss) else loss)
            self.losses[k][1] += 1

    def end_epoch(self, epoch: int, live: list, export) -> None:
        current = [p.detach().clone() for p in live]
        for k, lam in enumerate(self.lambdas):
            self.load(k, live)
            total, count = self.losses[k]
            self.architectures[k].append({"epoch": epoch, "lambda": lam, **export(),
                                          "alpha_loss": float(total) / count if count else None})
        self.losses = [[0.0, 0] for _ in self.lambdas]
        with torch.no_grad():
            for p, value in zip(live, current):
                p.copy_(value)

    def state(self) -> dict:
        return {"lambdas": self.lambdas, "alphas": self.alphas, "states": self.states,
                "architectures": self.architectures}

    def restore(self, state: dict) -> None:
        if [float(x) for x in state["lambdas"]] != self.lambdas:
            raise ValueError(f"the checkpoint's energy front is {state['lambdas']}, not {self.lambdas}")
        self.alphas, self.states = state["alphas"], state["states"]
        self.architectures = state["architectures"]


class Frozen:
    """``with Frozen(params) as f``: the parameters among ``params`` that require grad stop requiring it until
    ``f.restore()`` or the end of the block; ``f.freeze(more)`` freezes more, restored at the same time. Autograd then
    records no graph for what only they need: no saved tensors, no gradients computed (first-order DARTS's alpha
    step needs no weight gradient, its weight step no alpha gradient)."""

    def __init__(self, params) -> None:
        self.params: list = []
        self.freeze(params)

    @property
    def active(self) -> bool:
        return bool(self.params)

    def freeze(self, params) -> None:
        for p in params:
            if p.requires_grad:
                p.requires_grad_(False)
                self.params.append(p)

    def restore(self) -> None:
        for p in self.params:
            p.requires_grad_(True)
        self.params = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.restore()


def _plain(value):
    """``value`` with every dict, list, string and number turned into the plain built-in type."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    return int(value) if isinstance(value, int) else float(value)


class MADarts(DARTS):
    """MA-DARTS search strategy; see the module docstring. Other keyword arguments go to NNI's ``DARTS``."""

    def __init__(self, *, reporter: EpochReporter | None = None, arc_learning_rate: float = 3e-4,
                 gradient_clip_val: float | None = 5.0, spike_penalty: float = 0.0,
                 energy_front: list[float] | None = None, **kwargs):
        if spike_penalty < 0:
            raise ValueError(f"spike_penalty must be >= 0, got {spike_penalty}")
        if energy_front and spike_penalty:
            raise ValueError("give spike_penalty (one lambda) or energy_front (several), not both")
        # The one reporter of the search (the caller's, to read its history afterwards, or a default one): it counts
        # spikes and energy, and the penalty prices energy as it does and reads its monitor.
        self.reporter = reporter if reporter is not None else EpochReporter()
        self.energy_front = list(energy_front) if energy_front else None
        if spike_penalty > 0 or self.energy_front:  # a front's penalty takes each set's lambda in turn
            kwargs["penalty"] = ExpectedEnergyPenalty(spike_penalty, self.reporter.energy)
        super().__init__(arc_learning_rate=arc_learning_rate, gradient_clip_val=gradient_clip_val, **kwargs)

    def mutate_evaluator(self, evaluator):
        evaluator = super().mutate_evaluator(evaluator)
        callbacks = evaluator.trainer.callbacks
        if not any(cb is self.reporter for cb in callbacks):  # a trainer built without it (NNI's stock evaluators)
            callbacks.insert(0, self.reporter)
        return evaluator

    def configure_oneshot_module(self, training_module):
        return MADartsModule(training_module, arc_learning_rate=self.arc_learning_rate,
                             gradient_clip_val=self.gradient_clip_val,
                             log_prob_every_n_step=self.log_prob_every_n_step,
                             warmup_epochs=self.warmup_epochs, penalty=self.penalty, reporter=self.reporter,
                             energy_front=self.energy_front)

    def list_models(self, sort: bool = True, limit: int | None = 1):
        """NNI's export of the searched models (``export_top_models``): with an energy front, one per lambda (its
        final alphas), in the front's order; otherwise NNI's one."""
        if not self.energy_front:
            yield from super().list_models(sort, limit)
            return
        self.oneshot_module.set_model(self.supernet)
        for sample in self.oneshot_module.front_samples()[:limit]:
            yield self.model_space.freeze(sample)

    def val_dataloader(self, train_dataloader_fn, val_dataloader_fn):
        return val_dataloader_fn()

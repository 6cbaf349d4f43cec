"""The options of every ``nni-snn`` command: one dataclass per command, a table of its options.

What a field's metadata means, how the flags are generated from the fields and how a command's options are layered
(defaults < ``--config`` < flags < NNI trial parameters) and checked is :mod:`nni_snn.cli.flags`; here are the options
themselves, their defaults (the paper's, on the embedded digits data) and the checks that relate several of them.
Adding an option is one line, e.g. ``event_size: int | None = option(None, "down-sample events", check="int>=1")``.

No torch at module level: ``nni-snn --help`` builds its parsers from these classes.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from nni_snn import registry
from nni_snn.cli.flags import Options, comma_list, is_int, is_number, option, same_as
from nni_snn.errors import UsageError
from nni_snn.files.spec import NetworkSpec, setting_metadata, setting_names
from nni_snn.snn.energy import DEFAULT_PROFILE, profile
from nni_snn.train.hardware import uses_cuda

# How a search picks the architecture it writes (--export): the epoch whose supernet validation accuracy is highest
# (the paper: "the optimal network structure is obtained according to accuracy"), or the final epoch's.
EXPORTS = ("best", "last")
# How a search reads the architecture off the supernet (--select): each edge's operation of largest alpha (DARTS), or
# the operations and inputs whose removal hurts the trained supernet most (DARTS-PT; strategies/perturbation.py).
SELECTIONS = ("alpha", "perturbation")
PRECISIONS = ("32", "16-mixed", "bf16-mixed")
# Where a cluster's launcher (SLURM, torchrun, LSF, MPI) gives each process its rank, Lightning reads it from there:
# --num-nodes then needs none of its own variables.
CLUSTER_RANKS = ("GROUP_RANK", "RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "OMPI_COMM_WORLD_RANK")
# The keys of a neuron spec (nni_snn.snn.neuron.make_neuron, arch.json's "neuron") and the options that give them.
NEURON_OPTIONS = {"kind": "neuron", "tau": "tau", "v_threshold": "v_threshold", "surrogate": "surrogate",
                  "surrogate_alpha": "surrogate_alpha", "detach_reset": "detach_reset"}


# The sections of a command's --help (``option(group=...)``), listed in the order their first option comes in.
GROUPS = {"data": "data", "network": "network", "training": "training", "search": "search",
          "retrain": "the retrain after the search", "energy": "energy",
          "runtime": "runtime: hardware, output, resuming"}


def network_option(name: str, default: Any = None, **given: Any) -> Any:
    """The option of network setting ``name``: its help and valid values are the spec's
    (:class:`nni_snn.files.spec.NetworkSpec`), its default the spec's unless ``default`` is given (MISSING: each command's
    own), listed under --help's network section."""
    meta = setting_metadata(name)
    spec_default = NetworkSpec.__dataclass_fields__[name].default
    return option(spec_default if default is None else default, meta["help"], choices=meta["choices"],
                  check=meta["check"], group="network", **given)


@dataclass(kw_only=True)
class CommonOptions(Options):
    """What every command that trains has; fields without a default here take each command's own."""

    GROUPS: ClassVar[dict[str, str]] = GROUPS

    # The event datasets are nni_snn.data.events' (a torch module): named here, and a test keeps the list complete.
    dataset: str = option("digits", "images: {image_datasets}; event camera: digits-events (embedded), nmnist, "
                                    "cifar10dvs, dvsgesture (default {default})",
                          choices="nni_snn.data.images:dataset_names", group="data")
    data_dir: str | None = option(None, "folder holding the dataset (not needed for digits, digits-events; "
                                        "mnist, fashionmnist: their four idx files, or torchvision's folder above "
                                        "MNIST/raw or FashionMNIST/raw; fashionmnist's default: "
                                        "/usr/share/datasets/fashion-mnist, Debian's package; with --download: "
                                        "data)", check="path", group="data")
    subset_per_class: int | None = option(None, "train on this many images of each class, a balanced subset of the "
                                                "training split drawn with --seed (default: all); the held-out "
                                                "split stays whole", check="int>=1", group="data")
    frames_by: str | None = option("time", "event data: cut each recording into T frames of equal duration (time) "
                                           "or of equal event count (count) (default {default})",
                                   choices="nni_snn.registry:FRAMES_BY", group="data")
    event_size: int | None = option(None, "event data: down-sample the sensor to this many pixels a side, e.g. 48 "
                                          "for DVS128 Gesture (default {default}; none: the sensor's size)",
                                    check="int>=1", group="data")
    download: bool = option(False, "download mnist, fashionmnist, cifar10 or cifar100 into --data-dir when it does "
                                   "not hold them (torchvision's download, official MD5 sums checked)",
                            action="store_true", group="data")
    mirror: str | None = option(None, "with --download: the URL of a copy of the dataset's official files, e.g. a "
                                      "folder holding MNIST's four .gz files, in place of torchvision's servers",
                                check="url", group="data")
    timesteps: int | None = network_option("timesteps", dataclasses.MISSING)
    width: int = option(help="initial channels (default {default})", check="int>=1", group="network")
    cells: int = option(help="number of cells (default {default})", check="int>=1", group="network")
    epochs: int = option(help="epochs (default {default})", check="int>=1", group="training")
    batch_size: int = option(help="batch size (default {default})", check="int>=1", group="training")
    # Learning rates: SGD momentum 0.9 + cosine. The paper's (search 0.005, retrain 0.0025) are for CIFAR at 40 and
    # 600 epochs of 390 steps; measured on digits (docs/benchmarks.md, "Learning"), a 5-epoch retrain at 0.0025
    # ends at 0.17 accuracy. Search: 0.1, the usual value for directly trained SNNs with BN (SEW-ResNet,
    # SpikingJelly's zoo); retrain: 0.2, which learned a 5-cell network faster than 0.1 in short runs (with DARTS's
    # gradient clip at 5 guarding against the large steps). The CIFAR configs set the paper's values.
    lr: float = option(help="weight learning rate, SGD momentum 0.9 + cosine (default {default})", check="number>0",
                       group="training")
    seed: int = option(0, "random seed (default 0)", group="training")
    output: str = option(help="output folder (default {default}; the trial's folder inside NNI)", check="path",
                         group="runtime")
    # A command refuses an --output that holds a run (nni_snn.cli.main.claim_output): results are never replaced unasked.
    overwrite: bool = option(False, "replace the run already in --output: its results and checkpoints are removed "
                                    "before training (its TensorBoard logs stay, in their own version folder)",
                             action="store_true", group="runtime")
    accelerator: str = option("auto", "Lightning accelerator: auto, cpu, gpu (default auto)", group="runtime")
    num_workers: int | None = option(help="data loader workers (default 0 on the CPU, 4 on a GPU)", check="int>=0",
                                     none_ok=True, group="runtime")

    def check_together(self) -> None:
        from nni_snn.data.events import EVENT_DATASETS

        events = self.dataset in EVENT_DATASETS
        downloadable = ", ".join(registry.DOWNLOADABLE)
        if events and self.download:
            raise UsageError(f"--download fetches {downloadable}; event datasets are read from --data-dir "
                             "(digits-events needs neither)")
        if self.download and self.dataset not in registry.DOWNLOADABLE:
            raise UsageError(f"--download fetches {downloadable}; {self.dataset} is read from "
                             f"{'the package itself' if self.dataset == 'digits' else '--data-dir'}")
        if self.mirror is not None and not self.download:
            raise UsageError("--mirror names where --download fetches the dataset from; add --download")
        if not events and self.event_size is not None:
            raise UsageError(f"--event-size down-samples event data; {self.dataset} is images")
        if events and getattr(self, "cutout", 0):
            raise UsageError("--cutout cuts holes in images; it has no meaning for event frames")


@dataclass(kw_only=True)
class TrainOptions(CommonOptions):
    """Search and retrain: one Lightning run, its hardware, the network's neuron and the energy prices."""

    devices: int = option(1, "devices per node, one process each (default 1)", check="int>=1", group="runtime")
    # Lightning's Trainer's strategy= and num_nodes=: a multi-device or multi-node run is Lightning's DDP, one process
    # per device, each taking --batch-size images a step (the effective batch is the sum). Lightning's spawn and fork
    # strategies are left out: they train in child processes, and a search reads its results in the first one.
    strategy: str = option("auto", "Lightning strategy: auto (DDP where there are several devices or nodes) or ddp "
                                   "(default auto)", choices=("auto", "ddp"), group="runtime")
    num_nodes: int = option(1, "machines taking part, each started with Lightning's MASTER_ADDR, MASTER_PORT, "
                               "NODE_RANK (0 on the first) and WORLD_SIZE (default 1)", check="int>=1", group="runtime")
    precision: str = option("32", "Lightning precision: 32, bf16-mixed (autocast; spikes and membranes stay exact, "
                                  "float32) or 16-mixed (CUDA only) (default 32)", choices=PRECISIONS, coerce=str,
                                  group="runtime")
    resume: bool = option(False, "continue from the last checkpoint in --output (after a crash or kill)",
                          action="store_true", group="runtime")
    progress: bool = option(True, "no progress bar", action="store_false", group="runtime")
    verbose: bool = option(False, "also print Lightning's model summary table and its tips", action="store_true",
                           group="runtime")
    # The network's neuron and normalisation (search: recorded in arch.json; retrain: None = the arch file's).
    neuron: str | None = option("lif", "lif, plif (a LIF that learns its decay), or relu for the network's ANN twin "
                                       "(default {default})", choices="nni_snn.registry:NEURONS", group="network")
    # tau is the paper's (eq. 1): the factor the membrane keeps per step. SpikingJelly's LIFNode tau is a time constant
    # instead (it keeps 1 - 1/tau per step, nni_snn.snn.neuron), which a SpikingJelly user would otherwise read here.
    tau: float | None = option(0.2, "LIF membrane decay factor per step, u_t = tau * u_(t-1) + x_t (paper eq. 1); "
                                    "not a time constant: SpikingJelly's LIFNode(tau=T) keeps 1 - 1/T per step, so "
                                    "tau here = 1 - 1/T (0.2 = its T 1.25; its default T 2 = 0.5 here); plif: its "
                                    "initial value (default {default})", check="[0,1]", group="network")
    v_threshold: float | None = option(0.5, "LIF firing threshold (default {default})", check="number>0",
                                       group="network")
    detach_reset: bool | None = option(True, "treat the reset as a constant in backward (default {default})",
                                       check="bool", action="both", group="network")
    surrogate: str | None = option("sigmoid", "surrogate gradient of the LIF: sigmoid, arctan, rectangular "
                                              "(default {default})", choices="nni_snn.registry:SURROGATES",
                                              group="network")
    surrogate_alpha: float | None = option(4.0, "sharpness of the surrogate gradient (the search's architecture "
                                                "weights are alpha; this is not them) (default {default})",
                                           check="number>0", group="network")
    # The network's settings (nni_snn.files.spec.NetworkSpec: their help and valid values; search: recorded in arch.json;
    # retrain: None = the arch file's).
    normalize: bool | None = network_option("normalize", action="both")
    attention_cells: str | None = network_option("attention_cells")
    cell_norm: str | None = network_option("cell_norm")
    stem_multiplier: int | None = network_option("stem_multiplier")
    stem_stride: int | None = network_option("stem_stride")
    head: str | None = network_option("head")
    space: str | None = network_option("space")
    # What every energy figure of the run is priced with (nni_snn.snn.energy), the penalty's included.
    energy_profile: str = option(DEFAULT_PROFILE, "the energy model: {energy_profiles} (default {default})",
                                 choices="nni_snn.snn.energy:PROFILES", group="energy")
    e_ac_pj: float | None = option(None, "energy per synaptic operation (accumulate), pJ, in place of the "
                                         "profile's", check="number>=0", group="energy")
    e_mac_pj: float | None = option(None, "energy per multiply-accumulate, pJ, in place of the profile's",
                                    check="number>=0", group="energy")

    def energy(self):
        """The :class:`~nni_snn.snn.energy.EnergyProfile` this run prices its counts with."""
        return profile(self.energy_profile, self.e_ac_pj, self.e_mac_pj)

    def neuron_spec(self) -> dict:
        """The network's neuron spec (``nni_snn.snn.neuron.make_neuron``) in full: the neuron options given (not None)
        that the neuron takes, the others at its defaults, e.g. ``{"kind": "lif", "tau": ..., "v_threshold": ...,
        "surrogate": ..., "surrogate_alpha": ..., "detach_reset": ...}`` or ``{"kind": "relu"}``. Retrain: settle the arch
        file's first (:meth:`against`)."""
        from nni_snn.snn.neuron import NEURONS, neuron_options, resolved_spec

        spec = {key: getattr(self, name) for key, name in NEURON_OPTIONS.items() if getattr(self, name) is not None}
        kind = spec.pop("kind", "lif")
        if kind not in NEURONS:  # make_neuron names the problem
            return {"kind": kind, **spec}
        taken = neuron_options(kind)
        return resolved_spec({"kind": kind, **{k: v for k, v in spec.items() if k in taken}})

    def network_settings(self) -> dict:
        """The network settings these options give (retrain: settle the arch file's first, :meth:`against`), None
        for those the command has no option for: over an arch file's (``build_network``), they keep the file's."""
        given = {name: getattr(self, name, None) for name in setting_names() if name != "neuron"}
        return {**given, "neuron": self.neuron_spec()}

    def network_spec(self) -> NetworkSpec:
        """The network these options describe, the settings the command has no option for at the spec's defaults."""
        return NetworkSpec.of(self.network_settings())

    def check_together(self) -> None:
        super().check_together()
        if self.resume and self.overwrite:
            raise UsageError("give --resume (continue the run in --output) or --overwrite (replace it), not both")
        if self.neuron is not None:  # what a neuron itself rejects (e.g. plif's tau of 0 or 1)
            from nni_snn.snn.neuron import neuron_problem

            problem = neuron_problem(self.neuron_spec())
            if problem:
                raise UsageError(f"--neuron {self.neuron}: {problem}")
        if self.num_nodes > 1 and not any(name in os.environ for name in CLUSTER_RANKS):
            # Without them every node would take itself for node 0, or pick its own port, and wait for the others
            # until Lightning's timeout.
            missing = [name for name in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK") if name not in os.environ]
            if missing:
                raise UsageError(f"--num-nodes {self.num_nodes}: set {', '.join(missing)} on every node (Lightning's "
                                 "MASTER_ADDR and MASTER_PORT: the first node's address and a free port; NODE_RANK: "
                                 "0 on the first node, 1, 2, ... on the others)")
        if self.precision == "16-mixed" and not uses_cuda(self.accelerator):  # Lightning would fail later
            raise UsageError("--precision 16-mixed needs a CUDA GPU; on the CPU use bf16-mixed")


@dataclass(kw_only=True)
class RetrainOptions(TrainOptions):
    """``nni-snn retrain``: train the fixed network of an arch.json (or a hand-designed baseline)."""

    UNSET: ClassVar[str] = "the arch file's"

    arch: str | None = option(None, "arch.json written by 'nni-snn search'", check="path", group="network")
    baseline: str | None = option(None, "instead of --arch, train a hand-designed reference: spiking-cnn "
                                        "(conv3x3-BN-LIF-maxpool x2, linear; --cells is ignored)",
                                  choices="nni_snn.registry:BASELINES", group="network")
    timesteps: int | None = None
    width: int = 36
    cells: int = 6
    epochs: int = 600
    batch_size: int = 96
    lr: float = 0.2
    output: str = "runs/retrain"
    num_workers: int | None = None
    # None: the arch file's.
    neuron: str | None = None
    tau: float | None = None
    v_threshold: float | None = None
    detach_reset: bool | None = None
    surrogate: str | None = None
    surrogate_alpha: float | None = None
    normalize: bool | None = None
    attention_cells: str | None = None
    cell_norm: str | None = None
    stem_multiplier: int | None = None
    stem_stride: int | None = None
    head: str | None = None
    space: str | None = None
    # None: the search's, read from the arch file when it searched the same dataset (frames at 48x48 stay 48x48).
    frames_by: str | None = None
    auxiliary_weight: float = option(0.4, "auxiliary head loss weight, 0 = no head (default 0.4)", check="number>=0",
                                     group="training")
    grad_clip: float = option(5.0, "clip the gradient norm to this, 0 = don't (default 5, DARTS's)",
                              check="number>=0", group="training")
    # DARTS's evaluation regularisers (the paper does not state its own): off by default, so a retrain on digits
    # stays what it was; experiments/retrain_cifar10.yml sets DARTS's values.
    lr_min: float = option(0.0, "floor of the cosine schedule, its eta_min (default 0)", check="number>=0",
                           group="training")
    drop_path: float = option(0.0, "drop-path probability of the cells' edges (not identities), per sample, ramped "
                                   "as DARTS does: P x epoch / epochs at each epoch's start (default 0: off; DARTS: "
                                   "0.2)", check="[0,1)", group="training")
    cutout: int = option(0, "zero a square of this side (pixels), at a random centre, in each training image, "
                            "DARTS's Cutout (default 0: off; DARTS on CIFAR: 16)", check="pixels>=0", group="training")
    # Selecting the epoch (and, in a study or an NNI experiment, the network) on the test split would make the
    # reported test accuracy an optimistic one: validation comes out of the training split instead.
    val_split: float = option(0.1, "fraction of the training split held out, per class and drawn with --seed, to "
                                   "validate on: the best checkpoint and NNI's result are chosen on it, and the test "
                                   "split is read once, at the end (default {default}; 0: validate on the test "
                                   "split, selecting on it)", check="[0,1)", group="training")
    val_every: int = option(1, "validate after every N-th epoch (default 1); --epochs must be a multiple of N, so the "
                               "last epoch is validated", check="int>=1", group="training")

    # In --help, the network to train comes first.
    FIRST: ClassVar[tuple[str, ...]] = ("arch", "baseline")

    def against(self, arch: dict | None) -> RetrainOptions:
        """These options with those left to the arch file (None) settled against ``arch`` (a loaded arch.json, or
        None for a --baseline): T, the neuron, normalisation, attention placement, cell norm and macro-architecture are the file's
        (``load_arch`` spells out what an old file leaves out); event framing is the search's when it
        searched the same dataset, so that frames at 48x48 stay 48x48, else time bins at the sensor's size."""
        from nni_snn.files.archfile import event_framing

        arch = arch or {}
        values = event_framing(arch, self.dataset, self.frames_by, self.event_size)
        values["timesteps"] = self.timesteps or arch.get("timesteps") or 2  # a baseline without a file: T = 2
        neuron = arch.get("neuron") or {}
        for key, name in NEURON_OPTIONS.items():
            if getattr(self, name) is None and neuron.get(key) is not None:
                values[name] = neuron[key]
        for name in set(setting_names()) - {"neuron", "timesteps"}:  # the neuron's are its options, above
            if hasattr(self, name) and getattr(self, name) is None and arch.get(name) is not None:
                values[name] = arch[name]
        return dataclasses.replace(self, **values)

    def check_together(self) -> None:
        if not self.arch and not self.baseline:
            raise UsageError("retrain needs --arch ARCH.json (written by 'nni-snn search') or --baseline spiking-cnn")
        if self.baseline and self.arch:
            raise UsageError("give either --arch or --baseline, not both")
        super().check_together()
        if self.drop_path > 0 and self.baseline:
            raise UsageError("--drop-path drops the edges of a searched network's cells; a --baseline has none")
        if is_int(self.epochs) and self.epochs % self.val_every:
            raise UsageError(f"--epochs {self.epochs} is not a multiple of --val-every {self.val_every}: the last epoch "
                             "would not be validated")
        if is_number(self.lr) and self.lr_min > self.lr:
            raise UsageError(f"--lr-min {self.lr_min} is above --lr {self.lr}: the cosine schedule would raise "
                             "the learning rate")


@dataclass(kw_only=True)
class SearchOptions(TrainOptions):
    """``nni-snn search``: MA-DARTS (or DARTS, CT-DARTS), then optionally a retrain of the cells found."""

    timesteps: int = 2
    width: int = 16
    cells: int = 5
    epochs: int = 40
    batch_size: int = 32
    lr: float = 0.1
    output: str = "runs/search"
    num_workers: int | None = None
    attention: str = network_option("attention")
    arc_lr: float = option(3e-4, "architecture learning rate, Adam (default 3e-4)", check="number>0", group="search")
    warmup_epochs: int = option(0, "train only the weights for this many first epochs, then alpha too (default 0)",
                                check="int>=0", group="search")
    spike_penalty: float = option(0.0, "lambda of the energy penalty on the architecture loss; 1.0 is strong "
                                       "(default 0: none)", check="number>=0", group="energy")
    energy_front: str | None = option(None, "comma-separated lambdas, e.g. 0,0.3,1,3: the accuracy-energy front from "
                                            "one search, one architecture per lambda under front/ (one supernet, "
                                            "one set of alphas per lambda; instead of --spike-penalty)",
                                      coerce=comma_list, group="energy")
    export: str = option("best", "which epoch's architecture to write: best (highest validation accuracy of the "
                                 "supernet on the alpha half; ties: the later epoch) or last (default best)",
                         choices=EXPORTS, group="search")
    select: str = option("alpha", "how the architecture is read off the supernet: alpha (each edge's operation of "
                                  "largest alpha, DARTS; default) or perturbation (the operations and inputs whose "
                                  "removal raises the final supernet's validation loss most, DARTS-PT; --export does "
                                  "not apply)", choices=SELECTIONS, group="search")
    partial_channels: int = option(1, "PC-DARTS: each edge's mixed operation sees 1/K of its channels, the rest "
                                      "bypass it, and nodes weigh their edges by a learned beta (default 1: off)",
                                   check="int>=1", group="search")
    cell_nodes: int = network_option("cell_nodes")
    select_images: int = option(1000, "validation images (of the alpha half) that --select perturbation scores on "
                                      "(default 1000)", check="int>=1", group="search")
    # The retrain after the search (--retrain-epochs > 0); None: retrain's own default (RetrainOptions), not the
    # search's value, since the paper retrains a larger network (36 channels, 6 cells) than it searches.
    retrain_epochs: int = option(0, "then retrain the found network this many epochs at retrain's sizes and learning "
                                    "rate, or those given by the --retrain-* flags (default 0: don't)", check="int>=0",
                                    group="retrain")
    retrain_width: int | None = option(None, f"initial channels of that retrain (default retrain's, "
                                             f"{RetrainOptions.width})", check="int>=1", group="retrain")
    retrain_cells: int | None = option(None, f"cells of that retrain (default retrain's, {RetrainOptions.cells})",
                                       check="int>=1", group="retrain")
    retrain_lr: float | None = option(None, f"learning rate of that retrain (default retrain's, {RetrainOptions.lr})",
                                      check="number>0", group="retrain")
    retrain_batch_size: int | None = option(None, f"batch size of that retrain (default retrain's, "
                                                  f"{RetrainOptions.batch_size})", check="int>=1", group="retrain")
    retrain_lr_min: float | None = option(None, f"cosine floor of that retrain (default retrain's, "
                                                f"{RetrainOptions.lr_min})", check="number>=0", group="retrain")
    retrain_drop_path: float | None = option(None, f"drop-path of that retrain (default retrain's, "
                                                   f"{RetrainOptions.drop_path})", check="[0,1)", group="retrain")
    retrain_cutout: int | None = option(None, f"Cutout of that retrain, pixels (default retrain's, "
                                              f"{RetrainOptions.cutout})", check="pixels>=0", group="retrain")
    retrain_auxiliary_weight: float | None = option(None, "auxiliary head loss weight of that retrain, 0 = no head "
                                                          f"(default retrain's, {RetrainOptions.auxiliary_weight})",
                                                    check="number>=0", group="retrain")
    retrain_val_split: float | None = option(None, "validation fraction of that retrain's training split (default "
                                                   f"retrain's, {RetrainOptions.val_split})", check="[0,1)",
                                                   group="retrain")
    # None: the arch file's, i.e. the search's --attention-cells.
    retrain_attention_cells: str | None = option(None, "attention in all cells or the last of that retrain (default: "
                                                       "the search's --attention-cells; the paper retrains with it "
                                                       "behind the final cell, 4.2)",
                                                 choices="nni_snn.registry:ATTENTION_CELLS", group="retrain")

    def check_together(self) -> None:
        super().check_together()
        problem = self.network_spec().problem(named=lambda name: f"--{name.replace('_', '-')}")
        if problem:  # the rules between settings: the model space would refuse them too, in the same words
            raise UsageError(problem)
        if self.width % self.partial_channels:
            raise UsageError(f"--partial-channels {self.partial_channels} must divide --width {self.width}")
        if self.energy_front is not None:
            self.front_lambdas()  # a malformed list fails here, in one line
            if self.spike_penalty:
                raise UsageError("give --spike-penalty (one lambda) or --energy-front (several), not both")
            if self.select != "alpha":
                raise UsageError("--energy-front reads each lambda's architecture off its alphas: --select alpha")
        if self.retrain_epochs:  # a bad --retrain-* value fails now, not after the search
            try:
                retrain = self.retrain(Path(self.output))
            except UsageError as err:
                raise UsageError(f"the retrain after the search (--retrain-*): {err}") from None
            from nni_snn.files.genotype import cell_types_at

            missing = set(cell_types_at(retrain.cells)) - set(cell_types_at(self.cells))
            if missing:  # refused now, not after the search, when the retrain would find no such cell
                raise UsageError(f"--cells {self.cells} searches no {missing.pop()} cell, which the retrain after "
                                 "the search needs: give --retrain-cells 1 or 2, or search with --cells 3 or more")

    def front_lambdas(self) -> list[float]:
        """--energy-front's lambdas (empty without it); a malformed list is the user's mistake, in one line."""
        if self.energy_front is None:
            return []
        try:
            lambdas = [float(v) for v in str(self.energy_front).split(",")]
        except ValueError:
            lambdas = []
        if (len(lambdas) < 2 or any(not math.isfinite(v) or v < 0 for v in lambdas)
                or len(set(lambdas)) != len(lambdas)):
            raise UsageError(f"--energy-front {self.energy_front!r}: give two or more distinct lambdas >= 0, "
                             "comma-separated, e.g. 0,1,3")
        return lambdas

    def retrain(self, output: Path) -> RetrainOptions:
        """The retrain after this search, of ``output``'s arch.json, checked. Data, seed, hardware, neuron and energy
        prices are the search's; sizes and learning rate are retrain's unless --retrain-* says otherwise (the paper
        searches at 16 channels and 5 cells, and retrains at 36 or more and 6); T is the arch file's."""
        from nni_snn.files.runfolder import RunFolder

        run = RunFolder(output)
        own = ("width", "cells", "lr", "batch_size", "attention_cells", "lr_min", "drop_path", "cutout",
               "auxiliary_weight", "val_split")
        shared = {f.name for f in dataclasses.fields(RetrainOptions)} & {f.name for f in dataclasses.fields(self)}
        values = {k: getattr(self, k) for k in shared if k not in own}
        values.update({k: getattr(self, f"retrain_{k}") for k in own if getattr(self, f"retrain_{k}") is not None})
        values.update(arch=str(run.arch), timesteps=None, epochs=self.retrain_epochs, output=str(run.retrain.path),
                      resume=self.resume and run.retrain.resume_checkpoint.is_file())
        retrain = RetrainOptions(**values)
        retrain.check()
        return retrain


@dataclass(kw_only=True)
class MultitrialOptions(CommonOptions):
    """``nni-snn multitrial``: one device per trial, no resume, no progress bar, energy at the defaults."""

    timesteps: int = 2
    width: int = 8
    cells: int = 5
    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.1
    output: str = "runs/multitrial"
    num_workers: int | None = option(0, "data loader workers of each trial (default 0)", check="int>=0",
                                     group="runtime")
    attention: str = option("ma", "attention of every sampled network: {attentions} (default {default})",
                            choices="nni_snn.registry:ATTENTIONS", group="network")
    search_strategy: str = option("random", "{strategies} (default {default})",
                                  choices="nni_snn.registry:SEARCH_STRATEGIES", group="search")
    trials: int = option(10, "networks to train (default {default})", check="int>=1", group="search")
    concurrency: int = option(1, "trials at a time (default 1)", check="int>=1", group="search")
    duration: str | None = option(None, "stop submitting after this long, e.g. 10m or 2h (default: no limit)",
                                  group="search")
    port: int = option(8080, "port of the NNI manager and web UI (default 8080)", check="port", group="runtime")
    host: str = option("127.0.0.1", "address the NNI manager and web UI listen on (default {default}: this machine "
                                    "only; 0.0.0.0 opens it to every network, without authentication)", group="runtime")
    # Config/NNI keys only (too rarely set for a flag; --help lists them at its end).
    population: int | None = option(None, "evolution's population (default: from the trial count)", flag=False,
                                    group="search")
    sample_size: int | None = option(None, "evolution's tournament size (default: from the trial count)",
                                     flag=False, group="search")
    threads: int | None = option(None, "torch's CPU threads per trial (default: the cores shared among "
                                       "concurrent trials)", flag=False, group="runtime")
    working_dir: str | None = option(None, "NNI's experiment folder (default ~/nni-experiments)", flag=False,
                                     check="path", group="runtime")

    def check_together(self) -> None:
        super().check_together()
        if self.duration is not None:
            # NNI's own reading of "30s", "10m", "2h", "1d".
            from nni_snn.nni_compat import parse_time

            try:
                if parse_time(str(self.duration)) <= 0:
                    raise ValueError("not positive")
            except ValueError:
                raise UsageError(f"--duration {self.duration!r}: give a positive time such as 90s, 10m, 2h or "
                                 "1d") from None


@dataclass(kw_only=True)
class ExportOptions(Options):
    """``nni-snn export RUN_DIR``: write a retrained network in an exchange format (``nni_snn.commands.export``)."""

    run_dir: str = option(help="a retrain's output folder (config.yaml, checkpoints/)", positional=True, metavar="RUN_DIR")
    format: str = option("nir", "the file format: nir, the Neuromorphic Intermediate Representation (default nir)",
                         choices=("nir",))
    output: str = option("net.nir", "file to write (default {default})")
    checkpoint: str | None = option(None, "weights to export (default: the run's checkpoints/best.ckpt, else "
                                          "last.ckpt)")
    dt: float = option(1e-4, "the consumer's time step in seconds, which the NIR LIF time constants assume; any dt "
                             "gives the same discrete recurrence to a consumer that steps by it (default {default}, "
                             "snnTorch's)", check="number>0")
    overwrite: bool = option(False, "replace --output if it exists (default: refuse)", action="store_true")
    grouped: bool = option(False, "keep depthwise convs grouped (Conv2d groups) for hardware that reads them; "
                                  "default: dense block-diagonal kernels, which every NIR consumer reads",
                           action="store_true")

    def check_together(self) -> None:
        if not Path(self.run_dir).is_dir():
            raise UsageError(f"{self.run_dir}: no such folder; give the output folder of a 'nni-snn retrain' run")


@dataclass(kw_only=True)
class ShowOptions(Options):
    """``nni-snn show ARCH``: an arch.json printed readably, its parameters counted, its energy estimated."""

    UNSET: ClassVar[str] = "the arch file's"  # the event framing's defaults, as retrain's
    GROUPS: ClassVar[dict[str, str]] = GROUPS

    arch_path: str = option(help="path of an arch.json", positional=True, metavar="arch")
    width: int = option(16, "initial channels for the parameter count (default 16)", check="int>=1")
    cells: int | None = option(None, "cells for the parameter count (default 5, or the search's cells for an arch "
                                     "searched with fewer than 3, which has no reduction cell)", check="int>=1")
    num_classes: int = option(10, "classes for the parameter count (default 10)", check="int>=1")
    in_channels: int = option(3, "image channels for the parameter count (default 3)", check="int>=1")
    image_size: int = option(32, "image side for the parameter count of a spatial head (default 32)", check="int>=1")
    dataset: str | None = option(None, "also estimate spikes, SOPs, MACs and energy per sample on this dataset's "
                                       "test images (classes and image channels then come from the dataset)",
                                 choices="nni_snn.data.images:dataset_names")
    data_dir: str | None = option(None, "folder holding the dataset (not needed for digits, digits-events)")
    checkpoint: str | None = option(None, "weights for the estimate: a retrain checkpoint (default: untrained "
                                          "weights)")
    timesteps: int | None = option(None, "time steps T for the estimate (default: the arch file's)", check="int>=1")
    batches: int = option(4, "test batches of 64 for the estimate (default 4)", check="int>=1")
    frames_by: str | None = same_as(RetrainOptions, "frames_by")
    event_size: int | None = same_as(RetrainOptions, "event_size")
    energy_profile: str = same_as(RetrainOptions, "energy_profile")
    e_ac_pj: float | None = same_as(RetrainOptions, "e_ac_pj")
    e_mac_pj: float | None = same_as(RetrainOptions, "e_mac_pj")

    def check_together(self) -> None:
        if self.dataset is None and (self.checkpoint or self.data_dir):
            raise UsageError("--checkpoint and --data-dir need --dataset (the images to estimate energy on)")

    def energy(self):
        """The :class:`~nni_snn.snn.energy.EnergyProfile` the estimate is priced with."""
        return profile(self.energy_profile, self.e_ac_pj, self.e_mac_pj)


@dataclass(kw_only=True)
class ExperimentOptions(Options):
    """``nni-snn experiment``: run (or resume, or follow) an nnictl experiment and summarise its best trial."""

    # Not ``config``: that name is every other command's --config file of options.
    experiment_config: str | None = option(None, "an nnictl YAML config, e.g. experiments/quickstart.yml, or the "
                                                 "name of an example config shipped with nni-snn, e.g. quickstart",
                                           positional=True, metavar="config")
    resume: str | None = option(None, "resume the stopped experiment ID (nnictl resume) instead: trials that were "
                                      "running continue from their last epoch's checkpoint", metavar="ID")
    attach: str | None = option(None, "follow the running experiment ID instead (e.g. one whose terminal has "
                                      "closed), and summarise it when it ends", metavar="ID")
    port: int | None = option(None, "port of the NNI manager and web UI (default 8080; --attach: the experiment's "
                                    "own)", check="port")
    host: str | None = option(None, "address the NNI manager and web UI listen on (default 127.0.0.1, this machine "
                                    "only; a remote experiment: its nniManagerIp); 0.0.0.0 opens it to every "
                                    "network, without authentication", metavar="ADDR")
    timeout: float | None = option(None, "give up waiting after this many seconds; the experiment goes on (default: "
                                         "wait until it ends)", check="seconds>0")
    stop: bool = option(False, "stop the experiment at the end (default: keep the web UI)", action="store_true")

    def check_together(self) -> None:
        if sum(given is not None for given in (self.experiment_config, self.resume, self.attach)) != 1:
            raise UsageError("give an experiment config, --resume ID of a stopped experiment, or --attach ID of a "
                             "running one (one of them)")
        if self.attach is not None and self.host is not None:
            raise UsageError("--host says where a manager this command starts listens; --attach starts none")


@dataclass(kw_only=True)
class FrontOptions(Options):
    """``nni-snn front RUN...``: accuracy against energy of finished runs, as a table and a picture."""

    # A required argument: option() makes a field without a default, nothing shared between instances.
    runs: list[str] = option(help="run folders (holding arch.json), or folders above them such as an NNI "  # noqa: RUF009
                                  "experiment's ~/nni-experiments/<id>", positional=True, nargs="+")
    output: str = option("front.png", "picture to write (default front.png)")
    overwrite: bool = option(False, "replace --output if it exists (default: refuse)", action="store_true")
    energy_profile: str | None = option(None, "the energy model to compare the runs under (default: the one they "
                                              "were priced with; see nni-snn search --help)",
                                        choices="nni_snn.snn.energy:PROFILES")


@dataclass(kw_only=True)
class ExamplesOptions(Options):
    """``nni-snn examples DIR``: copy the example experiment configs into DIR/experiments."""

    folder: str = option(help="folder to copy them into", positional=True, metavar="DIR")

"""The ``nni-snn`` command: ``search``, ``retrain``, ``multitrial``, ``show``, ``experiment``, ``front``.

Options come from, later winning: built-in defaults (the paper's, on the embedded digits data), ``--config FILE``
(YAML or JSON with the same names as the flags), flags given on the command line, and, inside an NNI trial, the
tuner's parameters (``nni.get_next_parameter()``). A user's mistake ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

EXIT_USAGE = 2
# nni_snn.spikes.E_AC_PJ / E_MAC_PJ, written out so that `--help` does not import torch (a test keeps them equal).
ENERGY_DEFAULTS = {"e_ac_pj": 0.9, "e_mac_pj": 4.6}

# The network's neuron and normalisation (search: recorded in arch.json; retrain: None = the arch file's).
NETWORK_DEFAULTS = {"neuron": "lif", "tau": 0.2, "v_threshold": 0.5, "surrogate": "sigmoid", "surrogate_alpha": 4.0,
                    "detach_reset": True, "normalize": True, "attention_cells": "all"}
# Learning rates: SGD momentum 0.9 + cosine. The paper's (search 0.005, retrain 0.0025) are for CIFAR at 40 and 600
# epochs of 390 steps; measured on digits (benchmarks/README.md, "Learning"), a 5-epoch retrain at 0.0025 ends at
# 0.17 accuracy. Search: 0.1, the usual value for directly trained SNNs with BN (SEW-ResNet, SpikingJelly's zoo);
# retrain: 0.2, which learned a 5-cell network faster than 0.1 in short runs (with DARTS's gradient clip at 5
# guarding against the large steps). The CIFAR configs set the paper's values.
SEARCH_DEFAULTS = {
    "dataset": "digits", "data_dir": None, "download": False, "attention": "ma", "timesteps": 2, "width": 16,
    "cells": 5, "epochs": 40, "batch_size": 64, "seed": 0, "lr": 0.1, "arc_lr": 3e-4, "output": "runs/search",
    "accelerator": "auto", "devices": 1, "num_workers": None, "progress": True, "retrain_epochs": 0, "resume": False,
    "precision": "32",
    "spike_penalty": 0.0, "warmup_epochs": 0, "export": "best", **NETWORK_DEFAULTS, **ENERGY_DEFAULTS,
    # The retrain after the search (--retrain-epochs > 0); None: retrain's own default (RETRAIN_DEFAULTS), not the
    # search's value, since the paper retrains a larger network (36 channels, 6 cells) than it searches.
    "retrain_width": None, "retrain_cells": None, "retrain_lr": None, "retrain_batch_size": None,
    "retrain_attention_cells": None,  # None: the arch file's, i.e. the search's --attention-cells
}
RETRAIN_DEFAULTS = {
    "arch": None, "baseline": None, "dataset": "digits", "data_dir": None, "download": False, "timesteps": None,
    "width": 36, "cells": 6, "epochs": 600, "batch_size": 96, "lr": 0.2, "auxiliary_weight": 0.4, "grad_clip": 5.0,
    "seed": 0, "output": "runs/retrain", "accelerator": "auto", "devices": 1, "strategy": "auto", "num_workers": None,
    "precision": "32",
    "progress": True, "resume": False, **{key: None for key in NETWORK_DEFAULTS}, **ENERGY_DEFAULTS,
    # DARTS's evaluation regularisers (the paper does not state its own): off by default, so a retrain on digits
    # stays what it was; experiments/retrain_cifar10.yml sets DARTS's values.
    "drop_path": 0.0, "cutout": 0, "lr_min": 0.0,
}
# How a search picks the architecture it writes (--export): the epoch whose supernet validation accuracy is highest
# (the paper: "the optimal network structure is obtained according to accuracy"), or the final epoch's.
EXPORTS = ("best", "last")
PRECISIONS = ("32", "16-mixed", "bf16-mixed")
POSITIVE_INTS = ("timesteps", "width", "cells", "epochs", "batch_size", "devices", "trials", "concurrency",
                 "retrain_width", "retrain_cells", "retrain_batch_size")
NONNEGATIVE_INTS = ("num_workers", "retrain_epochs", "warmup_epochs")


class UsageError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _run_flags(p, defaults: dict) -> None:
    """Flags shared by search, retrain and multitrial (those whose option the command has); the help shows each
    command's own default."""
    p.add_argument("--config", help="YAML/JSON file of options (same names as the flags)")
    p.add_argument("--dataset", help="digits (default, embedded), cifar10, cifar100, tinyimagenet, imagefolder")
    p.add_argument("--data-dir", help="folder holding the dataset (not needed for digits)")
    p.add_argument("--download", action="store_true", default=None, help="download CIFAR into --data-dir")
    timesteps = defaults["timesteps"] or "the arch file's"
    p.add_argument("--timesteps", type=int, help=f"time steps T (default {timesteps})")
    p.add_argument("--width", type=int, help=f"initial channels (default {defaults['width']})")
    p.add_argument("--cells", type=int, help=f"number of cells (default {defaults['cells']})")
    p.add_argument("--epochs", type=int, help=f"epochs (default {defaults['epochs']})")
    p.add_argument("--batch-size", type=int, help=f"batch size (default {defaults['batch_size']})")
    p.add_argument("--lr", type=float, help=f"weight learning rate, SGD momentum 0.9 + cosine (default {defaults['lr']})")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--output", help=f"output folder (default {defaults['output']}; the trial's folder inside NNI)")
    p.add_argument("--accelerator", help="Lightning accelerator: auto, cpu, gpu (default auto)")
    p.add_argument("--num-workers", type=int, help="data loader workers (default 0 on the CPU, 4 on a GPU)")
    if "devices" not in defaults:
        return  # multitrial: one device per trial, no resume, no progress bar, energy at the defaults
    p.add_argument("--devices", type=int, help="devices per node (default 1)")
    p.add_argument("--precision", help="Lightning precision: 32, bf16-mixed (autocast; spikes and membranes stay exact, "
                                       "float32) or 16-mixed (CUDA only) (default 32)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from the last checkpoint in --output (after a crash or kill)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    _network_flags(p, "the arch file's" if "arch" in defaults else None)
    _energy_flags(p)


def _network_flags(p, default: str | None) -> None:
    """The neuron and normalisation of the network (``default``: what None means; search shows its own)."""
    def shown(key):
        return default or NETWORK_DEFAULTS[key]

    p.add_argument("--neuron", help=f"lif, plif (a LIF that learns its decay), or relu for the network's ANN twin "
                                    f"(default {shown('neuron')})")
    p.add_argument("--tau", type=float, help=f"LIF membrane decay per step, paper eq. 1; plif: its initial value "
                                             f"(default {shown('tau')})")
    p.add_argument("--v-threshold", type=float, help=f"LIF firing threshold (default {shown('v_threshold')})")
    p.add_argument("--detach-reset", action=argparse.BooleanOptionalAction, default=None,
                   help=f"treat the reset as a constant in backward (default {shown('detach_reset')})")
    p.add_argument("--surrogate", help=f"surrogate gradient of the LIF: sigmoid, arctan, rectangular "
                                       f"(default {shown('surrogate')})")
    p.add_argument("--surrogate-alpha", type=float, help=f"surrogate sharpness (default {shown('surrogate_alpha')})")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="BN before each cell's output neurons and on the classifier's pooled spike rates; "
                        f"--no-normalize builds the network without them (default {shown('normalize')})")
    p.add_argument("--attention-cells", help="where the attention sits: all (every cell's concatenation, paper 3.3) "
                                             f"or last (the final cell's, paper 4.2) (default {shown('attention_cells')})")


def _energy_flags(p, **defaults) -> None:
    p.add_argument("--e-ac-pj", type=float, default=defaults.get("e_ac_pj"),
                   help=f"energy per synaptic operation (accumulate), pJ (default {ENERGY_DEFAULTS['e_ac_pj']})")
    p.add_argument("--e-mac-pj", type=float, default=defaults.get("e_mac_pj"),
                   help=f"energy per multiply-accumulate, pJ (default {ENERGY_DEFAULTS['e_mac_pj']})")


def _search_parser(sub) -> None:
    p = sub.add_parser("search", help="run MA-DARTS and write arch.json, metrics.json, cell pictures, TensorBoard logs")
    _run_flags(p, SEARCH_DEFAULTS)
    p.add_argument("--attention", help="none (DARTS), ct (CT-DARTS) or ma (MA-DARTS, default)")
    p.add_argument("--arc-lr", type=float, help="architecture learning rate, Adam (default 3e-4)")
    p.add_argument("--warmup-epochs", type=int,
                   help="train only the weights for this many first epochs, then alpha too (default 0)")
    p.add_argument("--spike-penalty", type=float,
                   help="lambda of the energy penalty on the architecture loss; 1.0 is strong (default 0: none)")
    p.add_argument("--export", help="which epoch's architecture to write: best (highest validation accuracy of "
                                    "the supernet on the alpha half; ties: the later epoch) or last (default best)")
    p.add_argument("--retrain-epochs", type=int,
                   help="then retrain the found network this many epochs at retrain's sizes and learning rate, "
                        "or those given by the --retrain-* flags (default 0: don't)")
    p.add_argument("--retrain-width", type=int,
                   help=f"initial channels of that retrain (default retrain's, {RETRAIN_DEFAULTS['width']})")
    p.add_argument("--retrain-cells", type=int,
                   help=f"cells of that retrain (default retrain's, {RETRAIN_DEFAULTS['cells']})")
    p.add_argument("--retrain-lr", type=float,
                   help=f"learning rate of that retrain (default retrain's, {RETRAIN_DEFAULTS['lr']})")
    p.add_argument("--retrain-batch-size", type=int,
                   help=f"batch size of that retrain (default retrain's, {RETRAIN_DEFAULTS['batch_size']})")
    p.add_argument("--retrain-attention-cells",
                   help="attention in all cells or the last of that retrain (default: the search's --attention-cells; "
                        "the paper retrains with it behind the final cell, 4.2)")


def _multitrial_parser(sub) -> None:
    from nni_snn.multitrial_baseline import MULTITRIAL_DEFAULTS as defaults

    p = sub.add_parser("multitrial", help="baseline: NNI's Random or RegularizedEvolution over the same SNN space, "
                                          "each trial training one sampled network, through the NNI manager")
    _run_flags(p, defaults)
    p.add_argument("--attention", help="attention of every sampled network: none, ct, ma (default ma)")
    p.add_argument("--strategy", help="random (default) or evolution (NNI's RegularizedEvolution)")
    p.add_argument("--trials", type=int, help=f"networks to train (default {defaults['trials']})")
    p.add_argument("--concurrency", type=int, help="trials at a time (default 1)")
    p.add_argument("--duration", help="stop submitting after this long, e.g. 10m or 2h (default: no limit)")
    p.add_argument("--port", type=int, help="port of the NNI manager and web UI (default 8080)")


def _retrain_parser(sub) -> None:
    p = sub.add_parser("retrain", help="train the fixed network of an arch.json; writes metrics.json, checkpoints")
    p.add_argument("--arch", help="arch.json written by 'nni-snn search'")
    p.add_argument("--baseline", help="instead of --arch, train a hand-designed reference: spiking-cnn "
                                      "(conv3x3-BN-LIF-maxpool x2, linear; --cells is ignored)")
    _run_flags(p, RETRAIN_DEFAULTS)
    p.add_argument("--auxiliary-weight", type=float, help="auxiliary head loss weight, 0 = no head (default 0.4)")
    p.add_argument("--grad-clip", type=float, help="clip the gradient norm to this, 0 = don't (default 5, DARTS's)")
    p.add_argument("--lr-min", type=float, help="floor of the cosine schedule, its eta_min (default 0)")
    p.add_argument("--drop-path", type=float,
                   help="drop-path probability of the cells' edges (not identities), per sample, ramped as DARTS "
                        "does: P x epoch / epochs at each epoch's start (default 0: off; DARTS: 0.2)")
    p.add_argument("--cutout", type=int,
                   help="zero a square of this side (pixels), at a random centre, in each training image, "
                        "DARTS's Cutout (default 0: off; DARTS on CIFAR: 16)")
    p.add_argument("--strategy", help="Lightning strategy, e.g. ddp (default auto)")


def _show_parser(sub) -> None:
    p = sub.add_parser("show", help="print an arch.json readably, with its parameter count")
    p.add_argument("arch", help="path of an arch.json")
    p.add_argument("--width", type=int, default=16, help="initial channels for the parameter count (default 16)")
    p.add_argument("--cells", type=int, default=5, help="cells for the parameter count (default 5)")
    p.add_argument("--num-classes", type=int, default=10, help="classes for the parameter count (default 10)")
    p.add_argument("--in-channels", type=int, default=3, help="image channels for the parameter count (default 3)")
    p.add_argument("--dataset", help="also estimate spikes, SOPs, MACs and energy per sample on this dataset's test "
                                     "images (classes and image channels then come from the dataset)")
    p.add_argument("--data-dir", help="folder holding the dataset (not needed for digits)")
    p.add_argument("--checkpoint", help="weights for the estimate: a retrain checkpoint (default: untrained weights)")
    p.add_argument("--timesteps", type=int, help="time steps T for the estimate (default: the arch file's)")
    p.add_argument("--batches", type=int, default=4, help="test batches of 64 for the estimate (default 4)")
    _energy_flags(p, **ENERGY_DEFAULTS)  # show has no config layering: argparse's defaults are final


def _experiment_parser(sub) -> None:
    p = sub.add_parser("experiment", help="run an nnictl experiment config, wait, and summarise the best trial")
    p.add_argument("config", help="an nnictl YAML config, e.g. experiments/quickstart.yml")
    p.add_argument("--port", type=int, default=8080, help="port of the NNI manager and web UI (default 8080)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the trials (default 3600)")
    p.add_argument("--stop", action="store_true", help="stop the experiment at the end (default: keep the web UI)")


def _front_parser(sub) -> None:
    p = sub.add_parser("front", help="plot accuracy vs energy of finished runs (e.g. an energy_tradeoff experiment)")
    p.add_argument("runs", nargs="+", help="run folders (holding arch.json), or folders above them such as an "
                                           "NNI experiment's ~/nni-experiments/<id>")
    p.add_argument("--output", default="front.png", help="picture to write (default front.png)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nni-snn", description="MA-DARTS architecture search for spiking neural networks on NNI")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _search_parser(sub)
    _retrain_parser(sub)
    _multitrial_parser(sub)
    _show_parser(sub)
    _experiment_parser(sub)
    _front_parser(sub)
    return parser


def _read_config(path: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise UsageError(f"--config {path}: cannot read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise UsageError(f"--config {path}: not valid YAML/JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping of option names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def resolve_options(args: argparse.Namespace, defaults: dict, trial_params: dict | None) -> dict:
    """Merge defaults < config file < command-line flags < NNI trial parameters, then validate."""
    from nni_snn.attention import ATTENTIONS
    from nni_snn.data import DATASETS

    opts = dict(defaults)
    layers = [("--config", _read_config(args.config) if args.config else {}),
              ("command line", {k: v for k, v in vars(args).items() if v is not None and k in defaults}),
              ("NNI trial parameters", {str(k).replace("-", "_"): v for k, v in (trial_params or {}).items()})]
    for source, layer in layers:
        unknown = sorted(set(layer) - set(defaults))
        if unknown:
            raise UsageError(f"{source}: unknown option {unknown[0]!r}; known: {', '.join(sorted(defaults))}")
        opts.update(layer)
    for key in (k for k in POSITIVE_INTS if k in opts):
        value = opts[key]
        if value is None and (key.startswith("retrain_") or key == "timesteps" and "arch" in defaults):
            continue  # retrain: the arch file's; search's retrain_*: retrain's default
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be an integer >= 1, got {value!r}")
    for key in (k for k in NONNEGATIVE_INTS if opts.get(k) is not None):  # num_workers None: the device's default
        if not isinstance(opts[key], int) or isinstance(opts[key], bool) or opts[key] < 0:
            raise UsageError(f"--{key.replace('_', '-')} must be an integer >= 0, got {opts[key]!r}")
    if "attention" in opts and opts["attention"] not in ATTENTIONS:
        raise UsageError(f"--attention {opts['attention']!r} is unknown; use one of {', '.join(ATTENTIONS)}")
    if opts["dataset"] not in DATASETS:
        raise UsageError(f"--dataset {opts['dataset']!r} is unknown; use one of {', '.join(DATASETS)}")
    if "arch" in defaults and not opts["arch"] and not opts["baseline"]:
        raise UsageError("retrain needs --arch ARCH.json (written by 'nni-snn search') or --baseline spiking-cnn")
    _check_network(opts)
    _check_precision(opts)
    nonnegative = ("auxiliary_weight", "grad_clip", "spike_penalty", "e_ac_pj", "e_mac_pj", "lr_min")
    for key in (k for k in nonnegative if k in defaults):
        if not _is_number(opts[key]) or not opts[key] >= 0:
            raise UsageError(f"--{key.replace('_', '-')} must be a number >= 0, got {opts[key]!r}")
    _check_recipe(opts)
    return opts


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_recipe(opts: dict) -> None:
    """The search's retrain settings and retrain's regularisers (each where the command has it)."""
    if opts.get("retrain_lr") is not None and not (_is_number(opts["retrain_lr"]) and opts["retrain_lr"] > 0):
        raise UsageError(f"--retrain-lr must be a number > 0, got {opts['retrain_lr']!r}")
    if "drop_path" in opts and not (_is_number(opts["drop_path"]) and 0 <= opts["drop_path"] < 1):
        # 1 would drop every edge and divide by 0 when scaling the kept ones.
        raise UsageError(f"--drop-path must be a number in [0, 1), got {opts['drop_path']!r}")
    if "drop_path" in opts and opts["drop_path"] > 0 and opts.get("baseline"):
        raise UsageError("--drop-path drops the edges of a searched network's cells; a --baseline has none")
    if "cutout" in opts and (not isinstance(opts["cutout"], int) or isinstance(opts["cutout"], bool)
                             or opts["cutout"] < 0):
        raise UsageError(f"--cutout must be an integer >= 0 (pixels), got {opts['cutout']!r}")
    if "lr_min" in opts and _is_number(opts.get("lr")) and opts["lr_min"] > opts["lr"]:
        raise UsageError(f"--lr-min {opts['lr_min']} is above --lr {opts['lr']}: the cosine schedule would raise "
                         "the learning rate")


def _check_precision(opts: dict) -> None:
    if "precision" not in opts:
        return
    opts["precision"] = str(opts["precision"])  # YAML reads 32 as a number
    if opts["precision"] not in PRECISIONS:
        raise UsageError(f"--precision {opts['precision']!r} is unknown; use one of {', '.join(PRECISIONS)}")
    if opts["precision"] == "16-mixed":
        from nni_snn.search_retrain import uses_cuda

        if not uses_cuda(opts["accelerator"]):  # Lightning would fail later, with a traceback
            raise UsageError("--precision 16-mixed needs a CUDA GPU; on the CPU use bf16-mixed")


def _check_network(opts: dict) -> None:
    """The options with a fixed set of values, and the neuron's numbers (None: the arch file's, where the command
    has one)."""
    from nni_snn.baselines import BASELINES
    from nni_snn.genotype import ATTENTION_CELLS
    from nni_snn.neuron import NEURONS, SURROGATES

    for key, valid in (("neuron", NEURONS), ("surrogate", SURROGATES), ("baseline", BASELINES),
                       ("attention_cells", ATTENTION_CELLS), ("retrain_attention_cells", ATTENTION_CELLS),
                       ("export", EXPORTS)):
        if opts.get(key) is not None and opts[key] not in valid:
            raise UsageError(f"--{key.replace('_', '-')} {opts[key]!r} is unknown; use one of {', '.join(valid)}")
    numbers = (("surrogate_alpha", "a number > 0", lambda v: v > 0), ("v_threshold", "a number > 0", lambda v: v > 0),
               ("tau", "a number in [0, 1]", lambda v: 0 <= v <= 1))
    for key, what, valid in numbers:
        value = opts.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not valid(value)):
            raise UsageError(f"--{key.replace('_', '-')} must be {what}, got {value!r}")
    for key in ("normalize", "detach_reset"):
        if opts.get(key) is not None and not isinstance(opts[key], bool):
            raise UsageError(f"--{key.replace('_', '-')} must be true or false, got {opts[key]!r}")
    if opts.get("neuron") is not None:  # what a neuron itself rejects (e.g. plif's tau of 0 or 1)
        from nni_snn.archfile import neuron_problem
        from nni_snn.search_retrain import neuron_spec

        problem = neuron_problem(neuron_spec(opts))
        if problem:
            raise UsageError(f"--neuron {opts['neuron']}: {problem}")


def _prepare(args, defaults: dict):
    """Options, output folder and NNI trial (or None); inside a trial the tuner's parameters and folder win."""
    from nni_snn import nni_trial

    trial_dir = nni_trial.output_dir()
    trial = nni_trial.Trial() if trial_dir else None
    opts = resolve_options(args, defaults, trial.parameters if trial else None)
    output = Path(opts["output"]) if trial_dir is None or args.output else trial_dir
    if opts["resume"]:
        from nni_snn.search_retrain import resume_path

        if not resume_path(output).is_file():
            raise UsageError(f"--resume: no checkpoint {resume_path(output)}; run without --resume to start afresh")
    output.mkdir(parents=True, exist_ok=True)
    return opts, output, trial


def _counts(metrics: dict) -> str:
    return (f"{metrics['spikes_per_sample']:.1f} spikes, {metrics['sops_per_sample']:.4g} SOPs, "
            f"{metrics['macs_per_sample']:.4g} MACs, {metrics['energy_uj_per_sample']:.4g} uJ per sample")


def _params(counts: dict) -> str:
    return f"{counts['params']} parameters ({counts['params_with_auxiliary_head']} with the auxiliary head)"


def _retrain(args) -> int:
    from nni_snn.archfile import load_arch
    from nni_snn.search_retrain import final_result, run_retrain

    opts, output, trial = _prepare(args, RETRAIN_DEFAULTS)
    if opts["baseline"] and opts["arch"]:
        raise UsageError("give either --arch or --baseline, not both")
    if opts["arch"]:
        load_arch(opts["arch"])  # a bad file fails here, before any data is loaded
    metrics = run_retrain(opts, output, trial)
    if metrics is not None:
        if trial:
            trial.final(final_result(metrics))
        print(f"accuracy {metrics['accuracy']:.4f} (best {metrics['best_accuracy']:.4f}), {_counts(metrics)}, "
              f"{_params(metrics)}; {output / 'metrics.json'}")
    return 0


def _search(args) -> int:
    from nni_snn.search_retrain import final_result, resume_path, run_retrain, run_search

    opts, output, trial = _prepare(args, SEARCH_DEFAULTS)
    metrics = run_search(opts, output, trial)
    export = metrics["export"]
    print(f"search: accuracy {metrics['accuracy']:.4f}, {_counts(metrics)}; architecture of epoch {export['epoch']} "
          f"({export['mode']}, accuracy {export['accuracy']:.4f}), {_params(metrics)}: {output / 'arch.json'}")
    if opts["retrain_epochs"]:
        # Retrain the found cells: the trial's final result is its accuracy. Data, seed, hardware, neuron and energy
        # prices are the search's; sizes and learning rate are retrain's unless --retrain-* says otherwise (the
        # paper searches at 16 channels and 5 cells, and retrains at 36 or more and 6); T is the arch file's.
        own = ("width", "cells", "lr", "batch_size", "attention_cells")
        retrain = {**RETRAIN_DEFAULTS, **{k: opts[k] for k in RETRAIN_DEFAULTS if k in opts and k not in own},
                   **{k: opts[f"retrain_{k}"] for k in own if opts[f"retrain_{k}"] is not None},
                   "arch": str(output / "arch.json"), "timesteps": None, "epochs": opts["retrain_epochs"],
                   "devices": 1, "output": str(output / "retrain"),
                   "resume": opts["resume"] and resume_path(output / "retrain").is_file()}
        metrics = run_retrain(retrain, output / "retrain", trial)
        print(f"retrain: accuracy {metrics['accuracy']:.4f}, {_counts(metrics)}; {output / 'retrain' / 'metrics.json'}")
    if trial:
        trial.final(final_result(metrics))
    return 0


def _show(args) -> int:
    from nni_snn.archfile import load_arch
    from nni_snn.genotype import format_genotype
    from nni_snn.networks import build_network
    from nni_snn.search_retrain import estimate_energy, network_parameters

    for key in ("width", "cells", "num_classes", "in_channels", "batches", "timesteps"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be >= 1")
    for key in ("e_ac_pj", "e_mac_pj"):
        if not getattr(args, key) >= 0:
            raise UsageError(f"--{key.replace('_', '-')} must be >= 0")
    if args.dataset is None and (args.checkpoint or args.data_dir):
        raise UsageError("--checkpoint and --data-dir need --dataset (the images to estimate energy on)")
    arch = load_arch(args.arch)
    data = None
    if args.dataset is not None:
        from nni_snn.data import DATASETS, load_dataset

        if args.dataset not in DATASETS:
            raise UsageError(f"--dataset {args.dataset!r} is unknown; use one of {', '.join(DATASETS)}")
        data = load_dataset(args.dataset, args.data_dir)
        args.num_classes, args.in_channels = data.num_classes, data.in_channels
    size = {"width": args.width, "num_cells": args.cells, "num_classes": args.num_classes,
            "in_channels": args.in_channels, "timesteps": args.timesteps}
    params = network_parameters(build_network(arch, auxiliary=True, **size))
    net = build_network(arch, **size)  # the estimate is of the network a user deploys: no auxiliary head
    counts = None
    if data is not None:  # before printing anything: a bad checkpoint ends in one error line
        counts = estimate_energy(net, data.test, args.batches, args.checkpoint, args.e_ac_pj, args.e_mac_pj)
    print(format_genotype(arch))
    print(f"at width {args.width}, {args.cells} cells, {args.num_classes} classes: {_params(params)}")
    if "results" in arch:
        print("search results: " + ", ".join(f"{k} {v}" for k, v in arch["results"].items()))
    if counts is not None:
        weights = (f"weights of {args.checkpoint}" if args.checkpoint
                   else "untrained weights, BN statistics from these images")
        print(f"estimate on {counts['samples']} {args.dataset} test images ({weights}, T={net.timesteps}): "
              f"{_counts(counts)}")
    return 0


def _multitrial(args) -> int:
    import socket

    from nni_snn.multitrial_baseline import MULTITRIAL_DEFAULTS, STRATEGIES, run_multitrial

    opts = resolve_options(args, MULTITRIAL_DEFAULTS, None)
    if opts["strategy"] not in STRATEGIES:
        raise UsageError(f"--strategy {opts['strategy']!r} is unknown; use one of {', '.join(STRATEGIES)}")
    if not isinstance(opts["port"], int) or not 0 < opts["port"] < 65536:
        raise UsageError(f"--port must be in 1..65535, got {opts['port']!r}")
    if opts["duration"] is not None:
        from nni.experiment.config.utils import parse_time  # NNI's own reading of "30s", "10m", "2h", "1d"

        try:
            if parse_time(str(opts["duration"])) <= 0:
                raise ValueError("not positive")
        except ValueError:
            raise UsageError(f"--duration {opts['duration']!r}: give a positive time such as 90s, 10m, 2h or 1d") \
                from None
    with socket.socket() as probe:  # NNI would fail later, with a traceback, on a port in use
        if probe.connect_ex(("127.0.0.1", opts["port"])) == 0:
            raise UsageError(f"--port {opts['port']} is in use (another NNI experiment?); choose another")
    try:
        summary = run_multitrial(opts)
    except ValueError as err:
        raise UsageError(str(err)) from None
    output = Path(opts["output"])
    print(f"{opts['strategy']}: {len(summary['trials'])} trials; best accuracy {summary['accuracy']:.4f}, "
          f"{summary['spikes_per_sample']:.1f} spikes, {summary['energy_uj_per_sample']:.4g} uJ per sample, "
          f"{summary['params']} parameters; architecture: {output / 'arch.json'}")
    return 0


def _front(args) -> int:
    """Accuracy and energy of every run found, from its retrain metrics when it retrained, else its search's."""
    from nni_snn.front import energy_front
    from nni_snn.plot import draw_front

    picture = Path(args.output)
    try:
        picture.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--output {picture}: cannot create its folder ({err.strerror})") from None
    runs, front = energy_front(args.runs)
    print(f"{'run':<16} {'accuracy':>8} {'uJ/sample':>10} {'SOPs/sample':>12} {'spikes/sample':>13}  front")
    for i, r in enumerate(runs):
        print(f"{r['label']:<16} {r['accuracy']:>8.4f} {r['energy_uj_per_sample']:>10.4f} "
              f"{r['sops_per_sample']:>12.4g} {r['spikes_per_sample']:>13.1f}  {'*' if i in front else ''}")
    print(f"picture: {draw_front(runs, picture)}")
    return 0


def _experiment(args) -> int:
    from nni_snn import nnictl

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535, got {args.port}")
    return nnictl.run(Path(args.config), args.port, args.timeout, args.stop)


def main(argv: list[str] | None = None) -> int:
    # NNI 3.0 warns about every newer torch class it does not know, on every import: harmless noise for users.
    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module", category=RuntimeWarning)
    from nni_snn.archfile import ArchError
    from nni_snn.data import DataError
    from nni_snn.front import FrontError
    from nni_snn.multitrial_baseline import MultitrialError
    from nni_snn.nnictl import ExperimentError
    from nni_snn.training import NonFiniteError

    commands = {"search": _search, "retrain": _retrain, "show": _show, "experiment": _experiment, "front": _front,
                "multitrial": _multitrial}
    try:
        args = build_parser().parse_args(argv)
        return commands[args.command](args)
    except (UsageError, ArchError, DataError, ExperimentError, FrontError) as err:
        print(f"nni-snn: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (NonFiniteError, MultitrialError) as err:
        print(f"nni-snn: stopped: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nni-snn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The ``nni-snn`` command: ``search``, ``retrain``, ``multitrial``, ``show``, ``experiment``, ``examples``, ``front``,
``export``.

It parses and prints: the options of search, retrain and multitrial, their flags, defaults, layering and checks,
are ``nni_snn.cli.options``; what the commands do is ``nni_snn.commands`` (search, retrain, export),
``nni_snn.train.estimate``, ``nni_snn.experiment`` (multitrial, nnictl) and ``nni_snn.files.front``. A user's mistake ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
import warnings
from pathlib import Path

from nni_snn.cli.flags import add_flags, config_only, resolve
from nni_snn.cli.options import (
    ExamplesOptions,
    ExperimentOptions,
    ExportOptions,
    FrontOptions,
    MultitrialOptions,
    RetrainOptions,
    SearchOptions,
    ShowOptions,
)
from nni_snn.errors import UsageError
from nni_snn.files.runfolder import RESULTS, RunFolder, config_text

# Exit codes (docs/reference/cli.md): 2 a user's mistake, 1 the environment or a run that stopped (a full disk, a
# diverging run), 130 an interrupt (Ctrl-C), as the shell reports a SIGINT.
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 1
EXIT_INTERRUPTED = 130
# Writing the results failed for want of room: a full disk or quota, a file-size limit, a read-only file system.
STORAGE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _options_parser(sub, command: str, options: type, help: str) -> None:
    """A training command: its options' flags (nni_snn.cli.flags), after --config and --print-config."""
    p = sub.add_parser(command, help=help, epilog=config_only(options) or None)
    p.add_argument("--config", help="YAML/JSON file of options (same names as the flags)")
    p.add_argument("--print-config", action="store_true", help="print the options this command would run with "
                                                               "(defaults < --config < flags) as config.yaml, and exit")
    add_flags(p, options)


def _command_parser(sub, command: str, options: type, help: str) -> None:
    """A command without a config file: its arguments and flags are its options' fields all the same."""
    add_flags(sub.add_parser(command, help=help), options)


def build_parser() -> argparse.ArgumentParser:
    from nni_snn import __version__

    parser = _Parser(prog="nni-snn", description="MA-DARTS architecture search for spiking neural networks on NNI")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _options_parser(sub, "search", SearchOptions, "run MA-DARTS and write arch.json, metrics.json, cell pictures, "
                                                  "TensorBoard logs")
    _options_parser(sub, "retrain", RetrainOptions, "train the fixed network of an arch.json; writes metrics.json, "
                                                    "checkpoints")
    _options_parser(sub, "multitrial", MultitrialOptions, "baseline: NNI's Random or RegularizedEvolution over the "
                                                          "same SNN space, each trial training one sampled network, "
                                                          "through the NNI manager")
    _command_parser(sub, "show", ShowOptions, "print an arch.json readably, with its parameter count")
    _command_parser(sub, "experiment", ExperimentOptions, "run an nnictl experiment config, wait, and summarise the "
                                                          "best trial")
    _command_parser(sub, "examples", ExamplesOptions, "copy the example experiment configs into DIR/experiments, to "
                                                      "run and edit from DIR (existing files are never overwritten)")
    _command_parser(sub, "front", FrontOptions, "plot accuracy vs energy of finished runs (e.g. an energy_tradeoff "
                                                "experiment)")
    _command_parser(sub, "export", ExportOptions, "write a retrained network as a NIR graph for neuromorphic "
                                                  "hardware and other SNN libraries (docs/deploy.md)")
    return parser


def _prepare(args, options: type, check=None):
    """Options, output folder and NNI trial (or None); inside a trial the tuner's parameters and folder win.
    ``check(opts)`` refuses bad input files before anything is written to the output folder."""
    from nni_snn.experiment import trial as nni_trial

    trial_dir = nni_trial.output_dir()
    trial = nni_trial.Trial() if trial_dir else None
    opts = resolve(options, args, trial.parameters if trial else None)
    output = Path(opts.output) if trial_dir is None or args.output else trial_dir
    resume = RunFolder(output).resume_checkpoint
    if trial and not opts.resume and _interrupted_here(output, opts):
        # `nnictl resume` starts a trial that was running when its manager stopped again, with the same trial id,
        # folder and parameters: continue from its last epoch's checkpoint instead of starting at epoch 0.
        import dataclasses

        opts = dataclasses.replace(opts, resume=True)
        print(f"nni-snn: resuming this trial from {resume} (its experiment was resumed)", flush=True)
    if opts.resume and not resume.is_file():
        raise UsageError(f"--resume: no checkpoint {resume}; run without --resume to start afresh")
    if check:
        check(opts)
    from nni_snn.commands.runtime import is_global_zero

    if is_global_zero(opts):  # the other processes of a DDP run run this command too; rank 0 writes the files
        # NNI gives each trial a folder of its own and runs a trial there again only when its experiment is
        # resumed: a run found there that cannot be continued is this trial's earlier start, replaced as before.
        claim_output(output, opts, replace=opts.overwrite or output == trial_dir)
    output.mkdir(parents=True, exist_ok=True)
    if is_global_zero(opts):
        write_config(output, opts)
    return opts, output, trial


def claim_output(output: Path, opts, replace: bool = False) -> None:
    """Make ``output`` this run's, before anything is trained or written: a folder holding another run's results
    or checkpoints is refused (one line, exit 2) unless ``replace`` (--overwrite), which removes them, saying so.

    Removed, not moved aside: a moved arch.json inside --output would still be found by ``nni-snn front`` and by
    anyone's glob as a run of its own, and a place outside --output would be a guess. Its TensorBoard logs stay,
    in their version folder, for comparison with the new run's. ``--resume`` continues the run that is there. The
    architecture a retrain reads may lie in its --output: it is the run's input, neither a run nor removed."""
    if getattr(opts, "resume", False):
        return
    keep = {Path(opts.arch).resolve()} if getattr(opts, "arch", None) else set()
    found = RunFolder(output).run_files(keep)
    if not found:
        return
    if not replace:
        finished = any(name in RESULTS for name in found)
        resume = ", --resume to continue it" if hasattr(opts, "resume") else ""
        raise UsageError(f"--output {output} holds {'a finished' if finished else 'an unfinished'} run "
                         f"({', '.join(found[:3])}{', ...' if len(found) > 3 else ''}); add --overwrite to replace "
                         f"it{resume}, or give another --output")
    shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
    print(f"nni-snn: replacing the run in {output}: removing {shown} (its TensorBoard logs stay)", file=sys.stderr,
          flush=True)
    RunFolder(output).remove_run(keep)


def refuse_to_replace(path: Path, overwrite: bool) -> None:
    """A command's single output file (``export``'s graph, ``front``'s picture) is not replaced unasked: one line,
    exit 2, unless ``--overwrite``."""
    if path.exists() and not overwrite:
        raise UsageError(f"--output {path} exists; add --overwrite to replace it, or give another --output")


def _interrupted_here(output: Path, opts) -> bool:
    """Whether ``output`` holds a checkpoint of a run with exactly these options (its ``config.yaml``): an NNI trial
    that was stopped mid-run. A checkpoint of other options is never continued (the run starts afresh over it)."""
    run = RunFolder(output)
    try:
        before = run.read_config()
    except UsageError:
        return False
    return run.resume_checkpoint.is_file() and before == _settings(output, opts)


def _settings(output: Path, opts) -> dict:
    # The folder it wrote to (inside an NNI trial: the trial's, not --output's default).
    # Not --resume or --overwrite: they say how to treat the folder, not what runs (read back with --config, either
    # would replace or continue a run unasked).
    return {**{k: v for k, v in opts.as_dict().items() if k not in ("config", "resume", "overwrite")},
            "output": str(output)}


def write_config(output: Path, opts) -> None:
    """``config.yaml`` beside the run's results: every option it ran with, defaults included, readable back with
    ``--config`` (so that a changed default never changes what an old run did)."""
    RunFolder(output).write_config(_settings(output, opts))


def _counts(metrics: dict) -> str:
    return (f"{metrics['spikes_per_sample']:.1f} spikes, {metrics['sops_per_sample']:.4g} SOPs, "
            f"{metrics['macs_per_sample']:.4g} MACs, {metrics.get('neuron_updates_per_sample', 0):.4g} neuron updates, "
            f"{metrics['energy_uj_per_sample']:.4g} uJ per sample ({metrics.get('energy_profile', 'ops-45nm')})")


def _params(counts: dict) -> str:
    return f"{counts['params']} parameters ({counts['params_with_auxiliary_head']} with the auxiliary head)"


def _selected(metrics: dict) -> str:
    on = "validation" if metrics["split"]["val_split"] else "the test split (--val-split 0)"
    return (f"test accuracy {metrics['test_accuracy']:.4f} of epoch {metrics['selected_epoch']}'s network, selected "
            f"on {on} at {metrics['val_accuracy']:.4f}")


def _retrain(args) -> int:
    from nni_snn.commands.retrain import final_result, run_retrain
    from nni_snn.files.archfile import load_arch

    def check(opts):  # a bad architecture file fails before any data is loaded or anything is written
        if opts.arch:
            from nni_snn.files.genotype import depth_problem

            problem = depth_problem(load_arch(opts.arch)["genotype"], opts.cells, "--cells")
            if problem:
                raise UsageError(f"--arch {opts.arch}: {problem}")

    opts, output, trial = _prepare(args, RetrainOptions, check=check)
    metrics = run_retrain(opts, output, trial)
    if metrics is not None:
        if trial:
            trial.final(final_result(metrics))
        print(f"{_selected(metrics)}, {_counts(metrics)}, {_params(metrics)}; {RunFolder(output).metrics}")
    return 0


def _search(args) -> int:
    from nni_snn.commands.retrain import final_result, run_retrain
    from nni_snn.commands.search import exported_result, run_search

    opts, output, trial = _prepare(args, SearchOptions)
    run = RunFolder(output)
    metrics = run_search(opts, output, trial)  # None in the other processes of a DDP run: rank 0 reports
    if metrics is not None and "front" in metrics:
        for row in metrics["front"]:
            loss = "none: no architecture step" if row["alpha_loss"] is None else f"{row['alpha_loss']:.4f}"
            print(f"search: lambda {row['lambda']:g}: architecture of epoch {row['epoch']} (architecture loss "
                  f"{loss}), estimated {row['energy_uj_per_sample']:.4g} uJ per sample "
                  f"({row['energy_profile']}, untrained), {row['params']:,} parameters: {row['arch']}")
        result = exported_result(metrics)
    elif metrics is not None:
        export = metrics["export"]
        print(f"search: accuracy {metrics['accuracy']:.4f}, {_counts(metrics)}; architecture of epoch "
              f"{export['epoch']} ({export['mode']}, accuracy {export['accuracy']:.4f}), {_params(metrics)}: "
              f"{run.arch}")
        result = exported_result(metrics)
    # Retrain the found cells (each lambda's, of a front), on the search's devices (every DDP process takes part): the
    # trial's final result is then its accuracy (a front's: the one retrain best on validation).
    searched = [run.front(lam) for lam in opts.front_lambdas()] if opts.energy_front is not None else [run]
    retrained = {}
    for folder in searched if opts.retrain_epochs else ():
        retrain = opts.retrain(folder.path)
        if metrics is not None:
            write_config(folder.retrain.path, retrain)
        done = run_retrain(retrain, folder.retrain.path, trial)
        if done is not None:
            print(f"retrain: {_selected(done)}, {_counts(done)}; {folder.retrain.metrics}")
            retrained[folder.path.name] = final_result(done)
    if retrained:
        result = max(retrained.values(), key=lambda r: r["default"])
        if opts.energy_front is not None:  # the front's points, shown beside the trial's result in the web UI
            for name, point in retrained.items():
                result = {**result, f"{name}_accuracy": point["default"],
                          f"{name}_energy_uj": point["energy_uj_per_sample"]}
    if trial and metrics is not None:
        trial.final(result)
    return 0


def _show(args) -> int:
    from nni_snn.files.archfile import event_framing, load_arch
    from nni_snn.files.genotype import depth_problem, format_genotype
    from nni_snn.networks import build_network, network_parameters
    from nni_snn.train.estimate import estimate_energy

    opts = resolve(ShowOptions, args)
    arch = load_arch(opts.arch_path)
    if opts.cells is None:
        searched = (arch.get("search") or {}).get("cells")
        # A file without a reduction cell is counted at its own depth (or 2, the most cells without one).
        opts.cells = 5 if not depth_problem(arch["genotype"], 5) else searched if isinstance(searched, int) else 2
    problem = depth_problem(arch["genotype"], opts.cells, "--cells")
    if problem:
        raise UsageError(f"{opts.arch_path}: {problem}")
    data = None
    if opts.dataset is not None:
        from nni_snn.data.images import load_dataset

        frames = event_framing(arch, opts.dataset, opts.frames_by, opts.event_size)
        data = load_dataset(opts.dataset, opts.data_dir, timesteps=opts.timesteps or arch["timesteps"], **frames)
        opts.num_classes, opts.in_channels, opts.image_size = data.num_classes, data.in_channels, data.image_size
    size = {"width": opts.width, "num_cells": opts.cells, "num_classes": opts.num_classes,
            "in_channels": opts.in_channels, "timesteps": opts.timesteps, "image_size": opts.image_size}
    from nni_snn.train.memory import check_parameters, on_meta

    # Counted on PyTorch's meta device: no weights allocated, whatever the width.
    params = network_parameters(on_meta(lambda: build_network(arch, auxiliary=True, **size)))
    counts = None
    if data is not None:  # before printing anything: a bad checkpoint ends in one error line
        check_parameters(lambda: build_network(arch, **size))  # one line if it cannot fit, before allocating
        net = build_network(arch, **size)  # the estimate is of the network a user deploys: no auxiliary head
        counts = estimate_energy(net, data.test, opts.batches, opts.checkpoint, opts.energy())
    print(format_genotype(arch))
    print(f"at width {opts.width}, {opts.cells} cells, {opts.num_classes} classes: {_params(params)}")
    if "results" in arch:
        print("search results: " + ", ".join(f"{k} {v}" for k, v in arch["results"].items()))
    if "zoo" in arch:  # a zoo entry: what it is, what its retrain measured, and how it was made
        zoo = arch["zoo"]
        print(f"zoo:{zoo['name']}: {zoo['what']}")
        print("retrained: " + ", ".join(f"{k} {v}" for k, v in zoo["retrained"].items()))
        print(f"made by: {zoo['search_command']}; then {zoo['retrain_command']}")
    if counts is not None:
        weights = (f"weights of {opts.checkpoint}" if opts.checkpoint
                   else "untrained weights, BN statistics from these images")
        print(f"estimate on {counts['samples']} {opts.dataset} test images ({weights}, T={net.timesteps}): "
              f"{_counts(counts)}")
    return 0


def _multitrial(args) -> int:
    import socket

    from nni_snn.experiment.multitrial import run_multitrial

    opts = resolve(MultitrialOptions, args)
    from nni_snn.experiment.manager_host import check_host, warn_if_exposed

    warn_if_exposed(check_host(opts.host), opts.port)
    with socket.socket() as probe:  # NNI would fail later, with a traceback, on a port in use
        if probe.connect_ex(("127.0.0.1", opts.port)) == 0:
            raise UsageError(f"--port {opts.port} is in use (another NNI experiment?); choose another")
    output = Path(opts.output)
    claim_output(output, opts, replace=opts.overwrite)
    write_config(output, opts)
    try:
        summary = run_multitrial(opts)
    except ValueError as err:
        raise UsageError(str(err)) from None
    print(f"{opts.search_strategy}: {len(summary['trials'])} trials; best accuracy {summary['accuracy']:.4f}, "
          f"{summary['spikes_per_sample']:.1f} spikes, {summary['energy_uj_per_sample']:.4g} uJ per sample, "
          f"{summary['params']} parameters; architecture: {RunFolder(output).arch}")
    return 0


def _front(args) -> int:
    """Accuracy and energy of every run found, from its retrain metrics when it retrained, else its search's."""
    from nni_snn.files.front import energy_front, front_table
    from nni_snn.files.plot import draw_front

    opts = resolve(FrontOptions, args)
    picture = Path(opts.output)
    try:
        picture.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--output {picture}: cannot create its folder ({err.strerror})") from None
    runs, front = energy_front(opts.runs, opts.energy_profile)
    refuse_to_replace(picture, opts.overwrite)  # after the runs are read, before anything is printed or drawn
    print(front_table(runs, front))
    print(f"picture: {draw_front(runs, picture)}")
    return 0


def _experiment(args) -> int:
    from nni_snn.experiment import nnictl

    opts = resolve(ExperimentOptions, args)
    return nnictl.run(opts.experiment_config, opts.port, opts.timeout, opts.stop, opts.resume, opts.host, opts.attach)


def _print_config(args) -> int:
    """``--print-config``: the options resolved and checked as the command would run with them, printed as the
    ``config.yaml`` it would write (readable back with ``--config``); nothing is trained or written."""
    options = {"search": SearchOptions, "retrain": RetrainOptions, "multitrial": MultitrialOptions}[args.command]
    opts = resolve(options, args)
    print(config_text(_settings(Path(opts.output), opts)), end="")
    return 0


def _examples(args) -> int:
    from nni_snn.experiment.nnictl import copy_examples

    opts = resolve(ExamplesOptions, args)
    target = copy_examples(Path(opts.folder))
    print(f"copied the example configs to {target}; run one from {opts.folder}, e.g.: "
          f"nni-snn experiment experiments/quickstart.yml")
    return 0


def _export(args) -> int:
    from nni_snn.commands.export import export_run

    opts = resolve(ExportOptions, args)
    refuse_to_replace(Path(opts.output), opts.overwrite)  # before the network is read or built
    written = export_run(Path(opts.run_dir), Path(opts.output), opts.checkpoint, opts.dt, opts.grouped)
    print(f"wrote {written} (NIR; dt {opts.dt} s; the logits are the output's mean over the T steps)")
    return 0


def _one_line(err: Exception) -> str:
    """The message; of an error raised in a data loader worker (a recording found unreadable while training),
    which PyTorch re-raises wrapped in the worker's traceback, its last line without the class name."""
    # A path or value the user gave may hold a carriage return or another control character: escaped, the message
    # stays one line on the terminal.
    text = "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in str(err))
    lines = text.strip().split("\n")
    if len(lines) <= 1:
        return text
    return lines[-1].split(": ", 1)[-1] if lines[-1].startswith("nni_snn.") else lines[-1]


def _flags(err: Exception) -> str:
    """The flags that would fix a library's error (``SettingError.settings``), e.g. `` (--width, --cells)``: library
    code names the settings, the command line its own flags for them."""
    settings = getattr(err, "settings", ())
    flags = [f"--{name.replace('_', '-')}" if isinstance(name, str) else f"--{name[0].replace('_', '-')} {name[1]}"
             for name in settings]
    return f" ({', '.join(flags)})" if flags else ""


def main(argv: list[str] | None = None) -> int:
    # NNI 3.0 warns about every newer torch class it does not know, on every import: harmless noise for users.
    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module", category=RuntimeWarning)
    # Torch-free: --help and a bad flag answer without importing torch, NNI or Lightning.
    from nni_snn.errors import STOPPED, USER_ERRORS

    if hasattr(signal, "SIGXFSZ"):  # past a file-size limit (ulimit -f): an OSError (one line below), not a kill
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    commands = {"search": _search, "retrain": _retrain, "show": _show, "experiment": _experiment, "front": _front,
                "multitrial": _multitrial, "export": _export, "examples": _examples}
    thread_errors, thread_hook = [], threading.excepthook

    def storage_in_thread(args):  # a writer thread (TensorBoard's) on a full disk: one line below, no traceback
        if isinstance(args.exc_value, OSError) and args.exc_value.errno in STORAGE_ERRNOS:
            thread_errors.append(args.exc_value)
        else:
            thread_hook(args)
    threading.excepthook = storage_in_thread
    try:
        args, unknown = build_parser().parse_known_args(argv)
        if unknown:  # named here, where the command is known: argparse's own error names only 'nni-snn'
            raise UsageError(f"unrecognized arguments: {' '.join(unknown)} (see 'nni-snn {args.command} --help')")
        if getattr(args, "print_config", False):
            return _print_config(args)
        code = commands[args.command](args)
        if thread_errors:
            raise thread_errors[0]
        return code
    except USER_ERRORS as err:
        print(f"nni-snn: error: {_one_line(err)}{_flags(err)}", file=sys.stderr)
        return EXIT_USAGE
    except STOPPED as err:
        print(f"nni-snn: stopped: {err}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except OSError as err:
        if err.errno not in STORAGE_ERRNOS:
            raise
        # A full disk or a file-size limit: results are written by rename (checkpoints by Lightning's fsspec
        # transaction), so a file it interrupted is absent, never a truncated one that looks complete.
        where = f" ({err.filename})" if err.filename else ""
        print(f"nni-snn: error: cannot write the results: {err.strerror}{where}; files it was writing were not "
              "left behind half-written", file=sys.stderr)
        return EXIT_ENVIRONMENT  # not the user's command: the machine's room
    except KeyboardInterrupt:
        print("nni-snn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        threading.excepthook = thread_hook


if __name__ == "__main__":
    sys.exit(main())

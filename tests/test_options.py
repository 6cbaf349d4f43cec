"""The options as data (nni_snn.cli.options): flags generated from the fields, one place that checks them, renames."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from nni_snn.cli.flags import add_flags, option, resolve
from nni_snn.cli.main import build_parser, main
from nni_snn.cli.options import MultitrialOptions, RetrainOptions, SearchOptions
from nni_snn.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"search": SearchOptions, "retrain": RetrainOptions, "multitrial": MultitrialOptions}


def spec_of(neuron) -> dict:
    """A built neuron's spec, read off the module (tau to float32's precision, as PLIF keeps it)."""
    from nni_snn.snn.neuron import PLIF

    read = {key: getattr(neuron, key) for key in ("tau", "v_threshold", "surrogate", "surrogate_alpha", "detach_reset")}
    return {"kind": "plif" if isinstance(neuron, PLIF) else "lif", **read, "tau": round(float(read["tau"]), 6)}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_option_is_a_flag_of_its_command_with_its_default_shown(command, capsys):
    options = COMMANDS[command]
    with pytest.raises(SystemExit):
        main([command, "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    config_only = {"population", "sample_size", "threads", "working_dir"}
    for f in dataclasses.fields(options):
        flag = "--no-progress" if f.name == "progress" else f"--{f.name.replace('_', '-')}"
        assert (flag in shown) != (f.name in config_only), f.name
    assert f"(default {options.width})" in shown and f"(default {options.output};" in shown


def test_defaults_resolve_unchanged_and_none_means_the_arch_files():
    opts = resolve(RetrainOptions, build_parser().parse_args(["retrain", "--arch", "a.json"]))
    assert opts == RetrainOptions(arch="a.json")
    assert opts.timesteps is None and opts.neuron is None  # the arch file's
    assert resolve(SearchOptions, build_parser().parse_args(["search"])).as_dict() == SearchOptions().as_dict()


def test_retrain_settles_what_it_left_to_the_arch_file_against_it():
    from nni_snn.snn.neuron import LIF, make_neuron

    arch = {"timesteps": 4, "neuron": {"kind": "plif", "tau": 0.3, "surrogate_alpha": 2.0}, "normalize": False,
            "attention_cells": "last", "search": {"dataset": "digits"}}
    given = RetrainOptions(arch="a.json", v_threshold=0.7, attention_cells="all")
    settled = given.against(arch)
    # the file's where the options left it, the options' where they gave it
    assert (settled.timesteps, settled.neuron, settled.tau, settled.surrogate_alpha) == (4, "plif", 0.3, 2.0)
    assert (settled.normalize, settled.attention_cells, settled.v_threshold) == (False, "all", 0.7)
    # in full: what neither gave, at the neuron's defaults: the spec of the neuron these three build
    assert settled.neuron_spec() == spec_of(make_neuron({"kind": "plif", "tau": 0.3, "surrogate_alpha": 2.0,
                                                         "v_threshold": 0.7}))
    assert given.timesteps is None  # the options given stay as they were
    baseline = RetrainOptions(baseline="spiking-cnn").against(None)
    assert (baseline.timesteps, baseline.frames_by) == (2, "time")
    assert baseline.neuron_spec() == spec_of(LIF())  # nothing given anywhere: the neuron's own defaults


def test_the_searchs_retrain_options_come_checked(tmp_path):
    retrain = SearchOptions(retrain_epochs=2, retrain_width=8).retrain(tmp_path)
    assert (retrain.width, retrain.epochs, retrain.arch) == (8, 2, str(tmp_path / "arch.json"))
    with pytest.raises(UsageError, match="--lr-min"):
        SearchOptions(retrain_epochs=2, retrain_lr=0.01, retrain_lr_min=0.1).retrain(tmp_path)
    assert (retrain.val_split, retrain.auxiliary_weight) == (RetrainOptions.val_split, RetrainOptions.auxiliary_weight)
    retrain = SearchOptions(retrain_epochs=2, retrain_val_split=0.2, retrain_auxiliary_weight=0).retrain(tmp_path)
    assert (retrain.val_split, retrain.auxiliary_weight) == (0.2, 0)


def test_layering_config_then_flags_then_trial_parameters(tmp_path):
    cfg = tmp_path / "cfg.yml"
    cfg.write_text("width: 4\ncells: 3\nepochs: 2\nprecision: 32\n")
    args = build_parser().parse_args(["search", "--config", str(cfg), "--cells", "2"])
    opts = resolve(SearchOptions, args, {"epochs": 1})
    assert (opts.width, opts.cells, opts.epochs, opts.precision) == (4, 2, 1, "32")  # YAML's 32 read as "32"
    with pytest.raises(UsageError, match=r"NNI trial parameters: unknown option 'depth'; known: .*width"):
        resolve(SearchOptions, args, {"depth": 3})


def test_an_energy_front_is_a_list_in_a_config_file_or_an_nni_trial(tmp_path):
    """``energy_front: [0, 1, 3]`` in YAML, and a list in an NNI trial's parameters, are the flag's 0,1,3."""
    cfg = tmp_path / "cfg.yml"
    cfg.write_text("energy_front: [0, 1, 3]\n")
    opts = resolve(SearchOptions, build_parser().parse_args(["search", "--config", str(cfg)]))
    assert opts.front_lambdas() == [0.0, 1.0, 3.0]
    opts = resolve(SearchOptions, build_parser().parse_args(["search"]), {"energy_front": [0, 0.3]})
    assert opts.front_lambdas() == [0.0, 0.3]
    with pytest.raises(UsageError, match="--energy-front"):
        resolve(SearchOptions, build_parser().parse_args(["search"]), {"energy_front": [1, 1]})


def test_multitrial_strategy_is_search_strategy(tmp_path, capsys):
    parse = build_parser().parse_args
    assert resolve(MultitrialOptions, parse(["multitrial", "--search-strategy", "evolution"])).search_strategy == \
        "evolution"
    assert capsys.readouterr().err == ""
    # retrain's --strategy is Lightning's; multitrial has none.
    assert resolve(RetrainOptions, parse(["retrain", "--arch", "a.json", "--strategy", "ddp"])).strategy == "ddp"
    assert main(["multitrial", "--strategy", "evolution", "--output", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    cfg = tmp_path / "cfg.yml"
    cfg.write_text("strategy: evolution\n")
    assert main(["multitrial", "--config", str(cfg), "--output", str(tmp_path)]) == 2
    assert "unknown option 'strategy'" in capsys.readouterr().err


def test_a_new_option_is_one_line():
    """What adding an option takes: the field; its flag, help, default and check follow."""
    import argparse

    @dataclasses.dataclass(kw_only=True)
    class Extended(SearchOptions):
        optimizer: str = option("sgd", "weight optimiser (default {default})", choices=("sgd", "adamw"))
        label_smoothing: float = option(0.1, "label smoothing of the loss (default {default})", check="[0,1]")

    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_flags(parser, Extended)
    assert "label smoothing of the loss (default 0.1)" in parser.format_help()
    assert resolve(Extended, parser.parse_args(["--optimizer", "adamw"])).optimizer == "adamw"
    with pytest.raises(UsageError, match=r"--label-smoothing must be a number in \[0, 1\], got 2.0"):
        resolve(Extended, parser.parse_args(["--label-smoothing", "2"]))
    with pytest.raises(UsageError, match=r"--optimizer 'adam' is unknown; use one of sgd, adamw"):
        resolve(Extended, parser.parse_args(["--optimizer", "adam"]))


def test_help_imports_no_torch():
    code = "import sys; from nni_snn.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("words", [["--help"], ["search", "--help"], ["retrain", "--help"], ["search", "--bogus"]])
def test_the_real_entry_point_answers_help_and_bad_flags_without_torch(words):
    """``nni-snn --help`` (the console script's own main) imports neither torch nor NNI: it answers in well under
    a second, where it took 5 s when the error classes came from torch-heavy modules."""
    import time

    code = ("import sys; from nni_snn.cli.main import main\n"
            "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "print('torch' in sys.modules or 'nni' in sys.modules, code, file=sys.stderr)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *words], capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - start
    assert done.stderr.strip().splitlines()[-1] == ("False 0" if "--help" in words else "False 2")
    assert seconds < 2.0  # about 0.3 s on an idle core; the bound leaves room for a busy CI machine


def test_every_registered_name_is_a_valid_choice_named_in_help():
    """Datasets, attention types and strategies: what is registered is what --help lists and the checks accept."""
    from nni_snn.data.events import EVENT_DATASETS
    from nni_snn.data.images import dataset_names
    from nni_snn.registry import ATTENTIONS, SEARCH_STRATEGIES

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    helps = {command: " ".join(commands[command].format_help().split()) for command in COMMANDS}
    assert set(EVENT_DATASETS) <= set(dataset_names())
    for command, key, names in [("search", "dataset", dataset_names()), ("search", "attention", ATTENTIONS),
                                   ("multitrial", "attention", ATTENTIONS),
                                   ("multitrial", "search_strategy", SEARCH_STRATEGIES)]:
        for name in names:
            assert name in helps[command], (command, name)
            args = parser.parse_args([command, f"--{key.replace('_', '-')}", name])
            assert getattr(resolve(COMMANDS[command], args), key) == name


@pytest.mark.parametrize("command, given", [("search", ["--tau", "0.3", "--attention", "ct"]),
                                            ("retrain", ["--baseline", "spiking-cnn", "--lr", "0.05"]),
                                            ("multitrial", ["--search-strategy", "evolution"])])
def test_config_yaml_reads_back_to_the_same_options(tmp_path, command, given):
    """What a run writes to config.yaml (every option, defaults included) resolves, with --config, to its options."""
    from nni_snn.cli.main import write_config

    parser = build_parser()
    opts = resolve(COMMANDS[command], parser.parse_args([command, *given, "--output", str(tmp_path)]))
    write_config(tmp_path, opts)
    again = resolve(COMMANDS[command], parser.parse_args([command, "--config", str(tmp_path / "config.yaml")]))
    assert again == opts


def test_help_shows_the_choices_in_sections(capsys):
    """A person scanning --help sees what a flag takes ({none,ct,ma}, not ATTENTION) under a section that says what
    it is about, and the config-only keys at the end."""
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    shown = capsys.readouterr().out
    for choices in ("--attention {none,ct,ma}", "--neuron {lif,plif,relu}", "--space {full,deployable}",
                    "--energy-profile {memory-45nm,ops-45nm,loihi}", "--frames-by {time,count}",
                    "--stem-stride {1,2}", "--export {best,last}"):
        assert choices in shown, choices
    assert "ATTENTION" not in shown and "NEURON " not in shown
    sections = [line[:-1] for line in shown.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert sections == ["options", "data", "network", "training", "search", "the retrain after the search", "energy",
                        "runtime: hardware, output, resuming"]
    section = shown.split("\nenergy:\n")[1].split("\n\n")[0]
    assert "--e-ac-pj" in section and "--spike-penalty" in section and "--width" not in section
    with pytest.raises(SystemExit):
        main(["multitrial", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "Keys of --config (and of NNI's parameters) without a flag: population: evolution's population" in shown


def test_every_option_of_a_training_command_has_a_section():
    from nni_snn.cli.flags import _metadata
    from nni_snn.cli.options import GROUPS

    for cls in COMMANDS.values():
        for f in dataclasses.fields(cls):
            assert _metadata(cls, f.name).get("group") in GROUPS, (cls.__name__, f.name)


def test_print_config_prints_the_resolved_config_and_runs_nothing(tmp_path, capsys):
    import yaml

    config = tmp_path / "mine.yml"
    config.write_text("width: 6\nattention: ct\n")
    out = tmp_path / "out"
    assert main(["search", "--config", str(config), "--attention", "none", "--epochs", "2", "--output", str(out),
                 "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["width"] == 6 and printed["attention"] == "none" and printed["epochs"] == 2  # flags win
    assert printed["cells"] == SearchOptions.cells and printed["output"] == str(out)  # defaults, in full
    assert not out.exists()  # nothing trained or written
    # What it prints runs as --config: the same options.
    (tmp_path / "printed.yml").write_text(yaml.safe_dump(printed))
    assert main(["search", "--config", str(tmp_path / "printed.yml"), "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == printed
    # A bad value is refused as the command would refuse it, in one line.
    assert main(["retrain", "--print-config"]) == 2
    assert "retrain needs --arch" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["search", "experiment", "show"])
def test_an_unknown_flag_points_at_the_commands_own_help(command, capsys):
    assert main([command, "x.json", "--bogus"] if command == "show" else [command, "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err == f"nni-snn: error: unrecognized arguments: --bogus (see 'nni-snn {command} --help')\n"

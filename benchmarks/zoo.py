"""The model zoo (``nni_snn/zoo/NAME.json``, loaded as ``zoo:NAME``): searched architectures behind the docs' tables,
copied from the committed runs under benchmarks/results with what their retrain measured and the commands that made
them. ``--write`` rewrites the zoo from those runs; tests/test_zoo.py fails when a committed entry differs.

    .venv/bin/python -m benchmarks.zoo --write
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from benchmarks.common import RESULTS, ROOT

ZOO = ROOT / "nni_snn" / "zoo"

FRONTS = "python -m benchmarks.fronts --setting subset (docs/energy.md, the README's table): seed 0"
# name: (the search's run folder, its retrain's, the study that ran them, what it is)
ENTRIES = {
    "fashionmnist-efficient": (
        "fronts/subset/search-ma-l3-s0", "fronts/subset/ma-l3-s0", FRONTS,
        ("MA-DARTS at the efficient macro-architecture (stride-2 stem, spatial head, attention in the last cell) "
         "with the energy penalty lambda 3 under memory-45nm")),
    "fashionmnist-efficient-darts": (
        "fronts/subset/search-darts-l3-s0", "fronts/subset/darts-l3-s0", FRONTS,
        "the same search without attention (DARTS), lambda 3"),
    "fashionmnist-ma": (
        "fronts/subset/search-ma-l0-s0", "fronts/subset/ma-l0-s0", FRONTS,
        "MA-DARTS at the efficient macro-architecture without the energy penalty (lambda 0)"),
    "fashionmnist-deployable": (
        "energy/fashionmnist/search-efficient-deployable-l3-s0", "energy/fashionmnist/retrain-efficient-deployable-l3-s0",
        "python -m benchmarks.energy (docs/energy.md, nni-snn 0.1's study): seed 0",
        ("searched in the deployable space (no max pooling, no attention), lambda 3, so it exports to NIR; its "
         "accuracy is of the best epoch on the test split and its energy under ops-45nm, as 0.1 measured")),
}
# Settings of where and how a run ran, not of what it computed: left out of the commands.
RUNTIME = {"output", "accelerator", "devices", "strategy", "num_nodes", "precision", "progress", "verbose",
           "num_workers", "download", "data_dir", "arch"}
KEPT = ("test_accuracy", "val_accuracy", "accuracy", "selected_epoch", "params", "spikes_per_sample",
        "sops_per_sample", "neuron_updates_per_sample", "energy_uj_per_sample", "energy_profile", "energy_uj_by_profile")


# Options a config.yaml of nni-snn 0.1 lacks, with what 0.1 did in their place: ops-only energy, and a retrain
# selected on the test split.
BEFORE_0_2 = {"energy_profile": "ops-45nm", "val_split": 0}


def command(name: str, config: dict, options: type, first: list[str]) -> str:
    """The ``nni-snn`` command of a run's config.yaml: its settings that differ from the command's defaults."""
    fields = options.__dataclass_fields__
    words = ["nni-snn", name, *first]
    config = {**{k: v for k, v in BEFORE_0_2.items() if k in fields and k not in config}, **config}
    for key, value in config.items():
        if key in RUNTIME or key not in fields or value is None or value == fields[key].default:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else f"--no-{key.replace('_', '-')}")
        else:
            words += [flag, str(value)]
    return " ".join(words)


def build(name: str) -> dict:
    from nni_snn.cli.options import RetrainOptions, SearchOptions

    search, retrain, study, what = ENTRIES[name]
    arch = json.loads((RESULTS / search / "arch.json").read_text())
    search_config = yaml.safe_load((RESULTS / search / "config.yaml").read_text())
    retrain_config = yaml.safe_load((RESULTS / retrain / "config.yaml").read_text())
    metrics = json.loads((RESULTS / retrain / "metrics.json").read_text())
    arch["zoo"] = {
        "name": name,
        "what": what,
        "study": study,
        "runs": [f"benchmarks/results/{search}", f"benchmarks/results/{retrain}"],
        "search_command": command("search", search_config, SearchOptions, []),
        "retrain_command": command("retrain", retrain_config, RetrainOptions, ["--arch", f"zoo:{name}"]),
        "retrained": {"dataset": retrain_config["dataset"], "subset_per_class": retrain_config.get("subset_per_class"),
                      "width": retrain_config["width"], "cells": retrain_config["cells"],
                      "epochs": retrain_config["epochs"], "seed": retrain_config["seed"],
                      **{key: metrics[key] for key in KEPT if key in metrics}},
    }
    return arch


def text(name: str) -> str:
    return json.dumps(build(name), indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite nni_snn/zoo from benchmarks/results")
    args = parser.parse_args(argv)
    stale = [name for name in ENTRIES if not (ZOO / f"{name}.json").is_file()
             or (ZOO / f"{name}.json").read_text() != text(name)]
    if args.write:
        ZOO.mkdir(exist_ok=True)
        for name in stale:
            (ZOO / f"{name}.json").write_text(text(name))
            print(f"wrote nni_snn/zoo/{name}.json")
        return 0
    for name in stale:
        print(f"stale: nni_snn/zoo/{name}.json (python -m benchmarks.zoo --write)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

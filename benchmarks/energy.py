"""Does the search find networks worth their energy? The accuracy-energy fronts on Fashion-MNIST (docs/energy.md).

The search-quality study's setting (1,000 training images, search width 4, retrain width 8, 3 cells, 8 epochs, T = 2),
every network retrained by ``nni-snn retrain`` alike, seeds 0-2. Its parts, each a plan of resumable runs:

- ``diagnose``: the ReLU twins (``--neuron relu``) of the search-quality study's MA-DARTS, random and DARTS-V2 cells,
  at DARTS's macro-architecture, beside the spiking CNN's twin: is the CNN's lead from spiking or from the network?
  And its MA-DARTS cells with the spatial head (``--head spatial``): how much is the classifier?
- ``front``: at a macro-architecture (``--macro``, default ``efficient``: the stem at 3 x width and stride 2, the
  spatial head, MA attention in the last cell only), MA-DARTS with the energy penalty lambda over a grid, random genotypes of the space, DARTS-V2's
  genotype and the spiking CNN; each method's accuracy-energy front and its hypervolume.
- ``deployable``: the search in the deployable space (``--space deployable``: no max pooling, no attention; what
  ``nni-snn export --format nir`` carries) at the front's macro-architecture and lambda 3.
- ``knobs``: the macro-architecture one knob at a time: each seed's MA-DARTS network of the front's ``--knob-lambda``
  retrained with one knob moved back (stem multiplier, stride, head) or changed (cells, T).

Hypervolume: the area a front dominates in (accuracy, log10 energy) above accuracy 0.70 and below 30 uJ per sample
(:data:`REFERENCE`): a network at accuracy a and energy e dominates the box [0.70, a] x [log10 e, log10 30]. Log
energy, since the networks span two orders of magnitude and a factor of energy should count the same anywhere.

    .venv/bin/python -m benchmarks.energy                    # all parts, resumable (~3 h on 2 cores)
    .venv/bin/python -m benchmarks.energy --parts front      # one part
    .venv/bin/python -m benchmarks.energy --report-only      # tables, fronts.png and summary.json so far
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import statistics
from pathlib import Path

from benchmarks.common import MACROS, flags_of, hypervolume, quiet, uniform_genotype
from benchmarks.study import SETTINGS, Study

LAMBDAS = (0.0, 0.1, 0.3, 1.0, 3.0)
# A hand-made reference for what the penalty finds at lambda >= 0.3: cells without a synaptic layer on any edge (each
# node the sum of its two predecessors' spikes, skipped in the normal cell, max-pooled 3x3 in the reduction cell), so
# the network's synapses are the stem, the cells' 1x1 preprocessing convs and the readout.
PARAMETER_FREE = {"normal": [["skip_connect", i] for k in range(4) for i in (k, k + 1)],
                  "reduce": [["max_pool_3x3", i] for k in range(4) for i in (k, k + 1)]}
REFERENCE = (0.70, 30.0)  # (accuracy, uJ per sample) of the hypervolume's reference point
RANDOM_PER_SEED = 2
DEPLOYABLE_LAMBDA = 3.0
# knob row -> (retrain flags, label): the front's MA-DARTS network with one knob changed.
KNOBS = {
    "m1": (["--stem-multiplier", "1"], "stem 1 x width"),
    "stride1": (["--stem-stride", "1"], "stem stride 1"),
    "global": (["--head", "global"], "global head"),
    "cells5": (["--cells", "5"], "5 cells"),
    "t1": (["--timesteps", "1"], "T = 1"),
    "t4": (["--timesteps", "4"], "T = 4"),
}


class EnergyStudy(Study):
    def __init__(self, out: Path, macro: str, lambdas: tuple[float, ...], knob_lambda: float, seeds: tuple[int, ...]):
        # A copy: the search-quality study's setting stays as it is for whoever reads it next (the docs build). No
        # auxiliary head for any network: the spiking CNN has none, and within a comparison every network trains
        # alike (experiments/efficient_fashionmnist.yml retrains so too).
        setting = dataclasses.replace(SETTINGS["fashionmnist"], seeds=seeds, more_seeds=(),
                                      retrain_extra=["--auxiliary-weight", "0"])
        self.macro_name, self.macro, self.lambdas, self.knob_lambda = macro, MACROS[macro], lambdas, knob_lambda
        variants = {self.key(lam): [*flags_of(self.macro), "--spike-penalty", str(lam)] for lam in lambdas}
        # The deployable space (docs/deploy.md: no max pooling, no attention), exportable to NIR by construction.
        variants[self.deployable_key()] = [*flags_of(self.macro), "--spike-penalty", str(DEPLOYABLE_LAMBDA),
                                           "--space", "deployable", "--attention", "none"]
        super().__init__("fashionmnist", setting, out, port=0, variants=variants)
        self.searches = {k: v for k, v in self.searches.items() if k in variants}  # no plain DARTS/CT/MA rows here
        self.quality = out.parent / "search_quality" / "fashionmnist"  # the search-quality study's runs

    def key(self, lam: float) -> str:
        return f"{self.macro_name}-l{lam:g}"

    def deployable_key(self) -> str:
        return f"{self.macro_name}-deployable-l{DEPLOYABLE_LAMBDA:g}"

    def plan_parts(self, parts: list[str]) -> list:
        plan = []
        for seed in self.s.seeds:
            if "front" in parts:
                plan += self._front(seed)
            if "knobs" in parts:
                plan += self._knobs(seed)
            if "deployable" in parts:
                key = self.deployable_key()
                plan.append((f"search-{key}-s{seed}", lambda k=key, sd=seed: self.search(k, sd)))
                plan.append((f"retrain-{key}-s{seed}", lambda k=key, sd=seed: self.retrain(
                    f"retrain-{k}-s{sd}", sd, self.arch_of(f"search-{k}-s{sd}"))))
            if "diagnose" in parts:
                plan += self._diagnose(seed)
        return plan

    def _front(self, seed: int) -> list:
        from nni_snn.files.genotype import DARTS_V2

        plan, m = [], self.macro_name
        for lam in self.lambdas:
            key = self.key(lam)
            plan.append((f"search-{key}-s{seed}", lambda k=key, sd=seed: self.search(k, sd)))
            plan.append((f"retrain-{key}-s{seed}", lambda k=key, sd=seed: self.retrain(
                f"retrain-{k}-s{sd}", sd, self.arch_of(f"search-{k}-s{sd}"))))
        for k in range(seed * RANDOM_PER_SEED, (seed + 1) * RANDOM_PER_SEED):
            run = f"retrain-{m}-random{k}-s{seed}"
            plan.append((run, lambda r=run, k=k, sd=seed: self.retrain(
                r, sd, self.write_arch(r, uniform_genotype(random.Random(1000 + k)), **self.macro))))
        run = f"retrain-{m}-free-s{seed}"
        plan.append((run, lambda r=run, sd=seed: self.retrain(r, sd, self.write_arch(r, PARAMETER_FREE, **self.macro))))
        run = f"retrain-{m}-dartsv2-s{seed}"
        plan.append((run, lambda r=run, sd=seed: self.retrain(r, sd, self.write_arch(r, DARTS_V2, **self.macro))))
        plan.append((f"retrain-cnn-s{seed}", lambda sd=seed: self.retrain(f"retrain-cnn-s{sd}", sd,
                                                                           baseline="spiking-cnn")))
        return plan

    def _knobs(self, seed: int) -> list:
        plan, key = [], self.key(self.knob_lambda)
        for knob, (flags, _) in KNOBS.items():
            run = f"retrain-{key}-{knob}-s{seed}"
            plan.append((run, lambda r=run, f=flags, sd=seed: self.retrain_with(
                r, sd, self.arch_of(f"search-{key}-s{sd}"), f)))
        return plan

    def _diagnose(self, seed: int) -> list:
        """ReLU twins of the search-quality study's cells (its arch files), at its (DARTS's) macro-architecture."""
        plan = []
        sources = {"ma": f"search-ma-s{seed}/arch.json", "dartsv2": f"retrain-dartsv2-s{seed}/arch.json",
                   f"random{seed}": f"retrain-random{seed}-s{seed}/arch.json"}
        run = f"retrain-quality-spatial-ma-s{seed}"  # the same MA-DARTS cells with the spatial head
        plan.append((run, lambda r=run, sd=seed: self.retrain_with(r, sd, str(self.quality / sources["ma"]),
                                                                   ["--head", "spatial"])))
        for name, arch in sources.items():
            run = f"retrain-quality-relu-{name}-s{seed}"
            plan.append((run, lambda r=run, a=arch, sd=seed: self.retrain(r, sd, str(self.quality / a), neuron="relu")))
        return plan

    def retrain_with(self, run: str, seed: int, arch: str, flags: list[str]) -> dict:
        """A retrain with more flags (a knob): those override the arch file's and the setting's."""
        saved = self.s.extra
        self.s.extra = [*saved, *flags]
        try:
            return self.retrain(run, seed, arch)
        finally:
            self.s.extra = saved

    def run_parts(self, parts: list[str]) -> None:
        plan = self.plan_parts(parts)
        self.out.mkdir(parents=True, exist_ok=True)
        for i, (run, step) in enumerate(plan, 1):
            if self.result(run) is not None:
                continue
            print(f"[energy {i}/{len(plan)}] {run} ...", flush=True)
            result = step()
            print(f"[energy {i}/{len(plan)}] {run} done: accuracy {result.get('accuracy', float('nan')):.4f}, "
                  f"{result.get('energy_uj_per_sample', float('nan')):.3g} uJ", flush=True)

    # ---- reporting --------------------------------------------------------------------------------------------
    def runs_of(self, prefix: str) -> list[dict]:
        """Finished retrains named ``prefix-s<seed>`` (or ``prefix<k>-s<seed>`` for numbered ones), with their seed."""
        found = []
        for folder in sorted(self.out.glob(f"{prefix}*-s*")):
            stem, seed = folder.name.rsplit("-s", 1)
            rest = stem.removeprefix(prefix)
            if rest and not rest.isdigit():
                continue
            result = self.result(folder.name)
            if result is not None and "accuracy" in result:
                found.append({**result, "seed": int(seed), "run": folder.name})
        return found

    def rows(self) -> dict[str, list[dict]]:
        m, rows = self.macro_name, {}
        for lam in self.lambdas:
            rows[f"MA-DARTS, lambda {lam:g}"] = self.runs_of(f"retrain-{self.key(lam)}")
        rows[f"DARTS in the deployable space, lambda {DEPLOYABLE_LAMBDA:g}"] = self.runs_of(
            f"retrain-{self.deployable_key()}")
        rows["random genotypes"] = self.runs_of(f"retrain-{m}-random")
        rows["DARTS-V2 genotype"] = self.runs_of(f"retrain-{m}-dartsv2")
        rows["parameter-free cells (hand-made)"] = self.runs_of(f"retrain-{m}-free")
        rows["spiking CNN"] = self.runs_of("retrain-cnn")
        for knob, (_, label) in KNOBS.items():
            rows[f"MA-DARTS, lambda {self.knob_lambda:g}, {label}"] = self.runs_of(
                f"retrain-{self.key(self.knob_lambda)}-{knob}")
        rows["the search-quality study's MA-DARTS cells, spatial head"] = self.runs_of("retrain-quality-spatial-ma")
        for name, label in (("ma", "MA-DARTS cells"), ("dartsv2", "DARTS-V2 cells"), ("random", "random cells")):
            rows[f"ReLU twin of the search-quality study's {label}"] = self.runs_of(f"retrain-quality-relu-{name}")
        return {label: runs for label, runs in rows.items() if runs}

    def report(self) -> dict:
        rows = self.rows()
        summary = {"setting": {"macro": self.macro_name, **self.macro, "lambdas": list(self.lambdas),
                               "reference": list(REFERENCE), "seeds": list(self.s.seeds)},
                   "rows": {label: _row(runs) for label, runs in rows.items()}}
        points = {label: (row["mean"], row["energy_uj_per_sample"]) for label, row in summary["rows"].items()}
        searched = [points[label] for label in points if label.startswith("MA-DARTS, lambda") and label.count(",") == 1]
        random_points = [(r["accuracy"], r["energy_uj_per_sample"]) for r in rows.get("random genotypes", [])]
        summary["fronts"] = {
            "MA-DARTS (every lambda)": {"points": searched, "hypervolume": hypervolume(searched, REFERENCE)},
            "random genotypes (each)": {"points": random_points, "hypervolume": hypervolume(random_points, REFERENCE)},
            **{label: {"points": [points[label]], "hypervolume": hypervolume([points[label]], REFERENCE)}
               for label in ("DARTS-V2 genotype", "parameter-free cells (hand-made)", "spiking CNN") if label in points},
        }
        summary["paired_hypervolume"] = self._paired_hypervolume(rows)
        summary["energy_by_group"] = self._energy_by_group()
        summary["diagnosis"] = self._diagnosis()
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def _energy_by_group(self) -> dict:
        """Where the energy goes, seed 0's networks: the search-quality study's (DARTS's macro-architecture) and this
        study's at its macro-architecture, µJ per sample per group."""
        from nni_snn.files.archfile import make_arch

        def arch_of(folder: Path, **network) -> dict:
            return make_arch(attention="ma", timesteps=2, genotype=self.result(folder.name)["genotype"]
                             if folder.parent == self.out else json.loads((folder / "result.json").read_text())["genotype"],
                             **network)

        found = {}
        quality = {"MA-DARTS cells, DARTS's macro": "retrain-ma-s0", "random cells, DARTS's macro": "retrain-random0-s0",
                   "DARTS-V2 cells, DARTS's macro": "retrain-dartsv2-s0"}
        for label, run in quality.items():
            if (self.quality / run / "metrics.json").is_file():
                found[label] = energy_by_group(self.quality / run, arch_of(self.quality / run), self.s)
        for label, run in ((f"MA-DARTS cells (lambda {self.knob_lambda:g}), {self.macro_name} macro",
                            f"retrain-{self.key(self.knob_lambda)}-s0"),
                           (f"random cells, {self.macro_name} macro", f"retrain-{self.macro_name}-random0-s0")):
            if (self.out / run / "metrics.json").is_file():
                found[label] = energy_by_group(self.out / run, arch_of(self.out / run, **self.macro), self.s)
        if (self.out / "retrain-cnn-s0" / "metrics.json").is_file():
            found["spiking CNN"] = energy_by_group(self.out / "retrain-cnn-s0", None, self.s)
        return found

    def _diagnosis(self) -> dict:
        """Paired by seed, in accuracy: each ReLU twin minus its spiking network, and the spatial head minus the
        global one for the same MA-DARTS cells (the spiking networks are the search-quality study's runs, retrained
        with the auxiliary head at 0.4, while this study's have none: until that study is rerun without it, each
        difference includes the head's)."""
        def accuracy(folder: Path) -> float | None:
            path = folder / "result.json"
            return json.loads(path.read_text())["accuracy"] if path.is_file() else None

        pairs = {"ReLU twin minus spiking, MA-DARTS cells": ("retrain-quality-relu-ma-s{s}", "retrain-ma-s{s}"),
                 "ReLU twin minus spiking, random cells": ("retrain-quality-relu-random{s}-s{s}",
                                                           "retrain-random{s}-s{s}"),
                 "ReLU twin minus spiking, DARTS-V2 cells": ("retrain-quality-relu-dartsv2-s{s}",
                                                             "retrain-dartsv2-s{s}"),
                 "ReLU twin minus spiking, spiking CNN": (None, "retrain-cnn-s{s}"),
                 "spatial head minus global head, MA-DARTS cells": ("retrain-quality-spatial-ma-s{s}",
                                                                   "retrain-ma-s{s}")}
        found = {}
        for label, (ours, theirs) in pairs.items():
            diffs = []
            for seed in self.s.seeds:
                a = (accuracy(self.out / ours.format(s=seed)) if ours
                     else accuracy(self.quality / f"retrain-cnnrelu-s{seed}"))
                b = accuracy(self.quality / theirs.format(s=seed))
                if a is not None and b is not None:
                    diffs.append(a - b)
            if diffs:
                se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
                found[label] = {"diffs": diffs, "mean": statistics.mean(diffs), "se": se}
        return found

    def _paired_hypervolume(self, rows: dict) -> dict:
        """Per seed: the hypervolume of that seed's MA-DARTS networks (every lambda) minus that of its random
        genotypes; mean and standard error over the seeds that have both."""
        diffs = []
        for seed in self.s.seeds:
            ours = [(r["accuracy"], r["energy_uj_per_sample"]) for label, runs in rows.items()
                    if label.startswith("MA-DARTS, lambda") and label.count(",") == 1 for r in runs if r["seed"] == seed]
            theirs = [(r["accuracy"], r["energy_uj_per_sample"]) for r in rows.get("random genotypes", [])
                      if r["seed"] == seed]
            if ours and theirs:
                diffs.append(hypervolume(ours, REFERENCE) - hypervolume(theirs, REFERENCE))
        se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
        return {"diffs": diffs, "mean": statistics.mean(diffs) if diffs else float("nan"), "se": se}


def macs_by_group(net, image_size: int, in_channels: int = 1) -> dict[str, float]:
    """MACs per sample of each group of ``net``: they depend on shapes only (the analog layers: the stem on an image,
    attention gates, a classifier on pooled rates), so one batch of zeros measures them exactly."""
    import torch

    from nni_snn.snn.spikes import SpikeMonitor
    from nni_snn.train.lightning import cell_group

    with SpikeMonitor(net.eval(), group_of=cell_group) as monitor, torch.no_grad(), monitor.counting("val"):
        net(torch.zeros(2, in_channels, image_size, image_size))
    return monitor.summary("val")["macs_per_group"]


def energy_by_group(folder: Path, arch: dict | None, setting) -> dict[str, float]:
    """Energy per sample (uJ) of each group of a finished retrain: its measured SOPs per group (metrics.json) and
    the MACs of its network (:func:`macs_by_group`; those of ``arch`` at the setting's size, or of the spiking
    CNN when ``arch`` is None)."""
    from nni_snn.networks import build_network
    from nni_snn.snn.spikes import energy_uj
    from nni_snn.snn.spiking_cnn import build_baseline

    metrics = json.loads((folder / "metrics.json").read_text())
    if arch is None:
        net = build_baseline("spiking-cnn", width=setting.cnn_width, num_classes=10, in_channels=1, image_size=28)
    else:
        net = build_network(arch, width=setting.retrain_width, num_cells=setting.retrain_cells, num_classes=10,
                            in_channels=1, image_size=28)
    macs = macs_by_group(net, 28)
    sops = {g: v for g, v in metrics["sops_per_cell"].items() if g != "auxiliary_head"}
    return {g: energy_uj(sops.get(g, 0.0), macs.get(g, 0.0)) for g in dict.fromkeys([*sops, *macs])}


def _row(runs: list[dict]) -> dict:
    accs = [r["accuracy"] for r in runs]
    row = {"n": len(runs), "mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
           "accuracies": accs, "seeds": [r["seed"] for r in runs]}
    for key in ("energy_uj_per_sample", "sops_per_sample", "spikes_per_sample", "params"):
        values = [r[key] for r in runs if key in r]
        if len(values) == len(runs):
            row[key] = statistics.mean(values)
            if key == "energy_uj_per_sample" and len(values) > 1:
                row["energy_std"] = statistics.stdev(values)
    return row


def table(summary: dict) -> str:
    s = summary["setting"]
    title = (f"Macro-architecture {s['macro']!r}: stem {s['stem_multiplier']} x width, stride {s['stem_stride']}, "
             f"{s['head']} head, attention in {s.get('attention_cells', 'all')} cells; seeds {', '.join(map(str, s['seeds']))}")
    lines = [title, "",
             "| network | n | accuracy, mean ± std | µJ / sample, mean ± std | SOPs / sample | spikes / sample |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label, row in summary["rows"].items():
        spread = f" ± {row['std']:.4f}" if row["n"] > 1 else ""
        energy = f"{row['energy_uj_per_sample']:.3g}" + (f" ± {row['energy_std']:.2g}" if "energy_std" in row else "")
        sops = f"{row['sops_per_sample']:.3g}" if "sops_per_sample" in row else ""
        spikes = f"{row['spikes_per_sample']:.3g}" if "spikes_per_sample" in row else ""
        lines.append(f"| {label} | {row['n']} | {row['mean']:.4f}{spread} | {energy} | {sops} | {spikes} |")
    acc, energy = summary["setting"]["reference"]
    lines += ["", f"Hypervolume in (accuracy, log10 µJ) against the reference point (accuracy {acc}, {energy} µJ):", ""]
    for label, front in summary["fronts"].items():
        lines.append(f"- {label}: {front['hypervolume']:.4f} ({len(front['points'])} points)")
    if summary.get("diagnosis"):
        lines += ["", "Diagnosis, paired by seed (accuracy points as fractions; mean ± standard error; per seed):", ""]
        for label, d in summary["diagnosis"].items():
            lines.append(f"- {label}: {d['mean']:+.4f} ± {d['se']:.4f} (" + ", ".join(f"{x:+.4f}" for x in d["diffs"])
                         + ")")
    if summary.get("energy_by_group"):
        lines += ["", "Where the energy goes (seed 0; µJ per sample per group: SOPs x 0.9 pJ + MACs x 4.6 pJ):", ""]
        for label, groups in summary["energy_by_group"].items():
            lines.append(f"- {label}: " + ", ".join(f"{g} {e:.3g}" for g, e in groups.items())
                         + f"; total {sum(groups.values()):.3g}")
    paired = summary["paired_hypervolume"]
    if paired["diffs"]:
        lines.append(f"- MA-DARTS minus random genotypes, paired by seed: {paired['mean']:+.4f} ± {paired['se']:.4f} ("
                     + ", ".join(f"{d:+.4f}" for d in paired["diffs"]) + ")")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8))
    for label, row in summary["rows"].items():
        if ", " in label.removeprefix("MA-DARTS, lambda") or label.startswith("ReLU"):
            continue  # knob rows and ReLU twins are in the table, not on the front
        ax.errorbar(row["energy_uj_per_sample"], row["mean"], yerr=row["std"], xerr=row.get("energy_std", 0),
                    fmt="o", capsize=3, label=label)
    randoms = summary["fronts"]["random genotypes (each)"]["points"]
    if randoms:
        ax.scatter([e for _, e in randoms], [a for a, _ in randoms], marker="x", color="grey", label="each random genotype")
    ax.set_xscale("log")
    ax.set_xlabel("energy per sample, µJ (log)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Fashion-MNIST, 1,000 training images: accuracy against energy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="front,knobs,diagnose,deployable",
                        help="comma-separated: front, knobs, diagnose, deployable")
    parser.add_argument("--macro", default="efficient", choices=sorted(MACROS))
    parser.add_argument("--lambdas", default=",".join(f"{lam:g}" for lam in LAMBDAS))
    parser.add_argument("--knob-lambda", type=float, default=1.0, help="the front's lambda whose networks the knobs move")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="benchmarks/results/energy")
    parser.add_argument("--plot", default="benchmarks/energy_front.png")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    quiet()
    study = EnergyStudy(Path(args.out), args.macro, tuple(float(v) for v in args.lambdas.split(",")), args.knob_lambda,
                        tuple(int(v) for v in args.seeds.split(",")))
    if not args.report_only:
        study.run_parts(args.parts.split(","))
    summary = study.report()
    print(table(summary), flush=True)
    # The tables docs/energy.md points to, written from the committed runs (never typed by hand).
    (Path(args.out) / "report.md").write_text(f"# Energy study: generated by python -m benchmarks.energy\n\n{table(summary)}\n")
    if args.plot:
        plot(summary, Path(args.plot))


if __name__ == "__main__":
    main()

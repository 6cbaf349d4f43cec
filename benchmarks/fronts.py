"""Accuracy-energy fronts on Fashion-MNIST: the searched networks against the hand design's own front (issue 36).

Every network is trained by ``nni-snn retrain`` alike (no auxiliary head for any: the spiking CNN has none), chosen on
a validation split carved from the training images (``--val-split``: best epoch), and read on the test split once.
Energy comes from each run's metrics.json under every profile of ``nni_snn.snn.energy`` (memory-45nm, ops-45nm, loihi).
Per seed, the points:

- ``cnn``: the spiking CNN over width (4, 8, 16, 32) x T (1, 2, 4): the hand design as a front, not one point;
- ``ma``: MA-DARTS searched and retrained at the efficient macro-architecture, one search per energy penalty lambda,
  priced by the memory-aware profile;
- ``darts``: the same without attention (attention's share);
- ``front``: MA-DARTS with every lambda from one search (``--energy-front``, issue 39), each lambda's architecture
  retrained as the ``ma`` ones are: one search's front against the ``ma`` method's separate searches;
- ``random``: for each lambda, the uniform genotype of the space, out of one pool of ``random_candidates`` per seed,
  whose energy (estimated untrained, BN statistics from training images, as ``nni-snn show --dataset`` does) is
  closest to that lambda's searched genotype's: random search at matched energy, not random genotypes at one energy.

Fronts: per method and seed, the points that are Pareto-optimal on (validation accuracy, energy); their hypervolume
in (test accuracy, log10 energy) above the setting's reference accuracy and below twice the largest energy measured
under that profile; differences paired by seed with their standard errors.

Resumable and parallel: each run writes into its own folder; a finished run (``result.json``) is not redone; an
interrupted retrain continues from its last checkpoint, an interrupted search starts again. ``--shard i/n`` runs
every n-th chain (a search, its retrain, its matched random genotype) and CNN run, so n processes share the plan;
give each ``--threads`` (two single-thread processes use 2 cores better than one two-thread process, see
docs/benchmarks.md).

    .venv/bin/python -m benchmarks.fronts --setting subset           # 1,000 training images (~1.5 CPU-hours)
    .venv/bin/python -m benchmarks.fronts --setting full --shard 0/2 --threads 1 &   # all 60,000
    .venv/bin/python -m benchmarks.fronts --setting full --shard 1/2 --threads 1 &
    .venv/bin/python -m benchmarks.fronts --setting subset --report-only   # tables, plot, summary.json so far
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import statistics
from pathlib import Path

from benchmarks.common import (
    MACROS,
    flags_of,
    hypervolume,
    quiet,
    run_cli,
    uniform_genotype,
    write_json_atomic,
)
from benchmarks.study import RunFolders

METHODS = {"cnn": "spiking CNN (width x T)", "ma": "MA-DARTS (lambda)", "darts": "DARTS, no attention (lambda)",
           "random": "random genotypes at matched energy",
           "front": "MA-DARTS, every lambda from one search (--energy-front)"}
PROFILE_NAMES = ("memory-45nm", "ops-45nm", "loihi")


@dataclasses.dataclass(frozen=True)
class Setting:
    dataset: str = "fashionmnist"
    subset_per_class: int | None = 100
    val_split: float = 0.1
    seeds: tuple[int, ...] = (0, 1, 2)
    lambdas: tuple[float, ...] = (0.0, 1.0, 3.0)  # 0.3 was planned and cut to fit the first run's time
    cnn_widths: tuple[int, ...] = (4, 8, 16, 32)
    cnn_timesteps: tuple[int, ...] = (1, 2, 4)
    search_width: int = 4
    search_cells: int = 3
    search_epochs: int = 3
    retrain_width: int = 8
    retrain_cells: int = 3
    epochs: int = 8
    batch_size: int = 32
    lr: float = 0.1
    # The search's training images per class (None: the setting's): on all 60,000 a supernet epoch alone would take
    # about an hour here, so the full setting searches on a balanced tenth, as DARTS searches on a proxy.
    search_subset_per_class: int | None = None
    reference_accuracy: float = 0.70  # the hypervolume's floor
    random_candidates: int = 40  # uniform genotypes drawn per (seed, lambda) to match the searched one's energy
    data_dir: str | None = None

    def data_flags(self, search: bool = False) -> list[str]:
        """A search's and a retrain's data flags (a search splits its training images into halves of its own)."""
        flags = ["--dataset", self.dataset, "--batch-size", str(self.batch_size), "--lr", str(self.lr),
                 "--accelerator", "cpu"]
        subset = (self.search_subset_per_class or self.subset_per_class) if search else self.subset_per_class
        flags += ["--subset-per-class", str(subset)] if subset else []
        return flags + (["--data-dir", self.data_dir] if self.data_dir else [])


SETTINGS = {
    # The earlier energy study's scale (1,000 training images, 100 of them for validation): cheap, for the record.
    "subset": Setting(),
    # All 60,000 training images (6,000 for validation), 4 epochs: where architectures differ. Searches on 10,000.
    "full": Setting(subset_per_class=None, search_subset_per_class=1000, epochs=4, search_epochs=2, batch_size=128,
                    lr=0.1, reference_accuracy=0.80),
    # The CPU-tiny path (tests/test_energy_study.py): seconds per run.
    "tiny": Setting(dataset="digits", subset_per_class=20, seeds=(0,), lambdas=(0.0, 1.0), cnn_widths=(2, 4),
                    cnn_timesteps=(1,), search_width=2, search_epochs=1, retrain_width=2, epochs=1,
                    random_candidates=3, reference_accuracy=0.0),
}


def lam_key(lam: float) -> str:
    return f"{lam:g}".replace(".", "p")


class FrontStudy(RunFolders):
    def __init__(self, setting: Setting, out: Path):
        self.s, self.out = setting, out

    # ---- runs -------------------------------------------------------------------------------------------------
    def _macro(self) -> list[str]:
        return flags_of(MACROS["efficient"])

    def search(self, run: str, attention: str, lam: float | None, seed: int) -> dict:
        """One search: at penalty ``lam``, or (``lam`` None) the setting's lambdas as one --energy-front search."""
        import shutil

        folder = self.out / run
        shutil.rmtree(folder, ignore_errors=True)  # a search killed midway starts again
        folder.mkdir(parents=True)
        penalty = (["--spike-penalty", str(lam)] if lam is not None
                   else ["--energy-front", ",".join(f"{x:g}" for x in self.s.lambdas)])
        seconds = run_cli(["search", *self.s.data_flags(search=True), "--attention", attention, *self._macro(),
                           *penalty, "--energy-profile", "memory-45nm",
                           "--width", str(self.s.search_width), "--cells", str(self.s.search_cells),
                           "--epochs", str(self.s.search_epochs), "--seed", str(seed), "--no-progress",
                           "--output", str(folder)], folder / "log.txt")
        if lam is None:
            return self._finish(run, {"seconds": seconds, "arch": {f"{x:g}": f"{run}/front/lambda-{x:g}/arch.json"
                                                                   for x in self.s.lambdas}})
        return self._finish(run, {"seconds": seconds, "arch": f"{run}/arch.json"})

    def retrain(self, run: str, seed: int, arch: str | None = None, width: int | None = None,
                timesteps: int | None = None) -> dict:
        folder = self.out / run
        folder.mkdir(parents=True, exist_ok=True)
        network = ["--arch", arch, "--cells", str(self.s.retrain_cells)] if arch else ["--baseline", "spiking-cnn"]
        size = ["--width", str(width or self.s.retrain_width)] + (["--timesteps", str(timesteps)] if timesteps else [])
        resume = ["--resume"] if (folder / "checkpoints" / "last.ckpt").is_file() else []
        seconds = run_cli(["retrain", *network, *size, *self.s.data_flags(), "--val-split", str(self.s.val_split),
                           "--epochs", str(self.s.epochs),
                           "--auxiliary-weight", "0", "--seed", str(seed), "--no-progress", *resume,
                           "--output", str(folder)], folder / "log.txt")
        m = json.loads((folder / "metrics.json").read_text())
        return self._finish(run, {
            "seconds": seconds, "val_accuracy": m.get("val_accuracy", m.get("best_accuracy")),
            "test_accuracy": m.get("test_accuracy", m["accuracy"]), "selected_epoch": m.get("selected_epoch"),
            **{k: m[k] for k in ("energy_uj_by_profile", "spikes_per_sample", "sops_per_sample", "adds_per_sample",
                                 "neuron_updates_per_sample", "memory_accesses_per_sample", "params")}})

    def matched_random(self, run: str, seed: int, searched_arch: str) -> str:
        """The arch.json of the uniform genotype whose estimated energy is closest (in log) to the searched one's."""
        import torch

        from nni_snn.data.images import load_dataset
        from nni_snn.files.archfile import load_arch, make_arch
        from nni_snn.networks import build_network
        from nni_snn.snn.energy import profile
        from nni_snn.train.estimate import estimate_energy

        path = self.out / run / "arch.json"
        if path.is_file():
            return str(path)
        data = load_dataset(self.s.dataset, self.s.data_dir, subset_per_class=self.s.subset_per_class, seed=seed)
        searched = load_arch(searched_arch)

        def energy(arch: dict) -> float:
            torch.manual_seed(seed)
            net = build_network(arch, width=self.s.retrain_width, num_cells=self.s.retrain_cells,
                                num_classes=data.num_classes, in_channels=data.in_channels,
                                image_size=data.image_size)
            with torch.no_grad():
                return estimate_energy(net, data.train, 2, None, profile("memory-45nm"))["energy_uj_per_sample"]

        target = math.log(energy(searched))
        # One pool of candidates per seed, each lambda's match taken from it (so two lambdas whose searched networks
        # cost about the same get the same genotype). 12: the salt the subset study's pools were drawn with.
        rng = random.Random(7919 * seed + 12)
        network = {k: searched[k] for k in ("attention", "timesteps", "neuron", "normalize", "attention_cells",
                                            "cell_norm", "stem_multiplier", "stem_stride", "head", "space")
                   if k in searched}
        nodes = searched["cell_nodes"]
        candidates = [make_arch(**network, genotype=uniform_genotype(rng, nodes))
                      for _ in range(self.s.random_candidates)]
        scored = [(abs(math.log(energy(c)) - target), i) for i, c in enumerate(candidates)]
        best = candidates[min(scored)[1]]
        write_json_atomic(path, best)
        return str(path)

    def plan(self, methods: tuple[str, ...] = tuple(METHODS)) -> list[list[tuple[str, callable]]]:
        """Chains of runs (each in order) of the given methods; chains are independent of each other."""
        chains = []
        for seed in self.s.seeds:
            for lam in self.s.lambdas:
                key = lam_key(lam)
                for method, attention in (("ma", "ma"), ("darts", "none")):
                    if method not in methods:
                        continue
                    search, retrain = f"search-{method}-l{key}-s{seed}", f"{method}-l{key}-s{seed}"
                    chain = [(search, lambda r=search, a=attention, lm=lam, sd=seed: self.search(r, a, lm, sd)),
                             (retrain, lambda r=retrain, sr=search, sd=seed: self.retrain(
                                 r, sd, str(self.out / self.result(sr)["arch"])))]
                    if method == "ma" and "random" in methods:
                        rnd = f"random-l{key}-s{seed}"
                        chain.append((rnd, lambda r=rnd, sr=search, sd=seed: self.retrain(
                            r, sd, self.matched_random(r, sd, str(self.out / self.result(sr)["arch"])))))
                    chains.append(chain)
            if "front" in methods:
                search = f"search-front-s{seed}"
                chain = [(search, lambda r=search, sd=seed: self.search(r, "ma", None, sd))]
                for lam in self.s.lambdas:
                    retrain = f"front-l{lam_key(lam)}-s{seed}"
                    chain.append((retrain, lambda r=retrain, sr=search, sd=seed, lm=lam: self.retrain(
                        r, sd, str(self.out / self.result(sr)["arch"][f"{lm:g}"]))))
                chains.append(chain)
        # The CNN's points cheapest first, every seed of one before the next: an interrupted study holds the cheap
        # end of the front over all seeds rather than one seed's whole front.
        sizes = sorted(((w, t) for w in self.s.cnn_widths for t in self.s.cnn_timesteps), key=lambda s: s[0] ** 2 * s[1])
        for width, t in sizes if "cnn" in methods else ():
            for seed in self.s.seeds:
                run = f"cnn-w{width}-t{t}-s{seed}"
                chains.append([(run, lambda r=run, sd=seed, w=width, tt=t: self.retrain(r, sd, width=w,
                                                                                         timesteps=tt))])
        return chains

    def run(self, shard: int = 0, shards: int = 1, methods: tuple[str, ...] = tuple(METHODS)) -> None:
        import time

        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "setting.json").write_text(json.dumps(dataclasses.asdict(self.s), indent=2))
        chains = self.plan(methods)[shard::shards]
        total = sum(len(c) for c in chains)
        done = 0
        for chain in chains:
            for run, step in chain:
                done += 1
                if self.result(run) is not None:
                    continue
                start = time.perf_counter()
                print(f"[{done}/{total}] {run} ...", flush=True)
                result = step()
                shown = {k: round(v, 4) for k, v in result.items() if k in ("val_accuracy", "test_accuracy")}
                print(f"[{done}/{total}] {run} done in {time.perf_counter() - start:.0f} s {shown}", flush=True)

    # ---- report -----------------------------------------------------------------------------------------------
    def points(self) -> dict[str, dict[int, list[dict]]]:
        """method -> seed -> finished retrains (with their run name)."""
        found: dict[str, dict[int, list[dict]]] = {m: {} for m in METHODS}
        for folder in sorted(self.out.glob("*-s*")):
            method = folder.name.split("-")[0]
            result = self.result(folder.name)
            if method in METHODS and result is not None:
                seed = int(folder.name.rsplit("-s", 1)[1])
                found[method].setdefault(seed, []).append({**result, "run": folder.name})
        return found

    def report(self) -> dict:
        points = self.points()
        everything = [p for seeds in points.values() for runs in seeds.values() for p in runs]
        summary: dict = {"setting": dataclasses.asdict(self.s), "rows": {}, "hypervolume": {}, "paired": {}}
        for run_points in _by_config(everything).items():
            label, runs = run_points
            summary["rows"][label] = _row(runs)
        for name in PROFILE_NAMES:
            energies = [p["energy_uj_by_profile"][name] for p in everything]
            if not energies:
                continue
            reference = (self.s.reference_accuracy, 2 * max(energies))
            per_seed = {m: {seed: _front_hypervolume(runs, name, reference) for seed, runs in seeds.items()}
                        for m, seeds in points.items()}
            summary["hypervolume"][name] = {"reference": reference, **{
                m: {"per_seed": hv, **_mean_se(list(hv.values()))} for m, hv in per_seed.items() if hv}}
            pairs = {}
            for a, b in (("ma", "cnn"), ("ma", "random"), ("ma", "darts"), ("front", "ma"), ("front", "cnn")):
                diffs = [per_seed[a][sd] - per_seed[b][sd] for sd in self.s.seeds
                         if sd in per_seed[a] and sd in per_seed[b]]
                if diffs:
                    pairs[f"{a} - {b}"] = {"diffs": diffs, **_mean_se(diffs)}
            summary["paired"][name] = pairs
        # What a front costs to search: the one --energy-front search against the sum of the separate searches.
        searches = {}
        for method in ("ma", "front"):
            per_seed = {}
            for folder in self.out.glob(f"search-{method}-*s*"):
                result = self.result(folder.name)
                if result is not None:
                    seed = int(folder.name.rsplit("-s", 1)[1])
                    per_seed.setdefault(seed, []).append(result["seconds"])
            complete = {seed: sum(v) for seed, v in per_seed.items()
                        if len(v) == (len(self.s.lambdas) if method == "ma" else 1)}
            if complete:
                searches[method] = {"per_seed": complete, **_mean_se(list(complete.values()))}
        summary["search_seconds"] = searches
        return summary


def _config(run: str) -> str:
    """``ma-l1-s0`` -> ``ma-l1``: the row a run belongs to (its seed dropped)."""
    return run.rsplit("-s", 1)[0]


def _by_config(runs: list[dict]) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for r in sorted(runs, key=lambda r: r["run"]):
        rows.setdefault(_config(r["run"]), []).append(r)
    return rows


def _mean_se(values: list[float]) -> dict:
    if not values:
        return {"mean": float("nan"), "se": float("nan"), "n": 0}
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"mean": statistics.mean(values), "se": se, "n": len(values)}


def _row(runs: list[dict]) -> dict:
    test = [r["test_accuracy"] for r in runs]
    val = [r["val_accuracy"] for r in runs if r["val_accuracy"] is not None]
    row = {"n": len(runs), "test_mean": statistics.mean(test), "test_std": statistics.stdev(test) if len(test) > 1 else 0.0,
           "val_mean": statistics.mean(val) if val else None, "seconds": statistics.mean(r["seconds"] for r in runs)}
    for name in PROFILE_NAMES:
        row[f"uj_{name}"] = statistics.mean(r["energy_uj_by_profile"][name] for r in runs)
    for key in ("spikes_per_sample", "neuron_updates_per_sample", "memory_accesses_per_sample", "params"):
        row[key] = statistics.mean(r[key] for r in runs)
    return row


def _front_hypervolume(runs: list[dict], profile_name: str, reference: tuple[float, float]) -> float:
    """Hypervolume of the points Pareto-optimal on (validation accuracy, energy), scored by their test accuracy."""
    chosen = [r for r in runs if not any(
        o["val_accuracy"] >= r["val_accuracy"] and o["energy_uj_by_profile"][profile_name]
        <= r["energy_uj_by_profile"][profile_name] and o is not r and (
            o["val_accuracy"] > r["val_accuracy"]
            or o["energy_uj_by_profile"][profile_name] < r["energy_uj_by_profile"][profile_name]) for o in runs)]
    return hypervolume([(r["test_accuracy"], r["energy_uj_by_profile"][profile_name]) for r in chosen], reference)


def table(summary: dict) -> str:
    s = summary["setting"]
    data = f"{s['dataset']}, " + (f"{s['subset_per_class'] * 10:,} training images" if s["subset_per_class"]
                                  else "all training images")
    lines = [(f"{data} ({s['val_split']:.0%} of them the validation split), the full test split; seeds "
              f"{', '.join(map(str, s['seeds']))}; {s['epochs']} epochs, no auxiliary head; test accuracy of the "
              "epoch chosen on validation, mean ± std over seeds; energy per sample under each profile; wall "
              "seconds per retrain (one thread, beside other work on a 2-core machine)."), "",
             ("| network | n | test accuracy | val accuracy | µJ memory-45nm | µJ ops-45nm | µJ loihi | spikes | "
              "neuron updates | memory accesses | parameters | s / run |"),
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, row in summary["rows"].items():
        val = f"{row['val_mean']:.4f}" if row["val_mean"] is not None else ""
        lines.append(f"| {label} | {row['n']} | {row['test_mean']:.4f} ± {row['test_std']:.4f} | {val} | "
                     f"{row['uj_memory-45nm']:.3g} | {row['uj_ops-45nm']:.3g} | {row['uj_loihi']:.3g} | "
                     f"{row['spikes_per_sample']:.4g} | {row['neuron_updates_per_sample']:.4g} | "
                     f"{row['memory_accesses_per_sample']:.4g} | {row['params']:,.0f} | {row['seconds']:.0f} |")
    for name, hv in summary["hypervolume"].items():
        acc, energy = hv["reference"]
        lines += ["", (f"Hypervolume under {name} (test accuracy x log10 µJ, points chosen on validation; reference "
                       f"accuracy {acc}, {energy:.3g} µJ): mean ± standard error over seeds"), ""]
        for method, label in METHODS.items():
            if method in hv:
                lines.append(f"- {label}: {hv[method]['mean']:.4f} ± {hv[method]['se']:.4f} (n = {hv[method]['n']})")
        for pair, d in summary["paired"].get(name, {}).items():
            lines.append(f"- paired {pair}: {d['mean']:+.4f} ± {d['se']:.4f} ("
                         + ", ".join(f"{x:+.4f}" for x in d["diffs"]) + ")")
    if summary.get("search_seconds"):
        lines += ["", "Search wall time per seed (every lambda), mean ± standard error, seconds:", ""]
        for method, t in summary["search_seconds"].items():
            lines.append(f"- {METHODS[method]}: {t['mean']:.0f} ± {t['se']:.0f} (n = {t['n']})")
    return "\n".join(lines)


def plot(summary: dict, study: FrontStudy, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    points = study.points()
    for ax, name in zip(axes, ("memory-45nm", "ops-45nm")):
        for method, label in METHODS.items():
            rows = _by_config([r for runs in points[method].values() for r in runs])
            xs = [statistics.mean(r["energy_uj_by_profile"][name] for r in runs) for runs in rows.values()]
            ys = [statistics.mean(r["test_accuracy"] for r in runs) for runs in rows.values()]
            if xs:
                ax.scatter(xs, ys, label=label, s=22)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # under a decade they overlap
        ax.set_xlabel(f"energy per sample, µJ ({name}, log)")
        ax.set_ylabel("test accuracy (mean over seeds)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", default="subset", choices=sorted(SETTINGS))
    parser.add_argument("--out", help="default: benchmarks/results/fronts/SETTING")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th chain from the i-th (default 0/1)")
    parser.add_argument("--threads", type=int, help="torch threads of this process")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated subset of the plan to run (random needs ma), e.g. cnn (default: all)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    methods = tuple(m for m in args.methods.split(",") if m)
    if unknown := sorted(set(methods) - set(METHODS)):
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    quiet()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out or f"benchmarks/results/fronts/{args.setting}")
    study = FrontStudy(SETTINGS[args.setting], out)
    if not args.report_only:
        shard, shards = (int(v) for v in args.shard.split("/"))
        study.run(shard, shards, methods)
    summary = study.report()
    text = table(summary)
    print(text, flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    # docs/energy.md's tables come from these files (never typed by hand).
    (out / "report.md").write_text(f"# Fronts: generated by python -m benchmarks.fronts\n\n{text}\n")
    plot(summary, study, out / "fronts.png")


if __name__ == "__main__":
    main()

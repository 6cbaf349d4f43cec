"""Is the search worth running? MA-DARTS against random architectures of the same space, at equal cost.

Every architecture is retrained the same way (same width, cells, epochs, batch, learning rate and seed) by the path a
user runs (``nni-snn retrain``, a subprocess per run) and scored on the full held-out split:

- DARTS, CT-DARTS and MA-DARTS (``nni-snn search --attention none|ct|ma``), one search per seed;
- NNI's Random multi-trial search (``nni-snn multitrial``, through the NNI manager) given, per seed, the wall time the
  MA-DARTS search of that seed took, its networks trained on the same weight half and ranked on the same alpha half;
- K uniformly random genotypes of the space (MA attention), genotype k retrained with seed k mod the seeds;
- on more seeds (``more_seeds``), the core comparison only: DARTS, MA-DARTS and two new random genotypes a seed;
- DARTS-V2's published genotype (MA attention) and the spiking CNN reference with its ReLU twin, per seed;
- logistic regression on the pixels of each seed's training subset.

The supernet's ranking quality: Kendall's tau between the order in which each search's alpha ranks the retrained
genotypes of MA attention (score: the sum over a genotype's 16 edges of log softmax(alpha)[op]) and the order of their
retrained accuracies (mean over their seeds). A tau near 0 means alpha does not know which networks train well.

Resumable: each run writes into its own folder under ``--out``; a finished run (``result.json``) is not redone, an
interrupted retrain continues from its last checkpoint, an interrupted search starts again. Progress goes to stdout;
each run's own output to ``log.txt`` in its folder. Runs are in-process calls of the ``nni-snn`` command. The
study's machinery is :mod:`benchmarks.study`; this module is its table, plot and command line.

    .venv/bin/python -m benchmarks.search_quality                  # Fashion-MNIST + the digits, ~2 h on 2 cores
    .venv/bin/python -m benchmarks.search_quality --report-only    # the table and plot from what has finished
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common import quiet
from benchmarks.study import SETTINGS, Study


def _fmt(row: dict) -> str:
    spread = f" ± {row['std']:.4f}" if row["n"] > 1 else ""
    return f"{row['mean']:.4f}{spread}"


def table(name: str, summary: dict) -> str:
    s = summary["setting"]
    lines = [f"### {name}: {s['dataset']}"
             + (f", {s['subset_per_class']} training images a class" if s["subset_per_class"] else "")
             + f"; search width {s['search_width']}, {s['search_cells']} cells, {s['search_epochs']} epochs; "
             f"retrain width {s['retrain_width']}, {s['retrain_cells']} cells, {s['retrain_epochs']} epochs; "
             f"batch {s['batch_size']}, lr {s['lr']}, T = 2", "",
             "| network | n | held-out accuracy, mean ± std | best | SOPs / sample | µJ / sample |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label, row in summary["rows"].items():
        sops = f"{row['sops_per_sample']:.3g}" if "sops_per_sample" in row else ""
        energy = f"{row['energy_uj_per_sample']:.3g}" if "energy_uj_per_sample" in row else ""
        lines.append(f"| {label} | {row['n']} | {_fmt(row)} | {row['best']:.4f} | {sops} | {energy} |")
    if summary["paired"]:
        lines += ["", "Minus the random genotypes' mean, paired by seed (mean ± standard error; per seed):", ""]
    for label, paired in summary["paired"].items():
        lines.append(f"- {label}: {paired['mean']:+.4f} ± {paired['se']:.4f} ("
                     + ", ".join(f"{d:+.4f}" for d in paired["diffs"]) + ")")
    if "paired_ma_minus_darts" in summary:
        p = summary["paired_ma_minus_darts"]
        lines.append(f"- MA-DARTS minus DARTS, paired by seed: {p['mean']:+.4f} ± {p['se']:.4f} ("
                     + ", ".join(f"{d:+.4f}" for d in p["diffs"]) + ")")
    for method, accs in summary["supernet_accuracy"].items():
        if accs:
            lines.append(f"- {method}: supernet accuracy on the alpha half " + ", ".join(f"{a:.3f}" for a in accs)
                         + "; alpha's largest weight per edge, mean over edges (uniform: 1/7 = 0.1429) "
                         + ", ".join(f"{p:.4f}" for p in summary["alpha_peak"][method])
                         + "; search " + ", ".join(f"{t:.0f} s" for t in summary["search_seconds"][method]))
    k = summary["kendall_tau"]
    for key, what in (("tau", "all retrained MA-attention genotypes, the searches' own included"),
                      ("tau_unsearched", "the random and DARTS-V2 genotypes only")):
        if k.get(key):
            lines.append(f"- Kendall tau of alpha's ranking against retrained accuracy, {k[key + '_genotypes']} "
                         f"genotypes ({what}): " + "; ".join(f"{m} " + ", ".join(f"{t:+.2f}" for t in ts)
                                                            for m, ts in k[key].items()))
    return "\n".join(lines)


def plot(summaries: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(6 * len(summaries), 4.5), squeeze=False)
    for ax, (name, summary) in zip(axes[0], summaries.items()):
        for label, row in summary["rows"].items():
            accs = row["accuracies"]
            ax.scatter(accs, [label] * len(accs), s=18, alpha=0.6)
            ax.errorbar([row["mean"]], [label], xerr=[row["std"]], fmt="k|", capsize=4)
        ax.set_xlabel("held-out accuracy (dots: runs; bar: mean ± std)")
        ax.set_title(name)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", default="fashionmnist,digits", help="comma-separated: fashionmnist, digits, tiny")
    parser.add_argument("--out", default="benchmarks/results/search_quality",
                        help="where the runs go; their small files (result.json, arch.json, metrics.json) are committed, "
                             "so that a later session resumes the study")
    parser.add_argument("--port", type=int, default=8093, help="the NNI manager's port for the multi-trial runs")
    parser.add_argument("--data-dir", help="Fashion-MNIST's idx files (default: Debian's package's folder)")
    parser.add_argument("--plot", default="benchmarks/search_quality.png")
    parser.add_argument("--report-only", action="store_true", help="print the table of what has finished")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=FLAGS",
                        help="one more MA-DARTS row searched with these flags, e.g. 'warmup1=--warmup-epochs 1'")
    args = parser.parse_args()
    quiet()
    summaries = {}
    for name in args.studies.split(","):
        setting = SETTINGS[name]
        if args.data_dir and setting.dataset == "fashionmnist":
            setting.data_dir = args.data_dir
        variants = {key: flags.split() for key, flags in (v.split("=", 1) for v in args.variant)}
        study = Study(name, setting, Path(args.out), args.port, variants)
        if not args.report_only:
            study.run()
        summaries[name] = study.report()
        print(table(name, summaries[name]), flush=True)
    if args.plot:
        plot(summaries, Path(args.plot))


if __name__ == "__main__":
    main()

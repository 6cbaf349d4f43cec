"""The attention without the search in the way (the paper's Table 3 claim): fixed genotypes, retrained alike.

At DARTS-V2's genotype and the convolution-heavy one (``nni_snn.files.genotype``), over seeds: attention none / CT / MA,
in every cell or only the last (``--attention-cells all|last``), with each cell's BN after the attention (the first
placement) or before it (``--cell-norm before-attention``), on the Fashion-MNIST setting of
``benchmarks.search_quality`` (the same data, width, cells, epochs and recipe). Accuracy on the full test split, SOPs
and energy per sample. Resumable like that benchmark (a finished run is not redone).

    .venv/bin/python -m benchmarks.attention                  # 2 genotypes x 9 variants x 3 seeds
    .venv/bin/python -m benchmarks.attention --report-only
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import quiet, write_json_atomic
from benchmarks.study import SETTINGS, Study

GENOTYPES = ("DARTS_V2", "CONV_HEAVY")
# (attention, attention cells, cell norm): with no attention, the three other placements are the same network.
VARIANTS = [("none", "all", "after-attention")] + [(a, cells, norm) for a in ("ct", "ma") for cells in ("all", "last")
                                                   for norm in ("after-attention", "before-attention")]


class AttentionStudy(Study):
    def variant_arch(self, run: str, genotype: str, attention: str, cells: str, norm: str) -> str:
        import nni_snn.files.genotype as g
        from nni_snn.files.archfile import make_arch

        path = self.out / run / "arch.json"
        if not path.is_file():
            write_json_atomic(path, make_arch(attention=attention, attention_cells=cells, cell_norm=norm, timesteps=2,
                                              genotype=getattr(g, genotype)))
        return str(path)

    def plan(self) -> list:
        plan = []
        for seed in self.s.seeds:
            for genotype in GENOTYPES:
                for attention, cells, norm in VARIANTS:
                    run = f"{genotype.lower()}-{attention}-{cells}-{norm.split('-')[0]}-s{seed}"
                    plan.append((run, lambda r=run, sd=seed, v=(genotype, attention, cells, norm):
                                 self.retrain(r, sd, self.variant_arch(r, *v))))
        return plan

    def report(self) -> dict:
        rows: dict[str, list[dict]] = {}
        for folder in sorted(self.out.glob("*-s*")):
            result = self.result(folder.name)
            if result is not None:
                rows.setdefault(folder.name.rsplit("-s", 1)[0], []).append(result)
        summary = {}
        for key, results in rows.items():
            accs = [r["accuracy"] for r in results]
            summary[key] = {"n": len(accs), "mean": statistics.mean(accs),
                            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                            "sops_per_sample": statistics.mean(r["sops_per_sample"] for r in results),
                            "energy_uj_per_sample": statistics.mean(r["energy_uj_per_sample"] for r in results)}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def paired(self) -> list[str]:
        """Each attention variant minus the same genotype without attention, and BN before minus BN after the
        attention, paired by seed (the seed fixes the data order and the initial weights): mean ± standard error."""
        def accuracies(key: str) -> dict[int, float]:
            runs = {}
            for folder in self.out.glob(f"{key}-s*"):
                result = self.result(folder.name)
                if result is not None:
                    runs[int(folder.name.rsplit("-s", 1)[1])] = result["accuracy"]
            return runs

        def line(label: str, a: dict, b: dict) -> str:
            diffs = [a[s] - b[s] for s in sorted(a) if s in b]
            if not diffs:
                return f"- {label}: no paired runs"
            se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
            each = ", ".join(f"{d:+.4f}" for d in diffs)
            return f"- {label}: {statistics.mean(diffs):+.4f} ± {se:.4f} ({each})"

        lines = []
        for genotype in GENOTYPES:
            g = genotype.lower()
            none = accuracies(f"{g}-none-all-after")
            for attention, cells, norm in VARIANTS[1:]:
                key = f"{g}-{attention}-{cells}-{norm.split('-')[0]}"
                lines.append(line(f"{genotype} {attention} {cells} BN {norm} minus no attention", accuracies(key), none))
            for attention in ("ct", "ma"):
                for cells in ("all", "last"):
                    lines.append(line(f"{genotype} {attention} {cells}: BN before minus after the attention",
                                      accuracies(f"{g}-{attention}-{cells}-before"),
                                      accuracies(f"{g}-{attention}-{cells}-after")))
        return lines


def table(summary: dict) -> str:
    lines = ["| genotype | attention | cells | BN | n | accuracy, mean ± std | SOPs / sample | µJ / sample |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for genotype in GENOTYPES:
        for attention, cells, norm in VARIANTS:
            key = f"{genotype.lower()}-{attention}-{cells}-{norm.split('-')[0]}"
            row = summary.get(key)
            if row:
                shown = ("—", "—") if attention == "none" else (cells, norm)
                lines.append(f"| {genotype} | {attention} | {shown[0]} | {shown[1]} | {row['n']} | {row['mean']:.4f} ± "
                             f"{row['std']:.4f} | {row['sops_per_sample']:.3g} | {row['energy_uj_per_sample']:.3g} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", default="fashionmnist", help="a setting of the search-quality study (benchmarks.study.SETTINGS)")
    parser.add_argument("--out", default="benchmarks/results/attention")
    parser.add_argument("--data-dir", help="Fashion-MNIST's idx files (default: Debian's package's folder)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    quiet()
    setting = replace(SETTINGS[args.setting], **({"data_dir": args.data_dir} if args.data_dir else {}))
    study = AttentionStudy(args.setting, setting, Path(args.out), port=0)
    start = time.perf_counter()
    if not args.report_only:
        study.run()
    print(table(study.report()))
    print("\nPaired by seed (mean ± standard error; per seed):\n" + "\n".join(study.paired()))
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

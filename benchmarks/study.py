"""The studies' machinery: a study is a plan of runs, each in its own folder under the study's, each finished when
its ``result.json`` is written (:class:`RunFolders`), so that any study resumes where it stopped and reports from
what has finished.

:class:`Study` is the search-quality study (``python -m benchmarks.search_quality``): its settings, its searches and
retrains through the ``nni-snn`` command, its rows, paired differences and Kendall's tau. The attention and energy
studies (``benchmarks.attention``, ``benchmarks.energy``) are studies of its setting with plans of their own.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.common import run_cli, uniform_genotype, write_json_atomic

# The one-shot searches: run key -> (row label, --attention, more search flags). --variant adds MA-DARTS rows with
# flags of their own (a remedy under test, e.g. "warmup1=--warmup-epochs 1"), searched and retrained like the rest.
SEARCHES = {"none": ("DARTS", "none", []), "ct": ("CT-DARTS", "ct", []), "ma": ("MA-DARTS", "ma", [])}


@dataclass
class Setting:
    """One study: the data, the search's size and the retrain's size (every architecture is retrained alike)."""

    dataset: str
    subset_per_class: int | None
    search_width: int
    search_cells: int
    search_epochs: int
    retrain_width: int
    retrain_cells: int
    retrain_epochs: int
    batch_size: int = 32
    lr: float = 0.1  # search and retrain (and the multi-trial trials), SGD momentum 0.9 + cosine
    multitrial_epochs: int = 1
    cnn_width: int = 16
    seeds: tuple[int, ...] = (0, 1, 2)
    random_k: int = 6
    # Seeds past ``seeds`` that run only the core comparison: these one-shot searches and 2 new random genotypes each
    # (genotypes random_k, random_k + 1 for the first, and so on), so the paired differences get more seeds.
    more_seeds: tuple[int, ...] = ()
    more_methods: tuple[str, ...] = ("none", "ma")
    data_dir: str | None = None
    multitrial: bool = True
    extra: list[str] = field(default_factory=list)  # more flags for every search and retrain
    retrain_extra: list[str] = field(default_factory=list)  # more flags for every retrain, the baseline's too

    def data_flags(self) -> list[str]:
        flags = ["--dataset", self.dataset, "--batch-size", str(self.batch_size), "--lr", str(self.lr),
                 "--accelerator", "cpu"]
        if self.subset_per_class:
            flags += ["--subset-per-class", str(self.subset_per_class)]
        if self.data_dir:
            flags += ["--data-dir", self.data_dir]
        return flags


SETTINGS = {
    # 1,000 training images (100 a class; the search's halves 500 + 500), the official 10,000 test images.
    "fashionmnist": Setting("fashionmnist", 100, search_width=4, search_cells=3, search_epochs=3,
                            retrain_width=8, retrain_cells=3, retrain_epochs=8, more_seeds=(3, 4)),
    # The sanity row: 1,437 training digits, 360 held out.
    "digits": Setting("digits", None, search_width=4, search_cells=3, search_epochs=3,
                      retrain_width=8, retrain_cells=3, retrain_epochs=8, multitrial=False),
    # The CPU-tiny path (tests/test_fashion_mnist.py): seconds per run.
    "tiny": Setting("digits", 10, search_width=2, search_cells=3, search_epochs=1, retrain_width=2, retrain_cells=3,
                    retrain_epochs=1, cnn_width=2, seeds=(0,), random_k=2, multitrial=False),
}


def alpha_score(alpha: dict, genotype: dict) -> float:
    """How strongly a search's alpha prefers ``genotype``: the sum over its edges of log softmax(alpha)[op]."""
    return sum(math.log(alpha[f"{cell_type}/op_{n // 2}_{i}"][op])
               for cell_type, pairs in genotype.items() for n, (op, i) in enumerate(pairs))


class RunFolders:
    """A study's runs, one folder each under ``self.out``; a run is finished when its ``result.json`` is written."""

    out: Path

    def result(self, run: str) -> dict | None:
        path = self.out / run / "result.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _finish(self, run: str, result: dict) -> dict:
        write_json_atomic(self.out / run / "result.json", result)
        return result


class Study(RunFolders):
    """The search-quality study of one setting: its runs under ``out / name``; ``variants`` (key -> search flags) add
    MA-DARTS rows."""

    def __init__(self, name: str, setting: Setting, out: Path, port: int, variants: dict | None = None):
        self.name, self.s, self.out, self.port = name, setting, out / name, port
        # Variants a study was started with are read back from their searches' results, so that the plain command
        # resumes (and reports) the whole study.
        variants = {**self._started_variants(), **(variants or {})}
        self.searches = {**SEARCHES, **{key: (f"MA-DARTS {key} ({' '.join(flags)})", "ma", flags)
                                        for key, flags in variants.items()}}
        self.runs: list[tuple[str, callable]] = []

    # ---- running --------------------------------------------------------------------------------------------
    def _started_variants(self) -> dict[str, list[str]]:
        found = {}
        for folder in sorted(self.out.glob("search-*-s*")):
            key = folder.name.removeprefix("search-").rsplit("-s", 1)[0]
            result = self.result(folder.name)
            if key not in SEARCHES and result and "flags" in result:
                found[key] = result["flags"]
        return found

    def arch_of(self, run: str) -> str:
        """The arch.json a search run found (results name it relative to the study's folder, which may move)."""
        return str(self.out / self.result(run)["arch"])

    def search(self, method: str, seed: int) -> dict:
        run = f"search-{method}-s{seed}"
        folder = self.out / run
        shutil.rmtree(folder, ignore_errors=True)  # a search killed midway starts again: its wall time is the budget
        folder.mkdir(parents=True)
        _, attention, flags = self.searches[method]
        seconds = run_cli(["search", *self.s.data_flags(), "--attention", attention,
                             "--width", str(self.s.search_width), "--cells", str(self.s.search_cells),
                             "--epochs", str(self.s.search_epochs), "--seed", str(seed), "--no-progress",
                             *self.s.extra, *flags, "--output", str(folder)],
                            folder / "log.txt")
        metrics = json.loads((folder / "metrics.json").read_text())
        return self._finish(run, {"seconds": seconds, "supernet_accuracy": metrics["export"]["accuracy"],
                                  "arch": f"{run}/arch.json", "attention": attention, "flags": flags})

    def multitrial(self, seed: int) -> dict:
        run = f"multitrial-s{seed}"
        folder = self.out / run
        budget = self.result(f"search-ma-s{seed}")["seconds"]
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        seconds = run_cli(["multitrial", *self.s.data_flags(), "--search-strategy", "random", "--attention", "ma",
                             "--width", str(self.s.search_width), "--cells", str(self.s.search_cells),
                             "--epochs", str(self.s.multitrial_epochs), "--trials", "1000",
                             "--duration", f"{max(1, round(budget))}s", "--seed", str(seed), "--port", str(self.port),
                             "--output", str(folder)], folder / "log.txt")
        metrics = json.loads((folder / "metrics.json").read_text())
        return self._finish(run, {"seconds": seconds, "budget_seconds": budget, "trials": len(metrics["trials"]),
                                  "arch": f"{run}/arch.json"})

    def write_arch(self, run: str, genotype: dict, **network) -> str:
        """``run``'s arch.json for ``genotype``, MA attention and T = 2 unless ``network`` (make_arch's keywords,
        e.g. a macro-architecture) says otherwise."""
        from nni_snn.files.archfile import make_arch

        path = self.out / run / "arch.json"
        if not path.is_file():
            write_json_atomic(path, make_arch(**{"attention": "ma", "timesteps": 2, **network}, genotype=genotype))
        return str(path)

    def retrain(self, run: str, seed: int, arch: str | None = None, baseline: str | None = None,
                neuron: str | None = None) -> dict:
        folder = self.out / run
        folder.mkdir(parents=True, exist_ok=True)
        network = (["--arch", arch, *(["--neuron", neuron] if neuron else [])] if arch
                   else ["--baseline", baseline, "--neuron", neuron or "lif"])
        width = self.s.cnn_width if baseline else self.s.retrain_width
        resume = ["--resume"] if (folder / "checkpoints" / "last.ckpt").is_file() else []
        seconds = run_cli(["retrain", *network, *self.s.data_flags(), "--width", str(width),
                             "--cells", str(self.s.retrain_cells), "--epochs", str(self.s.retrain_epochs),
                             "--val-every", str(self.s.retrain_epochs), "--seed", str(seed), "--no-progress",
                             *(self.s.extra if arch else []), *self.s.retrain_extra, *resume, "--output", str(folder)],
                            folder / "log.txt")
        m = json.loads((folder / "metrics.json").read_text())
        genotype = json.loads(Path(arch).read_text())["genotype"] if arch else None
        # "accuracy": the test split's, read once; anything a study picks, it picks by "val_accuracy".
        return self._finish(run, {"seconds": seconds, "accuracy": m["accuracy"], "val_accuracy": m.get("val_accuracy"),
                                  "genotype": genotype,
                                  **{k: m[k] for k in ("sops_per_sample", "energy_uj_per_sample", "spikes_per_sample",
                                                       "params")}})

    def logistic(self, seed: int) -> dict:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        from nni_snn.data.images import load_dataset

        data = load_dataset(self.s.dataset, self.s.data_dir, subset_per_class=self.s.subset_per_class, seed=seed)

        def arrays(split):
            images, labels = zip(*(split[i] for i in range(len(split))))
            return np.stack([x.flatten().numpy() for x in images]), np.array([int(y) for y in labels])

        start = time.perf_counter()
        model = LogisticRegression(max_iter=2000).fit(*arrays(data.train))
        accuracy = float(model.score(*arrays(data.test)))
        return self._finish(f"logistic-s{seed}", {"seconds": time.perf_counter() - start, "accuracy": accuracy})

    def plan(self) -> list[tuple[str, callable]]:
        """Every run in order: seed by seed, so that a partial study already compares every method."""
        from nni_snn.files.genotype import DARTS_V2

        s, plan = self.s, []

        def searched(method: str, seed: int) -> None:
            plan.append((f"search-{method}-s{seed}", lambda: self.search(method, seed)))
            plan.append((f"retrain-{method}-s{seed}", lambda: self.retrain(
                f"retrain-{method}-s{seed}", seed, self.arch_of(f"search-{method}-s{seed}"))))

        def random_cells(k: int, seed: int) -> None:
            run = f"retrain-random{k}-s{seed}"
            plan.append((run, lambda: self.retrain(
                run, seed, self.write_arch(run, uniform_genotype(random.Random(1000 + k))))))

        for index, seed in enumerate(s.seeds):
            for method in self.searches:
                searched(method, seed)
            if s.multitrial:
                plan.append((f"multitrial-s{seed}", lambda sd=seed: self.multitrial(sd)))
                plan.append((f"retrain-multitrial-s{seed}",
                             lambda sd=seed: self.retrain(f"retrain-multitrial-s{sd}", sd,
                                                          self.arch_of(f"multitrial-s{sd}"))))
            for k in range(s.random_k):
                if k % len(s.seeds) == index:
                    random_cells(k, seed)
            plan.append((f"retrain-dartsv2-s{seed}", lambda sd=seed: self.retrain(
                f"retrain-dartsv2-s{sd}", sd, self.write_arch(f"retrain-dartsv2-s{sd}", DARTS_V2))))
            plan.append((f"retrain-cnn-s{seed}", lambda sd=seed: self.retrain(f"retrain-cnn-s{sd}", sd,
                                                                               baseline="spiking-cnn")))
            plan.append((f"retrain-cnnrelu-s{seed}", lambda sd=seed: self.retrain(
                f"retrain-cnnrelu-s{sd}", sd, baseline="spiking-cnn", neuron="relu")))
            plan.append((f"logistic-s{seed}", lambda sd=seed: self.logistic(sd)))
        for index, seed in enumerate(s.more_seeds):
            for method in s.more_methods:
                searched(method, seed)
            for k in (s.random_k + 2 * index, s.random_k + 2 * index + 1):
                random_cells(k, seed)
        return plan

    def run(self) -> None:
        plan = self.plan()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "setting.json").write_text(json.dumps(asdict(self.s), indent=2))
        for i, (run, step) in enumerate(plan, 1):
            if self.result(run) is not None:
                continue
            start = time.perf_counter()
            print(f"[{self.name} {i}/{len(plan)}] {run} ...", flush=True)
            result = step()
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()
                     if k in ("accuracy", "supernet_accuracy", "trials")}
            print(f"[{self.name} {i}/{len(plan)}] {run} done in {time.perf_counter() - start:.0f} s {shown}",
                  flush=True)

    # ---- reporting --------------------------------------------------------------------------------------------
    def rows(self) -> dict[str, list[dict]]:
        """The finished retrains of each row, by row name."""
        rows: dict[str, list[dict]] = {}
        labels = {**{f"retrain-{m}": label for m, (label, *_) in self.searches.items()}, "retrain-multitrial": "NNI Random multi-trial",
                  "retrain-dartsv2": "DARTS-V2 genotype (MA attention)", "retrain-cnn": "spiking CNN reference",
                  "retrain-cnnrelu": "its ReLU twin", "logistic": "logistic regression"}
        for folder in sorted(self.out.glob("*-s*")):
            result = self.result(folder.name)
            prefix = folder.name.rsplit("-s", 1)[0]
            if result is None or prefix.startswith(("search", "multitrial")):
                continue
            label = "random genotypes (MA attention)" if prefix.startswith("retrain-random") else labels[prefix]
            rows.setdefault(label, []).append({**result, "seed": int(folder.name.rsplit("-s", 1)[1]),
                                               "run": folder.name})
        order = [*(label for label, *_ in reversed(self.searches.values())), "NNI Random multi-trial", "random genotypes (MA attention)",
                 *labels.values()]
        return {label: rows[label] for label in dict.fromkeys(order) if label in rows}

    def report(self) -> dict:
        rows = self.rows()
        summary: dict = {"setting": asdict(self.s), "rows": {}}
        for label, results in rows.items():
            accs = [r["accuracy"] for r in results]
            # The best network is picked by validation accuracy, then reported by its test accuracy (runs from
            # before the validation split validated on the test split: theirs is the same figure).
            picked = max(results, key=lambda r: r["accuracy"] if r.get("val_accuracy") is None else r["val_accuracy"])
            row = {"n": len(accs), "mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                   "best": picked["accuracy"], "accuracies": accs}
            for key in ("sops_per_sample", "energy_uj_per_sample"):
                if all(key in r for r in results):
                    row[key] = statistics.mean(r[key] for r in results)
            summary["rows"][label] = row
        searches = {label: [self.result(f"search-{m}-s{sd}") for sd in (*self.s.seeds, *self.s.more_seeds)]
                    for m, (label, *_) in self.searches.items()}
        summary["search_seconds"] = {label: [r["seconds"] for r in rs if r] for label, rs in searches.items()}
        summary["supernet_accuracy"] = {label: [r["supernet_accuracy"] for r in rs if r]
                                        for label, rs in searches.items()}
        # How far alpha moved from uniform (1/7): the mean over edges of each edge's largest softmax weight.
        summary["alpha_peak"] = {label: [self._alpha_peak(r) for r in rs if r] for label, rs in searches.items()}
        summary["paired"] = self._paired(rows)
        # MA-DARTS against DARTS (no attention), paired by seed: what the attention adds to the search.
        ma = {r["seed"]: r["accuracy"] for r in rows.get(SEARCHES["ma"][0], [])}
        darts = {r["seed"]: r["accuracy"] for r in rows.get(SEARCHES["none"][0], [])}
        diffs = [ma[sd] - darts[sd] for sd in sorted(ma) if sd in darts]
        if len(diffs) > 1:
            summary["paired_ma_minus_darts"] = {"diffs": diffs, "mean": statistics.mean(diffs),
                                                "se": statistics.stdev(diffs) / math.sqrt(len(diffs))}
        summary["kendall_tau"] = self._kendall(rows)
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def _alpha_peak(self, search: dict) -> float:
        alpha = json.loads((self.out / search["arch"]).read_text())["alpha"]
        return statistics.mean(max(edge.values()) for edge in alpha.values())

    def _paired(self, rows: dict) -> dict:
        """Per search method (and the multi-trial search), per seed: its accuracy minus the mean of the random
        genotypes retrained with that seed; the mean difference over seeds and its standard error."""
        rand: dict[int, list[float]] = {}
        for r in rows.get("random genotypes (MA attention)", []):
            rand.setdefault(r["seed"], []).append(r["accuracy"])
        paired = {}
        for label in [*(label for label, *_ in self.searches.values()), "NNI Random multi-trial"]:
            found = {r["seed"]: r["accuracy"] for r in rows.get(label, [])}
            diffs = [found[sd] - statistics.mean(rand[sd]) for sd in sorted(found) if sd in rand]
            if diffs:
                se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
                paired[label] = {"diffs": diffs, "mean": statistics.mean(diffs), "se": se}
        return paired

    def _kendall(self, rows: dict) -> dict:
        from scipy.stats import kendalltau

        accuracy: dict[str, list[float]] = {}
        independent = set()  # genotypes no search picked (random, DARTS-V2): alpha's ranking of them is not biased
        for label, results in rows.items():
            for r in results:
                if r.get("genotype") is None:
                    continue
                if label in (SEARCHES["none"][0], SEARCHES["ct"][0]):  # another attention: not alpha's network
                    continue
                key = json.dumps(r["genotype"], sort_keys=True)
                accuracy.setdefault(key, []).append(r["accuracy"])
                if label.startswith(("random genotypes", "DARTS-V2")):
                    independent.add(key)
        result = {}
        for name, genotypes in (("tau", sorted(accuracy)), ("tau_unsearched", sorted(independent))):
            taus: dict[str, list[float]] = {}
            for m, (label, *_) in self.searches.items():
                for sd in (*self.s.seeds, *self.s.more_seeds):
                    search = self.result(f"search-{m}-s{sd}")
                    if search is None or len(genotypes) < 3:
                        continue
                    alpha = json.loads((self.out / search["arch"]).read_text())["alpha"]
                    scores = [alpha_score(alpha, json.loads(g)) for g in genotypes]
                    tau = kendalltau(scores, [statistics.mean(accuracy[g]) for g in genotypes]).statistic
                    taus.setdefault(label, []).append(float(tau))
            result[name], result[f"{name}_genotypes"] = taus, len(genotypes)
        return result


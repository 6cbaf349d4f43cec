"""``make gpu-study``: the comparison that matters, on all of Fashion-MNIST, in one short GPU call.

MA-DARTS at the efficient macro-architecture (``benchmarks.common.MACROS["efficient"]``) without and with the energy
penalty, against uniformly random genotypes of the space at the same macro-architecture and the hand-designed spiking
CNN: each searched on all 60,000 training images (the search's two halves) and retrained on them, scored on the
10,000 test images, by the ``nni-snn`` commands a user runs (in this process, one after the other). One JSON holds
every accuracy, energy and time (``--output``), and the table is printed.

A lent GPU machine reaches no network: the idx files travel with the code. ``make gpu-study`` copies Debian's
dataset-fashion-mnist files into ``data/fashion-mnist`` (ignored by git; name ``data`` in the device call's carry)
and reads them from there. The runs share a time budget (``--budget-s``): a run that would start after it is
recorded as skipped, so the call ends in time whatever the GPU. Without CUDA, ``--tiny`` runs the same plan on the
embedded digits in seconds (the test of this script).

    .venv/bin/python -m benchmarks.gpu_study                  # on a GPU: ~7 minutes
    .venv/bin/python -m benchmarks.gpu_study --tiny           # the CPU path
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

from benchmarks.common import MACROS, ROOT, flags_of, quiet, run_cli, uniform_genotype

FULL = {"data": ["--dataset", "fashionmnist"], "search": ["--width", "8", "--cells", "3", "--epochs", "4",
                                                          "--batch-size", "128"],
        "retrain": ["--width", "16", "--cells", "3", "--epochs", "10", "--batch-size", "128", "--lr", "0.1",
                    "--auxiliary-weight", "0"],  # retrained as the CNN is: no auxiliary head
        "cnn": ["--width", "16", "--epochs", "10", "--batch-size", "128", "--lr", "0.1"], "random": 2}
TINY = {"data": ["--dataset", "digits", "--subset-per-class", "5"],
        "search": ["--width", "2", "--cells", "3", "--epochs", "1", "--batch-size", "32"],
        "retrain": ["--width", "2", "--cells", "3", "--epochs", "1", "--batch-size", "32", "--lr", "0.1",
                    "--auxiliary-weight", "0"],
        "cnn": ["--width", "2", "--epochs", "1", "--batch-size", "32", "--lr", "0.1"], "random": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the embedded digits at a tiny size (the CPU path)")
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "fashion-mnist"),
                        help="Fashion-MNIST's idx files (default data/fashion-mnist, where make gpu-study copies them)")
    parser.add_argument("--penalty", type=float, default=3.0,
                        help="lambda of the energy-aware search (default 3, experiments/efficient_fashionmnist.yml's)")
    parser.add_argument("--budget-s", type=float, default=420.0, help="no run starts after this many seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/gpu-study")
    args = parser.parse_args()
    quiet()
    import torch

    from nni_snn.files.archfile import make_arch
    from nni_snn.files.runfolder import write_json_atomic

    sizes = TINY if args.tiny else FULL
    data = [*sizes["data"], *([] if args.tiny else ["--data-dir", args.data_dir])]
    if not args.tiny and not (Path(args.data_dir) / "t10k-labels-idx1-ubyte.gz").is_file() \
            and not (Path(args.data_dir) / "t10k-labels-idx1-ubyte").is_file():
        print(f"gpu_study: no Fashion-MNIST idx files in {args.data_dir} (make gpu-study copies them there)",
              file=sys.stderr)
        return 2
    cuda = torch.cuda.is_available()
    common = [*data, "--seed", str(args.seed), "--no-progress", "--accelerator", "gpu" if cuda else "cpu"]
    macro = MACROS["efficient"]
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results: dict = {"device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
                     "tiny": args.tiny, "macro": macro, "sizes": sizes, "penalty": args.penalty, "runs": {}}

    def step(name: str, command: list[str], folder: Path) -> None:
        elapsed = time.perf_counter() - start
        if elapsed > args.budget_s:
            results["runs"][name] = {"skipped": f"budget of {args.budget_s:.0f} s spent ({elapsed:.0f} s)"}
            return
        folder.mkdir(parents=True, exist_ok=True)
        # The study measures afresh each time it is run: a step replaces the previous run's results in its folder.
        seconds = run_cli([*command, "--overwrite", "--output", str(folder)], folder / "log.txt")
        metrics = json.loads((folder / "metrics.json").read_text())
        if command[0] == "search":  # its supernet's figures are not a network's result; its time is
            results["runs"][name] = {"seconds": seconds, "supernet_accuracy": metrics["export"]["accuracy"]}
        else:
            results["runs"][name] = {"seconds": seconds, **{k: metrics.get(k) for k in (
                "accuracy", "val_accuracy", "energy_profile", "energy_uj_per_sample", "energy_uj_by_profile",
                "sops_per_sample", "macs_per_sample", "spikes_per_sample", "neuron_updates_per_sample",
                "memory_accesses_per_sample", "params")}}
        write_json_atomic(out / "gpu-study.json", results)

    for label, lam in (("MA-DARTS", 0.0), (f"MA-DARTS, lambda {args.penalty:g}", args.penalty)):
        search = out / f"search-l{lam:g}"
        step(f"{label} (search)", ["search", *common, *sizes["search"], *flags_of(macro), "--attention", "ma",
                                   "--spike-penalty", str(lam)], search)
        if (search / "arch.json").is_file():
            step(label, ["retrain", *common, *sizes["retrain"], "--arch", str(search / "arch.json")],
                 out / f"retrain-l{lam:g}")
    for k in range(sizes["random"]):
        arch = out / f"random{k}" / "arch.json"
        write_json_atomic(arch, make_arch(attention="ma", timesteps=2, genotype=uniform_genotype(random.Random(1000 + k)),
                                          **macro))
        step(f"random genotype {k}", ["retrain", *common, *sizes["retrain"], "--arch", str(arch)], arch.parent)
    step("spiking CNN", ["retrain", *common, *sizes["cnn"], "--baseline", "spiking-cnn"], out / "cnn")
    results["seconds"] = time.perf_counter() - start
    write_json_atomic(out / "gpu-study.json", results)
    print(f"device: {results['device']}; total {results['seconds']:.0f} s")
    print("| network | accuracy | µJ / sample | SOPs / sample | seconds |")
    print("| --- | --- | --- | --- | --- |")
    for name, run in results["runs"].items():
        if "skipped" in run:
            print(f"| {name} | skipped: {run['skipped']} | | | |")
        elif run.get("accuracy") is not None:
            print(f"| {name} | {run['accuracy']:.4f} | {run['energy_uj_per_sample']:.3g} | "
                  f"{run['sops_per_sample']:.3g} | {run['seconds']:.0f} |")
        else:
            print(f"| {name} | (supernet {run['supernet_accuracy']:.4f}) | | | {run['seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

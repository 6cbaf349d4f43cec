"""What the front from one search costs: ``nni-snn search --energy-front L1,...,LK`` against one single-lambda search
(``--spike-penalty``), the same setting, alternated in one process so both see the same machine (issue 39's goal:
at most 1.5x the single search's wall time, where K separate searches cost K x).

    .venv/bin/python -m benchmarks.front_cost --threads 1 --repeats 2      # ~15 min on one core

Writes benchmarks/results/front_cost.json (every run's seconds and the ratio of the medians).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks.common import MACROS, flags_of, quiet, run_cli

# The fronts study's subset search (benchmarks/fronts.py, setting "subset"): 1,000 Fashion-MNIST images.
SETTING = ["--dataset", "fashionmnist", "--subset-per-class", "100", "--batch-size", "32", "--lr", "0.1",
           "--accelerator", "cpu", "--attention", "ma", *flags_of(MACROS["efficient"]), "--width", "4", "--cells",
           "3", "--energy-profile", "memory-45nm", "--no-progress"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--front", default="0,1,3")
    parser.add_argument("--single", default="1", help="the single search's lambda")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", default="benchmarks/results/front_cost.json")
    args = parser.parse_args()
    quiet()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    variants = {"single": ["--spike-penalty", args.single], "front": ["--energy-front", args.front]}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, flags in variants.items():  # alternated: a change of load reaches both alike
                out = Path(tmp) / f"{name}-{repeat}"
                seconds[name].append(run_cli(["search", *SETTING, *flags, "--epochs", str(args.epochs), "--seed",
                                              str(repeat), "--output", str(out)], Path(tmp) / f"{name}.log"))
                shutil.rmtree(out)
                print(f"{name} (repeat {repeat}): {seconds[name][-1]:.0f} s", flush=True)
    ratio = statistics.median(seconds["front"]) / statistics.median(seconds["single"])
    result = {"setting": SETTING, "epochs": args.epochs, "front": args.front, "single": args.single,
              "threads": args.threads, "seconds": seconds, "front_over_single": ratio}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"--energy-front {args.front} / --spike-penalty {args.single}: {ratio:.2f}x the wall time "
          f"(medians of {args.repeats})")


if __name__ == "__main__":
    main()

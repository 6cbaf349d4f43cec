"""The size grid: real tiny searches and retrains over the sizes a user sets, each combination of which must export
and retrain, or be refused in one line (exit code 2) before the first training step.

`python -m benchmarks.fuzz_sizes [--random N] [--seed S]` (`make fuzz`) runs, in-process through the real command
line (``nni_snn.cli.main.main``), ``nni-snn search`` for one epoch and then ``nni-snn retrain --arch`` of its arch.json at
the same sizes, for a set of combinations that holds every pair of values of any two sizes at least once (the full
product, :func:`grid_size`, is days of CPU), plus N drawn at random; it writes the counts and every failing
combination to benchmarks/results/fuzz/sizes.json (docs/security.md's table). tests/test_fuzz.py runs a handful.

Outcomes: ``ok`` (both exit 0, arch.json and metrics.json written), ``refused`` (exit 2, exactly one
``nni-snn: error:`` line, and no training step: no checkpoint, TensorBoard log, arch.json or metrics.json), or
``failure`` (anything else: a traceback, another exit code, a refusal after training started, or a retrain that
refuses what its search accepted).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.common import RESULTS as STUDIES

RESULTS = STUDIES / "fuzz" / "sizes.json"
HANG_SECONDS = 600  # a combination (search and retrain) taking longer than this counts as a hang

# Image sizes come from the embedded datasets and from image folders written here (imagefolder takes any size):
# 1x1 and 3x3 are smaller than what two reductions, a stride-2 stem or the auxiliary head's pooling need.
IMAGES = {
    "digits 8x8": ["--dataset", "digits", "--subset-per-class", "6"],
    "digits-events 4x4": ["--dataset", "digits-events", "--event-size", "4", "--subset-per-class", "6"],
    "folder 1x1": 1, "folder 3x3": 3, "folder 5x5": 5, "folder 16x16 RGB": 16,
}
GRID = {
    "cells": (1, 2, 3, 4),
    "width": (1, 2, 3, 4),
    "timesteps": (1, 2, 3),
    "images": tuple(IMAGES),
    "partial_channels": (1, 2, 4),
    "space": ("full", "deployable"),
    "attention": ("none", "ct", "ma"),
    "head": ("global", "spatial"),
    "stem_stride": (1, 2),
    "cell_nodes": (1, 2, 3, 4),
}


def grid_size() -> int:
    return math.prod(len(values) for values in GRID.values())


def _pairs(row: dict) -> set:
    return {(a, row[a], b, row[b]) for a, b in itertools.combinations(GRID, 2)}


def pairwise(seed: int = 0, candidates: int = 50) -> list[dict]:
    """Combinations that hold every pair of values of any two sizes at least once: greedily, each the one of
    ``candidates`` random rows (all holding one pair not yet held) that holds the most pairs not yet held."""
    rng = random.Random(seed)
    left = {(a, va, b, vb) for a, b in itertools.combinations(GRID, 2) for va in GRID[a] for vb in GRID[b]}
    rows = []
    while left:
        a, va, b, vb = rng.choice(sorted(left, key=repr))
        best = max(({**{k: rng.choice(v) for k, v in GRID.items()}, a: va, b: vb} for _ in range(candidates)),
                   key=lambda row: len(_pairs(row) & left))
        rows.append(best)
        left -= _pairs(best)
    return rows


def random_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed + 1)
    return [{k: rng.choice(v) for k, v in GRID.items()} for _ in range(n)]


def image_flags(name: str, work: Path) -> list[str]:
    """The dataset flags of ``IMAGES[name]``, an image folder written under ``work`` the first time it is named."""
    spec = IMAGES[name]
    if isinstance(spec, list):
        return spec
    from PIL import Image

    folder = work / f"images-{spec}"
    if not folder.is_dir():
        rng = random.Random(spec)
        for part, count in (("train", 8), ("val", 3)):
            for label in range(3):  # three classes, each a brightness band, so there is something to learn
                (folder / part / str(label)).mkdir(parents=True)
                for i in range(count):
                    pixels = bytes(min(255, 80 * label + rng.randrange(60)) for _ in range(spec * spec * 3))
                    mode = "RGB" if spec == 16 else "L"
                    image = Image.frombytes("RGB", (spec, spec), pixels).convert(mode)
                    image.save(folder / part / str(label) / f"{i}.png")
    return ["--dataset", "imagefolder", "--data-dir", str(folder)]


def _invoke(argv: list[str]) -> tuple[int | None, str, str]:
    """``nni-snn ARGV`` in-process: (exit code or None, stderr, the exception a user would see as a traceback)."""
    from nni_snn.cli import main as cli

    err = io.StringIO()

    def hung(signum, frame):
        raise TimeoutError(f"over {HANG_SECONDS} s (a hang)")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_SECONDS)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(argv)
        return code, err.getvalue(), ""
    except Exception as exc:  # noqa: BLE001 -- what escapes cli.main is a traceback to a user
        return None, err.getvalue(), f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


TRAINED = ("checkpoints", "tensorboard", "arch.json", "metrics.json")  # what a run writes once training started


def _step(argv: list[str], output: Path, wrote: tuple[str, ...]) -> tuple[str, str]:
    code, err, exc = _invoke([*argv, "--output", str(output)])
    if exc:
        return "failure", f"traceback: {exc}"
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("nni-snn: warning:")]
    if code == 0:
        missing = [name for name in wrote if not (output / name).is_file()]
        return ("ok", "") if not missing else ("failure", f"exit 0 without {', '.join(missing)}")
    started = [name for name in TRAINED if (output / name).exists()]
    if code == 2 and len(lines) == 1 and lines[0].startswith("nni-snn: error: ") and not started:
        return "refused", lines[0]
    return "failure", (f"exit {code}" + (f" after training started ({', '.join(started)})" if started else "")
                       + f": {lines[-1][:300] if lines else 'no error line'}")


def run_combination(row: dict, work: Path) -> tuple[str, str]:
    """(outcome, detail) of one combination: its search, then the retrain of the arch.json it exported."""
    out = Path(tempfile.mkdtemp(dir=work))
    data = image_flags(row["images"], work)
    sizes = ["--cells", str(row["cells"]), "--width", str(row["width"]), "--epochs", "1", "--batch-size", "128",
             "--no-progress", *data]
    search = ["search", *sizes, "--timesteps", str(row["timesteps"]), "--partial-channels",
              str(row["partial_channels"]), "--space", row["space"], "--attention", row["attention"], "--head",
              row["head"], "--stem-stride", str(row["stem_stride"]), "--cell-nodes", str(row["cell_nodes"])]
    outcome, detail = _step(search, out / "search", ("arch.json", "metrics.json"))
    if outcome != "ok":
        return outcome, detail
    outcome, detail = _step(["retrain", "--arch", str(out / "search" / "arch.json"), *sizes], out / "retrain",
                            ("metrics.json",))
    if outcome == "refused":  # the search trained at these sizes: refusing its own arch.json now is too late
        return "failure", f"retrain refused what its search accepted: {detail}"
    return outcome, ("retrain: " + detail if detail else "")


def reason(line: str) -> str:
    """A refusal's line with its numbers left out: the refusals of one kind counted together."""
    return re.sub(r"\d+(\.\d+)?", "N", line.removeprefix("nni-snn: error: "))[:160]


def run_grid(rows: list[dict], target: Path | None, how: str, log=print) -> dict:
    """Each of ``rows``, the counts written to ``target`` after every combination (a run cut short keeps them)."""
    # digits-events bins its recordings into a cache: one for this run, not the user's.
    os.environ.setdefault("NNI_SNN_CACHE", tempfile.mkdtemp(prefix="nni-snn-cache-"))
    started, results = time.monotonic(), []
    with tempfile.TemporaryDirectory(prefix="fuzz-sizes-") as tmp:
        for i, row in enumerate(rows):
            t0 = time.monotonic()
            outcome, detail = run_combination(row, Path(tmp))
            results.append({"combination": row, "outcome": outcome, "detail": detail})
            log(f"[{i + 1}/{len(rows)}] {outcome} {time.monotonic() - t0:.0f}s {json.dumps(row)} {detail}")
            counts = summary(results, how, time.monotonic() - started, planned=len(rows))
            if target:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(counts, indent=2) + "\n")
    return counts


def summary(results: list[dict], how: str, seconds: float, planned: int) -> dict:
    outcomes = Counter(r["outcome"] for r in results)
    return {"combinations": how, "grid": GRID, "grid_size": grid_size(), "planned": planned,
            "seconds": round(seconds), "tried": len(results),
            **{k: outcomes[k] for k in ("ok", "refused", "failure")},
            "refusals": dict(Counter(reason(r["detail"]) for r in results if r["outcome"] == "refused").most_common()),
            "failures": [r for r in results if r["outcome"] == "failure"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random", type=int, default=0, help="combinations drawn at random after the pairwise ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = pairwise(args.seed) + random_rows(args.random, args.seed)
    how = (f"every pair of values of any two sizes ({len(rows) - args.random} combinations)"
           + (f" and {args.random} drawn at random" if args.random else "") + f", seed {args.seed}")
    counts = run_grid(rows, args.output, how)
    print(f"{counts['tried']} combinations: {counts['ok']} ok, {counts['refused']} refused, "
          f"{counts['failure']} failures ({args.output})")
    return 1 if counts["failure"] else 0


if __name__ == "__main__":
    sys.exit(main())

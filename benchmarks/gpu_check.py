"""``make gpu-check``: verify the GPU path in one short call, and time the paper-scale steps it projects.

1. ``pytest -m gpu``: LIF forward/backward on CUDA equal to the CPU's, a search and a retrain on CUDA, spike and SOP
   counts equal on CPU and CUDA for the same weights and input, bf16 autocast keeping spikes binary.
2. Step times at the paper's settings on synthetic CIFAR-shaped data (32x32 RGB, 10 classes), each in float32 and
   under bf16 autocast, interleaved (ABAB..., median) with NNI's own DARTS on its ANN space:
   - search: one first-order MA-DARTS step (an alpha step and a weight step, one batch each; width 16, 5 cells,
     batch 64, T = 2) against NNI's DARTS supernet (``nni.nas.hub.pytorch.DARTS``, same width, cells and batch);
   - retrain: one step of a fixed network with its auxiliary head (DARTS-V2 genotype, MA attention, width 64,
     6 cells, batch 128, T = 2) against NNI's DARTS-V2 ANN with its auxiliary head at the same size.
   - partial channels (PC-DARTS, ``nni-snn search --partial-channels K``): the same search step at K = 1, 2, 4 in
     float32, interleaved with each other, with their peak memory (rows ``search K=2`` ...; ``ann_s`` is K=1's step).
3. Projected GPU-hours of the paper's full runs from those step times (search: 40 epochs of 25,000 weight + 25,000
   alpha images at batch 64; retrain: 600 epochs of 50,000 images at batch 128), next to the paper's figures
   (about 2 GPU-days each on 2 RTX 3090, section 4.2). Data loading is not included.

Results go to ``--output`` as JSON. Without CUDA the same code runs at a tiny size on the CPU and says so (its
projections then describe nothing); the tests run that path.

    .venv/bin/python -m benchmarks.gpu_check                 # what `make gpu-check` runs
    .venv/bin/python -m benchmarks.gpu_check --skip-tests    # only the timings
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import ROOT, quiet
from benchmarks.measure import cuda_peak, interleaved
from benchmarks.search import RetrainStep, SearchStep, ann_fixed, ann_supernet, snn_fixed, snn_supernet

PAPER = {"search": {"width": 16, "cells": 5, "batch": 64, "epochs": 40, "images": 25_000, "gpu_days": 2.0},
         "retrain": {"width": 64, "cells": 6, "batch": 128, "epochs": 600, "images": 50_000, "gpu_days": 2.08}}
TINY = {"search": {"width": 4, "cells": 3, "batch": 4}, "retrain": {"width": 4, "cells": 3, "batch": 4}}


def autocast(step, device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return step

    def run() -> None:
        with torch.autocast(device.type, dtype=dtype):
            step()
    return run


def time_pair(kind: str, sizes: dict, device: torch.device, image: int, repeats: int) -> list[dict]:
    """SNN against ANN step times (and CUDA peak memory) in fp32 and bf16, for ``kind`` search or retrain."""
    torch.manual_seed(0)
    if kind == "search":
        snn = SearchStep(snn_supernet(sizes["width"], sizes["cells"], 2, "ma"), sizes["batch"], image, device,
                         madarts=True)
        ann = SearchStep(ann_supernet(sizes["width"], sizes["cells"]), sizes["batch"], image, device)
    else:
        snn = RetrainStep(snn_fixed(sizes["width"], sizes["cells"], 2, "ma", auxiliary=True), sizes["batch"], image,
                          device)
        ann = RetrainStep(ann_fixed(sizes["width"], sizes["cells"], auxiliary=True), sizes["batch"], image, device)
    rows = []
    for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        steps = {"snn": autocast(snn, device, dtype), "ann": autocast(ann, device, dtype)}
        median = interleaved(steps, device, repeats)
        row = {"step": kind, "precision": precision, "snn_s": median["snn"], "ann_s": median["ann"],
               "ratio": median["snn"] / median["ann"]}
        if device.type == "cuda":
            row["snn_peak_mb"] = cuda_peak(steps["snn"], device) / 2**20
            row["ann_peak_mb"] = cuda_peak(steps["ann"], device) / 2**20
        rows.append(row)
    return rows


def time_partial(sizes: dict, device: torch.device, image: int, repeats: int, ks=(1, 2, 4)) -> list[dict]:
    """The MA-DARTS search step with partial channels K (fp32), interleaved; ratios to K=1."""
    torch.manual_seed(0)
    steps = {K: SearchStep(snn_supernet(sizes["width"], sizes["cells"], 2, "ma", partial_channels=K), sizes["batch"],
                           image, device, madarts=True) for K in ks if sizes["width"] % K == 0}
    median = interleaved({str(K): step for K, step in steps.items()}, device, repeats)
    rows = []
    for K, step in steps.items():
        row = {"step": "search", "label": f"search K={K}", "partial_channels": K, "precision": "fp32",
               "snn_s": median[str(K)], "ann_s": median[str(ks[0])], "ratio": median[str(K)] / median[str(ks[0])]}
        if device.type == "cuda":
            row["snn_peak_mb"] = cuda_peak(step, device) / 2**20
            row["ann_peak_mb"] = cuda_peak(steps[ks[0]], device) / 2**20
        rows.append(row)
    return rows


def projected_hours(row: dict) -> float:
    """GPU-hours of the paper's full run at this step time (one search step consumes a weight and an alpha batch)."""
    paper = PAPER[row["step"]]
    steps_per_epoch = -(-paper["images"] // paper["batch"])
    return row["snn_s"] * steps_per_epoch * paper["epochs"] / 3600


def run_tests() -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # failures are reported, not raised
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    return {"returncode": proc.returncode, "summary": summary, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="runs/gpu-check.json", help="JSON results (default runs/gpu-check.json)")
    parser.add_argument("--repeats", type=int, help="timed steps per measure (default 10 on CUDA, 2 on the CPU)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run pytest -m gpu first")
    parser.add_argument("--cpu", action="store_true", help="the CPU's tiny run even where CUDA is available")
    args = parser.parse_args(argv)
    quiet()
    cuda = torch.cuda.is_available() and not args.cpu
    device = torch.device("cuda" if cuda else "cpu")
    sizes, image = (PAPER, 32) if cuda else (TINY, 32)
    repeats = args.repeats or (10 if cuda else 2)
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.machine()}), no CUDA"
    print(f"device: {name}; torch {torch.__version__}")
    if not cuda:
        print("no CUDA here: running the same code at a tiny size on the CPU (width 4, 3 cells, batch 4); "
              "the projections below describe nothing")
    results = {"device": name, "cuda": cuda, "torch": torch.__version__, "repeats": repeats}
    if not args.skip_tests:
        results["tests"] = run_tests()
        print(f"pytest -m gpu: {results['tests']['summary']}")
    rows = time_pair("search", sizes["search"], device, image, repeats)
    rows += time_pair("retrain", sizes["retrain"], device, image, repeats)
    rows += time_partial(sizes["search"], device, image, repeats)
    for row in rows:
        row["projected_gpu_hours"] = projected_hours(row)
        row["paper_gpu_hours"] = PAPER[row["step"]]["gpu_days"] * 24
    results["sizes"], results["rows"] = sizes, rows

    print("(rows 'search K=...': the SNN search step with partial channels K; their 'ANN s' and ratio are K=1's)")
    print(f"\n{'step':<12} {'prec':<5} {'SNN s':>8} {'ANN s':>8} {'SNN/ANN':>8} {'SNN MB':>8} {'ANN MB':>8} "
          f"{'projected GPU-h':>16} {'paper GPU-h':>12}")
    for r in rows:
        mem = (f"{r['snn_peak_mb']:>8.0f} {r['ann_peak_mb']:>8.0f}" if cuda else f"{'-':>8} {'-':>8}")
        print(f"{r.get('label', r['step']):<12} {r['precision']:<5} {r['snn_s']:>8.4f} {r['ann_s']:>8.4f} {r['ratio']:>7.2f}x {mem} "
              f"{r['projected_gpu_hours']:>16.1f} {r['paper_gpu_hours']:>12.1f}")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {output}")
    return 1 if results.get("tests", {}).get("returncode", 0) not in (0, 5) else 0  # 5: no tests collected


if __name__ == "__main__":
    sys.exit(main())

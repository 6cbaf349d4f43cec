"""The runs behind ``nni-snn front``: find finished runs below some folders, read their accuracy and energy, and
mark the Pareto front (lower energy, higher accuracy). The picture itself is :func:`nni_snn.files.plot.draw_front`."""

from __future__ import annotations

import json
from pathlib import Path

from nni_snn.errors import FrontError
from nni_snn.files.archfile import load_arch
from nni_snn.files.plot import pareto_front
from nni_snn.files.runfolder import RunFolder
from nni_snn.registry import ATTENTIONS


def run_folders(roots: list[str | Path]) -> list[Path]:
    """Every run folder (one holding arch.json) given, or found below a folder given (e.g. an NNI experiment's)."""
    folders = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise FrontError(f"{root}: no such folder")
        found = [run.path for run in RunFolder.below(root)]
        if not found:
            raise FrontError(f"{root}: no arch.json in it or below it")
        folders += found
    return folders


def read_run(folder: Path, profile: str | None = None) -> dict:
    """A run's label, accuracy and counts: from its retrain metrics when it retrained, else its search's; its energy
    under ``profile`` (None: the profile it was priced with; nni-snn 0.1's runs: ``ops-45nm``)."""
    run = RunFolder(folder)
    metrics_file = run.retrain.metrics if run.retrain.metrics.is_file() else run.metrics
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, json.JSONDecodeError):
        raise FrontError(f"{folder}: no readable metrics.json (the run has not finished?)") from None
    if metrics.get("accuracy") is None or "energy_uj_per_sample" not in metrics:
        raise FrontError(f"{metrics_file}: no accuracy and energy (written by an older nni-snn?)")
    arch = load_arch(run.arch)
    search = arch.get("search", {})
    # A multi-trial baseline is labelled by its strategy, a DARTS search by its attention and energy penalty.
    label = search.get("strategy") or f"{ATTENTIONS[arch['attention']].label} λ={search.get('spike_penalty', 0):g}"
    own = metrics.get("energy_profile", "ops-45nm")  # 0.1 priced everything under the ops-only model
    priced = metrics.get("energy_uj_by_profile") or {own: metrics["energy_uj_per_sample"]}
    name = profile or own
    if name not in priced:
        raise FrontError(f"{metrics_file}: no energy under {name} (it has {', '.join(priced)}; written by an older "
                         "nni-snn?)")
    return {"label": label, "accuracy": metrics["accuracy"], "folder": str(folder), "energy_profile": name,
            "energy_uj_per_sample": priced[name],
            **{k: metrics[k] for k in ("spikes_per_sample", "sops_per_sample")}}


def energy_front(roots: list[str | Path], profile: str | None = None) -> tuple[list[dict], set[int]]:
    """The runs found below ``roots``, by energy per sample under ``profile`` (None: the one they were priced with,
    which must then be the same for all), and the indices of those on the Pareto front."""
    runs = sorted((read_run(folder, profile) for folder in run_folders(roots)), key=lambda r: r["energy_uj_per_sample"])
    profiles = sorted({r["energy_profile"] for r in runs})
    if len(profiles) > 1:
        raise FrontError(f"the runs are priced under different energy profiles ({', '.join(profiles)}): choose one "
                         "with --energy-profile")
    return runs, set(pareto_front([(r["energy_uj_per_sample"], r["accuracy"]) for r in runs]))


def front_table(runs: list[dict], on_front: set[int]) -> str:
    """The table ``nni-snn front`` prints (and the docs show): one line per run, ``*`` on the Pareto front."""
    profile = runs[0]["energy_profile"] if runs else ""
    lines = [f"energy profile: {profile}",
             f"{'run':<16} {'accuracy':>8} {'uJ/sample':>10} {'SOPs/sample':>12} {'spikes/sample':>13}  front"]
    for i, r in enumerate(runs):
        lines.append(f"{r['label']:<16} {r['accuracy']:>8.4f} {r['energy_uj_per_sample']:>10.4f} "
                     f"{r['sops_per_sample']:>12.4g} {r['spikes_per_sample']:>13.1f}  {'*' if i in on_front else ''}")
    return "\n".join(lines)

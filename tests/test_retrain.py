"""Retraining a hand-written arch.json: on digits, on an ImageFolder tree, and with 2-process CPU DDP."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from nni_snn.cli import main

TINY = ["--width", "4", "--cells", "3", "--epochs", "1", "--batch-size", "256", "--no-progress"]


@pytest.fixture
def arch_file(tmp_path, hand_arch):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(hand_arch))
    return path


def test_retrain_on_digits_writes_metrics_and_checkpoint(tmp_path, arch_file):
    out = tmp_path / "out"
    assert main(["retrain", "--arch", str(arch_file), *TINY, "--timesteps", "1", "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["timesteps"] == 1
    assert metrics["spikes_per_sample"] > 0 and "cells.2" in metrics["spikes_per_cell"]
    checkpoint = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
    assert any(key.startswith("_model.cells.0") for key in checkpoint["state_dict"])
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_retrain_on_an_image_folder(tmp_path, arch_file, mode):
    from PIL import Image

    root = tmp_path / "images"
    for part, count in (("train", 6), ("val", 3)):
        for label in ("cat", "dog", "emu"):
            folder = root / part / label
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = torch.randint(0, 255, (10, 10, 3), dtype=torch.uint8).numpy()
                Image.fromarray(pixels).convert(mode).save(folder / f"{i}.png")
    out = tmp_path / "out"
    assert main(["retrain", "--arch", str(arch_file), "--dataset", "imagefolder", "--data-dir", str(root), *TINY,
                 "--output", str(out)]) == 0
    assert 0.0 <= json.loads((out / "metrics.json").read_text())["accuracy"] <= 1.0


def test_missing_image_folder_is_a_clear_error(tmp_path, arch_file, capsys):
    assert main(["retrain", "--arch", str(arch_file), "--dataset", "imagefolder", "--data-dir",
                 str(tmp_path / "nowhere"), *TINY, "--output", str(tmp_path / "out")]) == 2
    assert "missing or empty" in capsys.readouterr().err


def test_retrain_with_two_process_cpu_ddp(tmp_path, arch_file):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "nni_snn", "retrain", "--arch", str(arch_file), *TINY, "--accelerator", "cpu",
         "--devices", "2", "--strategy", "ddp", "--output", str(out)],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert "accuracy" in result.stdout


def test_retrain_on_tiny_imagenet_layout(tmp_path, arch_file):
    """The official Tiny ImageNet folder layout, written small: train/<wnid>/images, val/ with annotations."""
    from PIL import Image

    root = tmp_path / "tiny-imagenet-200"
    lines = []
    for wnid in ("n01443537", "n01629819"):
        (root / "train" / wnid / "images").mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (64, 64), (i * 40, 0, 0)).save(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG")
    (root / "val" / "images").mkdir(parents=True)
    for i, wnid in enumerate(("n01443537", "n01629819", "n01443537")):
        Image.new("RGB", (64, 64), (0, i * 40, 0)).save(root / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert main(["retrain", "--arch", str(arch_file), "--dataset", "tinyimagenet", "--data-dir", str(root),
                 *TINY, "--output", str(out)]) == 0
    assert 0.0 <= json.loads((out / "metrics.json").read_text())["accuracy"] <= 1.0

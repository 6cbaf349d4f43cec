"""Retraining a hand-written arch.json: on digits, on an ImageFolder tree, and with 2-process CPU DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from nni_snn.cli.main import main

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
    assert list((out / "tensorboard" / "version_0").glob("events.out.tfevents.*"))


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


@pytest.mark.slow
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


def test_drop_path_drops_whole_samples_for_all_time_steps():
    from nni_snn.snn.regularizers import drop_path

    x = torch.ones(3, 200, 2, 4, 4)  # [T, N, C, H, W]
    out = drop_path(x, 0.25)
    per_sample = out.transpose(0, 1).flatten(1)  # [N, T*C*H*W]
    assert torch.isclose(per_sample, torch.tensor(0.0)).logical_or(
        torch.isclose(per_sample, torch.tensor(1 / 0.75))).all()  # dropped, or kept and scaled by 1 / (1 - p)
    assert (per_sample == per_sample[:, :1]).all()  # one draw per sample, the same at every time step
    dropped = (per_sample[:, 0] == 0).float().mean()
    assert 0.1 < dropped < 0.4  # about a quarter of 200
    assert drop_path(x, 0.0) is x


def test_drop_path_in_the_fixed_network_spares_identities_and_evaluation(hand_arch):
    from nni_snn import build_network
    from nni_snn.files.genotype import NUM_NODES
    from nni_snn.snn.regularizers import set_drop_path_prob

    net = build_network(hand_arch, width=4, num_cells=3, num_classes=10, in_channels=1)
    nodes = [node for cell in net.cells for node in cell.nodes]
    assert len(nodes) == 3 * NUM_NODES  # every node of every cell reads it, and is told it
    assert set_drop_path_prob(net, 0.3) == len(nodes) and all(node.drop_path_prob == 0.3 for node in nodes)
    assert set_drop_path_prob(net, 0.0) == len(nodes) and all(node.drop_path_prob == 0.0 for node in nodes)
    node = net.cells[0].nodes[0]  # normal cell: sep_conv_3x3 from input 0, skip_connect (identity) from input 1
    spikes = {i: (torch.rand(2, 64, 4, 8, 8) > 0.5).float() for i in (0, 1)}
    net.train()
    full = node(spikes.__getitem__)
    conv = full - spikes[1]  # the sep conv's output (batch-statistics BN: the same input gives the same output)
    node.drop_path_prob = 0.5
    out = node(spikes.__getitem__) - spikes[1]  # what came through the conv edge; the identity always does
    kept = torch.tensor([torch.allclose(out[:, n], 2 * conv[:, n], atol=1e-5) for n in range(64)])
    dropped = torch.tensor([bool((out[:, n].abs() < 1e-6).all()) for n in range(64)])
    assert (kept ^ dropped).all() and 5 < int(dropped.sum()) < 59
    net.eval()
    reference = node(spikes.__getitem__)
    node.drop_path_prob = 0.0
    assert torch.equal(node(spikes.__getitem__), reference)  # evaluation never drops


def test_drop_path_schedule_is_dartss_ramp():
    from nni_snn.train.lightning import DropPathSchedule

    schedule = DropPathSchedule(0.2)
    assert [schedule.probability(e, 4) for e in range(4)] == pytest.approx([0.0, 0.05, 0.1, 0.15])


def test_retrain_with_drop_path_cutout_and_lr_min(tmp_path, arch_file):
    out = tmp_path / "out"
    assert main(["retrain", "--arch", str(arch_file), *TINY[:4], "--epochs", "2", *TINY[6:], "--drop-path", "0.3",
                 "--cutout", "3", "--lr-min", "0.05", "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    # Set on the model at each epoch's start: 0.3 x epoch / 2.
    assert [h["drop_path_prob"] for h in history] == pytest.approx([0.0, 0.15])
    # The cosine from lr 0.2 ends at the floor, 0.05 (the recorded lr is the one after the epoch's step).
    assert [h["lr"] for h in history] == pytest.approx([0.125, 0.05])
    assert {k: metrics["recipe"][k] for k in ("drop_path", "cutout", "lr_min", "grad_clip")} == {
        "drop_path": 0.3, "cutout": 3, "lr_min": 0.05, "grad_clip": 5.0}


def _cut_box(image: torch.Tensor) -> tuple[int, int] | None:
    """(height, width) of the zeroed rectangle of a [C, H, W] image, None if nothing is zero; fails if the zeros
    are not one rectangle through all channels."""
    zero = (image == 0).all(dim=0)
    if not zero.any():
        return None
    rows, cols = zero.any(dim=1).nonzero().flatten(), zero.any(dim=0).nonzero().flatten()
    box = zero[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    assert box.all() and int(zero.sum()) == box.numel()
    return box.shape


def test_cutout_zeroes_a_square_in_training_digits_only():
    from nni_snn.data.images import load_dataset

    plain, cut = load_dataset("digits"), load_dataset("digits", cutout=4)
    boxes = [_cut_box(cut.train[i][0]) for i in range(200)]
    # Side 4, clipped at the border (centre anywhere in the 8x8 image): 2 to 4 pixels each way.
    assert all(box is not None and 2 <= min(box) and max(box) <= 4 for box in boxes)
    assert (4, 4) in boxes and len(set(boxes)) > 1
    assert all(_cut_box(plain.train[i][0]) is None for i in range(200))  # normalised digits have no exact zeros
    assert torch.equal(cut.train[0][1], plain.train[0][1])
    assert torch.equal(cut.test.tensors[0], plain.test.tensors[0])  # the held-out images are never cut


def test_cutout_on_an_image_folder_cuts_training_images_only(tmp_path):
    from PIL import Image

    from nni_snn.data.images import load_dataset

    root = tmp_path / "images"
    for part in ("train", "val"):
        for label in ("a", "b"):
            (root / part / label).mkdir(parents=True)
            Image.new("RGB", (12, 12), (200, 30, 90)).save(root / part / label / "0.png")
    data = load_dataset("imagefolder", root, cutout=6)
    assert all(_cut_box(data.train[i][0]) is not None for i in range(2))
    assert all(_cut_box(data.test[i][0]) is None for i in range(2))


@pytest.mark.parametrize("flags,needle", [
    (["--drop-path", "1"], "--drop-path must be a number in [0, 1), got 1.0"),
    (["--cutout", "-2"], "--cutout must be an integer >= 0 (pixels), got -2"),
    (["--lr-min", "-1"], "--lr-min must be a number >= 0"),
    (["--lr-min", "0.5"], "--lr-min 0.5 is above --lr 0.2"),
    (["--baseline", "spiking-cnn", "--drop-path", "0.2"], "a --baseline has none"),
    (["--val-split", "1"], "--val-split must be a number in [0, 1), got 1.0"),
    (["--val-split", "-0.1"], "--val-split must be a number in [0, 1), got -0.1"),
])
def test_bad_recipe_options_are_one_line_and_exit_2(flags, needle, tmp_path, arch_file, capsys):
    arch = [] if "--baseline" in flags else ["--arch", str(arch_file)]
    assert main(["retrain", *arch, *flags, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_activations_are_reused_without_page_faults():
    """After keep_freed_memory (search and retrain call it), allocating and freeing an activation-sized tensor again
    and again stays in the heap: glibc's default returns it to the OS and faults every page back in."""
    import resource

    from nni_snn.commands.runtime import keep_freed_memory

    keep_freed_memory()
    torch.ones(5 << 20)  # 20 MiB: the heap grows once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.ones(5 << 20)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    pages = (5 << 20) * 4 // 4096  # one tensor's
    # Measured: 1 tensor's worth in all (once 1 page more, after other tests had shaped the heap); glibc's defaults:
    # 8 of the 10 rounds fault, 8 tensors' worth.
    assert faults <= 3 * pages


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_users_malloc_tunables_are_kept():
    """With MALLOC_MMAP_THRESHOLD_ set (to trade speed for peak memory), keep_freed_memory leaves glibc alone: freed
    activation-sized tensors go back to the OS, and every new one faults its pages in again."""
    probe = (
        "import resource, torch\n"
        "from nni_snn.commands.runtime import keep_freed_memory\n"
        "keep_freed_memory()\n"
        "torch.ones(5 << 20)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(10):\n"
        "    torch.ones(5 << 20)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
    )
    faults = {}
    for env in ({}, {"MALLOC_MMAP_THRESHOLD_": "131072"}):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                             env={**os.environ, **env})
        faults[bool(env)] = int(out.stdout.split()[-1])
    pages = (5 << 20) * 4 // 4096
    assert faults[False] <= 3 * pages < 8 * pages <= faults[True]


# ---- the validation split: selection on data cut from the training split, the test split read once at the end ----

def test_the_validation_split_is_seeded_stratified_disjoint_and_adds_up():
    from collections import Counter

    from nni_snn.data.images import balanced_subset, dataset_labels, load_dataset, split_for_validation

    train = load_dataset("digits").train
    rest, val = split_for_validation(train, 0.1, seed=0)
    assert len(rest) + len(val) == len(train) and len(val) == round(0.1 * len(train))
    assert not set(rest.indices) & set(val.indices)
    assert sorted(rest.indices + val.indices) == list(range(len(train)))
    assert split_for_validation(train, 0.1, seed=0)[1].indices == val.indices  # same seed, same split
    assert split_for_validation(train, 0.1, seed=1)[1].indices != val.indices
    per_class, whole = Counter(dataset_labels(val)), Counter(dataset_labels(train))
    assert all(abs(per_class[c] - 0.1 * whole[c]) <= 1 for c in whole)  # every class gives its share
    # On --subset-per-class's subset: validation comes out of the subset, never from the images it left out.
    subset = balanced_subset(train, 10, seed=3)
    rest, val = split_for_validation(subset, 0.2, seed=3)
    assert len(val) == 20 and Counter(dataset_labels(val)) == {c: 2 for c in range(10)}
    assert set(subset.indices) == {subset.indices[i] for i in rest.indices + val.indices}


def test_the_validation_split_of_event_frames():
    from nni_snn.data.images import load_dataset, split_for_validation

    train = load_dataset("digits-events", timesteps=2).train
    rest, val = split_for_validation(train, 0.25, seed=0)
    assert len(rest) + len(val) == len(train) and not set(rest.indices) & set(val.indices)
    assert val[0][0].shape == train[val.indices[0]][0].shape


def test_validation_images_are_read_as_test_images_are():
    """Validation judges a network as the test split will: without the training split's Cutout."""
    from nni_snn.data.images import load_dataset, split_for_validation, unaugmented

    data = load_dataset("digits", cutout=4)
    rest, val = split_for_validation(data.train, 0.1, seed=0, plain=unaugmented(data.train, data.test))
    assert all(_cut_box(val[i][0]) is None for i in range(len(val)))
    assert all(_cut_box(rest[i][0]) is not None for i in range(20))
    assert torch.equal(val[0][0], load_dataset("digits").train[val.indices[0]][0])


def test_a_validation_split_too_small_for_the_data_is_one_line(tmp_path, arch_file, capsys):
    assert main(["retrain", "--arch", str(arch_file), *TINY, "--subset-per-class", "2", "--val-split", "0.01",
                 "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--val-split 0.01 of 20 training images leaves no validation images" in err and err.count("\n") == 1


def _count_test_images(monkeypatch) -> list[int]:
    """Patches the classifier's test step to record how many images each test batch holds."""
    from nni_snn.train.lightning import SNNClassifier

    seen, step = [], SNNClassifier.test_step

    def counted(self, batch, batch_idx):
        seen.append(len(batch[1]))
        return step(self, batch, batch_idx)

    monkeypatch.setattr(SNNClassifier, "test_step", counted)
    return seen


def test_retrain_selects_on_validation_and_reads_the_test_split_once(tmp_path, arch_file, monkeypatch):
    import yaml

    from nni_snn.commands.retrain import final_result

    tested = _count_test_images(monkeypatch)
    out = tmp_path / "out"
    assert main(["retrain", "--arch", str(arch_file), *TINY[:4], "--epochs", "3", *TINY[6:], "--timesteps", "1",
                 "--val-split", "0.25", "--seed", "1", "--output", str(out)]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["val_split"] == 0.25
    metrics = json.loads((out / "metrics.json").read_text())
    split = metrics["split"]
    assert split == {"val_split": 0.25, "train_images": 1078, "val_images": 360, "test_images": 359,
                     "validated_on": "validation"}  # digits: 1,438 training images, a quarter held out
    assert metrics["recipe"]["val_split"] == 0.25
    history = metrics["history"]
    assert [h["samples"] for h in history] == [360] * 3  # every epoch validated on the validation split
    scores = [h["val_acc"] for h in history]
    assert metrics["selected_epoch"] == scores.index(max(scores))  # the first of the best
    assert metrics["val_accuracy"] == metrics["best_accuracy"] == max(scores)
    best = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
    assert best["epoch"] == metrics["selected_epoch"]
    # Read once, after training, with the network selected on validation; reported apart.
    assert sum(tested) == 359 and len(tested) == 2
    assert metrics["accuracy"] == metrics["test_accuracy"]
    result = final_result(metrics)  # what NNI's tuner receives: validation decides, test rides along
    assert result["default"] == metrics["val_accuracy"] and result["test_accuracy"] == metrics["test_accuracy"]


def test_val_split_0_validates_on_the_test_split_and_says_so(tmp_path, arch_file):
    out = tmp_path / "out"
    assert main(["retrain", "--arch", str(arch_file), *TINY, "--timesteps", "1", "--val-split", "0",
                 "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == {"val_split": 0, "train_images": 1438, "val_images": 0, "test_images": 359,
                                "validated_on": "test"}
    assert metrics["history"][-1]["samples"] == 359
    # The test pass evaluates the best checkpoint: on the same images it scores what that epoch's validation did.
    assert metrics["test_accuracy"] == pytest.approx(metrics["val_accuracy"])

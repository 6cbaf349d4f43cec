"""Fashion-MNIST from its four idx files, balanced training subsets, and the options a study on it needs:
retrain's --val-every, --cell-norm (where a cell's BN sits against its attention), search's --retrain-* recipe."""

from __future__ import annotations

import gzip
import json
import struct

import pytest
import torch
from support.idx_files import write_idx  # tests/support

from nni_snn.cli.main import main
from nni_snn.data.images import balanced_subset, dataset_labels, load_dataset

TINY = ["--width", "2", "--cells", "3", "--batch-size", "64", "--no-progress", "--accelerator", "cpu"]


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reads_the_idx_files(tmp_path, compress):
    write_idx(tmp_path, compress=compress)
    data = load_dataset("fashionmnist", tmp_path)
    assert (len(data.train), len(data.test), data.num_classes, data.in_channels, data.image_size) == (60, 20, 10, 1,
                                                                                                        28)
    image, label = data.train[7]
    assert image.shape == (1, 28, 28) and label == 1
    images = torch.stack([data.train[i][0] for i in range(len(data.train))])
    assert abs(images.mean()) < 1e-5 and abs(images.std() - 1) < 1e-3  # normalised by the training images
    assert dataset_labels(data.test) == [c for c in range(10) for _ in range(2)]


def test_the_real_fashion_mnist_where_debian_installed_it():
    from pathlib import Path

    from nni_snn.data.images import FASHION_MNIST_DIR

    if not (Path(FASHION_MNIST_DIR) / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    data = load_dataset("fashionmnist", subset_per_class=3)  # --data-dir defaults to the package's folder
    assert (len(data.train), len(data.test)) == (30, 10_000)


@pytest.mark.parametrize("damage, needle", [
    ("missing", "t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte) is missing"),
    ("truncated", "train-images-idx3-ubyte.gz is truncated or damaged"),
    ("not gzip", "train-images-idx3-ubyte.gz is not readable"),
    ("header", "train-images-idx3-ubyte.gz is not an idx file of images"),
    ("count", "holds 60 images but train-labels-idx1-ubyte 59 labels"),
])
def test_a_missing_or_damaged_file_is_one_line_naming_it(tmp_path, damage, needle, capsys):
    write_idx(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(images.read_bytes())
    if damage == "missing":
        (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    elif damage == "truncated":
        images.write_bytes(gzip.compress(raw[:-100]))
    elif damage == "not gzip":
        images.write_bytes(b"not a gzip file at all")
    elif damage == "header":
        images.write_bytes(gzip.compress(struct.pack(">I", 0x0801) + raw[4:]))
    else:
        labels = tmp_path / "train-labels-idx1-ubyte.gz"
        raw_labels = gzip.decompress(labels.read_bytes())
        labels.write_bytes(gzip.compress(struct.pack(">II", 0x0801, 59) + raw_labels[8:-1]))
    code = main(["retrain", "--baseline", "spiking-cnn", "--dataset", "fashionmnist", "--data-dir", str(tmp_path),
                 *TINY, "--epochs", "1", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_balanced_subset_is_per_class_and_seeded(tmp_path):
    write_idx(tmp_path)
    train = load_dataset("fashionmnist", tmp_path).train
    subset = balanced_subset(train, 4, seed=1)
    labels = dataset_labels(subset)
    assert sorted(labels) == sorted(list(range(10)) * 4)
    assert subset.indices == balanced_subset(train, 4, seed=1).indices
    assert set(subset.indices) != set(balanced_subset(train, 4, seed=2).indices)
    assert len(balanced_subset(train, 100, seed=0)) == 60  # a class with fewer keeps them all
    # The same seed draws nested subsets: the 2-a-class one is part of the 4-a-class one.
    assert set(balanced_subset(train, 2, seed=1).indices) <= set(subset.indices)


def test_search_and_retrain_on_a_subset_record_it(tmp_path):
    write_idx(tmp_path / "data", per_class=8)
    data = ["--dataset", "fashionmnist", "--data-dir", str(tmp_path / "data"), "--subset-per-class", "4"]
    search = tmp_path / "search"
    assert main(["search", *data, *TINY, "--epochs", "1", "--retrain-epochs", "2", "--retrain-width", "2",
                 "--retrain-cells", "3", "--retrain-lr-min", "0.01", "--retrain-drop-path", "0.1",
                 "--retrain-cutout", "4", "--output", str(search)]) == 0
    arch = json.loads((search / "arch.json").read_text())
    assert arch["search"]["subset_per_class"] == 4 and arch["search"]["dataset"] == "fashionmnist"
    assert arch["cell_norm"] == "after-attention"
    recipe = json.loads((search / "retrain" / "metrics.json").read_text())["recipe"]
    assert {k: recipe[k] for k in ("lr_min", "drop_path", "cutout", "subset_per_class")} == {
        "lr_min": 0.01, "drop_path": 0.1, "cutout": 4, "subset_per_class": 4}


def test_val_every_validates_the_last_epoch_only(tmp_path):
    write_idx(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["retrain", "--baseline", "spiking-cnn", "--dataset", "fashionmnist", "--data-dir",
                 str(tmp_path / "data"), *TINY, "--epochs", "4", "--val-every", "2", "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # An epoch that does not validate records no (stale) val_* values.
    assert [("val_acc" in record) for record in metrics["history"]] == [False, True, False, True]
    scores = [record["val_acc"] for record in metrics["history"] if "val_acc" in record]
    assert metrics["val_accuracy"] == max(scores) and metrics["selected_epoch"] in (1, 3)
    assert metrics["recipe"]["val_every"] == 2


def test_val_every_that_skips_the_last_epoch_is_refused(tmp_path, capsys):
    assert main(["retrain", "--baseline", "spiking-cnn", *TINY, "--epochs", "3", "--val-every", "2",
                 "--output", str(tmp_path)]) == 2
    assert "not a multiple of --val-every 2" in capsys.readouterr().err


def test_cell_norm_before_attention_moves_the_bn_and_is_read_back(hand_arch):
    from nni_snn import build_network

    after = build_network(hand_arch, width=4, num_cells=3, num_classes=10, in_channels=1)
    hand_arch["cell_norm"] = "before-attention"
    before = build_network(hand_arch, width=4, num_cells=3, num_classes=10, in_channels=1)
    # A file without the key reads as it was written: the BN after the attention.
    assert after.cell_norm == "after-attention" and before.cell_norm == "before-attention"
    cell_a, cell_b = after.cells[0], before.cells[0]
    assert isinstance(cell_b.output.norm, torch.nn.Identity) and not isinstance(cell_b.norm_before, torch.nn.Identity)
    assert isinstance(cell_a.norm_before, torch.nn.Identity) and not isinstance(cell_a.output.norm, torch.nn.Identity)
    assert sum(p.numel() for p in after.parameters()) == sum(p.numel() for p in before.parameters())
    out = before(torch.randn(4, 1, 8, 8))
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_a_bad_cell_norm_in_a_file_is_named(tmp_path, hand_arch, capsys):
    hand_arch["cell_norm"] = "sideways"
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(hand_arch))
    assert main(["retrain", "--arch", str(path), *TINY, "--epochs", "1", "--output", str(tmp_path / "o")]) == 2
    assert "cell_norm 'sideways' is unknown" in capsys.readouterr().err


def test_training_totals_leave_the_auxiliary_head_out(hand_arch):
    """The head runs in training only: its counts are a group of their own, outside the totals, so that training
    and validation totals describe the same network."""
    from nni_snn import build_network
    from nni_snn.snn.spikes import SpikeMonitor
    from nni_snn.train.lightning import cell_group

    net = build_network(hand_arch, width=4, num_cells=3, num_classes=10, in_channels=1, auxiliary=True).train()
    with SpikeMonitor(net, group_of=cell_group, apart=("auxiliary_head",)) as monitor:
        with monitor.counting("train"):
            net(torch.randn(8, 1, 8, 8))
        summary = monitor.summary("train")
    groups, sops = summary["spikes_per_group"], summary["sops_per_group"]
    assert groups["auxiliary_head"] > 0 and sops["auxiliary_head"] > 0
    assert summary["spikes_per_sample"] == pytest.approx(sum(v for g, v in groups.items() if g != "auxiliary_head"))
    assert summary["sops_per_sample"] == pytest.approx(sum(v for g, v in sops.items() if g != "auxiliary_head"))


def test_the_search_quality_benchmark_runs_end_to_end_and_resumes(tmp_path):
    """The CPU-tiny path of benchmarks/search_quality.py (the README's study at a few seconds per run): every
    row is filled, the paired difference and Kendall's tau computed, and a second call redoes nothing."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "benchmarks.search_quality", "--studies", "tiny", "--out", str(tmp_path),
               "--plot", str(tmp_path / "plot.png")]
    first = subprocess.run(command, check=False, cwd=root, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    summary = json.loads((tmp_path / "tiny" / "summary.json").read_text())
    assert set(summary["rows"]) == {"MA-DARTS", "CT-DARTS", "DARTS", "random genotypes (MA attention)",
                                    "DARTS-V2 genotype (MA attention)", "spiking CNN reference", "its ReLU twin",
                                    "logistic regression"}
    assert summary["rows"]["random genotypes (MA attention)"]["n"] == 2
    assert all(0 <= a <= 1 for row in summary["rows"].values() for a in row["accuracies"])
    assert len(summary["paired"]["MA-DARTS"]["diffs"]) == 1 and summary["kendall_tau"]["tau_genotypes"] >= 3
    assert (tmp_path / "plot.png").stat().st_size > 0
    again = subprocess.run(command, check=False, cwd=root, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "..." not in again.stdout  # every run was finished: none started again


def test_the_attention_benchmark_covers_every_variant(tmp_path):
    """benchmarks/attention.py at the tiny setting: each genotype x attention x cells x BN placement once."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "benchmarks.attention", "--setting", "tiny", "--out",
                           str(tmp_path)],
                          check=False, cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = json.loads((tmp_path / "tiny" / "summary.json").read_text())
    assert len(summary) == 2 * 9 and "conv_heavy-ma-last-before" in summary
    archs = {json.loads(p.read_text())["cell_norm"] for p in (tmp_path / "tiny").glob("*/arch.json")}
    assert archs == {"after-attention", "before-attention"}


@pytest.mark.slow
def test_a_retrain_that_validates_rarely_still_checkpoints_every_epoch(tmp_path, hand_arch):
    """--resume continues from last.ckpt: it must follow every epoch, not only the validated ones."""
    import signal
    import subprocess
    import sys
    import time

    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(hand_arch))
    out = tmp_path / "out"
    base = [sys.executable, "-m", "nni_snn", "retrain", "--arch", str(arch), "--width", "2", "--cells", "3",
            "--batch-size", "256", "--no-progress", "--epochs", "4", "--val-every", "4", "--output", str(out)]
    proc = subprocess.Popen(base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "last.ckpt appeared only when the run had ended"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert main(base[3:] + ["--resume"]) == 0
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2, 3] and "val_acc" in history[-1]


@pytest.mark.parametrize("verbose", [False, True])
def test_no_model_summary_or_adverts_unless_verbose(tmp_path, verbose):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "nni_snn", "retrain", "--baseline", "spiking-cnn", *TINY,
                           "--epochs", "1", "--output", str(tmp_path), *(["--verbose"] if verbose else [])],
                          capture_output=True, text=True, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "accuracy" in out  # the result line stays
    assert ("| Name" in out) == verbose and ("Tip:" in out) == verbose


def test_every_run_writes_its_resolved_configuration(tmp_path):
    """config.yaml beside the results holds every option, defaults included, and reads back with --config."""
    import yaml

    search = tmp_path / "search"
    assert main(["search", *TINY, "--epochs", "1", "--subset-per-class", "3", "--retrain-epochs", "1",
                 "--output", str(search)]) == 0
    config = yaml.safe_load((search / "config.yaml").read_text())
    assert config["subset_per_class"] == 3 and config["cell_norm"] == "after-attention" and config["tau"] == 0.2
    retrain = yaml.safe_load((search / "retrain" / "config.yaml").read_text())
    assert retrain["arch"] == str(search / "arch.json") and retrain["epochs"] == 1
    again = tmp_path / "again"
    assert main(["search", "--config", str(search / "config.yaml"), "--output", str(again)]) == 0
    assert json.loads((again / "arch.json").read_text())["genotype"] == json.loads(
        (search / "arch.json").read_text())["genotype"]


@pytest.mark.parametrize("flags, needle", [
    (["--retrain-lr-min", "0.3"], "the retrain after the search (--retrain-*): --lr-min 0.3 is above --lr 0.2"),
    (["--dataset", "digits-events", "--retrain-cutout", "4"], "--cutout cuts holes in images"),
])
def test_the_searchs_retrain_options_are_checked_before_the_search(tmp_path, flags, needle, capsys):
    assert main(["search", *TINY, "--epochs", "1", "--retrain-epochs", "1", *flags, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "arch.json").exists()


def test_a_damaged_or_empty_idx_file_is_one_line(tmp_path, capsys):
    write_idx(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte.gz"
    raw = images.read_bytes()
    images.write_bytes(raw[:20] + bytes(b ^ 0xFF for b in raw[20:60]) + raw[60:])  # a damaged deflate stream
    with pytest.raises(Exception) as caught:
        load_dataset("fashionmnist", tmp_path)
    assert type(caught.value).__name__ == "DataError" and "train-images-idx3-ubyte.gz" in str(caught.value)
    write_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x0801, 0))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(Exception, match="holds no labels"):
        load_dataset("fashionmnist", tmp_path)

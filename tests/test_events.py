"""Event-camera data: files written here in each dataset's real format are read back event for event, binned into
T frames of event counts, cached, and fed to the network frame by frame with the encoding layer counted as SOPs."""

from __future__ import annotations

import json
import shutil
import struct
import threading

import numpy as np
import pytest
import torch

from nni_snn.cli.main import main
from nni_snn.data import events as ev
from nni_snn.data.images import DataError, load_dataset
from nni_snn.snn.ops import Encoder
from nni_snn.snn.spikes import SpikeMonitor


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_SNN_CACHE", str(tmp_path / "cache"))


def _recording(rng, n: int, side: int, duration: int = 300_000) -> np.ndarray:
    events = np.empty(n, dtype=ev.EVENT_DTYPE)
    events["x"] = rng.integers(0, side, n)
    events["y"] = rng.integers(0, side, n)
    events["t"] = np.sort(rng.integers(0, duration, n))
    events["p"] = rng.integers(0, 2, n)
    return events


def write_nmnist(path, events: np.ndarray) -> None:
    """N-MNIST's .bin: 5 bytes per event, x, y, then polarity (bit 7) and a 23-bit microsecond timestamp."""
    t = events["t"].astype(np.int64)
    raw = np.stack([events["x"], events["y"], (events["p"].astype(np.int64) << 7) | ((t >> 16) & 0x7F),
                    (t >> 8) & 0xFF, t & 0xFF], axis=1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.tobytes())


def write_cifar10dvs(path, events: np.ndarray) -> None:
    """CIFAR10-DVS's AEDAT 2.0: '#' header, big-endian (address, timestamp); DVS128 address bits as recorded:
    polarity (inverted) in bit 0, 127 - y in bits 1-7, 127 - x in bits 8-14."""
    address = ((127 - events["x"].astype(np.uint32)) << 8) | ((127 - events["y"].astype(np.uint32)) << 1) \
        | (1 - events["p"].astype(np.uint32))
    body = np.stack([address, events["t"].astype(np.uint32)], axis=1).astype(">u4")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!AER-DAT2.0\r\n# This is a raw AE data file created by saveaerdat.m\r\n"
                     b"# Data format is int32 address, int32 timestamp (8 bytes total)\r\n" + body.tobytes())


def write_gesture(path, events: np.ndarray, gestures: list[tuple[int, int, int]]) -> None:
    """DVS128 Gesture's AEDAT 3.1: header, then packets (28-byte header + events); a special-event packet and an
    invalid polarity event are included, as the reader must skip both; plus the recording's _labels.csv."""
    def packet(kind: int, words: np.ndarray) -> bytes:
        n = len(words)
        return struct.pack("<hhiiiiii", kind, 1, 8, 4, 0, n, n, n) + words.astype("<u4").tobytes()

    data = (events["x"].astype(np.uint32) << 17) | (events["y"].astype(np.uint32) << 2) \
        | (events["p"].astype(np.uint32) << 1) | 1
    polarity = np.stack([data, events["t"].astype(np.uint32)], axis=1)
    invalid = np.array([[(5 << 17) | (5 << 2), int(events["t"][0])]], dtype=np.uint32)  # valid bit 0 clear
    special = np.array([[0x0, 0]], dtype=np.uint32)
    half = len(polarity) // 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
                     + packet(0, special) + packet(1, np.concatenate([polarity[:half], invalid]))
                     + packet(1, polarity[half:]))
    path.with_name(path.stem + "_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n" + "".join(f"{c},{s},{e}\n" for c, s, e in gestures))


def _same(a: np.ndarray, b: np.ndarray) -> None:
    for field in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(a[field].astype(np.int64), b[field].astype(np.int64), err_msg=field)


def test_each_official_format_reads_back_the_events_written(tmp_path):
    rng = np.random.default_rng(0)
    nmnist = _recording(rng, 500, 34)
    write_nmnist(tmp_path / "n.bin", nmnist)
    _same(ev.read_nmnist(str(tmp_path / "n.bin")), nmnist)

    cifar = _recording(rng, 500, 128)
    write_cifar10dvs(tmp_path / "c.aedat", cifar)
    _same(ev.read_cifar10dvs(str(tmp_path / "c.aedat")), cifar)

    gesture = _recording(rng, 500, 128)
    write_gesture(tmp_path / "user01_led.aedat", gesture, [(3, 0, 100_000), (11, 100_000, 300_000)])
    _same(ev.read_gesture_file(str(tmp_path / "user01_led.aedat")), gesture)
    first = ev.read_gesture((str(tmp_path / "user01_led.aedat"), 0, 100_000))
    _same(first, gesture[gesture["t"] < 100_000])


def _nmnist_tree(root, rng, per_class: int = 2) -> dict[str, int]:
    counts = {"train": 0, "test": 0}
    for split, folder in (("train", "Train"), ("test", "Test")):
        for digit in range(10):
            for i in range(per_class):
                events = _recording(rng, 50 + digit, 34)
                write_nmnist(root / folder / str(digit) / f"{i:05d}.bin", events)
                counts[split] += len(events)
    return counts


@pytest.mark.parametrize("frames_by", ev.FRAMES_BY)
def test_nmnist_gives_T_frames_of_event_counts_and_its_labels(tmp_path, frames_by):
    counts = _nmnist_tree(tmp_path / "nmnist", np.random.default_rng(1))
    data = load_dataset("nmnist", tmp_path / "nmnist", timesteps=3, frames_by=frames_by)
    assert (len(data.train), len(data.test), data.num_classes, data.in_channels, data.image_size, data.frames) \
        == (20, 20, 10, 2, 34, 3)
    frames, label = data.train[7]
    assert frames.shape == (3, 2, 34, 34) and frames.dtype == torch.float32 and label == 3
    everything = torch.stack([data.train[i][0] for i in range(len(data.train))])
    assert everything.sum().item() == counts["train"]  # every event lands in exactly one frame
    assert bool((everything == everything.round()).all()) and everything.min() >= 0
    if frames_by == "count":  # bins of equal event count
        per_frame = everything.sum(dim=(2, 3, 4))
        assert (per_frame.max(dim=1).values - per_frame.min(dim=1).values).max() <= 1


def test_cifar10dvs_splits_each_class_nine_to_one_and_downsamples(tmp_path):
    rng = np.random.default_rng(2)
    for name in ev.CIFAR10DVS_CLASSES:
        for i in range(10):
            write_cifar10dvs(tmp_path / name / f"cifar10_{name}_{i}.aedat", _recording(rng, 40, 128))
    data = load_dataset("cifar10dvs", tmp_path, timesteps=2, event_size=48)
    assert (len(data.train), len(data.test), data.image_size) == (90, 10, 48)
    assert [data.test[i][1] for i in range(10)] == list(range(10))
    frames, _ = data.train[0]
    assert frames.shape == (2, 2, 48, 48) and frames.sum().item() == 40


def test_dvsgesture_follows_the_official_trial_lists_and_label_times(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "DvsGesture"
    for name in ("user01_fluorescent", "user24_led"):
        write_gesture(folder / f"{name}.aedat", _recording(rng, 300, 128, 300_000),
                      [(1, 0, 100_000), (11, 100_000, 250_000)])
    (folder / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (folder / "trials_to_test.txt").write_text("user24_led.aedat\n\n")
    data = load_dataset("dvsgesture", tmp_path, timesteps=4, event_size=32)
    assert (len(data.train), len(data.test), data.num_classes, data.image_size) == (2, 2, 11, 32)
    assert [data.train[i][1] for i in range(2)] == [0, 10]
    assert data.train[0][0].shape == (4, 2, 32, 32)


def test_frames_are_binned_once_then_read_from_the_cache(tmp_path):
    _nmnist_tree(tmp_path / "nmnist", np.random.default_rng(4), per_class=1)
    data = load_dataset("nmnist", tmp_path / "nmnist", timesteps=2)
    data.train[0]
    load_dataset("nmnist", tmp_path / "nmnist", timesteps=2, frames_by="count").train[0]
    assert len(list((tmp_path / "cache").glob("nmnist-*"))) == 2  # other frame settings, another cache
    first = [data.train[i][0] for i in range(len(data.train))]
    shutil.rmtree(tmp_path / "nmnist" / "Train")  # a second epoch must not need the events any more
    second = [data.train[i][0] for i in range(len(data.train))]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("nmnist", {}, "needs --data-dir"),
    ("nmnist", {"data_dir": "EMPTY"}, "missing or empty"),
    ("cifar10dvs", {"data_dir": "WRONG"}, "ten class folders"),
    ("dvsgesture", {"data_dir": "WRONG"}, "DvsGesture"),
    ("digits-events", {"event_size": 16}, "larger than the sensor"),
])
def test_bad_event_data_is_one_clear_error(tmp_path, name, kwargs, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "readme.txt").write_text("not a dataset")
    paths = {"EMPTY": tmp_path / "empty", "WRONG": tmp_path / "wrong"}
    kwargs = {k: paths.get(v, v) for k, v in kwargs.items()}
    with pytest.raises(DataError, match=message):
        load_dataset(name, **kwargs)


def test_emulated_dvs_fires_on_moving_edges_only():
    bar = torch.zeros(1, 8, 8)
    bar[0, :, 3:5] = 1.0  # a bright vertical bar
    (events,) = ev.emulate_dvs(bar)
    assert len(events) > 0 and set(events["p"].tolist()) == {0, 1}  # edges brighten and darken as it moves
    assert set(events["x"].tolist()) <= {1, 2, 3, 4, 5, 6}  # only around the bar's edges
    (blank,) = ev.emulate_dvs(torch.zeros(1, 8, 8))
    assert len(blank) == 0  # nothing moves, nothing fires


def test_digits_events_are_emulated_once_and_split_like_digits(tmp_path):
    data = load_dataset("digits-events", timesteps=2)
    digits = load_dataset("digits")
    assert (len(data.train), len(data.test)) == (len(digits.train), len(digits.test))
    assert [data.test[i][1] for i in range(20)] == [int(digits.test[i][1]) for i in range(20)]
    stored = list((tmp_path / "cache").glob("digits-events-v*.npz"))
    assert len(stored) == 1
    frames = torch.stack([data.test[i][0] for i in range(50)])
    assert frames.shape == (50, 2, 2, 8, 8) and frames.sum(dim=(1, 2, 3, 4)).min() > 0


def test_the_encoding_layer_reads_events_per_step_and_counts_them_as_sops():
    encoder = Encoder(2, 4, timesteps=2).eval()
    frames = torch.zeros(1, 2, 2, 6, 6)
    frames[0, 0, 1, 2, 2] = 3  # three ON events inside, at step 0
    frames[0, 1, 0, 0, 0] = 1  # one OFF event in the corner, at step 1
    with SpikeMonitor(encoder) as monitor, monitor.counting("x"):
        current = encoder(frames)
    assert current.shape == (2, 1, 4, 6, 6)
    # each event reaches every output its 3x3 window covers (9 inside, 4 in the corner), in all 4 channels
    assert monitor.summary("x")["sops_per_sample"] == (3 * 9 + 1 * 4) * 4
    assert monitor.summary("x")["macs_per_sample"] == 0
    assert not torch.equal(current[0], current[1])  # each step has its own frame
    image = torch.randn(1, 2, 6, 6)
    with SpikeMonitor(encoder) as monitor, monitor.counting("x"):
        current = encoder(image)
    assert torch.equal(current[0], current[1]) and monitor.summary("x")["sops_per_sample"] == 0
    plain = torch.nn.Conv2d(2, 4, 3, padding=1)  # any other layer: event counts are not spikes, so MACs
    with SpikeMonitor(plain) as monitor, monitor.counting("x"):
        plain(frames[:, 0] * 2)
    assert monitor.summary("x")["sops_per_sample"] == 0 and monitor.summary("x")["macs_per_sample"] > 0
    with pytest.raises(ValueError, match="3 frames per sample but the network runs 2"):
        encoder(torch.zeros(1, 3, 2, 6, 6))


def test_search_and_retrain_on_digits_events_count_the_encoding_layer_as_sops(tmp_path):
    tiny = ["--dataset", "digits-events", "--timesteps", "3", "--width", "4", "--cells", "3", "--batch-size", "128",
            "--no-progress"]
    assert main(["search", *tiny, "--epochs", "1", "--retrain-epochs", "1", "--retrain-width", "4",
                 "--retrain-cells", "3", "--output", str(tmp_path / "s")]) == 0
    assert json.loads((tmp_path / "s" / "arch.json").read_text())["timesteps"] == 3  # T = the frames per sample
    for metrics_file in (tmp_path / "s" / "metrics.json", tmp_path / "s" / "retrain" / "metrics.json"):
        metrics = json.loads(metrics_file.read_text())
        assert metrics["sops_per_cell"]["stem"] > 0  # the encoding layer reads events: synaptic operations
        assert metrics["accuracy"] > 0.0


def test_concurrent_readers_bin_each_recording_safely(tmp_path):
    """Trials or DDP ranks binning the same recordings at once: every reader gets whole frames, no file is left
    half written."""
    _nmnist_tree(tmp_path / "nmnist", np.random.default_rng(5), per_class=1)
    data = load_dataset("nmnist", tmp_path / "nmnist", timesteps=2)
    results, errors = [], []

    def read_all():
        try:
            results.append([data.train[i][0] for i in range(len(data.train))])
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=read_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 4
    assert all(torch.equal(a, b) for other in results[1:] for a, b in zip(results[0], other))
    cache = tmp_path / "cache"
    assert not list(cache.rglob("*partial*")) and len(list(cache.rglob("*.npz"))) == len(data.train)


def test_a_changed_data_folder_gets_a_new_cache(tmp_path):
    rng = np.random.default_rng(6)
    _nmnist_tree(tmp_path / "nmnist", rng, per_class=1)
    load_dataset("nmnist", tmp_path / "nmnist", timesteps=2).train[0]
    write_nmnist(tmp_path / "nmnist" / "Train" / "0" / "00000a.bin", _recording(rng, 30, 34))  # sorts second
    data = load_dataset("nmnist", tmp_path / "nmnist", timesteps=2)
    assert len(data.train) == 11 and data.train[1][0].sum().item() == 30  # not the stale frames of index 1


def test_an_unreadable_recording_is_one_line_naming_it(tmp_path, capsys):
    rng = np.random.default_rng(7)
    _nmnist_tree(tmp_path / "nmnist", rng, per_class=1)
    bad = _recording(rng, 20, 34)
    bad["x"][3] = 200  # outside the 34x34 sensor
    write_nmnist(tmp_path / "nmnist" / "Train" / "4" / "00000.bin", bad)
    code = main(["search", "--dataset", "nmnist", "--data-dir", str(tmp_path / "nmnist"), "--width", "4",
                 "--cells", "3", "--epochs", "1", "--batch-size", "8", "--no-progress", "--output",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "00000.bin is not a readable recording" in err


def test_retrain_and_show_bin_events_as_the_search_did(tmp_path):
    from nni_snn.cli.options import RetrainOptions
    from nni_snn.files.archfile import event_framing

    arch = {"search": {"dataset": "dvsgesture", "frames_by": "count", "event_size": 48}}
    assert event_framing(arch, "dvsgesture") == {"frames_by": "count", "event_size": 48}
    assert event_framing(arch, "dvsgesture", event_size=32)["event_size"] == 32
    assert event_framing(arch, "nmnist") == {"frames_by": "time", "event_size": None}
    assert event_framing(None, "digits") == {"frames_by": "time", "event_size": None}
    # retrain settles the same against its arch file
    settled = RetrainOptions(arch="arch.json", dataset="dvsgesture").against({**arch, "timesteps": 4})
    assert (settled.frames_by, settled.event_size, settled.timesteps) == ("count", 48, 4)

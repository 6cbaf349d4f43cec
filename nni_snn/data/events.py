"""Event-camera (DVS) data: N-MNIST, CIFAR10-DVS and DVS128 Gesture read from their official distributions, and
``digits-events``, the bundled digits seen by an emulated DVS sensor (offline, the default of the event datasets).

A sample is a recording of events ``(x, y, t, p)`` (tonic's structured arrays; t in microseconds, p 0 = OFF,
1 = ON), turned into T frames ``[T, 2, H, W]`` (:func:`frames_transform`): the events of each of T equal time bins
(``frames_by="time"``) or of T bins of equal event count (``"count"``) are counted per pixel and polarity. A data loader stacks them to ``[N, T, 2, H, W]`` and the network's encoding layer reads frame t at step
t (:class:`nni_snn.snn.ops.Encoder`). Frames keep their event counts (non-negative integers, not normalised), so the
encoding layer's synaptic operations are one accumulation per event per output it reaches.

Binning reads every event of a recording, so the frames are written once (:class:`CachedFrames`) under
``$NNI_SNN_CACHE`` (default ``~/.cache/nni-snn``), in a folder named after the dataset, its folder, the frame
settings and its list of recordings: the second epoch (and the next run) reads frames, not events.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from nni_snn.errors import DataError, optional_import
from nni_snn.registry import FRAMES_BY, Registry  # FRAMES_BY: the registry's (torch-free, for --help)

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CACHE_VERSION = 1  # bump when frames of the same settings would come out different


class CachedFrames(Dataset):
    """``(frames [T, 2, H, W] float32, label)`` per recording: ``read(source)`` gives its events, ``transform`` its
    frames, binned once and then kept in ``folder`` as ``<index>.npz``. A file is written under a temporary name
    and renamed, so concurrent trials or DDP ranks binning the same recording never read a half-written one
    (tonic's ``DiskCachedDataset`` writes in place, and a second reader then fails)."""

    def __init__(self, sources: list, labels: list[int], read, transform, folder: Path) -> None:
        self.sources, self.labels, self.read, self.transform, self.folder = sources, labels, read, transform, folder

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int):
        path = self.folder / f"{index}.npz"
        try:
            with np.load(path) as stored:
                frames = stored["frames"]
        except FileNotFoundError:
            frames = self._bin(index)
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = self.folder / f"{index}.{os.getpid()}-{threading.get_ident()}.partial.npz"
            np.savez_compressed(partial, frames=frames)  # frames are sparse: a tenth of the raw size or less
            os.replace(partial, path)
        return torch.from_numpy(frames.astype(np.float32)), self.labels[index]

    def _bin(self, index: int) -> np.ndarray:
        source = self.sources[index]
        try:
            return self.transform(self.read(source))
        except DataError:
            raise
        except (ValueError, IndexError, OSError, AssertionError, UnboundLocalError, struct.error) as err:
            name = source[0] if isinstance(source, tuple) else source if isinstance(source, str) else f"#{index}"
            raise DataError(f"{name} is not a readable recording ({type(err).__name__}: {err})") from None

    def fill(self) -> None:
        """Bin every recording now, in order (the gestures of one file are then read from it once)."""
        for index in range(len(self)):
            self[index]


class ToFrames:
    """Events -> ``[T, 2, H, W]`` event counts (uint16) per time bin (``"time"``: T bins of equal duration over
    the recording) or event bin (``"count"``: T bins of equal event count). Every event lands in exactly one frame;
    tonic's ``ToFrame`` would drop the last events of a recording (its bins are floor(duration / T) long, or
    floor(n / T) events)."""

    def __init__(self, size: tuple[int, int], timesteps: int, frames_by: str, downsample=None) -> None:
        self.size, self.timesteps, self.frames_by, self.downsample = size, timesteps, frames_by, downsample

    def __call__(self, events: np.ndarray) -> np.ndarray:
        # Not tonic's Compose: it skips every step, this one too, for a recording without events.
        if self.downsample is not None and len(events):
            events = self.downsample(events)
        width, height = self.size
        counts = np.zeros((self.timesteps, 2, height, width), dtype=np.int64)
        if len(events):
            t = events["t"].astype(np.int64) - events["t"].min()
            if self.frames_by == "time":
                bins = t * self.timesteps // (t.max() + 1)
            else:
                rank = np.empty(len(t), dtype=np.int64)
                rank[np.argsort(t, kind="stable")] = np.arange(len(t))
                bins = rank * self.timesteps // len(t)
            np.add.at(counts, (bins, events["p"].astype(np.int64), events["y"].astype(np.int64),
                               events["x"].astype(np.int64)), 1)
        return np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16)


def frames_transform(sensor: tuple[int, int], timesteps: int, frames_by: str, size: int | None):
    """Events -> ``[T, 2, size, size]`` counts: tonic's ``Downsample`` to ``size``, then :class:`ToFrames`. Every
    event dataset is framed here when it is loaded, so a missing tonic is reported here, before anything runs."""
    tt = optional_import("tonic.transforms", "events", "event-camera data")

    if frames_by not in FRAMES_BY:
        raise DataError(f"--frames-by must be one of {', '.join(FRAMES_BY)}, got {frames_by!r}")
    width, height = sensor
    downsample = None
    if size is not None and (size, size) != (width, height):
        if size > max(width, height):
            raise DataError(f"--event-size {size} is larger than the sensor ({width}x{height}); "
                                 "it can only shrink the frames")
        downsample = tt.Downsample(sensor_size=(width, height, 2), target_size=(size, size))
        width = height = size
    return ToFrames((width, height), timesteps, frames_by, downsample)


def cache_base() -> Path:
    return Path(os.environ.get("NNI_SNN_CACHE") or Path.home() / ".cache" / "nni-snn")


def cache_folder(name: str, root: Path | None, split: str, settings: tuple, sources: list, labels: list) -> Path:
    """One folder per dataset folder, frame settings and list of recordings: frames are stored by index, so a
    folder whose recordings change (a finished unzip, files added) gets a new cache instead of stale frames."""
    listing = hashlib.sha1(repr((sources, labels)).encode()).hexdigest()
    key = repr((CACHE_VERSION, str(root.resolve()) if root else None, *settings, listing)).encode()
    return cache_base() / f"{name}-{hashlib.sha1(key).hexdigest()[:12]}" / split


def as_recorded(events: np.ndarray) -> np.ndarray:
    """The reader of recordings already in memory (digits-events)."""
    return events


# ---- N-MNIST (Orchard et al. 2015): Train/<digit>/*.bin and Test/<digit>/*.bin, 34x34 ----

def read_nmnist(path: str) -> np.ndarray:
    from tonic.io import read_mnist_file

    return read_mnist_file(path, dtype=EVENT_DTYPE)


def nmnist_split(root: Path, train: bool) -> tuple[list, list]:
    folder = root / ("Train" if train else "Test")
    if not folder.is_dir():
        raise DataError(f"{folder} is missing: --data-dir must hold N-MNIST's Train/ and Test/ (unzip "
                             "Train.zip and Test.zip there)")
    files = sorted(folder.glob("[0-9]/*.bin"))
    if not files:
        raise DataError(f"{folder} has no <digit>/*.bin recordings")
    return [str(f) for f in files], [int(f.parent.name) for f in files]


# ---- CIFAR10-DVS (Li et al. 2017): <class>/cifar10_<class>_<i>.aedat, AEDAT 2.0, 128x128 ----

def read_cifar10dvs(path: str) -> np.ndarray:
    """AEDAT 2.0: '#' header lines, then big-endian (address, timestamp) pairs. The DVS128 address holds the
    polarity in bit 0, the column in bits 1-7 and the row in bits 8-14; read that way the scenes come out
    transposed and flipped, so x = 127 - row, y = 127 - column and the polarity is inverted (as SpikingJelly and
    events-tfds read this dataset)."""
    from tonic.io import get_aer_events_from_file, read_aedat_header_from_file

    version, start, _ = read_aedat_header_from_file(path)
    raw = get_aer_events_from_file(path, version, start)
    address = raw["address"].astype(np.int64)
    events = np.empty(len(raw), dtype=EVENT_DTYPE)
    events["x"] = 127 - ((address >> 8) & 0x7F)
    events["y"] = 127 - ((address >> 1) & 0x7F)
    events["t"] = raw["timeStamp"]
    events["p"] = 1 - (address & 1)
    return events


def _index(path: Path) -> int:
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else 0


def cifar10dvs_split(root: Path, train: bool, test_fraction: float = 0.1) -> tuple[list, list]:
    """CIFAR10-DVS has no official split: per class, the recordings in index order, the last tenth held out (the
    usual 9:1 proportion)."""
    sources, labels = [], []
    for label, name in enumerate(CIFAR10DVS_CLASSES):
        files = sorted((root / name).glob("*.aedat"), key=_index)
        if not files:
            raise DataError(f"{root / name} has no .aedat recordings: --data-dir must hold CIFAR10-DVS's ten "
                                 "class folders (unzip airplane.zip ... truck.zip there)")
        n_test = max(1, round(len(files) * test_fraction))
        part = files[:-n_test] if train else files[-n_test:]
        sources += [str(f) for f in part]
        labels += [label] * len(part)
    return sources, labels


# ---- DVS128 Gesture (Amir et al. 2017): DvsGesture/userNN_<light>.aedat (AEDAT 3.1) + _labels.csv ----

@lru_cache(maxsize=2)
def read_gesture_file(path: str) -> np.ndarray:
    """AEDAT 3.1: a text header ending in '#!END-HEADER', then packets, each a 28-byte header (event type, source,
    event size, timestamp offset, timestamp overflow, capacity, number, valid) and ``capacity`` events. Only
    polarity events (type 1: 32-bit data, 32-bit timestamp) are kept, and only valid ones (data bit 0); x is in
    bits 17-31, y in bits 2-16, polarity in bit 1. Cached: the ~11 gestures of a recording come from one file."""
    raw = Path(path).read_bytes()
    end = raw.find(b"#!END-HEADER")
    if end < 0:
        raise DataError(f"{path} is not an AEDAT 3.1 file (no '#!END-HEADER')")
    pos, parts = raw.index(b"\n", end) + 1, []
    while pos + 28 <= len(raw):
        kind, _, size, _, overflow, capacity, number, _ = struct.unpack_from("<hhiiiiii", raw, pos)
        pos += 28
        if size <= 0 or not 0 <= number <= capacity or pos + capacity * size > len(raw):
            raise DataError(f"{path}: a damaged AEDAT 3.1 packet at byte {pos - 28}")
        if kind == 1 and size == 8:
            words = np.frombuffer(raw, dtype="<u4", count=2 * number, offset=pos).reshape(-1, 2).astype(np.int64)
            words = words[(words[:, 0] & 1) == 1]
            part = np.empty(len(words), dtype=EVENT_DTYPE)
            part["x"] = (words[:, 0] >> 17) & 0x7FFF
            part["y"] = (words[:, 0] >> 2) & 0x7FFF
            part["p"] = (words[:, 0] >> 1) & 1
            part["t"] = words[:, 1] | (overflow << 31)
            parts.append(part)
        pos += capacity * size
    return np.concatenate(parts) if parts else np.empty(0, dtype=EVENT_DTYPE)


def read_gesture(source: tuple[str, int, int]) -> np.ndarray:
    path, start, end = source
    events = read_gesture_file(path)
    return events[(events["t"] >= start) & (events["t"] < end)]


def gesture_split(root: Path, train: bool) -> tuple[list, list]:
    """The official split (trials_to_train.txt / trials_to_test.txt); one sample per labelled gesture, the events
    between its start and end time; classes 1-11 of the labels become 0-10."""
    folder = root / "DvsGesture" if (root / "DvsGesture").is_dir() else root
    listing = folder / ("trials_to_train.txt" if train else "trials_to_test.txt")
    if not listing.is_file():
        raise DataError(f"{listing} is missing: --data-dir must hold DVS128 Gesture's DvsGesture/ folder "
                             "(unpack DvsGesture.tar.gz there)")
    sources, labels = [], []
    for name in listing.read_text().split():
        recording = folder / name
        table = recording.with_name(recording.stem + "_labels.csv")
        if not recording.is_file() or not table.is_file():
            raise DataError(f"{listing.name} names {name}, but {recording.name} or {table.name} is missing")
        for line in table.read_text().splitlines()[1:]:
            if line.strip():
                label, start, end = (int(v) for v in line.split(","))
                sources.append((str(recording), start, end))
                labels.append(label - 1)
    return sources, labels


# ---- digits-events: the bundled 8x8 digits seen by an emulated DVS ----

SACCADE = ((0.0, 0.0), (0.5, 1.0), (1.0, 0.0), (0.0, 0.0))  # pixels (dx, dy): three moves, as N-MNIST's triangle
STEPS_PER_MOVE = 10
STEP_US = 1000
CONTRAST_THRESHOLD = 0.15  # log-intensity change per event, a typical DVS contrast threshold
LOG_EPS = 0.1  # log(I + eps): a dark pixel does not swing to -inf


def emulate_dvs(images: torch.Tensor) -> list[np.ndarray]:
    """Events of a DVS looking at ``images`` ``[N, H, W]`` (intensity in [0, 1]) during a saccade.

    The scene is the image, bilinearly interpolated, moved along :data:`SACCADE` (three straight moves of
    :data:`STEPS_PER_MOVE` steps of 1 ms: sub-pixel shifts). Each pixel keeps the log intensity at its last event;
    whenever the current log intensity has moved n whole thresholds (:data:`CONTRAST_THRESHOLD`) from it, the
    pixel emits n events, ON if it brightened and OFF if it darkened, and its reference moves by n thresholds.
    """
    n, height, width = images.shape
    path = [(x0 + (x1 - x0) * k / STEPS_PER_MOVE, y0 + (y1 - y0) * k / STEPS_PER_MOVE)
            for (x0, y0), (x1, y1) in pairwise(SACCADE) for k in range(STEPS_PER_MOVE)] + [SACCADE[-1]]
    ys = torch.linspace(-1, 1, height).view(height, 1).expand(height, width)
    xs = torch.linspace(-1, 1, width).view(1, width).expand(height, width)
    batch = images.unsqueeze(1).float()
    reference = None
    events: list[list] = [[] for _ in range(n)]
    for step, (dx, dy) in enumerate(path):
        grid = torch.stack((xs + 2 * dx / (width - 1), ys + 2 * dy / (height - 1)), dim=-1)
        seen = torch.nn.functional.grid_sample(batch, grid.expand(n, height, width, 2), align_corners=True)[:, 0]
        level = torch.log(seen + LOG_EPS)
        if reference is None:
            reference = level
            continue
        crossings = torch.trunc((level - reference) / CONTRAST_THRESHOLD).to(torch.int64)
        reference = reference + crossings * CONTRAST_THRESHOLD
        for sample, y, x in crossings.nonzero().tolist():
            count = crossings[sample, y, x].item()
            events[sample].extend([(x, y, step * STEP_US, int(count > 0))] * abs(count))
    return [np.array(e, dtype=EVENT_DTYPE) for e in events]


def digits_events(cache_root: Path) -> tuple[list[np.ndarray], torch.Tensor]:
    """The events of all 1797 digits and their labels, emulated once and kept in ``cache_root`` (written to a
    temporary name and renamed, so an interrupted run leaves no half file)."""
    from sklearn.datasets import load_digits

    path = cache_root / f"digits-events-v{CACHE_VERSION}.npz"
    digits = load_digits()
    labels = torch.tensor(digits.target, dtype=torch.long)
    if not path.is_file():
        recordings = emulate_dvs(torch.tensor(digits.images, dtype=torch.float32) / 16.0)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.npz")
        np.savez(partial, events=np.concatenate(recordings), counts=np.array([len(r) for r in recordings]))
        os.replace(partial, path)
    with np.load(path) as stored:
        return np.split(stored["events"], np.cumsum(stored["counts"])[:-1]), labels


@dataclass(frozen=True)
class EventSet:
    """A dataset: its sensor (width, height), classes, what ``--data-dir`` must hold, and how its recordings are
    listed (``split(root, train) -> (sources, labels)``) and read; ``fill_in_order``: bin it all before training."""

    sensor: tuple[int, int]
    classes: int
    layout: str = ""
    split: Callable | None = None
    read: Callable = as_recorded
    fill_in_order: bool = False


# A new event dataset is one EventSet registered here.
EVENT_DATASETS = Registry("dataset")
EVENT_DATASETS.register("digits-events", "the digits through an emulated DVS, embedded",
                        EventSet((8, 8), 10))  # in memory, made by emulate_dvs
EVENT_DATASETS.register("nmnist", "N-MNIST", EventSet((34, 34), 10, "N-MNIST's Train/ and Test/", nmnist_split,
                                                      read_nmnist))
EVENT_DATASETS.register("cifar10dvs", "CIFAR10-DVS", EventSet((128, 128), 10, "CIFAR10-DVS's ten class folders",
                                                              cifar10dvs_split, read_cifar10dvs))
EVENT_DATASETS.register("dvsgesture", "DVS128 Gesture",
                        EventSet((128, 128), 11, "DVS128 Gesture's DvsGesture/", gesture_split, read_gesture,
                                 fill_in_order=True))  # about 11 gestures per file: read each file once

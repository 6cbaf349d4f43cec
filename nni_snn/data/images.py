"""Datasets: the embedded 8x8 digits (offline default), MNIST and Fashion-MNIST (their idx files: Debian's
dataset-fashion-mnist package, torchvision's folders, or ``--download``), CIFAR-10/100, Tiny ImageNet, any ImageFolder
tree, and the event-camera datasets of :mod:`nni_snn.data.events` (digits-events, offline; N-MNIST, CIFAR10-DVS, DVS128 Gesture).

Image datasets are a registry (:data:`nni_snn.registry.IMAGE_DATASETS`: a new one is its ``read_*`` function and one
registration there), event datasets :data:`nni_snn.data.events.EVENT_DATASETS`. Every loader returns a :class:`Data` with a
training split and a held-out split; images come as ``[C, H, W]``,
event recordings as T frames ``[T, 2, H, W]``. Search divides the training split
1:1 into a weight half and an alpha half (paper 4.1); retraining cuts a validation split off the training split
(:func:`split_for_validation`), trains on the rest, selects on validation and reads the held-out (test) split once
at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from nni_snn.data.events import EVENT_DATASETS, DataError
from nni_snn.registry import IMAGE_DATASETS


def dataset_names() -> tuple[str, ...]:
    """Every dataset a command can name: the registered image datasets, then the event datasets (nni_snn.data.events)."""
    return (*IMAGE_DATASETS, *EVENT_DATASETS)


# Per-dataset channel statistics (CIFAR: the values DARTS uses).
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
# Where Debian's dataset-fashion-mnist package puts the four idx files: --data-dir's default for fashionmnist.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# The idx datasets: (their name in messages, torchvision's class). --download is torchvision's, which writes the files
# into <--data-dir>/<class>/raw; --data-dir may name that folder, the one above it, or any folder holding the files.
IDX_DATASETS = {"mnist": ("MNIST", "MNIST"), "fashionmnist": ("Fashion-MNIST", "FashionMNIST")}
# Where --download writes when no --data-dir is given.
DOWNLOAD_DIR = "data"


@dataclass
class Data:
    train: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    frames: int | None = None  # event data: frames per sample (the network's T); None: static images


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False,
                 augment: bool = True, cutout: int = 0, timesteps: int = 2, frames_by: str = "time",
                 event_size: int | None = None, subset_per_class: int | None = None, seed: int = 0,
                 mirror: str | None = None) -> Data:
    """Load ``name`` (one of :func:`dataset_names`); ``augment`` adds DARTS's crop+flip to CIFAR and Tiny ImageNet
    training images; ``cutout`` > 0 zeroes a square of that side in every training image, after the augmentation and
    normalisation (:class:`~nni_snn.snn.regularizers.Cutout`, DARTS's). ``download`` fetches a dataset that is not in
    ``data_dir`` (torchvision's download, from ``mirror``, a URL, in place of the official one where given; the
    official checksums are checked either way). ``subset_per_class`` keeps that many training
    samples of each class (:func:`balanced_subset`, drawn with ``seed``). The held-out split is never altered.

    Event datasets give ``timesteps`` frames per sample, binned by ``frames_by`` (time or count), down-sampled to
    ``event_size`` pixels a side (None: the sensor's); they have no augmentation or Cutout."""
    if name in EVENT_DATASETS:
        data = _events(name, data_dir, timesteps, frames_by, event_size)
    elif name in IMAGE_DATASETS:
        data = IMAGE_DATASETS[name].load()(data_dir, download=download, augment=augment, cutout=cutout,
                                           mirror=mirror)
    else:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(dataset_names())}")
    if subset_per_class:
        data.train = balanced_subset(data.train, subset_per_class, seed)
    return data


def load_for(opts, timesteps: int, cutout: int = 0) -> Data:
    """The dataset a command's options (``nni_snn.cli.options.CommonOptions``) name; event data gets ``timesteps`` frames
    per sample (the network's T)."""
    return load_dataset(opts.dataset, opts.data_dir, opts.download, cutout=cutout, timesteps=timesteps,
                        frames_by=opts.frames_by, event_size=opts.event_size, subset_per_class=opts.subset_per_class,
                        seed=opts.seed, mirror=opts.mirror)


def dataset_labels(dataset: Dataset) -> list[int]:
    """Every sample's label, read without loading the samples where the dataset keeps its labels apart."""
    if isinstance(dataset, Subset):
        labels = dataset_labels(dataset.dataset)
        return [labels[i] for i in dataset.indices]
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].tolist()
    for name in ("targets", "labels"):  # torchvision's datasets; the event datasets' frames
        if hasattr(dataset, name):
            return [int(label) for label in getattr(dataset, name)]
    inner = getattr(dataset, "dataset", None)  # a wrapper that transforms its samples
    if inner is not None and len(inner) == len(dataset):
        return dataset_labels(inner)
    return [int(dataset[i][1]) for i in range(len(dataset))]


def balanced_subset(dataset: Dataset, per_class: int, seed: int = 0) -> Subset:
    """``per_class`` samples of every class of ``dataset``, drawn with ``seed``, in a shuffled order (a class with
    fewer keeps them all): the same seed gives the same subset, so a study's runs train on the same images."""
    labels = torch.tensor(dataset_labels(dataset))
    generator = torch.Generator().manual_seed(seed)
    chosen = [idx[torch.randperm(len(idx), generator=generator)[:per_class]]
              for idx in (torch.nonzero(labels == c).flatten() for c in labels.unique(sorted=True))]
    order = torch.cat(chosen)
    return Subset(dataset, order[torch.randperm(len(order), generator=generator)].tolist())


def split_for_search(dataset: Dataset, seed: int = 0) -> tuple[Subset, Subset]:
    """Shuffle the training split with ``seed`` and cut it 1:1 into (weight half, alpha half)."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    half = len(order) // 2
    return Subset(dataset, order[:half]), Subset(dataset, order[half:2 * half])


def split_for_validation(dataset: Dataset, fraction: float, seed: int = 0,
                         plain: Dataset | None = None) -> tuple[Subset, Subset]:
    """Cut ``fraction`` of the training split ``dataset`` off as a validation split: (the rest, validation).

    Stratified and drawn with ``seed``: every class gives its share (the sizes add up to ``len(dataset)``, and the
    same seed gives the same split). ``plain`` is ``dataset`` read without augmentation or Cutout
    (:func:`unaugmented`); validation images are read from it, so that they are judged as the test images are.
    Raises :class:`DataError` when either part would be empty.
    """
    labels = torch.tensor(dataset_labels(dataset))
    count = round(fraction * len(labels))
    if not 0 < count < len(labels):
        raise DataError(f"--val-split {fraction:g} of {len(labels)} training images leaves "
                        f"{'no validation' if count < 1 else 'no training'} images; give a fraction that does not, or "
                        "0 to validate on the test split")
    # Each class's images in a random order, ranked by how far into their class they come: taking the lowest ranks
    # takes the same share of every class (the random order also breaks ties between classes).
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    rank = torch.empty(len(labels))
    for c in labels.unique():
        members = order[labels[order] == c]
        rank[members] = (torch.arange(len(members)) + 0.5) / len(members)
    chosen = torch.zeros(len(labels), dtype=torch.bool)
    chosen[order[torch.sort(rank[order], stable=True).indices[:count]]] = True
    val = torch.nonzero(chosen).flatten().tolist()
    rest = torch.nonzero(~chosen).flatten().tolist()
    return Subset(dataset, rest), Subset(dataset if plain is None else plain, val)


def unaugmented(train: Dataset, test: Dataset) -> Dataset:
    """``train``'s samples, index for index, read as ``test``'s are: without the training split's augmentation and
    Cutout (tensor datasets: unwrapped; torchvision datasets: given ``test``'s transform, sharing the images)."""
    import copy

    from nni_snn.snn.regularizers import TransformedImages

    if isinstance(train, Subset):
        return Subset(unaugmented(train.dataset, test), train.indices)
    if isinstance(train, TransformedImages):
        return train.dataset
    if type(train).__module__.startswith("torchvision.") and hasattr(test, "transform"):
        plain = copy.copy(train)
        plain.transform = test.transform
        return plain
    return train  # event frames: training and test are read alike


def _cutout(size: int) -> list:
    """The Cutout step to append to a training transform: none at size 0."""
    from nni_snn.snn.regularizers import Cutout

    return [Cutout(size)] if size > 0 else []


def _digits_split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed 80/20 (train, test) indices of the digits, shared by digits and digits-events."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    return order[n // 5:], order[:n // 5]


def read_digits(data_dir=None, *, download: bool = False, augment: bool = True, cutout: int = 0,
                mirror: str | None = None) -> Data:
    """scikit-learn's bundled 1797 real 8x8 digit scans; a fixed 80/20 train/test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    train_idx, test_idx = _digits_split(len(labels))
    mean, std = images[train_idx].mean(), images[train_idx].std()
    images = (images - mean) / std
    train: Dataset = TensorDataset(images[train_idx], labels[train_idx])
    if cutout > 0:  # a tensor dataset has no transform: Cutout is applied as each image is read
        from nni_snn.snn.regularizers import Cutout, TransformedImages

        train = TransformedImages(train, Cutout(cutout))
    return Data(train,
                TensorDataset(images[test_idx], labels[test_idx]), num_classes=10, in_channels=1, image_size=8)


def _read_idx(path: Path, magic: int) -> torch.Tensor:
    """An idx file (gzipped or not) as a uint8 tensor of its stated shape; a missing, wrong or short file raises
    a :class:`DataError` naming it."""
    import gzip
    import zlib

    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DataError(f"{path} is not readable ({type(err).__name__}: {err})") from None
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path} is not an idx file of {'images' if ndim == 3 else 'labels'} (bad header)")
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    size = 1
    for n in shape:
        size *= n
    body = raw[4 + 4 * ndim:]
    if size == 0:
        raise DataError(f"{path} holds no {'images' if ndim == 3 else 'labels'} (its header announces 0)")
    if len(body) != size:
        raise DataError(f"{path} is truncated or damaged: its header announces {size} bytes of data, it holds "
                        f"{len(body)}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def _idx_file(root: Path, name: str, title: str) -> Path:
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"{root / name}.gz (or {name}) is missing; --data-dir must hold {title}'s four idx files "
                    "(or pass --download to fetch them)")


def _idx_files_present(folder: Path) -> list[bool]:
    """Whether each of the four idx files is in ``folder`` (gzipped or not)."""
    return [any((folder / f"{name}{ext}").is_file() for ext in ("", ".gz"))
            for names in IDX_FILES.values() for name in names]


def _idx_folder(name: str, data_dir, download: bool, mirror: str | None) -> Path:
    """The folder holding ``name``'s idx files: ``data_dir`` itself (Debian's folder, torchvision's ``raw``) or
    torchvision's ``<data_dir>/<class>/raw``; with ``download``, fetched into the latter when neither holds all four
    (torchvision fetches only those missing)."""
    title, class_name = IDX_DATASETS[name]
    default = FASHION_MNIST_DIR if name == "fashionmnist" and not download else None
    if data_dir is None and default is None and not download:
        raise DataError(f"{name} needs --data-dir, a folder holding its four idx files (e.g. torchvision's "
                        f"{class_name}/raw), or --download to fetch them into {DOWNLOAD_DIR}/")
    root = Path(data_dir or default or DOWNLOAD_DIR)
    torchvision_raw = root / class_name / "raw"
    for folder in (root, torchvision_raw):
        present = _idx_files_present(folder)
        if all(present) or (any(present) and not download):  # a missing file is then named by _idx_file
            return folder
    if download:
        _download(class_name, root, mirror)
        return torchvision_raw
    given = "--data-dir" if data_dir else "the default --data-dir"
    found = f"holds no {title} idx files, neither in it nor in {torchvision_raw}" if root.is_dir() else "is missing"
    debian = " (Debian: apt install dataset-fashion-mnist)" if name == "fashionmnist" else ""
    raise DataError(f"{given} {root} {found}; pass --download to fetch them there{debian}")


def _download(class_name: str, root: Path, mirror: str | None) -> None:
    """torchvision's download of its dataset ``class_name`` into ``root``, from ``mirror`` where given. torchvision
    checks each file against the official MD5 sum, so a mirror must serve the official files."""
    from urllib.error import URLError

    import torchvision

    official = getattr(torchvision.datasets, class_name)
    cls = official
    if mirror:
        # torchvision tries the base URLs of the class attribute ``mirrors`` in turn (it is no argument): a subclass
        # tries the user's only. Named as the original, since torchvision names its folder after the class.
        base = mirror if mirror.endswith("/") else mirror + "/"
        cls = type(class_name, (official,), {"mirrors": [base]})
    where = mirror or ", ".join(official.mirrors)
    try:
        cls(str(root), download=True)  # fetches the four files, then reads the training split (discarded)
    except (RuntimeError, URLError) as err:  # torchvision: every mirror failed, or a file's MD5 sum is not the official
        from torchvision.datasets.utils import check_integrity

        # torchvision leaves a file that failed its sum where it fetched it: removed, so that no later run reads it.
        for name, md5 in official.resources:
            fetched = root / class_name / "raw" / name
            if fetched.is_file() and not check_integrity(str(fetched), md5):
                fetched.unlink()
                raise DataError(f"--download of {class_name} from {where} failed: {name} is not the official file "
                                "(its MD5 sum differs); a mirror must serve the official files") from None
        why = " ".join(str(err).split())  # torchvision's lists each mirror's error on lines of their own
        raise DataError(f"--download of {class_name} from {where} failed: {why}") from None


def read_mnist(data_dir, *, download: bool = False, augment: bool = True, cutout: int = 0,
               mirror: str | None = None) -> Data:
    """MNIST (LeCun et al. 1998): 60,000 + 10,000 grey 28x28 handwritten digits, as :func:`read_fashion_mnist`."""
    return _read_idx_dataset("mnist", data_dir, download, cutout, mirror)


def read_fashion_mnist(data_dir, *, download: bool = False, augment: bool = True, cutout: int = 0,
                       mirror: str | None = None) -> Data:
    """Fashion-MNIST (Xiao et al. 2017): 60,000 + 10,000 grey 28x28 images of 10 kinds of clothing, read from the
    four standard idx files (gzipped or not) in ``data_dir`` (or torchvision's ``data_dir/FashionMNIST/raw``), by
    default where Debian's package installs them. Normalised by the training images' mean and deviation; no
    augmentation (Cutout only when asked)."""
    return _read_idx_dataset("fashionmnist", data_dir, download, cutout, mirror)


def _read_idx_dataset(name: str, data_dir, download: bool, cutout: int, mirror: str | None) -> Data:
    title = IDX_DATASETS[name][0]
    root = _idx_folder(name, data_dir, download, mirror)
    splits = {}
    for split, (images_name, labels_name) in IDX_FILES.items():
        images = _read_idx(_idx_file(root, images_name, title), 0x0803)
        labels = _read_idx(_idx_file(root, labels_name, title), 0x0801)
        if len(images) != len(labels):
            raise DataError(f"{root}: {images_name} holds {len(images)} images but {labels_name} {len(labels)} "
                            "labels")
        if len(labels) and int(labels.max()) > 9:
            raise DataError(f"{root / labels_name}: labels must be 0-9, found {int(labels.max())}")
        splits[split] = (images.unsqueeze(1).float() / 255.0, labels.long())
    train_images = splits["train"][0]
    mean, std = train_images.mean(), train_images.std()
    train: Dataset = TensorDataset((train_images - mean) / std, splits["train"][1])
    if cutout > 0:
        from nni_snn.snn.regularizers import Cutout, TransformedImages

        train = TransformedImages(train, Cutout(cutout))
    test = TensorDataset((splits["test"][0] - mean) / std, splits["test"][1])
    return Data(train, test, num_classes=10, in_channels=1, image_size=int(train_images.shape[-1]))


def _require_dir(data_dir: str | Path | None, hint: str) -> Path:
    if data_dir is None:
        raise DataError(f"this dataset needs --data-dir: {hint}")
    path = Path(data_dir)
    if not path.is_dir() or not any(path.iterdir()):
        raise DataError(f"--data-dir {path} is missing or empty; {hint}")
    return path


def read_cifar10(data_dir, *, download: bool = False, augment: bool = True, cutout: int = 0,
                 mirror: str | None = None) -> Data:
    return _cifar("cifar10", data_dir, download, augment, cutout, mirror)


def read_cifar100(data_dir, *, download: bool = False, augment: bool = True, cutout: int = 0,
                  mirror: str | None = None) -> Data:
    return _cifar("cifar100", data_dir, download, augment, cutout, mirror)


def _cifar(name: str, data_dir, download: bool, augment: bool, cutout: int = 0, mirror: str | None = None) -> Data:
    from urllib.error import URLError

    import torchvision
    from torchvision import transforms as tf

    mean, std = CIFAR10_STATS if name == "cifar10" else CIFAR100_STATS
    to_standard = [tf.ToTensor(), tf.Normalize(mean, std)]
    train_tf = tf.Compose(([tf.RandomCrop(32, padding=4), tf.RandomHorizontalFlip()] if augment else []) + to_standard
                          + _cutout(cutout))
    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    if mirror:  # torchvision downloads from its class attribute ``url`` (no argument), checking the official MD5 sum
        cls = type(cls.__name__, (cls,), {"url": f"{mirror.rstrip('/')}/{cls.filename}"})
    if download:
        root = Path(data_dir or DOWNLOAD_DIR)
    else:
        root = _require_dir(data_dir, f"point it at the folder holding the {name} files, or pass --download")
    try:
        train = cls(str(root), train=True, transform=train_tf, download=download)
        test = cls(str(root), train=False, transform=tf.Compose(to_standard), download=download)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"; downloading: a wrong MD5 sum
        if download:
            raise DataError(f"--download of {name} from {cls.url} failed: {err} (a mirror must serve the official "
                            "file: its MD5 sum is checked)") from None
        raise DataError(f"{name} not found under {root} ({err}); pass --download where online") from None
    except URLError as err:  # the download failed (CIFAR's does not catch it as MNIST's does)
        raise DataError(f"--download of {name} from {cls.url} failed: {err.reason}") from None
    return Data(train, test, num_classes=10 if name == "cifar10" else 100, in_channels=3, image_size=32)


def _to_rgb(image):
    """Module-level (not a lambda) so data loader workers can pickle the transform."""
    return image.convert("RGB")


def read_imagefolder(data_dir, *, download: bool = False, augment: bool = True, cutout: int = 0,
                     mirror: str | None = None) -> Data:
    """``data_dir/train/<class>/*`` and ``data_dir/val/<class>/*``; grey or RGB, resized to the train images' size."""
    import torchvision
    from torchvision import transforms as tf

    root = _require_dir(data_dir, "imagefolder expects train/ and val/ with one sub-folder per class")
    for part in ("train", "val"):
        if not (root / part).is_dir():
            raise DataError(f"{root / part} is missing; imagefolder expects train/ and val/ with one sub-folder "
                            "per class")
    probe = torchvision.datasets.ImageFolder(str(root / "train"))
    if len(probe) == 0:
        raise DataError(f"{root / 'train'} holds no images")
    first, _ = probe[0]
    grey = first.mode in ("L", "1", "I", "F")
    size = min(first.size)
    base = [tf.Grayscale(1)] if grey else [tf.Lambda(_to_rgb)]
    transform = tf.Compose(base + [tf.Resize(size), tf.CenterCrop(size), tf.ToTensor(),
                                   tf.Normalize([0.5] * (1 if grey else 3), [0.5] * (1 if grey else 3))])
    train = torchvision.datasets.ImageFolder(str(root / "train"), transform=tf.Compose([transform, *_cutout(cutout)]))
    test = torchvision.datasets.ImageFolder(str(root / "val"), transform=transform)
    if train.classes != test.classes:
        raise DataError(f"train/ and val/ under {root} have different class folders")
    return Data(train, test, num_classes=len(train.classes), in_channels=1 if grey else 3, image_size=size)


def read_tinyimagenet(data_dir, *, download: bool = False, augment: bool = True, cutout: int = 0,
                      mirror: str | None = None) -> Data:
    """Tiny ImageNet's official layout: ``train/<wnid>/images/*.JPEG``, ``val/images/*.JPEG`` labelled by
    ``val/val_annotations.txt`` (file, wnid, box); 64x64 RGB, 200 classes."""
    import torchvision
    from torchvision import transforms as tf

    root = _require_dir(data_dir, "point it at tiny-imagenet-200/ (train/, val/, wnids.txt)")
    annotations = root / "val" / "val_annotations.txt"
    if not (root / "train").is_dir() or not annotations.is_file():
        raise DataError(f"{root} is not a Tiny ImageNet folder: expected train/ and val/val_annotations.txt")
    to_standard = [tf.ToTensor(), tf.Normalize((0.480, 0.448, 0.398), (0.277, 0.269, 0.282))]
    augmentation = [tf.RandomCrop(64, padding=8), tf.RandomHorizontalFlip()] if augment else []
    train = torchvision.datasets.ImageFolder(str(root / "train"),
                                             transform=tf.Compose(augmentation + to_standard + _cutout(cutout)))
    test = torchvision.datasets.ImageFolder(str(root / "train"), transform=tf.Compose(to_standard))
    try:
        test.samples = [(str(root / "val" / "images" / line.split("\t")[0]),
                         train.class_to_idx[line.split("\t")[1]])
                        for line in annotations.read_text().splitlines() if line.strip()]
    except (KeyError, IndexError):
        raise DataError(f"{annotations} names a class that train/ does not have, or is malformed") from None
    test.targets = [label for _, label in test.samples]
    return Data(train, test, num_classes=len(train.classes), in_channels=3, image_size=64)


def _events(name: str, data_dir, timesteps: int, frames_by: str, size: int | None) -> Data:
    """An event dataset as frames (:mod:`nni_snn.data.events`), cached on disk after the first binning."""
    from nni_snn.data import events as ev

    spec = ev.EVENT_DATASETS.load(name)
    transform = ev.frames_transform(spec.sensor, timesteps, frames_by, size)  # bad settings fail before any reading
    if name == "digits-events":
        root, (recordings, labels) = None, ev.digits_events(ev.cache_base())
        splits = {split: ([recordings[i] for i in idx], labels[idx].tolist())
                  for split, idx in zip(("train", "test"), _digits_split(len(labels)))}
    else:
        root = _require_dir(data_dir, f"point it at the folder holding {spec.layout}")
        splits = {split: spec.split(root, split == "train") for split in ("train", "test")}
    settings = (timesteps, frames_by, size)
    train, test = (ev.CachedFrames(*splits[split], spec.read, transform,
                                   ev.cache_folder(name, root, split, settings, *splits[split]))
                   for split in ("train", "test"))
    if spec.fill_in_order:
        train.fill()
        test.fill()
        ev.read_gesture_file.cache_clear()  # the last recordings read stay out of the data loader workers
    return Data(train, test, num_classes=spec.classes, in_channels=2, image_size=size or spec.sensor[0],
                frames=timesteps)

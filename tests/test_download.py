"""MNIST and Fashion-MNIST: ``--download`` (torchvision's) from a mirror on this machine, never the internet, and the
folders ``--data-dir`` may name. The mirror is an HTTP server on 127.0.0.1 serving the idx files the test writes,
gzipped and named as on the official mirrors."""

from __future__ import annotations

import functools
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torchvision
from conftest import free_port
from support.idx_files import write_idx

from nni_snn.cli.main import main
from nni_snn.data.images import DataError, dataset_labels, load_dataset

TINY = ["--width", "2", "--cells", "3", "--batch-size", "64", "--no-progress", "--accelerator", "cpu"]
CLASS = {"mnist": "MNIST", "fashionmnist": "FashionMNIST"}


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the requests are recorded, not printed into the test's stderr
        self.server.requested.append(self.path)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """(the URL of a loopback HTTP server serving ``tmp_path/mirror``, that folder, the paths requested)."""
    for name in ("no_proxy", "NO_PROXY"):  # a proxy set in the environment must not be asked for 127.0.0.1
        monkeypatch.setenv(name, "127.0.0.1")
    folder = tmp_path / "mirror"
    write_idx(folder)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder, server.requested
    server.shutdown()
    server.server_close()
    thread.join()


def accept_the_mirrors_files(monkeypatch, dataset: str, folder) -> None:
    """torchvision checks every download against the official file's MD5 sum (its class attribute ``resources``),
    which the test's small files cannot match: here the sums are those of the files the test serves. Only the
    expected sums are replaced; the download, the check and the reading are what a user runs
    (test_the_official_sums_refuse_other_files shows the check at work)."""
    cls = getattr(torchvision.datasets, CLASS[dataset])
    monkeypatch.setattr(cls, "resources", [(name, hashlib.md5((folder / name).read_bytes()).hexdigest())
                                           for name, _ in cls.resources])


@pytest.mark.parametrize("dataset", ["mnist", "fashionmnist"])
def test_download_from_a_mirror_into_torchvisions_folder_then_read_offline(tmp_path, mirror, monkeypatch, dataset):
    url, served, requested = mirror
    accept_the_mirrors_files(monkeypatch, dataset, served)
    data = load_dataset(dataset, tmp_path / "data", download=True, mirror=url)
    raw = tmp_path / "data" / CLASS[dataset] / "raw"
    assert sorted(p.name for p in raw.glob("*.gz")) == sorted(p.name for p in served.iterdir())
    assert {path.lstrip("/") for path in requested if path.endswith(".gz")} == {p.name for p in served.iterdir()}
    assert (len(data.train), len(data.test), data.num_classes, data.image_size) == (60, 20, 10, 28)
    assert dataset_labels(data.test) == [c for c in range(10) for _ in range(2)]
    fetched = len(requested)
    # Offline afterwards: the folder given to --download, or torchvision's raw folder, is --data-dir; and --download
    # again finds the files there instead of fetching them anew.
    for data_dir, download in ((tmp_path / "data", False), (raw, False), (tmp_path / "data", True)):
        again = load_dataset(dataset, data_dir, download=download, mirror=url)
        assert dataset_labels(again.train) == dataset_labels(data.train)
    assert len(requested) == fetched
    # A download cut short (a file missing): --download fetches what is missing, and only that.
    for missing in raw.glob("t10k-labels-idx1-ubyte*"):
        missing.unlink()
    assert len(load_dataset(dataset, tmp_path / "data", download=True, mirror=url).test) == 20
    assert set(requested[fetched:]) == {"/t10k-labels-idx1-ubyte.gz"}


def test_the_command_downloads_from_mirror_and_trains(tmp_path, mirror, monkeypatch, capsys):
    url, served, _ = mirror
    accept_the_mirrors_files(monkeypatch, "fashionmnist", served)
    assert main(["retrain", "--baseline", "spiking-cnn", "--dataset", "fashionmnist", "--download", "--mirror", url,
                 "--data-dir", str(tmp_path / "data"), *TINY, "--epochs", "1",
                 "--output", str(tmp_path / "out")]) == 0
    assert (tmp_path / "data" / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").is_file()
    assert (tmp_path / "out" / "metrics.json").is_file()
    assert "--mirror" not in capsys.readouterr().err


def test_the_official_sums_refuse_other_files(tmp_path, mirror, capsys):
    """A mirror must serve the official files: the test's own fail their MD5 sum, in one line (after torchvision's
    progress output), and the file that failed is not left behind to be read as the dataset later."""
    url, _, _ = mirror
    argv = ["retrain", "--baseline", "spiking-cnn", "--dataset", "mnist", "--download", "--mirror", url,
            "--data-dir", str(tmp_path / "data"), *TINY, "--epochs", "1", "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"nni-snn: error: --download of MNIST from {url} failed") and "MD5" in last
    assert "Traceback" not in err
    assert not list((tmp_path / "data").rglob("*-ubyte*"))
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_cifar_from_a_mirror_is_checked_against_the_official_sum(tmp_path, mirror, capsys):
    url, served, requested = mirror
    (served / "cifar-10-python.tar.gz").write_bytes(b"not CIFAR-10")
    assert main(["retrain", "--baseline", "spiking-cnn", "--dataset", "cifar10", "--download", "--mirror", url,
                 "--data-dir", str(tmp_path / "data"), *TINY, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert (f"--download of cifar10 from {url}cifar-10-python.tar.gz failed: File not found or corrupted. (a mirror "
            "must serve the official file" in err.strip().splitlines()[-1]) and "Traceback" not in err
    assert "/cifar-10-python.tar.gz" in requested


def test_an_unreachable_mirror_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    assert main(["retrain", "--baseline", "spiking-cnn", "--dataset", "fashionmnist", "--download", "--mirror", url,
                 "--data-dir", str(tmp_path / "data"), *TINY, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"--download of FashionMNIST from {url} failed" in err.strip().splitlines()[-1]
    assert "Traceback" not in err


@pytest.mark.parametrize("flags, needle", [
    (["--dataset", "mnist"], ("mnist needs --data-dir, a folder holding its four idx files (e.g. torchvision's "
                             "MNIST/raw), or --download")),
    (["--dataset", "fashionmnist", "--data-dir", "{empty}"], "holds no Fashion-MNIST idx files, neither in it nor in"),
    (["--dataset", "mnist", "--data-dir", "{empty}/absent"], "absent is missing; pass --download to fetch them"),
    (["--dataset", "mnist", "--mirror", "http://127.0.0.1:9/"], ("--mirror names where --download fetches the "
                                                                "dataset from; add --download")),
    (["--dataset", "mnist", "--download", "--mirror", "mirror.example/mnist"], "--mirror must be an http:// or "),
    (["--dataset", "mnist", "--download", "--mirror", "file:///srv/mnist"], "--mirror must be an http:// or "),
    (["--dataset", "digits", "--download"], ("--download fetches mnist, fashionmnist, cifar10, cifar100; digits is "
                                            "read from the package itself")),
    (["--dataset", "imagefolder", "--download"], "imagefolder is read from --data-dir"),
])
def test_missing_data_and_misused_flags_are_one_line(tmp_path, capsys, flags, needle):
    (tmp_path / "empty").mkdir()
    flags = [flag.format(empty=tmp_path / "empty") for flag in flags]
    assert main(["retrain", "--baseline", "spiking-cnn", *flags, *TINY, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_torchvisions_raw_folder_and_the_folder_above_it_are_read(tmp_path):
    write_idx(tmp_path / "MNIST" / "raw", compress=False)  # torchvision keeps the files unpacked there
    for data_dir in (tmp_path, tmp_path / "MNIST" / "raw"):
        assert len(load_dataset("mnist", data_dir).train) == 60
    with pytest.raises(DataError, match="holds no Fashion-MNIST idx files"):  # MNIST's folder is not Fashion-MNIST's
        load_dataset("fashionmnist", tmp_path)

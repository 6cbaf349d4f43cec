"""Every input a user hands over, generated and mutated (hypothesis): arch.json files, ``--config`` files and their
layering with flags, command-line values, NNI trial parameters, idx files, event recordings and checkpoints; and
sizes, by real tiny searches and retrains (a few here, the grid in benchmarks/fuzz_sizes.py).

Each input must end in one line on stderr and exit code 2, or be accepted and work: never a traceback, a hang, or a
file already written that is changed or left half-written. The CLI is driven in-process (``nni_snn.cli.main.main``).

Profiles (``NNI_SNN_FUZZ``): ``fast`` (default, CI: about a minute and a half) and ``long`` (``make fuzz``). With
``NNI_SNN_FUZZ_COUNTS=FILE`` the inputs tried per kind, accepted and refused are written there as JSON
(benchmarks/results/fuzz/, the table in docs/security.md). :data:`FOUND` lists the failures fuzzing found; each is
fixed and kept below as an explicit example.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import io
import json
import math
import os
import signal
import struct
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from conftest import HAND_ARCH
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from benchmarks import fuzz_sizes  # the size grid's one home
from nni_snn.cli import main as cli
from nni_snn.cli.flags import resolve
from nni_snn.cli.options import MultitrialOptions, RetrainOptions, SearchOptions

PROFILE = os.environ.get("NNI_SNN_FUZZ", "fast")
# Examples per kind: the fast profile's count times this.
SCALE = {"fast": 1, "long": 10}[PROFILE]
# The fast profile draws the same inputs on every run (CI stays deterministic); the long one draws new ones each time.
settings.register_profile("fuzz", deadline=None, print_blob=True, database=None, derandomize=PROFILE == "fast",
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.load_profile("fuzz")
HANG_SECONDS = 60  # one input taking longer than this counts as a hang

# The failures fuzzing found, each fixed in the code and kept as an explicit example below.
FOUND = [
    {"kind": "arch.json (values)", "input": '"results": null (any non-object)',
     "was": "traceback (AttributeError) after part of show's output", "fix": "archfile.validate: objects"},
    {"kind": "arch.json (values)", "input": '"attention": [] (any unhashable value)',
     "was": "traceback (TypeError: unhashable type)", "fix": "archfile.validate"},
    {"kind": "arch.json (bytes)", "input": "the file in UTF-16", "was": "traceback (UnicodeDecodeError)",
     "fix": "archfile.load_arch reads bytes: UTF-8/16/32 as JSON allows, else one line"},
    {"kind": "arch.json (bytes)", "input": "100 kB of '['", "was": "traceback (RecursionError)",
     "fix": "archfile.load_arch"},
    {"kind": "arch.json (not a file)", "input": "a FIFO, or a symlink to /dev/zero",
     "was": "hang (reads forever)", "fix": "userfiles.read_user_file: regular files only, at most 16 MiB"},
    {"kind": "--config (bytes)", "input": "100 kB of '['", "was": "traceback (RecursionError) after 6 s",
     "fix": "userfiles.load_yaml: LibYAML's loader, which limits nesting"},
    {"kind": "--config (bytes)", "input": "9^9 values by YAML aliases under a known option",
     "was": "58 s and an error line of gigabytes", "fix": "errors.shown: values in error lines cut short"},
    {"kind": "event files", "input": "an N-MNIST recording without events",
     "was": "traceback (TypeError: tonic's Compose skips ToFrames)", "fix": "events.ToFrames downsamples itself"},
    {"kind": "checkpoints", "input": "state_dict a list, or with non-string keys",
     "was": "traceback (AttributeError)", "fix": "estimate.estimate_energy"},
    {"kind": "checkpoints", "input": "an empty file (EOFError without a message)",
     "was": "traceback (IndexError while writing the error line)", "fix": "estimate.estimate_energy"},
    # Found by the long profile:
    {"kind": "--config (yaml)", "input": "arch: true (a path option given a number, list or mapping)",
     "was": "traceback (TypeError in pathlib)", "fix": "options: check='path' on arch, data_dir, output, working_dir"},
    {"kind": "checkpoints", "input": "a checkpoint with stray bytes in its pickle",
     "was": "traceback (IndexError: pop from empty list, in torch's weights-only unpickler)",
     "fix": "estimate.estimate_energy: anything torch.load raises is a damaged checkpoint"},
    {"kind": "command-line values", "input": "show --num-classes 99999999999999999999999",
     "was": "traceback (TypeError: overflow in torch.empty)", "fix": "memory.on_meta"},
    {"kind": "command-line values", "input": "show --width in the thousands (weights of many GB, within memory)",
     "was": "hang (over 60 s allocating weights only to count them)",
     "fix": "show counts parameters on the meta device; memory.check_parameters before --dataset builds it"},
    {"kind": "command-line values", "input": "front '\\r' (a control character in a path)",
     "was": "the error line broken in two by the carriage return", "fix": "cli: control characters escaped"},
]

COUNTS: dict[str, Counter] = {}


def examples(n: int):
    return settings(max_examples=n * SCALE)


@pytest.fixture(scope="module", autouse=True)
def _write_counts():
    started = time.monotonic()
    yield
    target = os.environ.get("NNI_SNN_FUZZ_COUNTS")
    if target:
        kinds = {kind: {"tried": sum(c.values()), "accepted": c["accepted"], "refused": c["refused"]}
                 for kind, c in sorted(COUNTS.items())}
        total = {key: sum(k[key] for k in kinds.values()) for key in ("tried", "accepted", "refused")}
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps({
            "profile": PROFILE, "seconds": round(time.monotonic() - started), "kinds": kinds, "total": total,
            "failures_found_and_fixed": FOUND}, indent=2) + "\n")


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    def hung(signum, frame):
        raise AssertionError(f"an input took over {seconds} s (a hang)")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(kind: str, argv: list[str], capsys) -> str:
    """Run the CLI on ``argv``: exit 0 ("accepted"), or exit 2 with exactly one error line ("refused")."""
    capsys.readouterr()
    with no_hang():
        code = cli.main(argv)  # an exception here is a traceback a user would see: the test fails
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.strip() and not line.startswith("nni-snn: warning:")]
    if code == 0:
        result = "accepted"
    else:
        assert code == 2, (code, err)
        assert len(err) == 1 and err[0].startswith("nni-snn: error: "), err
        result = "refused"
    COUNTS.setdefault(kind, Counter())[result] += 1
    return result


def fresh(tmp_path: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=tmp_path))


# ---- values -------------------------------------------------------------------------------------------------------

FLOATS = st.floats(allow_nan=True, allow_infinity=True)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), FLOATS,
                    st.text(max_size=12), st.sampled_from(["", "nan", "inf", "-1", "0", "1e999", "\x00", "é",
                                                            "lif", "ma", "digits", "all", "auto", "32"]))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)


def valid_arch() -> dict:
    from nni_snn.files.archfile import load_arch

    return load_arch(copy.deepcopy(HAND_ARCH))


ARCH_PATHS = st.sampled_from([(), ("format",), ("version",), ("attention",), ("attention_cells",), ("timesteps",),
                              ("genotype",), ("genotype", "normal"), ("genotype", "reduce", 0),
                              ("genotype", "normal", 3, 0), ("genotype", "normal", 5, 1), ("neuron",),
                              ("neuron", "kind"), ("neuron", "tau"), ("neuron", "v_threshold"),
                              ("neuron", "surrogate"), ("neuron", "surrogate_alpha"), ("neuron", "detach_reset"),
                              ("normalize",), ("cell_norm",), ("search",), ("results",)])


@st.composite
def mutated_arch(draw) -> dict:
    """A valid arch.json with a few values replaced by any JSON value, or removed."""
    arch = valid_arch()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(ARCH_PATHS)
        parent, key = arch, None
        try:
            for key in path[:-1]:
                parent = parent[key]
            key = path[-1] if path else None
        except (KeyError, IndexError, TypeError):
            continue
        if key is None:
            continue
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(key, None)
        else:
            try:
                parent[key] = draw(JSON_VALUES)
            except (IndexError, TypeError):
                continue
    return arch


def text_mutations(text: str):
    """Truncations, wrong encodings and stray bytes of a valid file's text."""
    raw = text.encode()
    return st.one_of(
        st.integers(0, len(raw)).map(lambda n: raw[:n]),
        st.sampled_from([text.encode("utf-16"), text.encode("utf-32"), b"\xef\xbb\xbf" + raw,
                         text.replace('"', "\u201c").encode(), raw.replace(b"2", b"NaN", 1),
                         raw.replace(b"2", b"Infinity", 1), raw.replace(b"2", b"1e999", 1),
                         raw.replace(b"2", b"-0", 1), b"[" * 100_000, b"{\"a\":" * 50_000, b"\x00" * 64,
                         "é".encode("latin-1") + raw]),
        st.tuples(st.integers(0, len(raw)), st.binary(min_size=1, max_size=8)).map(
            lambda cut: raw[:cut[0]] + cut[1] + raw[cut[0]:]),
    )


def write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


SHOW = ["--width", "4", "--cells", "3"]


# ---- arch.json ----------------------------------------------------------------------------------------------------

@examples(40)
@example(arch={**valid_arch(), "results": None})
@example(arch={**valid_arch(), "attention": []})
@given(arch=mutated_arch())
def test_fuzz_arch_values(arch, tmp_path, capsys):
    path = write(fresh(tmp_path), "arch.json", json.dumps(arch))
    outcome("arch.json (values)", ["show", str(path), *SHOW], capsys)


@examples(30)
@example(data=json.dumps(HAND_ARCH).encode("utf-16"))
@example(data=b"[" * 100_000)
@given(data=text_mutations(json.dumps(HAND_ARCH, indent=1)))
def test_fuzz_arch_bytes(data, tmp_path, capsys):
    path = write(fresh(tmp_path), "arch.json", data)
    outcome("arch.json (bytes)", ["show", str(path), *SHOW], capsys)


@pytest.mark.parametrize("what", ["directory", "dangling symlink", "symlink to a directory", "/dev/zero",
                                  "fifo", "empty", "huge"])
def test_arch_file_that_is_not_a_file(what, tmp_path, capsys):
    path = tmp_path / "arch.json"
    if what == "directory":
        path.mkdir()
    elif what == "dangling symlink":
        path.symlink_to(tmp_path / "missing")
    elif what == "symlink to a directory":
        path.symlink_to(tmp_path)
    elif what == "/dev/zero":  # reading it never ends
        path.symlink_to("/dev/zero")
    elif what == "fifo":  # opening it waits for a writer
        os.mkfifo(path)
    elif what == "empty":
        path.write_text("")
    else:  # a valid file padded to 64 MiB
        path.write_text(json.dumps(HAND_ARCH) + " " * (64 << 20))
    assert outcome("arch.json (not a file)", ["show", str(path), *SHOW], capsys) == "refused"
    retrain = ["retrain", "--arch", str(path), "--output", str(tmp_path / "out"), "--epochs", "1"]
    assert outcome("arch.json (not a file)", retrain, capsys) == "refused"


# ---- --config files, flags and NNI trial parameters ----------------------------------------------------------------

def option_names(cls) -> list[str]:
    import dataclasses

    return [f.name for f in dataclasses.fields(cls)]


COMMANDS = {"search": SearchOptions, "retrain": RetrainOptions}
KEYS = st.one_of(st.sampled_from(sorted(set(option_names(SearchOptions)) | set(option_names(RetrainOptions)))),
                 st.text(max_size=10))
CONFIGS = st.dictionaries(KEYS, JSON_VALUES, max_size=5)


@pytest.fixture
def runs_recorded(monkeypatch):
    """The runs that the options would start, recorded instead of trained: what is fuzzed here is reading, layering
    and checking the options (tests/test_search.py and test_retrain.py train with them)."""
    import nni_snn.commands.retrain
    import nni_snn.commands.search

    ran = []
    monkeypatch.setattr(nni_snn.commands.search, "run_search", lambda opts, output, trial: ran.append(opts))
    monkeypatch.setattr(nni_snn.commands.retrain, "run_retrain", lambda opts, output, trial: ran.append(opts))
    return ran


def check_config_round_trip(output: Path, command: str, ran: list, capsys) -> None:
    """An accepted run wrote config.yaml in full, and reading it back gives the same options."""
    written = output / "config.yaml"
    again = yaml.safe_load(written.read_text())
    assert again["output"] == str(output)
    before = ran[0].as_dict()
    ran.clear()
    assert cli.main([command, "--config", str(written)]) == 0, capsys.readouterr().err
    after = ran[0].as_dict()
    unrecorded = ("config", "resume")  # config.yaml leaves them out on purpose (nni_snn.cli.main._settings)
    assert {k: v for k, v in after.items() if k not in unrecorded} == \
        {k: v for k, v in before.items() if k not in unrecorded}


@examples(60)
@example(command="retrain", config={"arch": True}, fmt="yaml")
@example(command="search", config={"output": ["x"], "data_dir": 5}, fmt="json")
@given(command=st.sampled_from(sorted(COMMANDS)), config=CONFIGS, fmt=st.sampled_from(["yaml", "json"]))
def test_fuzz_config_files(command, config, fmt, tmp_path, capsys, runs_recorded, hand_arch_file):
    folder = fresh(tmp_path)
    if command == "retrain" and "arch" not in config and "baseline" not in config:
        config["arch"] = str(hand_arch_file)
    try:
        text = yaml.safe_dump(config) if fmt == "yaml" else json.dumps(config)
    except (ValueError, yaml.YAMLError):
        return  # not writable as such a file (e.g. NaN in strict JSON)
    path = write(folder, f"config.{fmt}", text)
    output = folder / "out"
    kept = write(folder, "kept.txt", "already written")
    runs_recorded.clear()
    result = outcome(f"--config ({fmt})", [command, "--config", str(path), "--output", str(output)], capsys)
    assert kept.read_text() == "already written"
    if result == "accepted":
        check_config_round_trip(output, command, runs_recorded, capsys)
    elif (output / "config.yaml").exists():  # written before a check that needs the file (retrain's --arch)
        assert isinstance(yaml.safe_load((output / "config.yaml").read_text()), dict)  # complete, not half-written


@examples(30)
@example(data=b"[" * 100_000)
@given(data=text_mutations(yaml.safe_dump({"width": 4, "cells": 3, "epochs": 1, "dataset": "digits",
                                           "tau": 0.5, "neuron": "lif"})))
def test_fuzz_config_bytes(data, tmp_path, capsys, runs_recorded):
    path = write(fresh(tmp_path), "config.yaml", data)
    outcome("--config (bytes)", ["search", "--config", str(path), "--output", str(path.parent / "out")], capsys)


# 9^9 values by YAML aliases, under option names (checked before any value is looked at); dataset holds them all.
_KEYS = ["lr", "seed", "accelerator", "num_workers", "cells", "epochs", "batch_size", "width"]
BILLION_LAUGHS = f"{_KEYS[0]}: &k0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{key}: &k{i + 1} [{', '.join([f'*k{i}'] * 9)}]\n" for i, key in enumerate(_KEYS[1:])) + \
    f"dataset: [{', '.join(['*k7'] * 9)}]\n"


def test_config_of_nested_aliases(tmp_path, capsys, runs_recorded):
    """The error names the option without writing its 9^9 values out."""
    path = write(tmp_path, "bomb.yaml", BILLION_LAUGHS)
    assert outcome("--config (bytes)", ["search", "--config", str(path)], capsys) == "refused"
    assert len(capsys.readouterr().err) < 1000


def flag_values():
    return st.one_of(st.sampled_from(["", "-1", "0", "1", "2", "nan", "inf", "-inf", "1e999", "3.5", "true",
                                      "none", "None", "\x00", "é", "lif", "ma", "digits", " 4", "0x10",
                                      "99999999999999999999999"]), st.text(max_size=6))


FLAGS = {command: [name.replace("_", "-") for name in option_names(cls)
                   if name not in ("output", "config", "resume", "download", "progress", "verbose")]
         for command, cls in COMMANDS.items()}


@examples(60)
@given(command=st.sampled_from(sorted(COMMANDS)), data=st.data())
def test_fuzz_command_line_values(command, data, tmp_path, capsys, runs_recorded, hand_arch_file):
    flags = data.draw(st.lists(st.sampled_from(FLAGS[command]), min_size=1, max_size=3, unique=True))
    argv = [command, "--output", str(fresh(tmp_path) / "out")]
    if command == "retrain" and "arch" not in flags and "baseline" not in flags:
        argv += ["--arch", str(hand_arch_file)]
    for flag in flags:
        argv += [f"--{flag}", data.draw(flag_values())]
    runs_recorded.clear()
    if outcome("command-line values", argv, capsys) == "accepted":
        check_config_round_trip(Path(argv[2]), command, runs_recorded, capsys)


@examples(30)
@given(values=st.lists(flag_values(), min_size=1, max_size=4), data=st.data())
def test_fuzz_other_commands(values, data, tmp_path, capsys, hand_arch_file):
    """show's sizes, experiment's and front's arguments (none of them start anything on an accepted value: show only
    counts parameters, experiment has no config file, front finds no run)."""
    command = data.draw(st.sampled_from(["show", "experiment", "front"]))
    if command == "show":
        flags = data.draw(st.lists(st.sampled_from(["--width", "--cells", "--num-classes", "--in-channels",
                                                    "--timesteps", "--e-ac-pj"]),
                                   min_size=len(values), max_size=len(values)))
        argv = ["show", str(hand_arch_file), *[x for pair in zip(flags, values) for x in pair]]
    elif command == "experiment":
        argv = ["experiment", str(fresh(tmp_path) / "missing.yml"), "--port", values[0], "--timeout",
                values[-1]]
    else:
        argv = ["front", *values, "--output", str(fresh(tmp_path) / "front.png")]
    outcome("command-line values", argv, capsys)


@pytest.mark.parametrize("name", ["\r", "a\u2028b", "tab\there", "nul\x1b[2J"])
def test_control_characters_in_a_path_stay_on_one_line(name, tmp_path, capsys):
    """Found by the long profile: ``front '\\r'`` printed its error over two lines."""
    assert outcome("command-line values", ["front", name, "--output", str(tmp_path / "front.png")],
                   capsys) == "refused"


@examples(60)
@given(command=st.sampled_from(["search", "retrain", "multitrial"]), params=CONFIGS)
def test_fuzz_nni_trial_parameters(command, params, hand_arch_file):
    """The tuner's parameters, the last layer of the options (nni_snn.cli.main._prepare hands them to resolve)."""
    from nni_snn.errors import USER_ERRORS

    cls = {"search": SearchOptions, "retrain": RetrainOptions, "multitrial": MultitrialOptions}[command]
    args = cli.build_parser().parse_args([command] + (["--arch", str(hand_arch_file)] if command == "retrain"
                                                      else []))
    kind = COUNTS.setdefault("NNI trial parameters", Counter())
    with no_hang():
        try:
            resolve(cls, args, params)
        except USER_ERRORS as err:
            assert "\n" not in cli._one_line(err)
            kind["refused"] += 1
            return
    kind["accepted"] += 1


# ---- idx files (Fashion-MNIST) ---------------------------------------------------------------------------------------

def idx(magic: int, shape: tuple, body: bytes) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in shape) + body


def fashion_files(n: int = 70) -> dict[str, bytes]:
    images = bytes(range(256)) * (n * 784 // 256 + 1)
    labels = bytes(i % 10 for i in range(n))
    return {"train-images-idx3-ubyte": idx(0x0803, (n, 28, 28), images[:n * 784]),
            "train-labels-idx1-ubyte": idx(0x0801, (n,), labels),
            "t10k-images-idx3-ubyte": idx(0x0803, (n, 28, 28), images[:n * 784]),
            "t10k-labels-idx1-ubyte": idx(0x0801, (n,), labels)}


@st.composite
def mutated_fashion(draw) -> dict[str, bytes]:
    files = fashion_files()
    name = draw(st.sampled_from(sorted(files)))
    raw = files[name]
    how = draw(st.sampled_from(["truncate", "header", "shape", "bytes", "gzip", "labels", "empty"]))
    if how == "truncate":
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    elif how == "header":
        raw = struct.pack(">I", draw(st.integers(0, 2**32 - 1))) + raw[4:]
    elif how == "shape":
        dims = (len(raw) and (3 if "images" in name else 1))
        shape = draw(st.lists(st.integers(0, 2**32 - 1), min_size=dims, max_size=dims))
        raw = raw[:4] + b"".join(struct.pack(">I", n) for n in shape) + raw[4 + 4 * dims:]
    elif how == "bytes":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=16)) + raw[at + 1:]
    elif how == "gzip":
        files.pop(name)
        name += ".gz"
        raw = gzip.compress(raw)[:draw(st.integers(0, 200))] if draw(st.booleans()) else gzip.compress(raw)
    elif how == "labels":
        raw = raw[:8] + bytes(draw(st.integers(0, 255)) for _ in range(70))
    else:
        raw = b""
    files[name] = raw
    return files


@examples(40)
@given(files=mutated_fashion())
def test_fuzz_idx_files(files, tmp_path, capsys, hand_arch_file):
    folder = fresh(tmp_path)
    for name, raw in files.items():
        write(folder, name, raw)
    argv = ["show", str(hand_arch_file), *SHOW, "--dataset", "fashionmnist", "--data-dir", str(folder),
            "--batches", "1"]
    outcome("idx files", argv, capsys)


# ---- event recordings (N-MNIST) ------------------------------------------------------------------------------------

def nmnist_event(x: int, y: int, polarity: int, t: int) -> bytes:
    return bytes([x, y, (polarity << 7) | ((t >> 16) & 127), (t >> 8) & 255, t & 255])


VALID_RECORDING = b"".join(nmnist_event(i % 34, (3 * i) % 34, i % 2, 40 * i) for i in range(200))


@st.composite
def mutated_recording(draw) -> bytes:
    raw = VALID_RECORDING
    how = draw(st.sampled_from(["truncate", "bytes", "events", "empty", "random"]))
    if how == "truncate":
        return raw[:draw(st.integers(0, len(raw)))]
    if how == "bytes":
        at = draw(st.integers(0, len(raw) - 1))
        return raw[:at] + draw(st.binary(min_size=1, max_size=32)) + raw[at:]
    if how == "events":  # coordinates off the 34x34 sensor, time stamps going back, overflow markers
        return b"".join(nmnist_event(draw(st.integers(0, 255)), draw(st.integers(0, 255)), draw(st.integers(0, 1)),
                                     draw(st.integers(0, 2**23 - 1))) for _ in range(draw(st.integers(1, 30))))
    if how == "empty":
        return b""
    return draw(st.binary(max_size=600))


@examples(30)
@example(recording=b"", where="Test")
@given(recording=mutated_recording(), where=st.sampled_from(["Train", "Test"]))
def test_fuzz_event_files(recording, where, tmp_path, capsys, hand_arch_file):
    folder = fresh(tmp_path)
    for split in ("Train", "Test"):
        for digit in (3, 7):
            (folder / split / str(digit)).mkdir(parents=True)
            write(folder / split / str(digit), "00001.bin", VALID_RECORDING)
    write(folder / where / "3", "00002.bin", recording)
    argv = ["show", str(hand_arch_file), *SHOW, "--dataset", "nmnist", "--data-dir", str(folder),
            "--batches", "1", "--timesteps", "2"]
    outcome("event files", argv, capsys)


def test_event_recording_that_is_a_symlink_to_a_directory(tmp_path, capsys, hand_arch_file):
    for split in ("Train", "Test"):
        for digit in range(10):
            (tmp_path / split / str(digit)).mkdir(parents=True)
            write(tmp_path / split / str(digit), "00001.bin", VALID_RECORDING)
    (tmp_path / "Test" / "0" / "00002.bin").symlink_to(tmp_path)
    argv = ["show", str(hand_arch_file), *SHOW, "--dataset", "nmnist", "--data-dir", str(tmp_path), "--batches", "1"]
    assert outcome("event files", argv, capsys) == "refused"


# ---- checkpoints ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hand_arch_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("arch") / "arch.json"
    path.write_text(json.dumps(HAND_ARCH))
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, hand_arch_file) -> bytes:
    """A real retrain checkpoint of the hand architecture at width 4, 3 cells, on digits."""
    out = tmp_path_factory.mktemp("retrain")
    assert cli.main(["retrain", "--arch", str(hand_arch_file), *SHOW, "--epochs", "1", "--batch-size", "256",
                     "--subset-per-class", "5", "--output", str(out), "--no-progress"]) == 0
    return (out / "checkpoints" / "last.ckpt").read_bytes()


def saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@st.composite
def mutated_checkpoint(draw, good: bytes) -> bytes:
    how = draw(st.sampled_from(["truncate", "bytes", "state", "top"]))
    if how == "truncate":
        return good[:draw(st.integers(0, len(good) - 1))]
    if how == "bytes":
        at = draw(st.integers(0, len(good) - 1))
        return good[:at] + draw(st.binary(min_size=1, max_size=16)) + good[at + 1:]
    state = torch.load(io.BytesIO(good), map_location="cpu", weights_only=True)
    if how == "top":
        return saved(draw(st.sampled_from([[], 0, "state_dict", {"state_dict": []}, {"state_dict": 3},
                                           {"state_dict": {1: torch.zeros(1)}}, {"state_dict": None},
                                           {"epoch": 1}])))
    weights = state["state_dict"]
    key = draw(st.sampled_from(sorted(weights)))
    change = draw(st.sampled_from(["shape", "dtype", "nan", "inf", "drop", "extra", "python"]))
    tensor = weights[key]
    if change == "shape":
        weights[key] = torch.zeros(*[n + 1 for n in tensor.shape] or [2])
    elif change == "dtype":
        weights[key] = tensor.to(torch.int64) if tensor.is_floating_point() else tensor.double()
    elif change in ("nan", "inf"):
        weights[key] = torch.full_like(tensor.double(), math.nan if change == "nan" else math.inf).to(tensor.dtype) \
            if tensor.is_floating_point() else tensor
    elif change == "drop":
        weights.pop(key)
    elif change == "extra":
        weights["_model.extra"] = torch.zeros(3)
    else:
        weights[key] = draw(st.sampled_from([None, 1.5, "w", [1, 2], {"a": 1}]))
    return saved(state)


@examples(30)
@given(data=st.data())
def test_fuzz_checkpoints(data, checkpoint, tmp_path, capsys, hand_arch_file):
    path = write(fresh(tmp_path), "last.ckpt", data.draw(mutated_checkpoint(checkpoint)))
    argv = ["show", str(hand_arch_file), *SHOW, "--dataset", "digits", "--batches", "1", "--checkpoint", str(path)]
    outcome("checkpoints", argv, capsys)


@pytest.mark.parametrize("found", ["empty", "state_dict a list", "non-string keys"])
def test_checkpoints_fuzzing_found(found, tmp_path, capsys, hand_arch_file):
    raw = {"empty": b"", "state_dict a list": saved({"state_dict": []}),
           "non-string keys": saved({"state_dict": {1: torch.zeros(1)}})}[found]
    path = write(tmp_path, "last.ckpt", raw)
    argv = ["show", str(hand_arch_file), *SHOW, "--dataset", "digits", "--batches", "1", "--checkpoint", str(path)]
    assert outcome("checkpoints", argv, capsys) == "refused"


def test_the_unchanged_checkpoint_is_accepted(checkpoint, tmp_path, capsys, hand_arch_file):
    path = write(tmp_path, "last.ckpt", checkpoint)
    argv = ["show", str(hand_arch_file), *SHOW, "--dataset", "digits", "--batches", "1", "--checkpoint", str(path)]
    assert outcome("checkpoints", argv, capsys) == "accepted"


# ---- sizes: real tiny searches and retrains (benchmarks/fuzz_sizes.py; its whole grid: make fuzz) -----------------

def _sizes(**changed) -> dict:
    return {"cells": 3, "width": 2, "timesteps": 2, "images": "digits 8x8", "partial_channels": 1, "space": "full",
            "attention": "ma", "head": "global", "stem_stride": 1, "cell_nodes": 4, **changed}


SIZES = [  # (combination, its outcome): smallest depths, images smaller than two reductions, the refusals
    (_sizes(cells=1, cell_nodes=1, timesteps=1, attention="none"), "ok"),  # was a KeyError after the epoch
    (_sizes(cells=2, width=4, partial_channels=2, space="deployable", attention="none", head="spatial",
            stem_stride=2, images="folder 3x3", cell_nodes=2), "ok"),
    (_sizes(cells=4, width=1, images="folder 1x1", attention="ct", cell_nodes=3), "ok"),
    (_sizes(width=3, partial_channels=2), "refused: --partial-channels 2 must divide --width 3"),
    (_sizes(space="deployable", attention="ma"), "refused: --space deployable needs --attention none"),
]


@pytest.mark.parametrize("row, expected", SIZES, ids=[f"{r['cells']} cells, {r['images']}, {e.split(':')[0]}"
                                                      for r, e in SIZES])
def test_sizes_export_and_retrain_or_are_refused_before_training(row, expected, tmp_path):
    """A search at these sizes exports an arch.json that retrains at them, or the search refuses in one line (exit
    2) before its first training step; never a traceback, nor a refusal after training."""
    outcome, detail = fuzz_sizes.run_combination(row, tmp_path)
    assert outcome == expected.split(":")[0], detail
    assert expected.partition(": ")[2] in detail

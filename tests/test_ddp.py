"""Search and retrain across processes (Lightning's DDP on the CPU, gloo): 2 devices on one machine, and 2 nodes of one
process each on loopback. Each run goes through ``tests/support/record_run.py``, the command line with recorders: every
process saves the alpha it held after every step, its trained parameters and the files it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, free_port

RECORD = ROOT / "tests" / "support" / "record_run.py"
# 200 training images (100 weight + 100 alpha), 2 steps an epoch at 50 images a step: in one process at
# --batch-size 50, in two at 25 each.
DATA = ["--dataset", "digits", "--subset-per-class", "20", "--width", "4", "--cells", "3", "--no-progress",
        "--accelerator", "cpu"]


def _run(folder: Path, *argv: str, env: dict | None = None, wait: bool = True):
    command = [sys.executable, str(RECORD), str(folder), *argv]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _records(folder: Path, kind: str, ranks: int = 2) -> list[dict]:
    return [torch.load(folder / f"{kind}_rank{r}.pt", weights_only=True) for r in range(ranks)]


def _writes(folder: Path, rank: int) -> list[str]:
    return json.loads((folder / f"writes_rank{rank}.json").read_text())


def _same_alpha(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _same_parameters(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_search_on_two_processes_keeps_one_alpha_and_counts_all_samples(tmp_path):
    """Every step: both processes hold bit-identical alpha, although each trained on its own half of the batch (DDP
    averages alpha's gradient like the weights'); the two halves together are the batch one process takes at twice
    the batch size; the epoch's counts are over all 100 validation images; only rank 0 writes and prints."""
    two, one = tmp_path / "two", tmp_path / "one"
    result = _run(two / "record", "search", *DATA, "--epochs", "1", "--batch-size", "25", "--devices", "2",
                  "--strategy", "ddp", "--output", str(two / "out"))
    _run(one / "record", "search", *DATA, "--epochs", "1", "--batch-size", "50", "--output", str(one / "out"))

    rank0, rank1 = _records(two / "record", "search")
    (single,) = _records(one / "record", "search", ranks=1)
    assert len(rank0["steps"]) == len(rank1["steps"]) == len(single["steps"]) == 2
    for a, b, alone in zip(rank0["steps"], rank1["steps"], single["steps"]):
        assert _same_alpha(a["alpha"], b["alpha"])
        # The test could fail: the processes trained on different images (their losses differ), so alpha's gradients
        # differed before DDP averaged them.
        assert not torch.equal(a["labels"], b["labels"]) and a["loss"] != b["loss"]
        assert sorted(torch.cat([a["labels"], b["labels"]]).tolist()) == sorted(alone["labels"].tolist())
    first, last = rank0["steps"][0]["alpha"], rank0["steps"][-1]["alpha"]
    assert any(not torch.equal(first[k], last[k]) for k in first)  # alpha did move
    assert _same_parameters(rank0["final"], rank1["final"])

    assert result.stdout.count("search: accuracy") == 1  # one result line, rank 0's
    assert _writes(two / "record", 1) == []
    written = {Path(p).name for p in _writes(two / "record", 0)}
    assert {"arch.json", "metrics.json", "config.yaml", "normal.png", "reduce.png", "last.ckpt"} <= written
    assert len(list((two / "out" / "tensorboard" / "version_0").glob("events.out.tfevents.*"))) == 1

    # Counts and accuracies reduced over the processes. The counts are summed, not averaged, first: every epoch
    # counts all 100 validation images, as one process does. The numbers are not bit-equal to one process's, and
    # cannot be: batch norm normalises each process's 25 images by their own statistics instead of the 50 together's,
    # so the two runs train slightly different networks (measured: training counts 0.03 % apart, validation spikes 4 %,
    # SOPs 5 % after this epoch; after a second one 0.2 %, 10 % and 15 %, accuracy one image of 100 apart). Hence a
    # tolerance of 30 % on validation counts, 2 % on the training counts, and one image of 100 on accuracy; the
    # summing itself is exact (test_counts_summed_over_processes_equal_one_process_s). MACs depend on shapes only.
    ddp, alone = (json.loads((run / "out" / "metrics.json").read_text())["history"] for run in (two, one))
    for a, b in zip(ddp, alone):
        assert a["samples"] == b["samples"] == 100
        assert a["macs_per_sample"] == b["macs_per_sample"]
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=0.011)
        for key in ("spikes_per_sample", "sops_per_sample", "energy_uj_per_sample"):
            assert a[key] == pytest.approx(b[key], rel=0.3)
            assert a[f"train_{key}"] == pytest.approx(b[f"train_{key}"], rel=0.02)


def _on_two_nodes(record: Path, *argv: str) -> list[tuple[str, str]]:
    """Run ``nni-snn argv`` as node 0 and node 1 of a loopback cluster (Lightning's MASTER_ADDR, MASTER_PORT,
    NODE_RANK, WORLD_SIZE); both must succeed. Their (stdout, stderr)."""
    port = free_port()
    nodes = [_run(record, *argv, wait=False, env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                                                  "NODE_RANK": str(rank), "WORLD_SIZE": "2"})
             for rank in (0, 1)]
    results = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, results):
        assert node.returncode == 0, err[-3000:]
    return results


@pytest.mark.slow
def test_two_nodes_on_loopback_search_and_retrain_alike_and_node_0_writes(tmp_path):
    """Two ``nni-snn search --num-nodes 2`` processes, started as two machines would be (Lightning's MASTER_ADDR,
    MASTER_PORT, NODE_RANK, WORLD_SIZE), with a retrain after the search: they hold the same alpha every step and end
    with the same search and retrain parameters; node 0 writes everything, node 1 nothing. --output is one folder,
    as a shared file system is on real nodes: the retrain reads arch.json in every process."""
    out, record = tmp_path / "out", tmp_path / "record"
    results = _on_two_nodes(record, "search", *DATA, "--epochs", "1", "--batch-size", "25", "--devices", "1",
                            "--num-nodes", "2", "--strategy", "ddp", "--retrain-epochs", "1", "--retrain-width", "4",
                            "--retrain-cells", "3", "--retrain-batch-size", "25", "--output", str(out))

    search0, search1 = _records(record, "search")
    assert all(_same_alpha(a["alpha"], b["alpha"]) for a, b in zip(search0["steps"], search1["steps"]))
    assert not torch.equal(search0["steps"][0]["labels"], search1["steps"][0]["labels"])
    assert _same_parameters(search0["final"], search1["final"])
    retrain0, retrain1 = _records(record, "retrain")
    assert _same_parameters(retrain0["final"], retrain1["final"])

    assert "search: accuracy" in results[0][0] and "retrain: test accuracy" in results[0][0]
    assert "accuracy" not in results[1][0]
    assert _writes(record, 1) == []
    written = {str(Path(p).relative_to(out)) for p in _writes(record, 0)}
    assert {"arch.json", "metrics.json", "retrain/metrics.json", "retrain/checkpoints/best.ckpt"} <= written
    arch = json.loads((out / "arch.json").read_text())
    assert arch["search"]["batch_size"] == 25
    # All of the validation split: a tenth of the 200 training images (--subset-per-class 20), over both nodes.
    assert json.loads((out / "retrain" / "metrics.json").read_text())["history"][-1]["samples"] == 20


@pytest.mark.slow
def test_a_retrain_on_two_nodes_on_loopback(tmp_path, hand_arch):
    """``nni-snn retrain --num-nodes 2`` alone: both nodes end with the same weights, node 0 writes."""
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(hand_arch))
    out, record = tmp_path / "out", tmp_path / "record"
    results = _on_two_nodes(record, "retrain", "--arch", str(arch), *DATA, "--epochs", "1", "--batch-size", "25",
                            "--devices", "1", "--num-nodes", "2", "--strategy", "ddp", "--output", str(out))
    first, second = _records(record, "retrain")
    assert not torch.equal(first["steps"][0]["labels"], second["steps"][0]["labels"])
    assert _same_parameters(first["final"], second["final"])
    assert results[0][0].count("accuracy") == 1 and "accuracy" not in results[1][0]
    assert _writes(record, 1) == [] and any(p.endswith("metrics.json") for p in _writes(record, 0))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["history"][-1]["samples"] == 20  # the whole validation split, a tenth of the 200 training images
    assert metrics["split"]["test_images"] == 359 and 0 <= metrics["test_accuracy"] <= 1


def _network_and_batches(arch: dict):
    """A fixed network in evaluation mode and four batches of 30 digits: what every process of the count test sees."""
    from nni_snn import build_network
    from nni_snn.data.images import load_dataset

    torch.manual_seed(0)
    net = build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1).eval()
    images = load_dataset("digits", None, timesteps=2).test
    return net, [torch.stack([images[i][0] for i in range(start, start + 30)]) for start in (0, 30, 60, 90)]


def _count_share(rank: int, arch: dict, port: int, out: str) -> None:
    """One of two gloo processes: counts its own two batches, then sums over both as the reporter does."""
    import torch.distributed as dist

    from nni_snn.snn.spikes import SpikeMonitor
    from nni_snn.train.lightning import cell_group

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        net, batches = _network_and_batches(arch)
        monitor = SpikeMonitor(net, group_of=cell_group)
        with torch.no_grad(), monitor.counting("val"):
            for x in batches[2 * rank:2 * rank + 2]:
                net(x)

        def reduce(flat):
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            return flat

        summed, own = monitor.summary("val", reduce), monitor.summary("val")
        Path(out, f"rank{rank}.json").write_text(json.dumps({"summed": summed, "own": own}))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_counts_summed_over_processes_equal_one_process_s(tmp_path, hand_arch):
    """Spikes, SOPs, MACs, firing rates and samples of two processes, each counting its half of the images, summed
    (nni_snn.snn.spikes.SpikeMonitor.summary's reduce, which the reporter passes under DDP): those of one process counting
    all the images in the same batches. Counts are integers held in float64, so the sums are exact: the tolerance,
    1e-12 relative, only allows for the last bit of the divisions."""
    import multiprocessing

    from nni_snn.snn.spikes import SpikeMonitor
    from nni_snn.train.lightning import cell_group

    port = free_port()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_count_share, args=(rank, hand_arch, port, str(tmp_path))) for rank in (0, 1)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
        assert p.exitcode == 0

    net, batches = _network_and_batches(hand_arch)
    monitor = SpikeMonitor(net, group_of=cell_group)
    with torch.no_grad(), monitor.counting("val"):
        for x in batches:
            net(x)
    alone = monitor.summary("val")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert alone["samples"] == 120 and alone["spikes_per_sample"] > 0 and alone["sops_per_sample"] > 0
    def flat(summary: dict) -> dict:  # every count (the profile's name aside)
        return {f"{k}.{g}": v for k, value in summary.items() if k != "energy_profile"
                for g, v in (value.items() if isinstance(value, dict) else [("", value)])}

    for rank in ranks:
        assert rank["summed"]["energy_profile"] == alone["energy_profile"]
        assert flat(rank["summed"]) == pytest.approx(flat(alone), rel=1e-12)
        assert rank["own"]["samples"] == 60
    # Not trivially equal: each process's own figures differ from the whole's.
    assert ranks[0]["own"]["spikes_per_sample"] != ranks[1]["own"]["spikes_per_sample"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--strategy", "ddp_spawn"], "--strategy 'ddp_spawn' is unknown; use one of auto, ddp"),
    (["--num-nodes", "0"], "--num-nodes must be an integer >= 1"),
    (["--num-nodes", "2"], "--num-nodes 2: set MASTER_PORT, NODE_RANK on every node"),
])
def test_a_bad_device_flag_is_one_line_and_exit_2(argv, message, tmp_path, capsys, monkeypatch):
    from nni_snn.cli.main import main

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    for name in ("MASTER_PORT", "NODE_RANK", "GROUP_RANK", "RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK",
                 "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(name, raising=False)
    for command in (["search"], ["retrain", "--arch", "a.json"]):
        assert main([*command, *argv, "--output", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err


def test_the_other_processes_of_a_ddp_trial_reuse_the_first_ones_parameters(monkeypatch):
    """Lightning starts a DDP trial's other processes with a copy of the first one's environment: they read its
    parameter record there and never ask the manager, which would hand them the next trial's parameters."""
    import nni
    import nni.trial

    from nni_snn.experiment import trial as nni_trial

    record = {"parameter_id": 7, "parameters": {"attention": "ct"}}

    def next_parameter():
        nni.trial._params = record
        return record["parameters"]

    monkeypatch.setattr(nni, "get_next_parameter", next_parameter)
    monkeypatch.setattr(nni_trial, "get_default_trial_command_channel", lambda: "channel")
    monkeypatch.setattr(nni.trial, "_params", None)
    monkeypatch.setenv(nni_trial.RECORD_ENV, "")  # restored (removed) after the test
    monkeypatch.delenv(nni_trial.RECORD_ENV)
    for name in ("NNI_TRIAL_COMMAND_CHANNEL", "NNI_TRIAL_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    first = nni_trial.Trial()
    assert first.parameters == {"attention": "ct"} and json.loads(os.environ[nni_trial.RECORD_ENV]) == record

    def asked():
        raise AssertionError("a second process asked the manager for parameters")

    monkeypatch.setattr(nni, "get_next_parameter", asked)
    other = nni_trial.Trial()  # as in a process started with that environment
    assert other.parameters == {"attention": "ct"}


@pytest.mark.slow
def test_a_ddp_search_as_an_nni_trial_runs_the_trials_parameters_and_reports_once(tmp_path, monkeypatch):
    """A trial whose command searches on 2 processes: the second process runs the tuner's parameters too (a different
    attention would give it another supernet, and DDP would fail), and the manager gets one intermediate result per
    epoch and one final result, rank 0's."""
    import yaml

    from nni_snn.experiment import nnictl

    config = {"experimentName": "nni-snn DDP trial", "searchSpace": {"attention": {"_type": "choice", "_value": ["ct"]}},
              "trialCommand": f"{sys.executable} -m nni_snn search {' '.join(DATA)} --epochs 2 --batch-size 25 "
                              "--devices 2 --strategy ddp",
              "trialCodeDirectory": str(ROOT), "trialConcurrency": 1, "maxTrialNumber": 1,
              "tuner": {"name": "GridSearch"}, "trainingService": {"platform": "local"},
              "experimentWorkingDirectory": str(tmp_path / "nni-experiments")}
    path = tmp_path / "ddp_trial.yml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    port = free_port()
    experiment_id = nnictl.create(path, port)
    client = nnictl.RestClient(port)
    try:
        (trial,) = nnictl.wait(client, timeout=300, progress=lambda line: None)
        assert trial["status"] == "SUCCEEDED"
        metrics = client.metrics()
        assert sorted(m["type"] for m in metrics) == ["FINAL", "PERIODICAL", "PERIODICAL"]
        folder = nnictl.trial_dir(client, experiment_id, trial["trialJobId"])
        arch = json.loads((folder / "arch.json").read_text())
        assert arch["attention"] == "ct" and arch["search"]["batch_size"] == 25
        assert [record["samples"] for record in json.loads((folder / "metrics.json").read_text())["history"]] == \
            [100, 100]
        final = next(nnictl.metric_value(m) for m in metrics if m["type"] == "FINAL")
        assert final["default"] == pytest.approx(arch["results"]["accuracy"])
        assert (folder / "trial.log").read_text().count("search: accuracy") == 1
    finally:
        nnictl.stop(experiment_id)

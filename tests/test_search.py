"""Search end to end on the embedded digits data: the command line, MA-DARTS, NNI's stock evaluators."""

from __future__ import annotations

import json

import pytest
import torch

from nni_snn.cli.main import main
from nni_snn.files.archfile import VERSION, load_arch
from nni_snn.snn.neuron import LIF
from nni_snn.snn.spikes import E_AC_PJ, E_MAC_PJ

TINY = ["--dataset", "digits", "--width", "4", "--cells", "3", "--epochs", "2", "--batch-size", "128",
        "--no-progress"]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    assert main(["search", *TINY, "--attention", "ma", "--output", str(out)]) == 0
    return out


def test_search_writes_arch_metrics_pictures_and_tensorboard(searched):
    from nni_snn import build_network

    arch = load_arch(searched / "arch.json")
    assert arch["attention"] == "ma" and arch["timesteps"] == 2
    # no neuron option given: the full spec at the neuron's own defaults
    keys = ("tau", "v_threshold", "surrogate", "surrogate_alpha", "detach_reset")
    assert arch["neuron"] == {"kind": "lif", **{k: getattr(LIF(), k) for k in keys}}
    neurons = [m for m in build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1).modules()
               if isinstance(m, LIF)]  # the network rebuilt from the file: those neurons, every one
    recorded = {k: arch["neuron"][k] for k in keys}
    assert neurons and all(type(m) is LIF and {k: getattr(m, k) for k in keys} == recorded for m in neurons)
    assert arch["normalize"] is True
    assert set(arch["alpha"]) >= {"normal/op_0_0", "reduce/op_3_4"}
    metrics = json.loads((searched / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["spikes_per_sample"] > 0 and metrics["sops_per_sample"] > 0 and metrics["macs_per_sample"] > 0
    # priced by the default memory-aware profile; the ops-only one is SOPs x E_AC + MACs x E_MAC
    assert metrics["energy_profile"] == "memory-45nm" and metrics["energy_model"]["memory"] is True
    assert metrics["energy_uj_per_sample"] == pytest.approx(sum(metrics["energy_uj_by_term"].values()))
    assert metrics["energy_uj_by_profile"]["ops-45nm"] == pytest.approx(
        (E_AC_PJ * metrics["sops_per_sample"] + E_MAC_PJ * metrics["macs_per_sample"]) * 1e-6)
    assert metrics["energy_uj_per_sample"] > metrics["energy_uj_by_profile"]["ops-45nm"]
    assert metrics["neuron_updates_per_sample"] > 0 and metrics["memory_accesses_per_sample"] > 0
    assert arch["results"]["energy_profile"] == "memory-45nm" and arch["search"]["energy_profile"] == "memory-45nm"
    assert metrics["macs_per_sample"] < metrics["sops_per_sample"]  # only stem, attention gates and classifier
    assert all(r["train_sops_per_sample"] > 0 and r["train_energy_uj_per_sample"] > 0 for r in metrics["history"])
    assert set(metrics["spikes_per_cell"]) >= {"cells.0", "cells.1", "cells.2", "stem"}
    assert "classifier" not in metrics["spikes_per_cell"]  # it reads the last cell's spikes: no neurons of its own
    assert metrics["params"] > 0 and metrics["supernet_params"] > metrics["params"]
    # the derived network's count with the auxiliary head: DARTS's head, ~0.40 M at 10 classes whatever the width
    assert 0.39e6 < metrics["params_with_auxiliary_head"] - metrics["params"] < 0.42e6
    assert arch["results"]["params_with_auxiliary_head"] == metrics["params_with_auxiliary_head"]
    assert arch["attention_cells"] == "all" and arch["version"] == VERSION
    assert len(metrics["history"]) == 2
    for name in ("normal.png", "reduce.png"):
        assert (searched / name).read_bytes()[:4] == b"\x89PNG"
    events = list((searched / "tensorboard" / "version_0").glob("events.out.tfevents.*"))
    assert events


def test_tensorboard_has_spikes_and_alpha(searched):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(searched / "tensorboard" / "version_0"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"spikes/train/per_sample", "spikes/val/per_sample", "spikes/val/cells.1", "val_acc", "sops/val/per_sample",
            "macs/val/per_sample", "energy/val/uj_per_sample", "sops/val/cells.1", "firing_rate/val/cells.1",
            "firing_rate/train/stem", "grad_norm/cells.0", "grad_norm/classifier", "grad_norm/stem"} <= tags
    assert "firing_rate/val/classifier" not in tags  # no neurons there
    grads = [event.value for event in acc.Scalars("grad_norm/cells.0")]
    assert len(grads) == 2 and all(0 < g < float("inf") for g in grads)  # one per epoch, weights got gradient
    rates = [event.value for event in acc.Scalars("firing_rate/val/cells.1")]
    assert all(0 < r < 1 for r in rates)
    assert any(tag.startswith("prob/normal/op_") for tag in tags)


def test_show_prints_genotype_and_parameters(searched, capsys):
    assert main(["show", str(searched / "arch.json"), "--width", "4", "--cells", "3", "--in-channels", "1"]) == 0
    out = capsys.readouterr().out
    assert "normal cell:" in out and "reduce cell:" in out and "at width 4, 3 cells, 10 classes: " in out
    assert "with the auxiliary head)" in out


def test_stock_nni_darts_and_classification_evaluator_run_the_space():
    """NNI's own DARTS strategy with NNI's stock Classification evaluator, on a space returning logits."""
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace
    from nni.nas.strategy import DARTS
    from torch.utils.data import TensorDataset

    from search_spaces import SNNDartsSpace

    data = TensorDataset(torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,)))
    evaluator = Classification(train_dataloaders=DataLoader(data, batch_size=16),
                               val_dataloaders=DataLoader(data, batch_size=16), max_epochs=1,
                               num_classes=10, export_onnx=False, enable_progress_bar=False, logger=False,
                               enable_checkpointing=False)
    strategy = DARTS()
    space = SNNDartsSpace(width=4, num_cells=3, in_channels=1)
    strategy(RawFormatModelSpace.from_model(space, evaluator), SequentialExecutionEngine())
    sample = strategy.oneshot_module.export()
    assert all(len(sample[f"normal/input_{k}"]) == 2 for k in range(4))


def test_every_epoch_keeps_its_architecture_and_the_best_is_exported(searched):
    """The paper keeps the structure "according to accuracy": by default the epoch whose supernet validated best."""
    history = json.loads((searched / "metrics.json").read_text())["history"]
    assert len(history) == 2 and all(set(r["genotype"]) == {"normal", "reduce"} for r in history)
    accuracies = [r["val_acc"] for r in history]
    best = max(range(len(accuracies)), key=lambda i: (accuracies[i], i))  # ties: the later epoch
    arch = load_arch(searched / "arch.json")
    assert arch["search"]["export"] == "best" and arch["search"]["export_epoch"] == best
    assert arch["genotype"] == history[best]["genotype"] and arch["alpha"] == history[best]["alpha"]
    assert arch["nni_sample"] == history[best]["nni_sample"]
    assert arch["results"]["accuracy"] == accuracies[best]
    # a search-only NNI trial's final result is that epoch's too: NNI ranks the architectures handed over
    from nni_snn.commands.search import exported_result

    result = exported_result(json.loads((searched / "metrics.json").read_text()))
    assert result["default"] == accuracies[best] and result["sops_per_sample"] == history[best]["sops_per_sample"]


def test_export_picks_the_best_validated_epoch_after_warmup():
    from nni_snn.commands.search import choose_export

    history = [{"epoch": i, "val_acc": acc} for i, acc in enumerate([0.9, 0.5, 0.7, 0.6, 0.7, float("nan")])]
    assert choose_export(history, "best") == 0
    assert choose_export(history, "best", warmup_epochs=1) == 4  # 0 is warm-up; 2 and 4 tie: the later
    assert choose_export(history, "last", warmup_epochs=1) == 5
    assert choose_export(history[:1], "best", warmup_epochs=3) == 0  # all warm-up: nothing better to offer


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("retrained")
    assert main(["search", *TINY, "--export", "last", "--retrain-epochs", "1", "--retrain-width", "6",
                 "--retrain-cells", "4", "--retrain-batch-size", "256", "--retrain-lr", "0.05",
                 "--retrain-attention-cells", "last", "--output", str(out)]) == 0
    return out


def test_export_last_writes_the_final_epochs_architecture(retrained):
    history = json.loads((retrained / "metrics.json").read_text())["history"]
    arch = load_arch(retrained / "arch.json")
    assert arch["search"]["export"] == "last" and arch["search"]["export_epoch"] == 1
    assert arch["genotype"] == history[-1]["genotype"] and arch["alpha"] == history[-1]["alpha"]


def test_search_then_retrain_at_the_retrain_settings_given(retrained):
    """--retrain-width/--retrain-cells size the retrained network, not the search's --width/--cells."""
    from nni_snn import build_network
    from nni_snn.networks import network_parameters

    metrics = json.loads((retrained / "retrain" / "metrics.json").read_text())
    arch = load_arch(retrained / "arch.json")

    def params(width, cells):  # retrain trains with the auxiliary head (weight 0.4 by default)
        return network_parameters(build_network(arch, width=width, num_cells=cells, num_classes=10, in_channels=1,
                                                auxiliary=True))

    assert load_arch(retrained / "arch.json")["attention_cells"] == "all"  # the search's
    assert metrics["network"]["attention_cells"] == "last"  # --retrain-attention-cells
    assert {k: metrics[k] for k in ("params", "params_with_auxiliary_head")} == \
        network_parameters(build_network(arch, width=6, num_cells=4, num_classes=10, in_channels=1, auxiliary=True,
                                         attention_cells="last")) != params(6, 4)
    recipe = metrics["recipe"]
    assert (recipe["width"], recipe["cells"], recipe["batch_size"], recipe["lr"], recipe["epochs"]) == (6, 4, 256,
                                                                                                        0.05, 1)


def test_search_retrain_defaults_are_retrains_not_the_searchs(capsys):
    from nni_snn.cli.flags import resolve
    from nni_snn.cli.main import build_parser
    from nni_snn.cli.options import SearchOptions

    opts = resolve(SearchOptions, build_parser().parse_args(["search"]))
    assert all(getattr(opts, f"retrain_{k}") is None for k in ("width", "cells", "lr", "batch_size", "attention_cells"))
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for flag, default in (("width", 36), ("cells", 6), ("lr", 0.2), ("batch-size", 96)):
        assert f"--retrain-{flag} RETRAIN_{flag.upper().replace('-', '_')} " in shown
        assert f"(default retrain's, {default})" in shown


@pytest.mark.parametrize("argv,needle", [
    (["search", "--attention", "se"], "attention"),
    (["search", "--retrain-width", "0"], "--retrain-width must be an integer >= 1"),
    (["search", "--retrain-batch-size", "-1"], "--retrain-batch-size must be an integer >= 1"),
    (["search", "--retrain-lr", "0"], "--retrain-lr must be a number > 0"),
    (["search", "--export", "foo"], "--export 'foo' is unknown; use one of best, last"),
    (["search", "--attention-cells", "first"], "--attention-cells 'first' is unknown; use one of all, last"),
    (["search", "--retrain-attention-cells", "x"], "--retrain-attention-cells 'x' is unknown"),
    (["search", "--width", "0"], "--width must be an integer >= 1"),
    (["search", "--warmup-epochs", "-1"], "--warmup-epochs must be an integer >= 0"),
    (["search", "--spike-penalty", "-0.5"], "--spike-penalty must be a number >= 0"),
    (["search", "--dataset", "svhn"], "dataset"),
    (["search", "--dataset", "mnist"], "--download"),
    (["search", "--dataset", "cifar10"], "--data-dir"),
    (["search", "--bogus"], "unrecognized arguments"),
    (["show", "does-not-exist.json"], "cannot read"),
])
def test_user_mistakes_are_one_line_and_exit_2(argv, needle, capsys, tmp_path):
    assert main([*argv, "--output", str(tmp_path)] if argv[0] == "search" else argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_config_file_and_unknown_keys(tmp_path, capsys):
    cfg = tmp_path / "cfg.yml"
    cfg.write_text("widht: 4\n")
    assert main(["search", "--config", str(cfg)]) == 2
    assert "unknown option 'widht'" in capsys.readouterr().err
    cfg.write_text("retrain_cells: 0\n")
    assert main(["search", "--config", str(cfg)]) == 2
    assert "--retrain-cells must be an integer >= 1, got 0" in capsys.readouterr().err


def test_tensorboard_has_cell_pictures_and_learning_rate(searched):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(searched / "tensorboard" / "version_0"), size_guidance={"images": 0})
    acc.Reload()
    assert {"cells/normal", "cells/reduce"} <= set(acc.Tags()["images"])
    assert len(acc.Images("cells/normal")) == 2  # one per epoch
    assert "lr" in acc.Tags()["scalars"]


@pytest.fixture(scope="module")
def energy_aware(tmp_path_factory):
    out = tmp_path_factory.mktemp("energy")
    assert main(["search", *TINY, "--attention", "ma", "--spike-penalty", "1", "--output", str(out)]) == 0
    return out


def test_spike_penalty_is_logged_and_recorded(energy_aware):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    arch = load_arch(energy_aware / "arch.json")
    assert arch["search"]["spike_penalty"] == 1
    acc = EventAccumulator(str(energy_aware / "tensorboard" / "version_0"))
    acc.Reload()
    first = acc.Scalars("penalty/normalized_penalty")[0].value
    assert first == pytest.approx(1.0, abs=0.05)  # normalised by the first step's expected energy


def test_spike_penalty_lowers_the_sops_and_energy_of_the_searched_network(searched, energy_aware, tmp_path):
    """Same seed, lambda 0 vs 1: retrained the same way, the energy-aware architecture does fewer synaptic operations
    and costs less energy. (Not necessarily fewer spikes: the penalty prices SOPs, and most neurons read
    BN-normalised currents, firing at similar rates whichever operations feed them; see the energy front.)"""
    results = {}
    for name, folder in (("plain", searched), ("energy", energy_aware)):
        out = tmp_path / name
        assert main(["retrain", "--arch", str(folder / "arch.json"), *TINY, "--lr", "0.05",
                     "--output", str(out)]) == 0
        results[name] = json.loads((out / "metrics.json").read_text())
    plain, energy = results["plain"], results["energy"]
    assert energy["sops_per_sample"] < 0.8 * plain["sops_per_sample"]
    assert energy["energy_uj_per_sample"] < plain["energy_uj_per_sample"]


def test_show_estimates_energy_on_a_dataset(searched, capsys):
    import re

    from nni_snn import build_network

    arch = str(searched / "arch.json")
    assert main(["show", arch, "--width", "4", "--cells", "3", "--dataset", "digits", "--batches", "1"]) == 0
    assert re.search(r"neuron updates, [\d.e+]+ uJ per sample \(memory-45nm\)", capsys.readouterr().out)
    assert main(["show", arch, "--width", "4", "--cells", "3", "--dataset", "digits", "--batches", "1",
                 "--energy-profile", "ops-45nm"]) == 0
    out = capsys.readouterr().out
    number = r"([\d.e+]+)"
    line = re.search(rf"estimate on (\d+) digits test images \((.*), T=(\d+)\): {number} spikes, "
                     rf"{number} SOPs, {number} MACs, {number} neuron updates, {number} uJ per sample \(ops-45nm\)",
                     out)
    assert line, out
    samples, weights, timesteps = int(line[1]), line[2], int(line[3])
    spikes, sops, macs, energy = (float(line[k]) for k in (4, 5, 6, 8))
    assert samples == 64 and timesteps == load_arch(arch)["timesteps"]  # one batch of 64, at the arch's T
    assert "untrained" in weights  # no --checkpoint
    assert energy == pytest.approx((E_AC_PJ * sops + E_MAC_PJ * macs) * 1e-6, rel=2e-3)  # printed to 4 digits
    # bounds: every neuron fires at most once a step, and some synaptic work is done
    net = build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1)
    neuron_steps = []
    for m in net.modules():
        if isinstance(m, LIF):
            m.register_forward_hook(lambda _m, _args, y: neuron_steps.append(y.numel() / y.shape[1]))
    net.eval()(torch.zeros(1, 1, 8, 8))
    assert 0 < spikes <= sum(neuron_steps) and sops > 0 and macs > 0
    assert main(["show", arch, "--width", "8", "--cells", "3", "--dataset", "digits",
                 "--checkpoint", arch]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_estimate_of_untrained_weights_is_near_the_training_mode_count(searched):
    """show on untrained weights first sets BN statistics from its images; otherwise evaluation mode with the
    initial statistics leaves deep layers silent and the estimate far too low."""
    from itertools import islice

    from nni_snn import build_network
    from nni_snn.data.images import load_dataset
    from nni_snn.snn.spikes import SpikeMonitor
    from nni_snn.train.estimate import estimate_energy

    images = load_dataset("digits").test
    net = build_network(searched / "arch.json", width=8, num_cells=5, num_classes=10, in_channels=1)
    net.train()
    with torch.no_grad(), SpikeMonitor(net) as monitor, monitor.counting("train"):
        for x, _ in islice(torch.utils.data.DataLoader(images, batch_size=64), 2):
            net(x)
        training = monitor.summary("train")
    estimate = estimate_energy(net, images, 2, None)
    assert 0.5 < estimate["spikes_per_sample"] / training["spikes_per_sample"] < 2
    assert 0.5 < estimate["sops_per_sample"] / training["sops_per_sample"] < 2


def test_front_tabulates_and_plots_accuracy_against_energy(searched, energy_aware, tmp_path, capsys):
    picture = tmp_path / "front.png"
    assert main(["front", str(searched), str(energy_aware), "--output", str(picture)]) == 0
    out = capsys.readouterr().out
    assert "λ=0 " in out and "λ=1 " in out and "uJ/sample" in out
    assert picture.read_bytes()[:4] == b"\x89PNG"
    assert main(["front", str(tmp_path)]) == 2  # no runs below it
    assert "no arch.json" in capsys.readouterr().err
    # The picture is not replaced unasked: refused in one line, before anything is printed or drawn.
    picture.write_bytes(b"a picture of mine")
    assert main(["front", str(searched), "--output", str(picture)]) == 2
    out, err = capsys.readouterr()
    assert err == (f"nni-snn: error: --output {picture} exists; add --overwrite to replace it, or give another "
                   "--output\n") and out == ""
    assert picture.read_bytes() == b"a picture of mine"
    assert main(["front", str(searched), "--output", str(picture), "--overwrite"]) == 0
    assert picture.read_bytes()[:4] == b"\x89PNG"


def test_partial_channels_search_exports_a_valid_genotype(tmp_path):
    """PC-DARTS (--partial-channels 2): the search runs, learns the nodes' edge normalisation beta next to the alphas,
    and writes a genotype that builds a full-width network; K is recorded in arch.json's search record."""
    from nni_snn import build_network
    from nni_snn.files.genotype import NUM_NODES, PRIMITIVES

    assert main(["search", *TINY[:-3], "--epochs", "1", "--batch-size", "128", "--no-progress",
                 "--partial-channels", "2", "--output", str(tmp_path)]) == 0
    arch = load_arch(tmp_path / "arch.json")
    assert arch["search"]["partial_channels"] == 2
    for cell_type in ("normal", "reduce"):
        pairs = arch["genotype"][cell_type]
        assert len(pairs) == 2 * NUM_NODES
        for k in range(NUM_NODES):
            (op0, i0), (op1, i1) = pairs[2 * k:2 * k + 2]
            assert op0 in PRIMITIVES and op1 in PRIMITIVES and 0 <= i0 < i1 < k + 2
    net = build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1)
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    assert main(["search", *TINY, "--partial-channels", "3", "--output", str(tmp_path / "bad")]) == 2  # 3 !| 4


@pytest.mark.parametrize("cells, flags", [(1, []), (2, ["--select", "perturbation", "--select-images", "64"]),
                                          (3, [])])
def test_every_depth_searches_and_retrains(cells, flags, tmp_path, capsys):
    """1 and 2 cells hold no reduction cell (DARTS's sit at 1/3 and 2/3 of the depth): the arch file says so
    (``reduce`` null), builds at depths without one, and a depth that needs one is refused before training."""
    search, retrain = tmp_path / "search", tmp_path / "retrain"
    size = ["--dataset", "digits", "--width", "4", "--epochs", "1", "--batch-size", "128", "--no-progress"]
    assert main(["search", *size, "--cells", str(cells), *flags, "--output", str(search)]) == 0
    arch = load_arch(search / "arch.json")
    assert (arch["genotype"]["reduce"] is None) == (cells < 3) and len(arch["genotype"]["normal"]) == 8
    assert (search / "reduce.png").exists() == (cells == 3)
    capsys.readouterr()
    assert main(["show", str(search / "arch.json")]) == 0  # counted at its own depth when 5 cells cannot be
    out = capsys.readouterr().out
    assert ("reduce cell: none" in out) == (cells < 3) and (f"{cells} cells" in out) == (cells < 3)
    argv = ["retrain", "--arch", str(search / "arch.json"), *size, "--output", str(retrain)]
    if cells < 3:
        assert main([*argv, "--cells", "6"]) == 2
        line = capsys.readouterr().err.strip()
        assert "\n" not in line and "no reduce cell" in line and "--cells 1 or 2" in line
        assert not retrain.exists()  # refused before anything was written
    assert main([*argv, "--cells", str(cells)]) == 0
    assert json.loads((retrain / "metrics.json").read_text())["recipe"]["cells"] == cells


def test_a_search_of_one_node_cells_exports_and_retrains(tmp_path):
    """--cell-nodes 1 (with DARTS-PT's selection, which walks the nodes the supernet has): the arch file holds one
    node, two pairs, per cell type and records it; the retrain builds it."""
    search = tmp_path / "search"
    assert main(["search", *TINY[:-3], "--epochs", "1", "--batch-size", "128", "--no-progress", "--cell-nodes", "1",
                 "--select", "perturbation", "--select-images", "64", "--output", str(search)]) == 0
    arch = json.loads((search / "arch.json").read_text())
    assert arch["cell_nodes"] == 1 and all(len(pairs) == 2 for pairs in arch["genotype"].values())
    assert main(["retrain", "--arch", str(search / "arch.json"), *TINY[:-3], "--epochs", "1", "--no-progress",
                 "--output", str(tmp_path / "retrain")]) == 0
    assert main(["search", *TINY, "--cell-nodes", "5", "--output", str(tmp_path / "bad")]) == 2


def test_a_search_without_a_reduction_cell_refuses_a_retrain_that_needs_one(tmp_path, capsys):
    assert main(["search", *TINY[:4], "--cells", "2", "--retrain-epochs", "1", "--output", str(tmp_path / "s")]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "--retrain-cells 1 or 2" in line and not (tmp_path / "s").exists()


def test_an_energy_front_search_writes_one_architecture_per_lambda(tmp_path, capsys):
    """--energy-front 0,3: one supernet, one alpha set per lambda; each lambda's arch.json under front/ records its
    lambda and builds, the sets went their own ways, and front.json lists them; --retrain-epochs retrains each, and
    `nni-snn front` draws them. Mistakes are refused in one line."""
    from nni_snn import build_network

    out = tmp_path / "front"
    assert main(["search", *TINY[:-3], "--epochs", "1", "--batch-size", "128", "--no-progress",
                 "--energy-front", "0,3", "--retrain-epochs", "1", "--retrain-width", "4", "--retrain-cells", "3",
                 "--retrain-batch-size", "128", "--output", str(out)]) == 0
    rows = json.loads((out / "front.json").read_text())["rows"]
    assert [r["lambda"] for r in rows] == [0.0, 3.0]
    archs = [load_arch(out / "front" / name / "arch.json") for name in ("lambda-0", "lambda-3")]
    assert [a["search"]["spike_penalty"] for a in archs] == [0.0, 3.0]
    assert all(a["search"]["energy_front"] == [0.0, 3.0] for a in archs)
    assert archs[0]["alpha"] != archs[1]["alpha"]  # each set took its own architecture steps
    for arch in archs:
        assert build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1)(
            torch.rand(2, 1, 8, 8)).shape == (2, 10)
    assert "lambda 3: architecture of epoch 0" in capsys.readouterr().out
    # --retrain-epochs retrained each lambda's architecture, so `nni-snn front` draws the front of the one search.
    assert all((out / "front" / name / "retrain" / "metrics.json").is_file() for name in ("lambda-0", "lambda-3"))
    assert main(["front", str(out), "--output", str(tmp_path / "front.png")]) == 0
    printed = capsys.readouterr().out
    assert "λ=0" in printed and "λ=3" in printed and (tmp_path / "front.png").is_file()
    for bad in (["--energy-front", "1"], ["--energy-front", "0,x"], ["--energy-front", "0,1", "--spike-penalty", "1"],
                ["--energy-front", "0,1", "--select", "perturbation"]):
        assert main(["search", *TINY, *bad, "--output", str(tmp_path / "bad")]) == 2
        line = capsys.readouterr().err.strip()
        assert "\n" not in line and ("--energy-front" in line or "--spike-penalty" in line), line


FRONT_FROM_PYTHON = """
import nni_snn
from nni.nas.evaluator.pytorch import DataLoader, Lightning, Trainer
from nni.nas.experiment import NasExperiment
from search_spaces import SNNDartsSpace
from strategies import MADarts

data = nni_snn.load_dataset("digits")
weight_half, alpha_half = nni_snn.split_for_search(data.train)
space = SNNDartsSpace(width=4, num_cells=3, timesteps=1, attention="none", in_channels=1)
evaluator = Lightning(nni_snn.SNNClassifier(num_classes=10, learning_rate=0.05),
                      Trainer(max_epochs=1, limit_train_batches=4, limit_val_batches=1, logger=False,
                              enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False),
                      train_dataloaders=DataLoader(weight_half, batch_size=32, shuffle=True),
                      val_dataloaders=DataLoader(alpha_half, batch_size=32))
experiment = NasExperiment(space, evaluator, MADarts(energy_front=[0.0, 1.0, 3.0]))
experiment.run()
samples = experiment.export_top_models(top_k=3, formatter="dict")
print("samples", len(samples), all(space.contains(s) for s in samples))
"""


def test_an_energy_front_from_python_exports_one_model_per_lambda(tmp_path):
    """``NasExperiment(space, evaluator, MADarts(energy_front=[...]))``: export_top_models gives one sample per
    lambda, each a valid sample of the space (run as a user runs it, in a process and a home of its own)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-c", FRONT_FROM_PYTHON], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "samples 3 True" in result.stdout

"""The macro-architecture options (stem width and stride, the classifier head): recorded in arch.json by search, read
back by retrain and show, overridable, refused with one line when wrong, and doing what they say to the network's
size and energy."""

from __future__ import annotations

import json

import pytest
import torch

from nni_snn import build_network
from nni_snn.cli.main import main
from nni_snn.snn.spikes import SpikeMonitor

TINY = ["--width", "2", "--cells", "3", "--batch-size", "64", "--no-progress", "--accelerator", "cpu",
        "--subset-per-class", "3"]
MACRO = ["--stem-multiplier", "1", "--stem-stride", "2", "--head", "spatial"]


def test_search_records_the_macro_and_retrain_and_show_read_it_back(tmp_path, capsys):
    search = tmp_path / "search"
    assert main(["search", *TINY, *MACRO, "--epochs", "1", "--retrain-epochs", "1", "--retrain-width", "2",
                 "--retrain-cells", "3", "--output", str(search)]) == 0
    arch = json.loads((search / "arch.json").read_text())
    assert (arch["stem_multiplier"], arch["stem_stride"], arch["head"]) == (1, 2, "spatial")
    network = json.loads((search / "retrain" / "metrics.json").read_text())["network"]
    assert (network["stem_multiplier"], network["stem_stride"], network["head"]) == (1, 2, "spatial")
    # retrain takes the file's macro unless told otherwise
    out = tmp_path / "retrain"
    assert main(["retrain", "--arch", str(search / "arch.json"), *TINY, "--epochs", "1", "--head", "global",
                 "--output", str(out)]) == 0
    network = json.loads((out / "metrics.json").read_text())["network"]
    assert (network["stem_stride"], network["head"]) == (2, "global")
    capsys.readouterr()
    assert main(["show", str(search / "arch.json"), "--width", "2", "--cells", "3", "--in-channels", "1",
                 "--image-size", "8"]) == 0
    assert "parameters" in capsys.readouterr().out


def test_each_knob_changes_the_network_as_it_says(hand_arch):
    def net(**macro):
        return build_network({**hand_arch, **macro}, width=4, num_cells=3, num_classes=10, in_channels=1,
                             image_size=8)

    darts = net()  # a file without the keys: DARTS's macro-architecture
    assert (darts.stem_multiplier, darts.stem_stride, darts.head) == (3, 1, "global")
    assert darts.stem.encode.conv.out_channels == 12 and net(stem_multiplier=1).stem.encode.conv.out_channels == 4
    x = torch.randn(2, 1, 8, 8)
    assert darts.stem(x).shape[-2:] == (8, 8) and net(stem_stride=2).stem(x).shape[-2:] == (4, 4)
    spatial = net(head="spatial")
    # 3 cells: reductions at cells 1 and 2, so the 8x8 image ends as a 2x2 map of 4 x 16 channels
    assert spatial.classifier.linear.in_features == 4 * 16 * 2 * 2
    assert spatial(x).shape == (2, 10) and net(head="spatial", stem_stride=2)(torch.randn(2, 1, 7, 7)).shape == (2, 10)


def test_the_spatial_head_reads_spikes_and_the_stride_cuts_the_work(hand_arch):
    """The spatial head's linear layer reads binary spikes (SOPs), the global head's pooled rates (MACs); a stride-2
    stem leaves every cell a quarter of the positions, so the stem's MACs fall 4x and the SOPs with them."""
    def counts(**macro):
        net = build_network({**hand_arch, **macro}, width=4, num_cells=3, num_classes=10, in_channels=1,
                            image_size=16).train()  # batch statistics: an untrained network's BNs, as in search
        with SpikeMonitor(net) as monitor, torch.no_grad(), monitor.counting("val"):
            net(torch.randn(16, 1, 16, 16))
        return monitor.summary("val")

    darts, spatial, strided = counts(), counts(head="spatial"), counts(stem_stride=2)
    assert spatial["sops_per_group"]["classifier"] > 0 and spatial["macs_per_group"].get("classifier", 0) == 0
    assert darts["macs_per_group"]["classifier"] > 0
    assert strided["macs_per_group"]["stem"] * 4 == darts["macs_per_group"]["stem"]
    assert strided["sops_per_sample"] < darts["sops_per_sample"] / 2


@pytest.mark.parametrize("key, value, needle", [
    ("stem_multiplier", 0, "stem_multiplier must be an integer >= 1"),
    ("stem_multiplier", "3", "stem_multiplier must be an integer >= 1"),
    ("stem_stride", 3, "stem_stride 3 is unknown"),
    ("head", "pooled", "head 'pooled' is unknown"),
])
def test_a_bad_macro_in_a_file_is_named(tmp_path, hand_arch, capsys, key, value, needle):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({**hand_arch, key: value}))
    assert main(["retrain", "--arch", str(path), *TINY, "--epochs", "1", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flags, needle", [
    (["--stem-stride", "4"], "--stem-stride 4 is unknown"),
    (["--stem-multiplier", "0"], "--stem-multiplier must be an integer >= 1"),
    (["--head", "none"], "--head 'none' is unknown"),
])
def test_a_bad_macro_flag_is_refused(tmp_path, capsys, flags, needle):
    assert main(["search", *TINY, *flags, "--epochs", "1", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_the_efficient_config_and_the_macro_sweep_give_valid_searches():
    """experiments/efficient_fashionmnist.yml is a --config for search that holds the search and its retrain, and
    every trial of experiments/macro_sweep.yml (its parameters over that config) resolves to valid options."""
    import itertools
    import shlex
    from pathlib import Path

    import yaml

    from nni_snn.cli.flags import resolve
    from nni_snn.cli.main import build_parser
    from nni_snn.cli.options import SearchOptions

    root = Path(__file__).resolve().parents[1]
    sweep = yaml.safe_load((root / "experiments" / "macro_sweep.yml").read_text())
    words = shlex.split(sweep["trialCommand"])
    args = build_parser().parse_args(words[words.index("nni_snn") + 1:])
    config = root / args.config
    args.config = str(config)
    opts = resolve(SearchOptions, args)
    assert (opts.stem_stride, opts.head, opts.attention_cells, opts.retrain_epochs) == (2, "spatial", "last", 8)
    assert opts.retrain(Path("/tmp/none")).width == 8
    assert opts.retrain(Path("/tmp/none")).auxiliary_weight == 0  # as the spiking CNN it is compared with
    space = sweep["searchSpace"]
    for values in itertools.product(*(spec["_value"] for spec in space.values())):
        params = dict(zip(space, values))
        opts = resolve(SearchOptions, args, params)
        assert all(getattr(opts, key) == value for key, value in params.items())

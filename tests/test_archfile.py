"""Architecture files: schema checks, genotype <-> NNI sample, DARTS derivation, rebuilding a fixed network."""

from __future__ import annotations

import json

import pytest
import torch
from nni.nas.nn.pytorch import MutableModule

from nni_snn import build_network
from nni_snn.files.archfile import ArchError, load_arch
from nni_snn.files.genotype import genotype_from_sample, sample_from_genotype
from nni_snn.files.runfolder import write_json_atomic
from search_spaces.darts_nodes import derive_inputs


def test_genotype_sample_roundtrip(hand_arch):
    sample = sample_from_genotype(hand_arch["genotype"])
    assert sample["normal/input_3"] == [2, 4]
    assert sample["normal/op_3_4"] == "skip_connect"
    assert genotype_from_sample(sample) == hand_arch["genotype"]


def test_derivation_picks_two_strongest_edges_by_best_operation():
    # Edge 1's best operation (0.6) and edge 3's (0.5) beat edges 0 and 2, whatever their sums are.
    weights = [torch.tensor([0.3, 0.3, 0.4]), torch.tensor([0.6, 0.2, 0.2]),
               torch.tensor([0.34, 0.33, 0.33]), torch.tensor([0.1, 0.4, 0.5])]
    assert derive_inputs(weights) == [1, 3]


@pytest.mark.parametrize("width,cells", [(4, 3), (6, 6)])
def test_build_network_any_width_and_depth(hand_arch, width, cells):
    net = build_network(hand_arch, width=width, num_cells=cells, num_classes=7, in_channels=1)
    assert not any(isinstance(m, MutableModule) and m.simplify() for m in net.modules())
    assert net.simplify() == {}
    out = net(torch.randn(3, 1, 8, 8))
    assert out.shape == (3, 7)
    out.sum().backward()


def test_a_file_written_by_hand_gets_attention_in_every_cell_and_the_default_neuron(hand_arch):
    from nni_snn.snn.neuron import LIF

    short = {k: v for k, v in hand_arch.items() if k not in ("attention_cells", "neuron", "normalize")}
    net = build_network(short, width=4, num_cells=3, num_classes=10)
    assert net.attention_cells == "all" and net.normalize
    assert not any(isinstance(cell.attention, torch.nn.Identity) for cell in net.cells)
    assert all(m.tau == 0.2 and m.v_threshold == 0.5 for m in net.modules() if isinstance(m, LIF))


@pytest.mark.parametrize("version", [2, 3, "0.1.0"])
def test_a_file_of_an_unreleased_version_is_one_line_and_exit_2(tmp_path, hand_arch, capsys, version):
    """nni-snn 0.1.0 reads its own format only (version 1); the development versions before it are refused."""
    from nni_snn.cli.main import main

    path = tmp_path / "arch.json"
    path.write_text(json.dumps({**hand_arch, "version": version}))
    assert main(["retrain", "--arch", str(path), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"version {version!r} is not supported" in err and "version 1" in err


def test_build_network_keeps_only_chosen_edges(hand_arch):
    net = build_network(hand_arch, width=4, num_cells=3, num_classes=10)
    for cell in net.cells:
        assert [len(node.edges) for node in cell.nodes] == [2, 2, 2, 2]


def test_build_network_from_path_and_auxiliary(tmp_path, hand_arch):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(hand_arch))
    net = build_network(path, width=4, num_cells=6, num_classes=10, auxiliary=True, timesteps=1)
    net.train()
    logits, aux = net(torch.randn(2, 3, 16, 16))
    assert logits.shape == aux.shape == (2, 10)
    net.eval()
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("mutate,needle", [
    (lambda a: a.update(format="other"), "format"),
    (lambda a: a.update(version=4), "version"),
    (lambda a: a.update(attention_cells="first"), "attention_cells"),
    (lambda a: a.pop("genotype"), "genotype"),
    (lambda a: a["genotype"]["normal"].pop(), "exactly 8"),
    (lambda a: a["genotype"].pop("reduce"), "reduce must hold exactly 8"),  # absent: null says "not searched"
    (lambda a: a["genotype"].update(normal=None, reduce=None), "holds no cell"),
    (lambda a: a["genotype"]["reduce"].__setitem__(0, ["conv_9x9", 0]), "unknown operation"),
    (lambda a: a["genotype"]["normal"].__setitem__(2, ["skip_connect", 3]), "out of range"),
    (lambda a: a["genotype"]["normal"].__setitem__(1, ["skip_connect", 0]), "twice"),
    (lambda a: a.update(attention="se"), "attention"),
    (lambda a: a.update(timesteps=0), "timesteps"),
    (lambda a: a.update(cell_nodes=5), "cell_nodes 5 is unknown"),
    (lambda a: a.update(cell_nodes=2), "exactly 4 .* cell_nodes 2"),  # 8 pairs are 4 nodes, not 2
])
def test_bad_architectures_name_the_problem(hand_arch, mutate, needle):
    mutate(hand_arch)
    with pytest.raises(ArchError, match=needle):
        load_arch(hand_arch)


def test_a_file_without_a_reduction_cell_builds_only_the_depths_without_one(hand_arch):
    """A search of 1 or 2 cells writes reduce: null; 3 cells and more need a reduction cell (1/3 and 2/3 of the
    depth), which the file does not have."""
    from nni_snn.files.genotype import format_genotype

    hand_arch["genotype"]["reduce"] = None
    arch = load_arch(hand_arch)
    assert "reduce cell: none" in format_genotype(arch)
    for cells in (1, 2):
        net = build_network(arch, width=4, num_cells=cells, num_classes=10, in_channels=1, auxiliary=True)
        out = net(torch.randn(2, 1, 8, 8))  # training mode: (logits, auxiliary logits) where a head fits
        assert (out[0] if isinstance(out, tuple) else out).shape == (2, 10)
    with pytest.raises(ArchError, match="no reduce cell .* build it with 1 or 2 cells"):
        build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1)


def test_bad_files(tmp_path):
    with pytest.raises(ArchError, match="cannot read"):
        load_arch(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ArchError, match="not valid JSON"):
        load_arch(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ArchError, match="not a JSON object"):
        load_arch(bad)


@pytest.mark.parametrize("width", [36, 64])
def test_the_docs_parameter_counts_of_darts_v2(width):
    """docs/howto/paper.md, "Reproducing the paper": DARTS's genotype at 6 cells and 10 classes, with and without the head. The
    counts are what the page states, and they add up: MA adds exactly its MLP and spatial conv in the cells that
    carry it, and the auxiliary head is the same whatever the attention."""
    from pathlib import Path

    from nni_snn.files.archfile import make_arch
    from nni_snn.files.genotype import DARTS_V2
    from nni_snn.networks import network_parameters
    from nni_snn.snn.attention import MultiDimAttention

    def ma_formula(m):  # C -> max(C // 16, 1) -> C 1x1 convs, and a 2 -> 1 k x k conv
        c, k = m.mlp[0].in_channels, m.spatial.kernel_size[0]
        return 2 * c * max(c // 16, 1) + 2 * k * k

    counts, attentions = {}, {}
    for attention, cells in [("none", "all"), ("ma", "all"), ("ma", "last")]:
        arch = make_arch(attention=attention, timesteps=2, genotype=DARTS_V2, attention_cells=cells)
        net = build_network(arch, width=width, num_cells=6, num_classes=10, auxiliary=True)
        counts[attention, cells] = network_parameters(net)
        attentions[attention, cells] = [m for m in net.modules() if isinstance(m, MultiDimAttention)]
    plain = counts["none", "all"]
    head = plain["params_with_auxiliary_head"] - plain["params"]
    assert head > 0 and not attentions["none", "all"] and len(attentions["ma", "last"]) == 1
    assert len(attentions["ma", "all"]) == 6
    for key, count in counts.items():
        assert count["params_with_auxiliary_head"] - count["params"] == head
        assert count["params"] - plain["params"] == sum(ma_formula(m) for m in attentions[key])

    page = Path(__file__).resolve().parents[1].joinpath("docs", "howto", "paper.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| this project |"))
    columns = [c.strip() for c in row.strip().strip("|").split("|")][1:]
    darts, ma = columns[0:2] if width == 36 else columns[2:4]

    def m(n):
        return f"{n / 1e6:.3f} M"

    assert darts == m(plain["params_with_auxiliary_head"])
    assert ma == f"{m(counts['ma', 'all']['params_with_auxiliary_head'])} / " \
                 f"{m(counts['ma', 'last']['params_with_auxiliary_head'])}"
    text = " ".join(page.split())
    assert f"{m(plain['params'])} ({width} ch)" in text  # "the networks are 0.643 M (36 ch) and ..."
    assert f"{head / 1e6:.2f} M at {width}" in text  # "Without the auxiliary head (≈0.48 M at 36 channels, ..."
    for cells in ("all", "last"):  # "MA adds ... here 0.109 M / 0.345 M in every cell and 0.041 M / 0.131 M ..."
        assert m(counts["ma", cells]["params"] - plain["params"]) in text


def test_every_arch_json_carries_its_full_neuron_and_reads_back_the_same(tmp_path, hand_arch):
    from nni_snn.files.archfile import make_arch
    from nni_snn.snn.neuron import LIF, PLIF

    for given, kind in [(None, LIF), ({"kind": "plif", "tau": 0.3}, PLIF), ({"surrogate": "arctan"}, LIF)]:
        arch = make_arch(attention="ma", timesteps=2, genotype=hand_arch["genotype"], neuron=given)
        assert set(arch["neuron"]) == {"kind", "tau", "v_threshold", "surrogate", "surrogate_alpha", "detach_reset"}
        assert {"normalize", "cell_norm", "attention_cells"} <= set(arch)
        write_json_atomic(tmp_path / "arch.json", arch)
        assert load_arch(tmp_path / "arch.json") == arch
        net = build_network(tmp_path / "arch.json", width=4, num_cells=3, num_classes=10)
        neurons = [m for m in net.modules() if isinstance(m, kind)]
        spec = arch["neuron"]
        assert neurons and all(round(m.tau, 6) == spec["tau"] and m.surrogate_alpha == spec["surrogate_alpha"]
                               and m.surrogate == spec["surrogate"] for m in neurons)
    assert make_arch(attention="ma", timesteps=2, genotype=hand_arch["genotype"],
                     neuron={"kind": "relu"})["neuron"] == {"kind": "relu"}


def test_a_changed_default_does_not_change_what_a_file_means(tmp_path, hand_arch, monkeypatch):
    """Files hold every setting of their network: a later change of the LIF's defaults, which only new files take,
    does not change what a written file means."""
    from nni_snn.files.archfile import make_arch
    from nni_snn.registry import Entry
    from nni_snn.snn.neuron import LIF, NEURONS

    written = make_arch(attention="ma", timesteps=2, genotype=hand_arch["genotype"])
    today = dict(written["neuron"])

    class Changed(LIF):  # a later release's LIF, with other defaults
        def __init__(self, tau=0.5, v_threshold=1.0, surrogate="arctan", surrogate_alpha=2.0, detach_reset=False):
            super().__init__(tau, v_threshold, surrogate, surrogate_alpha, detach_reset)

    monkeypatch.setitem(NEURONS, "lif", Entry("lif", "a later LIF", Changed))
    assert load_arch(written)["neuron"] == written["neuron"] == today
    assert make_arch(attention="ma", timesteps=2, genotype=hand_arch["genotype"])["neuron"]["surrogate_alpha"] == 2.0


def test_the_surrogates_sharpness_is_surrogate_alpha_only(hand_arch):
    """``alpha`` names the architecture weights; in a neuron spec it is an unknown option, refused."""
    from nni_snn.snn.neuron import make_neuron

    with pytest.raises(ArchError, match="alpha"):
        load_arch({**hand_arch, "neuron": {"kind": "lif", "alpha": 3.0}})
    with pytest.raises(TypeError, match="alpha"):
        make_neuron({"alpha": 3.0})


def test_cells_of_fewer_nodes_build_and_fire_fewer_neurons(hand_arch):
    """``cell_nodes`` (search --cell-nodes): a cell of n nodes has n populations in its output, and the file may
    leave the count to its genotype's length. Fewer nodes are fewer neurons updated at each step (the point of it)."""
    from nni_snn.snn.spikes import calibrate

    updates = {}
    for nodes in (4, 2, 1):
        arch = {**hand_arch, "genotype": {t: pairs[:2 * nodes] for t, pairs in hand_arch["genotype"].items()}}
        loaded = load_arch(arch)
        assert loaded["cell_nodes"] == nodes
        torch.manual_seed(0)
        net = build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1)
        assert all(len(cell.nodes) == nodes for cell in net.cells)
        assert net.classifier.linear[-1].in_features == nodes * 16  # the last cell's concatenation: n x 4 x width
        updates[nodes] = calibrate(net, [torch.rand(4, 1, 8, 8)])["neuron_updates_per_sample"]
    assert updates[4] > updates[2] > updates[1] > 0

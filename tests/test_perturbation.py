"""``nni-snn search --select perturbation`` (DARTS-PT): the architecture is what the trained supernet needs most."""

from __future__ import annotations

import json

import pytest

from nni_snn.cli.main import main
from nni_snn.files.genotype import CELL_TYPES, NUM_NODES, genotype_from_sample

TINY = ["--dataset", "digits", "--width", "4", "--cells", "3", "--epochs", "2", "--batch-size", "128",
        "--no-progress"]


@pytest.fixture(scope="module")
def selected(tmp_path_factory):
    out = tmp_path_factory.mktemp("perturbation")
    assert main(["search", *TINY, "--select", "perturbation", "--select-images", "200", "--output", str(out)]) == 0
    return json.loads((out / "arch.json").read_text()), json.loads((out / "metrics.json").read_text())


def test_each_edge_keeps_the_operation_and_each_node_the_inputs_whose_removal_hurts_most(selected):
    arch, metrics = selected
    scores = metrics["selection"]
    assert scores["images"] == 200
    assert len(scores["edges"]) == len(CELL_TYPES) * sum(k + 2 for k in range(NUM_NODES))
    # The perturbations change the supernet's output: a removal that did nothing would leave every score at 0.
    assert any(abs(rise) > 1e-6 for ops in scores["ops"].values() for rise in ops.values())
    expected = {}
    for cell_type in CELL_TYPES:
        for k in range(NUM_NODES):
            labels = [f"{cell_type}/op_{k}_{i}" for i in range(k + 2)]
            rises = [scores["edges"][label] for label in labels]
            expected[f"{cell_type}/input_{k}"] = sorted(sorted(range(k + 2), key=lambda i: -rises[i])[:2])
            for label in labels:
                expected[label] = max(scores["ops"][label], key=scores["ops"][label].get)
    assert arch["genotype"] == genotype_from_sample(expected)
    assert arch["search"]["select"] == "perturbation"
    # The final supernet is the one perturbed: its epoch is the one written.
    assert metrics["export"]["mode"] == "last" and metrics["export"]["epoch"] == 1


def test_a_removal_zeroes_its_candidates_and_is_undone():
    import torch
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace
    from torch.utils.data import TensorDataset

    from search_spaces import SNNDartsSpace
    from search_spaces.snn_darts import reduction_indices
    from strategies import MADarts
    from strategies.perturbation import _mixed_edges, _removed, validation_loss

    data = TensorDataset(torch.randn(32, 1, 8, 8) * 3, torch.randint(0, 10, (32,)))
    evaluator = Classification(train_dataloaders=DataLoader(data, batch_size=16),
                               val_dataloaders=DataLoader(data, batch_size=16), max_epochs=1, num_classes=10,
                               export_onnx=False, enable_progress_bar=False, logger=False, enable_checkpointing=False)
    strategy = MADarts()
    strategy(RawFormatModelSpace.from_model(SNNDartsSpace(width=4, num_cells=3, in_channels=1), evaluator),
             SequentialExecutionEngine())
    supernet = strategy.supernet.eval()
    batches = [(data.tensors[0], data.tensors[1])]
    base = validation_loss(supernet, batches)
    edges = _mixed_edges(supernet)
    # node k of each cell type reads c_{k-2}, c_{k-1} and nodes 0..k-1: an edge each, labelled as in the space
    assert set(edges) == {f"{t}/op_{k}_{i}" for t in CELL_TYPES for k in range(NUM_NODES) for i in range(k + 2)}
    reductions = len(reduction_indices(3))  # each edge's layer shared by every cell of its type
    assert all(len(layers) == (reductions if label.startswith("reduce/") else 3 - reductions)
               for label, layers in edges.items())
    layers = edges["normal/op_0_0"]
    softmaxes = [layer._softmax for layer in layers]
    with _removed(layers, [0, 3]):
        weights = layers[0]._softmax(layers[0]._arch_alpha)
        assert weights[0] == weights[3] == 0 and weights[1] > 0  # the others keep their weights, not renormalised
    assert [layer._softmax for layer in layers] == softmaxes
    assert validation_loss(supernet, batches) == base


def test_select_is_checked(capsys):
    assert main(["search", *TINY, "--select", "best"]) == 2
    assert "--select" in capsys.readouterr().err

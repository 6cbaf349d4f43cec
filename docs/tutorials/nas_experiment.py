"""
Search from Python with NNI's NasExperiment
===========================================

MA-DARTS the way NNI 3.0 runs any one-shot search: a model space (``SNNDartsSpace``), an evaluator (NNI's
``Lightning`` wrapping nni-snn's ``SNNClassifier``) and a strategy (``MADarts``) go into a ``NasExperiment``;
``export_top_models`` hands back the architecture found, and nni-snn builds its fixed network.

At this size (the embedded 8x8 digits, width 4, one epoch of a few batches) it runs in under a minute on a CPU and
finds nothing worth keeping; ``nni-snn search`` runs the same search at real sizes.
"""

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from nni.nas.evaluator.pytorch import DataLoader, Lightning, Trainer
from nni.nas.experiment import NasExperiment

import nni_snn
from nni_snn.files.genotype import format_genotype
from search_spaces import SNNDartsSpace
from strategies import MADarts

pl.seed_everything(0)

# The data: scikit-learn's 1797 digit scans, built in (no download). As in DARTS, the training split is cut in two
# halves: one trains the weights, the other the architecture weights (alpha).
data = nni_snn.load_dataset("digits")
weight_half, alpha_half = nni_snn.split_for_search(data.train)

# The model space: 3 cells of 4 channels, T = 2 time steps, multi-attention (MA) at each cell's output.
WIDTH, CELLS = 4, 3
space = SNNDartsSpace(width=WIDTH, num_cells=CELLS, timesteps=2, attention="ma",
                      num_classes=data.num_classes, in_channels=data.in_channels)

# The evaluator: NNI's Lightning evaluator around nni-snn's Lightning module (cross-entropy, SGD with a cosine
# schedule). NNI's Trainer and DataLoader are the traced versions NNI requires; one-shot strategies train the
# weights on the train loader and alpha on the validation loader. limit_*_batches keeps this example tiny.
evaluator = Lightning(
    nni_snn.SNNClassifier(num_classes=data.num_classes, learning_rate=0.05),
    Trainer(max_epochs=1, limit_train_batches=4, limit_val_batches=2, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False),
    train_dataloaders=DataLoader(weight_half, batch_size=32, shuffle=True),
    val_dataloaders=DataLoader(alpha_half, batch_size=32),
)

# The strategy: MA-DARTS (first-order DARTS with spike counting; spike_penalty > 0 would make it energy-aware).
experiment = NasExperiment(space, evaluator, MADarts())
experiment.run()  # a one-shot strategy runs here, in this process: no NNI manager, no trials

# What NNI exports: the sample that freezes the space, {label: choice}. nni-snn turns it into an architecture
# (the arch.json format, with the space's settings), which builds the fixed network at any width and depth.
sample = experiment.export_top_models(formatter="dict")[0]
arch = nni_snn.arch_from_sample(sample, space)
print(format_genotype(arch))

# Saved as arch.json it is what `nni-snn retrain --arch arch.json` and `nni-snn show arch.json` read.
Path("arch.json").write_text(json.dumps(arch, indent=2))
arch = nni_snn.load_arch("arch.json")

# The fixed network: only the chosen edges, no NNI mutables left. Trained for two epochs with a fresh evaluator on the
# whole training split, then scored on a batch of held-out digits.
network = nni_snn.build_network(arch, width=WIDTH, num_cells=CELLS, num_classes=data.num_classes,
                                in_channels=data.in_channels)
Lightning(
    nni_snn.SNNClassifier(num_classes=data.num_classes, learning_rate=0.1),
    Trainer(max_epochs=2, limit_val_batches=2, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False),
    train_dataloaders=DataLoader(data.train, batch_size=32, shuffle=True),
    val_dataloaders=DataLoader(data.test, batch_size=64),
).evaluate(network)

images, labels = next(iter(torch.utils.data.DataLoader(data.test, batch_size=64)))
network.eval()
with torch.no_grad():
    accuracy = (network(images).argmax(dim=1) == labels).float().mean().item()
print(f"fixed network: {sum(p.numel() for p in network.parameters())} parameters, "
      f"accuracy {accuracy:.3f} on {len(labels)} held-out digits")

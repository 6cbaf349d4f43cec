"""What a command or a file can name, one registration each, all in one style: a :class:`Registry`.

Here, torch-free: attention types, image datasets, multi-trial search strategies, baselines, neurons and surrogate
gradients, and the plain choices of the macro-architecture. ``nni-snn --help`` builds its help texts and shows its
choices from these, and the options' checks, ``nni-snn front``'s method names and the code that builds each thing
read them too; their entries name the implementation by import path (``"module:attribute"``), imported only when it
is built. Beside the code they register: the candidate operations (:data:`nni_snn.snn.ops.OPS`) and the event datasets
(:data:`nni_snn.data.events.EVENT_DATASETS`), whose entries hold the implementation itself. Adding one is its
code plus one ``register`` line (or a call from anywhere before the command runs).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    help: str  # what --help says of it
    # The implementation, or "module:attribute" of it (imported when built); None: nothing to build (attention "none")
    target: object
    label: str = ""  # attention: the search method's name, e.g. "MA-DARTS" (nni-snn front's tables)

    def load(self):
        """The implementation (imported now where the entry names it by import path)."""
        if not isinstance(self.target, str):
            return self.target
        module, attribute = self.target.split(":")
        return getattr(importlib.import_module(module), attribute)


class Registry(dict):
    """name -> :class:`Entry`, in registration order (the order --help lists them in)."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, name: str, help: str, target: object, **extra) -> Entry:
        if name in self:
            raise ValueError(f"{self.what} {name!r} is registered already")
        self[name] = Entry(name, help, target, **extra)
        return self[name]

    def entry(self, name: str) -> Entry:
        if name not in self:
            raise ValueError(f"unknown {self.what} {name!r}; use one of {', '.join(self)}")
        return self[name]

    def load(self, name: str):
        """The implementation registered as ``name`` (:meth:`Entry.load`); an unknown name is a ValueError."""
        return self.entry(name).load()

    def help(self) -> str:
        """``a (its help), b (its help), ...`` for an option's --help."""
        return ", ".join(f"{name} ({entry.help})" for name, entry in self.items())


# make_attention(kind, channels, timesteps): the target is called as target(channels, timesteps).
ATTENTIONS = Registry("attention")
ATTENTIONS.register("none", "DARTS: no attention", None, label="DARTS")
ATTENTIONS.register("ct", "CT-DARTS: channel x time attention, paper eq. 5-6",
                    "nni_snn.snn.attention:ChannelTimeAttention", label="CT-DARTS")
ATTENTIONS.register("ma", "MA-DARTS: multi-dimensional attention, paper eq. 7-10",
                    "nni_snn.snn.attention:MultiDimAttention", label="MA-DARTS")

# load_dataset: the target is called as target(data_dir, download=, augment=, cutout=, mirror=) and returns a Data.
IMAGE_DATASETS = Registry("dataset")
IMAGE_DATASETS.register("digits", "scikit-learn's 8x8 digits, embedded", "nni_snn.data.images:read_digits")
IMAGE_DATASETS.register("mnist", "MNIST's idx files, or --download", "nni_snn.data.images:read_mnist")
IMAGE_DATASETS.register("fashionmnist", "Fashion-MNIST's idx files, or --download",
                        "nni_snn.data.images:read_fashion_mnist")
IMAGE_DATASETS.register("cifar10", "torchvision's files, or --download", "nni_snn.data.images:read_cifar10")
IMAGE_DATASETS.register("cifar100", "torchvision's files, or --download", "nni_snn.data.images:read_cifar100")
IMAGE_DATASETS.register("tinyimagenet", "the tiny-imagenet-200/ layout", "nni_snn.data.images:read_tinyimagenet")
IMAGE_DATASETS.register("imagefolder", "train/ and val/, a folder per class", "nni_snn.data.images:read_imagefolder")
# Those whose reader fetches them with --download (from --mirror where given): torchvision's downloads.
DOWNLOADABLE = ("mnist", "fashionmnist", "cifar10", "cifar100")

# make_strategy: the target is called as target(trials=, concurrency=, seed=, population=, sample_size=).
SEARCH_STRATEGIES = Registry("strategy")
SEARCH_STRATEGIES.register("random", "NNI's Random", "nni_snn.experiment.multitrial:random_strategy")
SEARCH_STRATEGIES.register("evolution", "NNI's RegularizedEvolution",
                           "nni_snn.experiment.multitrial:evolution_strategy")

# build_baseline: the target is called as target(width, num_classes, in_channels, image_size, timesteps, neuron).
BASELINES = Registry("baseline")
BASELINES.register("spiking-cnn", "conv-BN-LIF-maxpool twice, then linear", "nni_snn.snn.spiking_cnn:SpikingCNN")


# The network's neurons (make_neuron(spec) builds NEURONS.load(spec["kind"])(**rest), keyword options -> module) and
# surrogate gradients (name -> surrogate(v, alpha), the derivative that backward puts in place of the step's), both
# implemented in nni_snn.snn.neuron.
NEURONS = Registry("neuron")
NEURONS.register("lif", "leaky integrate-and-fire (paper eq. 1-2)", "nni_snn.snn.neuron:LIF")
NEURONS.register("plif", "LIF with a learnable decay", "nni_snn.snn.neuron:PLIF")
NEURONS.register("relu", "the ANN twin: nn.ReLU, no spikes", "nni_snn.snn.neuron:relu_twin")
SURROGATES = Registry("surrogate")
SURROGATES.register("rectangular", "box (STBP)", "nni_snn.snn.neuron:rectangular")
SURROGATES.register("sigmoid", "derivative of sigmoid(alpha v)", "nni_snn.snn.neuron:sigmoid")
SURROGATES.register("arctan", "derivative of atan(pi/2 alpha v) / pi", "nni_snn.snn.neuron:arctan")

# The macro-architecture's choices (nni_snn.files.genotype, arch.json): where the attention sits (every cell's
# concatenation, or the final cell's); where a cell's BN sits relative to its attention (with normalisation on:
# "after-attention", the first placement, which a file without the key means; or "before-attention"); the
# classifier (global: average pool of the last cell's spikes over space, DARTS's; spatial: a linear layer on the last
# cell's whole spike map, as the hand-designed spiking CNN reads its own); the stem's stride; the search spaces'
# names (their operations: nni_snn.files.genotype.SPACES).
ATTENTION_CELLS = ("all", "last")
CELL_NORMS = ("after-attention", "before-attention")
HEADS = ("global", "spatial")
STEM_STRIDES = (1, 2)
SPACE_NAMES = ("full", "deployable")
# The intermediate nodes a cell may have (DARTS's 4 by default). Each node is a neuron population the cell's output
# concatenates, so fewer nodes mean fewer neurons updated at every step and a narrower input to the next cells (issue
# 36: neuron updates and memory, not synaptic operations, dominate a cell network's energy under memory-45nm).
CELL_NODES = (1, 2, 3, 4)
# How event recordings are cut into frames (nni_snn.data.events): of equal duration, or of equal event count.
FRAMES_BY = ("time", "count")


def help_texts() -> dict[str, str]:
    """What an option's help names as ``{attentions}``, ``{image_datasets}`` or ``{strategies}``: the entries
    registered when the parser is built (nni_snn.cli.options.add_flags)."""
    from nni_snn.snn.energy import PROFILES  # torch-free; it imports this module, hence here

    return {"attentions": ATTENTIONS.help(), "image_datasets": IMAGE_DATASETS.help(),
            "strategies": SEARCH_STRATEGIES.help(), "energy_profiles": PROFILES.help()}

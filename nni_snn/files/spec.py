"""The network spec: every setting that shapes a searched network besides its size and its cells' genotype.

:class:`NetworkSpec` is to the macro-architecture what the genotype (:mod:`nni_snn.files.genotype`) is to the cell: one
frozen, torch-free value. An arch.json is a genotype plus a spec (:mod:`nni_snn.files.archfile`), the model space takes the
spec's settings (``search_spaces.SNNDartsSpace(**spec.settings())``), and the commands' flags for them are generated
from its fields' metadata (``nni_snn.cli.options.network_option``). Adding a setting is a field here, the code that
uses it (the model space), and their tests.

Each field's metadata says what a valid value is (``choices``: a collection read when checked, so that a registry
extended at run time counts; or ``check``: the error's "must be ..." and a test), the flag's help, and, for the
settings whose flags a command gives, nothing more: which command has which flag is the command's business.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nni_snn.registry import (
    ATTENTION_CELLS,
    ATTENTIONS,
    CELL_NODES,
    CELL_NORMS,
    HEADS,
    SPACE_NAMES,
    STEM_STRIDES,
)

__all__ = ["NetworkSpec", "setting_names"]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def setting(default: Any, help: str, *, choices: Any = None, check: tuple | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "check": check})


@dataclass(frozen=True)
class NetworkSpec:
    """A network's settings; their order is arch.json's. ``neuron`` is a neuron spec
    (:func:`nni_snn.snn.neuron.make_neuron`; ``None``: the default LIF), checked by the neuron itself."""

    attention: str = setting("ma", "attention at the cells' concatenation: {attentions} (default {default})",
                             choices=ATTENTIONS)
    attention_cells: str = setting("all", "where the attention sits: all (every cell's concatenation, paper 3.3) or "
                                          "last (the final cell's, paper 4.2) (default {default})",
                                   choices=ATTENTION_CELLS)
    timesteps: int = setting(2, "time steps T (default {default})", check=("an integer >= 1",
                                                                           lambda v: _is_int(v) and v >= 1))
    cell_nodes: int = setting(4, "intermediate nodes of each cell, each a neuron population the cell's output "
                                 "concatenates: fewer nodes, fewer neurons and a narrower input to the next cells "
                                 "(default {default}, DARTS's)", choices=CELL_NODES)
    neuron: dict | None = field(default=None, metadata={"help": "the neuron spec of every spiking site",
                                                         "choices": None, "check": None})
    normalize: bool = setting(True, "BN before each cell's output neurons and on the classifier's pooled spike "
                                    "rates; --no-normalize builds the network without them (default {default})",
                              check=("true or false", lambda v: isinstance(v, bool)))
    cell_norm: str = setting("after-attention", "where each cell's BN sits with --normalize: after-attention "
                                                "(concatenation, attention, BN, LIF) or before-attention "
                                                "(concatenation, BN, attention, LIF) (default {default})",
                             choices=CELL_NORMS)
    # The macro-architecture, where most of a cell network's energy goes (docs/energy.md): DARTS's by default.
    stem_multiplier: int = setting(3, "the stem's channels: this times --width (default {default}, DARTS's)",
                                   check=("an integer >= 1", lambda v: _is_int(v) and v >= 1))
    stem_stride: int = setting(1, "stride of the stem's conv: 2 halves the resolution every cell works at, a quarter "
                                  "of the positions (default {default})", choices=STEM_STRIDES)
    head: str = setting("global", "the classifier: global (average-pool the last cell's spikes, BN, linear; DARTS's) "
                                  "or spatial (a linear layer on the last cell's whole spike map, as the spiking "
                                  "CNN's) (default {default})", choices=HEADS)
    # Which candidate operations the cells choose among (nni_snn.files.genotype.SPACES).
    space: str = setting("full", "the search space: full, or deployable (no max pooling, attention none: what NIR "
                                 "carries, so the network exports to neuromorphic hardware; docs/deploy.md) (default "
                                 "{default})", choices=SPACE_NAMES)

    def problem(self, named: Callable[[str], str] = str) -> str | None:
        """What is wrong with these settings (the first thing), or None: each value, then the rules between them.
        ``named`` spells a setting's name in the message (the command line: its flag)."""
        for f in dataclasses.fields(self):
            problem = value_problem(f.name, getattr(self, f.name), named)
            if problem:
                return problem
        if self.neuron is not None:
            from nni_snn.snn.neuron import neuron_problem  # torch: only when a spec names a neuron

            problem = neuron_problem(self.neuron)
            if problem:
                return f"{named('neuron')}: {problem}"
        if self.space == "deployable" and self.attention != "none":
            return (f"{named('space')} deployable needs {named('attention')} none: {self.attention} multiplies by an "
                    "input-dependent gate, which NIR cannot express")
        return None

    def settings(self) -> dict:
        """The settings as keyword arguments (of ``SNNDartsSpace``, :func:`nni_snn.networks.build_network`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def merged(self, **given: Any) -> NetworkSpec:
        """This spec with the settings ``given`` (those not None) in place of its own: a user's flags over a file's."""
        return dataclasses.replace(self, **{k: v for k, v in given.items() if v is not None})

    @classmethod
    def of(cls, values: dict) -> NetworkSpec:
        """The spec of a mapping that holds these settings among other keys (an arch.json, a command's options);
        those absent or None take the defaults."""
        return cls().merged(**{name: values.get(name) for name in setting_names()})

    def describe(self) -> str:
        """One line for ``nni-snn show``: where the attention sits and T."""
        where = {"all": "in every cell", "last": "in the final cell only"}[self.attention_cells]
        return f"attention: {self.attention} ({where})   timesteps: {self.timesteps}"


def value_problem(name: str, value: Any, named: Callable[[str], str] = str) -> str | None:
    """Why ``value`` is not a valid value of setting ``name``, or None; ``named`` as in :meth:`NetworkSpec.problem`
    (by default the words of arch.json's keys)."""
    meta = NetworkSpec.__dataclass_fields__[name].metadata
    if meta["choices"] is not None and (isinstance(value, (bool, dict, list)) or value not in meta["choices"]):
        return f"{named(name)} {value!r} is unknown; use one of {', '.join(map(str, meta['choices']))}"
    if meta["check"] is not None and not meta["check"][1](value):
        return f"{named(name)} must be {meta['check'][0]}, got {value!r}"
    return None


def setting_names() -> tuple[str, ...]:
    """The settings' names, in arch.json's order."""
    return tuple(f.name for f in dataclasses.fields(NetworkSpec))


def setting_metadata(name: str) -> dict:
    """The help text and what a valid value is of setting ``name`` (for the commands' generated flags)."""
    return dict(NetworkSpec.__dataclass_fields__[name].metadata)

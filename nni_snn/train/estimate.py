"""``nni-snn show --dataset``: spikes, SOPs, MACs and energy per sample of a network in evaluation mode, and the BN
statistics that untrained weights need first."""

from __future__ import annotations

import pickle

import torch


def estimate_energy(net: torch.nn.Module, images, batches: int, checkpoint: str | None, energy=None) -> dict:
    """Counts and energy per sample (:meth:`nni_snn.snn.spikes.SpikeMonitor.summary`, priced by the profile ``energy``)
    of ``net`` in evaluation mode over the first ``batches`` batches
    of 64 from ``images``, with the weights of a retrain ``checkpoint`` if given (``nni-snn show --dataset``);
    untrained weights get BN statistics from those batches first (:func:`fit_batch_norm`)."""
    from itertools import islice

    from nni_snn.files.archfile import ArchError
    from nni_snn.snn.spikes import calibrate

    if checkpoint:
        from pathlib import Path

        if not Path(checkpoint).is_file():  # a folder; a FIFO or device would block or never end
            raise ArchError(f"--checkpoint {checkpoint}: not a file")
        try:
            try:
                state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            except Exception as err:  # noqa: BLE001  a damaged file: torch's unpickler raises whatever its stream leads to
                raise ValueError(str(err) or type(err).__name__) from None
            state = state.get("state_dict") if isinstance(state, dict) else None
            if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
                raise ValueError("it holds no state_dict of named weights")
            # The auxiliary head is a training aid: the estimate is of the network a user deploys.
            net.load_state_dict({k.removeprefix("_model."): v for k, v in state.items()
                                 if k.startswith("_model.") and not k.startswith("_model.auxiliary_head.")})
        except (OSError, EOFError, KeyError, TypeError, RuntimeError, ValueError, AttributeError,
                pickle.UnpicklingError) as err:
            raise ArchError(f"--checkpoint {checkpoint}: not a retrain checkpoint of this network at this width "
                            f"and depth ({(str(err).splitlines() or [type(err).__name__])[0][:160]})") from None
    loader = torch.utils.data.DataLoader(images, batch_size=64)
    if not checkpoint:
        fit_batch_norm(net, islice(loader, batches))
    return calibrate(net, islice(loader, batches), energy=energy)


@torch.no_grad()
def fit_batch_norm(net: torch.nn.Module, batches) -> None:
    """Set every BN's running statistics to those of ``batches`` (images, or (images, labels) pairs).

    Untrained BNs hold mean 0 and variance 1; in evaluation mode the network then turns every input into the same
    spikes and logits (measured: identical logits for all digits), so an estimate on untrained weights would
    describe no network anyone runs. Training sets these statistics; this does it without touching the weights.
    """
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    training = net.training
    net.train()
    try:
        for batch in batches:
            net(batch[0] if isinstance(batch, (list, tuple)) else batch)
    finally:
        net.train(training)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum

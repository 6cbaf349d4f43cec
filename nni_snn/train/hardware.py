"""What the user's ``--accelerator`` means on this machine, answered without importing torch where it need not be:
the options' checks (``nni_snn.cli.options``) ask it as well as the code that trains (``nni_snn.commands.runtime``)."""

from __future__ import annotations


def uses_cuda(accelerator: str) -> bool:
    """Whether Lightning's ``accelerator`` option will train on a CUDA GPU here."""
    if accelerator in ("gpu", "cuda"):
        return True
    if accelerator != "auto":
        return False
    import torch  # only "auto" depends on the machine

    return torch.cuda.is_available()

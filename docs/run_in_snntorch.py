"""Run an exported NIR file (nni-snn export) in snnTorch on the digits test images: docs/deploy.md's worked example."""

import logging
import sys

import nir
import torch
from snntorch.import_nir import import_from_nir

from nni_snn.data.images import load_dataset

logging.disable(logging.WARNING)
graph = nir.read(sys.argv[1])
T = graph.metadata["timesteps"]
net = import_from_nir(graph)
test = load_dataset("digits", timesteps=T).test
images = torch.stack([test[i][0] for i in range(len(test))])
labels = torch.tensor([int(test[i][1]) for i in range(len(test))])
state, logits = None, 0
with torch.no_grad():
    for _ in range(T):  # the same image at every step; the logits are the mean over the T steps
        out, state = net(images) if state is None else net(images, state)
        logits = logits + out.flatten(1) / T
print(f"snnTorch: accuracy {(logits.argmax(1) == labels).float().mean():.4f} on {len(labels)} digits")

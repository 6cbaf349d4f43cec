"""Build the fixed network of a searched architecture and classify a batch of held-out digits with it.

The architecture is one that `nni-snn search --spike-penalty 1` found on the 8x8 digits (committed with the
energy front's results); any arch.json a search writes works the same way.
"""

from pathlib import Path

import torch

from nni_snn import build_network, load_arch
from nni_snn.data.images import load_dataset
from nni_snn.snn.spikes import SpikeMonitor

ROOT = Path(__file__).resolve().parents[2]
ARCH = ROOT / "benchmarks" / "results" / "energy_front" / "sOvdF" / "arch.json"

arch = load_arch(ARCH)
print("attention:", arch["attention"], "| time steps:", arch["timesteps"])
print("normal cell:", arch["genotype"]["normal"])

# Any width and depth: here the size the search retrained it at.
torch.manual_seed(0)
net = build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1)
data = load_dataset("digits")
images, labels = next(iter(torch.utils.data.DataLoader(data.test, batch_size=64)))
print("a batch of held-out images:", tuple(images.shape))

# A plain torch.nn.Module: train it with any loop (nni-snn retrain adds the schedule, checkpoints and logs).
optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
train = torch.utils.data.DataLoader(data.train, batch_size=32, shuffle=True)
for epoch in range(2):
    net.train()
    for x, y in train:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()

# Count spikes, synaptic operations and energy of one held-out batch.
net.eval()
monitor = SpikeMonitor(net)
with torch.no_grad(), monitor.counting("val"):
    logits = net(images)
counts = monitor.summary("val")
print("logits:", tuple(logits.shape))
print(f"accuracy on this batch after 2 epochs: {(logits.argmax(1) == labels).float().mean():.2f}")
print(f"spikes per sample: {counts['spikes_per_sample']:.0f}, SOPs per sample: {counts['sops_per_sample']:.3g}")

"""Do the networks this project builds learn? Accuracy on the embedded digits at `nni-snn retrain`'s defaults.

Every row is trained in this one run by the same path a user runs (`nni_snn.commands.retrain.run_retrain`: Lightning,
the same split, SGD momentum 0.9 + cosine at the default learning rate, batch 96, auxiliary head, gradient clipping)
and reports the held-out accuracy after the last epoch:

- the convolution-heavy genotype (``nni_snn.files.genotype.CONV_HEAVY``, MA attention, T = 2) at two sizes, and its ANN
  twin (``--neuron relu``);
- the hand-designed references: the spiking CNN (``--baseline spiking-cnn``, width 16), its ReLU twin, and
  logistic regression on the pixels (scikit-learn);
- at the small size, the network as it was before (``--no-normalize --surrogate arctan --surrogate-alpha 2
  --grad-clip 0`` at the paper's lr 0.0025; BN's epsilon is 0.01 in both, see ``nni_snn.snn.ops.BN_EPS``) and each of
  today's defaults undone one at a time, which is how the defaults were chosen;
- first, at initialisation, where the earlier network stalled (``diagnose``).

    .venv/bin/python -m benchmarks.learning            # ~10 min on 2 CPU cores
    .venv/bin/python -m benchmarks.learning --quick    # only the first size
    .venv/bin/python -m benchmarks.learning --quick --dataset digits-events --timesteps 4   # DVS events
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

from benchmarks.common import quiet


def retrain(arch_path: Path | None, seed: int, **overrides) -> tuple[float, float]:
    """(final held-out accuracy, seconds) of one retrain at the defaults, with ``overrides``."""
    from nni_snn.cli.options import RetrainOptions
    from nni_snn.commands.retrain import run_retrain

    with tempfile.TemporaryDirectory() as out:
        opts = RetrainOptions(arch=str(arch_path) if arch_path else None, seed=seed, progress=False, accelerator="cpu",
                              output=out, **overrides)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            metrics = run_retrain(opts, Path(out))  # Lightning's banner goes to its logger, silenced by quiet()
        return metrics["accuracy"], time.perf_counter() - start


def logistic_regression(dataset: str, timesteps: int) -> float:
    """On the pixels, or on the event frames (all T frames' counts side by side)."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from nni_snn.data.images import load_dataset

    data = load_dataset(dataset, timesteps=timesteps)

    def arrays(split):
        inputs, labels = zip(*(split[i] for i in range(len(split))))
        return torch.stack(inputs).flatten(1).numpy(), [int(label) for label in labels]

    model = LogisticRegression(max_iter=2000).fit(*arrays(data.train))
    return float(model.score(*arrays(data.test)))


def diagnose(arch: dict, before: dict) -> None:
    """At initialisation, on one batch of 96 digits: what each cell's output neurons (the next cell's input) fire,
    how much gradient reaches each cell, how far apart the logits of different samples are (in training mode, and in
    evaluation mode with the initial BN statistics). Where the earlier network's learning stalled, side by side with today's."""
    import torch
    from torch import nn

    from nni_snn import build_network
    from nni_snn.data.images import load_dataset
    from nni_snn.snn.neuron import LIF

    images, labels = (t[:96] for t in load_dataset("digits").train.tensors)
    print("\n== at initialisation (width 8, 5 cells, T=2, one batch of 96): cell-output firing rate / gradient RMS of "
          "the cell-output spikes, per cell; logit spread across samples")
    networks = {"before": ({"normalize": False, "neuron": {"surrogate": before["surrogate"],
                                                           "surrogate_alpha": before["surrogate_alpha"]}}),
                "defaults": {}}
    for name, kwargs in networks.items():
        torch.manual_seed(0)
        net = build_network(arch, width=8, num_cells=5, num_classes=10, in_channels=1, **kwargs)
        rates, grads = {}, {}
        for module_name, module in net.named_modules():
            if isinstance(module, LIF) and module_name.endswith("output.spike"):  # a cell's output = next's input
                cell = module_name.split(".")[1]

                def hook(_, __, out, cell=cell, rates=rates, grads=grads):
                    if out.requires_grad:  # the training-mode pass
                        rates[cell] = out.mean().item()
                        out.register_hook(lambda g: grads.__setitem__(cell, g.pow(2).mean().sqrt().item()))
                module.register_forward_hook(hook)
        net.train()
        logits = net(images)
        nn.functional.cross_entropy(logits, labels).backward()
        net.eval()
        with torch.no_grad():
            eval_spread = net(images).std(dim=0).mean().item()
        cells = sorted(rates, key=int)
        print(f"{name:9s} firing " + " ".join(f"{rates[c]:.3f}" for c in cells)
              + "   grad " + " ".join(f"{grads[c]:.1e}" for c in cells)
              + f"   logit spread train {logits.std(dim=0).mean().item():.3f}, eval {eval_spread:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds per row (mean and range are printed)")
    parser.add_argument("--quick", action="store_true", help="only width 16, 6 cells, 10 epochs")
    parser.add_argument("--dataset", default="digits", choices=("digits", "digits-events"),
                        help="the embedded images, or the same digits as DVS events (frames of event counts)")
    parser.add_argument("--timesteps", type=int, default=2, help="T, and frames per sample for events (default 2)")
    args = parser.parse_args()
    quiet()
    import torch

    from nni_snn.cli.options import RetrainOptions
    from nni_snn.files.archfile import make_arch
    from nni_snn.files.genotype import CONV_HEAVY

    torch.set_num_threads(torch.get_num_threads())
    arch = make_arch(attention="ma", timesteps=args.timesteps, genotype=CONV_HEAVY)
    tmp = Path(tempfile.mkdtemp())
    arch_path = tmp / "conv_heavy.json"
    arch_path.write_text(json.dumps(arch))
    before = {"normalize": False, "surrogate": "arctan", "surrogate_alpha": 2.0, "grad_clip": 0.0, "lr": 0.0025}

    if args.dataset == "digits":
        diagnose(arch, before)
    sizes = [(16, 6, 10)] + ([] if args.quick else [(8, 5, 5)])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.dataset}: 1438 train / 359 held-out; "
          f"retrain defaults: lr {RetrainOptions.lr}, batch {RetrainOptions.batch_size}, auxiliary weight "
          f"{RetrainOptions.auxiliary_weight}, grad clip {RetrainOptions.grad_clip}; "
          f"{args.seeds} seed(s) per row")
    inputs = "pixels" if args.dataset == "digits" else "event frames"
    print(f"logistic regression on {inputs}: {logistic_regression(args.dataset, args.timesteps):.4f}")
    for width, cells, epochs in sizes:
        rows = {
            "conv-heavy MA SNN (defaults)": (arch_path, {}),
            "conv-heavy ANN twin (--neuron relu)": (arch_path, {"neuron": "relu"}),
            "spiking CNN reference, width 16": (None, {"baseline": "spiking-cnn", "width": 16}),
            "spiking CNN's ANN twin (--neuron relu)": (None, {"baseline": "spiking-cnn", "width": 16,
                                                              "neuron": "relu"}),
        }
        if width == 8:
            rows.update({
                "conv-heavy, the network before (paper lr)": (arch_path, before),
                "conv-heavy, the network before at lr 0.1": (arch_path, {**before, "lr": 0.1}),
                "conv-heavy, defaults but --no-normalize": (arch_path, {"normalize": False}),
                "conv-heavy, defaults but arctan alpha 2": (arch_path, {"surrogate": "arctan",
                                                                        "surrogate_alpha": 2.0}),
                "conv-heavy, defaults but --grad-clip 0": (arch_path, {"grad_clip": 0.0}),
                "conv-heavy, defaults but lr 0.0025 (paper)": (arch_path, {"lr": 0.0025}),
            })
        print(f"\n== width {width}, {cells} cells, {epochs} epochs, T={args.timesteps}")
        print(f"{'network':44s} {'accuracy':>9s} {'range':>15s} {'s/run':>6s}")
        for name, (path, overrides) in rows.items():
            size = {"width": width, "cells": cells, "epochs": epochs, "dataset": args.dataset,
                    "timesteps": args.timesteps}
            results = [retrain(path, seed, **{**size, **overrides}) for seed in range(args.seeds)]
            accs = [acc for acc, _ in results]
            spread = f"{min(accs):.4f}-{max(accs):.4f}" if len(accs) > 1 else ""
            seconds = sum(s for _, s in results) / len(results)
            print(f"{name:44s} {sum(accs) / len(accs):9.4f} {spread:>15s} {seconds:6.0f}", flush=True)


if __name__ == "__main__":
    main()

"""Cell pictures: a searched cell drawn as a left-to-right graph (PNG), written next to arch.json."""

from __future__ import annotations

from pathlib import Path


def draw_cell(pairs: list[list], title: str, path: str | Path) -> Path:
    """Write one cell of a genotype as a PNG picture."""
    import matplotlib.pyplot as plt

    fig = _figure(pairs, title)
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def render_cell(pairs: list[list], title: str):
    """One cell of a genotype as an RGB array ``[H, W, 3]`` (uint8), e.g. for TensorBoard's add_image."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig = _figure(pairs, title)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def _figure(pairs: list[list], title: str):
    """Inputs on the left, the nodes (4 in DARTS's cell) in the middle, the concatenation on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = {0: (0.0, 2.2), 1: (0.0, 0.8)}
    nodes = len(pairs) // 2
    pos.update({j + 2: (1.6 + 1.3 * j, 2.6 - 0.95 * j) for j in range(nodes)})
    out = (1.6 + 1.3 * nodes, 1.5)
    labels = {0: "c_{k-2}", 1: "c_{k-1}"} | {j + 2: str(j) for j in range(nodes)}
    fig, ax = plt.subplots(figsize=(9, 4.2))
    arrow = {"arrowstyle": "-|>", "color": "#555", "lw": 1.2, "shrinkA": 16, "shrinkB": 16}
    for n, (op, src) in enumerate(pairs):
        dst = n // 2 + 2
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        bend = 0.25 if n % 2 else -0.25
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=arrow | {"connectionstyle": f"arc3,rad={bend}"})
        # The midpoint of matplotlib's arc3 curve (a quadratic Bezier), so each label sits on its own edge.
        label_x = (x0 + x1) / 2 + 0.5 * bend * (y1 - y0)
        label_y = (y0 + y1) / 2 - 0.5 * bend * (x1 - x0)
        ax.text(label_x, label_y, op, fontsize=8, ha="center", va="center",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    for j in range(nodes):
        ax.annotate("", xy=out, xytext=pos[j + 2], arrowprops=arrow | {"color": "#bbb"})
    for key, (x, y) in pos.items():
        color = "#9ecae1" if key < 2 else "#fdd49e"
        ax.text(x, y, labels[key], ha="center", va="center", fontsize=10,
                bbox={"boxstyle": "circle", "fc": color, "ec": "#333"})
    ax.text(*out, "c_{k}\nattention(concat)", ha="center", va="center", fontsize=9,
            bbox={"boxstyle": "round", "fc": "#c7e9c0", "ec": "#333"})
    ax.set_xlim(-0.6, out[0] + 1.0)
    ax.set_ylim(-1.0, 3.3)
    ax.axis("off")
    ax.set_title(title)
    return fig


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both lower energy (x) and higher accuracy (y), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def draw_front(runs: list[dict], path: str | Path, title: str = "accuracy vs energy") -> Path:
    """Accuracy against energy per sample, one labelled point per run, the Pareto front joined by a line.

    ``runs``: dicts with ``label``, ``accuracy`` (0-1) and ``energy_uj_per_sample``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["energy_uj_per_sample"] for r in runs]
    ys = [100 * r["accuracy"] for r in runs]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(xs, ys, color="tab:blue", zorder=3)
    for x, y, r in zip(xs, ys, runs):
        ax.annotate(r["label"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    front = pareto_front(list(zip(xs, ys)))
    ax.plot([xs[i] for i in front], [ys[i] for i in front], color="tab:orange", label="Pareto front", zorder=2)
    ax.set_xlabel("energy per sample (uJ, SOPs x E_AC + MACs x E_MAC)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path

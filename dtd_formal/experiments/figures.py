"""Figures: 2-D networks with their linear regions, inputs, roots and input-to-root segments.

The region colouring is sampled on a pixel grid (a picture, not a proof); the layer-1 hyperplanes are drawn as
exact lines, and every segment's colour comes from the exact verdict of :func:`dtd_formal.root_regions`
(green: the root stays in the input's closed region, red: it leaves; dashed: leaves the pattern but not the
affine map).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import to_float
from ..network import Network
from ..regions import RootRegionReport, root_regions
from ..rules import Rule, ZPlus


def region_grid(net: Network, extent: tuple[float, float, float, float], resolution: int = 300) -> tuple[np.ndarray, int]:
    """Pattern index of every pixel of a 2-D grid (float64 patterns) and the number of distinct patterns seen."""
    x0, x1, y0, y1 = extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1)
    pats = net.to_float().pattern(pts)
    keys = np.concatenate([(p > 0).astype(np.int8) for p in pats], axis=1) if pats else np.zeros((len(pts), 1))
    _, idx = np.unique(keys, axis=0, return_inverse=True)
    return idx.reshape(gx.shape), int(idx.max()) + 1


def plot_regions(
    net: Network,
    out: str | Path,
    inputs: Any = None,
    rule: Rule | None = None,
    extent: tuple[float, float, float, float] = (-2.0, 2.0, -2.0, 2.0),
    output: int = 0,
    title: str | None = None,
    resolution: int = 300,
) -> RootRegionReport | None:
    """Draw a 2-input network's regions, inputs, layer-1 roots and segments to ``out`` (PNG); returns the report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if net.input_size != 2:
        raise InputError(f"regions plot needs a 2-input network, this one has {net.input_size} inputs")
    rule = rule or ZPlus()
    idx, n_regions = region_grid(net, extent, resolution)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(idx, origin="lower", extent=extent, cmap="tab20", alpha=0.45, interpolation="nearest", aspect="auto")
    xs_line = np.linspace(extent[0], extent[1], 2)
    for w, b in zip(to_float(net.weight(1)), to_float(net.bias(1))):
        if abs(w[1]) > 1e-12:
            ax.plot(xs_line, -(w[0] * xs_line + b) / w[1], color="k", lw=0.6, alpha=0.6)
        elif abs(w[0]) > 1e-12:
            ax.axvline(-b / w[0], color="k", lw=0.6, alpha=0.6)
    report = None
    if inputs is not None and len(inputs):
        batch = net.as_batch(inputs)
        report = root_regions(net, batch, rule, scope="upper", output=output, layers=1)
        xf = to_float(batch)
        ax.scatter(xf[:, 0], xf[:, 1], s=18, c="k", zorder=3, label="input")
        for r in report.records:
            p, q = xf[r.input_index], to_float(r.root)
            colour = "tab:red" if r.leaves_pattern else "tab:green"
            style = "--" if r.leaves_pattern and not r.leaves_affine_map else "-"
            ax.plot([p[0], q[0]], [p[1], q[1]], style, color=colour, lw=1.2, zorder=2)
            ax.scatter([q[0]], [q[1]], s=14, marker="x", c=colour, zorder=3)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x_1")
    ax.set_ylabel("x_2")
    ax.set_title(title or f"{net!r}\n{n_regions} regions on the grid; {rule.spec()} layer-1 roots "
                 "(green stays, red leaves)", fontsize=10)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return report


def toy_2d_network(seed: int = 0, hidden: tuple[int, ...] = (6, 6)) -> Network:
    """A small seeded 2-input ReLU net (weights with small denominators) for illustrations."""
    rng = np.random.default_rng(seed)
    sizes = (2, *hidden, 1)
    Ws = [np.round(rng.normal(size=(o, i)) * 8) / 8 for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.round(rng.normal(size=o) * 4) / 8 for o in sizes[1:]]
    return Network(Ws, bs, metadata={"name": "toy_2d", "seed": seed})

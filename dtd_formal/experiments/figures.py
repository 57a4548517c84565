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


def _slice_patterns(net: Any, pts: np.ndarray) -> np.ndarray:
    """Region index of each float point (rows) of a graph's input: ReLU signs and max-pool winners from the
    certified float pass (-1 where the pass cannot decide: a pixel on a boundary)."""
    from ..graph.certified import certified_graph_forward

    base = [None] * len(net.nodes)
    keys, unsure = [], []
    for start in range(0, len(pts), 1024):  # chunks keep the max-pool windows' arrays small
        chunk = pts[start:start + 1024]
        cert = certified_graph_forward(net, base, 0, chunk, rounded=chunk)
        parts = [(s > 0).astype(np.int8) for _, s in sorted(cert.signs.items())]
        parts += [w.reshape(len(chunk), -1).astype(np.int8) for _, w in sorted(cert.winners.items())]
        keys.append(np.concatenate(parts, axis=1) if parts else np.zeros((len(chunk), 1), dtype=np.int8))
        unsure.append(cert.uncertain)
    _, idx = np.unique(np.concatenate(keys), axis=0, return_inverse=True)
    return np.where(np.concatenate(unsure), -1, idx.ravel())


def plot_slice(net: Any, out: str | Path, x: Any, rule: Rule | None = None, layer: int = 1, neuron: Any = None,
               output: int = 0, resolution: int = 120, seed: int = 0) -> Any:
    r"""The plane through an input x of a many-input network (dense or graph) spanned by the segment to one root
    and a seeded random direction orthogonal to it: :math:`x + s\,(	ilde x_j - x) + t\,\|	ilde x_j - x\|\,u`.

    Regions on the plane are coloured from a certified float pass (pixels it cannot decide are white); x, the root
    and the segment are drawn with the root's exact verdict (:func:`dtd_formal.root_regions`). Layer 1 only: the
    root lives in the input space. Returns the record of the drawn root.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..graph import GraphNetwork

    rule = rule or ZPlus()
    if layer != 1:
        raise InputError("a slice picture shows layer-1 roots (they live in the input space); use --layer 1")
    graph = net if isinstance(net, GraphNetwork) else _as_graph(net)
    xa = net.as_batch(x)[0] if not isinstance(net, GraphNetwork) else net.as_input(x)
    neurons = None if neuron is None else [neuron]
    rep = root_regions(net, xa, rule, scope="upper", output=output, layers=1, neurons=neurons)
    if not rep.records:
        raise InputError(f"no layer-1 root to draw at this input (neuron {neuron!r}: not relevant)")
    rec = rep.records[0]
    xf, rf = to_float(xa), to_float(rec.root)
    d1 = rf - xf
    scale = float(np.linalg.norm(d1))
    if not scale > 0:
        raise InputError("the root equals the input: the slice has no direction")
    u = np.random.default_rng(seed).normal(size=d1.shape)
    u -= u.dot(d1) / d1.dot(d1) * d1
    u *= scale / float(np.linalg.norm(u))
    s_grid, t_grid = np.meshgrid(np.linspace(-0.5, 1.5, resolution), np.linspace(-1.0, 1.0, resolution))
    pts = xf[None, :] + s_grid.ravel()[:, None] * d1[None, :] + t_grid.ravel()[:, None] * u[None, :]
    idx = _slice_patterns(graph, pts).reshape(s_grid.shape).astype(float)
    idx[idx < 0] = np.nan
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(np.mod(idx, 20), origin="lower", extent=(-0.5, 1.5, -1.0, 1.0), cmap="tab20", alpha=0.5,
              interpolation="nearest", aspect="auto")
    colour = "tab:red" if rec.leaves_pattern else "tab:green"
    ax.plot([0, 1], [0, 0], "--" if rec.leaves_pattern and not rec.leaves_affine_map else "-", color=colour, lw=1.5)
    ax.scatter([0], [0], c="k", s=24, zorder=3, label="input x")
    ax.scatter([1], [0], c=colour, marker="x", s=40, zorder=3, label=f"root of neuron {rec.neuron}")
    ax.set_xlabel("s (x -> root)")
    ax.set_ylabel("t (random orthogonal direction, same length)")
    verdict = "leaves the region" if rec.leaves_pattern else "stays in the closed region"
    name = repr(net) if len(repr(net)) <= 70 else repr(net)[:67] + "..."
    ax.set_title(f"{name}\n{rule.spec()} root of layer-1 neuron {rec.neuron}: {verdict} (exact)", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return rec


def _as_graph(net: Network) -> Any:
    """A dense network as an operator graph (the same exact weights), for the batched certified pass."""
    from ..graph import GraphBuilder

    g = GraphBuilder((net.input_size,))
    h = g.input
    for l in range(1, net.n_layers + 1):
        h = g.dense(h, net.weight(l), net.bias(l))
        if net.has_relu(l):
            h = g.relu(h)
    return g.network(h)


def toy_2d_network(seed: int = 0, hidden: tuple[int, ...] = (6, 6)) -> Network:
    """A small seeded 2-input ReLU net (weights with small denominators) for illustrations."""
    rng = np.random.default_rng(seed)
    sizes = (2, *hidden, 1)
    Ws = [np.round(rng.normal(size=(o, i)) * 8) / 8 for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.round(rng.normal(size=o) * 4) / 8 for o in sizes[1:]]
    return Network(Ws, bs, metadata={"name": "toy_2d", "seed": seed})

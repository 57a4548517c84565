"""Figures: 2-D networks with their linear regions, inputs, roots and input-to-root segments.

A 2-input network's regions are exact: every activation pattern seen on a pixel grid gives its closed region
(:meth:`dtd_formal.network.Network.region`), clipped exactly to the plotted box; a region is counted and drawn only
when its polygon has positive area, so a hyperplane (a grid row where a neuron is exactly 0, a measure-zero set) is
never a region. Regions are drawn as vector polygons (no pixel image: a saved PDF/SVG has exact edges) in a pale
palette (:data:`REGION_COLOURS`, neighbours differ); roots and segments in a separate dark palette
(:data:`ROOT_COLOURS`) from the exact verdict of :func:`dtd_formal.root_regions` (green: the root stays in the
input's closed region, red: it leaves; dashed: it leaves the pattern but not the affine map).

Slices through many-input networks (:func:`slice_figure`) colour the regions that a certified float pass decides
per pixel (a picture, not a proof), drawn as filled contours (vector paths); undecided pixels stay white.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import to_float, to_fraction
from ..network import Network
from ..regions import RootRegionReport, root_regions
from ..rules import Rule, ZPlus

#: the regions' palette (matplotlib's "Pastel1"); adjacent regions get different colours
REGION_PALETTE = "Pastel1"
REGION_COLOURS: tuple[str, ...] = ("#fbb4ae", "#b3cde3", "#ccebc5", "#decbe4", "#fed9a6", "#ffffcc", "#e5d8bd",
                                   "#fddaec", "#f2f2f2")
#: the roots' and segments' palette (dark, disjoint from :data:`REGION_COLOURS`), by exact verdict
ROOT_COLOURS: dict[str, str] = {"stays": "#1b7837", "leaves": "#b2182b"}
#: the input points' colour
INPUT_COLOUR = "#000000"
#: region edges
EDGE_COLOUR = "#4d4d4d"

_RULE_WORDS = {"lrp0": "LRP-0", "epsilon": "LRP-\u03b5", "gamma": "LRP-\u03b3", "zplus": "z+",
               "alphabeta": "LRP-\u03b1\u03b2", "zbox": "zB", "wsquare": "w\u00b2", "flat": "flat"}
_PARAM_WORDS = {"epsilon": "\u03b5", "gamma": "\u03b3", "alpha": "\u03b1", "beta": "\u03b2", "low": "low",
                "high": "high"}


# ---------------------------------------------------------------------------------------------------- words
def rule_words(rule: Rule) -> str:
    """A rule's name in words for a figure title (``z+ rule``, ``LRP-\u03b3 rule (\u03b3 = 0.25)``), never a repr.

    Parameters
    ----------
    rule : Rule
        A catalogue rule or a user rule (named by its class).

    Returns
    -------
    str
        The rule's name, its parameters and, for ``bias="zennit"``, the convention.
    """
    from ..rules.parse import CATALOGUE

    name = getattr(rule, "name", "")
    if CATALOGUE.get(name) is type(rule):
        text = f"{_RULE_WORDS.get(name, name)} rule"
    else:
        text = f"user rule {type(rule).__name__}"
    params = rule.params() if hasattr(rule, "params") else {}
    simple = {k: v for k, v in params.items() if np.ndim(v) == 0}
    if simple:
        text += " (" + ", ".join(f"{_PARAM_WORDS.get(k, k)} = {_number(v)}" for k, v in simple.items()) + ")"
    if getattr(rule, "bias", "dtd") == "zennit":
        text += ", zennit bias convention"
    return text


def _number(v: Any) -> str:
    """A parameter as a short number (``0.25``, ``1/3``, ``1e-06``)."""
    if isinstance(v, Fraction):
        return str(v) if v.denominator != 1 else str(v.numerator)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def network_words(net: Any) -> str:
    """A network in words for a figure title (``2-6-6-1 ReLU network``), never a repr."""
    if isinstance(net, Network):
        text = "-".join(str(n) for n in net.layer_sizes) + " ReLU network"
    else:
        shape = " \u00d7 ".join(str(d) for d in getattr(net, "input_shape", (net.input_size,)))
        text = f"operator graph ({getattr(net, 'n_layers', '?')} layers) on {shape} inputs"
    name = getattr(net, "metadata", {}).get("name")
    return f"{text} \u201c{name}\u201d" if isinstance(name, str) and name else text


def neuron_words(net: Any, layer: int, neuron: int) -> str:
    """A neuron in words: ``neuron 3``, or ``neuron 13 (channel 0, row 2, column 1)`` on a conv layer."""
    coords = net.neuron_coords(layer, neuron) if hasattr(net, "neuron_coords") else (neuron,)
    if len(coords) == 3:
        c, y, x = coords
        return f"neuron {neuron} (channel {c}, row {y}, column {x})"
    return f"neuron {neuron}"


# ---------------------------------------------------------------------------------------------------- regions
@dataclass
class PlaneRegion:
    """One linear region of a 2-input network inside the plotted box.

    Attributes
    ----------
    pattern : list of numpy.ndarray
        The activation pattern (per ReLU layer, +1 / -1; 0 only for a neuron that is 0 on the whole region).
    polygon : numpy.ndarray
        The vertices, shape (k, 2), of the region clipped to the box (float64).
    area : float
        The polygon's area (positive).
    exact_polygon : list of tuple of Fraction or None
        The exact vertices, where the region was decided exactly (a small one, or one whose pattern has a zero).
    """

    pattern: list[np.ndarray]
    polygon: np.ndarray
    area: float
    exact_polygon: list[tuple[Fraction, Fraction]] | None = None


def _clip(poly: list[tuple[Fraction, Fraction]], a: Any, b: Any) -> list[tuple[Fraction, Fraction]]:
    """The convex polygon ``poly`` cut by the half-plane a . x <= b (exact; Sutherland-Hodgman)."""
    a0, a1, bb = to_fraction(a[0]), to_fraction(a[1]), to_fraction(b)
    slack = [bb - a0 * p[0] - a1 * p[1] for p in poly]
    if all(v >= 0 for v in slack):
        return poly
    out: list[tuple[Fraction, Fraction]] = []
    n = len(poly)
    for i in range(n):
        p, q, sp, sq = poly[i], poly[(i + 1) % n], slack[i], slack[(i + 1) % n]
        if sp >= 0:
            out.append(p)
        if (sp > 0 > sq) or (sp < 0 < sq):
            t = sp / (sp - sq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    dedup = [v for i, v in enumerate(out) if v != out[i - 1]] if len(out) > 1 else out
    return dedup


def _area(poly: list[tuple[Fraction, Fraction]]) -> Fraction:
    """Exact area of a polygon (shoelace; counter-clockwise gives a positive value)."""
    n = len(poly)
    twice = sum((poly[i][0] * poly[(i + 1) % n][1] - poly[(i + 1) % n][0] * poly[i][1] for i in range(n)), Fraction(0))
    return abs(twice) / 2


def _extent_box(extent: tuple[float, float, float, float]) -> list[tuple[Fraction, Fraction]]:
    x0, x1, y0, y1 = (to_fraction(v, "extent") for v in extent)
    if not (x0 < x1 and y0 < y1):
        raise InputError(f"extent {extent!r}: expected x0 < x1 and y0 < y1")
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _grid(extent: tuple[float, float, float, float], resolution: int) -> np.ndarray:
    """The pixel centres' grid points (rows: y, columns: x), shape (resolution * resolution, 2)."""
    if not (isinstance(resolution, (int, np.integer)) and resolution >= 2):
        raise InputError(f"resolution must be an integer of at least 2, got {resolution!r}")
    x0, x1, y0, y1 = extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def _float_rows(weights: list[np.ndarray], biases: list[np.ndarray], relu: list[bool],
                pattern: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """float64 (A, b) of the closed region of ``pattern`` (the rows of :meth:`Network.region`, in floats)."""
    A, c = np.eye(weights[0].shape[1]), np.zeros(weights[0].shape[1])
    rows, rhs, k = [], [], 0
    for W, bias, has_relu in zip(weights, biases, relu):
        if k == len(pattern):
            break
        A, c = W @ A, W @ c + bias
        if has_relu:
            s = pattern[k]
            k += 1
            rows += [-A[s >= 0], A[s <= 0]]
            rhs += [c[s >= 0], -c[s <= 0]]
            A, c = A * (s > 0)[:, None], c * (s > 0)
    if not rows:
        return np.zeros((0, 2)), np.zeros(0)
    return np.concatenate(rows), np.concatenate(rhs)


def _float_clip(poly: np.ndarray, A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The convex polygon ``poly`` (k x 2) cut by every half-plane A x <= b (float64; a small tolerance keeps a
    vertex that lies on a line). Rows that hold on the whole current polygon are dropped (they keep holding on
    what the other cuts leave), so only the cuts that matter are made."""
    tol = 1e-12 * (np.abs(b) + np.abs(A).sum(axis=1) * (1 + np.abs(poly).max()))
    while len(A) and len(poly) >= 3:
        slack = b[:, None] - A @ poly.T
        bad = np.any(slack < -tol[:, None], axis=1)
        if not bad.any():
            break
        A, b, tol, slack = A[bad], b[bad], tol[bad], slack[bad]
        row, t = slack[0], tol[0]
        out = []
        for i in range(len(poly)):
            j = (i + 1) % len(poly)
            if row[i] >= -t:
                out.append(poly[i])
            if (row[i] > t and row[j] < -t) or (row[i] < -t and row[j] > t):
                out.append(poly[i] + row[i] / (row[i] - row[j]) * (poly[j] - poly[i]))
        poly = np.array(out).reshape(-1, 2)
        A, b, tol = A[1:], b[1:], tol[1:]
    return poly if len(poly) >= 3 else poly[:0]


def _float_area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _exact_polygon(net: Network, pattern: list[np.ndarray],
                   box: list[tuple[Fraction, Fraction]]) -> tuple[list[tuple[Fraction, Fraction]], Fraction]:
    """The exact polygon of ``pattern``'s closed region inside ``box`` and its exact area."""
    A, b = net.region(pattern)
    poly = box
    for a_i, b_i in zip(A, b):
        poly = _clip(poly, a_i, b_i)
        if len(poly) < 3:
            return [], Fraction(0)
    return poly, _area(poly)


def plane_regions(net: Network, extent: tuple[float, float, float, float] = (-2.0, 2.0, -2.0, 2.0),
                  resolution: int = 300) -> tuple[list[PlaneRegion], np.ndarray]:
    """The linear regions of a 2-input network inside a box, as polygons of positive area.

    Every activation pattern that a grid point of ``resolution`` x ``resolution`` (float64) shows is turned into its
    closed region (the rows of :meth:`Network.region`) clipped to the box. A pattern whose polygon is not clearly of
    positive area in float64 is decided exactly (exact rows, exact clipping); one of zero area (a hyperplane, a
    vertex, or an infeasible pattern from float rounding) is not a region. Regions smaller than the grid spacing can
    be missed.

    Parameters
    ----------
    net : Network
        A dense network with 2 inputs.
    extent : tuple of float
        The box (x0, x1, y0, y1).
    resolution : int
        Grid points per side.

    Returns
    -------
    regions : list of PlaneRegion
        The regions of positive area, in order of first appearance on the grid.
    pixels : numpy.ndarray
        Shape (resolution, resolution), rows along y: each grid point's index into ``regions``, or -1 where its
        pattern is not a region of positive area (a point on a hyperplane).

    Raises
    ------
    InputError
        For a network that is not a dense 2-input one, an empty box or a resolution below 2.
    """
    if not isinstance(net, Network) or net.input_size != 2:
        raise InputError(f"plane regions need a dense 2-input network, got {net!r}")
    box = _extent_box(extent)
    pts = _grid(extent, resolution)
    pats = net.to_float().pattern(pts)
    keys = np.ascontiguousarray(np.concatenate(pats, axis=1).astype(np.int8) if pats
                                else np.zeros((len(pts), 1), dtype=np.int8))
    _, first, inverse = np.unique(keys.view(np.dtype((np.void, keys.shape[1]))).ravel(), return_index=True,
                                  return_inverse=True)
    uniq = keys[first]
    sizes = [p.shape[1] for p in pats]
    weights = [to_float(net.weight(l)) for l in range(1, net.n_layers + 1)]
    biases = [to_float(net.bias(l)) for l in range(1, net.n_layers + 1)]
    relu = [net.has_relu(l) for l in range(1, net.n_layers + 1)]
    fbox = np.array([[float(a), float(b)] for a, b in box])
    clear = 1e-9 * _float_area(fbox)  # far above float64 clipping error: positive for sure
    regions: list[PlaneRegion] = []
    index_of = np.full(len(uniq), -1, dtype=np.int64)
    for u in np.argsort(first):  # regions in order of first appearance
        row, pattern, at = uniq[u], [], 0
        for n in sizes:
            pattern.append(row[at:at + n].astype(int))
            at += n
        poly = _float_clip(fbox, *_float_rows(weights, biases, relu, pattern))
        area = _float_area(poly)
        if area > clear:
            exact: list[tuple[Fraction, Fraction]] | None = None
        else:  # small, or on a hyperplane: decided exactly
            exact, exact_area = _exact_polygon(net, pattern, box)
            if not exact_area > 0:
                continue
            poly, area = np.array([[float(a), float(b)] for a, b in exact]), float(exact_area)
        index_of[u] = len(regions)
        regions.append(PlaneRegion(pattern, poly, area, exact))
    return regions, index_of[inverse.ravel()].reshape(resolution, resolution)


def region_grid(net: Network, extent: tuple[float, float, float, float], resolution: int = 300) -> tuple[np.ndarray, int]:
    """Region index of every grid point (-1 on a hyperplane) and the number of regions of positive area.

    See :func:`plane_regions`; a grid row where a neuron is exactly 0 is not counted as a region.
    """
    regions, pixels = plane_regions(net, extent, resolution)
    return pixels, len(regions)


def _adjacent_pairs(pixels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of region indices that touch on the grid (4-neighbours, also across one undecided pixel)."""
    pairs: set[tuple[int, int]] = set()
    for step in (1, 2):
        for a, b in ((pixels[:, :-step], pixels[:, step:]), (pixels[:-step, :], pixels[step:, :])):
            m = (a >= 0) & (b >= 0) & (a != b)
            for u, v in np.unique(np.stack([np.minimum(a[m], b[m]), np.maximum(a[m], b[m])], axis=1), axis=0):
                pairs.add((int(u), int(v)))
    return pairs


def region_colours(pixels: np.ndarray, n_regions: int) -> list[str]:
    """A colour of :data:`REGION_COLOURS` per region, neighbours on the grid different (greedy colouring)."""
    neighbours: list[set[int]] = [set() for _ in range(n_regions)]
    for u, v in _adjacent_pairs(pixels):
        neighbours[u].add(v)
        neighbours[v].add(u)
    chosen: list[int] = []
    for i in range(n_regions):
        used = {chosen[j] for j in neighbours[i] if j < i}
        chosen.append(next(c for c in range(len(REGION_COLOURS) + n_regions) if c not in used))
    return [REGION_COLOURS[c % len(REGION_COLOURS)] for c in chosen]


# ---------------------------------------------------------------------------------------------------- figures
@dataclass
class RegionsFigure:
    """A drawn regions figure and what it shows.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
        The figure (not yet saved; :meth:`save` writes and closes it).
    regions : int
        The number of linear regions drawn (regions of positive area; hyperplanes are not regions).
    report : RootRegionReport or None
        The exact root verdicts of the drawn roots (2-input pictures).
    record : Any
        The drawn root's record (slices).
    """

    figure: Any
    regions: int
    report: RootRegionReport | None = None
    record: Any = None

    def save(self, out: str | Path, dpi: int = 110) -> None:
        """Write the figure to ``out`` (the format from its suffix: .png, .pdf, .svg) and close it."""
        import matplotlib.pyplot as plt

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.figure.savefig(out, dpi=dpi)
        except ValueError as exc:  # an unknown format
            raise InputError(f"{out}: cannot write the figure ({exc})") from None
        finally:
            plt.close(self.figure)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(*lines: str, width: int = 78) -> str:
    """Title lines, each wrapped at ``width`` characters."""
    import textwrap

    return "\n".join(textwrap.fill(line, width) for line in lines)


def _legend(ax: Any, n_regions: int, inputs: bool, verdicts: set[str], dashed: bool, root_label: str) -> None:
    """The legend: the input point, the roots by verdict, the segments and the regions."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    if inputs:
        handles.append(Line2D([], [], ls="", marker="o", color=INPUT_COLOUR, markersize=5, label="input point x"))
    for key, words in (("stays", "stays in x's region"), ("leaves", "leaves x's region")):
        if key in verdicts:
            handles.append(Line2D([], [], marker="x", color=ROOT_COLOURS[key], lw=1.2,
                                  label=f"{root_label}: {words}"))
    if dashed:
        handles.append(Line2D([], [], ls="--", color=ROOT_COLOURS["leaves"], lw=1.2,
                              label="dashed: leaves the pattern, same affine map"))
    handles.append(Patch(facecolor=REGION_COLOURS[0], edgecolor=EDGE_COLOUR, lw=0.5,
                         label=f"linear regions ({n_regions}; neighbours differ in colour)"))
    ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.85)


def regions_figure(net: Network, inputs: Any = None, rule: Rule | None = None,
                   extent: tuple[float, float, float, float] = (-2.0, 2.0, -2.0, 2.0), output: int = 0,
                   title: str | None = None, resolution: int = 300) -> RegionsFigure:
    """The figure of a 2-input network's regions, inputs, layer-1 roots and segments (not saved).

    Parameters
    ----------
    net : Network
        A dense network with 2 inputs.
    inputs : array-like, optional
        Input points (rows); their layer-1 roots and segments are drawn with exact verdicts.
    rule : Rule, optional
        The root-point rule (default z+).
    extent : tuple of float
        The box (x0, x1, y0, y1).
    output : int
        The explained output.
    title : str, optional
        Replaces the title (by default: network, region count, rule, layer and neurons in words).
    resolution : int
        Grid points per side that find the regions (:func:`plane_regions`).

    Returns
    -------
    RegionsFigure
        The figure, the number of regions and the exact root report.
    """
    if net.input_size != 2:
        raise InputError(f"regions plot needs a 2-input network, this one has {net.input_size} inputs")
    plt = _pyplot()
    from matplotlib.collections import PolyCollection

    rule = rule or ZPlus()
    regions, pixels = plane_regions(net, extent, resolution)
    colours = region_colours(pixels, len(regions))
    fig, ax = plt.subplots(figsize=(6.4, 6))
    ax.add_collection(PolyCollection([r.polygon for r in regions], facecolors=colours,
                                     edgecolors=EDGE_COLOUR, linewidths=0.5, zorder=1, label="linear regions"))
    report, verdicts, dashed = None, set(), False
    if inputs is not None and len(inputs):
        batch = net.as_batch(inputs)
        report = root_regions(net, batch, rule, scope="upper", output=output, layers=1)
        xf = to_float(batch)
        ax.scatter(xf[:, 0], xf[:, 1], s=18, c=INPUT_COLOUR, zorder=4, label="input point x")
        for r in report.records:
            p, q = xf[r.input_index], to_float(r.root)
            key = "leaves" if r.leaves_pattern else "stays"
            verdicts.add(key)
            style = "--" if r.leaves_pattern and not r.leaves_affine_map else "-"
            dashed |= style == "--"
            ax.plot([p[0], q[0]], [p[1], q[1]], style, color=ROOT_COLOURS[key], lw=1.2, zorder=2)
            ax.scatter([q[0]], [q[1]], s=14, marker="x", c=ROOT_COLOURS[key], zorder=3)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    _legend(ax, len(regions), report is not None, verdicts, dashed, "root")
    ax.set_title(title or _title(f"{network_words(net)}: {len(regions)} linear regions in the box",
                                 f"{rule_words(rule)}: roots of every layer-1 neuron (exact verdicts)"), fontsize=10)
    fig.tight_layout()
    return RegionsFigure(fig, len(regions), report=report)


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
    """Draw a 2-input network's regions, inputs, layer-1 roots and segments to ``out`` (:func:`regions_figure`;
    PNG, PDF or SVG by suffix); returns the exact root report (None without inputs)."""
    fig = regions_figure(net, inputs, rule, extent, output, title, resolution)
    fig.save(out)
    return fig.report


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


def _plane_network(net: Network, x0: np.ndarray, d1: np.ndarray, u: np.ndarray) -> Network:
    """The 2-input network (s, t) -> net(x0 + s d1 + t u): the plane map folded exactly into the first layer."""
    from ..exact import to_fraction_array

    M = np.stack([to_fraction_array(d1, "direction"), to_fraction_array(u, "direction")], axis=1)
    W1, b1 = net.weight(1), net.bias(1)
    weights = [W1.dot(M)] + [net.weight(l) for l in range(2, net.n_layers + 1)]
    biases = [W1.dot(x0) + b1] + [net.bias(l) for l in range(2, net.n_layers + 1)]
    return Network(weights, biases, final_relu=net.final_relu)


def _pixel_hulls(pixels: np.ndarray, s_axis: np.ndarray, t_axis: np.ndarray, n: int) -> list[np.ndarray]:
    """Each region's polygon on a slice of an operator graph: the convex hull of its pixels' squares.

    A region of a ReLU / max-pool network restricted to a plane is convex, so the hull stays inside it up to half a
    pixel, and its edges are straight lines (no pixel steps); undecided pixels between regions stay uncovered.
    """
    from scipy.spatial import ConvexHull

    hs, ht = (s_axis[1] - s_axis[0]) / 2, (t_axis[1] - t_axis[0]) / 2
    corners = np.array([[-hs, -ht], [hs, -ht], [hs, ht], [-hs, ht]])
    out = []
    for k in range(n):
        ti, si = np.nonzero(pixels == k)
        pts = (np.stack([s_axis[si], t_axis[ti]], axis=1)[:, None, :] + corners[None]).reshape(-1, 2)
        hull = ConvexHull(pts)
        out.append(pts[hull.vertices])
    return out


def slice_figure(net: Any, x: Any, rule: Rule | None = None, layer: int = 1, neuron: Any = None, output: int = 0,
                 resolution: int = 120, seed: int = 0) -> RegionsFigure:
    r"""The figure of the plane through an input x of a many-input network (dense or graph) spanned by the segment
    to one root and a seeded random direction orthogonal to it: :math:`x + s\,(\tilde x_j - x) + t\,\|\tilde x_j -
    x\|\,u` (not saved).

    Dense networks: the regions on the plane are exact polygons (:func:`plane_regions` of the network with the plane
    map folded into its first layer). Operator graphs: a certified float pass decides each pixel's region (undecided
    pixels stay white) and a region is drawn as the convex hull of its pixels (regions are convex on a plane; edges
    within a pixel of the truth). Either way the regions are vector polygons. x, the root and the segment are drawn
    with the root's exact verdict (:func:`dtd_formal.root_regions`). Layer 1 only: the root lives in the input space.

    Parameters
    ----------
    net : Network or GraphNetwork
        The network.
    x : array-like
        The input (any array shape of the network's input).
    rule : Rule, optional
        The root-point rule (default z+).
    layer : int
        Must be 1.
    neuron : int, optional
        The layer-1 neuron whose root spans the plane (default: the first relevant one).
    output : int
        The explained output.
    resolution : int
        Pixels per side.
    seed : int
        Seed of the orthogonal direction.

    Returns
    -------
    RegionsFigure
        The figure, the number of regions on the plane and the drawn root's record.
    """
    plt = _pyplot()
    from matplotlib.collections import PolyCollection

    from ..graph import GraphNetwork

    rule = rule or ZPlus()
    if layer != 1:
        raise InputError("a slice picture shows layer-1 roots (they live in the input space); use --layer 1")
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
    box = (-0.5, 1.5, -1.0, 1.0)
    if isinstance(net, Network):
        regions, pixels = plane_regions(_plane_network(net, xa, d1, u), box, resolution)
        polygons = [r.polygon for r in regions]
    else:
        s_axis, t_axis = np.linspace(box[0], box[1], resolution), np.linspace(box[2], box[3], resolution)
        s_grid, t_grid = np.meshgrid(s_axis, t_axis)
        pts = xf[None, :] + s_grid.ravel()[:, None] * d1[None, :] + t_grid.ravel()[:, None] * u[None, :]
        raw = _slice_patterns(net, pts).reshape(s_grid.shape)
        labels = np.unique(raw[raw >= 0])
        pixels = np.where(raw >= 0, np.searchsorted(labels, raw), -1)
        polygons = _pixel_hulls(pixels, s_axis, t_axis, len(labels))
    colours = region_colours(pixels, len(polygons))
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    ax.add_collection(PolyCollection(polygons, facecolors=colours, edgecolors=EDGE_COLOUR, linewidths=0.5, zorder=1,
                                     label="linear regions"))
    key = "leaves" if rec.leaves_pattern else "stays"
    dashed = rec.leaves_pattern and not rec.leaves_affine_map
    ax.plot([0, 1], [0, 0], "--" if dashed else "-", color=ROOT_COLOURS[key], lw=1.5, zorder=2)
    ax.scatter([0], [0], c=INPUT_COLOUR, s=24, zorder=3)
    ax.scatter([1], [0], c=ROOT_COLOURS[key], marker="x", s=40, zorder=3)
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    ax.set_xlabel("s (from x to the root)")
    ax.set_ylabel("t (random orthogonal direction, same length)")
    _legend(ax, len(polygons), True, {key}, dashed, f"root of {neuron_words(net, 1, rec.neuron)}")
    verdict = "leaves the region" if rec.leaves_pattern else "stays in the closed region"
    ax.set_title(_title(f"{network_words(net)}: a plane through x, {len(polygons)} linear regions on it",
                        f"{rule_words(rule)}: the root of layer 1, {neuron_words(net, 1, rec.neuron)} {verdict} "
                        "(exact)"), fontsize=9)
    fig.tight_layout()
    return RegionsFigure(fig, len(polygons), report=rep, record=rec)


def plot_slice(net: Any, out: str | Path, x: Any, rule: Rule | None = None, layer: int = 1, neuron: Any = None,
               output: int = 0, resolution: int = 120, seed: int = 0) -> Any:
    """Draw :func:`slice_figure` to ``out`` (PNG, PDF or SVG by suffix); returns the drawn root's record."""
    fig = slice_figure(net, x, rule, layer, neuron, output, resolution, seed)
    fig.save(out)
    return fig.record


def toy_2d_network(seed: int = 0, hidden: tuple[int, ...] = (6, 6)) -> Network:
    """A small seeded 2-input ReLU net (weights with small denominators) for illustrations."""
    rng = np.random.default_rng(seed)
    sizes = (2, *hidden, 1)
    Ws = [np.round(rng.normal(size=(o, i)) * 8) / 8 for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.round(rng.normal(size=o) * 4) / 8 for o in sizes[1:]]
    return Network(Ws, bs, metadata={"name": "toy_2d", "seed": seed})

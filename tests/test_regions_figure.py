"""``dtd-formal regions`` figures (dtd_formal.experiments.figures): region counts on hand-made 2-input networks whose
regions are known by hand, hyperplanes not counted, vector region edges (no pixel image in the saved SVG/PDF),
separate palettes for regions and roots, a legend, and titles in words.

The "diamond" network: layer 1 computes relu(x1 - c), relu(c - x1), relu(x2 - c), relu(c - x2) (the two lines
x1 = c and x2 = c), layer 2 one neuron relu(|x1 - c| + |x2 - c| - r) (a diamond of radius r around (c, c)), output
its value. In a box around (c, c) wider than the diamond the regions are: each of the four quadrants split by the
diamond's edge into a triangle and the rest, 8 in all. On the lines x1 = c and x2 = c the first layer's pattern
has zeros (both neurons of a line are 0 there): a measure-zero set, not a region.
"""

from __future__ import annotations

import json
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex

import dtd_formal as dtd
from dtd_formal.cli import main
from dtd_formal.errors import InputError
from dtd_formal.experiments import figures
from dtd_formal.experiments.figures import (REGION_COLOURS, ROOT_COLOURS, plane_regions, region_grid, regions_figure,
                                            rule_words, slice_figure)
from dtd_formal.rules import Gamma, ZPlus


def diamond(c: F = F(0), r: F = F(1, 2)) -> dtd.Network:
    """The diamond network of the module docstring."""
    W1 = [[1, 0], [-1, 0], [0, 1], [0, -1]]
    b1 = [-c, c, -c, c]
    return dtd.Network([W1, [[1, 1, 1, 1]], [[1]]], [b1, [-r], [0]], metadata={"name": "diamond"})


def two_halves() -> dtd.Network:
    """relu(x2) + relu(-x2): two regions (x2 > 0, x2 < 0); on x2 = 0 both neurons are 0."""
    return dtd.Network([[[0, 1], [0, -1]], [[1, 1]]], [[0, 0], [0]])


# ---------------------------------------------------------------------------------------------------- counts
def test_a_hyperplane_row_is_not_a_region() -> None:
    # 11 points from -1 to 1: row 5 is y = 0 exactly, where the pattern is (0, 0)
    pixels, n = region_grid(two_halves(), (-1.0, 1.0, -1.0, 1.0), resolution=11)
    assert n == 2
    assert (pixels[5] == -1).all()  # the row on the hyperplane belongs to no region
    assert set(np.unique(pixels[:5])) == {pixels[0, 0]} and set(np.unique(pixels[6:])) == {pixels[10, 0]}
    assert pixels[0, 0] != pixels[10, 0]


@pytest.mark.parametrize("resolution", [11, 301, 300])
def test_diamond_has_eight_regions(resolution: int) -> None:
    regions, pixels = plane_regions(diamond(), (-1.0, 1.0, -1.0, 1.0), resolution)
    assert len(regions) == 8  # odd resolutions put grid rows and columns on both lines: still 8
    assert sum(r.area for r in regions) == pytest.approx(4.0, abs=1e-12)  # they tile the box
    assert sorted(round(r.area, 12) for r in regions) == [0.125] * 4 + [0.875] * 4  # triangles and the rest
    assert all(np.all(p != 0) for r in regions for p in r.pattern)  # no hyperplane pattern among them
    if resolution % 2:
        assert (pixels[resolution // 2] == -1).all() and (pixels[:, resolution // 2] == -1).all()


def test_a_sliver_below_float_resolution_is_decided_exactly() -> None:
    # the strip -d <= x1 - x2 <= d, d = 1e-13: far thinner than a pixel, yet the grid's diagonal points lie in it;
    # its float area is below the threshold, so its polygon is computed exactly: area 4d - d^2 in the box [-1, 1]^2
    d = F(1, 10**13)
    net = dtd.Network([[[1, -1], [1, -1]], [[1, 1]]], [[d, -d], [0]])
    regions, _ = plane_regions(net, (-1.0, 1.0, -1.0, 1.0), resolution=11)
    by_pattern = {tuple(int(v) for v in r.pattern[0]): r for r in regions}
    assert set(by_pattern) == {(1, 1), (1, -1), (-1, -1)}
    thin = by_pattern[(1, -1)]
    assert thin.exact_polygon is not None
    assert figures._area(thin.exact_polygon) == 4 * d - d * d
    assert thin.area == pytest.approx(float(4 * d - d * d), rel=1e-12)


def test_region_count_in_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # box [0, 299]^2 with 300 points per side: the grid is the integers, so rows x1 = 100 and x2 = 100 lie on the
    # lines (diamond centred at (100, 100), radius 50)
    path = tmp_path / "diamond.json"
    diamond(F(100), F(50)).save(path)
    out = tmp_path / "d.png"
    assert main(["regions", str(path), "--plot", str(out), "--extent", "0:299,0:299", "--input", "120,130",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["regions"] == 8 and out.stat().st_size > 1000
    assert main(["regions", str(path), "--plot", str(out), "--extent", "0:299,0:299", "--input", "120,130"]) == 0
    assert "8 linear regions" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------- artists
def _colours(collection: object) -> set[str]:
    return {to_hex(c) for c in collection.get_facecolors()}  # type: ignore[attr-defined]


def test_figure_regions_are_polygons_in_their_own_palette() -> None:
    net = diamond()
    fig = regions_figure(net, [[F(1, 5), F(3, 5)], [F(-3, 5), F(-1, 10)]], ZPlus(), (-1.0, 1.0, -1.0, 1.0))
    try:
        ax = fig.figure.axes[0]
        assert fig.regions == 8
        assert len(ax.images) == 0  # no pixel image
        polys = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_label() == "linear regions"]
        assert len(polys) == 1 and len(polys[0].get_paths()) == 8
        region_colours = _colours(polys[0])
        assert region_colours <= {to_hex(c) for c in REGION_COLOURS}
        assert len(region_colours) >= 2  # neighbours differ
        assert not ({to_hex(c) for c in ROOT_COLOURS.values()} & {to_hex(c) for c in REGION_COLOURS})
        root_marks = [c for c in ax.collections if c not in polys and c.get_label() != "input point x"]
        assert root_marks, "no root markers drawn"
        for c in root_marks:
            assert _colours(c) <= {to_hex(v) for v in ROOT_COLOURS.values()}
        segments = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2]
        assert len(segments) == len(fig.report.records) > 0  # type: ignore[union-attr]
        assert {to_hex(ln.get_color()) for ln in segments} <= {to_hex(v) for v in ROOT_COLOURS.values()}
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig.figure)


def test_neighbouring_regions_get_different_colours() -> None:
    regions, pixels = plane_regions(diamond(), (-1.0, 1.0, -1.0, 1.0), 301)
    colours = figures.region_colours(pixels, len(regions))
    pairs = set()
    for a, b in ((pixels[:, :-1], pixels[:, 1:]), (pixels[:-1], pixels[1:]), (pixels[:, :-2], pixels[:, 2:]),
                 (pixels[:-2], pixels[2:])):
        m = (a >= 0) & (b >= 0) & (a != b)
        pairs |= {(int(u), int(v)) for u, v in zip(a[m], b[m])}
    assert len(pairs) >= 8  # triangles touch their outer parts; quadrants touch across the lines
    assert all(colours[u] != colours[v] for u, v in pairs)


def test_legend_and_title_in_words() -> None:
    fig = regions_figure(diamond(), [[F(1, 5), F(3, 5)]], Gamma(0.25), (-1.0, 1.0, -1.0, 1.0))
    try:
        ax = fig.figure.axes[0]
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("input point" in t for t in texts)
        assert any(t.startswith("root") for t in texts)
        assert any(t.startswith("linear regions (8") for t in texts)
        title = ax.get_title()
        assert "LRP-\u03b3 rule (\u03b3 = 0.25)" in title and "layer-1 neuron" in title and "8 linear regions" in title
        assert "2-4-1-1 ReLU network" in title
        for raw in ("Gamma(", "bias=", "Network(", "gamma:0.25"):
            assert raw not in title
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig.figure)


def test_rule_words() -> None:
    from dtd_formal.rules import Epsilon, ZBox

    assert rule_words(ZPlus()) == "z+ rule"
    assert rule_words(Epsilon(1e-6, bias="zennit")) == "LRP-\u03b5 rule (\u03b5 = 1e-06), zennit bias convention"
    assert rule_words(ZBox(0, 1)) == "zB rule (low = 0, high = 1)"

    class Mine(ZPlus):
        pass

    assert rule_words(Mine()) == "user rule Mine"


@pytest.mark.parametrize("suffix", [".svg", ".pdf"])
def test_saved_vector_files_hold_no_pixel_image(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"r{suffix}"
    figures.plot_regions(diamond(), out, [[F(1, 5), F(3, 5)]], ZPlus(), (-1.0, 1.0, -1.0, 1.0))
    data = out.read_bytes()
    assert len(data) > 1000
    assert b"<image" not in data and b"/Subtype /Image" not in data


def test_slice_of_a_dense_network_is_exact_polygons(tmp_path: Path) -> None:
    net = dtd.examples.paper_mlp(5, init="paper-text")
    x = dtd.examples.paper_inputs(net, 1, seed=0)[0]
    fig = slice_figure(net, x, ZPlus(), resolution=40)
    try:
        ax = fig.figure.axes[0]
        assert len(ax.images) == 0 and fig.regions > 1
        polys = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_label() == "linear regions"]
        assert len(polys) == 1 and len(polys[0].get_paths()) == fig.regions
        assert _colours(polys[0]) <= {to_hex(c) for c in REGION_COLOURS}
        title = ax.get_title()
        assert f"neuron {fig.record.neuron}" in title and "z+ rule" in title and "10-10-10-2 ReLU network" in title
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("input point" in t for t in texts) and any(t.startswith("root of neuron") for t in texts)
        assert any(t.startswith(f"linear regions ({fig.regions}") for t in texts)
        fig.save(tmp_path / "s.svg")
        assert b"<image" not in (tmp_path / "s.svg").read_bytes()
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig.figure)


def test_slice_of_a_graph_is_polygons() -> None:
    from graph_nets import pool_net

    net = pool_net()
    fig = slice_figure(net, [F(1, 2), F(1, 3)], ZPlus(), resolution=24)
    try:
        ax = fig.figure.axes[0]
        assert len(ax.images) == 0 and fig.regions >= 1
        polys = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_label() == "linear regions"]
        assert len(polys) == 1 and len(polys[0].get_paths()) == fig.regions
        assert "operator graph" in ax.get_title() and "GraphNetwork(" not in ax.get_title()
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig.figure)


def test_bad_plane_input_is_refused() -> None:
    with pytest.raises(InputError, match="2-input"):
        plane_regions(dtd.Network([[[1, 1, 1]], [[1]]], [[0], [0]]), (-1.0, 1.0, -1.0, 1.0))
    with pytest.raises(InputError, match="extent"):
        plane_regions(diamond(), (1.0, -1.0, -1.0, 1.0))
    with pytest.raises(InputError, match="resolution"):
        plane_regions(diamond(), (-1.0, 1.0, -1.0, 1.0), resolution=1)

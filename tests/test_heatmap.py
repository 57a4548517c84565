"""dtd_formal.torch.heatmap (issue 14, "a heatmap in one call"): zennit's imgify conventions, hand-checked colours."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from dtd_formal.errors import InputError
from dtd_formal.torch.heatmap import COLORMAPS, heatmap, save_heatmap

BLUE, WHITE, RED = (0, 0, 255), (255, 255, 255), (255, 0, 0)


def rgb(img: np.ndarray, *index: int) -> tuple[int, ...]:
    return tuple(int(v) for v in img[index])


def test_zero_is_the_centre_colour_and_plus_minus_max_the_ends() -> None:
    R = np.array([[0.0, 2.0, -2.0], [1.0, -1.0, 0.5]])  # max |R| = 2
    img = heatmap(R)
    assert img.dtype == np.uint8 and img.shape == (2, 3, 3)
    assert rgb(img, 0, 0) == WHITE  # 0 -> t = 1/2, bwr's centre
    assert rgb(img, 0, 1) == RED  # +max -> t = 1, the top colour
    assert rgb(img, 0, 2) == BLUE  # -max -> t = 0, the bottom colour
    # 1 -> t = 3/4: half way from white to red, 255 - 127.5 = 127.5 -> 128 (half up)
    assert rgb(img, 1, 0) == (255, 128, 128)
    assert rgb(img, 1, 1) == (128, 128, 255)
    # 0.5 -> t = 5/8: a quarter of the way from white to red, 255 - 63.75 = 191.25 -> 191
    assert rgb(img, 1, 2) == (255, 191, 191)


def test_channels_are_summed_before_normalising() -> None:
    R = np.zeros((3, 1, 3))
    R[:, 0, 0] = [1.0, 1.0, 1.0]  # sums to 3: the max
    R[:, 0, 1] = [2.0, -2.0, 0.0]  # sums to 0 although its entries are large
    R[:, 0, 2] = [-3.0, 1.5, 0.0]  # sums to -1.5: t = 1/4
    img = heatmap(R)
    assert img.shape == (1, 3, 3)
    assert rgb(img, 0, 0) == RED and rgb(img, 0, 1) == WHITE and rgb(img, 0, 2) == (128, 128, 255)
    mean = heatmap(R, channel_reduce="mean")  # the same picture: normalising removes the factor 1/3
    np.testing.assert_array_equal(mean, img)
    abs_sum = heatmap(R, channel_reduce="abs-sum")  # sums 3, 4, 4.5: 3 -> t = (3 + 4.5) / 9 = 5/6
    assert rgb(abs_sum, 0, 2) == RED and rgb(abs_sum, 0, 0) == (255, 85, 85)  # 255 * (1 - 2/3) = 85


def test_level_stretches_about_the_centre_and_clips() -> None:
    R = np.array([[-2.0, -0.5, 0.0, 0.5, 1.0, 2.0]])
    hi = heatmap(R, level=2.0)  # s = 1/2 + 2 (t - 1/2): 1 -> s = 1 already, 2 -> 1.5 clipped to 1
    assert rgb(hi, 0, 4) == RED and rgb(hi, 0, 5) == RED and rgb(hi, 0, 0) == BLUE
    assert rgb(hi, 0, 3) == (255, 128, 128) and rgb(hi, 0, 2) == WHITE  # 0.5 -> t = 5/8 -> s = 3/4
    lo = heatmap(R, level=0.5)  # 2 -> s = 3/4: the top colour is not reached
    assert rgb(lo, 0, 5) == (255, 128, 128) and rgb(lo, 0, 0) == (128, 128, 255)
    flat = heatmap(R, level=0)  # everything in the centre colour
    assert (flat == 255).all()


def test_per_sample_normalisation_is_per_sample() -> None:
    R = np.zeros((2, 1, 1, 2))
    R[0, 0, 0] = [1.0, -0.5]  # max |R| = 1
    R[1, 0, 0] = [8.0, 0.0]  # max |R| = 8
    each = heatmap(R)
    assert each.shape == (2, 1, 2, 3)
    assert rgb(each, 0, 0, 0) == RED and rgb(each, 1, 0, 0) == RED  # each sample reaches its own top colour
    assert rgb(each, 0, 0, 1) == (128, 128, 255)  # -0.5 of max 1
    joint = heatmap(R, per_sample=False)  # one bound, 8, for the batch
    assert rgb(joint, 1, 0, 0) == RED
    assert rgb(joint, 0, 0, 0) == (255, 223, 223)  # 1 -> t = 9/16: 1/8 of white -> red, 255 * 7/8 = 223.125
    assert rgb(joint, 0, 0, 1) == (239, 239, 255)  # -0.5 -> t = 15/32: 255 * 15/16 = 239.06
    # a sample alone gives the same picture as in a per-sample batch
    np.testing.assert_array_equal(heatmap(R[1]), each[1])


def test_constant_zero_relevance_does_not_divide_by_zero() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 0/0 would warn (RuntimeWarning)
        img = heatmap(np.zeros((2, 3, 4, 5)))
        joint = heatmap(np.zeros((2, 3, 4, 5)), per_sample=False)
        ramp = heatmap(np.full((1, 4, 4), 7.0), symmetric=False)  # constant but nonzero, unaligned norm
    assert img.shape == (2, 4, 5, 3) and (img == 255).all() and (joint == 255).all()
    assert (ramp == 255).all()  # t = 1/2: the centre colour
    mixed = np.zeros((2, 1, 2, 2))
    mixed[1, 0, 0, 0] = -4.0  # one sample zero, the other not: the zero one stays centred
    out = heatmap(mixed)
    assert (out[0] == 255).all() and rgb(out, 1, 0, 0) == BLUE and rgb(out, 1, 1, 1) == WHITE


def test_unaligned_norm_maps_min_and_max_to_the_ends() -> None:
    R = np.array([[1.0, 2.0, 3.0]])  # all positive: symmetric would map 1 to t = 2/3
    img = heatmap(R, symmetric=False)
    assert rgb(img, 0, 0) == BLUE and rgb(img, 0, 1) == WHITE and rgb(img, 0, 2) == RED
    sym = heatmap(R)
    assert rgb(sym, 0, 2) == RED and rgb(sym, 0, 0) == (255, 170, 170)  # t = 2/3: 255 * (1 - 1/3) = 170


def test_torch_tensors_and_numpy_arrays_agree() -> None:
    g = np.random.default_rng(0)
    R = g.normal(size=(3, 2, 5, 4))
    np.testing.assert_array_equal(heatmap(torch.tensor(R)), heatmap(R))
    np.testing.assert_array_equal(heatmap(torch.tensor(R, dtype=torch.float32, requires_grad=True)),
                                  heatmap(R.astype(np.float32)))
    np.testing.assert_array_equal(heatmap(R[0]), heatmap(R)[0])


def test_grid_tiles_row_by_row_and_fills_with_the_centre_colour() -> None:
    R = np.zeros((3, 1, 1, 2))
    R[0, 0, 0] = [1.0, 0.0]
    R[1, 0, 0] = [-1.0, 0.0]
    R[2, 0, 0] = [0.0, 1.0]
    tiles = heatmap(R)
    g = heatmap(R, grid=(2, 2))
    assert g.shape == (2, 4, 3)
    np.testing.assert_array_equal(g[0:1, 0:2], tiles[0])
    np.testing.assert_array_equal(g[0:1, 2:4], tiles[1])
    np.testing.assert_array_equal(g[1:2, 0:2], tiles[2])
    assert (g[1:2, 2:4] == 255).all()  # the empty cell
    square = heatmap(R, grid=True)  # zennit: floor(sqrt(3)) = 1 column, 3 rows
    assert square.shape == (3, 2, 3)
    np.testing.assert_array_equal(square[2:3], tiles[2])
    with pytest.raises(InputError, match="grid 1x2 holds 2 images, fewer than the batch of 3"):
        heatmap(R, grid=(1, 2))


def test_other_colour_maps() -> None:
    R = np.array([[-1.0, 0.0, 1.0]])
    hot = heatmap(R, cmap="hot")  # black, red, yellow, white; t = 1/2 lies half way from red to yellow
    assert rgb(hot, 0, 0) == (0, 0, 0) and rgb(hot, 0, 2) == (255, 255, 255) and rgb(hot, 0, 1) == (255, 128, 0)
    import matplotlib

    viridis = heatmap(R, cmap="viridis")  # any matplotlib name
    for k, s in enumerate((0.0, 0.5, 1.0)):
        want = np.floor(np.asarray(matplotlib.colormaps["viridis"](s))[:3] * 255 + 0.5)
        assert rgb(viridis, 0, k) == tuple(int(v) for v in want)
    np.testing.assert_array_equal(heatmap(R, cmap=matplotlib.colormaps["viridis"]), viridis)


def _zennit_colormap_class() -> type | None:
    """zennit's ColorMap from zennit/cmap.py, loaded alone (the package imports torchvision)."""
    spec = importlib.util.find_spec("zennit")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "cmap.py"
    if not path.is_file():
        return None
    mod_spec = importlib.util.spec_from_file_location("_zennit_cmap_alone", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module.ColorMap


@pytest.mark.parametrize("name, source", [("bwr", "00f,80:fff,f00"), ("coldnhot", "0ff,00f,80:000,f00,ff0,fff"),
                                          ("france", "0055a4,80:fff,ef4135")])
@pytest.mark.parametrize("level", [1.0, 2.5, 0.6])
def test_close_to_zennit_imgify(name: str, source: str, level: float) -> None:
    """zennit's imgify(symmetric=True) pipeline: t quantised to a uint8 palette index, then its palette."""
    ColorMap = _zennit_colormap_class()
    if ColorMap is None:
        pytest.skip("zennit is not installed")
    g = np.random.default_rng(1)
    R = g.normal(size=(2, 3, 16, 16))
    r = R.sum(axis=1)
    vmax = np.abs(r).max(axis=(1, 2), keepdims=True)
    index = (((r + vmax) / (2 * vmax)) * 255).clip(0, 255).astype(np.uint8)
    zennit = ColorMap(source).palette(level=level)[index]
    ours = heatmap(R, cmap=name, level=level)
    diff = np.abs(ours.astype(int) - zennit.astype(int))
    # the same colours up to zennit's 256-entry palette: its truncated index is off by up to one entry, which is
    # worth the map's steepest change per entry (times level), and its nodes sit at integer indices (128 of 255)
    nodes = COLORMAPS[name]
    steepest = max(np.abs(np.subtract(c1, c0)).max() / ((p1 - p0) * 255)
                   for (p0, c0), (p1, c1) in zip(nodes, nodes[1:]))
    assert diff.max() <= steepest * max(1.0, level) + 4, diff.max()
    assert diff.mean() < 2.0


def test_bad_input_is_refused_by_name() -> None:
    with pytest.raises(InputError, match=r"relevance of shape \(2, 2, 2, 2, 2\): expected"):
        heatmap(np.zeros((2, 2, 2, 2, 2)))
    with pytest.raises(InputError, match=r"shape \(4,\)"):
        heatmap(np.zeros(4))
    with pytest.raises(InputError, match="NaN or infinite"):
        heatmap(np.array([[0.0, np.nan]]))
    with pytest.raises(InputError, match="unknown colour map 'no-such-map'"):
        heatmap(np.zeros((2, 2)), cmap="no-such-map")
    with pytest.raises(InputError, match="level must be a finite number >= 0, got -1"):
        heatmap(np.zeros((2, 2)), level=-1)
    with pytest.raises(InputError, match="unknown channel_reduce 'max'"):
        heatmap(np.zeros((1, 2, 2)), channel_reduce="max")
    with pytest.raises(InputError, match="real numbers"):
        heatmap(np.array([["a", "b"]]))
    with pytest.raises(InputError, match="empty"):
        heatmap(np.zeros((0, 1, 2, 2)))


def test_save_heatmap_writes_pngs(tmp_path: Path) -> None:
    from PIL import Image

    R = np.random.default_rng(2).normal(size=(2, 3, 5, 7))
    (one,) = save_heatmap(R[0], tmp_path / "one.png", cmap="bwr")
    np.testing.assert_array_equal(np.asarray(Image.open(one).convert("RGB")), heatmap(R[0]))
    paths = save_heatmap(R, tmp_path / "b.png", level=2.0)
    assert [p.name for p in paths] == ["b_000.png", "b_001.png"]
    for p, want in zip(paths, heatmap(R, level=2.0)):
        np.testing.assert_array_equal(np.asarray(Image.open(p).convert("RGB")), want)
    patterned = save_heatmap(R, str(tmp_path / "s{:02d}.png"))
    assert [p.name for p in patterned] == ["s00.png", "s01.png"] and all(p.is_file() for p in patterned)
    (grid,) = save_heatmap(R, tmp_path / "grid.png", grid=(1, 2))
    assert np.asarray(Image.open(grid)).shape == (5, 14, 3)
    with pytest.raises(InputError, match="does not exist"):
        save_heatmap(R[0], tmp_path / "missing" / "x.png")
    with pytest.raises(InputError, match="give a .png file name"):
        save_heatmap(R[0], tmp_path / "x.jpg")

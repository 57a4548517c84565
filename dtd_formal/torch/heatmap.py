r"""Relevance maps as RGB heatmaps in one call: :func:`heatmap` and :func:`save_heatmap`.

The conventions are zennit's (``zennit.image.imgify`` with ``symmetric=True`` and its colour maps), written anew
here (zennit imports torchvision, which may be absent):

1. The relevance of one input, shaped (C, H, W), is reduced over its channels, by default summed:
   :math:`r_{hw} = \sum_c R_{chw}`. An (H, W) relevance is used as it is.
2. Symmetric normalisation: :math:`v_{\max} = \max_{hw} |r_{hw}|` (per sample, or over the whole batch with
   ``per_sample=False``), :math:`v_{\min} = -v_{\max}`; without ``symmetric``, :math:`v_{\min} = \min r`,
   :math:`v_{\max} = \max r`. Then :math:`t = (r - v_{\min}) / (v_{\max} - v_{\min})`, so that a relevance of 0
   lands on :math:`t = 1/2` (symmetric); where :math:`v_{\max} = v_{\min}` (a constant map, e.g. all zeros)
   :math:`t = 1/2` everywhere instead of a division by zero.
3. ``level`` (zennit's contrast parameter) stretches the values about the centre and clips:
   :math:`s = \operatorname{clip}(1/2 + \mathrm{level}\,(t - 1/2), 0, 1)`. ``level = 1`` uses the full map;
   above 1 the colours saturate earlier; below 1 the map's ends are not reached; 0 paints everything in the
   centre colour.
4. The colour map, a piecewise-linear function :math:`[0, 1] \to [0, 255]^3`, gives
   :math:`\mathrm{rgb} = \lfloor \mathrm{cmap}(s) + 1/2 \rfloor` (uint8).

With the default ``cmap="bwr"``: :math:`-v_{\max}` is blue (0, 0, 255), 0 white (255, 255, 255) and
:math:`+v_{\max}` red (255, 0, 0).

Two differences from zennit, both deliberate: zennit first quantises :math:`t` to 256 palette entries (truncating)
and places its maps' centre colour at palette index 128 of 0..255, so its 0 is drawn (253, 253, 255); here the map
is evaluated continuously and its centre lies exactly at :math:`s = 1/2`, so 0 is exactly the centre colour. The
colours differ from zennit's by a few units of 255 at most.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence, Union

import numpy as np

from ..errors import InputError

#: zennit's built-in colour maps as (position in [0, 1], RGB 0..255) nodes, linear in between. zennit writes them
#: in its colour-map language (``'00f,80:fff,f00'`` for bwr: index 0x80 is the centre, placed here at 1/2;
#: colours without an index are spaced evenly between their neighbours).
COLORMAPS: dict[str, tuple[tuple[float, tuple[int, int, int]], ...]] = {
    "gray": ((0.0, (0, 0, 0)), (1.0, (255, 255, 255))),
    "wred": ((0.0, (255, 255, 255)), (1.0, (255, 0, 0))),
    "wblue": ((0.0, (255, 255, 255)), (1.0, (0, 0, 255))),
    "hot": ((0.0, (0, 0, 0)), (1 / 3, (255, 0, 0)), (2 / 3, (255, 255, 0)), (1.0, (255, 255, 255))),
    "cold": ((0.0, (0, 0, 0)), (0.5, (0, 0, 255)), (1.0, (0, 255, 255))),
    "coldnhot": ((0.0, (0, 255, 255)), (0.25, (0, 0, 255)), (0.5, (0, 0, 0)), (2 / 3, (255, 0, 0)),
                 (5 / 6, (255, 255, 0)), (1.0, (255, 255, 255))),
    "bwr": ((0.0, (0, 0, 255)), (0.5, (255, 255, 255)), (1.0, (255, 0, 0))),
    "france": ((0.0, (0x00, 0x55, 0xA4)), (0.5, (255, 255, 255)), (1.0, (0xEF, 0x41, 0x35))),
    "seismic": ((0.0, (0, 0, 0xD0)), (0.5, (0xD0, 0xD0, 0xD0)), (1.0, (0xD0, 0, 0))),
    "coolio": ((0.0, (0, 0xD0, 0xD0)), (0.5, (0xD0, 0xD0, 0xD0)), (1.0, (0xD0, 0, 0xD0))),
    "coleus": ((0.0, (0, 0xD0, 0)), (0.5, (0xD0, 0xD0, 0xD0)), (1.0, (0xD0, 0, 0xD0))),
}

#: channel reductions: name -> f(relevance (B, C, H, W)) -> (B, H, W)
CHANNEL_REDUCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sum": lambda r: r.sum(axis=1),
    "mean": lambda r: r.mean(axis=1),
    "abs-sum": lambda r: np.abs(r).sum(axis=1),
}

ColormapLike = Union[str, Any]  #: a name of :data:`COLORMAPS`, a matplotlib colormap name, or a matplotlib Colormap


def colormap(cmap: ColormapLike) -> Callable[[np.ndarray], np.ndarray]:
    """The colour map ``cmap`` as a function from values ``s`` in [0, 1] (any shape) to RGB floats in [0, 255]
    (shape ``s.shape + (3,)``).

    Parameters
    ----------
    cmap : str or matplotlib.colors.Colormap
        A name of :data:`COLORMAPS` (zennit's maps; they take precedence), any matplotlib colormap name
        (``"viridis"``), or a matplotlib ``Colormap`` object.

    Raises
    ------
    InputError
        For an unknown name, naming it and the known ones.
    """
    if isinstance(cmap, str):
        if cmap in COLORMAPS:
            nodes = COLORMAPS[cmap]
            pos = np.array([p for p, _ in nodes], dtype=np.float64)
            rgb = np.array([c for _, c in nodes], dtype=np.float64)

            def builtin(s: np.ndarray) -> np.ndarray:
                return np.stack([np.interp(s, pos, rgb[:, k]) for k in range(3)], axis=-1)

            return builtin
        import matplotlib

        try:
            mpl_map = matplotlib.colormaps[cmap]
        except KeyError:
            raise InputError(f"unknown colour map {cmap!r}; known: {', '.join(COLORMAPS)}, or any matplotlib "
                             "colormap name (e.g. 'viridis')") from None
    else:
        from matplotlib.colors import Colormap

        if not isinstance(cmap, Colormap):
            raise InputError(f"cmap must be a colour map name or a matplotlib Colormap, got {type(cmap).__name__}")
        mpl_map = cmap

    def from_matplotlib(s: np.ndarray) -> np.ndarray:
        return np.asarray(mpl_map(s), dtype=np.float64)[..., :3] * 255.0

    return from_matplotlib


def _as_array(relevance: Any) -> np.ndarray:
    """A float64 numpy copy of a torch tensor, numpy array or nested list; refuses non-numbers and NaN/inf."""
    try:
        import torch

        if isinstance(relevance, torch.Tensor):
            relevance = relevance.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    arr = np.asarray(relevance)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) \
            or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"relevance must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"relevance holds {bad} NaN or infinite value(s); a heatmap needs finite values")
    return arr


def _grid_shape(n: int, grid: bool | Sequence[int]) -> tuple[int, int]:
    """(rows, columns): zennit's square-ish default (columns = floor(sqrt(n)), rows = ceil(n / columns)), or the
    given pair, which must hold all n images."""
    if grid is True:
        cols = max(1, int(math.isqrt(n)))
        return (n + cols - 1) // cols, cols
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence) or len(grid) != 2:
        raise InputError(f"grid must be True, False or (rows, columns), got {grid!r}")
    rows, cols = grid
    if isinstance(rows, bool) or isinstance(cols, bool) or not all(isinstance(v, (int, np.integer)) for v in grid) \
            or rows < 1 or cols < 1:
        raise InputError(f"grid (rows, columns) must be integers >= 1, got {tuple(grid)!r}")
    if rows * cols < n:
        raise InputError(f"grid {rows}x{cols} holds {rows * cols} images, fewer than the batch of {n}")
    return int(rows), int(cols)


def heatmap(
    relevance: Any,
    cmap: ColormapLike = "bwr",
    level: float = 1.0,
    symmetric: bool = True,
    per_sample: bool = True,
    channel_reduce: str = "sum",
    grid: bool | Sequence[int] = False,
) -> np.ndarray:
    r"""Relevance as an RGB heatmap (zennit's ``imgify`` conventions; module docstring).

    Per pixel, with :math:`r = \sum_c R_c` (``channel_reduce``) and, symmetric,
    :math:`v_{\max} = \max |r|`, :math:`v_{\min} = -v_{\max}`:

    .. math::

        t = \frac{r - v_{\min}}{v_{\max} - v_{\min}} \;(t = 1/2 \text{ if } v_{\max} = v_{\min}), \qquad
        s = \operatorname{clip}\bigl(\tfrac12 + \mathrm{level}\,(t - \tfrac12), 0, 1\bigr), \qquad
        \mathrm{rgb} = \lfloor \mathrm{cmap}(s) + \tfrac12 \rfloor.

    So 0 maps to the colour map's centre colour, :math:`+\max|r|` to its top and :math:`-\max|r|` to its bottom
    colour (``level = 1``).

    Parameters
    ----------
    relevance : torch.Tensor or numpy.ndarray
        (H, W) or (C, H, W): one input; (B, C, H, W): a batch. A 3-D array is always (C, H, W).
    cmap : str or matplotlib.colors.Colormap
        A name of :data:`COLORMAPS` (zennit's ``bwr``, ``coldnhot``, ``france``, ...), a matplotlib colormap name,
        or a matplotlib ``Colormap``.
    level : float
        Contrast, a finite number >= 0 (zennit's ``level``): the values are stretched by ``level`` about the
        centre and clipped.
    symmetric : bool
        Normalise by :math:`\max |r|` so that 0 is the centre colour (default); False maps :math:`\min r` to the
        bottom and :math:`\max r` to the top colour.
    per_sample : bool
        Normalise each sample of a batch by its own bounds (default) or all by the bounds of the whole batch.
    channel_reduce : {"sum", "mean", "abs-sum"}
        How the channels are combined (zennit sums them).
    grid : bool or (rows, columns)
        For a batch: tile the heatmaps into one image (True: zennit's layout, floor(sqrt(B)) columns), row by
        row; empty cells get the centre colour. Ignored for a single input.

    Returns
    -------
    numpy.ndarray
        uint8 RGB, (H, W, 3) for one input or with ``grid``, (B, H, W, 3) for a batch.

    Raises
    ------
    InputError
        For a shape other than the three above, non-finite values, an unknown colour map or reduction, a level
        that is not a finite number >= 0, or a grid too small for the batch.
    """
    arr = _as_array(relevance)
    if arr.ndim == 2:
        batch, single = arr[None, None], True
    elif arr.ndim == 3:
        batch, single = arr[None], True
    elif arr.ndim == 4:
        batch, single = arr, False
    else:
        raise InputError(f"relevance of shape {tuple(arr.shape)}: expected (H, W), (C, H, W) or (B, C, H, W)")
    if 0 in batch.shape:
        raise InputError(f"relevance of shape {tuple(arr.shape)} is empty")
    if channel_reduce not in CHANNEL_REDUCTIONS:
        raise InputError(f"unknown channel_reduce {channel_reduce!r}; known: {', '.join(CHANNEL_REDUCTIONS)}")
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(level)) or level < 0:
        raise InputError(f"level must be a finite number >= 0, got {level!r}")
    paint = colormap(cmap)
    r = CHANNEL_REDUCTIONS[channel_reduce](batch)  # (B, H, W)
    axes = (1, 2) if per_sample else (0, 1, 2)
    if symmetric:
        vmax = np.abs(r).max(axis=axes, keepdims=True)
        vmin = -vmax
    else:
        vmax = r.max(axis=axes, keepdims=True)
        vmin = r.min(axis=axes, keepdims=True)
    span = vmax - vmin
    flat = span == 0
    t = np.where(flat, 0.5, (r - vmin) / np.where(flat, 1.0, span))
    s = np.clip(0.5 + float(level) * (t - 0.5), 0.0, 1.0)
    rgb = np.floor(paint(s) + 0.5).clip(0, 255).astype(np.uint8)  # (B, H, W, 3)
    if single:
        return rgb[0]
    if grid is False:
        return rgb
    B, H, W, _ = rgb.shape
    rows, cols = _grid_shape(B, grid)
    centre = np.floor(paint(np.array(0.5)) + 0.5).clip(0, 255).astype(np.uint8)
    tiles = np.empty((rows * cols, H, W, 3), dtype=np.uint8)
    tiles[:] = centre
    tiles[:B] = rgb
    return tiles.reshape(rows, cols, H, W, 3).transpose(0, 2, 1, 3, 4).reshape(rows * H, cols * W, 3)


def write_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 (H, W, 3) array as a PNG (Pillow if present, else matplotlib); the folder must exist."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise InputError(f"{p}: heatmaps are written as PNG; give a .png file name")
    if not p.parent.is_dir():
        raise InputError(f"{p}: the folder {str(p.parent)!r} does not exist")
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        import matplotlib.image

        matplotlib.image.imsave(p, image, format="png")
    else:
        Image.fromarray(np.ascontiguousarray(image), mode="RGB").save(p, format="PNG")
    return p


def save_heatmap(relevance: Any, path: str | Path, **kw: Any) -> list[Path]:
    """Write :func:`heatmap` (``**kw``: its options) as PNG file(s); returns the paths written.

    One input, or a batch with ``grid``, is one image at ``path``. A batch without a grid is one file per sample:
    ``path`` with ``{}`` in it is formatted with the sample index (``"h_{:03d}.png"``); otherwise the index is
    appended to the stem (``h.png`` -> ``h_000.png``, ``h_001.png``, ...).
    """
    image = heatmap(relevance, **kw)
    if image.ndim == 3:
        return [write_png(image, path)]
    text = str(path)
    width = max(3, len(str(len(image) - 1)))
    if "{" in text:
        try:
            names = [Path(text.format(i)) for i in range(len(image))]
        except (IndexError, KeyError, ValueError) as exc:
            raise InputError(f"{text}: not a file-name pattern with one {{}} for the sample index ({exc})") from None
        if len(set(names)) != len(names):
            raise InputError(f"{text}: the pattern gives the same file name to several samples")
    else:
        p = Path(text)
        names = [p.with_name(f"{p.stem}_{i:0{width}d}{p.suffix}") for i in range(len(image))]
    return [write_png(img, name) for img, name in zip(image, names)]


__all__ = ["CHANNEL_REDUCTIONS", "COLORMAPS", "colormap", "heatmap", "save_heatmap", "write_png"]

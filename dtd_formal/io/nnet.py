r"""The Stanford ``.nnet`` format (Kyle Julian, 2016), read exactly.

Layout (values comma-separated, trailing commas allowed, ``//`` lines are comments)::

    numLayers, inputSize, outputSize, maxLayerSize
    n_0, n_1, ..., n_L                      (layer sizes, n_0 = inputSize, n_L = outputSize)
    flag                                    (unused)
    input minimums                          (n_0 values)
    input maximums                          (n_0 values)
    means                                   (n_0 + 1 values: inputs, then the output)
    ranges                                  (n_0 + 1 values: inputs, then the output)
    then for l = 1..L: n_l weight rows of n_{l-1} values, then n_l bias lines of one value

ReLU follows every layer but the last. The file's network works on *normalised* values: a raw input x is
clipped to [min, max] and mapped to :math:`\hat x = (x - \mu)/r`, and a network output :math:`\hat y` means
:math:`y = \hat y\, r_{out} + \mu_{out}`.

Numbers are decimal text, so each is read as the exact rational the text spells (``Fraction("5.40062e-02")`` is
540062/10^7), not as the float nearest to it: the exact network is the one the file writes down. (An ONNX export
of the same network stores float32 roundings of these decimals instead.)

``fold_normalization=True`` folds both affine maps into the weights, exactly:

.. math::  W_1' = W_1 \operatorname{diag}(1/r),\quad b_1' = b_1 - W_1' \mu,\qquad
           W_L' = r_{out} W_L,\quad b_L' = r_{out} b_L + \mu_{out}.

The clipping is not affine and is not folded: it is the network's natural input domain, kept as
``metadata["input_domain"] = (low, high)`` in the network's own input coordinates (raw when folded,
normalised :math:`((\min - \mu)/r, (\max - \mu)/r)` when not).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError
from ..exact import ExactArray, parse_rational
from ..network import Network


def _vector(values: list[Fraction]) -> ExactArray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class _Lines:
    """The file's non-comment lines as (line number, tokens), consumed in order; errors name file and line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self._items: list[tuple[int, list[str]]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("//"):
                continue
            self._items.append((number, [t.strip() for t in stripped.split(",") if t.strip()]))
        self._pos = 0

    def next(self, what: str) -> tuple[int, list[str]]:
        if self._pos >= len(self._items):
            raise InputError(f"{self.path}: file ends before the {what}")
        item = self._items[self._pos]
        self._pos += 1
        return item

    def remaining(self) -> Iterator[tuple[int, list[str]]]:
        return iter(self._items[self._pos :])

    def numbers(self, what: str, count: int) -> list[Fraction]:
        """The next line as exactly ``count`` rationals (decimal text read exactly)."""
        number, tokens = self.next(what)
        if len(tokens) != count:
            raise InputError(f"{self.path}: line {number} ({what}): expected {count} values, found {len(tokens)}")
        return [self._rational(t, number, what) for t in tokens]

    def integers(self, what: str, count: int | None = None) -> list[int]:
        number, tokens = self.next(what)
        if count is not None and len(tokens) != count:
            raise InputError(f"{self.path}: line {number} ({what}): expected {count} integers, found {len(tokens)}")
        try:
            values = [int(t) for t in tokens]
        except ValueError:
            raise InputError(f"{self.path}: line {number} ({what}): expected integers, got {tokens}") from None
        return values

    def _rational(self, token: str, number: int, what: str) -> Fraction:
        if token.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise InputError(f"{self.path}: line {number} ({what}): {token!r} is not a finite number")
        return parse_rational(token, f"{self.path}: line {number} ({what})")


def load_nnet(path: str | Path, fold_normalization: bool = False) -> Network:
    """Read a ``.nnet`` file as an exact :class:`Network` (see the module docstring for the format and fold).

    Parameters
    ----------
    path : str or Path
        The ``.nnet`` file.
    fold_normalization : bool
        False (default): the network computes on normalised inputs and returns normalised outputs, as stored.
        True: the input normalisation and output de-normalisation are folded exactly into the first and last
        layer, so the network maps raw inputs to raw outputs.

    Returns
    -------
    Network
        ReLU after every layer but the last (``final_relu=False``). ``metadata``: ``source``, ``format``
        ("nnet"), ``normalization_folded``, ``input_mins``, ``input_maxes``, ``input_means``, ``input_ranges``
        (exact arrays of the raw-unit values in the file), ``output_mean``, ``output_range`` (Fractions),
        ``input_domain`` (low, high) in the network's input coordinates.

    Raises
    ------
    InputError
        Missing file, a wrong count of values on a line (named by line number), text that is not a number,
        NaN/inf, inconsistent sizes, a zero range, or extra data after the last layer.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read .nnet file ({exc})") from None
    lines = _Lines(p, text)
    header = lines.integers("header numLayers,inputSize,outputSize,maxLayerSize", 4)
    n_layers, n_in, n_out, _max_size = header
    if n_layers < 1 or n_in < 1 or n_out < 1:
        raise InputError(f"{path}: header {header} needs positive numLayers, inputSize and outputSize")
    sizes = lines.integers("layer sizes", n_layers + 1)
    if sizes[0] != n_in or sizes[-1] != n_out or min(sizes) < 1:
        raise InputError(f"{path}: layer sizes {sizes} do not agree with inputSize {n_in} and outputSize {n_out}")
    lines.next("flag line")
    mins = lines.numbers("input minimums", n_in)
    maxes = lines.numbers("input maximums", n_in)
    means = lines.numbers("means", n_in + 1)
    ranges = lines.numbers("ranges", n_in + 1)
    for i, r in enumerate(ranges):
        if r == 0:
            which = "output" if i == n_in else f"input {i}"
            raise InputError(f"{path}: the range of {which} is 0 (normalisation divides by it)")
    for i, (lo, hi) in enumerate(zip(mins, maxes)):
        if lo > hi:
            raise InputError(f"{path}: input {i}: minimum {lo} exceeds maximum {hi}")

    weights: list[ExactArray] = []
    biases: list[ExactArray] = []
    for l in range(1, n_layers + 1):
        rows = [lines.numbers(f"layer {l} weight row {j}", sizes[l - 1]) for j in range(sizes[l])]
        bias = [lines.numbers(f"layer {l} bias {j}", 1)[0] for j in range(sizes[l])]
        W = np.empty((sizes[l], sizes[l - 1]), dtype=object)
        for j, row in enumerate(rows):
            W[j, :] = row
        weights.append(W)
        biases.append(_vector(bias))
    extra = list(lines.remaining())
    if extra:
        raise InputError(f"{path}: line {extra[0][0]}: unexpected data after the last layer ({len(extra)} more lines)")

    mu, r = _vector(means[:n_in]), _vector(ranges[:n_in])
    mu_out, r_out = means[n_in], ranges[n_in]
    low, high = _vector(mins), _vector(maxes)
    if fold_normalization:
        inv_r = _vector([1 / v for v in r])
        W1 = weights[0] * inv_r[None, :]
        biases[0] = biases[0] - W1.dot(mu)
        weights[0] = W1
        weights[-1] = weights[-1] * r_out
        biases[-1] = biases[-1] * r_out + mu_out
        domain = (low, high)
    else:
        domain = ((low - mu) / r, (high - mu) / r)
    metadata = {
        "source": str(path),
        "format": "nnet",
        "normalization_folded": bool(fold_normalization),
        "input_mins": low,
        "input_maxes": high,
        "input_means": mu,
        "input_ranges": r,
        "output_mean": mu_out,
        "output_range": r_out,
        "input_domain": domain,
    }
    try:
        return Network(weights, biases, final_relu=False, metadata=metadata)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


__all__ = ["load_nnet"]

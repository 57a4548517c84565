r"""The rules' ``ops`` namespace in float64 over a batch of points carried as a trailing axis ("lanes").

A rule body is written for one point (a of shape (n_in,), W (n_out, n_in), b (n_out,), R (n_out,); see
:mod:`dtd_formal.rules.ops`). :class:`LaneOps` runs the same body on B points at once by giving every value one
extra, last axis: a logical array of shape ``s`` is stored with shape ``s + (B,)`` when it depends on the point and
``s + (1,)`` when it does not (the layers, :func:`lift_layers`). Because the batch axis is always last, numpy's
broadcasting of the stored arrays is the broadcasting of the logical ones (``W * a``: (n_out, n_in, 1) against
(n_in, B) gives (n_out, n_in, B)), so elementwise operations, masks, comparisons and ``where`` need no change;
only the operations that name axes are translated:

.. math::  \mathrm{matmul}(A, B)_{\dots b} = \sum_k A_{\dots k\, b}\, B_{k \dots b}, \qquad
           \mathrm{transpose}(A)_{ji\,b} = A_{ij\,b}, \qquad
           \mathrm{sum}(x, \text{axis}) \text{ over logical axes only.}

Floats only steer the falsifier (:mod:`dtd_formal.smt.falsify`), so a rule body that does something these lanes
do not translate (numpy on a logical axis counted from the end, a reshape) merely gives other numbers; the
falsifier compares the lanes with the walk's one-point float64 evaluation on a few points and uses the lanes only
when they agree.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..rules.ops import FloatOps


def lift(x: Any) -> np.ndarray:
    """A point-independent logical array as a lane array (a trailing axis of length 1)."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape + (1,))


def lift_layers(layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The float64 layers (W_m, b_m) as lane arrays."""
    return [(lift(W), lift(b)) for W, b in layers]


def _logical_axis(axis: int) -> int:
    """A logical axis (a negative one counts from the last logical axis) as an axis of the stored array."""
    return axis if axis >= 0 else axis - 1


class LaneOps(FloatOps):
    """float64 rule namespace over lanes (module docstring)."""

    name = "float64-lanes"

    @staticmethod
    def const(value: Any) -> Any:
        """A rule parameter: a Python float, or a lifted array (the same for every point)."""
        if isinstance(value, (np.ndarray, list, tuple)):
            return lift(FloatOps.const(value))
        return float(value)

    @staticmethod
    def matmul(A: Any, B: Any) -> np.ndarray:
        r""":math:`\sum_k A_{\dots k\, b} B_{k \dots b}` per lane b (logical matrix-vector or matrix-matrix)."""
        A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
        lanes = max(A.shape[-1], B.shape[-1])
        A = np.broadcast_to(A, A.shape[:-1] + (lanes,))
        B = np.broadcast_to(B, B.shape[:-1] + (lanes,))
        left = "mk" if A.ndim == 3 else "k"
        right = "kn" if B.ndim == 3 else "k"
        out = left.replace("k", "") + right.replace("k", "")
        return np.einsum(f"{left}b,{right}b->{out}b", A, B)

    @staticmethod
    def sum(x: Any, axis: int | None = None) -> Any:
        """The sum over a logical axis, or over all logical axes (one number per lane)."""
        x = np.asarray(x, dtype=np.float64)
        if axis is None:
            return x.reshape(-1, x.shape[-1]).sum(axis=0)
        return x.sum(axis=_logical_axis(axis))

    @staticmethod
    def transpose(A: Any) -> np.ndarray:
        """The logical transpose (the first two axes swapped; the lanes stay last)."""
        A = np.asarray(A, dtype=np.float64)
        return A if A.ndim < 3 else np.swapaxes(A, 0, 1)


LANES = LaneOps()

__all__ = ["LaneOps", "LANES", "lift", "lift_layers"]

r"""Exact interval bound propagation through a ReLU network (fixes stable neurons before any split).

For a box :math:`l \le a_{k-1} \le h` and :math:`W = W^+ + W^-`:

.. math::  \underline z_k = W^+ l + W^- h + b, \qquad \overline z_k = W^+ h + W^- l + b,

then :math:`a_k = \mathrm{relu}(z_k)` clamps both ends. A neuron is *stable active* when
:math:`\underline z > 0` (or :math:`\ge 0`: then a = z on the whole box) and *stable inactive* when
:math:`\overline z \le 0`. Everything is exact (gmpy2 rationals internally, the same values as Fractions).

Above the first layer the bounds are enclosures on the dyadic grid :math:`2^{-64}` (:func:`outward`: every lower
bound rounded down, every upper bound rounded up, after each layer), computed in integers
(:func:`grid_interval`): sound, at most :math:`2^{-64}` per layer looser than plain interval arithmetic, and the
sign of a bound never crosses 0 (a negative lower bound stays negative, a positive upper bound positive), so the
unstable neurons are the same. The rationals of plain interval arithmetic grow with every layer and made the
products the cost of the relaxation prover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exact import FAST_RATIONAL, common_denominator, to_fast
from ..network import Network

_ZERO = FAST_RATIONAL(0)
#: the integer type of FAST_RATIONAL's numerators (gmpy2.mpz, or int)
_INTEGER = type(FAST_RATIONAL(1).numerator)


def split_weights(net: Network) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per layer (W^+, W^-, b) as FAST_RATIONAL object arrays (cached on the network object)."""
    cache = getattr(net, "_smt_split_weights", None)
    if cache is None:
        cache = []
        for W, b in net.fast_layers:
            cache.append((np.where(W > 0, W, _ZERO), np.where(W < 0, W, _ZERO), b))
        net._smt_split_weights = cache  # type: ignore[attr-defined]
    return cache


def affine_interval(Wp: np.ndarray, Wn: np.ndarray, b: Any, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact [lower, upper] of W a + b over lo <= a <= hi."""
    return Wp.dot(lo) + Wn.dot(hi) + b, Wp.dot(hi) + Wn.dot(lo) + b


def relu_interval(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.where(lo > 0, lo, _ZERO), np.where(hi > 0, hi, _ZERO)


@dataclass
class Bounds:
    """Interval bounds of every layer over an input box: z[k-1] = (lo, hi) of z_k, a[k] = (lo, hi) of a_k."""

    z: list[tuple[np.ndarray, np.ndarray]]
    a: list[tuple[np.ndarray, np.ndarray]]


def interval_bounds(net: Network, low: Any, high: Any, upto: int | None = None) -> Bounds:
    """Exact interval bounds of z_1..z_upto and a_0..a_upto over the input box [low, high] (module docstring: on
    the grid above layer 1)."""
    lo, hi = to_fast(np.asarray(low, dtype=object)), to_fast(np.asarray(high, dtype=object))
    upto = net.n_layers if upto is None else upto
    zs, acts = [], [(lo, hi)]
    for k, (Wp, Wn, b) in enumerate(split_weights(net)[:upto], start=1):
        if k == 1:
            zlo, zhi = outward(*affine_interval(Wp, Wn, b, lo, hi))
        else:
            zlo, zhi = grid_interval(integer_split(net, k), b, lo, hi)
        zs.append((zlo, zhi))
        lo, hi = relu_interval(zlo, zhi) if net.has_relu(k) else (zlo, zhi)
        acts.append((lo, hi))
    return Bounds(zs, acts)


#: the dyadic grid :math:`2^{-64}` that :func:`outward` rounds enclosures to
GRID = 1 << 64


_INF = float("inf")


def _down(v: Any) -> Any:
    """The largest grid value <= v (infinities unchanged)."""
    if v == _INF or v == -_INF:
        return v
    q = v if type(v) is FAST_RATIONAL else FAST_RATIONAL(v)
    d = q.denominator
    return q if GRID % d == 0 else FAST_RATIONAL((q.numerator * GRID) // d, GRID)


def outward(lo: Any, hi: Any) -> tuple[Any, Any]:
    r"""The enclosure [lo, hi] rounded outward to the dyadic grid :math:`2^{-64}`: lo down, hi up (entrywise for
    arrays; values on the grid and infinities unchanged), so :math:`[lo', hi'] \supseteq [lo, hi]` exactly.

    Quotients (the step :math:`t = z_j / \mathrm{den}`) and their products give rationals whose size grows
    with every layer they pass; an enclosure on the grid stays sound and keeps the exact arithmetic above it
    cheap. Deterministic, so a proof re-derives the same numbers."""
    if isinstance(lo, np.ndarray):
        return (np.array([_down(v) for v in lo], dtype=object),
                np.array([-_down(-v) for v in hi], dtype=object))
    return _down(lo), -_down(-hi)


@dataclass(frozen=True)
class IntegerSplit:
    r"""A rational matrix as integers: :math:`M^+ = P / d`, :math:`M^- = N / d` (object arrays of gmpy2 or Python
    integers, d > 0)."""

    pos: np.ndarray
    neg: np.ndarray
    den: int


def integer_split(net: Network, k: int) -> IntegerSplit:
    """Layer k's weight matrix as an :class:`IntegerSplit` (cached on the network object)."""
    cache = net.__dict__.setdefault("_smt_integer_split", {})
    if k not in cache:
        cache[k] = matrix_split(net.fast_layers[k - 1][0])
    return cache[k]


def matrix_split(M: np.ndarray) -> IntegerSplit:
    """Any exact rational matrix as an :class:`IntegerSplit` (integers of gmpy2 where installed)."""
    nums, den = common_denominator(M)
    conv = _INTEGER
    ints = np.empty(nums.shape, dtype=object)
    ints.ravel()[:] = [conv(int(v)) for v in nums.ravel()]
    zero = conv(0)
    return IntegerSplit(np.where(ints > 0, ints, zero), np.where(ints < 0, ints, zero), int(den))


def _grid_numerators(v: np.ndarray) -> np.ndarray:
    r""":math:`v \cdot 2^{64}` for an array on the grid (integers)."""
    out = np.empty(len(v), dtype=object)
    out[:] = [_INTEGER(int(q.numerator) * (GRID // int(q.denominator))) for q in v]
    return out


def grid_interval(S: IntegerSplit, b: Any, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""An enclosure of :math:`\{M a + b : lo \le a \le hi\}` on the grid: lo and hi rounded outward to the grid
    (:func:`outward`), then the exact bounds :math:`M^+ l + M^- h + b`, :math:`M^+ h + M^- l + b` with the
    products in integers (:math:`l 2^{64}` and :math:`h 2^{64}` are integers), rounded outward again. Sound; the
    same as :func:`affine_interval` up to the two roundings."""
    lo, hi = outward(lo, hi)
    nl, nh = _grid_numerators(lo), _grid_numerators(hi)
    D = S.den * GRID
    low = S.pos.dot(nl) + S.neg.dot(nh)
    high = S.pos.dot(nh) + S.neg.dot(nl)
    zl = np.array([FAST_RATIONAL(v, D) for v in low], dtype=object) + b
    zh = np.array([FAST_RATIONAL(v, D) for v in high], dtype=object) + b
    return outward(zl, zh)


__all__ = ["Bounds", "interval_bounds", "affine_interval", "relu_interval", "split_weights", "outward", "GRID",
           "IntegerSplit", "integer_split", "matrix_split", "grid_interval"]

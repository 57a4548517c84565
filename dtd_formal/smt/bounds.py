r"""Exact interval bound propagation through a ReLU network (fixes stable neurons before any split).

For a box :math:`l \le a_{k-1} \le h` and :math:`W = W^+ + W^-`:

.. math::  \underline z_k = W^+ l + W^- h + b, \qquad \overline z_k = W^+ h + W^- l + b,

then :math:`a_k = \mathrm{relu}(z_k)` clamps both ends. A neuron is *stable active* when
:math:`\underline z > 0` (or :math:`\ge 0`: then a = z on the whole box) and *stable inactive* when
:math:`\overline z \le 0`. Everything is exact (gmpy2 rationals internally, the same values as Fractions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exact import FAST_RATIONAL, to_fast
from ..network import Network

_ZERO = FAST_RATIONAL(0)


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
    """Exact interval bounds of z_1..z_upto and a_0..a_upto over the input box [low, high]."""
    lo, hi = to_fast(np.asarray(low, dtype=object)), to_fast(np.asarray(high, dtype=object))
    upto = net.n_layers if upto is None else upto
    zs, acts = [], [(lo, hi)]
    for k, (Wp, Wn, b) in enumerate(split_weights(net)[:upto], start=1):
        zlo, zhi = affine_interval(Wp, Wn, b, lo, hi)
        zs.append((zlo, zhi))
        lo, hi = relu_interval(zlo, zhi) if net.has_relu(k) else (zlo, zhi)
        acts.append((lo, hi))
    return Bounds(zs, acts)


__all__ = ["Bounds", "interval_bounds", "affine_interval", "relu_interval", "split_weights"]

r"""Exact interval bounds of every node of a graph over an input box (interval bound propagation in rationals).

Each value is bounded by :math:`[l, h]`, propagated operator by operator:

- affine operators (dense, conv and average-pool patches, ``Scale``) in centre-radius form,
  :math:`c' = W c + b`, :math:`r' = |W| r` (exact: the bound is the true range of the affine image of a box);
- ReLU: :math:`[\max(l, 0), \max(h, 0)]`; MaxPool: :math:`[\max_w l, \max_w h]` per window;
- ``Add``: :math:`[l_p + l_q, h_p + h_q]`; index maps move bounds with the values.

The bounds are sound for every input of the box (no float arithmetic), and loose where branches meet (the
dependency between the two sides of a residual sum is dropped). :func:`dtd_formal.graph.root_exit` uses them to
prove that a neuron is never active on the box.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exact import to_fast
from ..rules.ops import FAST_EXACT, ExactOps
from .network import GraphNetwork
from .operators import converted, gather_rows


def _abs(v: np.ndarray) -> np.ndarray:
    return np.where(v < 0, -v, v).astype(object)


def interval_bounds(net: GraphNetwork, low: Any, high: Any, start: int = 0,
                    base: list[tuple[np.ndarray, np.ndarray]] | None = None,
                    linear: tuple[int, int] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(low, high) of every node over the box [low, high] of node ``start``'s values (default: the inputs), exact
    gmpy2 rationals, flat arrays. With ``start`` > 0, ``base`` holds the bounds of the nodes that do not depend on
    it (and is copied there); ``linear`` = (relu node, neuron) passes that neuron's input unclamped."""
    from .explain import downstream

    ops = FAST_EXACT
    lo0, hi0 = to_fast(np.asarray(low, dtype=object)), to_fast(np.asarray(high, dtype=object))
    live = downstream(net, start)
    out: list[Any] = [None] * len(net.nodes)
    out[start] = (lo0, hi0)
    half = ops.rational(1, 2)
    for k, node in enumerate(net.nodes):
        if k == start:
            continue
        if k not in live:
            if base is None:
                raise ValueError("interval_bounds: a start node other than the input needs the base bounds")
            out[k] = base[k]
            continue
        args = [out[i] for i in node.inputs]
        lo, hi = args[0]
        kind = node.kind
        if kind in ("dense", "conv", "avgpool", "scale"):
            c, r = (lo + hi) * half, (hi - lo) * half
            if kind == "dense":
                W, b = node.arrays(ops)  # type: ignore[attr-defined]
                cc, rr = ops.matmul(W, c) + b, ops.matmul(_abs(W), r)
            elif kind == "scale":
                d, shift = converted(node, ops, ("d", "c"))
                cc, rr = d * c + shift, _abs(d) * r
            else:
                Wg, b = node.arrays(ops)  # type: ignore[attr-defined]
                cc = ops.sum(Wg * gather_rows(ops, c, node.idx), axis=1)  # type: ignore[attr-defined]
                cc = cc + b if b is not None else cc
                rr = ops.sum(_abs(Wg) * gather_rows(ops, r, node.idx), axis=1)  # type: ignore[attr-defined]
            out[k] = (cc - rr, cc + rr)
        elif kind == "relu":
            L, H = ops.pos(lo), ops.pos(hi)
            if linear is not None and k == linear[0]:
                L[linear[1]], H[linear[1]] = lo[linear[1]], hi[linear[1]]
            out[k] = (L, H)
        elif kind == "maxpool":
            L, H = gather_rows(ops, lo, node.idx), gather_rows(ops, hi, node.idx)  # type: ignore[attr-defined]
            out[k] = (np.array([max(row) for row in L], dtype=object), np.array([max(row) for row in H], dtype=object))
        elif kind == "add":
            (lp, hp), (lq, hq) = args
            out[k] = (lp + lq, hp + hq)
        elif kind == "gather":
            out[k] = (lo[node.perm], hi[node.perm])  # type: ignore[attr-defined]
        elif kind == "concat":
            L = np.empty(node.n_out, dtype=object)
            H = np.empty(node.n_out, dtype=object)
            for pos, (a, b) in zip(node.parts, args):  # type: ignore[attr-defined]
                L[pos], H[pos] = list(a), list(b)
            out[k] = (L, H)
        else:  # pragma: no cover - every operator kind is handled above
            raise ValueError(f"no interval bounds for operator {kind!r} ({node.name})")
    return out


def winner_candidates(node: Any, lo: np.ndarray, hi: np.ndarray) -> list[list[int]]:
    r"""Per window of a max pool, the window positions that can be its *first* maximum somewhere on the box, given
    exact bounds [lo, hi] of the pool's input.

    Position m (the first occurrence of its input in the window) is the first maximum at x iff
    :math:`x_m > x_i` for the window's earlier inputs i and :math:`x_m \ge x_i` for the later ones; it is ruled out
    when some earlier input has :math:`l_i \ge h_m` or some later one :math:`l_i > h_m`. A single candidate is a
    stable winner (the pool is an index map on the whole box).
    """
    out = []
    for ids in node.idx:
        first: list[int] = []
        seen: set[int] = set()
        for m, i in enumerate(ids):
            if int(i) not in seen:
                seen.add(int(i))
                first.append(m)
        cands = []
        for m in first:
            h = hi[ids[m]]
            earlier = [ids[p] for p in first if p < m]
            later = [ids[p] for p in first if p > m]
            if any(lo[i] >= h for i in earlier) or any(lo[i] > h for i in later):
                continue
            cands.append(m)
        out.append(cands)
    return out


# ---------------------------------------------------------------------------------------------------- rule intervals
class Undecided(ArithmeticError):
    """An interval comparison or division the bounds cannot decide (the interval proof then gives up)."""


class Interval:
    """A closed interval [lo, hi] of exact rationals with sound arithmetic; comparisons answer only when every
    pair of points agrees, and raise :class:`Undecided` otherwise."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo: Any, hi: Any = None) -> None:
        self.lo, self.hi = lo, lo if hi is None else hi

    def __repr__(self) -> str:
        return f"[{self.lo}, {self.hi}]"

    def __add__(self, o: Any) -> "Interval":
        o = _iv(o)
        return Interval(self.lo + o.lo, self.hi + o.hi)

    __radd__ = __add__

    def __neg__(self) -> "Interval":
        return Interval(-self.hi, -self.lo)

    def __sub__(self, o: Any) -> "Interval":
        return self + (-_iv(o))

    def __rsub__(self, o: Any) -> "Interval":
        return _iv(o) - self

    def __mul__(self, o: Any) -> "Interval":
        o = _iv(o)
        ps = (self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi)
        return Interval(min(ps), max(ps))

    __rmul__ = __mul__

    def __truediv__(self, o: Any) -> "Interval":
        o = _iv(o)
        if o.lo <= 0 <= o.hi:
            raise Undecided("division by an interval that contains 0")
        return self * Interval(1 / o.hi, 1 / o.lo)

    def __rtruediv__(self, o: Any) -> "Interval":
        return _iv(o) / self

    def _cmp(self, o: Any, true: bool, false: bool) -> bool:
        if true:
            return True
        if false:
            return False
        raise Undecided("an interval comparison is not decided by the bounds")

    def __gt__(self, o: Any) -> bool:
        o = _iv(o)
        return self._cmp(o, self.lo > o.hi, self.hi <= o.lo)

    def __ge__(self, o: Any) -> bool:
        o = _iv(o)
        return self._cmp(o, self.lo >= o.hi, self.hi < o.lo)

    def __lt__(self, o: Any) -> bool:
        return _iv(o) > self

    def __le__(self, o: Any) -> bool:
        return _iv(o) >= self

    def __eq__(self, o: Any) -> bool:  # type: ignore[override]
        o = _iv(o)
        return self._cmp(o, self.lo == self.hi == o.lo == o.hi, self.hi < o.lo or o.hi < self.lo)

    def __ne__(self, o: Any) -> bool:  # type: ignore[override]
        return not self.__eq__(o)

    __hash__ = None  # type: ignore[assignment]


def _iv(v: Any) -> Interval:
    return v if isinstance(v, Interval) else Interval(v)


def intervals(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """An object array of :class:`Interval` from bound arrays."""
    out = np.empty(len(lo), dtype=object)
    out[:] = [Interval(a, b) for a, b in zip(lo, hi)]
    return out


class IntervalOps(ExactOps):
    """The rules' ops namespace over :class:`Interval` entries: a rule body evaluated here bounds its exact value
    for every point of the boxes it is given (any undecided comparison or division raises :class:`Undecided`).

    The exact namespace's operations carry over unchanged (their comparisons and divisions are the intervals'
    own); only parameters, ``pos`` and ``neg`` (a clamp, not a case split) differ.
    """

    name = "interval"
    exact_results = False

    def __init__(self) -> None:
        super().__init__(FAST_EXACT.rational)
        self.name = "interval"
        self.zero, self.one = Interval(FAST_EXACT.rational(0)), Interval(FAST_EXACT.rational(1))

    def const(self, value: Any) -> Any:
        c = FAST_EXACT.const(value)
        if isinstance(c, np.ndarray):
            out = np.empty(c.shape, dtype=object)
            out.ravel()[:] = [Interval(v) for v in c.ravel()]
            return out
        return Interval(c)

    @staticmethod
    def _clamp(w: Any, side: Any) -> np.ndarray:
        """Each entry's image under max(., 0) (``side`` = max) or min(., 0) (``side`` = min)."""
        arr = np.asarray(w, dtype=object)
        out = np.empty(arr.shape, dtype=object)
        out.ravel()[:] = [Interval(side(v.lo, 0), side(v.hi, 0)) if isinstance(v, Interval) else side(v, 0)
                          for v in arr.ravel()]
        return out

    def pos(self, w: Any) -> np.ndarray:
        return self._clamp(w, max)

    def neg(self, w: Any) -> np.ndarray:
        return self._clamp(w, min)


__all__ = ["interval_bounds", "winner_candidates", "Interval", "IntervalOps", "Undecided", "intervals"]

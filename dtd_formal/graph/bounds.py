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
from ..rules.ops import FAST_EXACT
from .network import GraphNetwork
from .operators import converted, gather_rows


def _abs(v: np.ndarray) -> np.ndarray:
    return np.where(v < 0, -v, v).astype(object)


def interval_bounds(net: GraphNetwork, low: Any, high: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(low, high) of every node over the box [low, high] of inputs (exact gmpy2 rationals, flat arrays)."""
    ops = FAST_EXACT
    lo0, hi0 = to_fast(np.asarray(low, dtype=object)), to_fast(np.asarray(high, dtype=object))
    out: list[tuple[np.ndarray, np.ndarray]] = [(lo0, hi0)]
    half = ops.rational(1, 2)
    for node in net.nodes[1:]:
        args = [out[i] for i in node.inputs]
        lo, hi = args[0]
        kind = node.kind
        if kind in ("dense", "conv", "avgpool", "scale"):
            c, r = (lo + hi) * half, (hi - lo) * half
            if kind == "dense":
                W, b = node.arrays(ops)  # type: ignore[attr-defined]
                cc, rr = ops.matmul(W, c) + b, ops.matmul(_abs(W), r)
            elif kind == "scale":
                d, k = converted(node, ops, ("d", "c"))
                cc, rr = d * c + k, _abs(d) * r
            else:
                Wg, b = node.arrays(ops)  # type: ignore[attr-defined]
                cc = ops.sum(Wg * gather_rows(ops, c, node.idx), axis=1)  # type: ignore[attr-defined]
                cc = cc + b if b is not None else cc
                rr = ops.sum(_abs(Wg) * gather_rows(ops, r, node.idx), axis=1)  # type: ignore[attr-defined]
            out.append((cc - rr, cc + rr))
        elif kind == "relu":
            out.append((ops.pos(lo), ops.pos(hi)))
        elif kind == "maxpool":
            L, H = gather_rows(ops, lo, node.idx), gather_rows(ops, hi, node.idx)  # type: ignore[attr-defined]
            out.append((np.array([max(row) for row in L], dtype=object), np.array([max(row) for row in H], dtype=object)))
        elif kind == "add":
            (lp, hp), (lq, hq) = args
            out.append((lp + lq, hp + hq))
        elif kind == "gather":
            out.append((lo[node.perm], hi[node.perm]))  # type: ignore[attr-defined]
        elif kind == "concat":
            L = np.empty(node.n_out, dtype=object)
            H = np.empty(node.n_out, dtype=object)
            for pos, (a, b) in zip(node.parts, args):  # type: ignore[attr-defined]
                L[pos], H[pos] = list(a), list(b)
            out.append((L, H))
        else:  # pragma: no cover - every operator kind is handled above
            raise ValueError(f"no interval bounds for operator {kind!r} ({node.name})")
    return out


__all__ = ["interval_bounds"]

r"""Certified float64 evaluation of a network graph for a batch of exact points: float values with rigorous error
bounds, so that the activation pattern at most points is decided without exact arithmetic.

This is the graph twin of :func:`dtd_formal.certified.certified_float_forward` (same constants, same bound per
affine operator). For a batch of exact values of one node (roots of a layer, in that layer's input space) it
evaluates every node downstream in float64 and carries, per value, a bound :math:`e` with
:math:`|v - \hat v| \le e`. With :math:`u = 2^{-53}`, :math:`\eta = 2^{-1074}` and
:math:`\gamma_k = k u / (1 - k u)`:

- start (exact values rounded to float): :math:`e = 4u|\hat v| + 2^{-1070}`; nodes that do not depend on the
  start node keep their exact values, rounded the same way;
- an affine operator with k terms per output (dense rows, conv and average-pool patches):

  .. math:: e_z = 2\,\big[(1+2u)\,|\hat W| e + (\gamma_{k+2} + u)(|\hat W||\hat a| + |\hat b|)
            + \eta\,(\textstyle\sum (|\hat a| + e) + 1) + (2k + 2)\,\eta\big]

  (rounding of the exact weights to float, of every product and sum, subnormal results, and the bound's own
  float evaluation, as in :mod:`dtd_formal.certified`); ``Scale`` is the case k = 1;
- ``Add``: :math:`e = 2\,(e_p + e_q + u(|\hat p| + |\hat q|))` (one rounding; sums never underflow inexactly);
- ``Relu``: a sign is certain when :math:`|\hat z| > e`; then relu is applied as in exact arithmetic and the
  bound passes (0 where the neuron is off);
- ``MaxPool``: :math:`e_y = \max_{\text{window}} e` (a max is exact in floats and 1-Lipschitz in the sup norm);
  the winner is certain when the float maximum beats every other distinct input of the window by more than the
  sum of both bounds (and the rounding of that comparison); values with bound 0 are exact (a ReLU certainly off
  gives exactly 0), so exact ties (a window of switched-off neurons) are decided too;
- index maps (``Gather``, ``Concat``) move values and bounds unchanged.

A row (point) whose every ReLU sign and max-pool winner downstream is certain gets its exact pattern from the
floats; any other row, and any row with a non-finite value or bound, is ``uncertain`` and must be recomputed
exactly by the caller. One ReLU neuron per row can be *forced* linear (a = z, its sign not required), as the
root-region classification does for the root's own neuron.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..certified import SUBNORMAL_ERROR, UNIT_ROUNDOFF
from ..exact import to_float
from ..rules.ops import FLOAT64
from .network import GraphNetwork
from .operators import cached, converted, patch_matrix

#: bound on the error of rounding one exact value to float64 (relative, plus an absolute term for subnormals)
_START_REL, _START_ABS = 4 * UNIT_ROUNDOFF, 2.0**-1070


@dataclass
class GraphCertified:
    """Certified patterns of a batch of points (rows).

    ``signs[k]`` (rows, n) int8 ReLU input signs of relu node k (+1/-1 where certain, 0 where not, and at a forced
    neuron); ``winners[k]`` (rows, windows, k) bool, the winning window positions of max-pool node k (none where
    not certain); ``uncertain`` marks rows where some sign or winner (other than the forced neuron's) is not decided,
    or a value or bound is not finite.
    """

    signs: dict[int, np.ndarray]
    winners: dict[int, np.ndarray]
    uncertain: np.ndarray


def _rounded(values: Any) -> tuple[np.ndarray, np.ndarray]:
    v = to_float(values)
    return v, _START_REL * np.abs(v) + _START_ABS


def _affine_bound(terms: int, abs_w_e: np.ndarray, abs_w_a: np.ndarray, abs_b: Any, mass: np.ndarray) -> np.ndarray:
    """The affine-operator bound of the module docstring from its pieces: |W|e, |W||a|, |b| and sum(|a| + e)."""
    u, eta = UNIT_ROUNDOFF, SUBNORMAL_ERROR
    gamma = (terms + 2) * u / (1 - (terms + 2) * u)
    return 2.0 * ((1 + 2 * u) * abs_w_e + (gamma + u) * (abs_w_a + abs_b) + eta * (mass + 1) + (2 * terms + 2) * eta)


def _patch_matrix(node: Any, n_in: int) -> tuple[Any, Any]:
    """The float64 patch weights of a conv / average pool as a sparse (n_out, n_in) CSR matrix
    (:func:`~dtd_formal.graph.operators.patch_matrix`) and its entrywise absolute value; cached on the operator."""
    S = patch_matrix(node, FLOAT64, n_in)
    return S, cached(node, "float64-csr-abs", lambda: abs(S))


def _patch_affine(node: Any, a: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z = W_patch a + b for a batch (rows) of inputs through the sparse patch matrix, with its bound."""
    S, Sabs = _patch_matrix(node, a.shape[1])
    _, b = node.arrays(FLOAT64)
    k = node.idx.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):
        z = (S @ a.T).T
        if b is not None:
            z = z + b
        mass = (np.abs(a) + e).sum(axis=1, keepdims=True)  # >= every patch's sum: a valid, tiny subnormal term
        err = _affine_bound(k, (Sabs @ e.T).T, (Sabs @ np.abs(a).T).T, 0.0 if b is None else np.abs(b), mass)
    return z, err


def certified_graph_forward(net: GraphNetwork, base: list[Any], start: int, points: Any,
                            forced: tuple[int, np.ndarray] | None = None,
                            rounded: np.ndarray | None = None) -> GraphCertified:
    """Certified patterns (module docstring) of the exact ``points`` (rows) given as the value of node ``start``.

    Parameters
    ----------
    net : the graph
    base : exact values of every node at the unperturbed input (the nodes that do not depend on ``start``)
    start : the node whose value the points replace (a layer's input node)
    points : (rows, n_start) exact values
    forced : (relu node, neuron per row) kept linear, as in the root-region classification
    rounded : ``to_float(points)`` when the caller has it cheaper (each entry the float nearest the exact value;
        the start bound assumes that rounding)
    """
    from .explain import downstream

    pts = np.asarray(points, dtype=object)
    rows = pts.shape[0]
    live = downstream(net, start)
    if rounded is None:
        a0, e0 = _rounded(pts)
    else:
        a0 = np.asarray(rounded, dtype=np.float64)
        e0 = _START_REL * np.abs(a0) + _START_ABS
    vals: dict[int, tuple[np.ndarray, np.ndarray]] = {start: (a0, e0)}
    uncertain = ~(np.isfinite(a0).all(axis=1) & np.isfinite(e0).all(axis=1))
    signs: dict[int, np.ndarray] = {}
    winners: dict[int, np.ndarray] = {}
    row_ids = np.arange(rows)

    def value(i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in vals:  # does not depend on start: the exact base value, rounded, the same for every row
            v, e = _rounded(base[i])
            vals[i] = (np.broadcast_to(v, (rows, v.size)), np.broadcast_to(e, (rows, e.size)))
        return vals[i]

    for k in sorted(live - {start}):
        node = net.nodes[k]
        kind = node.kind
        args = [value(i) for i in node.inputs]
        a, e = args[0]
        if kind == "dense":
            W, b = converted(node, FLOAT64, ("W", "b"))
            with np.errstate(over="ignore", invalid="ignore"):
                Wabs = np.abs(W)
                z = a @ W.T + b
                err = _affine_bound(W.shape[1], e @ Wabs.T, np.abs(a) @ Wabs.T, np.abs(b),
                                    (np.abs(a) + e).sum(axis=1, keepdims=True))
        elif kind in ("conv", "avgpool"):
            z, err = _patch_affine(node, a, e)
        elif kind == "scale":
            d, c = converted(node, FLOAT64, ("d", "c"))
            with np.errstate(over="ignore", invalid="ignore"):
                z = d * a + c
                err = _affine_bound(1, np.abs(d) * e, np.abs(d) * np.abs(a), np.abs(c), np.abs(a) + e)
        elif kind == "add":
            (p, ep), (q, eq) = args
            with np.errstate(over="ignore", invalid="ignore"):
                z = p + q
                err = 2.0 * (ep + eq + UNIT_ROUNDOFF * (np.abs(p) + np.abs(q)))
        elif kind == "relu":
            sure = np.abs(a) > e  # NaN compares False: not sure
            on = a > 0
            s = np.where(sure, np.where(on, 1, -1), 0).astype(np.int8)
            if forced is not None and k == forced[0]:
                cols = np.asarray(forced[1], dtype=np.int64)
                sure = sure.copy()
                on = on.copy()
                sure[row_ids, cols] = True
                on[row_ids, cols] = True
                s[row_ids, cols] = 0
            uncertain |= ~sure.all(axis=1)
            signs[k] = s
            z, err = np.where(on, a, 0.0), np.where(on, e, 0.0)
        elif kind == "maxpool":
            z, err, win, sure = _certified_max(node.idx, a, e)  # type: ignore[attr-defined]
            uncertain |= ~sure.all(axis=1)
            winners[k] = win & sure[..., None]
        elif kind == "gather":
            z, err = a[:, node.perm], e[:, node.perm]  # type: ignore[attr-defined]
        elif kind == "concat":
            z, err = np.zeros((rows, node.n_out)), np.zeros((rows, node.n_out))
            for pos, (v, ev) in zip(node.parts, args):  # type: ignore[attr-defined]
                z[:, pos], err[:, pos] = v, ev
        else:  # pragma: no cover - every operator kind is handled above
            raise ValueError(f"no certified evaluation for operator {kind!r} ({node.name})")
        uncertain |= ~(np.isfinite(z).all(axis=1) & np.isfinite(err).all(axis=1))
        vals[k] = (z, err)
    return GraphCertified(signs, winners, uncertain)


def _certified_max(idx: np.ndarray, a: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, ...]:
    """Window maxima with bounds, and the certain winner sets as masks over window positions (the first position
    of each winning input, as :meth:`MaxPool.winners`).

    A window is certain when every position is either certainly below the maximum or exactly tied with it: a
    value with bound 0 is exact (a ReLU that is certainly off gives an exact 0), so windows of switched-off
    neurons, where every position wins, are decided too.
    """
    va, ve = a[:, idx], e[:, idx]  # (rows, windows, k); MaxPool.idx has no padding entries
    top = np.argmax(va, axis=2)
    take = lambda x: np.take_along_axis(x, top[..., None], axis=2)[..., 0]  # noqa: E731
    best, best_e = take(va), take(ve)
    windows = np.arange(idx.shape[0])[None, :]
    top_input = idx[windows, top]
    first = np.ones(idx.shape, dtype=bool)  # first occurrence of each input within its window
    for m in range(1, idx.shape[1]):
        first[:, m] = ~(idx[:, :m] == idx[:, m:m + 1]).any(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        # exact a_i <= va + ve < best - best_e <= exact best; the gap must also beat the rounding of its own
        # three float operations (4u of the magnitudes involved, plus the subnormal spacing)
        low = (best - best_e)[..., None]
        gap = low - (va + ve)
        slack = 4 * UNIT_ROUNDOFF * (np.abs(best)[..., None] + best_e[..., None] + np.abs(va) + ve) + 2 * SUBNORMAL_ERROR
        below = gap > slack
    exact_top = (best_e == 0)[..., None]
    tied = np.where(exact_top, (ve == 0) & (va == best[..., None]), idx[None, :, :] == top_input[..., None])
    sure = (below | tied).all(axis=2)
    return best, np.max(ve, axis=2), tied & first[None, :, :], sure


__all__ = ["GraphCertified", "certified_graph_forward"]

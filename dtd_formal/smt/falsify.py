r"""Falsification: sampling and local search in float64, every candidate then checked exactly.

The float score of an input x for (layer l, neuron j) is

.. math::  s(x) = \max_{m \ne j \in \text{scope}} \min\big(\sigma_m z_m(a),\; -\sigma_m \tilde z_m(\tilde a)\big),
           \qquad \sigma_m = \mathrm{sign}\, z_m(a),

positive exactly when (in floats) some neuron has strictly opposite signs at a and at the root; :math:`-\infty`
where neuron j gives no root (inactive, zero denominator). Paper-code roots use
:math:`t = R^l_j / (w_j \cdot v_j)` with :math:`R^l_j` from a float64 LRP pass per sample. Floats only steer the search: a candidate becomes a
counterexample only after :meth:`RootExitCounterexample.build` confirms it in exact arithmetic.
"""

from __future__ import annotations

import time
from fractions import Fraction


import numpy as np

from .counterexample import RootExitCounterexample
from .problem import RootExitProblem


class FloatModel:
    r"""float64 view of a :class:`RootExitProblem` for batch scoring.

    The step and direction are the rule's: vectorised over the batch when the stock form is verified
    (:func:`dtd_formal.smt.problem.verify_stock_form`, :math:`v = D \odot a + e`), else the rule's own
    ``root_step`` in float64 row by row (:func:`dtd_formal.walk.root_points`).
    """

    def __init__(self, P: RootExitProblem) -> None:
        self.P = P
        fnet = P.net.to_float()
        self.W, self.b = fnet.weights, fnet.biases
        if P.direction is not None:
            D, e = P.direction
            self.D = np.array([float(v) for v in D])
            self.e = np.array([float(v) for v in e])
        else:
            self.D = self.e = None
        self.lo = np.array([float(v) for v in P.low])
        self.hi = np.array([float(v) for v in P.high])
        self.scope = P.proof_scope if P.variant == "affine_map" else P.scope

    def relevance(self, X: np.ndarray) -> np.ndarray:
        """:math:`R^l_j(x)` per row in float64 (the walk's backward pass, same rule body), the numerator of the
        paper-code step."""
        from ..rules.ops import FLOAT64
        from ..walk import forward, relevance_per_layer

        P = self.P
        layers = list(zip(self.W, self.b))
        out = np.empty(len(X))
        for r, x in enumerate(X):
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                acts, _ = forward(FLOAT64, layers, P.net.relu_flags, np.asarray(x, dtype=float))
                out[r] = relevance_per_layer(FLOAT64, layers, P.net.relu_flags, acts, P.rule, P.output)[P.layer][P.neuron]
        return out

    def steps(self, A: np.ndarray, z: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t, v, valid) for every row of the layer inputs A (rows of X are the network inputs)."""
        from ..rules.ops import FLOAT64
        from ..walk import RuleEvaluationError, root_points

        P, j = self.P, self.P.neuron
        W, b = self.W[P.layer - 1], self.b[P.layer - 1]
        R = None if P.true_root else self.relevance(X)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.D is not None:
                v = A * self.D + self.e
                den = v @ W[j]
                t = (z[:, j] if R is None else R) / den
                valid = (den != 0) & np.isfinite(t)
                return t, v, valid
            t, v, valid = np.zeros(len(A)), np.zeros_like(A), np.zeros(len(A), dtype=bool)
            for r, a in enumerate(A):
                try:
                    rs = root_points(FLOAT64, P.rule, a, W[j : j + 1], b[j : j + 1],
                                     None if R is None else R[r : r + 1], P.definition, P.layer)
                except RuleEvaluationError:
                    continue
                t[r], v[r] = rs.t[0], rs.V[0]
                valid[r] = rs.den[0] != 0 and np.isfinite(rs.t[0]) and np.all(np.isfinite(rs.V[0]))
            return t, v, valid

    def score(self, X: np.ndarray) -> np.ndarray:
        """s(x) for each row of X (module docstring)."""
        P, net = self.P, self.P.net
        l, j = P.layer, P.neuron
        a = X
        for k in range(1, l):
            a = a @ self.W[k - 1].T + self.b[k - 1]
            if net.has_relu(k):
                a = np.maximum(a, 0.0)
        z = a @ self.W[l - 1].T + self.b[l - 1]
        t, v, valid = self.steps(a, z, X)
        if P.relu:
            valid &= z[:, j] > 0
        t = np.where(valid, t, 0.0)
        r = a - t[:, None] * v
        zr = r @ self.W[l - 1].T + self.b[l - 1]
        best = np.full(len(X), -np.inf)
        if P.relu:
            zz, rr = z.copy(), zr.copy()
            zz[:, j] = 0.0
            rr[:, j] = 0.0
            best = np.maximum(best, np.max(np.minimum(np.sign(zz) * zz, -np.sign(zz) * rr), axis=1))
            ah, ar = np.maximum(z, 0.0), np.maximum(zr, 0.0)
            ar[:, j] = zr[:, j]
            for k in range(l + 1, net.n_layers + 1):
                zk = ah @ self.W[k - 1].T + self.b[k - 1]
                zrk = ar @ self.W[k - 1].T + self.b[k - 1]
                if not net.has_relu(k):
                    break
                if self.scope == "upper":
                    best = np.maximum(best, np.max(np.minimum(np.sign(zk) * zk, -np.sign(zk) * zrk), axis=1))
                ah, ar = np.maximum(zk, 0.0), np.maximum(zrk, 0.0)
        return np.where(valid, best, -np.inf)


def confirm(P: RootExitProblem, x: np.ndarray, found_by: str) -> RootExitCounterexample | None:
    """Exact check of a float candidate: converted exactly (Fraction(float)), clamped exactly into the box, then
    :meth:`RootExitCounterexample.build` (which re-derives everything and checks the box again)."""
    xs = np.array([Fraction(float(v)) for v in x], dtype=object)
    xs = np.minimum(np.maximum(xs, P.low), P.high)  # exact clamp: float(high) may round above the exact bound
    return RootExitCounterexample.build(P.question(), P.net, P.rule, xs, found_by)


def falsify(P: RootExitProblem, deadline: float, n_samples: int = 4096, seed: int = 0, max_confirm: int = 8,
            local_rounds: int = 30) -> tuple[RootExitCounterexample | None, np.ndarray, np.ndarray]:
    """Sampling (box corners, uniform, near-face points) plus hill-climbing local search on s(x).

    Returns (counterexample or None, the best float points, their scores) — the points seed t-slicing.
    """
    fm = FloatModel(P)
    if not P.true_root or fm.D is None:  # a float LRP pass or root_step call per sample: fewer samples and rounds
        n_samples, local_rounds = min(n_samples, 512), min(local_rounds, 10)
    rng = np.random.default_rng(seed)
    lo, hi = fm.lo, fm.hi
    n = len(lo)
    width = hi - lo
    X = lo + width * rng.random((n_samples, n))
    faces = lo + width * rng.random((n_samples // 4, n))
    mask = rng.random(faces.shape) < 0.3
    faces = np.where(mask, np.where(rng.random(faces.shape) < 0.5, lo, hi), faces)
    X = np.vstack([X, faces, (lo + hi)[None, :] / 2])
    s = fm.score(X)
    order = np.argsort(-s)
    for idx in order[: max_confirm]:
        if s[idx] <= 0 or time.monotonic() > deadline:
            break
        cex = confirm(P, X[idx], "sampling")
        if cex is not None:
            return cex, X[order[:16]], s[order[:16]]
    # local search from the best finite starts
    starts = X[order[:8]][np.isfinite(s[order[:8]])]
    if len(starts) == 0:
        return None, X[order[:16]], s[order[:16]]
    cur, cur_s = starts.copy(), fm.score(starts)
    scale = 0.25 * width
    for _ in range(local_rounds):
        if time.monotonic() > deadline:
            break
        k = 32
        cand = cur[:, None, :] + scale * rng.standard_normal((len(cur), k, n))
        cand = np.clip(cand, lo, hi).reshape(-1, n)
        cs = fm.score(cand).reshape(len(cur), k)
        best = np.argmax(cs, axis=1)
        improved = cs[np.arange(len(cur)), best] > cur_s
        cur[improved] = cand.reshape(len(cur), k, n)[np.arange(len(cur)), best][improved]
        cur_s[improved] = cs[np.arange(len(cur)), best][improved]
        for i in np.flatnonzero(cur_s > 0)[:2]:
            cex = confirm(P, cur[i], "local search")
            if cex is not None:
                return cex, cur, cur_s
        scale = scale * (0.8 if not improved.any() else 1.0)
    allX = np.vstack([X[order[:16]], cur])
    allS = np.concatenate([s[order[:16]], cur_s])
    o = np.argsort(-allS)
    return None, allX[o], allS[o]


__all__ = ["FloatModel", "falsify", "confirm"]

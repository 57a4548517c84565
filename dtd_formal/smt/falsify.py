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
    """float64 view of a :class:`RootExitProblem` for batch scoring (needs a diagonal-affine direction)."""

    def __init__(self, P: RootExitProblem) -> None:
        if P.direction is None:
            raise ValueError("the rule's search direction is not diagonal-affine")
        self.P = P
        fnet = P.net.to_float()
        self.W, self.b = fnet.weights, fnet.biases
        D, e = P.direction
        self.D = np.array([float(v) for v in D])
        self.e = np.array([float(v) for v in e])
        self.lo = np.array([float(v) for v in P.low])
        self.hi = np.array([float(v) for v in P.high])
        self.scope = P.proof_scope if P.variant == "affine_map" else P.scope

    def relevance(self, X: np.ndarray) -> np.ndarray:
        """:math:`R^l_j(x)` per row in float64 (the LRP pass of :func:`dtd_formal.dtd.propagate`, same rule body),
        the numerator of the paper-code step."""
        from ..dtd import forward_arrays, propagate
        from ..rules.ops import FLOAT64

        P = self.P
        layers = list(zip(self.W, self.b))
        out = np.empty(len(X))
        for r, x in enumerate(X):
            acts, _ = forward_arrays(layers, P.net, np.asarray(x, dtype=float))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                out[r] = propagate(P.net, acts, layers, FLOAT64, P.rule, P.output)[0][P.layer][P.neuron]
        return out

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
        v = a * self.D + self.e
        den = v @ self.W[l - 1][j]
        numer = z[:, j] if P.true_root else self.relevance(X)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            t = numer / den
        valid = (den != 0) & np.isfinite(t)
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
    """Exact check of a float candidate (converted exactly, Fraction(float))."""
    xs = np.array([Fraction(float(v)) for v in x], dtype=object)
    if any(v < lo or v > hi for v, lo, hi in zip(xs, P.low, P.high)):
        return None
    return RootExitCounterexample.build(P.net, P.rule, xs, P.layer, P.neuron, P.scope, P.variant, P.output, found_by,
                                        P.definition)


def falsify(P: RootExitProblem, deadline: float, n_samples: int = 4096, seed: int = 0, max_confirm: int = 8,
            local_rounds: int = 30) -> tuple[RootExitCounterexample | None, np.ndarray, np.ndarray]:
    """Sampling (box corners, uniform, near-face points) plus hill-climbing local search on s(x).

    Returns (counterexample or None, the best float points, their scores) — the points seed t-slicing.
    """
    fm = FloatModel(P)
    if not P.true_root:  # the float LRP pass per sample is slower: fewer samples and rounds
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

r"""Falsification: sampling and a guided local search in float64, every candidate then checked exactly.

The float exit score of an input x for (layer l, neuron j) is

.. math::  s(x) = \max_{m \ne j \in \text{scope},\ \sigma_m \ne 0}
           \min\big(\sigma_m z_m(a),\; -\sigma_m \tilde z_m(\tilde a)\big), \qquad \sigma_m = \mathrm{sign}\, z_m(a),

positive exactly when (in floats) some neuron other than j has strictly opposite signs at a and at the root
(neuron j itself never counts, and a neuron with :math:`z_m(a) = 0` cannot flip strictly). Paper-code roots use
:math:`t = R^l_j / (w_j \cdot v_j)` with :math:`R^l_j` from a float64 LRP pass.

The search orders inputs lexicographically by a key (level, value), so that it is guided also where no root
exists yet:

- level 2: neuron j has a root that moves (:math:`t \ne 0`, finite; a ReLU layer also needs :math:`z_j > 0`);
  value :math:`s(x)`;
- level 1: neuron j is active but has no moving root (zero denominator, or :math:`t = 0`: a paper-code step with
  :math:`R^l_j = 0`); value 0;
- level 0: neuron j is inactive (ReLU layer, :math:`z_j \le 0`); value :math:`z_j`, so the search climbs towards
  the inputs that activate j (a neuron active on a small part of the box only is found this way).

The step, the direction and (paper-code) the LRP relevance are the rule's own: vectorised over the batch where
the stock form is verified (:func:`dtd_formal.smt.problem.verify_stock_form`), else the rule's ``root_step`` and
``redistribute`` through the walk, on all samples at once in float64 lanes (:mod:`dtd_formal.smt.lanes`) when the
lanes agree with the walk's one-point evaluation on probe rows, else row by row. Floats only steer the search: a
candidate becomes a counterexample only after :meth:`RootExitCounterexample.build` confirms it in exact
arithmetic.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Callable

import numpy as np

from .counterexample import RootExitCounterexample
from .problem import RootExitProblem

#: search-key levels (module docstring)
INACTIVE, NO_ROOT, ROOT = 0, 1, 2


def better(level: np.ndarray, value: np.ndarray, than_level: np.ndarray, than_value: np.ndarray) -> np.ndarray:
    """Entrywise: whether the key (level, value) is lexicographically larger than (than_level, than_value)."""
    return (level > than_level) | ((level == than_level) & (value > than_value))


def key_order(level: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Indices sorting the keys from best to worst."""
    return np.lexsort((-value, -level))


class FloatModel:
    r"""float64 view of a :class:`RootExitProblem` for batch scoring (module docstring)."""

    def __init__(self, P: RootExitProblem) -> None:
        from .lanes import lift_layers

        self.P = P
        fnet = P.net.to_float()
        self.W, self.b = fnet.weights, fnet.biases
        # row batches multiply by W^T: a contiguous copy (numpy's matmul with the transposed view was measured
        # 500 times slower on 256 x 50 batches here)
        self.WT = [np.ascontiguousarray(W.T) for W in self.W]
        self.layers = list(zip(self.W, self.b))
        self.lane_layers = lift_layers(self.layers)
        if P.direction is not None:
            D, e = P.direction
            self.D = np.array([float(v) for v in D])
            self.e = np.array([float(v) for v in e])
        else:
            self.D = self.e = None
        self.lo = np.array([float(v) for v in P.low])
        self.hi = np.array([float(v) for v in P.high])
        self.scope = P.proof_scope if P.variant == "affine_map" else P.scope
        #: per evaluation ("relevance", "root_step"): whether the lanes agree with the walk (decided on first use)
        self._lanes_ok: dict[str, bool] = {}

    # ------------------------------------------------------------------ the rule, in lanes or row by row
    def _choose(self, name: str, lanes: Callable[[slice], tuple], rows: Callable[[slice], tuple]) -> tuple:
        """``lanes(slice(None))`` when the lane evaluation agrees with ``rows`` (the walk, one point at a time) on
        the first three rows of the first batch (relative tolerance 1e-9), else ``rows(slice(None))``; both take
        the rows to evaluate and return a tuple of arrays."""
        if name not in self._lanes_ok:
            try:
                with np.errstate(all="ignore"):
                    got, want = lanes(slice(0, 3)), rows(slice(0, 3))
                ok = all(np.allclose(g, w, rtol=1e-9, atol=1e-12, equal_nan=True) for g, w in zip(got, want))
            except Exception:  # noqa: BLE001 - a rule body the lanes do not translate: evaluate row by row
                ok = False
            self._lanes_ok[name] = ok
        with np.errstate(all="ignore"):
            return lanes(slice(None)) if self._lanes_ok[name] else rows(slice(None))

    @property
    def vectorised(self) -> bool:
        """Whether a batch costs numpy operations rather than one walk per row (stock true step, or lanes)."""
        if self.D is not None and self.P.true_root:
            return True
        return all(self._lanes_ok.get(k, False) for k in self._needed())

    def _needed(self) -> list[str]:
        return (["relevance"] if not self.P.true_root else []) + (["root_step"] if self.D is None else [])

    def relevance(self, X: np.ndarray) -> np.ndarray:
        """:math:`R^l_j(x)` per row in float64 (the walk's backward pass, the rule's own body), the numerator of
        the paper-code step."""
        return self._choose("relevance", lambda rows: (self._relevance_lanes(X[rows]),),
                            lambda rows: (self._relevance_rows(X[rows]),))[0]

    def _relevance_lanes(self, X: np.ndarray) -> np.ndarray:
        from ..walk import forward, relevance_per_layer
        from .lanes import LANES

        P = self.P
        acts, _ = forward(LANES, self.lane_layers, P.net.relu_flags, X.T.copy())
        return relevance_per_layer(LANES, self.lane_layers, P.net.relu_flags, acts, P.rule, P.output)[P.layer][P.neuron]

    def _relevance_rows(self, X: np.ndarray) -> np.ndarray:
        from ..rules.ops import FLOAT64
        from ..walk import forward, relevance_per_layer

        P = self.P
        out = np.empty(len(X))
        for r, x in enumerate(X):
            acts, _ = forward(FLOAT64, self.layers, P.net.relu_flags, np.asarray(x, dtype=float))
            R = relevance_per_layer(FLOAT64, self.layers, P.net.relu_flags, acts, P.rule, P.output)
            out[r] = R[P.layer][P.neuron]
        return out

    def _steps_lanes(self, A: np.ndarray, R: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from ..walk import call_rule
        from .lanes import LANES, lift

        P, j = self.P, self.P.neuron
        W, b = self.W[P.layer - 1], self.b[P.layer - 1]
        t, V, den = call_rule(P.rule, "root_step", LANES, A.T.copy(), lift(W[j : j + 1]), lift(b[j : j + 1]),
                              None if R is None else R[None, :], P.definition, layer=P.layer)
        n = len(A)
        t, den = np.broadcast_to(t, (1, n))[0], np.broadcast_to(den, (1, n))[0]
        V = np.broadcast_to(V, (1, A.shape[1], n))[0].T
        return t, V, den

    def _steps_rows(self, A: np.ndarray, R: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from ..rules.ops import FLOAT64
        from ..walk import RuleEvaluationError, root_points

        P, j = self.P, self.P.neuron
        W, b = self.W[P.layer - 1], self.b[P.layer - 1]
        t, V, den = np.zeros(len(A)), np.zeros_like(A), np.zeros(len(A))
        for r, a in enumerate(A):
            try:
                rs = root_points(FLOAT64, P.rule, a, W[j : j + 1], b[j : j + 1],
                                 None if R is None else R[r : r + 1], P.definition, P.layer)
            except RuleEvaluationError:
                continue
            t[r], V[r], den[r] = rs.t[0], rs.V[0], rs.den[0]
        return t, V, den

    def steps(self, A: np.ndarray, z: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t, v, valid) for every row of the layer inputs A (rows of X are the network inputs, z the layer's
        pre-activations); valid: a non-zero denominator and finite t and v."""
        P, j = self.P, self.P.neuron
        W = self.W[P.layer - 1]
        R = None if P.true_root else self.relevance(X)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.D is not None:
                v = A * self.D + self.e
                den = v @ W[j]
                t = (z[:, j] if R is None else R) / den
            else:
                t, v, den = self._choose(
                    "root_step", lambda rows: self._steps_lanes(A[rows], None if R is None else R[rows]),
                    lambda rows: self._steps_rows(A[rows], None if R is None else R[rows]))
            valid = (den != 0) & np.isfinite(t) & np.all(np.isfinite(v), axis=1)
        return t, v, valid

    # ------------------------------------------------------------------ the search key
    def evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The search key (level, value) of each row of X (module docstring)."""
        P, net = self.P, self.P.net
        l, j = P.layer, P.neuron
        a = X
        for k in range(1, l):
            a = a @ self.WT[k - 1] + self.b[k - 1]
            if net.has_relu(k):
                a = np.maximum(a, 0.0)
        z = a @ self.WT[l - 1] + self.b[l - 1]
        active = z[:, j] > 0 if P.relu else np.ones(len(X), dtype=bool)
        t, v, valid = self.steps(a, z, X)
        valid &= active & (t != 0)
        t = np.where(valid, t, 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            r = a - t[:, None] * v
            zr = r @ self.WT[l - 1] + self.b[l - 1]
            best = np.full(len(X), -np.inf)
            if P.relu:
                flip = _flip_margin(z, zr)
                flip[:, j] = -np.inf
                best = np.max(flip, axis=1)
                ah, ar = np.maximum(z, 0.0), np.maximum(zr, 0.0)
                ar[:, j] = zr[:, j]
                for k in range(l + 1, net.n_layers + 1):
                    zk = ah @ self.WT[k - 1] + self.b[k - 1]
                    zrk = ar @ self.WT[k - 1] + self.b[k - 1]
                    if not net.has_relu(k):
                        break
                    if self.scope == "upper":
                        best = np.maximum(best, np.max(_flip_margin(zk, zrk), axis=1))
                    ah, ar = np.maximum(zk, 0.0), np.maximum(zrk, 0.0)
        level = np.where(valid, ROOT, np.where(active, NO_ROOT, INACTIVE))
        value = np.where(valid, np.nan_to_num(best, nan=-np.inf), np.where(active, 0.0, z[:, j]))
        return level, value

    def score(self, X: np.ndarray) -> np.ndarray:
        """s(x) for each row of X where neuron j has a moving root, else -inf (module docstring)."""
        level, value = self.evaluate(X)
        return np.where(level == ROOT, value, -np.inf)


def _flip_margin(z: np.ndarray, zr: np.ndarray) -> np.ndarray:
    r""":math:`\min(\sigma z, -\sigma \tilde z)` entrywise, :math:`\sigma = \mathrm{sign}\, z`; -inf where z = 0."""
    sg = np.sign(z)
    return np.where(sg != 0, np.minimum(sg * z, -sg * zr), -np.inf)


def confirm(P: RootExitProblem, x: np.ndarray, found_by: str) -> RootExitCounterexample | None:
    """Exact check of a float candidate: converted exactly (Fraction(float)), clamped exactly into the box, then
    :meth:`RootExitCounterexample.build` (which re-derives everything and checks the box again)."""
    xs = np.array([Fraction(float(v)) for v in x], dtype=object)
    xs = np.minimum(np.maximum(xs, P.low), P.high)  # exact clamp: float(high) may round above the exact bound
    return RootExitCounterexample.build(P.question(), P.net, P.rule, xs, found_by)


def _note(P: RootExitProblem, n: int, level: int, value: float) -> str:
    """What the search reached at best, in words (for an Unknown's reason)."""
    j = f"neuron {P.neuron} of layer {P.layer}"
    if level == INACTIVE:
        return f"no exit at {n} float points: none of them activates {j} (largest z_j {value:.3g})"
    if level == NO_ROOT:
        return f"no exit at {n} float points: {j} has no moving root at any of them (t = 0 or w_j . v_j = 0)"
    return f"no exact exit at {n} float points (largest float exit score {value:.3g})"


def initial_samples(lo: np.ndarray, hi: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform samples, near-face samples (each coordinate at a bound with probability 0.3), the box centre and
    its corners (all of them up to 10 inputs, else 1024 random ones)."""
    d = len(lo)
    width = hi - lo
    X = lo + width * rng.random((n, d))
    faces = lo + width * rng.random((n // 4, d))
    mask = rng.random(faces.shape) < 0.3
    faces = np.where(mask, np.where(rng.random(faces.shape) < 0.5, lo, hi), faces)
    bits = (np.arange(2**d)[:, None] >> np.arange(d)) & 1 if d <= 10 else rng.integers(0, 2, (1024, d))
    corners = np.where(bits == 1, hi, lo)
    return np.vstack([X, faces, (lo + hi)[None, :] / 2, corners])


def falsify(P: RootExitProblem, deadline: float, n_samples: int = 4096, seed: int = 0, max_confirm: int = 8,
            n_starts: int = 8, proposals: int = 32, patience: int = 60
            ) -> tuple[RootExitCounterexample | None, np.ndarray, np.ndarray, str]:
    r"""Sampling (:func:`initial_samples`) plus a local search on the key of :meth:`FloatModel.evaluate`.

    The search keeps ``n_starts`` points, each with its own step size :math:`\sigma_i` (initially a quarter of
    the box): every round proposes ``proposals`` Gaussian moves per point (each coordinate snapped to the face of
    the box it moves towards with probability 0.1), keeps the best if its key is larger, and scales
    :math:`\sigma_i` by 1.5 after a success and 0.6 after a failure; a point whose step has shrunk below 1e-7 of
    the box restarts from the best of fresh samples. Points with a positive exit score are confirmed exactly (at
    most ``max_confirm`` exact checks among the samples and as many in the local search). The search ends at
    ``deadline`` or after ``patience`` rounds without a larger key (a gain below 1e-6 of the best value does not
    count). A rule that has to be walked row by row (its
    body does not run in lanes) gets an eighth of the samples and a quarter of the moves.

    Returns (counterexample or None, the best float points seen, their exit scores, a note on why nothing was
    found: the best key reached) — the points seed the LP path and t-slicing.
    """
    fm = FloatModel(P)
    rng = np.random.default_rng(seed)
    lo, hi = fm.lo, fm.hi
    width = hi - lo
    fm.evaluate(lo + width * rng.random((4, len(lo))))  # decides whether the rule runs in lanes
    if not fm.vectorised:
        n_samples, proposals = max(n_samples // 8, 64), max(proposals // 4, 4)
    X = initial_samples(lo, hi, n_samples, rng)
    level, value = fm.evaluate(X)
    pool = [(X, level, value)]

    def result(cex: RootExitCounterexample | None) -> tuple[RootExitCounterexample | None, np.ndarray, np.ndarray, str]:
        allX = np.vstack([p[0] for p in pool])
        lv, vv = np.concatenate([p[1] for p in pool]), np.concatenate([p[2] for p in pool])
        o = key_order(lv, vv)[:16]
        return cex, allX[o], np.where(lv[o] == ROOT, vv[o], -np.inf), _note(P, len(allX), lv[o[0]], vv[o[0]])

    order = key_order(level, value)
    for idx in order[:max_confirm]:
        if level[idx] != ROOT or value[idx] <= 0 or time.monotonic() > deadline:
            break
        cex = confirm(P, X[idx], "sampling")
        if cex is not None:
            return result(cex)
    d = len(lo)
    starts = order[:n_starts]
    cur, cur_level, cur_value = X[starts].copy(), level[starts].copy(), value[starts].copy()
    k = len(cur)
    rows = np.arange(k)
    sigma = np.tile(0.25 * width, (k, 1))
    tried = np.zeros(k, dtype=bool)  # the point's current position was already checked exactly
    checks = 0
    top = key_order(cur_level, cur_value)[0]
    best_level, best_value = int(cur_level[top]), float(cur_value[top])
    stale = 0
    while stale < patience and time.monotonic() < deadline:
        steps = sigma[:, None, :] * rng.standard_normal((k, proposals, d))
        cand = cur[:, None, :] + steps
        cand = np.where(rng.random(cand.shape) < 0.1, np.where(steps < 0, lo, hi), cand)
        cand = np.clip(cand, lo, hi)
        cl, cv = fm.evaluate(cand.reshape(-1, d))
        cl, cv = cl.reshape(k, proposals), cv.reshape(k, proposals)
        pick = np.array([key_order(cl[i], cv[i])[0] for i in rows])
        nl, nv = cl[rows, pick], cv[rows, pick]
        up = better(nl, nv, cur_level, cur_value)
        cur[up] = cand[rows, pick][up]
        cur_level[up], cur_value[up] = nl[up], nv[up]
        tried[up] = False
        sigma = np.minimum(sigma * np.where(up, 1.5, 0.6)[:, None], width)
        pool.append((cur.copy(), cur_level.copy(), cur_value.copy()))
        for i in np.flatnonzero((cur_level == ROOT) & (cur_value > 0) & ~tried):
            if checks >= max_confirm or time.monotonic() > deadline:
                break
            tried[i] = True
            checks += 1
            cex = confirm(P, cur[i], "local search")
            if cex is not None:
                return result(cex)
        top = key_order(cur_level, cur_value)[0]
        margin = 1e-6 * abs(best_value)  # smaller gains do not count as progress
        if cur_level[top] > best_level or (cur_level[top] == best_level and cur_value[top] > best_value + margin):
            best_level, best_value, stale = int(cur_level[top]), float(cur_value[top]), 0
        else:
            stale += 1
        spent = np.flatnonzero(np.all(sigma <= 1e-7 * width, axis=1))
        if len(spent):
            fresh = lo + width * rng.random((max(64, 8 * proposals), d))
            fl, fv = fm.evaluate(fresh)
            o = key_order(fl, fv)[: len(spent)]
            cur[spent], cur_level[spent], cur_value[spent] = fresh[o], fl[o], fv[o]
            sigma[spent] = 0.25 * width
            tried[spent] = False
    return result(None)


__all__ = ["FloatModel", "falsify", "confirm", "initial_samples", "better", "key_order", "INACTIVE", "NO_ROOT", "ROOT"]

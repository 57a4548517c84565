r"""In-region roots ("full-backward" DTD): does neuron j have a root inside the input's upper region?

For input x, layer l and an active neuron j of layer l, DTD needs a root :math:`\tilde a` with
:math:`R_j(\tilde a) = 0` on the piece of the relevance function that contains the input, i.e. inside the closed
upper activation region :math:`P` of :math:`a = a_{l-1}` (layers l..L, j's own constraint :math:`z_j \ge 0`
included) intersected with the domain :math:`a \ge 0`. On :math:`P`, :math:`R_j = c_j z_j` with
:math:`c_j = R_j(a) / z_j(a)` (locally constant), so

.. math::  m_j = \min_{\tilde a \in P,\ \tilde a \ge 0} z_j(\tilde a) \ \ (\ge 0), \qquad
           \text{unresolved}_j = c_j \max(0, m_j)

and a valid in-region root exists iff :math:`m_j = 0`. The LP is solved by HiGHS in floats and answered exactly:
the optimal vertex is recomputed in Fractions from the active constraints, checked feasible, and the exact dual
multipliers of those constraints are checked non-negative (KKT), which proves the vertex optimal. If that fails
(degeneracy), the answer falls back to certified bounds: an exactly replayed feasible point (upper bound) and a
rationalised dual bound (lower bound); the decision "root exists" is still exact when the lower bound is > 0 or
the upper bound is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.optimize import linprog

from ..dtd import lrp
from ..exact import to_float
from ..network import Network
from ..rules import Rule, ZPlus


def _solve_exact(M: list[list[Fraction]], v: list[Fraction]) -> list[Fraction] | None:
    """Solve the square system M y = v exactly (Gauss-Jordan in Fractions); None if singular."""
    n = len(M)
    A = [row[:] + [rhs] for row, rhs in zip(M, v)]
    for col in range(n):
        piv = next((r for r in range(col, n) if A[r][col] != 0), None)
        if piv is None:
            return None
        A[col], A[piv] = A[piv], A[col]
        p = A[col][col]
        A[col] = [x / p for x in A[col]]
        for r in range(n):
            if r != col and A[r][col] != 0:
                f = A[r][col]
                A[r] = [x - f * y for x, y in zip(A[r], A[col])]
    return [A[r][n] for r in range(n)]


@dataclass
class ExactMinimum:
    """Exact answer of min c.x + c0 s.t. G x <= h: ``value`` when certified, else ``lower <= min <= upper``."""

    value: Fraction | None
    lower: Fraction | None
    upper: Fraction | None
    point: list[Fraction] | None
    method: str


def exact_lp_min(c: list[Fraction], c0: Fraction, G: list[list[Fraction]], h: list[Fraction]) -> ExactMinimum:
    """Minimise an exact linear objective over an exact bounded-below polyhedron {x : G x <= h}."""
    n = len(c)
    Gf = np.array([[float(v) for v in row] for row in G])
    hf = np.array([float(v) for v in h])
    cf = np.array([float(v) for v in c])
    res = linprog(cf, A_ub=Gf, b_ub=hf, bounds=[(None, None)] * n, method="highs")
    if res.status != 0:
        return ExactMinimum(None, None, None, None, f"HiGHS status {res.status}: {res.message}")
    x = res.x
    duals = -np.asarray(res.ineqlin.marginals)
    slack = hf - Gf @ x
    scale = np.abs(Gf) @ np.abs(x) + np.abs(hf) + 1.0
    active = [i for i in np.argsort(-duals) if abs(slack[i]) <= 1e-9 * scale[i]]
    # choose n linearly independent active rows, preferring large duals
    chosen: list[int] = []
    for i in active:
        trial = chosen + [i]
        if np.linalg.matrix_rank(Gf[trial]) == len(trial):
            chosen = trial
        if len(chosen) == n:
            break
    if len(chosen) == n:
        vertex = _solve_exact([G[i] for i in chosen], [h[i] for i in chosen])
        if vertex is not None and all(sum(g * v for g, v in zip(G[i], vertex)) <= h[i] for i in range(len(G))):
            # KKT: c + sum_B y_i G_i = 0 with y >= 0  <=>  G_B^T y = -c
            Gt = [[G[i][k] for i in chosen] for k in range(n)]
            y = _solve_exact(Gt, [-ck for ck in c])
            value = sum(ck * vk for ck, vk in zip(c, vertex)) + c0
            if y is not None and all(yi >= 0 for yi in y):
                return ExactMinimum(value, value, value, vertex, "optimal vertex and dual checked exactly")
    # fallback: certified bounds
    point = [Fraction(float(v)) for v in x]
    upper = None
    if all(sum(g * v for g, v in zip(G[i], point)) <= h[i] for i in range(len(G))):
        upper = sum(ck * vk for ck, vk in zip(c, point)) + c0
    lower = None
    y = [Fraction(float(max(v, 0.0))) for v in duals]
    resid = [c[k] + sum(y[i] * G[i][k] for i in range(len(G))) for k in range(n)]
    if all(r == 0 for r in resid):
        lower = c0 - sum(yi * hi for yi, hi in zip(y, h))
    return ExactMinimum(None, lower, upper, point if upper is not None else None, "certified bounds only")


@dataclass
class InRegionRoot:
    """One (input, neuron) answer."""

    input_index: int
    layer: int
    neuron: int
    relevance: Fraction
    min_preactivation: ExactMinimum

    @property
    def has_root(self) -> bool | None:
        m = self.min_preactivation
        if m.value is not None:
            return m.value == 0
        if m.upper is not None and m.upper == 0:
            return True
        if m.lower is not None and m.lower > 0:
            return False
        return None

    @property
    def unresolved(self) -> Fraction | None:
        """c_j * max(0, m_j) with c_j = R_j / z_j(a): relevance no in-region root can explain."""
        m = self.min_preactivation.value
        return None if m is None else self.relevance * max(Fraction(0), m) / self.z_input

    z_input: Fraction = Fraction(1)


def in_region_roots(net: Network, xs: Any, layer: int = 1, rule: Rule | None = None, output: int = 0) -> list[InRegionRoot]:
    """For each input and each active neuron of ``layer``: the exact minimum of z_j over the closed upper region
    of the layer input (j's own constraint kept) intersected with a >= 0; the relevance R_j comes from ``rule``
    (default z+)."""
    rule = rule or ZPlus()
    upper = net.upper(layer)
    out: list[InRegionRoot] = []
    for i, x in enumerate(net.as_batch(xs)):
        a = net.activations(x)[layer - 1]
        pattern = upper.pattern(a)
        A, b = upper.region(pattern)
        n = len(a)
        G = [list(row) for row in A] + [[Fraction(-1) if k == r else Fraction(0) for k in range(n)] for r in range(n)]
        h = list(b) + [Fraction(0)] * n
        R = lrp(net, x, rule, output=output).per_layer[layer]
        z = net.weight(layer).dot(a) + net.bias(layer)
        for j in range(len(z)):
            if not z[j] > 0 or R[j] == 0:
                continue
            m = exact_lp_min(list(net.weight(layer)[j]), net.bias(layer)[j], G, h)
            out.append(InRegionRoot(i, layer, j, R[j], m, z[j]))
    return out


def summarise(results: list[InRegionRoot]) -> dict[str, Any]:
    """Counts and the exact total unresolved relevance."""
    decided = [r for r in results if r.has_root is not None]
    exact = [r for r in results if r.unresolved is not None]
    total = sum((r.unresolved for r in exact), Fraction(0))
    rel = sum((r.relevance for r in exact), Fraction(0))
    return {
        "neurons": len(results),
        "decided": len(decided),
        "with_in_region_root": sum(bool(r.has_root) for r in decided),
        "without_in_region_root": sum(r.has_root is False for r in decided),
        "exact_minimum": len(exact),
        "unresolved_relevance": total,
        "relevance_of_these_neurons": rel,
        "unresolved_share": (total / rel) if rel else None,
        "float_unresolved_share": float(total / rel) if rel else None,
    }


__all__ = ["exact_lp_min", "ExactMinimum", "in_region_roots", "InRegionRoot", "summarise", "to_float"]

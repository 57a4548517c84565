r"""Region-fixed linear programs: solved in floats by HiGHS (SciPy), answered only with an exact certificate.

For a fixed activation pattern s the network is affine on its closed region, so questions about the region are
linear programs over :math:`v = (x, z_1, \dots, z_L)` with equality rows
:math:`\mathrm{den}_k z_k - N_k (m_{k-1} \odot z_{k-1}) = \beta_k` (the integer form of :math:`z_k = W_k a_{k-1}
+ b_k`, masks :math:`m = [s > 0]`), sign bounds from s, and exact interval bounds on every variable.

- **Feasible:** the float solution only suggests an input x. It is converted exactly (``Fraction(float)``) and
  replayed by an exact forward pass; when it sits on a facet and rounding pushes it out, it is pulled toward an
  interior point (the maximum-margin solution) along :math:`x^* + \lambda (x_c - x^*)`.
- **Infeasible:** the duals of the elastic LP :math:`\min \sum s` give multipliers y (:math:`y \ge 0` on
  inequalities, free on equalities); rationalised, they certify infeasibility when, exactly,
  :math:`\min_{\underline v \le v \le \overline v} (y^\top G) v > y^\top h` (:math:`\ge` if a strict row has
  :math:`y > 0`) — a Farkas certificate whose rounding errors the variable bounds absorb.
- If neither check passes, the answer is "unknown" (callers fall back to Z3).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from ..exact import to_fast
from ..network import Network
from .bounds import interval_bounds


@dataclass
class LinearProgram:
    """Exact integer rows (row i means G[i] v (<=, <, =) h[i]; scale[i] = the row's common denominator) and
    exact finite variable bounds; float copies for HiGHS are derived."""

    n: int
    eq_rows: list[dict[int, int]] = field(default_factory=list)
    eq_rhs: list[int] = field(default_factory=list)
    eq_scale: list[int] = field(default_factory=list)
    ub_rows: list[dict[int, int]] = field(default_factory=list)
    ub_rhs: list[int] = field(default_factory=list)
    ub_scale: list[int] = field(default_factory=list)
    ub_strict: list[bool] = field(default_factory=list)
    lo: list[Fraction | None] = field(default_factory=list)
    hi: list[Fraction | None] = field(default_factory=list)

    def add_row(self, coeffs: dict[int, Fraction], rhs: Fraction, kind: str = "<=") -> None:
        """Add sum_k coeffs[k] v_k (<=, <, ==) rhs with exact rational data (stored as integers)."""
        den = 1
        for c in list(coeffs.values()) + [rhs]:
            den = math.lcm(den, Fraction(c).denominator)
        row = {k: int(Fraction(c) * den) for k, c in coeffs.items() if c != 0}
        r = int(Fraction(rhs) * den)
        if kind == "==":
            self.eq_rows.append(row), self.eq_rhs.append(r), self.eq_scale.append(den)
        else:
            self.ub_rows.append(row), self.ub_rhs.append(r), self.ub_scale.append(den)
            self.ub_strict.append(kind == "<")

    def add_int_row(self, row: dict[int, int], rhs: int, scale: int, kind: str = "<=") -> None:
        """Add an integer row (already scaled by ``scale``)."""
        if kind == "==":
            self.eq_rows.append(row), self.eq_rhs.append(rhs), self.eq_scale.append(scale)
        else:
            self.ub_rows.append(row), self.ub_rhs.append(rhs), self.ub_scale.append(scale)
            self.ub_strict.append(kind == "<")

    def float_matrix(self, rows: list[dict[int, int]], scale: list[int], extra_cols: int = 0) -> csr_matrix:
        data, ri, ci = [], [], []
        for i, (row, d) in enumerate(zip(rows, scale)):
            for k, c in row.items():
                data.append(c / d)
                ri.append(i)
                ci.append(k)
        return csr_matrix((data, (ri, ci)), shape=(len(rows), self.n + extra_cols))

    def float_bounds(self) -> list[tuple[float | None, float | None]]:
        return [(None if l is None else float(l), None if h is None else float(h)) for l, h in zip(self.lo, self.hi)]


@dataclass
class LPResult:
    status: str  # "feasible" | "infeasible" | "unknown"
    witness: Any = None
    certificate: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    reason: str = ""


def _int_multipliers(y: np.ndarray, scale: list[int]) -> list[Fraction]:
    """Float duals as exact rationals (Fraction(float) is exact); they weight the rows as added."""
    return [Fraction(float(v)) for v in y]


def check_farkas(lp: LinearProgram, y_ub: list[Fraction], y_eq: list[Fraction]) -> bool:
    r"""Exact check of the infeasibility certificate (module docstring): multipliers of the rows as added
    (y_ub >= 0 required), applied to the stored integer rows as y / scale."""
    if any(v < 0 for v in y_ub):
        return False
    y_ub = [Fraction(v) / d for v, d in zip(y_ub, lp.ub_scale)]
    y_eq = [Fraction(v) / d for v, d in zip(y_eq, lp.eq_scale)]
    dens = [v.denominator for v in y_ub + y_eq if v != 0]
    D = 1
    for d in dens:
        D = math.lcm(D, d)
    c = [0] * lp.n
    rhs = 0
    strict = False
    for rows, rhs_list, ys, stricts in ((lp.ub_rows, lp.ub_rhs, y_ub, lp.ub_strict),
                                        (lp.eq_rows, lp.eq_rhs, y_eq, [False] * len(lp.eq_rows))):
        for row, r, y, st in zip(rows, rhs_list, ys, stricts):
            if y == 0:
                continue
            Y = y.numerator * (D // y.denominator)
            for k, g in row.items():
                c[k] += Y * g
            rhs += Y * r
            strict = strict or st
    # min over the box of c . v (exact); scaled by D
    total = Fraction(0)
    for k, ck in enumerate(c):
        if ck == 0:
            continue
        bound = lp.lo[k] if ck > 0 else lp.hi[k]
        if bound is None:
            return False
        total += ck * bound
    return total > rhs or (strict and total >= rhs)


def _farkas_from_elastic(lp: LinearProgram, time_limit: float) -> tuple[list[Fraction], list[Fraction]] | None:
    """Multipliers from the duals of min sum(s) s.t. G_ub v - s <= h_ub, G_eq v + s+ - s- = h_eq."""
    m_ub, m_eq = len(lp.ub_rows), len(lp.eq_rows)
    n_s = m_ub + 2 * m_eq
    from scipy.sparse import hstack, identity

    A_ub = lp.float_matrix(lp.ub_rows, lp.ub_scale)
    A_eq = lp.float_matrix(lp.eq_rows, lp.eq_scale)
    c = np.concatenate([np.zeros(lp.n), np.ones(n_s)])
    blocks_ub = [A_ub, -identity(m_ub, format="csr"), csr_matrix((m_ub, 2 * m_eq))] if m_ub else None
    blocks_eq = [A_eq, csr_matrix((m_eq, m_ub)), identity(m_eq, format="csr"), -identity(m_eq, format="csr")] if m_eq else None
    b_ub = np.array([r / d for r, d in zip(lp.ub_rhs, lp.ub_scale)]) if m_ub else None
    b_eq = np.array([r / d for r, d in zip(lp.eq_rhs, lp.eq_scale)]) if m_eq else None
    bounds = lp.float_bounds() + [(0, None)] * n_s
    res = linprog(c, A_ub=hstack(blocks_ub).tocsr() if m_ub else None, b_ub=b_ub,
                  A_eq=hstack(blocks_eq).tocsr() if m_eq else None, b_eq=b_eq, bounds=bounds, method="highs",
                  options={"time_limit": max(0.01, time_limit)})
    if res.status != 0 or res.fun <= 0:
        return None
    y_ub = -np.asarray(res.ineqlin.marginals) if m_ub else np.zeros(0)
    y_eq = -np.asarray(res.eqlin.marginals) if m_eq else np.zeros(0)
    y_ub = np.maximum(y_ub, 0.0)
    return _int_multipliers(y_ub, lp.ub_scale), _int_multipliers(y_eq, lp.eq_scale)


def farkas_certificate(lp: LinearProgram, time_limit: float) -> dict[str, Any] | None:
    """An exactly checked infeasibility certificate of ``lp`` (:func:`check_farkas`, multipliers from the duals of
    the elastic LP), or None: a positive elastic optimum alone proves nothing, the exact check does. One HiGHS
    solve, so callers that expect infeasibility can skip the plain LP of :func:`solve_certified`."""
    mult = _farkas_from_elastic(lp, time_limit)
    if mult is None:
        return None
    y_ub, y_eq = mult
    for sgn in (1, -1):
        ye = [sgn * v for v in y_eq]
        if check_farkas(lp, y_ub, ye):
            return {"method": "Farkas certificate checked exactly", "y_ub": y_ub, "y_eq": ye}
    return None


def solve_certified(lp: LinearProgram, replay: Callable[[np.ndarray], Any], objective: np.ndarray | None = None,
                    interior: Callable[[], np.ndarray | None] | None = None, time_limit: float = 10.0) -> LPResult:
    """Solve in floats, then certify: a witness that ``replay`` accepts (exactly), or a checked Farkas certificate.

    ``replay(v_float)`` returns an exact witness or None; ``interior()`` may return a float point deep inside
    the feasible set (the pull-toward-interior fallback).
    """
    t0 = time.perf_counter()
    A_ub = lp.float_matrix(lp.ub_rows, lp.ub_scale) if lp.ub_rows else None
    A_eq = lp.float_matrix(lp.eq_rows, lp.eq_scale) if lp.eq_rows else None
    b_ub = np.array([r / d for r, d in zip(lp.ub_rhs, lp.ub_scale)]) if lp.ub_rows else None
    b_eq = np.array([r / d for r, d in zip(lp.eq_rhs, lp.eq_scale)]) if lp.eq_rows else None
    c = np.zeros(lp.n) if objective is None else objective
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=lp.float_bounds(), method="highs",
                  options={"time_limit": max(0.01, time_limit)})
    if res.status == 0:
        w = replay(res.x)
        if w is not None:
            return LPResult("feasible", w, {"method": "float LP witness replayed exactly"}, time.perf_counter() - t0)
        xc = interior() if interior is not None else None
        if xc is not None:
            for lam in (1e-9, 1e-6, 1e-3, 0.1, 0.5, 1.0):
                w = replay(res.x + lam * (xc - res.x))
                if w is not None:
                    return LPResult("feasible", w, {"method": f"witness pulled toward the interior (lambda={lam})"},
                                    time.perf_counter() - t0)
        return LPResult("unknown", seconds=time.perf_counter() - t0, reason="float LP feasible but no exact witness")
    if res.status == 2:
        cert = farkas_certificate(lp, time_limit)
        if cert is not None:
            return LPResult("infeasible", None, cert, time.perf_counter() - t0)
        return LPResult("unknown", seconds=time.perf_counter() - t0, reason="float LP infeasible, certificate failed")
    return LPResult("unknown", seconds=time.perf_counter() - t0, reason=f"HiGHS status {res.status}: {res.message}")


# ---------------------------------------------------------------------------------------------------- regions
def region_program(net: Network, pattern: list[np.ndarray], low: Any, high: Any,
                   extra: list[tuple[dict[int, Fraction], Fraction, str]] | None = None) -> tuple[LinearProgram, list[int]]:
    """The closed region of ``pattern`` within the box as a :class:`LinearProgram` over (x, z_1..z_L).

    Returns (program, offsets) with offsets[k] the index of z_k's first variable (offsets[0] = 0 for x).
    ``extra`` rows refer to these indices. Bounds: the box for x; exact interval bounds of z_k over the box,
    intersected with the signs of the pattern.
    """
    from .problem import parse_box

    low, high = parse_box((low, high), net.input_size, "box")
    sizes = net.layer_sizes
    offsets = list(np.cumsum([0] + sizes[:-1]))
    n = int(sum(sizes))
    lp = LinearProgram(n)
    B = interval_bounds(net, low, high)
    lo: list[Fraction | None] = [Fraction(v) for v in low]
    hi: list[Fraction | None] = [Fraction(v) for v in high]
    pat = dict(zip(net.relu_layers, pattern))
    for k in range(1, net.n_layers + 1):
        zl, zh = B.z[k - 1]
        s = pat.get(k)
        for i in range(sizes[k]):
            l_, h_ = Fraction(int(zl[i].numerator), int(zl[i].denominator)), Fraction(int(zh[i].numerator), int(zh[i].denominator))
            if s is not None:
                if s[i] > 0:
                    l_ = max(l_, Fraction(0))
                elif s[i] < 0:
                    h_ = min(h_, Fraction(0))
                else:
                    l_, h_ = max(l_, Fraction(0)), min(h_, Fraction(0))
            lo.append(l_)
            hi.append(h_)
    lp.lo, lp.hi = lo, hi
    for k, il in enumerate(net.integer_layers, start=1):
        prev = offsets[k - 1]
        mask = (np.asarray(pat[k - 1]) > 0) if k > 1 else np.ones(sizes[0], dtype=bool)
        cols = np.flatnonzero(mask)
        Wn = il.weight_num
        for i in range(sizes[k]):
            row = {int(prev + c): -int(Wn[i, c]) for c in cols if Wn[i, c] != 0}
            row[int(offsets[k] + i)] = il.den
            lp.add_int_row(row, int(il.bias_num[i]), il.den, "==")
    for coeffs, rhs, kind in extra or []:
        lp.add_row(coeffs, rhs, kind)
    return lp, [int(o) for o in offsets]


def _forward_exact(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """Exact pre-activations z_1..z_L of x (gmpy2 rationals; the walk's forward pass)."""
    from ..rules.ops import FAST_EXACT
    from ..walk import forward

    return forward(FAST_EXACT, net.fast_layers, net.relu_flags, x)[1]


def region_witness_replay(net: Network, pattern: list[np.ndarray], low: Any, high: Any,
                          extra: list[tuple[dict[int, Fraction], Fraction, str]] | None = None
                          ) -> Callable[[np.ndarray], np.ndarray | None]:
    """Exact replay of a float LP point for :func:`region_program`: x is rationalised, clipped to nothing (it must
    lie in the box), pushed forward exactly, and every sign and extra row is checked exactly."""
    pat = dict(zip(net.relu_layers, pattern))
    lowq, highq = to_fast(np.asarray(low, dtype=object)), to_fast(np.asarray(high, dtype=object))

    def replay(v: np.ndarray) -> np.ndarray | None:
        n0 = net.input_size
        x = np.array([Fraction(float(u)) for u in v[:n0]], dtype=object)
        xf = to_fast(x)
        if np.any(xf < lowq) or np.any(xf > highq):
            return None
        zs = _forward_exact(net, xf)
        for k, s in pat.items():
            z = zs[k - 1]
            s = np.asarray(s)
            if np.any((s > 0) & (z < 0)) or np.any((s < 0) & (z > 0)) or np.any((s == 0) & (z != 0)):
                return None
        if extra:
            full = np.concatenate([xf] + zs)
            for coeffs, rhs, kind in extra:
                val = sum(Fraction(c) * Fraction(int(full[k].numerator), int(full[k].denominator)) for k, c in coeffs.items())
                if not (val <= rhs if kind == "<=" else val < rhs if kind == "<" else val == rhs):
                    return None
        return x

    return replay


def certified_region_lp(net: Network, pattern: list[np.ndarray], low: Any, high: Any,
                        extra: list[tuple[dict[int, Fraction], Fraction, str]] | None = None,
                        time_limit: float = 10.0, z3_fallback: bool = True) -> LPResult:
    """Exact-certified region LP (:func:`_region_lp`); if no certificate checks, Z3 decides it exactly instead."""
    res = _region_lp(net, pattern, low, high, extra, time_limit)
    if res.status == "unknown" and z3_fallback:
        fb = z3_region(net, pattern, low, high, extra, time_limit)
        if fb.status != "unknown":
            fb.certificate["fallback_from"] = res.reason
            return fb
    return res


def _region_lp(net: Network, pattern: list[np.ndarray], low: Any, high: Any,
               extra: list[tuple[dict[int, Fraction], Fraction, str]] | None = None,
               time_limit: float = 10.0) -> LPResult:
    r"""Is the closed region of ``pattern`` within the box (and the ``extra`` rows) non-empty? Exact-certified.

    HiGHS sees the region in x only: with the pattern fixed, :math:`z_k = A_k x + c_k` (float products of the
    layer maps), rows :math:`-s_{k,i} (A_k x + c_k)_i \le 0` and the ``extra`` rows (indices as in
    :func:`region_program`: x first, then z_1, ..., z_L). One elastic solve :math:`\min \sum_r e_r` answers both ways:

    - optimum 0: its x is replayed exactly (:func:`region_witness_replay`), else pulled toward the
      maximum-margin point;
    - optimum > 0: its duals :math:`\mu \ge 0` weight the rows; the exact multipliers of the layer equations
      follow by the backward pass :math:`\lambda_L = \zeta_L`,
      :math:`\lambda_k = \zeta_k + M_k W_{k+1}^\top \lambda_{k+1}` (:math:`\zeta_k` = the weights the rows put on
      :math:`z_k`), so every z cancels exactly and the certificate reduces to
      :math:`\min_{x \in \text{box}} (c_x \cdot x) + \sum_k \lambda_k \cdot b_k > \text{rhs}`, checked in rationals.
    """
    t0 = time.perf_counter()
    from .problem import parse_box

    low, high = parse_box((low, high), net.input_size, "box")
    fnet = net.to_float()
    sizes = net.layer_sizes
    offsets = [int(o) for o in np.cumsum([0] + sizes[:-1])]
    n0, L = sizes[0], net.n_layers
    pat = dict(zip(net.relu_layers, pattern))
    # float affine maps of every layer under the fixed pattern
    A = np.eye(n0)
    c = np.zeros(n0)
    maps = []
    for k in range(1, L + 1):
        W, b = fnet.weights[k - 1], fnet.biases[k - 1]
        A, c = W @ A, W @ c + b
        maps.append((A, c))
        if k in pat:
            m = np.asarray(pat[k]) > 0
            A, c = A * m[:, None], c * m
    rows, rhs, tags = [], [], []  # tags: ("sign", k, i, coef) or ("extra", e)
    for k, s in pat.items():
        Ak, ck = maps[k - 1]
        for i, si in enumerate(np.asarray(s)):
            for coef in ((-float(si),) if si != 0 else (1.0, -1.0)):
                rows.append(coef * Ak[i])
                rhs.append(-coef * ck[i])
                tags.append(("sign", k, i, coef))
    for e, (coeffs, h, kind) in enumerate(extra or []):
        row, const = np.zeros(n0), 0.0
        for var, g in coeffs.items():
            if var < n0:
                row[var] += float(g)
            else:
                k = max(kk for kk in range(1, L + 1) if offsets[kk] <= var)
                row += float(g) * maps[k - 1][0][var - offsets[k]]
                const += float(g) * maps[k - 1][1][var - offsets[k]]
        for sgn in ((1.0,) if kind != "==" else (1.0, -1.0)):
            rows.append(sgn * row)
            rhs.append(sgn * (float(h) - const))
            tags.append(("extra", e, sgn))
    G = np.array(rows) if rows else np.zeros((0, n0))
    h = np.array(rhs)
    m = len(G)
    replay = region_witness_replay(net, pattern, low, high, extra)
    box = [(float(l), float(u)) for l, u in zip(low, high)]
    # elastic LP: min sum e  s.t.  G x - e <= h, e >= 0
    res = linprog(np.concatenate([np.zeros(n0), np.ones(m)]), A_ub=np.hstack([G, -np.eye(m)]), b_ub=h,
                  bounds=box + [(0, None)] * m, method="highs", options={"time_limit": max(0.01, time_limit)})
    if res.status != 0:
        return LPResult("unknown", seconds=time.perf_counter() - t0, reason=f"HiGHS status {res.status}: {res.message}")
    if res.fun <= 1e-9:
        x = res.x[:n0]
        w = replay(np.concatenate([x, np.zeros(1)]))
        if w is not None:
            return LPResult("feasible", w, {"method": "float LP witness replayed exactly"}, time.perf_counter() - t0)
        # pull toward the maximum-margin point: max d s.t. G x + d <= h
        res2 = linprog(np.concatenate([np.zeros(n0), [-1.0]]), A_ub=np.hstack([G, np.ones((m, 1))]), b_ub=h,
                       bounds=box + [(0, 1)], method="highs", options={"time_limit": max(0.01, time_limit)})
        if res2.status == 0 and res2.x[n0] > 0:
            xc = res2.x[:n0]
            for lam in (1e-9, 1e-6, 1e-3, 0.1, 0.5, 1.0):
                w = replay(np.concatenate([x + lam * (xc - x), np.zeros(1)]))
                if w is not None:
                    return LPResult("feasible", w, {"method": f"witness pulled toward the interior (lambda={lam})"},
                                    time.perf_counter() - t0)
        return LPResult("unknown", seconds=time.perf_counter() - t0, reason="float LP feasible but no exact witness")
    mu = np.maximum(-np.asarray(res.ineqlin.marginals), 0.0)
    ok, cert = _check_region_farkas(net, pat, low, high, extra or [], tags, mu, offsets)
    if ok:
        return LPResult("infeasible", None, cert, time.perf_counter() - t0)
    return LPResult("unknown", seconds=time.perf_counter() - t0, reason="float LP infeasible, certificate failed")


def z3_region(net: Network, pattern: list[np.ndarray], low: Any, high: Any,
              extra: list[tuple[dict[int, Fraction], Fraction, str]] | None = None, timeout: float = 10.0) -> LPResult:
    """The exact fallback: the same question to Z3's rational simplex over the exact layer maps
    (:meth:`Network.local_affine`); practical for small networks (docs/theory.md section 4)."""
    import z3

    from .encode import q
    from .problem import parse_box

    t0 = time.perf_counter()
    low, high = parse_box((low, high), net.input_size, "box")
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout * 1000)))
    xs = [z3.Real(f"x{i}") for i in range(net.input_size)]
    for x, l_, h_ in zip(xs, low, high):
        s.add(x >= q(l_), x <= q(h_))
    maps = net.local_affine(pattern)
    terms: list[Any] = list(xs)
    for k, (A, c) in enumerate(maps, start=1):
        terms += [z3.Sum([q(a) * x for a, x in zip(row, xs) if a != 0] + [q(ci)]) for row, ci in zip(A, c)]
    for k, sk in zip(net.relu_layers, pattern):
        off = sum(net.layer_sizes[:k])
        for i, si in enumerate(np.asarray(sk)):
            zt = terms[off + i]
            s.add(zt >= 0 if si > 0 else zt <= 0 if si < 0 else zt == 0)
    for coeffs, rhs, kind in extra or []:
        lhs = z3.Sum([q(cf) * terms[v] for v, cf in coeffs.items()]) if coeffs else z3.RealVal(0)
        s.add(lhs <= q(rhs) if kind == "<=" else lhs < q(rhs) if kind == "<" else lhs == q(rhs))
    r = s.check()
    if r == z3.sat:
        from .encode import model_value

        m = s.model()
        return LPResult("feasible", np.array([model_value(m, x) for x in xs], dtype=object), {"method": "z3 (exact)"},
                        time.perf_counter() - t0)
    if r == z3.unsat:
        return LPResult("infeasible", None, {"method": "z3 unsat (exact)"}, time.perf_counter() - t0)
    return LPResult("unknown", seconds=time.perf_counter() - t0, reason="z3 timeout")


def _check_region_farkas(net: Network, pat: dict[int, np.ndarray], low: np.ndarray, high: np.ndarray,
                         extra: list[tuple[dict[int, Fraction], Fraction, str]], tags: list[tuple], mu: np.ndarray,
                         offsets: list[int]) -> tuple[bool, dict[str, Any]]:
    """Exact check of the region Farkas certificate (see :func:`certified_region_lp`); integers throughout."""
    sizes = net.layer_sizes
    L, n0 = net.n_layers, sizes[0]
    mus = [Fraction(float(v)) for v in mu]
    D = 1
    for v in mus:
        D = max(D, v.denominator)  # dyadic: the largest denominator is the lcm
    M = [v.numerator * (D // v.denominator) for v in mus]  # mu * D as integers
    # zeta_k (weights on z_k) and x weights, all over the common denominator Dq = D * den_extra
    den_extra = 1
    for coeffs, hh, _ in extra:
        for g in list(coeffs.values()) + [hh]:
            den_extra = math.lcm(den_extra, Fraction(g).denominator)
    zeta = {k: np.array([0] * sizes[k], dtype=object) for k in range(1, L + 1)}
    cx = np.array([0] * n0, dtype=object)
    rhs = 0
    strict = False
    for mval, tag in zip(M, tags):
        if mval == 0:
            continue
        if tag[0] == "sign":
            _, k, i, coef = tag
            zeta[k][i] += int(coef) * mval * den_extra
        else:
            _, e, sgn = tag
            coeffs, hh, kind = extra[e]
            strict = strict or kind == "<"
            for var, g in coeffs.items():
                gi = int(Fraction(g) * den_extra) * int(sgn) * mval
                if var < n0:
                    cx[var] += gi
                else:
                    k = max(kk for kk in range(1, L + 1) if offsets[kk] <= var)
                    zeta[k][var - offsets[k]] += gi
            rhs += int(Fraction(hh) * den_extra) * int(sgn) * mval
    # backward pass with integer layers: lambda_k = zeta_k + M_k W_{k+1}^T lambda_{k+1}; track a common scale
    il = net.integer_layers
    lam = zeta[L]
    scale = 1  # true lambda_k = lam / scale (relative to the zeta scale)
    bias_total = Fraction(0)
    for k in range(L, 0, -1):
        bias_total += Fraction(int(il[k - 1].bias_num.dot(lam)), il[k - 1].den * scale)
        back = il[k - 1].weight_num.T.dot(lam)  # = den_k * W_k^T lam
        scale *= il[k - 1].den
        if k > 1:
            mask = np.asarray(pat[k - 1]) > 0
            lam = np.where(mask, back, 0).astype(object) + zeta[k - 1] * scale
        else:
            cx_total = [Fraction(int(b_)) / scale + Fraction(int(cxv)) for b_, cxv in zip(back, cx)]
    # min over the box of cx . x + bias_total versus rhs (everything on the zeta scale D * den_extra)
    lo_val = bias_total + sum((cv * (l if cv > 0 else u) for cv, l, u in zip(cx_total, low, high)), Fraction(0))
    ok = lo_val > rhs or (strict and lo_val >= rhs)
    return ok, {"method": "Farkas certificate (row weights from HiGHS duals, layer multipliers by an exact "
                          "backward pass) checked exactly", "row_weights": mus, "margin": lo_val - rhs}


# ---------------------------------------------------------------------------------------------------- root exits
def lp_slice_search(P: Any, points: np.ndarray, deadline: float) -> Any:
    r"""The LP path for root exits: at a float point x0, fix the patterns at x0 and at its root, fix
    :math:`t = \tau` (t(x0) rationalised), pick the neuron m closest to flipping, and maximise a margin
    :math:`\delta` with :math:`\sigma z_m \ge \delta`, :math:`-\sigma \tilde z_m \ge \delta`, :math:`z_j \ge \delta`.
    A positive-margin solution is rationalised, clamped exactly into the box and checked by
    :meth:`RootExitCounterexample.build` (exact); each LP gets at most the time left before ``deadline``."""
    from .counterexample import RootExitCounterexample
    from .falsify import FloatModel

    net, l, j = P.net, P.layer, P.neuron
    fm = FloatModel(P)
    D, e = P.direction
    for x0 in points:
        if time.monotonic() > deadline:
            return None
        # float forward at x0 and at its root
        zs, a = [], x0
        for k in range(1, net.n_layers + 1):
            z = fm.W[k - 1] @ a + fm.b[k - 1]
            zs.append(z)
            a = np.maximum(z, 0.0) if net.has_relu(k) else z
        a_l = x0 if l == 1 else np.maximum(zs[l - 2], 0.0)
        v = a_l * fm.D + fm.e
        den = fm.W[l - 1][j] @ v
        if den == 0 or (net.has_relu(l) and zs[l - 1][j] <= 0):
            continue
        tau = Fraction(float(zs[l - 1][j] / den)).limit_denominator(1 << 20)
        r = a_l - float(tau) * v
        zrs, h = [], r
        for k in range(l, net.n_layers + 1):
            z = fm.W[k - 1] @ h + fm.b[k - 1]
            zrs.append(z)
            if net.has_relu(k):
                h = np.maximum(z, 0.0)
                if k == l:
                    h[j] = z[j]
            else:
                h = z
        # the target: the neuron of the scope with the best min(sigma z, -sigma zr)
        best, target = -np.inf, None
        for k in range(l, net.n_layers + 1):
            if not net.has_relu(k) or (P.proof_scope == "layer" and k != l):
                continue
            for m in range(len(zs[k - 1])):
                if k == l and m == j:
                    continue
                zm, zrm = zs[k - 1][m], zrs[k - l][m]
                sg = 1.0 if zm >= 0 else -1.0
                sc = min(sg * zm, -sg * zrm)
                if sc > best:
                    best, target = sc, (k, m, sg)
        if target is None:
            continue
        x = _lp_slice_point(P, zs, zrs, tau, target, D, e, max(0.01, min(2.0, deadline - time.monotonic())))
        if x is None:
            continue
        x = np.minimum(np.maximum(x, P.low), P.high)  # exact clamp: HiGHS saw float(low), float(high)
        cex = RootExitCounterexample.build(P.question(), net, P.rule, x, f"LP slice t={tau}")
        if cex is not None:
            return cex
    return None


def _lp_slice_point(P: Any, zs: list[np.ndarray], zrs: list[np.ndarray], tau: Fraction, target: tuple[int, int, float],
                    D: np.ndarray, e: np.ndarray, time_limit: float) -> np.ndarray | None:
    """Solve the fixed-pattern, fixed-t margin LP (see :func:`lp_slice_search`) in floats; the point is only a
    candidate (the caller replays it exactly)."""
    net, l, j = P.net, P.layer, P.neuron
    fnet = net.to_float()
    sizes = net.layer_sizes
    L = net.n_layers
    n0 = sizes[0]
    off_x = [n0] + [n0 + int(c) for c in np.cumsum(sizes[1:])]  # z_k starts at off_x[k-1]; off_x[L] = end
    off_r = {k: off_x[L] + sum(sizes[l:k]) for k in range(l, L + 1)}
    n = off_x[L] + sum(sizes[l:]) + 1
    dvar = n - 1
    rows_eq, b_eq, rows_ub, b_ub = [], [], [], []
    bounds = [(float(lo), float(hi)) for lo, hi in zip(P.low, P.high)] + [(None, None)] * (n - n0 - 1) + [(0, 1)]

    km, m, sg = target
    # intended signs at x and at the root: those of x0 and its root, with the target flipped at the root
    sx = {k: np.where(zs[k - 1] > 0, 1.0, -1.0) for k in range(1, L + 1)}
    sr = {k: np.where(zrs[k - l] > 0, 1.0, -1.0) for k in range(l, L + 1)}
    sx[km] = sx[km].copy()
    sr[km] = sr[km].copy()
    sx[km][m], sr[km][m] = sg, -sg
    if net.has_relu(l):
        sx[l][j] = 1.0

    def a_cols(k: int) -> list[tuple[int, float]]:
        """(variable, multiplier) of a_{k-1} entries at x: x itself for k = 1, else masked z_{k-1}."""
        if k == 1:
            return [(i, 1.0) for i in range(n0)]
        return [(off_x[k - 2] + i, 1.0 if sx[k - 1][i] > 0 else 0.0) for i in range(sizes[k - 1])]

    for k in range(1, L + 1):
        W, b = fnet.weights[k - 1], fnet.biases[k - 1]
        ac = a_cols(k)
        for i in range(sizes[k]):
            r = np.zeros(n)
            r[off_x[k - 1] + i] = 1.0
            for c, (var, mult) in enumerate(ac):
                if mult:
                    r[var] -= W[i, c]
            rows_eq.append(r), b_eq.append(b[i])
            if net.has_relu(k):  # keep the intended pattern at x (closed)
                s = sx[k][i]
                r2 = np.zeros(n)
                r2[off_x[k - 1] + i] = -s
                rows_ub.append(r2), b_ub.append(0.0)
    Df, ef, tf = np.array([float(v) for v in D]), np.array([float(v) for v in e]), float(tau)
    W, b = fnet.weights[l - 1], fnet.biases[l - 1]
    ac = a_cols(l)
    # tau * den(a) - z_j = 0
    r = np.zeros(n)
    for c, (var, mult) in enumerate(ac):
        if mult:
            r[var] += tf * W[j, c] * Df[c]
    r[off_x[l - 1] + j] -= 1.0
    rows_eq.append(r), b_eq.append(-tf * float(W[j] @ ef))
    # root layer l: zr = W ((1 - tau D) a) - tau W e + b
    for i in range(sizes[l]):
        r = np.zeros(n)
        r[off_r[l] + i] = 1.0
        for c, (var, mult) in enumerate(ac):
            if mult:
                r[var] -= W[i, c] * (1 - tf * Df[c])
        rows_eq.append(r), b_eq.append(b[i] - tf * float(W[i] @ ef))
    for k in range(l + 1, L + 1):
        Wk, bk = fnet.weights[k - 1], fnet.biases[k - 1]
        keep = sr[k - 1] > 0
        if k - 1 == l:
            keep = keep.copy()
            keep[j] = True
        for i in range(sizes[k]):
            r = np.zeros(n)
            r[off_r[k] + i] = 1.0
            for c in np.flatnonzero(keep):
                r[off_r[k - 1] + c] -= Wk[i, c]
            rows_eq.append(r), b_eq.append(bk[i])
    for k in range(l, L + 1):
        if not net.has_relu(k):
            continue
        for i in range(sizes[k]):
            if k == l and i == j:
                continue
            s = sr[k][i]
            r2 = np.zeros(n)
            r2[off_r[k] + i] = -s
            rows_ub.append(r2), b_ub.append(0.0)
    for var, coef in ((off_x[km - 1] + m, -sg), (off_r[km] + m, sg)):
        r2 = np.zeros(n)
        r2[var] = coef
        r2[dvar] = 1.0
        rows_ub.append(r2), b_ub.append(0.0)
    if net.has_relu(l):
        r2 = np.zeros(n)
        r2[off_x[l - 1] + j] = -1.0
        r2[dvar] = 1.0
        rows_ub.append(r2), b_ub.append(0.0)
    c = np.zeros(n)
    c[dvar] = -1.0
    A_ub = np.array(rows_ub)
    res = linprog(c, A_ub=csr_matrix(A_ub), b_ub=np.array(b_ub), A_eq=csr_matrix(np.array(rows_eq)),
                  b_eq=np.array(b_eq), bounds=bounds, method="highs", options={"time_limit": time_limit})
    if res.status != 0 or res.x[dvar] <= 0:
        return None
    return np.array([Fraction(float(v)) for v in res.x[:n0]], dtype=object)


__all__ = ["LinearProgram", "LPResult", "solve_certified", "check_farkas", "farkas_certificate", "region_program",
           "certified_region_lp", "z3_region", "region_witness_replay", "lp_slice_search"]

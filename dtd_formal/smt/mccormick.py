r"""The LP relaxation of the root-exit question on one input box: McCormick envelopes for :math:`t\,a`, triangle
relaxations for unstable ReLUs, certified infeasibility per candidate flip.

Variables (all with exact bounds from :func:`dtd_formal.smt.relax.box_analysis`): the input x, :math:`z_k, a_k`
for the layers below l, :math:`z_l`, the step t, the products :math:`p_i = t a_i` (:math:`D_i \ne 0`), the root
pre-activations :math:`\tilde z_k` and, for the scope "upper", :math:`a_k, \tilde a_k` of the layers above.
Rows (exact rationals):

- layers: :math:`z_k = W_k a_{k-1} + b_k`; ReLU: a = z (stable active), a = 0 (stable inactive), else the
  triangle :math:`a \ge 0, a \ge z, a \le \bar z (z - \underline z)/(\bar z - \underline z)`;
- McCormick, for :math:`t \in [t_L, t_U]`, :math:`a_i \in [a_L, a_U]`: :math:`p \ge t_L a + a_L t - t_L a_L`,
  :math:`p \ge t_U a + a_U t - t_U a_U`, :math:`p \le t_U a + a_L t - t_U a_L`, :math:`p \le t_L a + a_U t - t_L a_U`;
- the step: :math:`\sum_i w_{ji} D_i p_i + (w_j \cdot e)\, t = z_j`, :math:`z_j > 0` (ReLU layer);
- the root: :math:`\tilde z_l = W_l (a - D \odot p - e\, t) + b_l`, above it :math:`\tilde a_j = \tilde z_j` and
  the triangle for the others;
- the flip (k, m, sigma): :math:`\sigma z_{k,m} > 0`, :math:`\sigma \tilde z_{k,m} < 0`.

Every exit point satisfies these rows, so an exactly checked Farkas certificate of their infeasibility
(:func:`dtd_formal.smt.lp.solve_certified`) rules the flip out on the box. Floats only propose the multipliers.
"""

from __future__ import annotations

import time
from dataclasses import replace
from fractions import Fraction
from typing import Any

import numpy as np

from .lp import LinearProgram, farkas_certificate, solve_certified
from .problem import RootExitProblem

_ZERO = Fraction(0)


def _fr(v: Any) -> Fraction:
    return v if isinstance(v, Fraction) else Fraction(int(v.numerator), int(v.denominator))


class _Builder:
    def __init__(self) -> None:
        self.lo: list[Fraction] = []
        self.hi: list[Fraction] = []
        self.rows: list[tuple[dict[int, Fraction], Fraction, str]] = []

    def var(self, lo: Any, hi: Any) -> int:
        self.lo.append(_fr(lo))
        self.hi.append(_fr(hi))
        return len(self.lo) - 1

    def row(self, coeffs: dict[int, Fraction], rhs: Any, kind: str = "<=") -> None:
        self.rows.append(({k: c for k, c in coeffs.items() if c != 0}, _fr(rhs), kind))

    def relu(self, z: int, zl: Fraction, zh: Fraction, linear: bool = False) -> int:
        """A post-activation variable for z (triangle relaxation; ``linear`` keeps a = z)."""
        if linear or zl >= 0:
            a = self.var(zl, zh)
            self.row({a: Fraction(1), z: Fraction(-1)}, 0, "==")
            return a
        if zh <= 0:
            return self.var(0, 0)
        a = self.var(0, zh)
        self.row({z: Fraction(1), a: Fraction(-1)}, 0)  # z - a <= 0
        slope = zh / (zh - zl)
        self.row({a: Fraction(1), z: -slope}, -slope * zl)  # a - slope z <= -slope zl
        return a

    def affine(self, W: np.ndarray, b: np.ndarray, inputs: list[dict[int, Fraction]], lo: np.ndarray,
               hi: np.ndarray) -> list[int]:
        """New variables z = W h + b, where input n is the linear form inputs[n] (variable -> coefficient)."""
        out = []
        for i in range(W.shape[0]):
            z = self.var(lo[i], hi[i])
            coeffs: dict[int, Fraction] = {z: Fraction(1)}
            for w, form in zip(W[i], inputs):
                if w == 0:
                    continue
                for v, c in form.items():
                    coeffs[v] = coeffs.get(v, _ZERO) - w * c
            self.row(coeffs, b[i], "==")
            out.append(z)
        return out


def box_lp_safe(P: RootExitProblem, prep: Any, lo: np.ndarray, hi: np.ndarray, info: Any, deadline: float,
                max_candidates: int = 16) -> bool:
    """True if every candidate flip of ``info`` is certified infeasible on the box (module docstring)."""
    if info is None or not info.candidates or len(info.candidates) > max_candidates:
        return False
    net, l, j = P.net, P.layer, P.neuron
    B = info.B
    bld = _Builder()
    a_forms = _lower_layers(bld, net, lo, hi, B, l)
    al, ah = B.a[l - 1]
    zl, zh = B.z[l - 1]
    relu = net.has_relu(l)
    zv = bld.affine(net.weight(l), net.bias(l), a_forms, zl, zh)
    if relu:
        bld.row({zv[j]: Fraction(-1)}, 0, "<")  # z_j > 0
    tl, th = _fr(info.tl), _fr(info.th)
    t = bld.var(tl, th)
    D, e = P.direction
    # products p_i = t a_i
    p: dict[int, int] = {}
    for i, form in enumerate(a_forms):
        if D[i] == 0:
            continue
        aL, aU = _fr(al[i]), _fr(ah[i])
        cands = [tl * aL, tl * aU, th * aL, th * aU]
        pv = bld.var(min(cands), max(cands))
        p[i] = pv

        def lin(ca: Fraction, ct: Fraction) -> dict[int, Fraction]:
            out = {t: ct}
            for v, c in form.items():
                out[v] = out.get(v, _ZERO) + ca * c
            return out

        # p >= tL a + aL t - tL aL  ->  tL a + aL t - p <= tL aL
        for (ca, ct, const, sign) in ((tl, aL, tl * aL, 1), (th, aU, th * aU, 1), (th, aL, th * aL, -1), (tl, aU, tl * aU, -1)):
            coeffs = lin(ca, ct)
            coeffs[pv] = coeffs.get(pv, _ZERO) - 1
            if sign == 1:
                bld.row(coeffs, const)
            else:
                bld.row({k: -c for k, c in coeffs.items()}, -const)
    # step: sum_i w_ji D_i p_i + (w_j . e) t - z_j = 0
    wj = net.weight(l)[j]
    step = {t: sum((w * ev for w, ev in zip(wj, e)), _ZERO), zv[j]: Fraction(-1)}
    for i, pv in p.items():
        step[pv] = step.get(pv, _ZERO) + wj[i] * D[i]
    bld.row(step, 0, "==")
    # root forms r_i = a_i - D_i p_i - e_i t
    r_forms = []
    for i, form in enumerate(a_forms):
        f = dict(form)
        if i in p:
            f[p[i]] = f.get(p[i], _ZERO) - D[i]
        if e[i] != 0:
            f[t] = f.get(t, _ZERO) - e[i]
        r_forms.append(f)
    zrl, zrh = info.root[l]
    zr = bld.affine(net.weight(l), net.bias(l), r_forms, zrl, zrh)
    zs_at = {l: zv}
    zs_rt = {l: zr}
    top = max(k for k, _, _ in info.candidates)
    if top > l:
        h = [{bld.relu(z, _fr(zl[i]), _fr(zh[i])): Fraction(1)} for i, z in enumerate(zv)]
        hr = [{bld.relu(z, _fr(zrl[i]), _fr(zrh[i]), linear=(i == j)): Fraction(1)} for i, z in enumerate(zr)]
        for k in range(l + 1, top + 1):
            zkl, zkh = B.z[k - 1]
            rkl, rkh = info.root[k]
            zk = bld.affine(net.weight(k), net.bias(k), h, zkl, zkh)
            zrk = bld.affine(net.weight(k), net.bias(k), hr, rkl, rkh)
            zs_at[k], zs_rt[k] = zk, zrk
            if k < top:
                h = [{bld.relu(z, _fr(zkl[i]), _fr(zkh[i])): Fraction(1)} for i, z in enumerate(zk)]
                hr = [{bld.relu(z, _fr(rkl[i]), _fr(rkh[i])): Fraction(1)} for i, z in enumerate(zrk)]
    base = LinearProgram(len(bld.lo), lo=bld.lo, hi=bld.hi)
    for coeffs, rhs, kind in bld.rows:
        base.add_row(coeffs, rhs, kind)
    for k, m, sigma in info.candidates:
        if time.monotonic() > deadline:
            return False
        lp = replace(base, ub_rows=list(base.ub_rows), ub_rhs=list(base.ub_rhs), ub_scale=list(base.ub_scale),
                     ub_strict=list(base.ub_strict))
        lp.add_row({zs_at[k][m]: Fraction(-sigma)}, 0, "<")  # sigma z > 0
        lp.add_row({zs_rt[k][m]: Fraction(sigma)}, 0, "<")  # sigma z~ < 0
        res = solve_certified(lp, lambda v: None, time_limit=max(0.05, deadline - time.monotonic()))
        if res.status != "infeasible":
            return False
    return True


def _lower_layers(bld: _Builder, net: Any, lo: np.ndarray, hi: np.ndarray, B: Any, upto: int
                  ) -> list[dict[int, Fraction]]:
    """Variables and rows of the input box and layers 1..upto-1 (triangle relaxation of the unstable ReLUs, exact
    interval bounds B); returns the linear forms of :math:`a_{upto-1}`."""
    xs = [bld.var(a, b) for a, b in zip(lo, hi)]
    forms: list[dict[int, Fraction]] = [{v: Fraction(1)} for v in xs]
    for k in range(1, upto):
        zl, zh = B.z[k - 1]
        zv = bld.affine(net.weight(k), net.bias(k), forms, zl, zh)
        forms = [{bld.relu(z, _fr(zl[i]), _fr(zh[i])): Fraction(1)} for i, z in enumerate(zv)] if net.has_relu(k) \
            else [{z: Fraction(1)} for z in zv]
    return forms


def _exact_int(v: Any) -> int:
    """v as an int, refusing a non-integer (the bounds must lie on the 2^-64 grid; truncating would change the
    row and could cut off inputs, making a proof unsound)."""
    if int(v.denominator) != 1:
        raise ValueError(f"triangle row coefficient {v} is not an integer: bounds off the 2^-64 grid")
    return int(v.numerator)


def _fraction(v: Any) -> Fraction:
    return Fraction(int(v.numerator), int(v.denominator))


def inactive_program(P: RootExitProblem, lo: np.ndarray, hi: np.ndarray, B: Any) -> LinearProgram:
    r"""The LP of :func:`box_inactive_lp` in integer rows over the variables x, then per layer k < l the
    pre-activations :math:`z_k` and the post-activations of its unstable neurons, then :math:`z_j`:

    - :math:`d_k z_k - N_k a_{k-1} = \beta_k` (the layer in integers, :attr:`Network.integer_layers`; a stable
      active neuron's post-activation is its :math:`z`, a stable inactive one's is 0 and drops out);
    - an unstable neuron (bounds :math:`\underline z < 0 < \overline z` on the grid of :func:`.bounds.outward`):
      :math:`z - a \le 0` and :math:`(\overline z - \underline z)\, a - \overline z\, z \le
      -\overline z\, \underline z` (scaled by :math:`2^{128}` to integers), besides :math:`a \ge 0`;
    - :math:`-z_j < 0`.

    Variable bounds: the box for x, B's interval bounds for every z."""
    from .bounds import GRID

    net, l, j = P.net, P.layer, P.neuron
    lows: list[Fraction] = [_fraction(v) for v in lo]
    highs: list[Fraction] = [_fraction(v) for v in hi]
    eq: list[tuple[dict[int, int], int, int]] = []
    ub: list[tuple[dict[int, int], int, int, str]] = []
    inputs: list[int | None] = list(range(len(lo)))  # the variable of each entry of a_{k-1} (None: always 0)

    def var(low: Any, high: Any) -> int:
        lows.append(_fraction(low) if not isinstance(low, Fraction) else low)
        highs.append(_fraction(high) if not isinstance(high, Fraction) else high)
        return len(lows) - 1

    def layer(k: int, rows: range) -> list[int]:
        il = net.integer_layers[k - 1]
        zl, zh = B.z[k - 1]
        out = []
        for i in rows:
            z = var(zl[i], zh[i])
            row = {z: il.den}
            for c, v in enumerate(inputs):
                w = il.weight_num[i, c]
                if v is not None and w != 0:
                    row[v] = row.get(v, 0) - int(w)
            eq.append((row, int(il.bias_num[i]), il.den))
            out.append(z)
        return out

    scale = GRID * GRID
    for k in range(1, l):
        zl, zh = B.z[k - 1]
        zs = layer(k, range(len(zl)))
        if not net.has_relu(k):
            inputs = list(zs)
            continue
        nxt: list[int | None] = []
        for i, z in enumerate(zs):
            if zl[i] >= 0:
                nxt.append(z)
            elif zh[i] <= 0:
                nxt.append(None)
            else:
                a = var(0, zh[i])
                ub.append(({z: 1, a: -1}, 0, 1, "<="))
                ub.append(({a: _exact_int((zh[i] - zl[i]) * scale), z: _exact_int(-zh[i] * scale)},
                           _exact_int(-zh[i] * zl[i] * scale), scale, "<="))
                nxt.append(a)
        inputs = nxt
    zj = layer(l, range(j, j + 1))[0]
    ub.append(({zj: -1}, 0, 1, "<"))
    lp = LinearProgram(len(lows), lo=lows, hi=highs)
    for row, rhs, sc in eq:
        lp.add_int_row(row, rhs, sc, "==")
    for row, rhs, sc, kind in ub:
        lp.add_int_row(row, rhs, sc, kind)
    return lp


def box_inactive_lp(P: RootExitProblem, lo: np.ndarray, hi: np.ndarray, deadline: float) -> bool:
    r"""True if neuron j of layer l is inactive on the input box [lo, hi], so that it has no root there: by the
    interval bound :math:`\overline z_j \le 0` (:func:`dtd_formal.smt.bounds.interval_bounds`), or by an exactly
    checked Farkas certificate that the rows of the layers below l (the input box, the layer maps, the triangle
    relaxation of every unstable ReLU with the box's interval bounds, :func:`inactive_program`) together with

    .. math::  z_j = w_j \cdot a_{l-1} + b_j > 0

    are infeasible (:func:`dtd_formal.smt.lp.farkas_certificate`). Every input of the box with :math:`z_j > 0`
    satisfies these rows, so the certificate is a proof; floats only propose its multipliers."""
    from .bounds import interval_bounds

    B = interval_bounds(P.net, lo, hi, upto=P.layer)
    if B.z[P.layer - 1][1][P.neuron] <= 0:
        return True
    lp = inactive_program(P, lo, hi, B)
    return farkas_certificate(lp, max(0.05, deadline - time.monotonic())) is not None


__all__ = ["box_lp_safe", "box_inactive_lp"]

r"""Z3 encoding of a :class:`Network` with exact rationals and ReLU phases as Boolean literals.

For layer k and neuron i: a real :math:`z_{k,i} = \sum_n W_{k,in} h_n + b_{k,i}` (coefficients ``z3.Q(num, den)``
from the exact Fractions) and, for an unstable ReLU, a Boolean phase :math:`p_{k,i}` with
:math:`p \Rightarrow (z > 0 \wedge h = z)`, :math:`\neg p \Rightarrow (z \le 0 \wedge h = 0)`. The phases are the
activation pattern (readable from a model, usable as assumptions, blockable). Interval bounds (:mod:`.bounds`) fix
stable neurons first: :math:`\underline z \ge 0` gives h = z, :math:`\overline z \le 0` gives h = 0, no Boolean.

:func:`root_exit_solver` adds the root of neuron j of layer l: a real t with :math:`t \cdot \mathrm{den} = z_j`,
:math:`\mathrm{den} = w_j \cdot v_j(a) \ne 0` (the direction built by the rule's own definition over
:class:`dtd_formal.smt.ops.Z3Ops`), root :math:`\tilde a = a - t v_j(a)`, the forward pass of layers l..L at the root
(neuron j linear), and the exit disjunction :math:`\bigvee_m (z_m > 0 \wedge \tilde z_m < 0) \vee
(z_m < 0 \wedge \tilde z_m > 0)`. With t left free the query is nonlinear (Z3's nlsat decides it on small nets);
with t fixed to a rational (a *t-slice*) it is linear, and every model is a genuine counterexample.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import z3

from ..network import Network
from .bounds import interval_bounds
from .ops import Z3, to_z3, to_z3_array
from .problem import RootExitProblem


def q(v: Any) -> z3.ArithRef:
    """An exact rational as a Z3 real constant."""
    f = Fraction(v) if not isinstance(v, Fraction) else v
    return z3.Q(f.numerator, f.denominator) if f.denominator != 1 else z3.RealVal(f.numerator)


def _affine(W_row: np.ndarray, h: list[Any], b: Any) -> z3.ArithRef:
    terms = [q(w) * hv for w, hv in zip(W_row, h) if w != 0]
    return z3.Sum(terms + [q(b)]) if terms else q(b)


def encode_forward(s: z3.Solver, net: Network, inputs: list[Any], start: int, prefix: str,
                   bounds: Any = None, forced: int | None = None, stop: int | None = None
                   ) -> tuple[list[list[z3.ArithRef]], list[list[Any]], dict[tuple[int, int], z3.BoolRef]]:
    """Encode layers start..stop (default L) from ``inputs`` (terms of a_{start-1}).

    Returns (z variables per layer, post-activation terms per layer, phase Booleans {(layer, i): p}). ``bounds``
    (a :class:`dtd_formal.smt.bounds.Bounds` over the same inputs) fixes stable neurons; ``forced`` keeps that
    neuron of layer ``start`` linear.
    """
    stop = net.n_layers if stop is None else stop
    h = list(inputs)
    zs: list[list[z3.ArithRef]] = []
    hs: list[list[Any]] = []
    phases: dict[tuple[int, int], z3.BoolRef] = {}
    for k in range(start, stop + 1):
        W, b = net.weight(k), net.bias(k)
        zk = []
        hk = []
        for i in range(W.shape[0]):
            z = z3.Real(f"{prefix}z{k}_{i}")
            s.add(z == _affine(W[i], h, b[i]))
            zk.append(z)
            if not net.has_relu(k) or (forced is not None and k == start and i == forced):
                hk.append(z)
                continue
            if bounds is not None:
                lo, hi = bounds.z[k - 1][0][i], bounds.z[k - 1][1][i]
                s.add(z >= q(Fraction(int(lo.numerator), int(lo.denominator))),
                      z <= q(Fraction(int(hi.numerator), int(hi.denominator))))
                if lo >= 0:
                    hk.append(z)
                    continue
                if hi <= 0:
                    hk.append(z3.RealVal(0))
                    continue
            p = z3.Bool(f"{prefix}p{k}_{i}")
            a = z3.Real(f"{prefix}a{k}_{i}")
            s.add(z3.Implies(p, z3.And(z > 0, a == z)), z3.Implies(z3.Not(p), z3.And(z <= 0, a == 0)))
            phases[(k, i)] = p
            hk.append(a)
        zs.append(zk)
        hs.append(hk)
        h = hk
    return zs, hs, phases


@dataclass
class RootExitEncoding:
    """The Z3 encoding of one root-exit query: the solver, input variables, the step t, pre-activations at x
    (``zs[k-1]`` for layer k) and at the root (``zrs[k-l]``), and the phase Booleans at x and at the root."""

    solver: z3.Solver
    xs: list[z3.ArithRef]
    t: z3.ArithRef
    zs: list[list[z3.ArithRef]]
    zrs: list[list[z3.ArithRef]]
    phases_x: dict
    phases_r: dict


def encode_root_exit(P: RootExitProblem, t_value: Fraction | None = None, low: Any = None, high: Any = None,
                     use_bounds: bool = True, exit_constraint: bool = True) -> RootExitEncoding:
    r"""The whole-net root-exit query (module docstring) over the box [low, high] (default: the problem's box).

    ``t_value`` fixes t (a linear t-slice for true roots). With ``definition="paper-code"`` the step is
    :math:`t\,\mathrm{den} = R^l_j`, the LRP relevance of the rule over layers L..l+1 as Z3 terms (the rule's own
    ``redistribute`` over Z3Ops, :func:`dtd_formal.smt.violations._z3_lrp`): nonlinear, for Z3's nlsat.
    ``exit_constraint=False`` leaves out the exit disjunction (callers add their own).
    """
    net, l, j = P.net, P.layer, P.neuron
    low = P.low if low is None else low
    high = P.high if high is None else high
    linear = t_value is not None and P.true_root
    s = z3.SolverFor("QF_LRA") if linear else z3.SolverFor("QF_NRA")
    xs = [z3.Real(f"x{i}") for i in range(net.input_size)]
    for x, lo, hi in zip(xs, low, high):
        s.add(x >= q(lo), x <= q(hi))
    B = interval_bounds(net, low, high) if use_bounds else None
    zs, hs, phases_x = encode_forward(s, net, xs, 1, "", B)
    a = xs if l == 1 else hs[l - 2]
    zj = zs[l - 1][j]
    if net.has_relu(l):
        s.add(zj > 0)
    Wj = net.weight(l)[j : j + 1]
    bj = net.bias(l)[j : j + 1]
    V = np.asarray(P.rule.direction(Z3, to_z3_array(a), to_z3_array(Wj), to_z3_array(bj)), dtype=object).reshape(-1)
    v = [z3.simplify(to_z3(vi)) for vi in V]
    den = z3.simplify(z3.Sum([q(w) * vi for w, vi in zip(Wj[0], v)]))
    t = z3.Real("t") if t_value is None else q(t_value)
    if P.true_root:
        numer = zj
    else:
        from .violations import _z3_lrp

        per = _z3_lrp(net, P.rule, [list(xs)] + hs, P.output)
        numer = z3.simplify(to_z3(np.asarray(per[l], dtype=object).ravel()[j]))
    s.add(den != 0, t * den == numer)
    r = []
    for i, (ai, vi) in enumerate(zip(a, v)):
        ri = z3.Real(f"r{i}")
        s.add(ri == to_z3(ai) - t * vi)
        r.append(ri)
    zrs, _, phases_r = encode_forward(s, net, r, l, "root_", None, forced=j)
    if exit_constraint:
        s.add(exit_formula(P, zs, zrs))
    return RootExitEncoding(s, xs, t, zs, zrs, phases_x, phases_r)


def exit_formula(P: RootExitProblem, zs: list[list[Any]], zrs: list[list[Any]]) -> z3.BoolRef:
    """Some other ReLU neuron of the scope has strictly opposite signs at x and at the root (neuron j excluded;
    the affine-map variant uses the upper scope: its map can only change if some upper neuron flips)."""
    net, l, j = P.net, P.layer, P.neuron
    scope = P.proof_scope
    exits = []
    for k in range(l, net.n_layers + 1):
        if not net.has_relu(k) or (scope == "layer" and k != l):
            continue
        for m in range(len(zs[k - 1])):
            if k == l and m == j:
                continue
            zm, zrm = zs[k - 1][m], zrs[k - l][m]
            exits.append(z3.Or(z3.And(zm > 0, zrm < 0), z3.And(zm < 0, zrm > 0)))
    return z3.Or(exits) if exits else z3.BoolVal(False)


def root_exit_solver(P: RootExitProblem, t_value: Fraction | None = None, low: Any = None, high: Any = None,
                     use_bounds: bool = True) -> tuple[z3.Solver, list[z3.ArithRef], z3.ArithRef, dict, dict]:
    """(solver, input variables, t, phases at x, phases at the root) of :func:`encode_root_exit`."""
    e = encode_root_exit(P, t_value, low, high, use_bounds)
    return e.solver, e.xs, e.t, e.phases_x, e.phases_r


def model_value(m: z3.ModelRef, v: z3.ArithRef, digits: int = 30) -> Fraction:
    """Exact value of a variable in a model (algebraic numbers: a rational approximation, replayed later)."""
    val = m.eval(v, model_completion=True)
    if z3.is_rational_value(val):
        return Fraction(val.numerator_as_long(), val.denominator_as_long())
    if z3.is_algebraic_value(val):
        approx = val.approx(digits)
        return Fraction(approx.numerator_as_long(), approx.denominator_as_long())
    return Fraction(str(z3.simplify(val)))


def solve_root_exit(P: RootExitProblem, timeout_s: float, t_value: Fraction | None = None, low: Any = None,
                    high: Any = None, assume: dict[tuple[int, int], bool] | None = None) -> tuple[str, list[Fraction] | None]:
    """Check the query; returns ("sat", x) / ("unsat", None) / ("unknown", None). x still needs an exact replay.

    ``assume`` fixes phases at x, {(layer, neuron): active}, and at the root, {("root", layer, neuron): active},
    as assumptions (an "unsat" is then only about that
    pattern; callers must not read it as a proof)."""
    s, xs, _, phases_x, phases_r = root_exit_solver(P, t_value, low, high)
    s.set("timeout", max(1, int(timeout_s * 1000)))
    lits = []
    for key, v in (assume or {}).items():
        ph = phases_r if key[0] == "root" else phases_x
        k = key[1:] if key[0] == "root" else key
        if k in ph:
            lits.append(ph[k] if v else z3.Not(ph[k]))
    res = s.check(*lits)
    if res == z3.sat:
        m = s.model()
        return "sat", [model_value(m, x) for x in xs]
    if res == z3.unsat:
        return "unsat", None
    return "unknown", None


__all__ = ["encode_forward", "encode_root_exit", "exit_formula", "RootExitEncoding", "root_exit_solver", "solve_root_exit", "model_value", "q"]

r"""Z3 encoding of a :class:`Network` with exact rationals and ReLU phases as Boolean literals.

The forward pass is the walk's (:func:`dtd_formal.walk.forward`) over Z3 terms with a hook
(:func:`phase_activation`). For layer k and neuron i: a real :math:`z_{k,i} = \sum_n W_{k,in} h_n + b_{k,i}` (coefficients ``z3.Q(num, den)``
from the exact Fractions) and, for an unstable ReLU, a Boolean phase :math:`p_{k,i}` with
:math:`p \Rightarrow (z > 0 \wedge h = z)`, :math:`\neg p \Rightarrow (z \le 0 \wedge h = 0)`. The phases are the
activation pattern (readable from a model, usable as assumptions, blockable). Interval bounds (:mod:`.bounds`) fix
stable neurons first: :math:`\underline z \ge 0` gives h = z, :math:`\overline z \le 0` gives h = 0, no Boolean.

:func:`root_exit_solver` adds the root of neuron j of layer l from the rule's own ``root_step`` over
:class:`dtd_formal.smt.ops.Z3Ops` (the walk's :func:`~dtd_formal.walk.root_points`): a real t with
:math:`t \cdot \mathrm{den} = z_j` when the stock form is verified, else t equal to the rule's step term,
:math:`\mathrm{den} = w_j \cdot v_j(a) \ne 0`, root :math:`\tilde a = a - t v_j(a)`, the forward pass of layers l..L at the root
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
from ..walk import forward, relevance_per_layer, root_points
from .bounds import interval_bounds
from .ops import Z3, to_z3, to_z3_array
from .problem import RootExitProblem


def q(v: Any) -> z3.ArithRef:
    """An exact rational as a Z3 real constant."""
    f = Fraction(v) if not isinstance(v, Fraction) else v
    return z3.Q(f.numerator, f.denominator) if f.denominator != 1 else z3.RealVal(f.numerator)


def z3_layers(net: Network) -> list[tuple[Any, Any]]:
    """(W_l, b_l) of every layer as :class:`~dtd_formal.smt.ops.Z3Array` of exact rationals (cached on the net)."""
    cache = net.__dict__.get("_z3_layers")
    if cache is None:
        cache = net.__dict__["_z3_layers"] = [(Z3.lift(W), Z3.lift(b)) for W, b in net.arrays("fraction")]
    return cache


def phase_activation(s: z3.Solver, net: Network, prefix: str, phases: dict[tuple[int, int], z3.BoolRef],
                     bounds: Any = None, linear: tuple[int, int] | None = None) -> Any:
    r"""The forward hook of :func:`dtd_formal.walk.forward` for Z3: every pre-activation becomes a named real
    :math:`z_{k,i}` (``prefix`` tells the copies apart), and an unstable ReLU a Boolean phase
    :math:`p_{k,i}` with :math:`p \Rightarrow (z > 0 \wedge h = z)`, :math:`\neg p \Rightarrow (z \le 0 \wedge
    h = 0)`, recorded in ``phases``. Interval ``bounds`` (over the same inputs) fix stable neurons; ``linear`` =
    (layer, neuron) passes that neuron's pre-activation unchanged."""

    def activation(k: int, z: Any) -> tuple[Any, Any]:
        zk, hk = [], []
        for i, term in enumerate(np.asarray(z, dtype=object).ravel().tolist()):
            v = z3.Real(f"{prefix}z{k}_{i}")
            s.add(v == term)
            zk.append(v)
            if not net.has_relu(k) or linear == (k, i):
                hk.append(v)
                continue
            if bounds is not None:
                lo, hi = bounds.z[k - 1][0][i], bounds.z[k - 1][1][i]
                s.add(v >= q(Fraction(int(lo.numerator), int(lo.denominator))),
                      v <= q(Fraction(int(hi.numerator), int(hi.denominator))))
                if lo >= 0:
                    hk.append(v)
                    continue
                if hi <= 0:
                    hk.append(z3.RealVal(0))
                    continue
            p = z3.Bool(f"{prefix}p{k}_{i}")
            h = z3.Real(f"{prefix}a{k}_{i}")
            s.add(z3.Implies(p, z3.And(v > 0, h == v)), z3.Implies(z3.Not(p), z3.And(v <= 0, h == 0)))
            phases[(k, i)] = p
            hk.append(h)
        return to_z3_array(zk), to_z3_array(hk)

    return activation


def encode_forward(s: z3.Solver, net: Network, inputs: list[Any], start: int, prefix: str,
                   bounds: Any = None, forced: int | None = None
                   ) -> tuple[list[list[z3.ArithRef]], list[list[Any]], dict[tuple[int, int], z3.BoolRef]]:
    """Encode layers start..L from ``inputs`` (terms of a_{start-1}): the walk's forward pass
    (:func:`dtd_formal.walk.forward`) with :func:`phase_activation`.

    Returns (z variables per layer, post-activation terms per layer, phase Booleans {(layer, i): p}). ``bounds``
    (a :class:`dtd_formal.smt.bounds.Bounds` over the same inputs) fixes stable neurons; ``forced`` keeps that
    neuron of layer ``start`` linear.
    """
    phases: dict[tuple[int, int], z3.BoolRef] = {}
    hook = phase_activation(s, net, prefix, phases, bounds, None if forced is None else (start, forced))
    acts, zs = forward(Z3, z3_layers(net), net.relu_flags, to_z3_array(inputs), start, activation=hook)
    return [list(z) for z in zs], [list(a) for a in acts[1:]], phases


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

    The root is the rule's own ``root_step`` evaluated on Z3 terms (:func:`dtd_formal.walk.root_points` over
    :class:`~dtd_formal.smt.ops.Z3Ops`; paper-code roots take :math:`R^l_j` from the walk's backward pass on the
    same terms). When the problem's stock form is verified (:func:`dtd_formal.smt.problem.verify_stock_form`) the
    step is encoded as the equivalent polynomial :math:`t\,\mathrm{den} = z_j` (linear for a fixed t: a t-slice);
    otherwise t equals the rule's own step term. ``t_value`` fixes t. ``exit_constraint=False`` leaves out the
    exit disjunction (callers add their own).
    """
    net, l, j = P.net, P.layer, P.neuron
    low = P.low if low is None else low
    high = P.high if high is None else high
    stock = P.stock is not None
    linear = t_value is not None and P.true_root and stock
    s = z3.SolverFor("QF_LRA") if linear else z3.SolverFor("QF_NRA")
    xs = [z3.Real(f"x{i}") for i in range(net.input_size)]
    for x, lo, hi in zip(xs, low, high):
        s.add(x >= q(lo), x <= q(hi))
    B = interval_bounds(net, low, high) if use_bounds else None
    zs, hs, phases_x = encode_forward(s, net, xs, 1, "", B)
    acts = [to_z3_array(xs)] + [to_z3_array(h) for h in hs]
    a = acts[l - 1]
    zj = zs[l - 1][j]
    if net.has_relu(l):
        s.add(zj > 0)
    W, b = z3_layers(net)[l - 1]
    R = None
    if not P.true_root:
        R = relevance_per_layer(Z3, z3_layers(net), net.relu_flags, acts, P.rule, P.output)[l][j : j + 1]
    rs = root_points(Z3, P.rule, a, W[j : j + 1], b[j : j + 1], R, P.definition, l)
    v = [z3.simplify(to_z3(vi)) for vi in np.asarray(rs.V, dtype=object)[0]]
    den = z3.simplify(to_z3(rs.den[0]))
    t = z3.Real("t") if t_value is None else q(t_value)
    numer = zj if P.true_root else z3.simplify(to_z3(R[0]))
    s.add(den != 0)
    if stock:
        s.add(t * den == numer)
    else:
        s.add(t == z3.simplify(to_z3(rs.t[0])))
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


__all__ = ["z3_layers", "phase_activation", "encode_forward", "encode_root_exit", "exit_formula", "RootExitEncoding", "root_exit_solver", "solve_root_exit", "model_value", "q"]

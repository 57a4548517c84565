r"""``find_violation``: search an input box for an x where a rule breaks one of its properties (exactly).

Properties (all decided exactly at a point by :func:`property_holds`, the replay of every counterexample):

- ``"conservation"``: :math:`\sum_i R^0_i(x) = f_c(x)` (LRP with the rule at every layer);
- ``"positivity"``: :math:`R^l_i(x) \ge 0` for every layer l and neuron i;
- ``"root-in-domain"``: every root :math:`\tilde a^{(j)}` of every relevant neuron lies in the rule's domain;
- ``"equals-gradient-x-input"``: :math:`R^0(x) = \nabla f_c(x) \odot x` wherever no relevant normaliser vanishes
  (for rules claimed equivalent: LRP-0 with ``bias="zennit"`` on any ReLU net, LRP-0 ``bias="dtd"`` on bias-free
  nets).

Search: exact checks at box corners, the centre and random points (floats converted exactly), then Z3
(:func:`violation_solver`) with the rule's own definition evaluated over :class:`dtd_formal.smt.ops.Z3Ops` (phases
as Booleans; nonlinear through the normalisers and the root steps, so practical on small nets). All four
properties are encoded, so Z3 unsat is a proof (Proved) for each of them; a Z3 model counts only after the exact
replay by :func:`property_holds` (an irrational model gives Unknown). ``equals-gradient-x-input`` is claimed away
from zero denominators (every relevant neuron's normaliser non-zero), both in the replay and in the encoding.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import numpy as np
import z3

from ..errors import InputError
from ..exact import to_fraction_array
from ..network import Network
from ..rules.base import Rule
from ..verdict import Proved, Refuted, Unknown, Verdict
from .counterexample import ViolationCounterexample
from .ops import domain_formula
from .problem import parse_box

PROPERTIES = ("conservation", "positivity", "root-in-domain", "equals-gradient-x-input")


def _vanishing_normalisers(net: Network, rule: Rule, x: np.ndarray, output: int) -> list[tuple[int, int]]:
    """(layer, neuron) of relevant neurons (active, or the explained output) whose normaliser is exactly 0."""
    from ..dtd import candidate_neurons
    from ..rules.ops import EXACT

    acts, zs = net.activations(x), net.preactivations(x)
    out = []
    for l in range(1, net.n_layers + 1):
        keep, _ = candidate_neurons(net, zs[l - 1], l, output)
        if keep:
            n = rule.normaliser(EXACT, acts[l - 1], net.weight(l), net.bias(l))
            out.extend((l, j) for j in keep if n[j] == 0)
    return out


def property_holds(net: Network, rule: Rule, prop: str, x: Any, output: int = 0) -> tuple[bool, dict[str, Any]]:
    """Decide the property at one exact input; returns (holds, the exact values compared).

    ``equals-gradient-x-input`` holds vacuously where a relevant neuron's normaliser vanishes (the claim is made
    away from zero denominators)."""
    from ..dtd import gradient_times_input, lrp, roots

    x = to_fraction_array(x, "input")
    if prop == "conservation":
        rel = lrp(net, x, rule, output=output)
        total, f = sum(rel.input, Fraction(0)), net.forward(x)[output]
        return total == f, {"sum_R0": total, "f_c": f}
    if prop == "positivity":
        rel = lrp(net, x, rule, output=output)
        bad = [(l, i, v) for l, R in enumerate(rel.per_layer) for i, v in enumerate(R) if v < 0]
        return not bad, {"negative": bad[:5]}
    if prop == "equals-gradient-x-input":
        vanish = _vanishing_normalisers(net, rule, x, output)
        if vanish:
            return True, {"vacuous": f"normalisers vanish at {vanish}"}
        rel = lrp(net, x, rule, output=output)
        gxi = gradient_times_input(net, x, output)
        return all(u == v for u, v in zip(rel.input, gxi)), {"R0": rel.input, "gradient_x_input": gxi}
    if prop == "root-in-domain":
        for l in range(1, net.n_layers + 1):
            r = roots(net, x, rule, layer=l, output=output)
            for j, p in r.points.items():
                if not rule.domain.contains(p):
                    return False, {"layer": l, "neuron": j, "root": p}
        return True, {}
    raise InputError(f"unknown property {prop!r}; known: {', '.join(PROPERTIES)}")


def _z3_lrp(net: Network, rule: Rule, acts: list[list[Any]], output: int) -> list[Any]:
    """LRP as Z3 terms over the encoded activations a_0..a_L (lists of terms): R^0..R^L (the rule's own
    ``redistribute`` over :class:`~dtd_formal.smt.ops.Z3Ops`, then :func:`dtd_formal.dtd.lrp`'s ReLU gate)."""
    from .ops import Z3, to_z3_array

    L = net.n_layers
    R = [z3.RealVal(0)] * net.output_size
    R[output] = acts[L][output]
    R = to_z3_array(R)
    per: list[Any] = [None] * (L + 1)
    per[L] = R
    for l in range(L, 0, -1):
        a = to_z3_array(acts[l - 1])
        low = rule.redistribute(Z3, a, to_z3_array(net.weight(l)), to_z3_array(net.bias(l)), R)
        if l > 1 and net.has_relu(l - 1):
            low = Z3.where(a > 0, low, Z3.zero)
        per[l - 1] = low
        R = low
    return per


def violation_solver(net: Network, rule: Rule, prop: str, low: np.ndarray, high: np.ndarray, output: int
                     ) -> tuple[z3.Solver, list[z3.ArithRef]]:
    r"""A Z3 solver whose models are the inputs of the box that violate ``prop`` (module docstring).

    The forward pass is :func:`dtd_formal.smt.encode.encode_forward` (phases as Booleans, stable neurons fixed by
    interval bounds); the rule enters only through its own definition over Z3 terms:

    - conservation / positivity: the LRP terms (:func:`_z3_lrp`);
    - root-in-domain: per layer l and relevant neuron j (active, or the explained output), a real
      :math:`t_{lj}` with :math:`\mathrm{den} \ne 0 \Rightarrow t\,\mathrm{den} = z_j`,
      :math:`\mathrm{den} = w_j \cdot v_j(a)` from ``rule.direction``, and the violation
      :math:`z_j > 0 \wedge \mathrm{den} \ne 0 \wedge a - t v_j \notin` the rule's domain;
    - equals-gradient-x-input: :math:`\nabla f_c` pulled back through the phase masks
      (:math:`g \leftarrow W_l^\top (g \odot [z_l > 0])`, relu'(0) = 0), every relevant normaliser non-zero
      (``rule.normaliser``), and :math:`\bigvee_i R^0_i \ne g_i x_i`.
    """
    from .bounds import interval_bounds
    from .encode import encode_forward, q
    from .ops import Z3, to_z3, to_z3_array

    s = z3.SolverFor("QF_NRA")
    xs = [z3.Real(f"x{i}") for i in range(net.input_size)]
    for x, lo, hi in zip(xs, low, high):
        s.add(x >= q(lo), x <= q(hi))
    zs, hs, _ = encode_forward(s, net, xs, 1, "", interval_bounds(net, low, high))
    acts: list[list[Any]] = [list(xs)] + hs
    L = net.n_layers

    def relevant(l: int) -> list[tuple[int, z3.BoolRef]]:
        out = []
        for j in range(len(zs[l - 1])):
            if l == L and j != output:
                continue
            out.append((j, zs[l - 1][j] > 0 if net.has_relu(l) else z3.BoolVal(True)))
        return out

    if prop in ("conservation", "positivity", "equals-gradient-x-input"):
        per = _z3_lrp(net, rule, acts, output)
        R0 = [z3.simplify(to_z3(t)) for t in np.asarray(per[0], dtype=object).ravel()]
    if prop == "conservation":
        s.add(z3.Sum(R0) != to_z3(acts[L][output]))
    elif prop == "positivity":
        s.add(z3.Or([to_z3(t) < 0 for R in per for t in np.asarray(R, dtype=object).ravel()]))
    elif prop == "equals-gradient-x-input":
        g: list[Any] = [z3.RealVal(0)] * net.output_size
        g[output] = z3.RealVal(1)
        for l in range(L, 0, -1):
            if net.has_relu(l):
                g = [z3.If(zs[l - 1][i] > 0, gi, z3.RealVal(0)) for i, gi in enumerate(g)]
            W = net.weight(l)
            g = [z3.Sum([q(W[i, k]) * g[i] for i in range(W.shape[0]) if W[i, k] != 0] or [z3.RealVal(0)])
                 for k in range(W.shape[1])]
        pre = []
        for l in range(1, L + 1):
            n = rule.normaliser(Z3, to_z3_array(acts[l - 1]), to_z3_array(net.weight(l)), to_z3_array(net.bias(l)))
            n = np.asarray(n, dtype=object).ravel()
            pre.extend(z3.Implies(cond, to_z3(n[j]) != 0) for j, cond in relevant(l))
        s.add(z3.And(pre), z3.Or([R0[i] != g[i] * xs[i] for i in range(len(xs))]))
    elif prop == "root-in-domain":
        bad = []
        for l in range(1, L + 1):
            a = acts[l - 1]
            for j, cond in relevant(l):
                Wj, bj = net.weight(l)[j : j + 1], net.bias(l)[j : j + 1]
                V = np.asarray(rule.direction(Z3, to_z3_array(a), to_z3_array(Wj), to_z3_array(bj)), dtype=object)
                v = [z3.simplify(to_z3(vi)) for vi in V.reshape(-1)]
                den = z3.simplify(z3.Sum([q(w) * vi for w, vi in zip(Wj[0], v)] or [z3.RealVal(0)]))
                t = z3.Real(f"t{l}_{j}")
                s.add(z3.Implies(den != 0, t * den == zs[l - 1][j]))
                root = [to_z3(ai) - t * vi for ai, vi in zip(a, v)]
                bad.append(z3.And(cond, den != 0, z3.Not(domain_formula(root, rule.domain))))
        s.add(z3.Or(bad) if bad else z3.BoolVal(False))
    else:  # pragma: no cover - checked by the caller
        raise InputError(f"unknown property {prop!r}")
    return s, xs


def _z3_search(net: Network, rule: Rule, prop: str, low: np.ndarray, high: np.ndarray, output: int,
               timeout: float) -> tuple[str, list[Fraction] | None, str]:
    """("sat", x, "") / ("unsat", None, "") / ("unknown", None, reason); x still needs the exact replay."""
    from .encode import model_value

    try:
        s, xs = violation_solver(net, rule, prop, low, high, output)
    except NotImplementedError as exc:
        return "unknown", None, str(exc)
    s.set("timeout", max(1, int(timeout * 1000)))
    res = s.check()
    if res == z3.unsat:
        return "unsat", None, ""
    if res == z3.sat:
        m = s.model()
        return "sat", [model_value(m, x) for x in xs], ""
    return "unknown", None, f"z3: {s.reason_unknown()}"


def find_violation(net: Network, rule: Rule, property: str, domain: Any = (0, 1), timeout: float = 60.0,
                   output: int = 0, n_samples: int = 64, seed: int = 0) -> Verdict:
    """Search the box for an x violating ``property`` (module docstring): Refuted / Proved / Unknown."""
    if property not in PROPERTIES:
        raise InputError(f"unknown property {property!r}; known: {', '.join(PROPERTIES)}")
    net._check_output(output)
    low, high = parse_box(domain, net.input_size)
    statement = f"{rule.spec()} satisfies {property} for every input in the box"
    deadline = time.monotonic() + timeout
    rng = np.random.default_rng(seed)
    lo_f, hi_f = np.array([float(v) for v in low]), np.array([float(v) for v in high])
    cands: list[np.ndarray] = [low, high, (low + high) / 2]
    for _ in range(n_samples):
        cands.append(np.array([Fraction(float(v)) for v in lo_f + (hi_f - lo_f) * rng.random(len(lo_f))], dtype=object))
    for x in cands:
        if time.monotonic() > deadline:
            return Unknown(statement, "timeout during sampling")
        holds, values = property_holds(net, rule, property, x, output)
        if not holds:
            cex = ViolationCounterexample(np.asarray(x, dtype=object), property, rule.spec(), output, values=values,
                                          found_by="sampling")
            if not cex.replay(net, rule):  # pragma: no cover - same exact function
                raise AssertionError("violation did not replay")
            return Refuted(statement, cex, method="sampling + exact check")
    left = deadline - time.monotonic()
    if left > 0.05:
        st, x, why = _z3_search(net, rule, property, low, high, output, left)
        if st == "unsat":
            return Proved(statement, "z3 (exact, rule body over Z3Ops)",
                          {"solver": "z3", "logic": "QF_NRA", "property": property, "low": low, "high": high,
                           "z3": z3.get_version_string()})
        if st == "sat" and x is not None:
            cex = ViolationCounterexample(np.asarray(x, dtype=object), property, rule.spec(), output, found_by="z3")
            if all(lo <= v <= hi for v, lo, hi in zip(x, low, high)) and cex.replay(net, rule):
                cex.values = property_holds(net, rule, property, x, output)[1]
                return Refuted(statement, cex, method="z3 + exact replay")
            return Unknown(statement, "z3 model did not replay exactly (irrational or boundary witness)")
        if why:
            return Unknown(statement, f"no violation found by sampling; {why}")
    return Unknown(statement, "no violation found; no proof within the time budget")


__all__ = ["find_violation", "property_holds", "PROPERTIES"]

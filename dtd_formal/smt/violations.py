r"""``find_violation``: search an input box for an x where a rule breaks one of its properties (exactly).

Properties (all decided exactly at a point by :func:`property_holds`, the replay of every counterexample):

- ``"conservation"``: :math:`\sum_i R^0_i(x) = f_c(x)` (LRP with the rule at every layer);
- ``"positivity"``: :math:`R^l_i(x) \ge 0` for every layer l and neuron i;
- ``"root-in-domain"``: every root :math:`\tilde a^{(j)}` of every relevant neuron lies in the rule's domain;
- ``"equals-gradient-x-input"``: :math:`R^0(x) = \nabla f_c(x) \odot x` (for rules claimed equivalent, e.g. LRP-0
  with ``bias="zennit"`` on bias-free nets).

Search: exact checks at box corners, the centre and random points (floats converted exactly), then Z3 with the
rule's own definition evaluated over :class:`dtd_formal.smt.ops.Z3Ops` (the LRP pass as Z3 terms, phases as
Booleans; nonlinear through the normalisers, so practical on small nets). Z3 unsat is a proof (Proved); a Z3 model
counts only after the exact replay.
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
from .problem import parse_box

PROPERTIES = ("conservation", "positivity", "root-in-domain", "equals-gradient-x-input")


def property_holds(net: Network, rule: Rule, prop: str, x: Any, output: int = 0) -> tuple[bool, dict[str, Any]]:
    """Decide the property at one exact input; returns (holds, the exact values compared)."""
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


def _z3_lrp(net: Network, rule: Rule, xs: list[z3.ArithRef], output: int, s: z3.Solver) -> tuple[Any, Any, list[Any]]:
    """LRP as Z3 terms: (R^0 terms, f_c term, activations a_0..a_L as term lists)."""
    from .encode import encode_forward
    from .ops import Z3, to_z3_array

    zs, hs, _ = encode_forward(s, net, xs, 1, "")
    acts = [list(xs)] + hs
    L = net.n_layers
    R = [z3.RealVal(0)] * net.output_size
    R[output] = hs[-1][output]
    R = to_z3_array(R)
    per = [None] * (L + 1)
    per[L] = R
    for l in range(L, 0, -1):
        a = to_z3_array(acts[l - 1])
        low = rule.redistribute(Z3, a, to_z3_array(net.weight(l)), to_z3_array(net.bias(l)), R)
        if l > 1 and net.has_relu(l - 1):
            low = Z3.where(a > 0, low, Z3.zero)
        per[l - 1] = low
        R = low
    return per, hs[-1][output], acts


def _z3_search(net: Network, rule: Rule, prop: str, low: np.ndarray, high: np.ndarray, output: int,
               timeout: float) -> tuple[str, list[Fraction] | None]:
    from .encode import model_value, q

    s = z3.SolverFor("QF_NRA")
    xs = [z3.Real(f"x{i}") for i in range(net.input_size)]
    for x, lo, hi in zip(xs, low, high):
        s.add(x >= q(lo), x <= q(hi))
    per, f, _ = _z3_lrp(net, rule, xs, output, s)
    R0 = [z3.simplify(t) for t in np.asarray(per[0], dtype=object).ravel()]
    if prop == "conservation":
        s.add(z3.Sum(R0) != f)
    elif prop == "positivity":
        s.add(z3.Or([t < 0 for R in per for t in np.asarray(R, dtype=object).ravel()]))
    elif prop == "equals-gradient-x-input":
        # gradient x input on the region: R0 must equal x_i * d f / d x_i; encoded via finite pattern maps is
        # not available symbolically here, so only the sampling search applies
        return "unknown", None
    else:
        return "unknown", None
    s.set("timeout", max(1, int(timeout * 1000)))
    res = s.check()
    if res == z3.unsat:
        return "unsat", None
    if res == z3.sat:
        m = s.model()
        return "sat", [model_value(m, x) for x in xs]
    return "unknown", None


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
        st, x = _z3_search(net, rule, property, low, high, output, left)
        if st == "unsat":
            return Proved(statement, "z3 (exact, rule body over Z3Ops)", {"solver": "z3", "logic": "QF_NRA"})
        if st == "sat" and x is not None:
            cex = ViolationCounterexample(np.asarray(x, dtype=object), property, rule.spec(), output, found_by="z3")
            if all(lo <= v <= hi for v, lo, hi in zip(x, low, high)) and cex.replay(net, rule):
                cex.values = property_holds(net, rule, property, x, output)[1]
                return Refuted(statement, cex, method="z3 + exact replay")
            return Unknown(statement, "z3 model did not replay exactly")
    return Unknown(statement, "no violation found; no proof within the time budget")


__all__ = ["find_violation", "property_holds", "PROPERTIES"]

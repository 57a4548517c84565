r"""The "affine map changes" variant decided by enumerating the reachable resolved pattern pairs (Z3, exact).

For an input x with layer input a and the root :math:`\tilde a` of neuron j of layer l, the core
(:mod:`dtd_formal.regions`, :class:`~dtd_formal.regions.AffineMapCache`) compares the exact affine maps of :math:`f_c` (as a function of
:math:`a_{l-1}`) of the two *closest patterns* of layers l..L: a zero sign takes the other point's phase, zeros on
both sides count inactive, and neuron j is held active. As Boolean terms over the pre-activations at x
(:math:`z_m`) and at the root (:math:`\tilde z_m`):

.. math::  \rho^{in}_m = z_m > 0 \vee (z_m = 0 \wedge \tilde z_m > 0), \qquad
           \rho^{rt}_m = \tilde z_m > 0 \vee (\tilde z_m = 0 \wedge z_m > 0).

The map can only change when some neuron flips strictly, so the query is the root-exit encoding
(:func:`dtd_formal.smt.encode.encode_root_exit`, scope "upper") whose models are inputs with a flip. Each model
gives one pair :math:`(\rho^{in}, \rho^{rt})`; the two maps are compared exactly (integer numerators, the core's
cache). If they differ, the model is a candidate counterexample (replayed exactly; an irrational model is first
re-solved with t fixed to a rational near the model's t and the pattern pair fixed, a linear query for true roots).
If they agree, the pair is blocked and the search goes on. "unsat" after blocking every map-preserving pair is a
proof: every input with a flip has a pair that keeps the map. A cut enumeration (budget, pattern cap, timeout)
is Unknown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import z3

from .counterexample import RootExitCounterexample
from .encode import encode_root_exit, model_value
from .problem import RootExitProblem


@dataclass
class MapEnumeration:
    status: str  # "proved" | "refuted" | "unknown"
    patterns: int
    counterexample: RootExitCounterexample | None = None
    reason: str = ""
    keys: list[tuple[str, str]] = field(default_factory=list)


def _resolved_terms(P: RootExitProblem, zs: list[list[Any]], zrs: list[list[Any]]) -> list[tuple[Any, Any]]:
    """(rho_in, rho_rt) per ReLU neuron of layers l..L in the core's concatenated order (neuron j: both True)."""
    net, l, j = P.net, P.layer, P.neuron
    out = []
    for k in range(l, net.n_layers + 1):
        if not net.has_relu(k):
            continue
        for m in range(len(zs[k - 1])):
            if k == l and m == j:
                out.append((z3.BoolVal(True), z3.BoolVal(True)))
                continue
            z, zr = zs[k - 1][m], zrs[k - l][m]
            out.append((z3.Or(z > 0, z3.And(z == 0, zr > 0)), z3.Or(zr > 0, z3.And(zr == 0, z > 0))))
    return out


def _witness(P: RootExitProblem, model: z3.ModelRef, enc: Any, lits: list[Any], found_by: str,
             deadline: float) -> RootExitCounterexample | None:
    """An exact counterexample from a model whose pattern pair changes the map (see module docstring)."""
    x = [model_value(model, v) for v in enc.xs]
    cex = RootExitCounterexample.build(P.question(), P.net, P.rule, x, found_by)
    if cex is not None or time.monotonic() > deadline:
        return cex
    tau = model_value(model, enc.t, 20).limit_denominator(1 << 20)
    for t_try in (tau, model_value(model, enc.t, 40)):
        e2 = encode_root_exit(P, t_value=t_try)
        rho = _resolved_terms(P, e2.zs, e2.zrs)
        e2.solver.add([r if want else z3.Not(r) for (ri, rr), (wi, wr) in zip(rho, lits) for r, want in ((ri, wi), (rr, wr))])
        e2.solver.set("timeout", max(1, int(1000 * min(5.0, deadline - time.monotonic()))))
        if e2.solver.check() == z3.sat:
            m2 = e2.solver.model()
            cex = RootExitCounterexample.build(P.question(), P.net, P.rule, [model_value(m2, v) for v in e2.xs],
                                               found_by + f", t fixed to {t_try}")
            if cex is not None:
                return cex
        if time.monotonic() > deadline:
            break
    return None


def enumerate_map_changes(P: RootExitProblem, deadline: float, max_patterns: int = 256) -> MapEnumeration:
    """Decide the affine-map variant by enumeration (module docstring)."""
    from ..regions import AffineMapCache

    enc = encode_root_exit(P)
    s = enc.solver
    rho = _resolved_terms(P, enc.zs, enc.zrs)
    cache = AffineMapCache(P.net, P.layer, P.output)
    seen = 0
    keys: list[tuple[str, str]] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0.02:
            return MapEnumeration("unknown", seen, reason=f"timeout after {seen} map-preserving pattern pairs", keys=keys)
        s.set("timeout", max(1, int(1000 * left)))
        res = s.check()
        if res == z3.unsat:
            return MapEnumeration("proved", seen, keys=keys)
        if res != z3.sat:
            return MapEnumeration("unknown", seen, reason=f"z3: {s.reason_unknown()} after {seen} pattern pairs",
                                  keys=keys)
        m = s.model()
        vals = [(z3.is_true(m.eval(ri, model_completion=True)), z3.is_true(m.eval(rr, model_completion=True)))
                for ri, rr in rho]
        row_in = np.array([1 if a else -1 for a, _ in vals], dtype=np.int8)
        row_rt = np.array([1 if b else -1 for _, b in vals], dtype=np.int8)
        if cache.key(row_in) != cache.key(row_rt):
            cex = _witness(P, m, enc, vals, "z3 pattern enumeration", deadline)
            if cex is not None:
                return MapEnumeration("refuted", seen, cex, keys=keys)
            return MapEnumeration("unknown", seen, reason="a map-changing pattern pair is reachable, but no exact "
                                  "witness was found (irrational model)", keys=keys)
        seen += 1
        keys.append(("".join("+" if v > 0 else "-" for v in row_in), "".join("+" if v > 0 else "-" for v in row_rt)))
        if seen >= max_patterns:
            return MapEnumeration("unknown", seen, reason=f"enumeration cut at {seen} map-preserving pattern pairs",
                                  keys=keys)
        s.add(z3.Not(z3.And([r if want else z3.Not(r)
                             for (ri, rr), (wi, wr) in zip(rho, vals) for r, want in ((ri, wi), (rr, wr))])))


__all__ = ["enumerate_map_changes", "MapEnumeration"]

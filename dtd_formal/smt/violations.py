r"""``find_violation``: search an input box for an x where a rule breaks one of its properties, or prove none does.

The property is the catalogue's (:mod:`dtd_formal.properties`): its checks, written once over the ops namespace,
are evaluated exactly at candidate points and, over Z3 terms, give the query whose models are the violating
inputs. Nothing about a property or a rule is re-derived here.

Search: exact checks at box corners, the centre and random points (floats converted exactly), then Z3
(:func:`decide_property`): the walk (:mod:`dtd_formal.walk`) over Z3 terms with phases as Booleans and stable
neurons fixed by interval bounds (:func:`dtd_formal.smt.encode.phase_activation`), the rule's own methods over
:class:`dtd_formal.smt.ops.Z3Ops`, and the disjunction of the property's failure conditions. ``unsat`` is a proof
(Proved) once the Z3 encoding has been checked to agree with the exact evaluator at every sampled point
(:func:`encoding_disagreement`: a rule body that behaves differently on Z3 terms gives Unknown); a Z3 model counts
only after the exact replay (an irrational model gives Unknown).
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any

import numpy as np
import z3

from ..errors import InputError, check_timeout
from ..exact import to_fraction_array
from ..network import Network
from ..properties import Property, get_property
from ..rules.base import Rule
from ..rules.domains import Box, Domain
from ..rules.ops import FAST_EXACT
from ..verdict import Proved, Refuted, Unknown, Verdict
from ..walk import Trace
from .bounds import interval_bounds
from .counterexample import ViolationCounterexample
from .encode import model_value, phase_activation, z3_layers
from .ops import Z3, from_z3, to_z3_array
from .problem import parse_box, violation_question


def violation_query(prop: Property, rule: Rule, net: Network, output: int, input_domain: Domain,
                    root_domain: Domain | None = None, positive_output: bool = False
                    ) -> tuple[z3.Solver, list[z3.ArithRef]]:
    r"""A Z3 solver whose models are the inputs of ``input_domain`` that violate ``prop`` (module docstring).

    ``root_domain`` is the domain of layer-1 roots (default: the rule's); ``positive_output`` restricts the inputs
    to :math:`f_c(x) \ge 0`.
    """
    s = z3.SolverFor("QF_NRA")
    xs = [z3.Real(f"x{i}") for i in range(net.input_size)]
    x = to_z3_array(xs)
    s.add(input_domain.member(Z3, x))
    bounds = None
    if isinstance(input_domain, Box):
        low, high = input_domain.bounds(net.input_size)
        bounds = interval_bounds(net, low, high)
    hook = phase_activation(s, net, "", {}, bounds)
    tr = Trace(Z3, z3_layers(net), net.relu_flags, x, rule, output, activation=hook)
    s.add(prop.violation(tr, prop.context(rule, net, root_domain)))
    if positive_output:
        s.add(tr.acts[-1][output] >= 0)
    return s, xs


def decide_property(prop: Property, rule: Rule, net: Network, output: int, input_domain: Domain, timeout: float,
                    root_domain: Domain | None = None, positive_output: bool = False
                    ) -> tuple[str, list[Fraction] | None, str]:
    """("sat", x, "") / ("unsat", None, "") / ("unknown", None, reason); x still needs the exact replay."""
    try:
        s, xs = violation_query(prop, rule, net, output, input_domain, root_domain, positive_output)
    except Exception as exc:  # noqa: BLE001 - a rule body that does not run on Z3 terms
        return "unknown", None, f"no Z3 encoding of the rule's body ({type(exc).__name__}: {exc})"
    s.set("timeout", max(1, int(timeout * 1000)))
    res = s.check()
    if res == z3.unsat:
        return "unsat", None, ""
    if res == z3.sat:
        m = s.model()
        return "sat", [model_value(m, x) for x in xs], ""
    return "unknown", None, f"z3: {s.reason_unknown()}"


def encoding_disagreement(prop: Property, rule: Rule, net: Network, x: Any, output: int,
                          root_domain: Domain | None = None) -> str | None:
    """Where the property's Z3 encoding and its exact evaluation differ at the exact point x, or None.

    The property's checks run twice on the same walk: in exact arithmetic, and over Z3 terms of the constant x
    (every term then simplifies to a number). Each check's failure condition and values must agree; a rule body
    that behaves differently on Z3 terms (it inspects its arguments' types, bypasses the ops namespace, reads a
    float's decimal text) is caught here before a Z3 answer is trusted.
    """
    xa = net.as_input(x)
    ctx = prop.context(rule, net, root_domain)
    exact = prop.checks(Trace(FAST_EXACT, net.fast_layers, net.relu_flags, to_fraction_array(xa), rule, output), ctx)  # type: ignore[misc]
    try:
        terms = prop.checks(Trace(Z3, z3_layers(net), net.relu_flags, Z3.lift(xa), rule, output), ctx)  # type: ignore[misc]
    except Exception as exc:  # noqa: BLE001
        return f"the rule's body does not run on Z3 terms ({type(exc).__name__}: {exc})"
    if len(exact) != len(terms):
        return "the Z3 encoding has a different number of checks"
    for ce, cz in zip(exact, terms):
        where = f"layer {ce.layer}" + (f" neuron {ce.neuron}" if ce.neuron is not None else "")
        if bool(ce.fails) != z3.is_true(z3.simplify(cz.fails)):
            return f"{where}: the Z3 encoding says {'fails' if not ce.fails else 'holds'} at x, exact arithmetic not"
        for key, ve in ce.values.items():
            if key not in cz.values or isinstance(ve, (str, bool, list)) or key == "precondition":
                continue
            vz = cz.values[key]
            try:
                ez, ee = np.ravel(from_z3(vz)), np.ravel(np.asarray(ve, dtype=object))
            except InputError:
                return f"{where}: the Z3 value of {key} does not simplify to a number"
            if len(ez) != len(ee) or any(Fraction(p) != Fraction(int(q.numerator), int(q.denominator))
                                         for p, q in zip(ez, ee)):
                return f"{where}: {key} differs between Z3 terms and exact arithmetic"
    return None


def find_violation(net: Network, rule: Rule, property: str, domain: Any = (0, 1), timeout: float = 60.0,
                   output: int = 0, n_samples: int = 64, seed: int = 0) -> Verdict:
    """Search the box for an x violating ``property`` (module docstring): Refuted / Proved / Unknown.

    ``property`` is a catalogue name with a Z3 encoding (conservation, positivity, root-on-hyperplane,
    root-in-domain, equals-gradient-x-input; snake_case accepted); layer-1 roots must lie in the rule's domain,
    deeper ones in a >= 0. The region properties are searched by :func:`dtd_formal.smt.root_exit.find_root_exit`.
    """
    check_timeout(timeout)
    prop = get_property(property)
    if not prop.encodable:
        raise InputError(f"{prop.name} has no Z3 encoding; root-in-linear-region:* over a box is "
                         "find_root_exit / `dtd-formal counterexample`")
    reason = prop.applies(rule)
    if reason:
        raise InputError(f"{prop.name}: {reason}")
    net.check_output(output)
    low, high = parse_box(domain, net.input_size)
    question = violation_question(net, rule, prop.name, low, high, output)
    statement = question.statement()
    deadline = time.monotonic() + timeout
    rng = np.random.default_rng(seed)
    lo_f, hi_f = np.array([float(v) for v in low]), np.array([float(v) for v in high])
    cands: list[np.ndarray] = [low, high, (low + high) / 2]
    for _ in range(n_samples):
        raw = np.array([Fraction(float(v)) for v in lo_f + (hi_f - lo_f) * rng.random(len(lo_f))], dtype=object)
        cands.append(np.minimum(np.maximum(raw, low), high))  # exact clamp: float rounding may leave the box
    checked: list[np.ndarray] = []
    for x in cands:
        if time.monotonic() > deadline:
            return Unknown(statement, "timeout during sampling", question=question)
        outcome = prop.evaluate(rule, net, x, output)
        if outcome.error:
            raise InputError(outcome.error)
        checked.append(x)
        if not outcome.holds:
            cex = ViolationCounterexample.build(question, net, rule, x, "sampling")
            return Refuted(statement, cex, method="sampling + exact check", question=question)
    left = deadline - time.monotonic()
    if getattr(net, "is_graph", False):  # sampling only: the Z3 encoding reads dense networks
        return Unknown(statement, f"no violation among {len(checked)} sampled inputs; Z3 (the complete decision) "
                       "reads dense networks and was not run on the graph", question=question)
    if left <= 0.05:
        return Unknown(statement, "no violation found; no time left for Z3", question=question)
    st, x, why = decide_property(prop, rule, net, output, Box(low, high), left)
    if st == "sat" and x is not None:
        cex = ViolationCounterexample.build(question, net, rule, x, "z3")
        if cex is not None:
            return Refuted(statement, cex, method="z3 + exact replay", question=question)
        return Unknown(statement, "z3 model did not replay exactly (irrational or boundary witness)", question=question)
    if st == "unsat":
        for xc in checked[:8]:
            why = encoding_disagreement(prop, rule, net, xc, output) or ""
            if why:
                return Unknown(statement, f"z3 answered unsat, but its encoding of the rule disagrees with exact "
                                          f"arithmetic at x = {[str(v) for v in xc]}: {why}", question=question)
        return Proved(statement, "z3 (exact, the property's checks over Z3Ops)", {"solver": "z3", "logic": "QF_NRA"},
                      question=question)
    return Unknown(statement, f"no violation found by sampling; {why}" if why else "no violation found; "
                   "no proof within the time budget", question=question)


__all__ = ["find_violation", "violation_query", "decide_property", "encoding_disagreement"]

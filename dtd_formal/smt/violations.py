r"""``find_violation``: search an input box for an x where a rule breaks one of its properties, or prove none does.

The property is the catalogue's (:mod:`dtd_formal.properties`): its checks, written once over the ops namespace,
are evaluated exactly at candidate points and, over Z3 terms, give the query whose models are the violating
inputs. Nothing about a property or a rule is re-derived here.

Search: exact checks at box corners, the centre and random points (floats converted exactly), then Z3
(:func:`decide_property`): the walk (:mod:`dtd_formal.walk`) over Z3 terms with phases as Booleans and stable
neurons fixed by interval bounds (:func:`dtd_formal.smt.encode.phase_activation`), the rule's own methods over
:class:`dtd_formal.smt.ops.Z3Ops`, and the disjunction of the property's failure conditions. ``unsat`` is a proof
(Proved) once the Z3 encoding has been checked to agree with the exact evaluator at the sampled points and the
box's face centres (:func:`encoding_disagreement` at :func:`check_points`: a rule body that behaves differently on
Z3 terms there gives Unknown; one that differs only off these points is not caught); a Z3 model counts
only after the exact replay (an irrational model gives Unknown).

On an operator graph (:class:`dtd_formal.graph.network.GraphNetwork`: convolutions, pools, residual sums) the
query is the same checks on the graph's walk (:class:`dtd_formal.graph.trace.GraphTrace`) over Z3 terms
(:func:`graph_violation_query`): every node's value is a named real bounded by the graph's exact interval bounds
(:func:`dtd_formal.graph.bounds.interval_bounds`), an unstable ReLU a phase Boolean (:func:`graph_phase_hook`), and
each max pool is split on its first winner per window (:func:`graph_cases`: the windows whose winner the bounds do
not fix; each combination is one query on :meth:`~dtd_formal.graph.network.GraphNetwork.with_winners` with the
winner's region constraints). ``unsat`` in every case is a proof once :func:`encoding_disagreement` has compared
the exact and the Z3 graph walks at the sampled points; more combinations than :data:`MAXPOOL_CASES`, a timeout or
a rule body that fails on Z3 terms give Unknown with the reason.
"""

from __future__ import annotations

import itertools
import time
from fractions import Fraction
from typing import Any

import numpy as np
import z3

from ..errors import InputError, check_timeout
from ..exact import fast_to_fraction, to_fast, to_fraction_array
from ..network import Network
from ..properties import Property, get_property
from ..rules.base import Rule
from ..rules.domains import Box, Domain
from ..rules.ops import FAST_EXACT
from ..verdict import Proved, Refuted, Unknown, Verdict
from ..walk import Trace
from .bounds import interval_bounds
from .counterexample import ViolationCounterexample
from .encode import model_value, phase_activation, q, z3_layers
from .ops import Z3, from_z3, to_z3, to_z3_array
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
    """("sat", x, "") / ("unsat", None, "") / ("unknown", None, reason); x still needs the exact replay.

    On a graph: :func:`decide_graph_property`."""
    if getattr(net, "is_graph", False):
        return decide_graph_property(prop, rule, net, output, input_domain, timeout, root_domain, positive_output)
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


# ---------------------------------------------------------------------------------------------------- graphs
#: the most max-pool winner combinations (one Z3 query each) the graph encoding splits on before answering Unknown
MAXPOOL_CASES = 64


def graph_phase_hook(s: z3.Solver, net: Any, bounds: list[Any] | None, prefix: str = "",
                     linear: tuple[int, int] | None = None, raw: dict[int, Any] | None = None,
                     share: tuple[dict[int, Any], dict[int, Any]] | None = None) -> tuple[Any, dict[int, Any]]:
    r"""The forward hook of :meth:`GraphNetwork.evaluate <dtd_formal.graph.network.GraphNetwork.evaluate>` for Z3
    (the graph's :func:`~dtd_formal.smt.encode.phase_activation`).

    Every affine or summing node k (dense, conv, average pool, scale, residual add) gets named reals
    :math:`n_{k,i} = \text{term}` with the exact interval bounds :math:`l_{k,i} \le n_{k,i} \le h_{k,i}` of
    ``bounds`` (:func:`dtd_formal.graph.bounds.interval_bounds` over the same box); index maps pass their terms.
    A ReLU of input z is :math:`z` where :math:`l \ge 0`, 0 where :math:`h \le 0`, and otherwise a real h with a
    phase Boolean p: :math:`p \Rightarrow (z > 0 \wedge h = z)`, :math:`\neg p \Rightarrow (z \le 0 \wedge
    h = 0)`. Returns (hook, the values it produced per node).

    For a second walk of the same graph (the root walk of :func:`dtd_formal.graph.root_exit.graph_root_exit_query`):
    ``linear`` = (relu node, neuron) passes that neuron's input unchanged (the root semantics); ``raw`` records
    every node's terms before naming; ``share`` = (raw terms, values) of another walk: an entry whose term is
    structurally the same Z3 term as the other walk's takes that walk's named value (a unit the root does not move
    keeps x's variable), instead of a fresh copy.
    """
    seen: dict[int, Any] = {}

    def hook(k: int, v: Any) -> Any:
        node = net.nodes[k]
        if k == 0 or node.kind in ("gather", "concat", "input"):
            seen[k] = v
            return v
        terms = np.asarray(v, dtype=object).ravel().tolist()
        if raw is not None:
            raw[k] = terms
        other = None
        if share is not None and k in share[0]:
            other = (share[0][k], np.asarray(share[1][k], dtype=object).ravel().tolist())
        out: list[Any] = []
        if node.kind == "relu":
            src = node.inputs[0]
            z = np.asarray(seen[src], dtype=object).ravel().tolist()
            lo, hi = bounds[src] if bounds is not None else (None, None)
            for i, zi in enumerate(z):
                if linear is not None and linear == (k, i):
                    out.append(zi)
                elif other is not None and _same_term(terms[i], other[0][i]):
                    out.append(other[1][i])
                elif lo is not None and lo[i] >= 0:
                    out.append(zi)
                elif hi is not None and hi[i] <= 0:
                    out.append(z3.RealVal(0))
                else:
                    p, h = z3.Bool(f"{prefix}p{k}_{i}"), z3.Real(f"{prefix}a{k}_{i}")
                    s.add(z3.Implies(p, z3.And(zi > 0, h == zi)), z3.Implies(z3.Not(p), z3.And(zi <= 0, h == 0)))
                    out.append(h)
        else:
            lo, hi = bounds[k] if bounds is not None else (None, None)
            for i, term in enumerate(terms):
                if other is not None and _same_term(term, other[0][i]):
                    out.append(other[1][i])
                    continue
                n = z3.Real(f"{prefix}n{k}_{i}")
                s.add(n == term)
                if lo is not None:
                    s.add(n >= q(fast_to_fraction(lo[i])), n <= q(fast_to_fraction(hi[i])))
                out.append(n)
        seen[k] = to_z3_array(out)
        return seen[k]

    return hook, seen


def _same_term(a: Any, b: Any) -> bool:
    """Whether two entries are the same Z3 term (structurally, hash-consed) or the same number."""
    if isinstance(a, z3.ExprRef) and isinstance(b, z3.ExprRef):
        return a.eq(b)
    return not isinstance(a, z3.ExprRef) and not isinstance(b, z3.ExprRef) and a == b


def graph_cases(net: Any, bounds: list[Any], limit: int | None = None) -> list[dict[int, list[int]]] | str:
    """The max-pool winner combinations of the graph's Z3 encoding over a box: {maxpool node: window position per
    window}, one dict per combination of the windows' possible first winners
    (:func:`dtd_formal.graph.bounds.winner_candidates`); ``[{}]`` without max pools. More than ``limit``
    (default :data:`MAXPOOL_CASES`) combinations: the reason (a string)."""
    from ..graph.bounds import winner_candidates

    limit = MAXPOOL_CASES if limit is None else limit
    cands = {k: winner_candidates(node, *bounds[node.inputs[0]]) for k, node in enumerate(net.nodes)
             if node.kind == "maxpool"}
    open_ = [(k, r, c) for k, cs in cands.items() for r, c in enumerate(cs) if len(c) > 1]
    total = 1
    for _, _, c in open_:
        total *= len(c)
        if total > limit:
            return (f"the max pools have more than {limit} winner combinations on the box ({len(open_)} windows "
                    "whose winner the interval bounds do not fix); the Z3 case split was not run")
    base = {k: [c[0] for c in cs] for k, cs in cands.items()}
    cases = []
    for combo in itertools.product(*[c for _, _, c in open_]):
        case = {k: list(v) for k, v in base.items()}
        for (k, r, _), m in zip(open_, combo):
            case[k][r] = m
        cases.append(case)
    return cases


def _winner_region(net: Any, winners: dict[int, list[int]], seen: dict[int, Any], bounds: list[Any]) -> list[Any]:
    r"""Constraints that the pinned window positions are the first maxima: :math:`x_m > x_i` for the window's
    earlier inputs, :math:`x_m \ge x_i` for the later ones (those the exact bounds already decide are left out)."""
    out = []
    for k, win in winners.items():
        node = net.nodes[k]
        src = node.inputs[0]
        vals = np.asarray(seen[src], dtype=object).ravel().tolist()
        lo, hi = bounds[src]
        for ids, m in zip(node.idx, win):
            im = int(ids[m])
            done: set[int] = {im}
            for p, i in enumerate(ids):
                i = int(i)
                if i in done:
                    continue
                done.add(i)
                if p < m and not lo[im] > hi[i]:
                    out.append(to_z3(vals[im]) > to_z3(vals[i]))
                elif p > m and not lo[im] >= hi[i]:
                    out.append(to_z3(vals[im]) >= to_z3(vals[i]))
    return out


def graph_violation_query(prop: Property, rule: Rule, net: Any, output: int, low: np.ndarray, high: np.ndarray,
                          winners: dict[int, list[int]], bounds: list[Any], root_domain: Domain | None = None,
                          positive_output: bool = False) -> tuple[z3.Solver, list[z3.ArithRef]]:
    r"""A Z3 solver whose models are the inputs x of the box [low, high] where the pinned max-pool ``winners`` are
    the first maxima and ``prop`` fails on the graph (module docstring).

    The walk is :class:`~dtd_formal.graph.trace.GraphTrace` over :class:`~dtd_formal.smt.ops.Z3Ops` on
    ``net.with_winners(winners)`` with :func:`graph_phase_hook`; the failure condition is the property's own
    :meth:`~dtd_formal.properties.Property.violation`; ``positive_output`` adds :math:`f_c(x) \ge 0`.
    """
    from ..graph.trace import GraphTrace

    s = z3.SolverFor("QF_NRA")
    xs = [z3.Real(f"x{i}") for i in range(net.input_size)]
    for v, lo, hi in zip(xs, low, high):
        s.add(v >= q(fast_to_fraction(lo)), v <= q(fast_to_fraction(hi)))
    pinned = net.with_winners(winners) if winners else net
    hook, seen = graph_phase_hook(s, pinned, bounds)
    tr = GraphTrace(Z3, pinned, to_z3_array(xs), rule, output, hook)
    s.add(*_winner_region(net, winners, seen, bounds))
    s.add(prop.violation(tr, prop.context(rule, net, root_domain)))
    if positive_output:
        s.add(tr.acts[-1][output] >= 0)
    return s, xs


def decide_graph_property(prop: Property, rule: Rule, net: Any, output: int, input_domain: Domain, timeout: float,
                          root_domain: Domain | None = None, positive_output: bool = False
                          ) -> tuple[str, list[Fraction] | None, str]:
    """:func:`decide_property` on a graph: one query per max-pool winner combination (:func:`graph_cases`); "sat"
    at the first model, "unsat" only when every combination is unsat, else "unknown" with the reason."""
    from ..graph.bounds import interval_bounds as graph_bounds

    if not isinstance(input_domain, Box):
        return "unknown", None, "the graph's Z3 encoding reads a box of inputs"
    deadline = time.monotonic() + timeout
    low, high = input_domain.bounds(net.input_size)
    bounds = graph_bounds(net, low, high)
    cases = graph_cases(net, bounds)
    if isinstance(cases, str):
        return "unknown", None, cases
    for n, case in enumerate(cases):
        left = deadline - time.monotonic()
        if left <= 0:
            return "unknown", None, f"z3: timeout after {n} of {len(cases)} max-pool winner cases"
        try:
            s, xs = graph_violation_query(prop, rule, net, output, low, high, case, bounds, root_domain,
                                          positive_output)
        except Exception as exc:  # noqa: BLE001 - a rule body (or an operator) that does not run on Z3 terms
            return "unknown", None, f"no Z3 encoding of the rule's body on the graph ({type(exc).__name__}: {exc})"
        left = deadline - time.monotonic()  # building the query (the walk over Z3 terms) is not interruptible
        if left <= 0:
            return "unknown", None, f"z3: timeout while building the query of case {n + 1} of {len(cases)}"
        s.set("timeout", max(1, int(left * 1000)))
        res = s.check()
        if res == z3.sat:
            m = s.model()
            return "sat", [model_value(m, x) for x in xs], ""
        if res != z3.unsat:
            where = f" (max-pool winner case {n + 1} of {len(cases)})" if len(cases) > 1 else ""
            return "unknown", None, f"z3: {s.reason_unknown()}{where}"
    return "unsat", None, ""


def graph_case_count(net: Any, low: np.ndarray, high: np.ndarray) -> int | str:
    """How many max-pool winner cases the graph's Z3 encoding splits the box [low, high] into (the reason when
    it refuses)."""
    from ..graph.bounds import interval_bounds as graph_bounds

    cases = graph_cases(net, graph_bounds(net, low, high))
    return cases if isinstance(cases, str) else len(cases)


def _check_traces(prop: Property, rule: Rule, net: Any, xa: np.ndarray, output: int) -> tuple[Any, Any]:
    """(exact walk, builder of the Z3 walk at the same constant point) of a dense network or a graph (max pools
    pinned to their first winners at x, as in the query's case of x)."""
    if getattr(net, "is_graph", False):
        from ..graph.trace import GraphTrace

        exact = GraphTrace(FAST_EXACT, net, to_fast(xa), rule, output)
        winners = net.first_winners(exact.vals)
        pinned = net.with_winners(winners) if winners else net
        return exact, lambda: GraphTrace(Z3, pinned, Z3.lift(xa), rule, output)
    exact = Trace(FAST_EXACT, net.fast_layers, net.relu_flags, to_fraction_array(xa), rule, output)
    return exact, lambda: Trace(Z3, z3_layers(net), net.relu_flags, Z3.lift(xa), rule, output)


#: face points of the encoding check: the box's centre with one coordinate at a bound (at most this many)
FACE_POINTS = 16


def check_points(low: np.ndarray, high: np.ndarray, sampled: list[np.ndarray] | None = None) -> list[np.ndarray]:
    r"""The exact points where a Z3 ``unsat`` is checked against exact arithmetic (:func:`encoding_disagreement`):
    the first 8 sampled points (default: the box's corners low, high and its centre c), then the face centres
    :math:`c + (l_i - c_i) e_i` and :math:`c + (h_i - c_i) e_i` (at most :data:`FACE_POINTS`): a rule's zero
    normalisers and ties often lie on the faces of the box (an input at its bound 0), where random points never
    land."""
    centre = (low + high) / 2
    points = list(sampled[:8]) if sampled else [low, high, centre]
    for i in range(len(low)):
        for v in (low[i], high[i]):
            if len(points) >= 8 + FACE_POINTS or v == centre[i]:
                continue
            p = centre.copy()
            p[i] = v
            points.append(p)
    return points


def encoding_disagreement(prop: Property, rule: Rule, net: Network, x: Any, output: int,
                          root_domain: Domain | None = None) -> str | None:
    """Where the property's Z3 encoding and its exact evaluation differ at the exact point x, or None.

    The property's checks run twice on the same walk: in exact arithmetic, and over Z3 terms of the constant x
    (every term then simplifies to a number). Each check's failure condition and values must agree; a rule body
    that behaves differently on Z3 terms (it inspects its arguments' types, bypasses the ops namespace, reads a
    float's decimal text) is caught here before a Z3 answer is trusted. On a graph both walks are
    :class:`~dtd_formal.graph.trace.GraphTrace` (the Z3 one with the max pools pinned to their winners at x).
    """
    xa = net.as_input(x)
    ctx = prop.context(rule, net, root_domain)
    exact_trace, z3_trace = _check_traces(prop, rule, net, xa, output)
    exact = prop.checks(exact_trace, ctx)  # type: ignore[misc]
    try:
        terms = prop.checks(z3_trace(), ctx)  # type: ignore[misc]
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
            if len(ez) != len(ee) or any(Fraction(p) != fast_to_fraction(q_) for p, q_ in zip(ez, ee)):
                return f"{where}: {key} differs between Z3 terms and exact arithmetic"
    return None


def find_violation(net: Network, rule: Rule, property: str, domain: Any = (0, 1), timeout: float = 60.0,
                   output: int = 0, n_samples: int = 64, seed: int = 0) -> Verdict:
    """Search the box for an x violating ``property`` (module docstring): Refuted / Proved / Unknown.

    ``property`` is a catalogue name with a Z3 encoding (conservation, positivity, root-on-hyperplane,
    root-in-domain, equals-gradient-x-input; snake_case accepted); layer-1 roots must lie in the rule's domain,
    deeper ones in a >= 0. The region properties are searched by :func:`dtd_formal.smt.root_exit.find_root_exit`.
    On an operator graph the Z3 stage is :func:`decide_graph_property` (the same checks on the graph's walk, max
    pools split on their winners); its Proved certificate names the encoding and the number of winner cases.
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
    graph = getattr(net, "is_graph", False)
    if left <= 0.05:
        return Unknown(statement, "no violation found; no time left for Z3", question=question)
    st, x, why = decide_property(prop, rule, net, output, Box(low, high), left)
    if st == "sat" and x is not None:
        cex = ViolationCounterexample.build(question, net, rule, x, "z3")
        if cex is not None:
            return Refuted(statement, cex, method="z3 + exact replay", question=question)
        return Unknown(statement, "z3 model did not replay exactly (irrational or boundary witness)", question=question)
    if st == "unsat":
        for xc in check_points(low, high, checked):
            why = encoding_disagreement(prop, rule, net, xc, output) or ""
            if why:
                return Unknown(statement, f"z3 answered unsat, but its encoding of the rule disagrees with exact "
                                          f"arithmetic at x = {[str(v) for v in xc]}: {why}", question=question)
        if graph:
            return Proved(statement, "z3 (exact, the property's checks on the graph's walk over Z3Ops)",
                          graph_certificate(net, low, high), question=question)
        return Proved(statement, "z3 (exact, the property's checks over Z3Ops)", {"solver": "z3", "logic": "QF_NRA"},
                      question=question)
    return Unknown(statement, f"no violation found by sampling; {why}" if why else "no violation found; "
                   "no proof within the time budget", question=question)


def graph_certificate(net: Any, low: np.ndarray, high: np.ndarray) -> dict[str, Any]:
    """The certificate of a graph's Z3 proof: solver, logic, the encoding and its number of max-pool winner cases
    (replay re-derives the count and re-runs every case)."""
    return {"solver": "z3", "logic": "QF_NRA", "encoding": "graph", "maxpool_cases": graph_case_count(net, low, high)}


__all__ = ["find_violation", "violation_query", "decide_property", "encoding_disagreement", "check_points",
           "graph_violation_query", "decide_graph_property", "graph_phase_hook", "graph_cases", "graph_case_count",
           "graph_certificate", "MAXPOOL_CASES", "FACE_POINTS"]

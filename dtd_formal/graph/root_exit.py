r"""``find_root_exit`` on operator graphs: Refuted with an exact, replayable counterexample, Proved (trivially, by
interval bounds, or by Z3), Unknown otherwise (with the reason).

The question is the dense engine's (:func:`dtd_formal.smt.problem.root_exit_question`: network digest, rule, layer,
neuron as a flat index, scope, variant, root definition, output, input box), so verdict files, reports and
``replay`` work the same way. Engines:

- ``"falsify"``: the box's centre, then seeded random points of the box and of its corners, each classified
  exactly (:func:`dtd_formal.graph.explain.graph_root_regions`, its certified float pass deciding most patterns and
  exact arithmetic the rest); an exit becomes a :class:`GraphRootExitCounterexample`, re-derived and confirmed by
  an independent plain Fraction evaluation before it is returned. Sampling can only refute.
- ``"trivial"`` proofs: the neuron carries no relevance (not the explained output of the last layer, or never
  active on the box by exact interval bounds, :mod:`dtd_formal.graph.bounds`), or the scope holds no other ReLU
  neuron and no max pool (nothing can change). Replay re-derives the reason.
- the *interval proof* (:func:`interval_root_proof`): the rule's own root step on exact intervals over the box,
  the root box pushed through the graph above; Proved when no unit of the scope can change between an input and
  its root. Replay re-runs it.

- ``"z3"``: the complete decision (:func:`z3_root_exit_proof`) once sampling (:data:`Z3_SAMPLING_SHARE` of the
  budget) and the interval proof leave the question open. The query (:func:`graph_root_exit_query`) is x's walk
  (:class:`~dtd_formal.graph.trace.GraphTrace` over :class:`~dtd_formal.smt.ops.Z3Ops` with
  :func:`dtd_formal.smt.violations.graph_phase_hook`: node values named with exact interval bounds, unstable
  ReLUs as phase Booleans), :math:`z_j(x) > 0`, the rule's own root step with :math:`w_j \cdot v_j \ne 0`, the
  root :math:`\tilde a = a - t v_j` in layer l's input space (a safe-division step as the polynomial
  :math:`t\,(w_j \cdot v_j) = n`), the graph evaluated from there with its own phases
  (units the root does not move share x's variables; bounded by the interval root box when the rule's step runs
  on intervals), and the exit disjunction :func:`graph_exit_formula` (strict sign flips, neuron j excluded;
  disjoint max-pool winner sets). Max pools are exact If-chains at the root; at x too for true roots, while
  paper-code roots (whose step reads the backward pass) split x's pools on their first winners
  (:func:`root_exit_cases`, :func:`dtd_formal.smt.violations.graph_cases`, more than
  :data:`~dtd_formal.smt.violations.MAXPOOL_CASES` cases: Unknown). A model counts after the exact replay
  (:class:`GraphRootExitCounterexample`); ``unsat`` counts after :func:`graph_root_exit_disagreement` finds exact
  and Z3 evaluations of the root step, the root, the scope's signs and winners and the exit condition agreeing at
  the sampled points and the box's face centres. The "affine_map" variant asks the upper-scope pattern query (the
  map changes only with a unit above): unsat proves it, a model is replayed for the variant itself.

The dense engines relax, LP and t-slicing read :class:`~dtd_formal.network.Network` layers; on a graph they are
not run (named in the Unknown reason). A timeout, a rule body that fails on Z3 terms, too many winner cases or a
disagreement is Unknown with the reason, never a guess.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import InputError, check_timeout
from ..exact import fast_to_fraction, sign, to_float, to_fraction, to_fraction_array
from ..rules.base import Rule
from ..smt.counterexample import (RootExitCounterexample, _check_question, _field, _int_lists, in_box,
                                  question_from_json)
from ..smt.problem import parse_box, root_exit_question
from ..verdict import Proved, Question, Refuted, Unknown, Verdict
from .network import GraphNetwork

#: engines of a graph search (the dense engines' names are accepted and skipped with the reason)
GRAPH_ENGINES = ("falsify", "z3")
#: the share of a neuron's time budget the falsifier may spend when Z3 follows
Z3_SAMPLING_SHARE = 0.4
#: inputs classified per batch of the falsifier
_BATCH = 16


def trivial_graph_reason(net: GraphNetwork, layer: int, neuron: int, scope: str, variant: str, output: int,
                         bounds: list[Any] | None = None) -> str | None:
    """Why the question holds without a search, or None: the neuron carries no relevance (not the explained
    output; or, with ``bounds`` = :func:`dtd_formal.graph.bounds.interval_bounds` of the question's box, never
    active on the box), or nothing else that could change is left: no other ReLU neuron in the scope (for the
    "affine_map" variant the scope is every layer above, since the map changes with any upper flip)."""
    if variant == "affine_map":
        scope = "upper"
    info = net.layer(layer)
    if net.output in (info.node, info.relu_node) and neuron != output:
        return "the neuron carries no relevance (not the explained output)"
    if bounds is not None and info.relu_node is not None and not bounds[info.node][1][neuron] > 0:
        return "z_j <= 0 on the whole box (exact interval bounds): the neuron is never active, it has no root"
    from .explain import downstream

    live = downstream(net, info.input_node)
    others = 0
    for k in live:
        node = net.nodes[k]
        if node.kind == "maxpool" and scope == "upper":
            return None
        if node.kind == "relu" and (scope == "upper" or k == info.relu_node) and k != info.input_node:
            others += node.n_out - (1 if k == info.relu_node else 0)
    return None if others > 0 else "no other ReLU neuron in the scope"


def root_interval_bounds(net: GraphNetwork, rule: Rule, layer: int, neuron: int, definition: str,
                         bounds: list[Any]) -> list[Any] | str:
    r"""Exact interval bounds of every node at the roots of (layer, neuron) over the box, or the reason there are
    none.

    The rule's own ``root_step`` runs on intervals (:class:`dtd_formal.graph.bounds.IntervalOps`) over the bounds
    of the layer input (``bounds`` = :func:`dtd_formal.graph.bounds.interval_bounds` of the box), giving boxes for
    t, the direction and the root :math:`\tilde a = a - t v` (dependencies dropped: loose but sound); the root box
    is propagated through the graph above (neuron j linear). Nodes that do not depend on layer l's input keep
    their bounds at x.
    """
    from ..walk import RuleEvaluationError, call_rule
    from .bounds import Interval, IntervalOps, Undecided, interval_bounds, intervals
    from .operators import gather_rows
    from .patch_ops import PatchOps

    if definition != "true":
        return "the interval proof covers true roots only (paper-code steps need the upper relevance)"
    info = net.layer(layer)
    node = net.nodes[info.node]
    ops = IntervalOps()
    lo_a, hi_a = bounds[info.input_node]
    a_iv = intervals(lo_a, hi_a)
    try:
        if node.kind == "conv":
            from ..rules.ops import FAST_EXACT

            Wg, b = node.arrays(FAST_EXACT)  # type: ignore[attr-defined]
            idx = node.idx[[neuron]]  # type: ignore[attr-defined]
            lops: Any = PatchOps(ops, idx, len(a_iv))
            a_rows, W_rows = gather_rows(ops, a_iv, idx), Wg[[neuron]]
        else:
            from ..rules.ops import FAST_EXACT

            W, b = node.arrays(FAST_EXACT)  # type: ignore[attr-defined]
            idx, lops, a_rows, W_rows = None, ops, a_iv, W[[neuron]]
        t, V, den = call_rule(rule, "root_step", lops, a_rows, W_rows, b[[neuron]], None, "true", layer=layer,
                              shapes=[(1,), tuple(np.shape(W_rows)), (1,)])
        d = den[0] if isinstance(den[0], Interval) else Interval(den[0])
        if d.lo <= 0 <= d.hi:
            return "the denominator w_j . v_j is not bounded away from 0 on the box"
        root = a_iv.copy()
        cols = range(len(a_iv)) if idx is None else [int(i) for i in idx[0]]
        for m, i in enumerate(cols):
            if i >= 0:
                root[i] = a_iv[i] - t[0] * V[0][m]
    except (Undecided, RuleEvaluationError) as exc:
        return f"the rule's root step is not decided on intervals ({exc})"
    r_lo = np.array([v.lo for v in root], dtype=object)
    r_hi = np.array([v.hi for v in root], dtype=object)
    linear = (info.relu_node, neuron) if info.relu_node is not None else None
    return interval_bounds(net, r_lo, r_hi, start=info.input_node, base=bounds, linear=linear)


def interval_root_proof(net: GraphNetwork, rule: Rule, layer: int, neuron: int, scope: str, variant: str,
                        definition: str, bounds: list[Any]) -> str | None:
    r"""Prove with exact interval arithmetic that no input of the box has a root of (layer, neuron) leaving the
    region; None when proved, else the reason it could not.

    The rule's own ``root_step`` runs on intervals (:class:`dtd_formal.graph.bounds.IntervalOps`) over the
    bounds of the layer input on the box, giving boxes for t, the direction and the root
    :math:`\tilde a = a - t v` (for every input of the box at once; dependencies are dropped, so the boxes are
    loose but sound). The root box is propagated through the graph above (neuron j linear). The exit is
    impossible when no ReLU input of the scope can be positive at one point and negative at the other
    (:math:`h_x > 0 \wedge l_r < 0` or :math:`l_x < 0 \wedge h_r > 0` never holds) and every max pool of the
    scope has a window position that certainly wins at both. For the "affine_map" variant the scope is every
    layer above (the map changes only with such a change).
    """
    from .explain import downstream

    if variant == "affine_map":
        scope = "upper"
    rb = root_interval_bounds(net, rule, layer, neuron, definition, bounds)
    if isinstance(rb, str):
        return rb
    info = net.layer(layer)
    for k in sorted(downstream(net, info.input_node) - {info.input_node}):
        op = net.nodes[k]
        if scope == "layer" and k != info.relu_node:
            continue
        if op.kind == "relu":
            (lx, hx), (lr, hr) = bounds[op.inputs[0]], rb[op.inputs[0]]
            for n in range(op.n_out):
                if k == info.relu_node and n == neuron:
                    continue
                if (hx[n] > 0 and lr[n] < 0) or (lx[n] < 0 and hr[n] > 0):
                    return f"neuron {n} of {op.name!r} may change sign between an input and its root"
        elif op.kind == "maxpool":
            (lx, hx), (lr, hr) = bounds[op.inputs[0]], rb[op.inputs[0]]
            for w, row in enumerate(op.idx):  # type: ignore[attr-defined]
                ids = sorted({int(i) for i in row})
                sure = [m for m in ids if all(lx[m] >= hx[o] and lr[m] >= hr[o] for o in ids if o != m)]
                if not sure:
                    return f"window {w} of {op.name!r} may change its winner"
    return None


# ---------------------------------------------------------------------------------------------------- counterexample
def graph_patterns(net: GraphNetwork, x: np.ndarray, layer: int, neuron: int, root: np.ndarray
                   ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[int, list[set[int]]],
                              dict[int, list[set[int]]]]:
    """ReLU input signs and max-pool winner sets at x and at the root (neuron j linear), by plain Fraction
    evaluation of the graph (no certified floats, no residues): (signs before, after, winners before, after) for
    the nodes downstream of layer l's input."""
    from ..rules.ops import EXACT
    from .explain import downstream

    info = net.layer(layer)
    vals = net.evaluate(EXACT, net.as_input(x))
    linear = (info.relu_node, neuron) if info.relu_node is not None else None
    rvals = net.evaluate(EXACT, vals[0], base=vals, override=(info.input_node, np.asarray(root, dtype=object)),
                         linear=linear)
    live = downstream(net, info.input_node) - {info.input_node}
    sb, sa, wb, wa = {}, {}, {}, {}
    for k in sorted(live):
        node = net.nodes[k]
        if node.kind == "relu":
            sb[k], sa[k] = sign(vals[node.inputs[0]]), sign(rvals[node.inputs[0]])
        elif node.kind == "maxpool":
            wb[k], wa[k] = node.winners(vals[node.inputs[0]]), node.winners(rvals[node.inputs[0]])  # type: ignore[attr-defined]
    return sb, sa, wb, wa


def graph_flips(net: GraphNetwork, layer: int, neuron: int, scope: str, sb: dict[int, Any], sa: dict[int, Any],
                wb: dict[int, Any], wa: dict[int, Any]) -> list[tuple[Any, ...]]:
    """The textbook exit test: ReLU neurons of the scope with strictly opposite signs (neuron j excluded) as
    (layer or node name, neuron), and max-pool windows whose winner sets are disjoint as ("maxpool", name,
    window)."""
    info = net.layer(layer)
    label = {inf.relu_node: inf.layer for inf in net.layers if inf.relu_node is not None}
    flips: list[tuple[Any, ...]] = []
    for k in sorted(set(sb) | set(wb)):
        if scope == "layer" and k != info.relu_node:
            continue
        if k in sb:
            for n, (u, v) in enumerate(zip(sb[k], sa[k])):
                if not (k == info.relu_node and n == neuron) and int(u) * int(v) < 0:
                    flips.append((label.get(k, net.nodes[k].name), n))
        else:
            flips.extend(("maxpool", net.nodes[k].name, w) for w, (b, a) in enumerate(zip(wb[k], wa[k])) if not b & a)
    return flips


@dataclass
class GraphRootExitCounterexample(RootExitCounterexample):
    """A root-exit counterexample on an operator graph: the fields of :class:`RootExitCounterexample`, with
    ``patterns_before/after`` the ReLU sign lists of the nodes downstream of layer l's input (graph order) and
    ``flipped`` entries (layer or node name, neuron) or ("maxpool", node name, window)."""

    kind = "root_exit"

    @classmethod
    def derive(cls, question: Question, net: Any, rule: Rule, x: Any, found_by: str = ""
               ) -> tuple["GraphRootExitCounterexample | None", str]:
        from .explain import graph_root_regions, graph_roots

        try:
            xa = to_fraction_array(x, "counterexample input")
        except InputError as exc:
            return None, str(exc)
        if not in_box(xa, question, net.input_size):
            return None, "the input is not in the question's box"
        q = question.params
        layer, neuron = int(q["layer"]), int(q["neuron"])
        r = graph_roots(net, xa, rule, layer=layer, output=int(q["output"]), definition=str(q["definition"]),
                        neurons=[neuron])
        if neuron not in r.points:
            return None, f"neuron {neuron} has no root at this input ({r.skipped.get(neuron, 'not relevant')})"
        root, step = r.points[neuron], r.steps[neuron]
        sb, sa, wb, wa = graph_patterns(net, xa, layer, neuron, root)
        flips = graph_flips(net, layer, neuron, str(q["scope"]), sb, sa, wb, wa)
        rep = graph_root_regions(net, xa, rule, scope=str(q["scope"]), output=int(q["output"]),
                                 definition=str(q["definition"]), layers=[layer], neurons=[neuron])
        leaves_map = bool(rep.records and rep.records[0].leaves_affine_map)
        cex = cls(question, xa, np.asarray(root, dtype=object), Fraction(step),
                  [[int(v) for v in s] for s in sb.values()], [[int(v) for v in s] for s in sa.values()],
                  flips, bool(flips), leaves_map, found_by)
        cex.fast_flipped = rep.records[0].flipped if rep.records else None  # what the fast classification says
        holds = cex.leaves_pattern if q["variant"] == "pattern" else cex.leaves_affine_map
        return (cex, "") if holds else (None, "the root does not leave the region")

    def check(self, net: Any, rule: Rule, reference: bool | None = None) -> list[str]:
        """Mismatches against the exact re-derivation (empty: confirmed); also asks the fast classification
        (certified floats) of the re-derivation to agree with its plain Fraction evaluation."""
        bad = _check_question(self.question, net, rule)
        if bad:
            return bad
        fresh, why = type(self).derive(self.question, net, rule, self.input, self.found_by)
        if fresh is None:
            return [f"input: {why}"]
        bad.extend(self.mismatches(fresh))
        fast = getattr(fresh, "fast_flipped", None)
        if fast is None or [tuple(f) for f in fast] != [tuple(f) for f in fresh.flipped]:
            bad.append("the fast classification does not confirm the flipped units")
        return bad

    @classmethod
    def from_json(cls, data: Any, source: str = "counterexample") -> "GraphRootExitCounterexample":
        if not isinstance(data, dict) or data.get("kind") != cls.kind:
            raise InputError(f"{source}: not a root-exit counterexample")
        q = question_from_json(data.get("question"), "root-exit", source)
        flipped = _field(data, "flipped", list, source)
        ok = all(isinstance(f, list) and (
            (len(f) == 2 and isinstance(f[0], (int, str)) and isinstance(f[1], int)) or
            (len(f) == 3 and f[0] == "maxpool" and isinstance(f[1], str) and isinstance(f[2], int)))
            and not any(isinstance(v, bool) for v in f) for f in flipped)
        if not ok:
            raise InputError(f"{source}: field 'flipped' must hold [layer, neuron] or [\"maxpool\", name, window]")
        return cls(q, to_fraction_array(_field(data, "input", list, source), f"{source}: input"),
                   to_fraction_array(_field(data, "root", list, source), f"{source}: root"),
                   to_fraction(_field(data, "step", str, source), f"{source}: step"),
                   _int_lists(_field(data, "patterns_before", list, source), "patterns_before", source),
                   _int_lists(_field(data, "patterns_after", list, source), "patterns_after", source),
                   [tuple(f) for f in flipped],
                   _field(data, "leaves_pattern", bool, source), _field(data, "leaves_affine_map", bool, source),
                   str(data.get("found_by", "")))

    def to_pytest(self, net: Any, name: str | None = None, network_file: str | None = None) -> str:
        """A pytest regression test: loads the network, rebuilds the input and asserts the exit."""
        import json

        from ..exact import array_to_json
        from ..smt.counterexample import _network_loader

        name = name or f"test_root_exit_layer{self.layer}_neuron{self.neuron}"
        attr = "leaves_pattern" if self.variant == "pattern" else "leaves_affine_map"
        load = _network_loader(net, self.question.network, network_file).replace(
            "dtd.Network.from_json(", "dtd.graph.GraphNetwork.from_json(")
        return (
            "import json\n"
            "from fractions import Fraction\n\n"
            "import dtd_formal as dtd\n"
            "from dtd_formal.rules.parse import parse_rule\n\n\n"
            f"def {name}() -> None:\n"
            f"{load}"
            f"    x = [Fraction(v) for v in json.loads({json.dumps(array_to_json(self.input))!r})]\n"
            f"    rule = parse_rule({self.rule!r})\n"
            f"    rec = [q for q in dtd.root_regions(net, [x], rule, scope={self.scope!r}, output={self.output}, "
            f"layers={self.layer}, definition={self.definition!r}).records if q.neuron == {self.neuron}][0]\n"
            f"    assert rec.{attr}\n"
            f"    assert rec.step == Fraction({str(self.step)!r})\n"
        )


# ---------------------------------------------------------------------------------------------------- z3
def _x_winners_split(definition: str) -> bool:
    r"""Whether x's walk splits the max pools on their first winners: only when the root step reads the backward
    pass (paper-code roots: :math:`t = R_j / (w_j \cdot v_j)`, and a max pool's relevance goes to its first
    winner); for true roots x's walk needs forward values only, and a max pool is its exact If-chain."""
    return definition == "paper-code"


def root_exit_cases(net: GraphNetwork, bounds: list[Any], definition: str) -> list[dict[int, list[int]]] | str:
    """The max-pool winner cases of the graph's root-exit query over a box: ``[{}]`` (one query) for true roots,
    :func:`dtd_formal.smt.violations.graph_cases` for paper-code roots (the reason, a string, beyond
    :data:`~dtd_formal.smt.violations.MAXPOOL_CASES`)."""
    from ..smt.violations import graph_cases

    return graph_cases(net, bounds) if _x_winners_split(definition) else [{}]


def _z3_root(a: Any, t: Any, V: Any, idx: np.ndarray | None) -> Any:
    r"""The root :math:`\tilde a = a - t\, v_j` over Z3 terms (on the receptive field ``idx`` of a conv neuron;
    :meth:`dtd_formal.graph.explain.LayerRoots.point` in the numbers of Z3)."""
    from ..smt.ops import to_z3, to_z3_array

    p = list(np.asarray(a, dtype=object).ravel())
    v = np.asarray(V, dtype=object)[0]
    tt = to_z3(t)
    cols = range(len(p)) if idx is None else [int(i) for i in idx[0]]
    for m, i in enumerate(cols):
        if i >= 0:
            p[i] = to_z3(p[i]) - tt * to_z3(v[m])
    return to_z3_array(p)


def _step_constraint(t: Any, term: Any) -> Any:
    r""":math:`t = \text{term}`; the safe-division shape :math:`\mathrm{If}(d = 0, 0, n / d)` of the rule's step
    (``ops.safe_divide``) is written as the equivalent polynomial :math:`\mathrm{If}(d = 0, t = 0, t\,d = n)` (no
    division for the nonlinear solver; the same models)."""
    import z3

    if z3.is_app_of(term, z3.Z3_OP_ITE):
        c, zero, quot = term.children()
        if (z3.is_app_of(quot, z3.Z3_OP_DIV) and z3.is_eq(c) and c.arg(0).eq(quot.arg(1))
                and z3.is_rational_value(c.arg(1)) and c.arg(1).as_fraction() == 0
                and z3.is_rational_value(zero) and zero.as_fraction() == 0):
            return z3.If(c, t == 0, t * quot.arg(1) == quot.arg(0))
    return t == term


#: the solver strategies :func:`decide_graph_root_exit` alternates (the same assertions; nlsat is erratic: what
#: one strategy decides at once the other may not decide in minutes)
STRATEGIES = ("qf_nra", "nlsat")
#: the first time slice of each strategy (seconds); it doubles every round
FIRST_SLICE = 0.5


def _solver(strategy: str) -> Any:
    import z3

    if strategy == "qf_nra":
        return z3.SolverFor("QF_NRA")
    return z3.Then("simplify", "propagate-values", "solve-eqs", "qfnra-nlsat").solver()


def graph_exit_formula(net: GraphNetwork, layer: int, neuron: int, scope: str, xv: list[Any], rv: list[Any],
                       bounds: list[Any] | None = None, root_bounds: list[Any] | None = None) -> Any:
    r"""The textbook exit condition between x (node values ``xv``) and its root (``rv``, the graph evaluated from
    layer l's input with the root in place), as a Z3 formula (:func:`graph_flips`, :func:`dtd_formal.graph.explain.
    graph_root_regions`):

    .. math:: \bigvee_{(k,n)} (z_{k,n} > 0 \wedge \tilde z_{k,n} < 0) \vee (z_{k,n} < 0 \wedge \tilde z_{k,n} > 0)
              \;\vee\; \bigvee_{\text{windows } w} \neg \bigvee_{m \in w} \Big(\bigwedge_{i \in w} u_m \ge u_i
              \wedge \bigwedge_{i \in w} \tilde u_m \ge \tilde u_i\Big)

    over the ReLU inputs z of the scope (neuron j of layer l excluded: it is held linear) and, for scope "upper",
    the max-pool windows (input u) whose winner sets at x and at the root are disjoint (distinct inputs of the
    window). Entries that are the same term at both points, and pairs the exact bounds rule out, are left out.
    """
    import z3

    from ..smt.ops import to_z3
    from ..smt.violations import _same_term
    from .explain import downstream

    info = net.layer(layer)
    live = downstream(net, info.input_node) - {info.input_node}
    terms: list[Any] = []
    for k in sorted(live):
        node = net.nodes[k]
        if scope == "layer" and k != info.relu_node:
            continue
        src = node.inputs[0]
        if src not in live or node.kind not in ("relu", "maxpool"):
            continue
        X, R = np.asarray(xv[src], dtype=object).ravel(), np.asarray(rv[src], dtype=object).ravel()
        if node.kind == "relu":
            for n in range(node.n_out):
                if (k == info.relu_node and n == neuron) or _same_term(X[n], R[n]):
                    continue
                if bounds is not None and root_bounds is not None:
                    (lx, hx), (lr, hr) = bounds[src], root_bounds[src]
                    if not ((hx[n] > 0 and lr[n] < 0) or (lx[n] < 0 and hr[n] > 0)):
                        continue
                a, b = to_z3(X[n]), to_z3(R[n])
                terms.append(z3.Or(z3.And(a > 0, b < 0), z3.And(a < 0, b > 0)))
            continue
        for ids in node.idx:  # type: ignore[attr-defined]
            first = sorted({int(i) for i in ids})
            if all(_same_term(X[i], R[i]) for i in first):
                continue
            common = [z3.And(*[to_z3(X[m]) >= to_z3(X[i]) for i in first if i != m],
                             *[to_z3(R[m]) >= to_z3(R[i]) for i in first if i != m]) for m in first]
            terms.append(z3.Not(z3.Or(common)) if len(common) > 1 else z3.BoolVal(False))
    return z3.Or(terms) if terms else z3.BoolVal(False)


def _needed_nodes(net: GraphNetwork, layer: int, scope: str, definition: str) -> set[int] | None:
    """The nodes whose values the root-exit query reads (None: all of them): the ancestors of neuron j's layer and
    input and of the inputs of the scope's ReLUs and max pools. Every other node is left unnamed and unconstrained
    (its constraints would be functions of the inputs within sound bounds: dropping them changes no answer).
    Paper-code roots read the backward pass, hence every node."""
    from .explain import downstream

    if definition == "paper-code":
        return None
    info = net.layer(layer)
    live = downstream(net, info.input_node) - {info.input_node}
    wanted = {info.node, info.input_node}
    for k in live:
        node = net.nodes[k]
        if node.kind in ("relu", "maxpool") and (scope == "upper" or k == info.relu_node):
            wanted.add(node.inputs[0])
    out: set[int] = set()
    stack = list(wanted)
    while stack:
        k = stack.pop()
        if k not in out:
            out.add(k)
            stack.extend(net.nodes[k].inputs)
    return out


def _restricted(hook: Any, seen: dict[int, Any], needed: set[int] | None) -> Any:
    """``hook`` on the needed nodes only; the others pass their terms unnamed (see :func:`_needed_nodes`)."""
    if needed is None:
        return hook

    def h(k: int, v: Any) -> Any:
        if k in needed:
            return hook(k, v)
        seen[k] = v
        return v

    return h


def graph_root_exit_query(net: GraphNetwork, rule: Rule, layer: int, neuron: int, scope: str, output: int,
                          definition: str, low: np.ndarray, high: np.ndarray, winners: dict[int, list[int]],
                          bounds: list[Any], root_bounds: list[Any] | None = None) -> tuple[Any, list[Any]]:
    r"""A Z3 solver whose models are the inputs x of the box [low, high] (in the max-pool winner case
    ``winners``) whose root of neuron j of layer l leaves x's linear region in ``scope`` (pattern variant).

    - x's walk: :class:`~dtd_formal.graph.trace.GraphTrace` over Z3 terms with
      :func:`dtd_formal.smt.violations.graph_phase_hook` (node values named, exact interval ``bounds``, unstable
      ReLUs as phase Booleans); max pools pinned to ``winners`` (:meth:`GraphNetwork.with_winners` and the
      winner-region inequalities) when x's walk is split, else their exact If-chains;
    - the explained neuron held active, :math:`z_j(x) > 0` (a layer with a ReLU), and :math:`w_j \cdot v_j \ne 0`;
    - the rule's own root step on the layer view (:func:`dtd_formal.graph.explain.graph_layer_roots`): a real t
      equal to its step term, the root :math:`\tilde a = a - t v_j` in layer l's input space;
    - the root's walk: the graph evaluated from layer l's input with the root in place (every node not downstream
      keeps x's value, neuron j held linear), with its own named values and phase Booleans (bounded by
      ``root_bounds``, :func:`root_interval_bounds`, when given; units the root does not move share x's
      variables), max pools as If-chains;
    - the exit disjunction :func:`graph_exit_formula`.
    """
    import z3

    from ..smt.encode import q
    from ..smt.ops import Z3, to_z3, to_z3_array
    from ..smt.violations import _winner_region, graph_phase_hook
    from .explain import graph_layer_roots
    from .trace import GraphTrace

    s = z3.SolverFor("QF_NRA")
    xs = [z3.Real(f"x{i}") for i in range(net.input_size)]
    for v, lo, hi in zip(xs, low, high):
        s.add(v >= q(fast_to_fraction(lo)), v <= q(fast_to_fraction(hi)))
    pinned = net.with_winners(winners) if winners else net
    raw: dict[int, Any] = {}
    needed = _needed_nodes(net, layer, scope, definition)
    hook, seen = graph_phase_hook(s, pinned, bounds, raw=raw)
    tr = GraphTrace(Z3, pinned, to_z3_array(xs), rule, output, _restricted(hook, seen, needed))
    if winners:
        s.add(*_winner_region(net, winners, seen, bounds))
    info = net.layer(layer)
    if info.relu_node is not None:
        s.add(to_z3(tr.vals[info.node][neuron]) > 0)
    R = tr.relevance[layer][[neuron]] if definition == "paper-code" else None
    lr = graph_layer_roots(pinned, Z3, tr.vals, layer, tr.rule_at(layer), [neuron], R, definition)
    # the rule's terms simplified (constant masks such as If(w > 0, 1, 0) folded; the same terms, fewer cases)
    s.add(z3.simplify(to_z3(lr.den[0])) != 0)
    t = z3.Real("t")
    s.add(_step_constraint(t, z3.simplify(to_z3(lr.t[0]))))
    V = np.array([[z3.simplify(to_z3(v)) for v in np.asarray(lr.V, dtype=object)[0]]], dtype=object)
    root = _z3_root(tr.vals[info.input_node], t, V, lr.idx)
    linear = (info.relu_node, neuron) if info.relu_node is not None else None
    rhook, rseen = graph_phase_hook(s, net, root_bounds, prefix="r_", linear=linear, share=(raw, seen))
    rseen[info.input_node] = root
    rvals = net.evaluate(Z3, tr.vals[0], base=tr.vals, override=(info.input_node, root), linear=linear,
                         hook=_restricted(rhook, rseen, needed))
    s.add(graph_exit_formula(net, layer, neuron, scope, tr.vals, rvals, bounds, root_bounds))
    return s, xs


def decide_graph_root_exit(net: GraphNetwork, rule: Rule, layer: int, neuron: int, scope: str, output: int,
                           definition: str, low: np.ndarray, high: np.ndarray, bounds: list[Any], timeout: float,
                           root_bounds: list[Any] | None = None) -> tuple[str, list[Fraction] | None, str]:
    """("sat", x, "") at the first model of any winner case (x still needs the exact replay), ("unsat", None, "")
    when every case (:func:`root_exit_cases`) is unsat, else ("unknown", None, reason): too many cases, a timeout,
    a rule body that does not run on Z3 terms.

    Each case's assertions go to the :data:`STRATEGIES` in turn (Z3's QF_NRA solver; simplification, equation
    solving and nlsat), with time slices from :data:`FIRST_SLICE` seconds doubling every round until the budget is
    spent: both decide the same formula, and nonlinear real arithmetic is erratic enough that one often answers
    at once where the other does not."""
    import z3

    from ..smt.encode import model_value

    deadline = time.monotonic() + timeout
    cases = root_exit_cases(net, bounds, definition)
    if isinstance(cases, str):
        return "unknown", None, cases
    for n, case in enumerate(cases):
        where = f" (max-pool winner case {n + 1} of {len(cases)})" if len(cases) > 1 else ""
        if time.monotonic() >= deadline:
            return "unknown", None, f"timeout after {n} of {len(cases)} max-pool winner cases"
        try:
            s, xs = graph_root_exit_query(net, rule, layer, neuron, scope, output, definition, low, high, case,
                                          bounds, root_bounds)
        except Exception as exc:  # noqa: BLE001 - a rule body (or an operator) that does not run on Z3 terms
            return "unknown", None, f"no Z3 encoding of the rule's root step on the graph ({type(exc).__name__}: {exc})"
        if time.monotonic() >= deadline:  # building the query (the walk over Z3 terms) is not interruptible
            return "unknown", None, f"timeout while building the query{where}"
        assertions, res, why, piece = s.assertions(), z3.unknown, "", FIRST_SLICE
        while res == z3.unknown and time.monotonic() < deadline:
            for strategy in STRATEGIES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                solver = _solver(strategy)
                solver.add(assertions)
                solver.set("timeout", max(1, int(min(piece, left) * 1000)))
                res = solver.check()
                if res != z3.unknown:
                    break
                why = solver.reason_unknown()
            piece *= 2
        if res == z3.sat:
            m = solver.model()
            return "sat", [model_value(m, x) for x in xs], ""
        if res != z3.unsat:
            return "unknown", None, f"{why or 'timeout'}{where}"
    return "unsat", None, ""


def graph_root_exit_disagreement(net: GraphNetwork, rule: Rule, layer: int, neuron: int, scope: str, output: int,
                                 definition: str, x: Any, root_bounds: list[Any] | None = None) -> str | None:
    r"""Where the Z3 encoding of the root-exit query and exact arithmetic differ at the exact input x, or None
    (:func:`dtd_formal.smt.violations.encoding_disagreement` for roots).

    The walk at x runs twice, exactly and over Z3 terms of the constant x (x's walk pinned to its first winners as
    in its query case when the query splits): the rule's root step (t, :math:`v_j`, :math:`w_j \cdot v_j`) and,
    where the neuron has a root, the root itself, the signs of the scope's ReLU inputs and the max-pool winners at
    the root (the root walk over Z3 terms, simplified to numbers) and the truth value of
    :func:`graph_exit_formula` against the exact classifier's flips (:func:`graph_flips`) must agree; with
    ``root_bounds`` the exact values at the root must lie in them. A rule body that behaves differently on Z3
    terms or on intervals at x is caught; one that differs only off the checked points is not.
    """
    import z3

    from ..exact import to_fast
    from ..rules.ops import FAST_EXACT
    from ..smt.ops import Z3, from_z3
    from .explain import downstream, graph_layer_roots
    from .trace import GraphTrace

    xa = net.as_input(x)
    where = f"x = {[str(v) for v in xa]}"
    info = net.layer(layer)
    paper = definition == "paper-code"
    exact = GraphTrace(FAST_EXACT, net, to_fast(xa), rule, output)
    winners = net.first_winners(exact.vals) if _x_winners_split(definition) else {}
    pinned = net.with_winners(winners) if winners else net
    try:
        el = graph_layer_roots(net, FAST_EXACT, exact.vals, layer, exact.rule_at(layer), [neuron],
                               exact.relevance[layer][[neuron]] if paper else None, definition)
    except Exception as exc:  # noqa: BLE001
        return f"the rule's root step fails in exact arithmetic at {where} ({type(exc).__name__}: {exc})"
    try:
        zt = GraphTrace(Z3, pinned, Z3.lift(xa), rule, output)
        zl = graph_layer_roots(pinned, Z3, zt.vals, layer, zt.rule_at(layer), [neuron],
                               zt.relevance[layer][[neuron]] if paper else None, definition)
        den_z = np.ravel(from_z3(zl.den))
        V_z = np.ravel(from_z3(zl.V))
    except Exception as exc:  # noqa: BLE001
        return f"the rule's root step does not run on Z3 terms at {where} ({type(exc).__name__}: {exc})"
    den_e, V_e = np.ravel(np.asarray(el.den, dtype=object)), np.ravel(np.asarray(el.V, dtype=object))
    if Fraction(den_z[0]) != fast_to_fraction(den_e[0]):
        return f"root_step's den on Z3 terms differs from exact arithmetic at {where}"
    if len(V_z) != len(V_e) or any(Fraction(p) != fast_to_fraction(e) for p, e in zip(V_z, V_e)):
        return f"root_step's direction on Z3 terms differs from exact arithmetic at {where}"
    active = info.relu_node is None or exact.vals[info.node][neuron] > 0
    if den_e[0] == 0 or not active:
        return None
    try:
        t_z = Fraction(np.ravel(from_z3(zl.t))[0])
    except Exception as exc:  # noqa: BLE001
        return f"root_step's t does not simplify to a number on Z3 terms at {where} ({exc})"
    if t_z != fast_to_fraction(np.ravel(np.asarray(el.t, dtype=object))[0]):
        return f"root_step's t on Z3 terms differs from exact arithmetic at {where}"
    root_e = el.point(0)
    root_z = _z3_root(zt.vals[info.input_node], t_z, zl.V, zl.idx)
    if any(Fraction(p) != fast_to_fraction(e) for p, e in zip(np.ravel(from_z3(root_z)), root_e)):
        return f"the root on Z3 terms differs from exact arithmetic at {where}"
    linear = (info.relu_node, neuron) if info.relu_node is not None else None
    rv_e = net.evaluate(FAST_EXACT, exact.vals[0], base=exact.vals, override=(info.input_node, root_e),
                        linear=linear)
    rv_z = net.evaluate(Z3, zt.vals[0], base=zt.vals, override=(info.input_node, root_z), linear=linear)
    live = downstream(net, info.input_node) - {info.input_node}
    for k in sorted(live):
        node = net.nodes[k]
        if root_bounds is not None:
            lo, hi = root_bounds[k]
            if any(not lo[i] <= v <= hi[i] for i, v in enumerate(rv_e[k])):
                return f"the exact values of {node.name!r} at the root leave the root's interval bounds at {where}"
        if node.kind not in ("relu", "maxpool") or (scope == "layer" and k != info.relu_node):
            continue
        src = node.inputs[0]
        got = np.ravel(from_z3(rv_z[src]))
        if node.kind == "relu" and any((Fraction(p) > 0) - (Fraction(p) < 0) != (e > 0) - (e < 0)
                                       for p, e in zip(got, rv_e[src])):
            return (f"the signs of {node.name!r}'s input at the root differ between Z3 terms and exact arithmetic "
                    f"at {where}")
        if node.kind == "maxpool" and node.winners(np.array([Fraction(p) for p in got], dtype=object)) != \
                node.winners(np.array([fast_to_fraction(e) for e in rv_e[src]], dtype=object)):  # type: ignore[attr-defined]
            return f"the winners of {node.name!r} at the root differ between Z3 terms and exact arithmetic at {where}"
    sb, sa, wb, wa = graph_patterns(net, xa, layer, neuron, np.array([fast_to_fraction(v) for v in root_e], dtype=object))
    flips = graph_flips(net, layer, neuron, scope, sb, sa, wb, wa)
    says = z3.is_true(z3.simplify(graph_exit_formula(net, layer, neuron, scope, zt.vals, rv_z)))
    if says != bool(flips):
        return (f"the Z3 exit condition says {'exit' if says else 'no exit'} at {where}, the exact classifier "
                f"{'an exit' if flips else 'none'}")
    return None


def z3_root_exit_proof(net: GraphNetwork, rule: Rule, layer: int, neuron: int, scope: str, variant: str, output: int,
                       definition: str, low: np.ndarray, high: np.ndarray, bounds: list[Any], timeout: float,
                       points: list[np.ndarray] | None = None) -> tuple[str, Any, dict[str, Any]]:
    r"""The complete Z3 decision of the question (module docstring): ("unsat", None, certificate) once every
    max-pool case is unsat and :func:`graph_root_exit_disagreement` finds nothing at the check points
    (:func:`dtd_formal.smt.violations.check_points`: the first 8 of ``points``, or the box's corners and centre,
    then its face centres; all within ``timeout``); ("sat", x, {}) with a model to replay; ("unknown", reason, {})
    otherwise.

    The "affine_map" variant asks the pattern query in the upper scope: the affine map of :math:`f_c` in
    :math:`a_{l-1}` can only change when some unit above changes, so its unsat proves the variant; a model is
    only a candidate (the map may stay the same) and is replayed for the variant itself.
    """
    from ..smt.violations import check_points

    deadline = time.monotonic() + timeout
    qscope = "upper" if variant == "affine_map" else scope
    rb = root_interval_bounds(net, rule, layer, neuron, definition, bounds)
    root_bounds = None if isinstance(rb, str) else rb
    cases = root_exit_cases(net, bounds, definition)
    st, x, why = decide_graph_root_exit(net, rule, layer, neuron, qscope, output, definition, low, high, bounds,
                                        timeout, root_bounds)
    if st == "sat":
        return "sat", x, {}
    if st != "unsat":
        return "unknown", why, {}
    for n, xc in enumerate(check_points(low, high, points)):
        if time.monotonic() >= deadline:
            return "unknown", f"z3 answered unsat; timeout after checking its encoding at {n} points", {}
        bad = graph_root_exit_disagreement(net, rule, layer, neuron, qscope, output, definition, xc, root_bounds)
        if bad:
            return "unknown", f"z3 answered unsat, but its encoding disagrees with exact arithmetic: {bad}", {}
    return "unsat", None, z3_certificate(len(cases), root_bounds is not None, qscope)  # type: ignore[arg-type]


def z3_certificate(cases: int, root_bounds: bool, scope: str) -> dict[str, Any]:
    """The certificate of a graph's Z3 root-exit proof: solver, logic, encoding, the number of max-pool winner
    cases and whether the root walk was bounded by the interval root box (replay re-derives both and re-runs every
    case), and the scope the query was asked in."""
    return {"method": "z3-graph", "solver": "z3", "logic": "QF_NRA", "encoding": "graph", "maxpool_cases": cases,
            "root_bounds": root_bounds, "query_scope": scope}


# ---------------------------------------------------------------------------------------------------- search
def _candidates(low: np.ndarray, high: np.ndarray, rng: np.random.Generator, k: int) -> Iterator[np.ndarray]:
    """Batches of exact points of the box, k in all: its centre first, then random points, every third one a
    random corner; made lazily (a batch at a time) and clamped exactly into the box."""
    lo, hi = to_float(low), to_float(high)
    for start in range(0, k, _BATCH):
        pts = []
        for i in range(start, min(k, start + _BATCH)):
            if i == 0:
                pts.append(np.array([(a + b) / 2 for a, b in zip(low, high)], dtype=object))
                continue
            u = rng.integers(0, 2, size=len(lo)).astype(float) if i % 3 == 0 else rng.uniform(size=len(lo))
            p = to_fraction_array(lo + u * (hi - lo), "candidate")
            pts.append(np.array([min(max(v, a), b) for v, a, b in zip(p, low, high)], dtype=object))
        yield np.array(pts, dtype=object)


def find_graph_root_exit(net: GraphNetwork, rule: Rule, layer: int = 1, neuron: Any = None, domain: Any = (0, 1),
                         scope: str = "upper", timeout: float = 60.0, variant: str = "pattern", output: int = 0,
                         engines: Iterable[str] = ("falsify", "z3"), progress: bool = False, seed: int = 0,
                         definition: str = "true", max_samples: int = 4096) -> Verdict:
    """:func:`dtd_formal.smt.root_exit.find_root_exit` for a graph (module docstring). ``neuron``: a flat index
    or (channel, y, x), several, or None for every neuron of the layer; ``timeout`` is per neuron."""
    check_timeout(timeout)
    net.check_layer(layer)
    net.check_output(output)
    if scope not in ("upper", "layer"):
        raise InputError(f"scope must be 'upper' or 'layer', got {scope!r}")
    if variant not in ("pattern", "affine_map"):
        raise InputError(f"variant must be 'pattern' or 'affine_map', got {variant!r}")
    if definition not in ("true", "paper-code"):
        raise InputError(f"definition must be 'true' or 'paper-code', got {definition!r}")
    if not rule.has_root:
        raise InputError(f"{rule.spec()} is not a root-point rule: it has no root points")
    low, high = parse_box(domain, net.input_size)
    n_l = net.nodes[net.layer(layer).node].n_out
    if neuron is None:
        info = net.layer(layer)
        neurons = [output] if net.output in (info.node, info.relu_node) else list(range(n_l))
        single = False
    elif isinstance(neuron, (int, np.integer)) or (isinstance(neuron, tuple) and all(
            isinstance(v, (int, np.integer)) for v in neuron)):
        neurons, single = [net.neuron_index(layer, neuron)], True
    else:
        neurons, single = [net.neuron_index(layer, j) for j in neuron], False
    skipped = sorted(set(engines) - set(GRAPH_ENGINES))
    per: dict[int, Verdict] = {}
    iterator: Iterable[int] = neurons
    if progress and len(neurons) > 1:
        from tqdm import tqdm

        iterator = tqdm(neurons, desc=f"layer {layer} neurons", unit="neuron")
    from .bounds import interval_bounds

    bounds = interval_bounds(net, low, high)
    for j in iterator:
        per[j] = _solve(net, rule, layer, j, low, high, scope, timeout, variant, output, definition, seed,
                        "falsify" in engines, skipped, max_samples, bounds, "z3" in engines)
    if single:
        return per[neurons[0]]
    counts = {s: sum(v.status == s for v in per.values()) for s in ("refuted", "proved", "unknown")}
    statement = (f"over the box, no root of {rule.spec()} at layer {layer} of the graph {variant} "
                 f"({len(neurons)} neurons)")
    if counts["refuted"]:
        first = next(v for v in per.values() if v.status == "refuted")
        out: Verdict = Refuted(statement, first.counterexample, method="per-neuron")  # type: ignore[attr-defined]
    elif counts["unknown"]:
        out = Unknown(statement, f"{counts['unknown']} of {len(neurons)} neurons unknown")
    else:
        out = Proved(statement, "per-neuron", {"neurons": len(neurons)})
    out.per_neuron = per  # type: ignore[attr-defined]
    return out


def _solve(net: GraphNetwork, rule: Rule, layer: int, j: int, low: np.ndarray, high: np.ndarray, scope: str,
           timeout: float, variant: str, output: int, definition: str, seed: int, falsify: bool,
           skipped: list[str], max_samples: int, bounds: list[Any], use_z3: bool = False) -> Verdict:
    from .explain import graph_root_regions

    question = root_exit_question(net, rule, layer, j, low, high, scope, variant, output, definition)
    statement = question.statement()
    reason = trivial_graph_reason(net, layer, j, scope, variant, output, bounds)
    if reason is not None:
        return Proved(statement, "trivial", {"reason": reason}, question=question)
    start = time.monotonic()
    deadline = start + timeout
    # with Z3 to follow, sampling gets a share of the budget (it refutes most exits within its first batches)
    sample_deadline = start + (Z3_SAMPLING_SHARE if use_z3 else 1.0) * timeout
    rng = np.random.default_rng(seed + 7919 * j)
    tried, spent = 0, False
    why_not = "not tried"
    sampled: list[np.ndarray] = []
    for n_batch, batch in enumerate(_candidates(low, high, rng, max_samples) if falsify else ()):
        if n_batch == 1:  # after the first batch (the centre refutes most exits): try to prove
            why_not = interval_root_proof(net, rule, layer, j, scope, variant, definition, bounds)
            if why_not is None:
                return Proved(statement, "interval bounds", {"method": "interval-roots"}, question=question)
        if time.monotonic() >= sample_deadline:
            spent = True
            break
        tried += len(batch)
        sampled.extend(batch[: max(0, 8 - len(sampled))])
        rep = graph_root_regions(net, batch, rule, scope=scope, output=output, definition=definition,
                                 layers=[layer], neurons=[j])
        for rec in rep.records:
            if rec.leaves_pattern if variant == "pattern" else rec.leaves_affine_map:
                cex = GraphRootExitCounterexample.build(question, net, rule, batch[rec.input_index], "falsify")
                if cex is not None:
                    return Refuted(statement, cex, method="falsify", question=question)
    if why_not == "not tried":  # no falsifier, or it stopped within its first batch
        why_not = interval_root_proof(net, rule, layer, j, scope, variant, definition, bounds)
        if why_not is None:
            return Proved(statement, "interval bounds", {"method": "interval-roots"}, question=question)
    z3_note = ""
    if use_z3:
        left = deadline - time.monotonic()
        if left <= 0.05:
            z3_note = "; z3: no time left"
        else:
            st, got, cert = z3_root_exit_proof(net, rule, layer, j, scope, variant, output, definition, low, high,
                                               bounds, left, sampled or None)
            if st == "unsat":
                return Proved(statement, "z3 (exact, the rule's root step on the graph's walk over Z3Ops)", cert,
                              question=question)
            if st == "sat":
                cex = GraphRootExitCounterexample.build(question, net, rule, got, "z3")
                if cex is not None:
                    return Refuted(statement, cex, method="z3 + exact replay", question=question)
                z3_note = "; z3: its model does not replay exactly (an irrational or boundary witness" + (
                    ", or a unit above changes while the affine map stays the same)" if variant == "affine_map"
                    else ")")
                bad = graph_root_exit_disagreement(net, rule, layer, j, "upper" if variant == "affine_map" else scope,
                                                   output, definition, got)
                if bad:
                    z3_note += f"; its encoding disagrees with exact arithmetic there: {bad}"
            else:
                z3_note = f"; z3: {got}"
    why = (f"no exit among {tried} sampled inputs of the box" if falsify else "the falsifier was not run") + (
        " (time budget spent)" if spent else "") + f"; interval proof: {why_not}" + z3_note
    engines_note = (f"; engines {', '.join(skipped)} read dense networks and were not run on the graph"
                    if skipped else "" if use_z3 else "; the complete engines read dense networks")
    return Unknown(statement, why + engines_note, question=question)


__all__ = ["find_graph_root_exit", "GraphRootExitCounterexample", "trivial_graph_reason", "graph_patterns",
           "graph_flips", "GRAPH_ENGINES", "interval_root_proof", "root_interval_bounds", "graph_exit_formula",
           "graph_root_exit_query", "decide_graph_root_exit", "graph_root_exit_disagreement", "z3_root_exit_proof",
           "root_exit_cases", "z3_certificate"]

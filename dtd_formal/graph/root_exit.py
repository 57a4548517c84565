r"""``find_root_exit`` on operator graphs: Refuted with an exact, replayable counterexample, Proved when the question
holds without a search, Unknown otherwise (with the reason).

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

The complete engines of dense networks (interval/McCormick relaxation, LP, t-slicing, Z3) read
:class:`~dtd_formal.network.Network` layers; on a graph they are not run, and a search without an exit ends
Unknown, naming the number of inputs tried. A timeout is Unknown, never a guess.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import InputError, check_timeout
from ..exact import sign, to_float, to_fraction, to_fraction_array
from ..rules.base import Rule
from ..smt.counterexample import (RootExitCounterexample, _check_question, _field, _int_lists, in_box,
                                  question_from_json)
from ..smt.problem import parse_box, root_exit_question
from ..verdict import Proved, Question, Refuted, Unknown, Verdict
from .network import GraphNetwork

#: engines of a graph search (the dense engines' names are accepted and skipped with the reason)
GRAPH_ENGINES = ("falsify",)
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


def interval_root_proof(net: GraphNetwork, rule: Rule, layer: int, neuron: int, scope: str, variant: str,
                        definition: str, bounds: list[Any]) -> str | None:
    r"""Prove with exact interval arithmetic that no input of the box has a root of (layer, neuron) leaving the
    region; None when proved, else the reason it could not.

    The rule's own ``root_step`` runs on intervals (:class:`dtd_formal.graph.bounds.IntervalOps`) over the
    bounds of the layer input on the box, giving boxes for t, the direction and the root
    :math:`	ilde a = a - t v` (for every input of the box at once; dependencies are dropped, so the boxes are
    loose but sound). The root box is propagated through the graph above (neuron j linear). The exit is
    impossible when no ReLU input of the scope can be positive at one point and negative at the other
    (:math:`h_x > 0 \wedge l_r < 0` or :math:`l_x < 0 \wedge h_r > 0` never holds) and every max pool of the
    scope has a window position that certainly wins at both. For the "affine_map" variant the scope is every
    layer above (the map changes only with such a change).
    """
    from ..walk import RuleEvaluationError, call_rule
    from .bounds import Interval, IntervalOps, Undecided, interval_bounds, intervals
    from .explain import downstream
    from .operators import gather_rows
    from .patch_ops import PatchOps

    if definition != "true":
        return "the interval proof covers true roots only (paper-code steps need the upper relevance)"
    if variant == "affine_map":
        scope = "upper"
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
    rb = interval_bounds(net, r_lo, r_hi, start=info.input_node, base=bounds, linear=linear)
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
                         engines: Iterable[str] = ("falsify",), progress: bool = False, seed: int = 0,
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
                        "falsify" in engines, skipped, max_samples, bounds)
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
           skipped: list[str], max_samples: int, bounds: list[Any]) -> Verdict:
    from .explain import graph_root_regions

    question = root_exit_question(net, rule, layer, j, low, high, scope, variant, output, definition)
    statement = question.statement()
    reason = trivial_graph_reason(net, layer, j, scope, variant, output, bounds)
    if reason is not None:
        return Proved(statement, "trivial", {"reason": reason}, question=question)
    deadline = time.monotonic() + timeout
    rng = np.random.default_rng(seed + 7919 * j)
    tried, spent = 0, False
    why_not = "not tried"
    for n_batch, batch in enumerate(_candidates(low, high, rng, max_samples) if falsify else ()):
        if n_batch == 1:  # after the first batch (the centre refutes most exits): try to prove
            why_not = interval_root_proof(net, rule, layer, j, scope, variant, definition, bounds)
            if why_not is None:
                return Proved(statement, "interval bounds", {"method": "interval-roots"}, question=question)
        if time.monotonic() >= deadline:
            spent = True
            break
        tried += len(batch)
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
    why = (f"no exit among {tried} sampled inputs of the box" if falsify else "the falsifier was not run") + (
        " (time budget spent)" if spent else "") + f"; interval proof: {why_not}"
    engines_note = (f"; engines {', '.join(skipped)} read dense networks and were not run on the graph"
                    if skipped else "; the complete engines read dense networks")
    return Unknown(statement, why + engines_note, question=question)


__all__ = ["find_graph_root_exit", "GraphRootExitCounterexample", "trivial_graph_reason", "graph_patterns",
           "graph_flips", "GRAPH_ENGINES"]

r"""``find_root_exit``: Refuted (exact counterexample) / Proved (certificate) / Unknown for root exits over a box.

Engines, in the order the default pipeline runs them within one neuron's time budget:

- ``"falsify"``: sampling + a local search in floats guided first towards inputs that activate the neuron, then
  towards an exit (:mod:`.falsify`), each candidate confirmed exactly; it gets 15 % of the budget when the linear
  engines follow, half of it when only Z3 does (paper-code roots, rules not of the stock form), else all of it;
- ``"relax"``: the exact interval relaxation plus the McCormick LP relaxation and the LP showing the neuron inactive
  (both Farkas-certified), with branching on the input box and on t (:mod:`.relax`, :mod:`.mccormick`); proves
  absence (its split tree is the certificate, re-checked by :func:`dtd_formal.smt.relax.check_certificate` before
  Proved is returned) and probes unsafe boxes;
- ``"slice"``: t-slicing: t fixed to rationals taken from the best float points; each slice is a linear Z3 query
  (:mod:`.encode`), and a SAT slice is a genuine counterexample;
- ``"lp"``: the region-fixed LP path: at a float candidate, fix the activation patterns (at x and at the root) and t,
  and solve the resulting LP with HiGHS; its witness is replayed exactly (:mod:`.lp`);
- ``"z3"``: the whole-net nonlinear query (t free) with Z3's nlsat, the complete fallback on small nets; for the
  "affine_map" variant, the enumeration of reachable resolved pattern pairs (:mod:`.maps`).

Paper-code roots (``definition="paper-code"``) run "falsify" and "z3" only.

A Refuted always holds a :class:`RootExitCounterexample` rebuilt from the exact input by
:meth:`RootExitCounterexample.build` (which uses :func:`dtd_formal.roots` and the textbook region twin); a Proved
holds the relaxation's split tree (re-checked exactly before it is returned) or Z3's unsat answer.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..network import Network
from ..rules.base import Rule
from ..errors import check_timeout
from ..verdict import Proved, Refuted, Unknown, Verdict
from .counterexample import RootExitCounterexample
from .problem import RootExitProblem, parse_box

DEFAULT_ENGINES = ("falsify", "relax", "lp", "slice", "z3")
#: Z3 nlsat is only tried on networks with at most this many ReLUs (docs/theory.md section 4: a few dozen in seconds)
Z3_MAX_RELUS = 40


def _refuted(P: RootExitProblem, cex: RootExitCounterexample, method: str) -> Refuted:
    cex.found_by = cex.found_by or method
    bad = cex.check(P.net, P.rule)
    if bad:  # pragma: no cover - build() already checked; check() is the independent re-derivation
        raise AssertionError(f"counterexample did not replay: {bad}")
    return Refuted(P.statement(), cex, method=method, question=P.question())


def _proved(P: RootExitProblem, method: str, certificate: dict[str, Any]) -> Proved:
    return Proved(P.statement(), method, certificate, question=P.question())


def _trivial(P: RootExitProblem) -> Verdict | None:
    reason = trivial_reason(P)
    return None if reason is None else _proved(P, "trivial", {"reason": reason})


def trivial_reason(P: RootExitProblem) -> str | None:
    """Why the question holds without a search (the neuron carries no relevance, or the scope has no other ReLU
    neuron), or None. Replay re-derives it from the question."""
    scope = P.proof_scope
    relu_in_scope = [k for k in range(P.layer, P.net.n_layers + 1) if P.net.has_relu(k) and (scope == "upper" or k == P.layer)]
    n_others = sum(P.net.weight(k).shape[0] for k in relu_in_scope) - (1 if P.relu else 0)
    if not P.candidate:
        return "the neuron carries no relevance (not the explained output)"
    if n_others <= 0:
        return "no other ReLU neuron in the scope"
    if P.stock is not None:
        w = P.net.weight(P.layer)[P.neuron]
        if all(wi * d == 0 for wi, d in zip(w, P.stock.D)) and sum(wi * e for wi, e in zip(w, P.stock.e)) == 0:
            return "the rule's denominator w_j . v_j is identically 0 (verified stock form): the neuron has no root"
    return None


def root_step_disagreement(P: RootExitProblem, points: Sequence[np.ndarray]) -> str | None:
    """Where the rule's ``root_step`` on Z3 terms differs from its exact value at layer l's input of an exact
    input point (t, V and den compared), or None. A Z3 answer about a rule whose body behaves differently on terms
    would be about another rule; this is checked before a Z3 "unsat" is trusted."""
    from ..rules.ops import EXACT
    from ..walk import RuleEvaluationError, forward, relevance_per_layer, root_points
    from .ops import Z3, from_z3

    net, l, j = P.net, P.layer, P.neuron
    W, b = net.weight(l)[j : j + 1], net.bias(l)[j : j + 1]
    for x in points:
        acts, _ = forward(EXACT, net.arrays("fraction"), net.relu_flags, np.asarray(x, dtype=object))
        R = None
        if not P.true_root:  # the paper-code step reads the backward pass: it must agree on Z3 terms too
            from .encode import z3_layers

            exact_R = relevance_per_layer(EXACT, net.arrays("fraction"), net.relu_flags, acts, P.rule, P.output)
            try:
                z3_acts, _ = forward(Z3, z3_layers(net), net.relu_flags, Z3.lift(np.asarray(x, dtype=object)))
                z3_R = relevance_per_layer(Z3, z3_layers(net), net.relu_flags, z3_acts, P.rule, P.output)
                same = all(np.array_equal(np.asarray(e, dtype=object), np.asarray(from_z3(z), dtype=object))
                           for e, z in zip(exact_R, z3_R))
            except (RuleEvaluationError, InputError) as exc:
                return f"the backward pass cannot be compared on Z3 terms at x = {[str(v) for v in x]} ({exc})"
            if not same:
                return f"the backward pass on Z3 terms differs from exact arithmetic at x = {[str(v) for v in x]}"
            R = exact_R[l][j : j + 1]
        try:
            exact = root_points(EXACT, P.rule, acts[l - 1], W, b, R, P.definition, l)
            terms = root_points(Z3, P.rule, Z3.lift(acts[l - 1]), Z3.lift(W), Z3.lift(b),
                                None if R is None else Z3.lift(R), P.definition, l)
            got = [from_z3(terms.t), from_z3(terms.V), from_z3(terms.den)]
        except (RuleEvaluationError, InputError) as exc:
            return f"root_step cannot be compared on Z3 terms at x = {[str(v) for v in x]} ({exc})"
        for name, e, z in zip(("t", "V", "den"), (exact.t, exact.V, exact.den), got):
            if not np.array_equal(np.asarray(e, dtype=object), np.asarray(z, dtype=object)):
                return f"root_step's {name} on Z3 terms differs from exact arithmetic at x = {[str(v) for v in x]}"
    return None


def probe_points(P: RootExitProblem, points: np.ndarray, k: int = 4) -> list[np.ndarray]:
    """Exact probe inputs: the box centre and corners and up to k of the best float points (clamped exactly)."""
    out = [(P.low + P.high) / 2, P.low.copy(), P.high.copy()]
    for x in points[:k]:
        xs = np.array([Fraction(float(v)) for v in x], dtype=object)
        out.append(np.minimum(np.maximum(xs, P.low), P.high))
    return out


def _slice_values(P: RootExitProblem, points: np.ndarray, scores: np.ndarray, k: int = 6
                  ) -> list[tuple[Fraction, dict[tuple[int, int], bool]]]:
    """Slices to try: (rational t at a good float point, that point's activation patterns at x and at its root as
    Z3 assumptions: the slice is then a region-fixed linear query, decided exactly by Z3's simplex)."""
    from .falsify import FloatModel

    out: list[tuple[Fraction, dict[tuple[int, int], bool]]] = []
    if len(points) == 0:
        return out
    fm = FloatModel(P)
    net = P.net
    for x in points[: 3 * k]:
        a, pattern, zl = x, {}, None
        for m in range(1, net.n_layers + 1):
            z = fm.W[m - 1] @ a + fm.b[m - 1]
            if m == P.layer:
                zl, al = z, a
            if net.has_relu(m):
                pattern.update({(m, i): bool(v > 0) for i, v in enumerate(z)})
                a = np.maximum(z, 0.0)
            else:
                a = z
        den = fm.W[P.layer - 1][P.neuron] @ (al * fm.D + fm.e)
        if den == 0 or not np.isfinite(zl[P.neuron] / den):
            continue
        tau = Fraction(float(zl[P.neuron] / den)).limit_denominator(1 << 16)
        h = al - float(tau) * (al * fm.D + fm.e)
        for m in range(P.layer, net.n_layers + 1):
            z = fm.W[m - 1] @ h + fm.b[m - 1]
            if not net.has_relu(m):
                break
            pattern.update({("root", m, i): bool(v > 0) for i, v in enumerate(z) if not (m == P.layer and i == P.neuron)})
            h = np.maximum(z, 0.0)
            if m == P.layer:
                h[P.neuron] = z[P.neuron]
        out.append((tau, pattern))
        if len(out) >= k:
            break
    return out


def _best_points(P: RootExitProblem, seed: int, n: int = 2048, k: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The k best-scoring float samples (no exact confirmation): seeds for the LP path and t-slicing."""
    from .falsify import FloatModel

    fm = FloatModel(P)
    rng = np.random.default_rng(seed + 2)
    X = fm.lo + (fm.hi - fm.lo) * rng.random((n, len(fm.lo)))
    s = fm.score(X)
    o = np.argsort(-s)[:k]
    keep = np.isfinite(s[o])
    return X[o][keep], s[o][keep]


def solve_problem(P: RootExitProblem, timeout: float = 60.0, engines: Sequence[str] = DEFAULT_ENGINES,
                  seed: int = 0, branch: str = "both") -> Verdict:
    r"""Run the engines on one (layer, neuron) within ``timeout`` seconds (module docstring).

    The relaxation, LP and slicing engines encode the stock step :math:`t = z_j / (w_j \cdot v_j)` with a
    diagonal-affine direction; they run only when :func:`dtd_formal.smt.problem.verify_stock_form` has verified
    that the rule's own ``root_step`` is of that form, and otherwise step aside with the reason. The falsifier and
    Z3 evaluate the rule's ``root_step`` itself; a Z3 "unsat" counts only after :func:`root_step_disagreement`
    finds the rule's body to give the same numbers on Z3 terms as in exact arithmetic.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    unknown = [e for e in engines if e not in DEFAULT_ENGINES]
    if unknown:
        raise InputError(f"unknown engine(s) {unknown}; known: {', '.join(DEFAULT_ENGINES)}")
    trivial = _trivial(P)
    if trivial is not None:
        return trivial
    notes: list[str] = []
    stock = P.stock is not None and P.true_root
    linear_engines = [e for e in ("relax", "lp", "slice") if e in engines]
    if linear_engines and not stock:
        why = P.not_stock_reason if P.stock is None else "paper-code roots use t = R_j / (w_j . v_j)"
        notes.append(f"{'/'.join(linear_engines)} stepped aside: they encode the stock step t = z_j / (w_j . v_j) "
                     f"with a diagonal-affine direction, and {why}")
    points = np.empty((0, P.net.input_size))
    scores = np.empty(0)
    if "falsify" in engines:
        from .falsify import falsify

        # the falsifier's share of the budget: less when the linear engines (and their probes) follow
        share = 0.15 if stock and linear_engines else 0.5 if "z3" in engines else 1.0
        cex, points, scores, note = falsify(P, min(deadline, t0 + share * timeout + 0.2), seed=seed)
        if cex is not None:
            return _refuted(P, cex, "falsify")
        notes.append(f"falsify: {note}")
    if "relax" in engines and stock:
        from .falsify import FloatModel, confirm
        from .relax import check_certificate, prove_by_relaxation

        fm = FloatModel(P)
        rng = np.random.default_rng(seed + 1)

        def probe(lo: np.ndarray, hi: np.ndarray) -> Any:
            flo = np.array([float(v) for v in lo])
            fhi = np.array([float(v) for v in hi])
            X = np.vstack([(flo + fhi) / 2, flo + (fhi - flo) * rng.random((8, len(flo)))])
            sc = fm.score(X)
            i = int(np.argmax(sc))
            return confirm(P, X[i], "relax probe") if sc[i] > 0 else None

        z3_next = "z3" in engines and P.net.n_relus <= Z3_MAX_RELUS
        # the affine-map variant: the relaxation only proves "no upper flip"; leave Z3's enumeration more time
        budget = (0.3 if P.variant == "affine_map" else 0.6) if z3_next else 0.8
        res = prove_by_relaxation(P, min(deadline, time.monotonic() + budget * (deadline - time.monotonic())), probe=probe,
                                  branch=branch)
        if res.status == "refuted":
            return _refuted(P, res.counterexample, "relax probe")
        if res.status == "proved":
            if not check_certificate(P, res.tree, branch):  # pragma: no cover - the same exact test, replayed
                raise AssertionError("relaxation certificate did not re-check")
            return _proved(P, "interval/McCormick relaxation + branching on the input box and t (exact)",
                           {"split_tree": res.tree, "boxes": res.boxes, "t_splits": res.t_splits, "branch": branch})
        notes.append(f"relax: {res.reason}")
    if stock and not len(points) and ("lp" in engines or "slice" in engines):
        points, scores = _best_points(P, seed)
    rooted = np.isfinite(scores)  # the LP path and t-slicing start from points where neuron j has a root
    seeds, seed_scores = points[rooted], scores[rooted]
    if stock and not len(seeds) and ("lp" in engines or "slice" in engines):
        notes.append("lp/slice: no float point where neuron j has a moving root to start from")
    if "lp" in engines and stock and len(seeds) and time.monotonic() < deadline:
        from .lp import lp_slice_search

        cex = lp_slice_search(P, seeds[:4], deadline)
        if cex is not None:
            return _refuted(P, cex, "lp")
        notes.append("lp: no certified witness at the best points")
    if "slice" in engines and stock and len(seeds) and time.monotonic() < deadline:
        from .encode import solve_root_exit

        taus = _slice_values(P, seeds, seed_scores)
        last = 0.05
        for tau, pattern in taus:
            left = deadline - time.monotonic()
            if left <= 1.5 * last:  # building the encoding is not covered by Z3's own timeout
                break
            started = time.monotonic()
            st, x = solve_root_exit(P, min(left - last, max(1.0, 0.1 * timeout)), t_value=tau, assume=pattern)
            last = time.monotonic() - started
            if st == "sat":
                cex = RootExitCounterexample.build(P.question(), P.net, P.rule, x, f"t-slice t={tau}")
                if cex is not None:
                    return _refuted(P, cex, "slice")
        notes.append(f"slice: {len(taus)} slices without counterexample")
    z3_fits = P.net.n_relus <= Z3_MAX_RELUS or not stock
    if "z3" in engines and z3_fits and time.monotonic() < deadline - 0.05:
        verdict = _z3_engine(P, deadline, points, notes)
        if verdict is not None:
            return verdict
    elif "z3" in engines and not z3_fits:
        notes.append(f"z3: not tried on {P.net.n_relus} ReLUs (at most {Z3_MAX_RELUS})")
    return Unknown(P.statement(), "; ".join(notes) or "no engine answered within the time budget",
                   question=P.question())


def _z3_engine(P: RootExitProblem, deadline: float, points: np.ndarray, notes: list[str]) -> Verdict | None:
    """Z3 on the whole query (nlsat, t free) or, for the affine-map variant, the enumeration of reachable pattern
    pairs; an "unsat" counts only once the rule's root_step agrees on Z3 terms and in exact arithmetic."""
    disagreement = root_step_disagreement(P, probe_points(P, points))
    if disagreement:
        notes.append(f"z3 stepped aside: {disagreement}")
        return None
    if P.variant == "affine_map":
        from .maps import enumerate_map_changes

        res = enumerate_map_changes(P, deadline)
        if res.status == "refuted":
            return _refuted(P, res.counterexample, "z3 pattern enumeration")
        if res.status == "proved":
            return _proved(P, "z3 enumeration of the reachable resolved pattern pairs (exact maps)",
                           {"solver": "z3", "logic": "QF_NRA", "pattern_pairs": res.patterns,
                            "pairs": [list(k) for k in res.keys]})
        notes.append(f"z3 maps: {res.reason}")
        return None
    from .encode import solve_root_exit

    st, x = solve_root_exit(P, deadline - time.monotonic())
    if st == "unsat":
        return _proved(P, "z3 nlsat (exact, t free)", {"solver": "z3", "logic": "QF_NRA"})
    if st == "sat":
        cex = RootExitCounterexample.build(P.question(), P.net, P.rule, x, "z3")
        if cex is not None:
            return _refuted(P, cex, "z3")
        notes.append("z3: model did not replay exactly (algebraic model)")
    else:
        notes.append("z3: timeout")
    return None


def _solve_task(args: tuple) -> Verdict:
    """Top-level (picklable) task for executors: (net, rule, layer, neuron, low, high, scope, variant, output,
    timeout, engines, seed, definition, branch)."""
    net, rule, layer, neuron, low, high, scope, variant, output, timeout, engines, seed, definition, branch = args
    P = RootExitProblem(net, rule, layer, neuron, low, high, scope, variant, output, definition)
    return solve_problem(P, timeout, engines, seed, branch)


def find_root_exit(
    net: Network,
    rule: Rule,
    layer: int = 1,
    neuron: int | Iterable[int] | None = None,
    domain: Any = (0, 1),
    scope: str = "upper",
    timeout: float = 60.0,
    variant: str = "pattern",
    output: int = 0,
    engines: Sequence[str] = DEFAULT_ENGINES,
    executor: Any = None,
    progress: bool = False,
    seed: int = 0,
    definition: str = "true",
    branch: str = "both",
) -> Verdict:
    r"""Search the input box for an input whose root of (layer, neuron) leaves the linear region.

    Roots are :math:`a - t v_j(a)` with the true step :math:`t = z_j / (w_j \cdot v_j)` (``definition="true"``)
    or the authors' :math:`t = R^l_j / (w_j \cdot v_j)` (``definition="paper-code"``, :math:`R^l` the LRP relevance
    of the same rule over the upper layers, as :func:`dtd_formal.dtd.roots`); region semantics as in
    :mod:`dtd_formal.regions` (another neuron of the scope with strictly opposite signs at a and at the root,
    neuron j held linear). Every counterexample is replayed exactly with the same definition.

    Paper-code roots are searched by the falsifier (float LRP per sample, exact confirmation) and by Z3 with the
    complete encoding :math:`t\,(w_j \cdot v_j) = R^l_j(x)` (the LRP pass as Z3 terms, nonlinear): Proved only
    comes from Z3's unsat, so on nets beyond Z3's reach the answer is Refuted or Unknown (the relaxation, LP and
    slicing engines assume the true step and are skipped).

    Parameters
    ----------
    net, rule : the network and a root-point rule
    layer : layer l (1..L); the root lives in the input space of layer l
    neuron : one neuron, several, or None for every neuron of the layer
    domain : the input box, ``(low, high)`` with scalars or per-input arrays (exact), a Box, or ``"lo:hi"``
    scope : "upper" (layers l..L) or "layer" (layer l only); neuron j itself is excluded
    timeout : seconds per neuron (an exhausted budget gives Unknown)
    variant : "pattern" (some neuron flips) or "affine_map" (the exact affine map of the closest patterns changes;
        proved by the relaxation when no upper neuron can flip, else by Z3 enumeration of the reachable resolved
        pattern pairs, :mod:`dtd_formal.smt.maps`; Unknown when the enumeration is cut)
    definition : "true" or "paper-code" root step (see above)
    branch : what the relaxation bisects: "both" (input box and t, default), "box" or "t" (:mod:`.relax`)
    engines : subset of ("falsify", "relax", "lp", "slice", "z3")
    executor : None (run in this process), "local" (process pool), "dask://HOST:PORT", or an Executor

    Returns
    -------
    Refuted(counterexample) if some neuron's root exits (``.counterexample`` has ``.input``, ``.neuron``,
    ``.layer``, ``.root``), Proved if no neuron's can, Unknown otherwise. With several neurons the verdict also has
    ``.per_neuron`` = {neuron: verdict}.
    """
    check_timeout(timeout)
    if getattr(net, "is_graph", False):  # operator graphs: dtd_formal.graph.root_exit (falsifier + trivial proofs)
        from ..graph.root_exit import find_graph_root_exit

        if executor is not None:
            raise InputError("find_root_exit on an operator graph runs in this process (no executor)")
        return find_graph_root_exit(net, rule, layer, neuron, domain, scope, timeout, variant, output,
                                    engines, progress, seed, definition)
    net.check_layer(layer)
    low, high = parse_box(domain, net.input_size)
    n_l = net.weight(layer).shape[0]
    if neuron is None:
        neurons = list(range(n_l)) if layer < net.n_layers else [output]
        single = False
    elif isinstance(neuron, (int, np.integer)):
        neurons, single = [int(neuron)], True
    else:
        neurons, single = [int(j) for j in neuron], False
    for j in neurons:
        if not 0 <= j < n_l:
            raise InputError(f"layer {layer} has neurons 0..{n_l - 1}, got neuron {j}")
    # validate once here (errors in the caller's process)
    RootExitProblem(net, rule, layer, neurons[0], low, high, scope, variant, output, definition)
    from .relax import BRANCHING

    if branch not in BRANCHING:
        raise InputError(f"branch must be one of {', '.join(BRANCHING)}, got {branch!r}")
    tasks = [(net, rule, layer, j, low, high, scope, variant, output, timeout, tuple(engines), seed, definition, branch)
             for j in neurons]
    if single:
        return _solve_task(tasks[0])
    from .executor import map_tasks

    results = map_tasks(_solve_task, tasks, executor, progress=progress, desc=f"layer {layer} neurons")
    per = dict(zip(neurons, results))
    kind = "" if definition == "true" else " paper-code"
    statement = (f"no input in the box has a {rule.spec()}{kind} root of layer {layer} (neurons {neurons}) that "
                 f"{'leaves the linear region' if variant == 'pattern' else 'changes the affine map'} (scope {scope})")
    refuted = [v for v in results if v.status == "refuted"]
    if refuted:
        out: Verdict = Refuted(statement, refuted[0].counterexample, method=refuted[0].method)  # type: ignore[attr-defined]
    elif all(v.status == "proved" for v in results):
        out = Proved(statement, "per-neuron proofs", {str(j): v.to_json() for j, v in per.items()})
    else:
        out = Unknown(statement, f"{sum(v.status == 'unknown' for v in results)} of {len(results)} neurons unknown")
    out.per_neuron = per  # type: ignore[attr-defined]
    return out


__all__ = ["find_root_exit", "solve_problem", "DEFAULT_ENGINES"]

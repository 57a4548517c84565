r"""Generic (symbolic-weight) proofs about the rule catalogue, generated from each rule's one definition.

Every expression below comes from running the rule's own body (``direction``, ``redistribute``, ``root_step``)
with the SymPy ops (:mod:`dtd_formal.symbolic.ops`) on symbolic inputs :math:`a_i` (real), a symbolic bias
:math:`b` (real), upper relevance :math:`R` (real) and weights :math:`w_i` taken **per sign pattern**: each
:math:`w_i` is a positive symbol, a negative symbol or 0. The :math:`3^n` patterns cover every real weight
vector, so an identity that holds in every pattern holds for all weights. Rule parameters are symbols too
(:math:`\gamma \ge 0` for Gamma, box bounds :math:`l_i, h_i` for ZBox).

Why a fixed small n suffices (the general case): each rule body acts coordinate-wise on :math:`(a_i, w_i)`
(masks, :math:`w^\pm`, products) followed by sums over i; the identities checked are of the form
:math:`\sum_i c_i / \sum_i c_i = 1` or :math:`w \cdot (a - t v) + b = z - t\, (w \cdot v)` with
:math:`t = z / (w \cdot v)`, whose truth does not depend on the number of summands; n = 3 (n = 2 in fast mode)
exercises every mask combination of a positive, a negative and a zero weight in one neuron, and rows of a layer
are independent (broadcasting), so one neuron is the general neuron.

Checked statements
------------------
- Roots on the hyperplane: :math:`z(\tilde a) = w \cdot (a - t v) + b = 0` with :math:`t = z / (w \cdot v)`,
  where :math:`w \cdot v \ne 0` (patterns with :math:`w \cdot v \equiv 0`, e.g. z+ without a positive weight,
  have no root by the rule's definition and are reported as skipped).
- Conservation: :math:`\sum_i R_{i \leftarrow j} = R_j` where the normaliser :math:`n_j \ne 0`.
- Epsilon's exact defect: with :math:`s = \sum_i a_i w_i` (dtd) or :math:`s = z` (zennit),
  :math:`\sigma = \mathrm{sign}_0(s)`: :math:`R_j - \sum_i R_{i \leftarrow j} = R_j\,(\sigma\varepsilon + \beta)/
  (s' + \sigma \varepsilon)` with :math:`s' = \sum_i a_i w_i + \beta`, :math:`\beta = 0` (dtd) or :math:`b`
  (zennit); proved per sign branch of :math:`\sigma`.
- z+ = LRP-alpha1-beta0 for :math:`a \ge 0`; an explicit negative input where they differ.
- Gamma(0) = LRP-0, and :math:`\lim_{\gamma\to\infty}` Gamma = z+ (SymPy ``limit``) where
  :math:`\sum_i a_i w_i^+ \ne 0`.

Each checker takes the rule(s) as a parameter, so a wrong rule gives a residual that does not cancel and is
refuted with an exact counterexample (:func:`dtd_formal.symbolic.certificate.find_counterexample`).
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import sympy as sp

from ..rules import LRP0, AlphaBeta, Epsilon, Flat, Gamma, Rule, WSquare, ZBox, ZPlus
from ..rules.ops import EXACT
from ..verdict import Proved, Refuted, Unknown, Verdict
from .certificate import Evidence, find_counterexample, parse_srepr
from .ops import SympyOps, sign_pattern_symbols

GAMMA = sp.Symbol("gamma", nonnegative=True)


# ------------------------------------------------------------------------------------------------ setup
def sign_patterns(n: int) -> Iterable[tuple[int, ...]]:
    """All weight sign patterns in {+1, -1, 0}^n."""
    return itertools.product((1, -1, 0), repeat=n)


def neuron_symbols(signs: Sequence[int], inputs: str = "real") -> tuple[np.ndarray, np.ndarray, np.ndarray, sp.Symbol]:
    """(a, W (1 x n), b (1,), R) for one neuron with weight signs ``signs``; inputs "real" or "nonnegative"."""
    n = len(signs)
    kw = {"nonnegative": True} if inputs == "nonnegative" else {"real": True}
    a = np.array([sp.Symbol(f"a{i}", **kw) for i in range(n)], dtype=object)
    W = sign_pattern_symbols("w", signs).reshape(1, n)
    b = np.array([sp.Symbol("b", real=True)], dtype=object)
    R = sp.Symbol("R", real=True)
    return a, W, b, R


def symbolic_rules(n: int) -> list[Rule]:
    """The DTD root-point catalogue with symbolic parameters: LRP0, Gamma(gamma), ZPlus, ZBox(l, h), WSquare."""
    gamma = Gamma(0.25)
    gamma.gamma = GAMMA  # the rule body reads ops.const(self.gamma): a symbol passes through exactly
    zbox = ZBox(0, 1)
    zbox.low = np.array([sp.Symbol(f"l{i}", real=True) for i in range(n)], dtype=object)
    zbox.high = np.array([sp.Symbol(f"h{i}", real=True) for i in range(n)], dtype=object)
    return [LRP0(), gamma, ZPlus(), zbox, WSquare()]


def rule_label(rule: Rule) -> str:
    if isinstance(rule, ZBox) and isinstance(np.asarray(rule.low, dtype=object).ravel()[0], sp.Basic):
        return "ZBox(low=l, high=h)"
    return repr(rule)


def conclude(statement: str, method: str, ev: Evidence, seed: int = 0, **extra: Any) -> Verdict:
    """Proved if every identity held; else Refuted with an exact counterexample, or Unknown."""
    failed = ev.failed()
    if not failed:
        return Proved(statement, method, ev.to_certificate(seeds=[seed], **extra))
    first = failed[0]
    residual = parse_srepr(first["srepr"])
    cex = find_counterexample(residual, seed=seed)
    if cex is not None:
        return Refuted(statement, {"case": first["case"], "residual": first["residual"], "srepr": first["srepr"],
                                   "values": cex, "failed_cases": len(failed)}, method)
    return Unknown(statement, f"residual of case {first['case']!r} did not simplify to 0 and no exact "
                              f"counterexample was found: {first['residual']}")


# ------------------------------------------------------------------------------------------------ checkers
def record_per_rule_and_pattern(rules: Sequence[Rule], n_in: int, ev: Evidence,
                                residual: Callable[[Rule, SympyOps, np.ndarray, np.ndarray, np.ndarray, sp.Symbol],
                                                   sp.Expr | None]) -> int:
    """For each rule and weight sign pattern, record ``residual(rule, ops, a, W, b, R)`` as an identity to prove
    (under the conditions the rule body put on ``ops``); a residual of None marks a case without one (skipped).
    Returns the number of skipped cases."""
    skipped = 0
    for rule in rules:
        for signs in sign_patterns(n_in):
            ops = SympyOps()
            value = residual(rule, ops, *neuron_symbols(signs))
            if value is None:
                skipped += 1
                continue
            ev.identity(f"{rule_label(rule)} w-signs {signs}", value, ops.conditions)
    return skipped


def check_roots_on_hyperplane(rules: Sequence[Rule], n_in: int = 3, ev: Evidence | None = None) -> Verdict:
    r"""For each rule and weight sign pattern: :math:`w \cdot (a - t v) + b \equiv 0` with the rule's own t, v."""
    ev = ev or Evidence()
    statement = (f"for the rules {', '.join(rule_label(r) for r in rules)}: the root a - t v with t = z/(w.v) "
                 f"satisfies z(root) = 0 for all real a, b and every weight sign pattern (n_in = {n_in}), where w.v != 0")

    def z_at_root(rule: Rule, ops: SympyOps, a: np.ndarray, W: np.ndarray, b: np.ndarray, R: sp.Symbol) -> sp.Expr | None:
        t, V, den = rule.root_step(ops, a, W, b)
        return None if den[0] == 0 else W[0].dot(a - t[0] * V[0]) + b[0]

    skipped = record_per_rule_and_pattern(rules, n_in, ev, z_at_root)
    ev.notes.append(f"{skipped} (rule, sign pattern) cases have w.v identically 0 (no root by definition)")
    return conclude(statement, "SymPy: rule.root_step run on symbolic per-sign-pattern weights; residual simplifies to exactly 0",
                    ev, n_in=n_in, skipped_cases=skipped)


def check_conservation(rules: Sequence[Rule], n_in: int = 3, ev: Evidence | None = None) -> Verdict:
    r"""For each rule and weight sign pattern: :math:`\sum_i R_{i \leftarrow j} - R_j \equiv 0` where n_j != 0."""
    ev = ev or Evidence()
    statement = (f"for the rules {', '.join(rule_label(r) for r in rules)}: sum_i R_(i<-j) = R_j for all real a, b, R "
                 f"and every weight sign pattern (n_in = {n_in}), where the normaliser n_j != 0")

    def defect(rule: Rule, ops: SympyOps, a: np.ndarray, W: np.ndarray, b: np.ndarray, R: sp.Symbol) -> sp.Expr | None:
        if rule.normaliser(ops, a, W, b)[0] == 0:
            return None
        return ops.sum(rule.redistribute(ops, a, W, b, np.array([R], dtype=object))) - R

    skipped = record_per_rule_and_pattern(rules, n_in, ev, defect)
    ev.notes.append(f"{skipped} (rule, sign pattern) cases have a normaliser identically 0 (relevance dropped)")
    return conclude(statement, "SymPy: rule.redistribute run on symbolic per-sign-pattern weights; "
                               "sum minus R_j simplifies to exactly 0", ev, n_in=n_in, skipped_cases=skipped)


def check_epsilon_defect(epsilons: Sequence[float], n_in: int = 3, ev: Evidence | None = None) -> Verdict:
    r"""Epsilon's exact conservation defect, per bias convention and sign branch of the stabiliser."""
    ev = ev or Evidence()
    statement = ("for Epsilon(eps), eps in {" + ", ".join(repr(e) for e in epsilons) + "}: R_j - sum_i R_(i<-j) = "
                 "R_j (sigma eps + beta) / (sum_i a_i w_i + beta + sigma eps), sigma = sign0 of the normaliser "
                 "(+1 at 0), beta = 0 (bias='dtd') or b (bias='zennit')")
    for eps_value in epsilons:
        eps = sp.Rational(eps_value)
        for bias in ("dtd", "zennit"):
            rule = Epsilon(epsilon=eps_value, bias=bias)
            for branch in (1, -1):
                for signs in sign_patterns(n_in):
                    if not any(signs):
                        continue
                    ops = SympyOps(stabilise_branch=branch)
                    a, W, b, R = neuron_symbols(signs)
                    R_in = rule.redistribute(ops, a, W, b, np.array([R], dtype=object))
                    beta = b[0] if bias == "zennit" else 0
                    s = W[0].dot(a) + beta
                    expected = R * (branch * eps + beta) / (s + branch * eps)
                    residual = (R - ops.sum(R_in)) - expected
                    ev.identity(f"Epsilon({eps_value}, bias={bias}) sign0={branch:+d} w-signs {signs}", residual,
                                ops.conditions)
    return conclude(statement, "SymPy: Epsilon.redistribute per stabiliser branch; defect minus closed form simplifies to exactly 0",
                    ev, n_in=n_in)


# ------------------------------------------------------------------------------------------------ explicit nets
def explicit_rules() -> list[Rule]:
    """Concrete catalogue instances for the per-network checks."""
    return [LRP0(), Gamma(0.25), ZPlus(), ZBox(-1, 2), WSquare()]


def explicit_net_checks(kind: str, fast: bool) -> dict[str, int]:
    """Per-network evidence, exact: ``kind="roots"``: every root of every layer has z_j(root) = 0 (dtd.roots);
    ``kind="conservation"``: every layer's redistribution in dtd.lrp conserves exactly where no neuron was dropped
    (relevance the rule hands to inactive neurons of :math:`a_{l-1}`, which lrp's ReLU gate drops, is counted as
    passed on).

    Seeded nets small_net(500 + s, (3, 4, 3, 1)), inputs k/4 in [0, 2]. Returns counts (checked, skipped).
    """
    from ..dtd import lrp, roots
    from .witnesses import small_net

    checked = skipped = 0
    for seed in range(2 if fast else 3):
        net = small_net(500 + seed, (3, 4, 3, 1))
        rng = np.random.default_rng(seed)
        for _ in range(2 if fast else 4):
            x = [Fraction(int(k), 4) for k in rng.integers(0, 9, 3)]
            for rule in explicit_rules():
                if kind == "roots":
                    for layer in range(1, net.n_layers + 1):
                        rts = roots(net, x, rule, layer=layer)
                        W, b = net.weight(layer), net.bias(layer)
                        for j, point in rts.points.items():
                            if W[j].dot(point) + b[j] != 0:
                                raise AssertionError(f"{rule!r}: root of layer {layer} neuron {j} off its hyperplane")
                            checked += 1
                        skipped += sum(r == "zero denominator" for r in rts.skipped.values())
                else:
                    rel = lrp(net, x, rule)
                    acts = net.activations(x)
                    for c in rel.conservation:
                        # what the ReLU gate of a_(l-1) drops (relevance given to inactive neurons) is not the rule's
                        gate = getattr(c, "relu_dropped", 0)
                        l = c.layer
                        n = rule.normaliser(EXACT, acts[l - 1], net.weight(l), net.bias(l))
                        zero_normaliser = any(nj == 0 and Rj != 0 for nj, Rj in zip(n, rel.per_layer[l]))
                        if c.dropped_neurons or zero_normaliser:
                            skipped += 1
                        elif c.absorbed - gate != 0:
                            raise AssertionError(f"{rule!r}: layer {c.layer} absorbs {c.absorbed - gate}")
                        else:
                            checked += 1
    return {"checked": checked, "skipped": skipped}


def replay_explicit_net_checks(data: dict[str, Any]) -> bool:
    fresh = explicit_net_checks(str(data["check"]), bool(data["fast"]))
    return fresh == {"checked": data["checked"], "skipped": data["skipped"]} and fresh["checked"] > 0


def _add_explicit(ev: Evidence, kind: str, fast: bool) -> str:
    counts = explicit_net_checks(kind, fast)
    ev.witness("rule_explicit_nets", check=kind, fast=fast, **counts)
    what = "roots on their hyperplane" if kind == "roots" else "layers conserving exactly"
    note = (f"explicit nets: {counts['checked']} {what} for {', '.join(repr(r) for r in explicit_rules())} "
            f"({counts['skipped']} skipped: zero normaliser)")
    ev.notes.append(note)
    return note


# ------------------------------------------------------------------------------------------------ claims
def record_zplus_segment_condition(n_in: int, ev: Evidence) -> None:
    r"""z+'s stated condition: :math:`(1 - t) \sum_i a_i w^+_i = -(\sum_i a_i w^-_i + b)` per sign pattern.

    With a >= 0 and :math:`\sum_i a_i w^+_i > 0` this gives: the root stays on the segment (t <= 1) iff
    :math:`\sum_i a_i w^-_i + b \le 0`; and t >= 0 iff the neuron is active (z >= 0).
    """
    for signs in sign_patterns(n_in):
        if not any(s > 0 for s in signs):
            continue
        ops = SympyOps()
        a, W, b, _ = neuron_symbols(signs, inputs="nonnegative")
        t, V, den = ZPlus().root_step(ops, a, W, b)
        wneg = ops.neg(W)[0]
        ev.identity(f"z+ segment condition w-signs {signs}",
                    (1 - t[0]) * den[0] + (wneg.dot(a) + b[0]), ops.conditions)


def claim_rule_roots_on_hyperplane(fast: bool = False) -> Verdict:
    """Claim ``rule_roots_on_hyperplane`` over the DTD catalogue (LRP0, Gamma, ZPlus, ZBox, WSquare)."""
    n = 2 if fast else 3
    ev = Evidence()
    verdict = check_roots_on_hyperplane(symbolic_rules(n), n_in=n, ev=ev)
    if not verdict:
        return verdict
    record_zplus_segment_condition(n, ev)
    _add_explicit(ev, "roots", fast)
    statement = verdict.statement + ("; and z+'s stated condition: for a >= 0 its root lies on the segment "  # type: ignore[attr-defined]
                                     "(t <= 1) iff sum_i a_i w_i^- + b <= 0, from (1 - t) sum a w^+ = -(sum a w^- + b)")
    return conclude(statement, "SymPy: rule.root_step run on symbolic per-sign-pattern weights; residuals simplify to exactly 0",
                    ev, n_in=n, skipped_cases=verdict.certificate["skipped_cases"])  # type: ignore[attr-defined]


def claim_rule_conservation(fast: bool = False) -> Verdict:
    """Claim ``rule_conservation``: DTD rules (and Flat) conserve; Epsilon's defect in closed form."""
    n = 2 if fast else 3
    ev = Evidence()
    v1 = check_conservation(symbolic_rules(n) + [Flat()], n_in=n, ev=ev)
    if not v1:
        return v1
    v2 = check_epsilon_defect([1e-6] if fast else [1e-6, 0.25], n_in=n, ev=ev)
    if not v2:
        return v2
    _add_explicit(ev, "conservation", fast)
    statement = (v1.statement + "; and " + v2.statement)  # type: ignore[attr-defined]
    return conclude(statement, "SymPy: rule bodies on symbolic per-sign-pattern weights; residuals simplify to exactly 0", ev,
                    n_in=n)


def _zplus_ab_witness() -> dict[str, Any]:
    """Seeded search over small integer neurons with some a_i < 0 where z+ and alpha1-beta0 differ (exact)."""
    rng = np.random.default_rng(3)
    for _ in range(500):
        n = 3
        a = [Fraction(int(v)) for v in rng.integers(-3, 4, n)]
        w = [Fraction(int(v)) for v in rng.integers(-3, 4, n)]
        if min(a) >= 0:
            continue
        data = {"a": [str(v) for v in a], "w": [str(v) for v in w], "b": "0", "R": "1"}
        if _zplus_ab_differ(data):
            return data
    raise RuntimeError("no z+ / alpha1-beta0 witness found")  # pragma: no cover


def _zplus_ab_differ(data: dict[str, Any]) -> bool:
    a = np.array([Fraction(v) for v in data["a"]], dtype=object)
    W = np.array([[Fraction(v) for v in data["w"]]], dtype=object)
    b = np.array([Fraction(data["b"])], dtype=object)
    R = np.array([Fraction(data["R"])], dtype=object)
    zp = ZPlus().redistribute(EXACT, a, W, b, R)
    ab = AlphaBeta(alpha=1, beta=0).redistribute(EXACT, a, W, b, R)
    data["zplus"], data["alpha1beta0"] = [str(v) for v in zp], [str(v) for v in ab]
    return any(x != y for x, y in zip(zp, ab))


def check_zplus_alpha1_beta0(n_in: int = 3, ev: Evidence | None = None, zplus: Rule | None = None) -> Verdict:
    """z+ (dtd) equals AlphaBeta(1, 0) (dtd) for a >= 0, per sign pattern; a negative input where they differ."""
    ev = ev or Evidence()
    zplus = zplus or ZPlus()
    ab = AlphaBeta(alpha=1, beta=0)
    statement = (f"{zplus!r} equals AlphaBeta(alpha=1, beta=0) for all inputs a >= 0, real b, R and every weight "
                 f"sign pattern (n_in = {n_in}) where sum_i a_i w_i^+ != 0; for some input with a negative entry "
                 "they differ (explicit witness: captum-style z+, which clamps only the weights, is not "
                 "alpha1-beta0 there)")
    for signs in sign_patterns(n_in):
        if not any(s > 0 for s in signs):
            continue
        ops = SympyOps()
        a, W, b, R = neuron_symbols(signs, inputs="nonnegative")
        Rv = np.array([R], dtype=object)
        diff = zplus.redistribute(ops, a, W, b, Rv) - ab.redistribute(ops, a, W, b, Rv)
        for i, d in enumerate(diff):
            ev.identity(f"a >= 0 w-signs {signs} component {i}", d, ops.conditions)
    witness = _zplus_ab_witness()
    ev.witness("zplus_alpha1beta0_differ", **witness)
    return conclude(statement, "SymPy per sign pattern with a >= 0 symbols; exact witness for a negative input", ev,
                    n_in=n_in, seed=3)


def claim_zplus_is_alpha1_beta0(fast: bool = False) -> Verdict:
    return check_zplus_alpha1_beta0(n_in=2 if fast else 3)


def claim_gamma_limits(fast: bool = False) -> Verdict:
    r"""Gamma(0) = LRP-0 and :math:`\lim_{\gamma \to \infty}` Gamma(gamma) = z+ (component-wise SymPy ``limit``)."""
    n = 2 if fast else 3
    ev = Evidence()
    statement = (f"Gamma(0) redistributes exactly as LRP0 (all real a, b, R, every weight sign pattern, n_in = {n}); "
                 "and for a >= 0, lim_{gamma -> oo} Gamma(gamma) = ZPlus where sum_i a_i w_i^+ != 0")
    zplus = ZPlus()
    for signs in sign_patterns(n):
        ops = SympyOps()
        a, W, b, R = neuron_symbols(signs)
        Rv = np.array([R], dtype=object)
        g0 = Gamma(0).redistribute(ops, a, W, b, Rv)
        l0 = LRP0().redistribute(ops, a, W, b, Rv)
        for i, d in enumerate(g0 - l0):
            ev.identity(f"gamma=0 w-signs {signs} component {i}", d, ops.conditions)
        if not any(s > 0 for s in signs):
            continue
        ops = SympyOps()
        a, W, b, R = neuron_symbols(signs, inputs="nonnegative")
        Rv = np.array([R], dtype=object)
        rule = Gamma(0.25)
        rule.gamma = GAMMA
        gam = rule.redistribute(ops, a, W, b, Rv)
        zp = zplus.redistribute(ops, a, W, b, Rv)
        eps = sp.Symbol("epsilon", positive=True)
        for i in range(n):
            lim = sp.limit(gam[i], GAMMA, sp.oo)
            ev.identity(f"gamma->oo w-signs {signs} component {i}", lim - zp[i], ops.conditions)
            # the same limit without trusting sympy.limit: gamma = 1/epsilon gives a rational function of epsilon
            # whose reduced denominator at epsilon = 0 is sum_i a_i w_i^+ (non-zero), so it is continuous there
            at_eps = sp.cancel(sp.together(gam[i].xreplace({GAMMA: 1 / eps})))
            num, den = sp.fraction(at_eps)
            den0 = den.xreplace({eps: 0})
            ev.identity(f"gamma = 1/epsilon, epsilon -> 0 (continuity) w-signs {signs} component {i}",
                        num.xreplace({eps: 0}) / den0 - zp[i], list(dict.fromkeys(ops.conditions + [f"{den0} != 0"])))
    return conclude(statement, "SymPy: substitution gamma = 0; sympy.limit(gamma -> oo) of the rule bodies, confirmed "
                               "by gamma = 1/epsilon and continuity at epsilon = 0", ev,
                    n_in=n)


def replay_zplus_witness(data: dict[str, Any]) -> bool:
    """Re-check the z+ vs alpha1-beta0 witness exactly (they must differ and match the stored values)."""
    stored = (list(data["zplus"]), list(data["alpha1beta0"]))
    fresh = dict(data)
    ok = _zplus_ab_differ(fresh)
    return ok and (fresh["zplus"], fresh["alpha1beta0"]) == stored


__all__ = [
    "sign_patterns", "neuron_symbols", "symbolic_rules", "conclude", "check_roots_on_hyperplane",
    "check_conservation", "check_epsilon_defect", "record_zplus_segment_condition", "check_zplus_alpha1_beta0", "claim_rule_roots_on_hyperplane",
    "claim_rule_conservation", "claim_zplus_is_alpha1_beta0", "claim_gamma_limits", "replay_zplus_witness",
    "explicit_net_checks", "replay_explicit_net_checks",
]

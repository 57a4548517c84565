"""The fast paths of check_rule against slow textbook evaluations on generated nets.

- germs (the ``continuity`` property) carry gmpy2 coefficients: their one-sided limits are compared with
  ``sympy.limit`` on random rational functions of s, and the property's verdict on generated nets with the exact
  relevance R^0(x + s d) at a tiny s > 0 (plain exact LRP at actual points: no germs);
- check_rule evaluates each distinct case once (keyed by :meth:`Case.key`): keys must identify cases exactly
  (equal keys iff equal exact text), and check_rule's status and counts must equal those of evaluating the
  catalogue on every example hypothesis draws, up to the first violation.
"""

from __future__ import annotations

import operator
from fractions import Fraction as F
from typing import Any

import numpy as np
import sympy as sp
from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from dtd_formal.dtd import lrp
from dtd_formal.network import Network
from dtd_formal.properties import _rays  # the rays the property walks: shared, the verdict is what is checked
from dtd_formal.rules import LRP0, AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus
from dtd_formal.testing import NetworkSpec, cases, check_rule, evaluate_property
from dtd_formal.testing.germ import Germ, Undecided
from dtd_formal.testing.strategies import Case

S = sp.Symbol("s", positive=True)


# ---------------------------------------------------------------------------------------------------- germs
@st.composite
def rational_functions(draw: Any, depth: int = 3) -> tuple[Any, Any]:
    """(germ, SymPy expression) of one random rational function of s: leaves s and k/d, nodes + - * /."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return Germ.affine(0, 1), S
        k, d = draw(st.integers(-3, 3)), draw(st.sampled_from((1, 2, 3)))
        return F(k, d), sp.Rational(k, d)
    (g1, e1), (g2, e2) = draw(rational_functions(depth - 1)), draw(rational_functions(depth - 1))
    op = draw(st.sampled_from((operator.add, operator.sub, operator.mul, operator.truediv)))
    if op is operator.truediv:
        assume(sp.cancel(e2) != 0)
    try:
        germ = op(g1, g2)
    except (Undecided, ZeroDivisionError):  # a divisor that vanishes to the germs' precision: not decided
        assume(False)
    return germ, op(e1, e2)


@settings(max_examples=60, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(rational_functions())
def test_germ_limits_equal_sympy_limits(pair: tuple[Any, Any]) -> None:
    germ, expr = pair
    germ = germ if isinstance(germ, Germ) else Germ.const(germ)
    expected = sp.limit(expr, S, 0, "+")
    try:
        got = germ.limit()
    except Undecided:
        assume(False)
        return
    if expected.is_infinite or expected is sp.zoo:
        assert got is None
    else:
        assert got == F(int(expected.p), int(expected.q)) and isinstance(got, F)
    # every known coefficient: s^lo (c_0 + c_1 s + ...) is the Laurent expansion of the rational function
    if germ.c:
        series = sp.series(sp.cancel(expr), S, 0, germ.prec).removeO()
        for k, c in enumerate(germ.c):
            coefficient = series.coeff(S, germ.lo + k)
            assert F(int(coefficient.p), int(coefficient.q)) == c


TINY = F(1, 2**100)
RULES = [ZPlus(), LRP0(), Gamma(0.25), Epsilon(0.125), Flat(), AlphaBeta(2, 1), WSquare(), ZBox(-1, 2)]
SPEC = NetworkSpec(n_layers=(2, 3), bias="any", final_relu=None)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.sampled_from(RULES).flatmap(lambda rule: st.tuples(st.just(rule), cases(SPEC, rule.domain))))
def test_continuity_agrees_with_the_relevance_at_a_tiny_step(drawn: tuple[Any, Case]) -> None:
    """Textbook: along a ray, R^0(x + s d) is one rational function of s on (0, s0), s0 a ratio of the nets'
    small numbers; at s = 2^-100 it is within 2^-40 of its limit. A jump shows as a difference above 2^-20."""
    rule, case = drawn
    net, x = case.network, case.x
    out = evaluate_property("continuity", rule, net, x, case.output)
    assume(not out.error and "undecided_rays" not in out.values)
    at_x = lrp(net, x, rule, case.output).input
    rays = _rays(x, rule.domain)
    jumps = []
    for d in rays:
        near = lrp(net, x + TINY * np.array(d, dtype=object), rule, case.output).input
        gap = max(abs(u - v) for u, v in zip(near, at_x))
        assume(gap < F(1, 2**40) or gap > F(1, 2**20))  # never ambiguous on these nets; skipped if it were
        jumps.append(gap > F(1, 2**20))
    assert out.holds == (not any(jumps))
    if not out.holds:
        assert out.values["direction"] in [d for d, jump in zip(rays, jumps) if jump]


# ---------------------------------------------------------------------------------------------------- case keys
@settings(max_examples=30, deadline=None)
@given(st.lists(cases(NetworkSpec(n_layers=(1, 3), final_relu=None, output_sign="any")), min_size=2, max_size=8))
def test_case_keys_identify_cases_exactly(drawn: list[Case]) -> None:
    for a in drawn:
        for b in drawn:
            assert (a.key() == b.key()) == (repr(a) == repr(b))
    case = drawn[0]
    net = case.network
    copy = Case(Network([[[F(v.numerator, v.denominator) for v in row] for row in W] for W in net.weights],
                        [[F(v.numerator, v.denominator) for v in b] for b in net.biases], final_relu=net.final_relu),
                np.array([F(v.numerator, v.denominator) for v in case.x], dtype=object), case.output)
    assert copy.key() == case.key() and hash(copy.key()) == hash(case.key())
    weights = [W.copy() for W in net.weights]
    weights[-1][0, 0] += F(1, 7)
    assert Case(Network(weights, net.biases, final_relu=net.final_relu), case.x, case.output).key() != case.key()
    flipped = Network(net.weights, net.biases, final_relu=not net.final_relu)
    assert Case(flipped, case.x, case.output).key() != case.key()
    assert Case(net, case.x + F(1, 3), case.output).key() != case.key()


def test_conv_case_keys_are_their_exact_text() -> None:
    spec = NetworkSpec(kind="conv")
    seen: list[Case] = []

    @hypothesis_seed(3)
    @settings(max_examples=15, database=None, deadline=None, phases=(Phase.generate,))
    @given(cases(spec))
    def draw(case: Case) -> None:
        seen.append(case)

    draw()
    for a in seen:
        for b in seen:
            assert (a.key() == b.key()) == (repr(a) == repr(b))


# ---------------------------------------------------------------------------------------------------- counts
class _Stop(Exception):
    pass


def _direct_report(prop: str, rule: Any, spec: NetworkSpec, n: int, seed: int) -> dict[str, Any]:
    """The examples hypothesis draws for check_rule (same strategy, settings and seed), each evaluated by the
    catalogue, counted up to and including the first violation (as check_rule counts them)."""
    counts: dict[str, Any] = {"status": "passed", "examples": 0, "degenerate": 0, "kinks": 0, "zero_inputs": 0,
                              "zero_weights": 0}

    @hypothesis_seed(seed)
    @settings(max_examples=n, database=None, deadline=None, derandomize=False, report_multiple_bugs=False,
              verbosity=Verbosity.quiet, phases=(Phase.generate,), print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(case=cases(spec, rule.domain))
    def run(case: Case) -> None:
        if counts["status"] == "passed":  # hypothesis's replay of the failure is not counted
            out = evaluate_property(prop, rule, case.network, case.x, case.output, rule.domain)
            counts["examples"] += 1
            counts["degenerate"] += int(out.vacuous or case.stats.degenerate)
            counts["kinks"] += int(case.stats.kinks > 0)
            counts["zero_inputs"] += int(case.stats.zero_inputs > 0)
            counts["zero_weights"] += int(case.stats.zero_weights > 0)
            counts["status"] = "passed" if out.holds else "refuted"
        if counts["status"] == "refuted":
            raise _Stop

    try:
        run()
    except _Stop:
        pass
    return counts


def test_check_rule_reports_what_evaluating_every_example_gives() -> None:
    runs = [(ZPlus(), "conservation", "nonpositive", "passed"), (ZPlus(), "continuity", "nonpositive", "passed"),
            (ZPlus(), "root-in-domain", "any", "refuted"), (LRP0(), "positivity", "any", "refuted"),
            (WSquare(), "continuity", "any", "refuted"), (Gamma(0.25), "root-on-hyperplane", "any", "passed")]
    for rule, prop, bias, expected in runs:
        spec = NetworkSpec(n_layers=(2, 2), bias=bias)
        rep = check_rule(rule, [prop], max_examples=120, seed=4, networks=spec, solver=False)[prop]
        direct = _direct_report(prop, rule, spec, 120, 4)
        got = {"status": rep.status, "examples": rep.examples, "degenerate": rep.degenerate, **rep.zeros}
        assert got == direct and rep.status == expected, (rule, prop)

"""Tests of dtd_formal.symbolic: the SymPy ops, the network translation, certificates' exact text."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from dtd_formal.errors import BudgetError, InputError
from dtd_formal.network import Network
from dtd_formal.rules import LRP0, AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus
from dtd_formal.rules.ops import EXACT
from dtd_formal.symbolic import (
    InexactExpressionError,
    SympyOps,
    assert_exact,
    evaluate,
    input_symbols,
    sign_pattern_symbols,
    symbolic_gradient,
    to_rational,
    to_sympy,
)
from dtd_formal.symbolic.certificate import (
    Evidence,
    NotRationalFunction,
    find_counterexample,
    parse_srepr,
    rational_numerator,
    simplify_to_zero,
)
from dtd_formal.symbolic.ops import expr_srepr, expr_str
from dtd_formal.symbolic.rule_claims import conclude, neuron_symbols, sign_patterns, symbolic_rules
from dtd_formal.symbolic.translate import lambdify_exact, rule_expressions
from dtd_formal.symbolic.witnesses import small_net


def _frac(v: sp.Expr) -> Fraction:
    assert v.is_Rational, v
    return Fraction(int(v.p), int(v.q))


# ------------------------------------------------------------------------------------------------ ops
def test_const_is_the_exact_float_not_its_decimal_text() -> None:
    assert SympyOps.const(0.1) == sp.Rational(3602879701896397, 36028797018963968)
    assert SympyOps.const(0.1) != sp.Rational(1, 10)
    assert SympyOps.const(Fraction(-2, 3)) == sp.Rational(-2, 3)
    assert to_rational("0.25") == sp.Rational(1, 4)


def test_assert_exact_rejects_floats() -> None:
    x = sp.Symbol("x")
    assert_exact(sp.Rational(1, 3) * x)
    with pytest.raises(InexactExpressionError):
        assert_exact(sp.Float(0.5) * x)
    with pytest.raises(InexactExpressionError):
        assert_exact(np.array([x, 0.5], dtype=object))


def test_masks_follow_declared_signs_and_the_package_kink_convention() -> None:
    w = sign_pattern_symbols("w", (1, -1, 0))
    assert list(SympyOps.positive_mask(w)) == [1, 0, 0]
    assert list(SympyOps.negative_mask(w)) == [0, 1, 0]
    assert list(SympyOps.pos(w)) == [w[0], 0, 0]
    assert list(SympyOps.neg(w)) == [0, w[1], 0]
    # undecided sign: Heaviside with H(0) = 0 ([0 > 0] = 0), not SymPy's default 1/2
    x = sp.Symbol("x", real=True)
    m = SympyOps.positive_mask([x])[0]
    assert m.xreplace({x: 0}) == 0 and m.xreplace({x: 2}) == 1 and m.xreplace({x: -2}) == 0
    assert sp.Heaviside(0) == sp.Rational(1, 2)  # the pitfall this convention avoids


def test_safe_divide_records_conditions_and_drops_zero_normalisers() -> None:
    ops = SympyOps()
    x = sp.Symbol("x", real=True)
    out = ops.safe_divide(np.array([1, 2], dtype=object), np.array([0, x], dtype=object))
    assert out[0] == 0 and out[1] == 2 / x
    assert ops.conditions == ["x != 0"]


def test_stabilise_branches() -> None:
    x = sp.Symbol("x", real=True)
    eps = sp.Rational(1, 100)
    assert SympyOps(stabilise_branch=1).stabilise([x], eps)[0] == x + eps
    assert SympyOps(stabilise_branch=-1).stabilise([x], eps)[0] == x - eps
    pw = SympyOps().stabilise([x], eps)[0]
    assert pw.xreplace({x: 0}) == eps  # sign0(0) = +1
    assert SympyOps().stabilise([sp.Integer(-2)], eps)[0] == -2 - eps


ALL_RULES = [LRP0(), LRP0(bias="zennit"), Epsilon(0.25), Epsilon(1e-6, bias="zennit"), Gamma(0.25),
             Gamma(0.5, bias="zennit"), ZPlus(), ZPlus(bias="zennit"), AlphaBeta(2, 1), AlphaBeta(2, 1, bias="zennit"),
             ZBox(-1, 2), WSquare(), WSquare(bias="zennit"), Flat()]

small = st.integers(-6, 6).map(lambda k: Fraction(k, 3))


@given(a=st.lists(small, min_size=3, max_size=3), w=st.lists(small, min_size=6, max_size=6),
       b=st.lists(small, min_size=2, max_size=2), R=st.lists(small, min_size=2, max_size=2))
def test_every_rule_body_agrees_with_the_exact_backend(a: list, w: list, b: list, R: list) -> None:
    """The same rule body on SymPy Rationals gives exactly the ExactOps (Fraction) result."""
    A = np.array(a, dtype=object)
    W = np.array(w, dtype=object).reshape(2, 3)
    B, Rv = np.array(b, dtype=object), np.array(R, dtype=object)
    sA, sW, sB, sR = (np.array([to_rational(v) for v in arr.ravel()], dtype=object).reshape(arr.shape)
                      for arr in (A, W, B, Rv))
    for rule in ALL_RULES:
        ref = rule.redistribute(EXACT, A, W, B, Rv)
        got = rule.redistribute(SympyOps(), sA, sW, sB, sR)
        assert [_frac(sp.sympify(v)) for v in got] == list(ref), rule


def test_symbolic_redistribution_specialises_to_the_exact_one() -> None:
    """A per-sign-pattern symbolic expression, evaluated at values of that pattern, matches ExactOps."""
    rng = np.random.default_rng(0)
    for signs in [(1, -1, 1), (1, 0, -1), (-1, 1, 1)]:
        w = sign_pattern_symbols("w", signs).reshape(1, 3)
        a = np.array(sp.symbols("a0:3", real=True), dtype=object)
        b = np.array([sp.Symbol("b", real=True)], dtype=object)
        for rule in (ZPlus(), Gamma(0.25), WSquare(), ZBox(-1, 1), LRP0(bias="zennit")):
            expr = rule.redistribute(SympyOps(), a, w, b, np.array([sp.Integer(1)], dtype=object))
            for _ in range(5):
                av = [Fraction(int(k), 2) for k in rng.integers(-5, 6, 3)]
                wv = [Fraction(int(rng.integers(1, 5)) * s, 3) for s in signs]
                bv = Fraction(int(rng.integers(-3, 4)), 4)
                subs = {**{a[i]: to_rational(av[i]) for i in range(3)}, b[0]: to_rational(bv)}
                subs.update({w[0, i]: to_rational(wv[i]) for i in range(3) if signs[i]})
                ref = rule.redistribute(EXACT, np.array(av, dtype=object), np.array([wv], dtype=object),
                                        np.array([bv], dtype=object), np.array([Fraction(1)], dtype=object))
                if any(rule.normaliser(EXACT, np.array(av, dtype=object), np.array([wv], dtype=object),
                                       np.array([bv], dtype=object)) == 0):
                    continue
                got = [sp.sympify(e).xreplace(subs) for e in expr]
                assert [_frac(v) for v in got] == list(ref), (rule, signs, av, wv, bv)


# ------------------------------------------------------------------------------------------------ translation
def _hand_net() -> Network:
    # f(x) = relu(x0 - x1) - relu(x1 / 2) + 1/2
    return Network([[[1, -1], [0, Fraction(1, 2)]], [[1, -1]]], [[0, 0], [Fraction(1, 2)]])


def test_global_form_on_a_hand_derived_net() -> None:
    net = _hand_net()
    xs = input_symbols(2)
    f = to_sympy(net, output=0, symbols=xs)
    assert evaluate(f, [3, 1], xs) == 2  # relu(2) - relu(1/2) + 1/2
    assert evaluate(f, [1, 3], xs) == sp.Rational(-1, 1)  # 0 - 3/2 + 1/2
    assert evaluate(f, ["1/3", "-1"], xs) == sp.Rational(4, 3) + sp.Rational(1, 2)
    assert f.has(sp.Max)
    assert lambdify_exact(net)(sp.Rational(3), sp.Rational(1)) == 2


def test_global_form_agrees_with_forward_and_lambdify_is_exact() -> None:
    rng = np.random.default_rng(1)
    for seed in range(3):
        net = small_net(seed, (3, 4, 2, 2), final_relu=bool(seed % 2))
        xs = input_symbols(3)
        exprs = to_sympy(net, symbols=xs)
        fns = [lambdify_exact(net, c) for c in range(2)]
        for _ in range(10):
            x = [Fraction(int(k), 7) for k in rng.integers(-20, 21, 3)]
            fx = net.forward(x)
            for c in range(2):
                assert _frac(evaluate(exprs[c], x, xs)) == fx[c]
                assert _frac(fns[c](*x)) == fx[c]


def test_per_region_form_and_gradient() -> None:
    rng = np.random.default_rng(2)
    net = small_net(4, (3, 5, 4, 1))
    xs = input_symbols(3)
    for _ in range(10):
        x = [Fraction(int(k), 5) for k in rng.integers(-10, 11, 3)]
        pattern = net.pattern(x)
        expr = net.to_sympy(pattern, output=0, symbols=xs)
        assert _frac(expr.xreplace(dict(zip(xs, map(to_rational, x))))) == net.forward(x)[0]
        grad = symbolic_gradient(net, pattern, 0, xs)
        if not any(np.any(p == 0) for p in pattern):
            assert [_frac(g) for g in grad] == list(net.gradient(x, 0))


def test_budget_refuses_a_large_global_form_and_offers_the_per_region_one() -> None:
    net = small_net(0, (4, 5, 4, 1))  # 9 ReLUs
    with pytest.raises(BudgetError, match=r"9 ReLUs.*budget of 8.*per-region form"):
        to_sympy(net)
    big = small_net(0, (10, 10, 10, 2), final_relu=True)  # 22 ReLUs: per-region form is fine
    x = [Fraction(1, 2)] * 10
    e = big.to_sympy(big.pattern(x), output=1)
    assert _frac(e.xreplace({s: sp.Rational(1, 2) for s in input_symbols(10)})) == big.forward(x)[1]
    assert to_sympy(net, max_relus=9) is not None


def test_to_sympy_checks_symbol_count() -> None:
    with pytest.raises(InputError):
        to_sympy(_hand_net(), symbols=input_symbols(3))


# ------------------------------------------------------------------------------------------------ certificate text
def test_srepr_round_trip_is_exact_and_keeps_assumptions() -> None:
    w = sp.Symbol("w", positive=True)
    e = sp.Rational(1, 3) * w + sp.Max(0, -w, evaluate=False)
    back = parse_srepr(sp.srepr(e))
    assert back == sp.Rational(1, 3) * w and next(iter(back.free_symbols)).is_positive


@pytest.mark.parametrize("text", [
    "Float('0.1', precision=53)", "__import__('os').system('true')", "Integer(1).__class__", "1.5",
    "Symbol('x') + 1", "open('x')", "Max(Integer(1), '__import__(1)')", "Symbol('a b')",
])
def test_parse_srepr_refuses_non_exact_or_foreign_text(text: str) -> None:
    with pytest.raises(InputError):
        parse_srepr(text)


def test_simplify_to_zero_and_counterexample() -> None:
    x = sp.Symbol("x", positive=True)
    assert simplify_to_zero((x**2 - 1) / (x - 1) - x - 1)[0]
    ok, _, rest = simplify_to_zero(x / (x + 1) - 1)
    assert not ok and rest != 0
    cex = find_counterexample(x / (x + 1) - 1)
    assert cex is not None
    xv = Fraction(cex["x"])
    assert xv > 0 and Fraction(cex["residual"]) == xv / (xv + 1) - 1 != 0


_SYMS = (sp.Symbol("x", positive=True), sp.Symbol("y", negative=True), sp.Symbol("z", real=True),
         sp.Symbol("u", nonnegative=True))


@st.composite
def rational_expressions(draw: st.DrawFn, depth: int = 3) -> sp.Expr:
    """Random rational functions of signed symbols: leaves symbols and k/d, nodes + - * / and small powers."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return draw(st.sampled_from(_SYMS))
        return sp.Rational(draw(st.integers(-3, 3)), draw(st.integers(1, 3)))
    left, right = draw(rational_expressions(depth - 1)), draw(rational_expressions(depth - 1))
    op = draw(st.sampled_from(("+", "-", "*", "/", "**")))
    if op == "/":
        return left / right if sp.cancel(right) != 0 else left
    if op == "**":
        return left ** draw(st.integers(-2, 2)) if sp.cancel(left) != 0 else left
    return {"+": left + right, "-": left - right, "*": left * right}[op]


def _field_zero(expr: sp.Expr) -> bool:
    """Textbook: SymPy's own conversion into the field QQ(symbols) (gcd-reduced numerator and denominator)."""
    gens = sorted(expr.free_symbols, key=sp.default_sort_key)
    if not gens:
        return expr == 0
    field = sp.QQ.frac_field(*gens)
    return field.from_sympy(expr) == field.zero


@settings(max_examples=80, deadline=None)
@given(rational_expressions(), rational_expressions())
def test_rational_numerator_decides_zero_as_the_field_does(e: sp.Expr, f: sp.Expr) -> None:
    for expr in (e, e - f, e * f - f * e, e - sp.cancel(e), (e + f) ** 2 - e**2 - 2 * e * f - f**2):
        try:
            numerator = rational_numerator(expr)
        except NotRationalFunction:  # division by a zero polynomial hidden in unexpanded form
            continue
        assert (numerator == 0) == _field_zero(expr)
        holds, method, _ = simplify_to_zero(expr)
        assert holds == _field_zero(expr)
        if holds and expr != 0:
            assert method == "zero in QQ(symbols)"
    if sp.cancel(e - f) != 0:  # a broken identity is never proved
        assert not simplify_to_zero(e - f)[0]


def test_broken_identities_are_not_proved() -> None:
    x, y = sp.Symbol("x", positive=True), sp.Symbol("y", real=True)
    true = (x**2 - y**2) / (x - y) - (x + y)  # needs the cancellation of (x - y)
    assert simplify_to_zero(true) == (True, "zero in QQ(symbols)", 0)
    for broken in ((x**2 - y**2) / (x - y) - x, (x**2 - y**2) / (x - y) - (x + y) + y / (x * x + 1),
                   x / (x + y) + y / (x + y) - 1 + sp.Rational(1, 10**30)):
        holds, method, rest = simplify_to_zero(broken)
        assert not holds and method == "cancel(expand)" and rest != 0
    ev = Evidence()
    assert not ev.identity("broken", (x**2 - y**2) / (x - y) - x)
    verdict = conclude("a broken identity", "test", ev)
    assert verdict.status == "refuted" and verdict.counterexample["values"]["residual"] != "0"
    with pytest.raises(NotRationalFunction):
        rational_numerator(1 / (x * (y + 1) - x * y - x))
    with pytest.raises(NotRationalFunction):
        rational_numerator(sp.sqrt(x) * y)


def test_remembered_printing_gives_sympys_text() -> None:
    exprs = []
    for rule in symbolic_rules(2):
        for signs in sign_patterns(2):
            ops = SympyOps()
            a, W, b, R = neuron_symbols(signs)
            exprs.extend(rule.redistribute(ops, a, W, b, np.array([R], dtype=object)))
            exprs.append(ops.sum(rule.redistribute(ops, a, W, b, np.array([R], dtype=object))) - R)
    x = sp.Symbol("x", positive=True)
    exprs += [sp.Max(0, x, evaluate=False), sp.Piecewise((x, x > 1), (0, True)), sp.Rational(-3, 7), x**-2,
              sp.Heaviside(x - 1, 0)]
    for _ in range(2):  # the second pass reads the remembered texts
        for e in exprs:
            assert expr_str(e) == str(e) and expr_srepr(e) == sp.srepr(e)


def test_matmul_leaves_out_zero_products_and_equals_numpys_dot() -> None:
    x, y, n = sp.Symbol("x", positive=True), sp.Symbol("y", real=True), sp.Symbol("n", real=True)
    A = np.array([[0, x, sp.Integer(0)], [y, 1, x * y], [0, 0, 0]], dtype=object)
    B = np.array([[x / (n + y), 0], [0, sp.Rational(1, 3)], [1 / (x + n), y]], dtype=object)
    v = np.array([x / (n + 1), sp.Integer(0), y], dtype=object)
    for left, right in ((A, B), (A, v), (v, A.T), (v, v), (A[0], B)):
        got, numpy = SympyOps.matmul(left, right), np.asarray(left, dtype=object).dot(np.asarray(right, dtype=object))
        assert np.shape(got) == np.shape(numpy)
        assert all(sp.srepr(g) == sp.srepr(h) for g, h in zip(np.ravel(got), np.ravel(numpy)))
    # where a factor is infinite the product is SymPy's (0 * zoo = nan), never dropped
    assert SympyOps.matmul(np.array([0, 1], dtype=object), np.array([sp.zoo, x], dtype=object)) is sp.nan


def test_rule_expressions_match_the_hand_derived_zplus_root() -> None:
    """z+ with w = (w0 > 0, w1 < 0, w2 > 0): t = z / (a0 w0 + a2 w2), root = a - t (a0, 0, a2)."""
    w = sign_pattern_symbols("w", (1, -1, 1)).reshape(1, 3)
    a = np.array(sp.symbols("a0:3", nonnegative=True), dtype=object)
    b = np.array([sp.Symbol("b", real=True)], dtype=object)
    ex = rule_expressions(ZPlus(), a, w, b, R=[sp.Symbol("R")])
    z = w[0, 0] * a[0] + w[0, 1] * a[1] + w[0, 2] * a[2] + b[0]
    t = z / (a[0] * w[0, 0] + a[2] * w[0, 2])
    hand = [a[0] - t * a[0], a[1], a[2] - t * a[2]]
    assert all(sp.simplify(r - h) == 0 for r, h in zip(ex["root"][0], hand))
    assert sp.simplify(ex["redistribution"][1]) == 0  # the negative weight gets nothing
    assert ex["conditions"] == [str(a[0] * w[0, 0] + a[2] * w[0, 2]) + " != 0"]

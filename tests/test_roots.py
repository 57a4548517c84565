r"""Train-free root points (dtd_formal.dtd.roots): hand-derived roots of every root rule from docs/theory.md's table
(:math:`t_j = z_j / (w_j \cdot v_j)`, root :math:`= a - t_j v_j`), the paper-code definition
:math:`t_j = R_j / (w_j \cdot v_j)`, and properties on random exact nets: every true root is a zero of its
neuron, ZBox roots stay in the box when t is in [0, 1], and a z+ root is non-negative iff
:math:`\sum_i a_i w^-_{ij} + b_j \le 0`.

Hand net (3 -> 2 -> 1): W1 = [[1, -1, 2], [-1, 1, 1]], b1 = (-1, 2), W2 = [[1, 1]], b2 = (0), x = (2, 1, 1);
z1 = (2, 2), a1 = (2, 2), f = 4.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dtd_formal as dtd
from dtd_formal.errors import InputError
from dtd_formal.network import Network
from dtd_formal.rules import LRP0, AlphaBeta, Epsilon, EpsilonPlus, Flat, Gamma, WSquare, ZBox, ZPlus
from twins import twin_forward

HAND = Network([[[1, -1, 2], [-1, 1, 1]], [[1, 1]]], [[-1, 2], [0]])
X = [2, 1, 1]


def fl(values) -> list[F]:
    return [F(v) for v in np.asarray(values, dtype=object).ravel()]


def v(*vals) -> list[F]:
    return [F(x) for x in vals]


# ---------------------------------------------------------------------------------------------- hand cases
# (rule, layer-1 neuron 0: (direction, t, root), neuron 1: (direction, t, root) or None for a zero denominator)
HAND_ROOTS = [
    # LRP-0: v = a = (2,1,1). n0: w.v = 2-1+2 = 3, t = 2/3. n1: w.v = -2+1+1 = 0 -> skipped
    (LRP0(), (v(2, 1, 1), F(2, 3), v(F(2, 3), F(1, 3), F(1, 3))), None),
    # gamma = 1: v = a (1 + [w > 0]). n0: v = (4,1,2), w.v = 4-1+4 = 7, t = 2/7 -> (2-8/7, 1-2/7, 1-4/7)
    # n1: v = (2,2,2), w.v = 2, t = 1 -> (0,-1,-1)
    (Gamma(1), (v(4, 1, 2), F(2, 7), v(F(6, 7), F(5, 7), F(3, 7))), (v(2, 2, 2), F(1), v(0, -1, -1))),
    # z+: v = a [w > 0]. n0: v = (2,0,1), w.v = 4, t = 1/2 -> (1,1,1/2). n1: v = (0,1,1), w.v = 2, t = 1 -> (2,0,0)
    (ZPlus(), (v(2, 0, 1), F(1, 2), v(1, 1, F(1, 2))), (v(0, 1, 1), F(1), v(2, 0, 0))),
    # zB on [0, 3]: v = a - 0 (w > 0), a - 3 (w < 0). n0: v = (2,-2,1), w.v = 6, t = 1/3 -> (4/3, 5/3, 2/3)
    # n1: v = (-1,1,1), w.v = 3, t = 2/3 -> (8/3, 1/3, 1/3)
    (ZBox(0, 3), (v(2, -2, 1), F(1, 3), v(F(4, 3), F(5, 3), F(2, 3))),
     (v(-1, 1, 1), F(2, 3), v(F(8, 3), F(1, 3), F(1, 3)))),
    # w^2: v = w. n0: w.v = 6, t = 1/3 -> (5/3, 4/3, 1/3). n1: w.v = 3, t = 2/3 -> (8/3, 1/3, 1/3)
    (WSquare(), (v(1, -1, 2), F(1, 3), v(F(5, 3), F(4, 3), F(1, 3))),
     (v(-1, 1, 1), F(2, 3), v(F(8, 3), F(1, 3), F(1, 3)))),
]


@pytest.mark.parametrize("rule, n0, n1", HAND_ROOTS, ids=[r[0].spec() for r in HAND_ROOTS])
def test_layer1_roots_by_hand(rule, n0, n1) -> None:
    rts = dtd.roots(HAND, X, rule, layer=1)
    assert rts.layer == 1 and rts.definition == "true" and rts.rule is rule
    assert fl(rts.layer_input) == v(2, 1, 1)
    for j, expected in ((0, n0), (1, n1)):
        if expected is None:
            assert j not in rts and rts.skipped == {j: "zero denominator"}
            continue
        direction, t, root = expected
        assert fl(rts.directions[j]) == direction
        assert rts.steps[j] == t
        assert fl(rts[j]) == root
        assert all(isinstance(x, F) for x in rts[j])
    assert len(rts) == (2 if n1 is not None else 1)


@pytest.mark.parametrize("rule", [LRP0(), Gamma(1), ZPlus(), ZBox(0, 3), WSquare()], ids=lambda r: r.spec())
def test_layer2_roots_by_hand(rule) -> None:
    """Output layer: a1 = (2, 2), w = (1, 1), b = 0, z = 4. Every rule's root is (0, 0): LRP-0 / z+ / zB(0, 3):
    v = (2, 2), t = 1; gamma = 1: v = (4, 4), t = 1/2; w^2: v = (1, 1), t = 2."""
    rts = dtd.roots(HAND, X, rule, layer=2)
    assert fl(rts[0]) == v(0, 0)
    assert rts.steps[0] == {"lrp0": 1, "gamma": F(1, 2), "zplus": 1, "zbox": 1, "wsquare": 2}[rule.name]


def test_skipped_reasons() -> None:
    # two outputs, explaining output 1: output 0 is "not explained"; layer-1 neuron with z < 0 is "inactive"
    net = Network([[[1, 0], [0, -1]], [[1, 1], [1, 0]]], [[0, 0], [0, 0]], final_relu=True)
    rts = dtd.roots(net, [1, 1], ZPlus(), layer=1)
    assert rts.skipped == {1: "inactive"} and list(rts) == [0]
    rts2 = dtd.roots(net, [1, 1], ZPlus(), layer=2, output=1)
    assert rts2.skipped == {0: "not explained"} and list(rts2) == [1]
    # an inactive explained output (final ReLU) has no root
    dead = Network([[[1]], [[-1]]], [[0], [0]], final_relu=True)
    assert dtd.roots(dead, [1], LRP0(), layer=2).skipped == {0: "inactive"}
    # a last layer without ReLU gets a root even for a negative logit: z = -1 - 2 = -3, v = a = 1, w.v = -1,
    # t = 3, root = 1 - 3 = -2 (and indeed -(-2) - 2 = 0)
    lin = Network([[[1]], [[-1]]], [[0], [-2]])
    r = dtd.roots(lin, [1], LRP0(), layer=2)
    assert r.steps[0] == 3 and fl(r[0]) == [-2]


def test_paper_code_definition_differs_where_c_is_not_one() -> None:
    """Bias-free net: W1 = [[1, 1], [2, 0]], W2 = [[2, 1]], x = (1, 2): z1 = (3, 2), f = 8.
    LRP-0 at layer 2: R^1 = (3*2, 2*1)/8 * 8 = (6, 2), so c = R/a = (2, 1).
    Neuron 0: w.v = 3; true t = z/3 = 1 (root 0), paper-code t = R/3 = 2 (root (-1, -2), where z_0 = -3).
    Neuron 1 (c = 1): both t = 1, root 0."""
    net = Network([[[1, 1], [2, 0]], [[2, 1]]], [[0, 0], [0]])
    x = [1, 2]
    true = dtd.roots(net, x, LRP0(), layer=1)
    paper = dtd.roots(net, x, LRP0(), layer=1, definition="paper-code")
    assert paper.definition == "paper-code"
    assert fl(true[0]) == v(0, 0) and true.steps[0] == 1
    assert fl(paper[0]) == v(-1, -2) and paper.steps[0] == 2
    assert fl(true[1]) == fl(paper[1]) == v(0, 0)
    # the paper-code point is not a root: z_0 there is -3
    assert sum(F(w) * p for w, p in zip(net.weight(1)[0], paper[0])) == -3
    # z+: neuron 1 has w = (2, 0): v = (1, 0), t = 2/2 = 1 either way -> (0, 2)
    pz = dtd.roots(net, x, ZPlus(), layer=1, definition="paper-code")
    assert fl(pz[0]) == v(-1, -2) and fl(pz[1]) == v(0, 2)


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"x": [1, 2]}, r"expected 3 values, got shape \(2,\)"),
        ({"x": [1.0, float("nan"), 1.0]}, "nan"),
        ({"layer": 0}, r"layer 0 does not exist: layers are numbered 1\.\.2"),
        ({"layer": 3}, r"layer 3 does not exist"),
        ({"output": 1}, r"output 1 does not exist"),
        ({"output": -1}, r"output -1 does not exist"),
        ({"rule": Epsilon(1e-6)}, r"epsilon:1e-06 is not a root-point rule"),
        ({"rule": AlphaBeta()}, r"alphabeta:2\.0,1\.0 is not a root-point rule"),
        ({"rule": Flat()}, r"flat is not a root-point rule"),
        ({"rule": EpsilonPlus()}, r"single Rule, got EpsilonPlus"),
        ({"definition": "paper"}, r"'true' or 'paper-code', got 'paper'"),
    ],
)
def test_roots_errors_name_the_value(kwargs, message) -> None:
    args = {"x": X, "rule": ZPlus(), "layer": 1, "output": 0, "definition": "true"} | kwargs
    with pytest.raises(InputError, match=message):
        dtd.roots(HAND, args.pop("x"), args.pop("rule"), **args)


def test_rule_roots_policy_of_a_non_root_rule_errors() -> None:
    with pytest.raises(InputError, match="not a root-point rule"):
        dtd.rule_roots(Flat())(1, 0, np.array([F(1)] * 3, dtype=object), HAND)


# ---------------------------------------------------------------------------------------------- properties
frac = st.builds(F, st.integers(-4, 4), st.sampled_from([1, 1, 2, 3]))
inp = st.builds(F, st.integers(0, 6), st.sampled_from([1, 2, 3, 5]))


@st.composite
def nets(draw, x_strategy=inp, min_layers: int = 1):
    L = draw(st.integers(min_layers, 3))
    sizes = [draw(st.integers(1, 3)) for _ in range(L)] + [draw(st.integers(1, 2))]
    Ws = [[[draw(frac) for _ in range(sizes[l])] for _ in range(sizes[l + 1])] for l in range(L)]
    bs = [[draw(frac) for _ in range(sizes[l + 1])] for l in range(L)]
    return Network(Ws, bs, final_relu=draw(st.booleans())), [draw(x_strategy) for _ in range(sizes[0])]


def twin_activations(net: Network, x) -> list[list[F]]:
    """a_0..a_L by plain loops (tests/twins.py)."""
    return twin_forward(net, x)[1]


def twin_direction(rule, a: list[F], w: list[F]) -> list[F]:
    """docs/theory.md's table of search directions (section 2.4)."""
    if rule.name == "lrp0":
        return list(a)
    if rule.name == "gamma":
        g = F(rule.gamma)
        return [ai * (1 + g * (wi > 0)) for ai, wi in zip(a, w)]
    if rule.name == "zplus":
        return [ai if wi > 0 else F(0) for ai, wi in zip(a, w)]
    if rule.name == "zbox":
        lo, hi = F(rule.low), F(rule.high)
        return [ai - lo if wi > 0 else (ai - hi if wi < 0 else F(0)) for ai, wi in zip(a, w)]
    if rule.name == "wsquare":
        return list(w)
    raise AssertionError(rule)


ROOT_RULES = [LRP0(), Gamma(F(1, 4)), Gamma(2), ZPlus(), ZBox(-1, 3), WSquare()]


@pytest.mark.parametrize("rule", ROOT_RULES, ids=lambda r: r.spec())
def test_every_true_root_is_a_zero_of_its_neuron(rule) -> None:
    counts: Counter = Counter()

    @given(case=nets())
    def prop(case) -> None:
        net, x = case
        acts = twin_activations(net, x)
        for l in range(1, net.n_layers + 1):
            a = acts[l - 1]
            rts = dtd.roots(net, x, rule, layer=l)
            W, b = net.weight(l), net.bias(l)
            for j in range(W.shape[0]):
                w = [F(t) for t in W[j]]
                z = sum((wi * ai for wi, ai in zip(w, a)), F(b[j]))
                vj = twin_direction(rule, a, w)
                den = sum((wi * vi for wi, vi in zip(w, vj)), F(0))
                if l == net.n_layers and j != 0:
                    assert rts.skipped[j] == "not explained"
                elif net.has_relu(l) and not z > 0:
                    assert rts.skipped[j] == "inactive"
                elif den == 0:
                    assert rts.skipped[j] == "zero denominator"
                    counts["zero denominator"] += 1
                else:
                    t = z / den
                    root = [ai - t * vi for ai, vi in zip(a, vj)]
                    assert rts.steps[j] == t and fl(rts.directions[j]) == vj and fl(rts[j]) == root
                    # the defining property: z_j(root) = 0 exactly
                    assert sum((wi * ri for wi, ri in zip(w, fl(rts[j]))), F(b[j])) == 0
                    counts["roots"] += 1
        counts["examples"] += 1

    prop()
    assert counts["roots"] >= 25, dict(counts)


def test_zbox_roots_stay_in_the_box_when_t_is_in_0_1() -> None:
    """For a in [l, h]: root_i = (1 - t) a_i + t l_i (w > 0), (1 - t) a_i + t h_i (w < 0), a_i (w = 0): a convex
    combination of box points when 0 <= t <= 1."""
    low, high = F(0), F(2)
    rule = ZBox(low, high)
    counts: Counter = Counter()
    box_in = st.builds(F, st.integers(0, 6), st.sampled_from([3]))  # [0, 2]

    @given(case=nets(x_strategy=box_in))
    def prop(case) -> None:
        net, x = case
        rts = dtd.roots(net, x, rule, layer=1)
        for j, root in rts.points.items():
            t = rts.steps[j]
            if 0 <= t <= 1:
                counts["t in [0, 1]"] += 1
                assert all(low <= r <= high for r in root)
                assert rule.domain.contains(root)
            else:
                counts["t outside"] += 1

    prop()
    assert counts["t in [0, 1]"] >= 15, dict(counts)


def test_zplus_root_in_domain_iff_negative_part_plus_bias_is_non_positive() -> None:
    """docs/theory.md (2.4): for a >= 0 and an active neuron with w.v > 0, the z+ root a - t a[w > 0] is >= 0 iff
    t = z / sum a w+ <= 1 iff sum_i a_i w-_ij + b_j <= 0. Checked on every layer of random nets, both ways."""
    rule = ZPlus()
    counts: Counter = Counter()

    @given(case=nets())
    def prop(case) -> None:
        net, x = case
        acts = twin_activations(net, x)
        for l in range(1, net.n_layers + 1):
            a = acts[l - 1]
            rts = dtd.roots(net, x, rule, layer=l)
            for j, root in rts.points.items():
                w = [F(t) for t in net.weight(l)[j]]
                condition = sum((ai * min(wi, F(0)) for ai, wi in zip(a, w)), F(0)) + F(net.bias(l)[j]) <= 0
                in_domain = all(r >= 0 for r in root)
                assert in_domain == condition
                assert rule.domain.contains(root) == condition
                counts["in" if condition else "out"] += 1

    prop()
    assert counts["in"] >= 10 and counts["out"] >= 10, dict(counts)


def test_paper_code_roots_follow_their_definition_on_random_nets() -> None:
    """paper-code t_j = R_j / (w_j . v_j) with R from LRP with the same rule; equals the true root iff R_j = z_j."""
    rule = ZPlus()
    counts: Counter = Counter()

    @given(case=nets(min_layers=2))
    def prop(case) -> None:
        net, x = case
        acts = twin_activations(net, x)
        R = dtd.lrp(net, x, rule).per_layer  # hidden-layer R_j differs from z_j in general
        for l in range(1, net.n_layers + 1):
            a = acts[l - 1]
            true = dtd.roots(net, x, rule, layer=l)
            paper = dtd.roots(net, x, rule, layer=l, definition="paper-code")
            assert set(true) == set(paper)
            for j in paper:
                w = [F(t) for t in net.weight(l)[j]]
                vj = twin_direction(rule, a, w)
                den = sum((wi * vi for wi, vi in zip(w, vj)), F(0))
                assert paper.steps[j] == F(R[l][j]) / den
                z = sum((wi * ai for wi, ai in zip(w, a)), F(net.bias(l)[j]))
                same = F(R[l][j]) == z
                assert (fl(paper[j]) == fl(true[j])) == same
                counts["same" if same else "different"] += 1

    prop()
    assert counts["different"] >= 5, dict(counts)

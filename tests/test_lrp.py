r"""Layer-wise relevance propagation (dtd_formal.dtd.lrp): hand-derived whole-net relevances, LRP-0 equals
gradient x input exactly (zennit convention with biases; dtd convention bias-free), float64 agrees with exact.

Hand net (3 -> 2 -> 1, no final ReLU):

    W1 = [[1, -1, 2], [-1, 1, 1]], b1 = (-1, 2),  W2 = [[1, 1]], b2 = (0),  x = (2, 1, 1)
    z1 = (2 - 1 + 2 - 1, -2 + 1 + 1 + 2) = (2, 2),  f = 4,  gradient = W2 W1 = (0, 0, 3)
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import dtd_formal as dtd
from dtd_formal.errors import InputError
from dtd_formal.exact import to_float
from dtd_formal.network import Network
from dtd_formal.rules import (
    LRP0,
    AlphaBeta,
    Epsilon,
    EpsilonPlusFlat,
    Flat,
    Gamma,
    LayerwiseComposite,
    WSquare,
    ZBox,
    ZPlus,
)
from twins import twin_forward, twin_gradient

HAND = Network([[[1, -1, 2], [-1, 1, 1]], [[1, 1]]], [[-1, 2], [0]])
X = [2, 1, 1]


def fl(values) -> list[F]:
    return [F(v) for v in np.asarray(values, dtype=object).ravel()]


# ---------------------------------------------------------------------------------------------- hand cases
def test_zplus_by_hand() -> None:
    rel = dtd.lrp(HAND, X, ZPlus())
    assert rel.per_layer[2].tolist() == [4]
    # layer 2: a1 = (2, 2), w = (1, 1) -> (2, 2)
    assert rel.per_layer[1].tolist() == [2, 2]
    # layer 1: (2, 0, 2)/4 * 2 + (0, 1, 1)/2 * 2
    assert rel.input.tolist() == [1, 1, 2]
    assert all(c.conserved for c in rel.conservation)
    assert rel.arithmetic == "exact" and [type(r) for r in rel.rules] == [ZPlus, ZPlus]


def test_lrp0_zennit_by_hand_equals_gradient_times_input() -> None:
    rel = dtd.lrp(HAND, X, LRP0(bias="zennit"))
    # layer 1: (2, -1, 2)/2 * 2 + (-2, 1, 1)/2 * 2 = (0, 0, 3) = (0, 0, 3) * x
    assert rel.input.tolist() == [0, 0, 3]
    assert dtd.gradient_times_input(HAND, X).tolist() == [0, 0, 3]
    # the biases (-1, 2) absorb R_j b_j / z_j = -1 + 2 = 1: conservation fails by the bias share
    assert [c.absorbed for c in rel.conservation] == [1, 0]


def test_layerwise_composite_by_hand() -> None:
    comp = LayerwiseComposite(hidden=ZPlus(), first=WSquare(), last=LRP0())
    rel = dtd.lrp(HAND, X, comp)
    assert [type(r) for r in rel.rules] == [WSquare, LRP0]
    assert rel.per_layer[1].tolist() == [2, 2]
    # w^2: (1, 1, 4)/6 * 2 + (1, 1, 1)/3 * 2
    assert rel.input.tolist() == [1, 1, 2]


def test_explained_output_and_final_relu() -> None:
    # two outputs: f0 = a1 + a2 (= 4), f1 = a1 - 3 a2 (= -4); explaining output 1 starts from -4
    net = Network([[[1, -1, 2], [-1, 1, 1]], [[1, 1], [1, -3]]], [[-1, 2], [0, 0]])
    rel = dtd.lrp(net, X, LRP0(), output=1)
    assert rel.per_layer[2].tolist() == [0, -4]
    # layer 2: a w = (2, -6), s = -4: R^1 = (2, -6)/(-4) * (-4) = (2, -6)
    assert rel.per_layer[1].tolist() == [2, -6]
    # with a final ReLU the negative logit is dead: nothing to explain
    netr = Network([[[1, -1, 2], [-1, 1, 1]], [[1, 1], [1, -3]]], [[-1, 2], [0, 0]], final_relu=True)
    rel = dtd.lrp(netr, X, LRP0(), output=1)
    assert all(v == 0 for v in rel.input)


def test_epsilon_plus_flat_preset_uses_flat_first() -> None:
    rel = dtd.lrp(HAND, X, EpsilonPlusFlat(epsilon=F(1, 2)))
    # layer 2 (dense, Epsilon 1/2): s = 4 -> R^1 = (2, 2) * 4 / (4 + 1/2) = (16/9, 16/9)
    assert rel.per_layer[1].tolist() == [F(16, 9), F(16, 9)]
    # layer 1 (first, Flat): every input gets (16/9 + 16/9) / 3
    assert rel.input.tolist() == [F(32, 27)] * 3


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: dtd.lrp(HAND, [1, 2], ZPlus()), r"expected 3 values, got shape \(2,\)"),
        (lambda: dtd.lrp(HAND, [1.0, float("nan"), 0.0], ZPlus()), "nan"),
        (lambda: dtd.lrp(HAND, X, ZPlus(), output=1), r"output 1 does not exist"),
        (lambda: dtd.lrp(HAND, X, ZPlus(), arithmetic="float32"), r"'float32'"),
        (lambda: dtd.lrp(HAND, [1, 2], ZPlus(), arithmetic="float64"), r"expected 3 values"),
    ],
)
def test_lrp_errors(call, message) -> None:
    with pytest.raises(InputError, match=message):
        call()


# ---------------------------------------------------------------------------------------------- properties
frac = st.builds(F, st.integers(-4, 4), st.sampled_from([1, 1, 2, 3]))
inp = st.builds(F, st.integers(0, 6), st.sampled_from([1, 2, 3, 5]))


@st.composite
def nets(draw, biases: bool = True, final_relu=None):
    L = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 3)) for _ in range(L)] + [draw(st.integers(1, 2))]
    Ws = [[[draw(frac) for _ in range(sizes[l])] for _ in range(sizes[l + 1])] for l in range(L)]
    bs = [[draw(frac) if biases else F(0) for _ in range(sizes[l + 1])] for l in range(L)]
    fr = draw(st.booleans()) if final_relu is None else final_relu
    x = [draw(inp) for _ in range(sizes[0])]
    return Network(Ws, bs, final_relu=fr), x


def _check_gradient_times_input(rule, net: Network, x, counts: Counter) -> None:
    """LRP-0's only possibly vanishing denominator that matters is the explained logit z_c (no final ReLU):
    a hidden neuron with z_j = 0 has a_j = 0 and so receives no relevance anyway."""
    counts["generated"] += 1
    c = net.output_size - 1
    zs, _ = twin_forward(net, x)
    if not net.final_relu and zs[-1][c] == 0:
        counts["degenerate (z_c = 0)"] += 1
        assume(False)
    expected = [g * F(xi) for g, xi in zip(twin_gradient(net, x, c), x)]
    got = dtd.lrp(net, x, rule, output=c).input
    assert fl(got) == expected
    assert fl(dtd.gradient_times_input(net, x, output=c)) == expected
    counts["checked"] += 1
    counts["non-zero"] += any(v != 0 for v in expected)


def test_lrp0_zennit_equals_gradient_times_input_with_biases() -> None:
    counts: Counter = Counter()

    @given(case=nets(biases=True))
    def prop(case) -> None:
        net, x = case
        assume(any(v != 0 for b in net.biases for v in b))  # really with biases
        _check_gradient_times_input(LRP0(bias="zennit"), net, x, counts)

    prop()
    assert counts["checked"] >= 30 and counts["non-zero"] >= 10, dict(counts)


def test_lrp0_dtd_equals_gradient_times_input_bias_free() -> None:
    counts: Counter = Counter()

    @given(case=nets(biases=False))
    def prop(case) -> None:
        net, x = case
        _check_gradient_times_input(LRP0(), net, x, counts)

    prop()
    assert counts["checked"] >= 30 and counts["non-zero"] >= 10, dict(counts)


def test_lrp0_dtd_with_biases_is_not_gradient_times_input() -> None:
    # counter-check: on HAND (biases) LRP-0 dtd gives (4/3, -2/3, 4/3) (neuron 1 dropped), not (0, 0, 3)
    assert dtd.lrp(HAND, X, LRP0()).input.tolist() == [F(4, 3), F(-2, 3), F(4, 3)]


# dyadic weights and inputs: every float sum before a division is exact, so the exact zeros (dropped neurons)
# are zeros in float64 too and the comparison measures only rounding of the divisions
dyadic = st.builds(F, st.integers(-8, 8), st.sampled_from([1, 2, 4]))
dyadic_in = st.builds(F, st.integers(0, 16), st.sampled_from([1, 4, 8]))


@st.composite
def dyadic_nets(draw):
    L = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 4)) for _ in range(L)] + [draw(st.integers(1, 2))]
    Ws = [[[draw(dyadic) for _ in range(sizes[l])] for _ in range(sizes[l + 1])] for l in range(L)]
    bs = [[draw(dyadic) for _ in range(sizes[l + 1])] for l in range(L)]
    return Network(Ws, bs, final_relu=draw(st.booleans())), [draw(dyadic_in) for _ in range(sizes[0])]


FLOAT_RULES = [
    LRP0(), LRP0(bias="zennit"), Epsilon(), Epsilon(bias="zennit"), Gamma(0.25), Gamma(0.25, bias="zennit"),
    ZPlus(), ZPlus(bias="zennit"), ZBox(-1, 2), ZBox(-1, 2, bias="zennit"), WSquare(), WSquare(bias="zennit"),
    AlphaBeta(), AlphaBeta(bias="zennit"), Flat(), Flat(bias="zennit"),
]


@pytest.mark.parametrize("rule", FLOAT_RULES, ids=[r.spec() for r in FLOAT_RULES])
@given(case=dyadic_nets())
def test_float64_agrees_with_exact_to_1e_10(rule, case) -> None:
    net, x = case
    exact = dtd.lrp(net, x, rule)
    flt = dtd.lrp(net, x, rule, arithmetic="float64")
    assert flt.arithmetic == "float64"
    for l in range(net.n_layers + 1):
        e = to_float(exact.per_layer[l])
        f = np.asarray(flt.per_layer[l], dtype=np.float64)
        assert f.dtype == np.float64
        scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
        np.testing.assert_allclose(f, e, rtol=1e-10, atol=1e-10 * scale)
    # float inputs (np.ndarray) are accepted by the float path as they are
    flt2 = dtd.lrp(net, np.array([float(v) for v in x]), rule, arithmetic="float64")
    np.testing.assert_array_equal(flt2.input, flt.input)

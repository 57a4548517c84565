r"""The exact recursive DTD (dtd_formal.dtd.exact_dtd) and claim C2 of docs/theory.md.

C2: if every root is constant near the input and each Taylor segment [root, a] stays on its neuron's side,
the recursion unrolls to

    R^0_i = grad_i f(x) * x_i - sum_j [dR^1_j / dx_i] * root^(j)_i       (only the layer-1 roots enter)

and roots 0 give exactly gradient x input. The gradient is computed here by an independent loop twin;
the segment test ("does [root, a] cross neuron j's hyperplane?") is computed here from z_j at both ends.
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
from dtd_formal.network import Network
from dtd_formal.rules import LRP0, ZPlus
from twins import twin_forward, twin_gradient


def fl(values) -> list[F]:
    return [F(v) for v in np.asarray(values, dtype=object).ravel()]


def z_of(net: Network, l: int, j: int, point) -> F:
    return sum((F(w) * F(p) for w, p in zip(net.weight(l)[j], point)), F(net.bias(l)[j]))


def segment_on_one_side(net: Network, acts, e) -> bool:
    """[root, a] lies in one closed half-space of neuron j that contains a's phase: both z >= 0 with a active,
    or both z <= 0 with a inactive (relu'(0) = 0 puts z(a) = 0 on the inactive side)."""
    if not net.has_relu(e.layer):
        return True
    za, zr = z_of(net, e.layer, e.neuron, acts[e.layer - 1]), z_of(net, e.layer, e.neuron, e.root)
    return (za > 0 and zr >= 0) or (za <= 0 and zr <= 0)


def c2_rhs(net: Network, x, res, c: int = 0) -> list[F]:
    """grad_i f(x) x_i - sum over layer-1 expansions of gradient_i * root_i."""
    g = twin_gradient(net, x, c)
    out = [gi * F(xi) for gi, xi in zip(g, x)]
    for e in res.expansions:
        if e.layer == 1:
            out = [o - F(gi) * F(ri) for o, gi, ri in zip(out, e.gradient, e.root)]
    return out


# ---------------------------------------------------------------------------------------------- hand cases
def test_c2_by_hand_with_constant_non_zero_roots() -> None:
    """Bias-free: W1 = [[1, 1], [1, -1]], W2 = [[1, 1]], x = (3, 1): z1 = (4, 2), f = 6, grad = (2, 0).

    Layer 2 (root (1, 1)): g = (1, 1), R^1 = (1, 1) * (4, 2) - (1, 1) * (1, 1) = (3, 1).
    Layer 1 (root (1, 0) for both neurons): both segments stay active (z(root) = (1, 1) > 0), so
    g_0 = (1, 1), g_1 = (1, -1); R^0 = (2, 0) * x - [(1, 1) * (1, 0) + (1, -1) * (1, 0)] = (6, 0) - (2, 0) = (4, 0).
    """
    net = Network([[[1, 1], [1, -1]], [[1, 1]]], [[0, 0], [0]])
    x = [3, 1]
    res = dtd.exact_dtd(net, x, dtd.constant_roots({1: [1, 0], 2: [1, 1]}))
    assert fl(res.per_layer[2]) == [6]
    assert fl(res.per_layer[1]) == [3, 1]
    assert fl(res.input) == [4, 0]
    layer1 = {e.neuron: e for e in res.expansions if e.layer == 1}
    assert fl(layer1[0].gradient) == [1, 1] and fl(layer1[1].gradient) == [1, -1]
    assert layer1[0].value_at_root == 0 and layer1[1].value_at_root == 0  # R^1_j(root) = relu(1) - 1
    top = [e for e in res.expansions if e.layer == 2][0]
    assert top.value_at_root == 2 and top.remainder == 0  # (1, 1) is not a root of f: conservation fails by 2
    assert not res.conserved
    assert sum(fl(res.input)) == 4
    assert fl(res.input) == c2_rhs(net, x, res)
    # only the layer-1 roots enter R^0: another constant root for layer 2 leaves R^0 unchanged
    res2 = dtd.exact_dtd(net, x, dtd.constant_roots({1: [1, 0], 2: [5, 7]}))
    assert fl(res2.input) == [4, 0]


def test_crossing_a_kink_leaves_a_remainder() -> None:
    """f(x) = relu(x - 1) (then identity), x = 3, every root 0. Layer 1: the segment [0, 3] crosses z = 0 at
    x = 1; the slope is read at the midpoint 3/2 (active): g = 1, R^1(3) = 2, R^1(0) = relu(-1) = 0, so the
    remainder is 2 - 0 - 1 * (3 - 0) = -1 and R^0 = 3 != f(x) = 2."""
    net = Network([[[1]], [[1]]], [[-1], [0]])
    res = dtd.exact_dtd(net, [3], dtd.constant_roots(0))
    e1 = [e for e in res.expansions if e.layer == 1][0]
    assert e1.value_at_input == 2 and e1.value_at_root == 0
    assert fl(e1.gradient) == [1]
    assert e1.remainder == -1
    assert fl(res.input) == [3] and net.forward([3]).tolist() == [2]
    assert not res.conserved
    # the same net at x = 1/2 (inactive): [0, 1/2] stays inactive, the remainder is 0 and R^0 = 0 = f
    res_in = dtd.exact_dtd(net, ["1/2"], dtd.constant_roots(0))
    assert all(e.remainder == 0 for e in res_in.expansions) and fl(res_in.input) == [0]


def test_two_layer_crossing_by_hand() -> None:
    """W1 = [[1, -1], [1, 1]], b1 = (0, -2), W2 = [[1, 1]], x = (2, 1): z1 = (1, 1), f = 2, grad = (2, 0).
    Roots 0 everywhere. Layer 1 neuron 1: z(0) = -2, z(x) = 1, midpoint (1, 1/2): z = -1/2 -> slope 0 although
    the neuron is active at x: g_1 = 0, remainder = R^1_1(x) - R^1_1(0) - 0 = 1. Neuron 0 (bias-free row):
    g_0 = (1, -1), remainder 0. So R^0 = (1, -1) * (2, 1) = (2, -1) instead of grad x input = (4, 0)."""
    net = Network([[[1, -1], [1, 1]], [[1, 1]]], [[0, -2], [0]])
    x = [2, 1]
    res = dtd.exact_dtd(net, x, dtd.constant_roots(0))
    layer1 = {e.neuron: e for e in res.expansions if e.layer == 1}
    assert fl(layer1[1].gradient) == [0, 0] and layer1[1].remainder == 1
    assert fl(layer1[0].gradient) == [1, -1] and layer1[0].remainder == 0
    assert fl(res.input) == [2, -1]
    assert fl(dtd.gradient_times_input(net, x)) == [4, 0]


def test_policy_errors_and_lost_neurons() -> None:
    net = Network([[[1, 1]], [[1]]], [[1], [0]])
    with pytest.raises(InputError, match=r"root of layer 2 neuron 0 has shape \(2,\), expected \(1,\)"):
        dtd.exact_dtd(net, [1, 1], lambda l, j, a, n: [0, 0])
    with pytest.raises(InputError, match="output 3 does not exist"):
        dtd.exact_dtd(net, [1, 1], dtd.constant_roots(0), output=3)
    # a policy that finds no root loses the neuron (LRP-0 at x = (1, -1): z1 = 1 but w.a = 0)
    res = dtd.exact_dtd(net, [1, -1], dtd.rule_roots(LRP0()))
    assert res.lost == [(1, 0)] and not res.conserved


# ---------------------------------------------------------------------------------------------- properties
frac = st.builds(F, st.integers(-4, 4), st.sampled_from([1, 1, 2, 3]))
inp = st.builds(F, st.integers(-2, 6), st.sampled_from([1, 2, 3]))


@st.composite
def nets(draw, biases: bool = True):
    L = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 3)) for _ in range(L)] + [draw(st.integers(1, 2))]
    Ws = [[[draw(frac) for _ in range(sizes[l])] for _ in range(sizes[l + 1])] for l in range(L)]
    bs = [[draw(frac) if biases else F(0) for _ in range(sizes[l + 1])] for l in range(L)]
    return Network(Ws, bs, final_relu=draw(st.booleans())), [draw(inp) for _ in range(sizes[0])]


def test_roots_zero_give_exactly_gradient_times_input_bias_free() -> None:
    counts: Counter = Counter()

    @given(case=nets(biases=False))
    def prop(case) -> None:
        net, x = case
        res = dtd.exact_dtd(net, x, dtd.constant_roots(0))
        expected = [g * F(xi) for g, xi in zip(twin_gradient(net, x), x)]
        assert fl(res.input) == expected
        assert fl(res.input) == c2_rhs(net, x, res)  # the roots are 0: k = 0
        # bias-free, root 0: f(0) = 0, every expansion exact, and relevance is conserved to f(x)
        assert res.conserved and sum(fl(res.input)) == twin_forward(net, x)[1][-1][0]
        # the rule-root policy of LRP-0 finds the same roots (t = z / w.a = 1) where w.a != 0
        res_rule = dtd.exact_dtd(net, x, dtd.rule_roots(LRP0()))
        if not res_rule.lost:
            assert fl(res_rule.input) == expected
        counts["checked"] += 1
        counts["non-zero"] += any(v != 0 for v in expected)

    prop()
    assert counts["non-zero"] >= 10, dict(counts)


def test_c2_identity_with_constant_roots_on_one_side() -> None:
    """Random nets with biases, one random constant root per layer. Whenever every segment stays on its
    neuron's side, R^0 = grad f(x) * x - sum_j g_j * root^(j) (layer 1) and every remainder is 0; with biases and
    roots 0 that is gradient x input. Cases with a crossing are counted, not asserted (remainders may vanish)."""
    counts: Counter = Counter()
    pt = st.builds(F, st.integers(-2, 3), st.sampled_from([1, 2]))

    @given(case=nets(biases=True), data=st.data())
    def prop(case, data) -> None:
        net, x = case
        zero = data.draw(st.booleans())
        roots = {l: [F(0)] * n if zero else [data.draw(pt) for _ in range(n)]
                 for l, n in zip(range(1, net.n_layers + 1), net.layer_sizes)}
        res = dtd.exact_dtd(net, x, dtd.constant_roots(roots))
        _, acts = twin_forward(net, x)
        for e in res.expansions:
            assert fl(e.root) == roots[e.layer]
        if not all(segment_on_one_side(net, acts, e) for e in res.expansions):
            counts["crossing"] += 1
            assume(False)
        assert all(e.remainder == 0 for e in res.expansions)
        assert fl(res.input) == c2_rhs(net, x, res)
        if zero:
            assert fl(res.input) == [g * F(xi) for g, xi in zip(twin_gradient(net, x), x)]
            counts["zero roots"] += 1
        counts["checked"] += 1

    prop()
    assert counts["checked"] >= 30 and counts["zero roots"] >= 5, dict(counts)


def test_rule_roots_are_true_roots_of_their_neuron() -> None:
    """rule_roots(z+) gives a - t v with z_j(root) = 0, so R^l_j(root) = u_j relu(0) - k_j = -k_j: at the top
    layer (k = 0) the value at the root is 0 exactly."""

    @given(case=nets(biases=True))
    def prop(case) -> None:
        net, x = case
        res = dtd.exact_dtd(net, x, dtd.rule_roots(ZPlus()))
        for e in res.expansions:
            assert z_of(net, e.layer, e.neuron, e.root) == 0
            if e.layer == net.n_layers:
                assert e.value_at_root == 0

    prop()

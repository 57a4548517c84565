"""Network (dtd_formal.network): hand-derived forward values, patterns, gradients, affine maps and regions on
small integer / rational nets, and property tests against a slow textbook twin written here with plain
Fractions and loops."""

from __future__ import annotations

from fractions import Fraction as F
from itertools import product

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dtd_formal as dtd
from dtd_formal.errors import InputError
from dtd_formal.network import Network


# ---------------------------------------------------------------------------------------------- twins
def twin_forward(Ws, bs, final_relu, x):
    """Plain-loop forward: (list of z_l, output)."""
    L = len(Ws)
    a = [F(v) for v in x]
    zs = []
    for l, (W, b) in enumerate(zip(Ws, bs), start=1):
        z = [sum((F(W[j][i]) * a[i] for i in range(len(a))), F(0)) + F(b[j]) for j in range(len(W))]
        zs.append(z)
        a = [max(v, F(0)) for v in z] if (l < L or final_relu) else z
    return zs, a


def twin_gradient(Ws, bs, final_relu, x, c):
    """Back-propagation with relu'(0) = 0."""
    L = len(Ws)
    zs, _ = twin_forward(Ws, bs, final_relu, x)
    g = [F(int(k == c)) for k in range(len(Ws[-1]))]
    for l in range(L, 0, -1):
        if l < L or final_relu:
            g = [g[j] if zs[l - 1][j] > 0 else F(0) for j in range(len(g))]
        W = Ws[l - 1]
        g = [sum((g[j] * F(W[j][i]) for j in range(len(W))), F(0)) for i in range(len(W[0]))]
    return g


def frac_list(arr):
    return [F(v) for v in np.asarray(arr, dtype=object).ravel()]


# ---------------------------------------------------------------------------------------------- strategies
small_frac = st.builds(F, st.integers(-4, 4), st.sampled_from([1, 1, 2, 3]))


@st.composite
def nets(draw, max_layers=3, max_width=3, biases=True):
    n_in = draw(st.integers(1, 3))
    L = draw(st.integers(1, max_layers))
    sizes = [n_in] + [draw(st.integers(1, max_width)) for _ in range(L - 1)] + [draw(st.integers(1, 2))]
    Ws = [[[draw(small_frac) for _ in range(sizes[l])] for _ in range(sizes[l + 1])] for l in range(L)]
    bs = [[draw(small_frac) if biases else F(0) for _ in range(sizes[l + 1])] for l in range(L)]
    final_relu = draw(st.booleans())
    x = [draw(st.builds(F, st.integers(-3, 6), st.sampled_from([1, 2, 3, 5]))) for _ in range(n_in)]
    return Ws, bs, final_relu, x


# ---------------------------------------------------------------------------------------------- hand-derived
# W1 = [[1, -1], [2, 1]], b1 = [0, -1]; W2 = [[1, 2]], b2 = [1/2]
W1 = [[1, -1], [2, 1]]
B1 = [0, -1]
W2 = [[1, 2]]
B2 = [F(1, 2)]


@pytest.fixture
def net() -> Network:
    return Network([W1, W2], [B1, B2])


def test_shape_and_naming(net: Network) -> None:
    assert net.n_layers == 2
    assert net.layer_sizes == [2, 2, 1]
    assert net.relu_layers == [1]
    assert net.n_relus == 2
    assert not net.has_relu(2)
    assert Network([W1, W2], [B1, B2], final_relu=True).relu_layers == [1, 2]
    assert repr(net) == "Network(2-2-1, final_relu=False)"


@pytest.mark.parametrize(
    "x, z1, f, pattern, grad",
    [
        # z1 = (2-1+0, 4+1-1) = (1, 4); f = 1 + 8 + 1/2; grad = W2 W1 = (1+4, -1+2)
        ((2, 1), [1, 4], F(19, 2), [1, 1], [5, 1]),
        # exactly on neuron 0's hyperplane: z1 = (0, 2); relu'(0) = 0 drops neuron 0: grad = 2 * (2, 1)
        ((1, 1), [0, 2], F(9, 2), [0, 1], [4, 2]),
        # z1 = (-2, 1): neuron 0 off
        ((0, 2), [-2, 1], F(5, 2), [-1, 1], [4, 2]),
        # rational input: z1 = (1/2 - 1/3, 1 + 1/3 - 1) = (1/6, 1/3); f = 1/6 + 2/3 + 1/2
        (("1/2", "1/3"), [F(1, 6), F(1, 3)], F(4, 3), [1, 1], [5, 1]),
        # x = (0, 1): z1 = (-1, 0): neuron 0 off, neuron 1 on its hyperplane; f = b2
        ((0, 1), [-1, 0], F(1, 2), [-1, 0], [0, 0]),
    ],
)
def test_hand_derived_forward_pattern_gradient(net, x, z1, f, pattern, grad) -> None:
    zs = net.preactivations(x)
    assert frac_list(zs[0]) == [F(v) for v in z1]
    assert net.forward(x).tolist() == [f]
    acts = net.activations(x)
    assert frac_list(acts[1]) == [max(F(v), F(0)) for v in z1]
    assert [p.tolist() for p in net.pattern(x)] == [pattern]
    g = net.gradient(x)
    assert frac_list(g) == [F(v) for v in grad]
    assert all(isinstance(v, F) for v in g)


def test_local_affine_and_affine_map_by_hand(net: Network) -> None:
    both_on = [np.array([1, 1])]
    (A1, c1), (A2, c2) = net.local_affine(both_on)
    assert A1.tolist() == [[1, -1], [2, 1]] and c1.tolist() == [0, -1]
    # z2 = W2 (W1 x + b1) + b2 = (5, 1) x + (0 - 2 + 1/2)
    assert A2.tolist() == [[5, 1]] and c2.tolist() == [F(-3, 2)]
    g, c = net.affine_map(both_on)
    assert g.tolist() == [5, 1] and c == F(-3, 2)
    # neuron 0 on its hyperplane (s = 0) counts inactive: z2 = 2 * (2x1 + x2 - 1) + 1/2
    (_, _), (A2, c2) = net.local_affine([np.array([0, 1])])
    assert A2.tolist() == [[4, 2]] and c2.tolist() == [F(-3, 2)]
    g, c = net.affine_map([np.array([-1, -1])])
    assert g.tolist() == [0, 0] and c == F(1, 2)


def test_region_rows_by_hand(net: Network) -> None:
    # s = +1 gives -z <= 0, i.e. -(A_j x) <= c_j
    A, b = net.region([np.array([1, 1])])
    assert A.tolist() == [[-1, 1], [-2, -1]]
    assert b.tolist() == [0, -1]
    # s = 0 gives both rows (z = 0), s = -1 gives z <= 0, i.e. A_j x <= -c_j
    A, b = net.region([np.array([0, -1])])
    assert A.tolist() == [[-1, 1], [1, -1], [2, 1]]
    assert b.tolist() == [0, 0, 1]
    # x = (2, 1) is in P(+1, +1); x = (1, 1) is in both P(+1, +1) and P(0, +1) and P(-1, +1)
    for pat, x, inside in [
        ([1, 1], (2, 1), True),
        ([1, 1], (0, 2), False),
        ([0, 1], (1, 1), True),
        ([-1, 1], (1, 1), True),
        ([1, 1], (1, 1), True),
        ([0, 1], (2, 1), False),
    ]:
        A, b = net.region([np.array(pat)])
        got = all(sum(F(A[r][i]) * x[i] for i in range(2)) <= b[r] for r in range(len(A)))
        assert got is inside, (pat, x)


def test_final_relu_pattern_and_dead_output() -> None:
    net = Network([W1, W2], [B1, [-10]], final_relu=True)
    # z2 at (2, 1) = 9 - 10 = -1 -> output relu(-1) = 0, gradient 0, final layer pattern -1
    assert net.forward((2, 1)).tolist() == [0]
    assert [p.tolist() for p in net.pattern((2, 1))] == [[1, 1], [-1]]
    assert net.gradient((2, 1)).tolist() == [0, 0]
    # at (3, 1): z1 = (2, 6), z2 = 2 + 12 - 10 = 4 > 0
    assert net.forward((3, 1)).tolist() == [4]
    assert net.gradient((3, 1)).tolist() == [5, 1]
    # the final layer's row enters the region: z2 = 5x1 + x2 + (2 * (-1) - 10); s2 = +1 gives -(5, 1) x <= -12
    A, b = net.region([np.array([1, 1]), np.array([1])])
    assert A.tolist()[-1] == [-5, -1] and b.tolist()[-1] == -12


def test_exact_rational_input_lands_on_the_hyperplane_and_float_third_does_not() -> None:
    net = Network([[[3]], [[1]]], [[-1], [0]])  # z1 = 3x - 1
    assert net.pattern(["1/3"])[0].tolist() == [0]
    assert net.gradient(["1/3"]).tolist() == [0]  # relu'(0) = 0
    # the double nearest 1/3 is slightly below 1/3: z1 < 0
    assert net.pattern([1 / 3])[0].tolist() == [-1]
    assert net.preactivations([1 / 3])[0][0] == 3 * F(1 / 3) - 1 < 0


def test_upper_network_is_layers_l_to_L(net: Network) -> None:
    up = net.upper(2)
    assert up.layer_sizes == [2, 1] and up.relu_layers == []
    assert up.forward([1, 4]).tolist() == [F(19, 2)]
    up1 = net.upper(1)
    assert up1 == net
    netf = Network([W1, W2], [B1, B2], final_relu=True)
    assert netf.upper(2).relu_layers == [1]


def test_integer_layers_common_denominator() -> None:
    net = Network([[["1/2", "1/3"]], [["3/4"]]], [["1/4"], [2]])
    il = net.integer_layers
    assert il[0].den == 12 and il[0].weight_num.tolist() == [[6, 4]] and il[0].bias_num.tolist() == [3]
    assert il[1].den == 4 and il[1].weight_num.tolist() == [[3]] and il[1].bias_num.tolist() == [8]


def test_float_view(net: Network) -> None:
    fnet = net.to_float()
    xs = np.array([[2.0, 1.0], [0.0, 2.0]])
    assert fnet.forward(xs).tolist() == [[9.5], [2.5]]
    assert [p.tolist() for p in fnet.pattern(xs)] == [[[1, 1], [-1, 1]]]


def test_json_round_trip(tmp_path, net: Network) -> None:
    data = net.to_json()
    assert data["format"] == "dtd_formal.network/1"
    assert data["layers"][1]["bias"] == ["1/2"]
    path = tmp_path / "net.json"
    net.save(path)
    back = dtd.load(str(path))
    assert back == net
    assert back.biases[1][0] == F(1, 2) and isinstance(back.biases[1][0], F)
    # a float weight survives exactly
    netf = Network([[[0.1]]], [[0]])
    netf.save(path)
    assert dtd.load(str(path)).weights[0][0][0] == F(0.1)


def test_from_json_errors_name_the_source_and_layer(tmp_path) -> None:
    with pytest.raises(InputError, match="not a dtd_formal network"):
        Network.from_json({"layers": []}, source="x.json")
    bad = {"format": "dtd_formal.network/1", "layers": [{"weight": [["1", "2"]], "bias": ["1", "2"]}]}
    with pytest.raises(InputError, match=r"x\.json: layer 1 bias"):
        Network.from_json(bad, source="x.json")
    bad_val = {"format": "dtd_formal.network/1", "layers": [{"weight": [["nan"]], "bias": ["0"]}]}
    with pytest.raises(InputError, match=r"layer 1 weight"):
        Network.from_json(bad_val, source="y.json")
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="broken.json"):
        dtd.load(str(p))


# ---------------------------------------------------------------------------------------------- error paths
def test_constructor_errors() -> None:
    with pytest.raises(InputError, match="at least one"):
        Network([], [])
    with pytest.raises(InputError, match="2 weight matrices but 1 bias"):
        Network([W1, W2], [B1])
    with pytest.raises(InputError, match="layer 2 weight: expects 3 inputs but layer 1 has 2 outputs"):
        Network([W1, [[1, 2, 3]]], [B1, [0]])
    with pytest.raises(InputError, match="layer 1 bias"):
        Network([W1], [[0, 1, 2]])
    with pytest.raises(InputError, match=r"layer 1 weight.*nan"):
        Network([[[float("nan"), 1.0]]], [[0]])


def test_input_errors(net: Network) -> None:
    with pytest.raises(InputError, match=r"expected 2 values, got shape \(3,\)"):
        net.forward([1, 2, 3])
    with pytest.raises(InputError, match="nan"):
        net.forward([float("nan"), 1.0])
    with pytest.raises(InputError, match=r"layer 0 does not exist: layers are numbered 1\.\.2"):
        net.weight(0)
    with pytest.raises(InputError, match=r"layer 3 does not exist"):
        net.upper(3)
    with pytest.raises(InputError, match=r"output 1 does not exist: the network has outputs 0\.\.0"):
        net.gradient((1, 1), output=1)
    with pytest.raises(InputError, match="pattern has 2 layers"):
        net.region([np.array([1, 1]), np.array([1])])
    with pytest.raises(InputError, match=r"pattern of layer 1: shape \(3,\)"):
        net.region([np.array([1, 1, 1])])
    with pytest.raises(InputError, match="entries must be"):
        net.region([np.array([2, 1])])


# ---------------------------------------------------------------------------------------------- properties
@given(nets())
def test_forward_pattern_gradient_match_the_twin(case) -> None:
    Ws, bs, final_relu, x = case
    net = Network(Ws, bs, final_relu=final_relu)
    zs, out = twin_forward(Ws, bs, final_relu, x)
    assert [frac_list(z) for z in net.preactivations(x)] == zs
    assert frac_list(net.forward(x)) == out
    expected_pattern = [[(v > 0) - (v < 0) for v in zs[l - 1]] for l in range(1, len(Ws) + 1)
                        if l < len(Ws) or final_relu]
    assert [p.tolist() for p in net.pattern(x)] == expected_pattern
    for c in range(len(Ws[-1])):
        assert frac_list(net.gradient(x, output=c)) == twin_gradient(Ws, bs, final_relu, x, c)


@given(nets(max_layers=3, max_width=2))
def test_region_of_the_pattern_contains_x_and_the_affine_map_is_exact_there(case) -> None:
    """x lies in P(pattern(x)); every point of that closed region checked at the lattice below obeys the affine map."""
    Ws, bs, final_relu, x = case
    net = Network(Ws, bs, final_relu=final_relu)
    pat = net.pattern(x)
    A, b = net.region(pat)
    assert all(sum((F(A[r][i]) * x[i] for i in range(len(x))), F(0)) <= b[r] for r in range(len(A)))
    # points of a small lattice inside P(s): the affine map equals the twin forward
    g, c = net.affine_map(pat)
    n = len(x)
    for y in product([F(-1), F(0), F(1, 2), F(2)], repeat=n):
        inside = all(sum((F(A[r][i]) * y[i] for i in range(n)), F(0)) <= b[r] for r in range(len(A)))
        if inside:
            _, out = twin_forward(Ws, bs, final_relu, y)
            assert sum((F(g[i]) * y[i] for i in range(n)), F(0)) + c == out[0]


@given(nets(max_layers=3))
def test_upper_network_continues_the_forward_pass(case) -> None:
    Ws, bs, final_relu, x = case
    net = Network(Ws, bs, final_relu=final_relu)
    acts = net.activations(x)
    for l in range(1, len(Ws) + 1):
        assert frac_list(net.upper(l).forward(acts[l - 1])) == frac_list(acts[-1])

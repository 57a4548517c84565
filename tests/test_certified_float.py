"""The certified float forward pass is rigorous also under underflow and overflow (finding 6 of the soundness
issue: a subnormal bias that rounds to 0 used to get an error bound of 0, and a wrong exact verdict)."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.certified import certified_float_forward
from dtd_formal.exact import to_fast
from dtd_formal.regions import classify_root_reference
from dtd_formal.rules import WSquare, ZPlus

TINY = F(2) ** -1074  # the smallest subnormal float64


def _exact_preactivations(net: dtd.Network, layer: int, points: np.ndarray) -> list[np.ndarray]:
    """Plain Fraction loop (the textbook forward, independent of the walk): z_layer..z_L per row."""
    out = []
    for p in points:
        a, zs = list(p), []
        for m in range(layer, net.n_layers + 1):
            W, b = net.weight(m), net.bias(m)
            z = [sum((W[i][k] * a[k] for k in range(len(a))), F(0)) + b[i] for i in range(len(b))]
            zs.append(z)
            a = [v if v > 0 else F(0) for v in z] if net.has_relu(m) else z
        out.append(zs)
    return out


def _subnormal_net(seed: int) -> dtd.Network:
    """A 2-3-2-1 net whose weights and biases are a few multiples of 2^-1074 (and one normal weight row), so every
    float64 value of the forward pass is subnormal or underflows to 0."""
    rng = np.random.default_rng(seed)

    def tiny(shape: tuple[int, ...]) -> list:
        return (rng.integers(-6, 7, shape).astype(object) * TINY).tolist()

    W1 = tiny((3, 2))
    W1[0] = [F(1), F(-1, 2)]
    return dtd.Network([W1, tiny((2, 3)), [[F(1), F(1)]]], [tiny((3,)), [F(3) * TINY, -TINY], [F(0)]])


@pytest.mark.parametrize("seed", range(40))
def test_the_bound_holds_on_subnormal_nets_and_verdicts_match_the_twin(seed: int) -> None:
    net = _subnormal_net(seed)
    rng = np.random.default_rng(100 + seed)
    points = np.array([[F(int(v), 8) for v in rng.integers(0, 9, 2)] for _ in range(6)], dtype=object)
    cf = certified_float_forward(net, 1, to_fast(points))
    exact = _exact_preactivations(net, 1, points)
    for r in range(len(points)):
        if cf.uncertain[r]:
            continue  # past an undecided sign the later layers are not covered (and are recomputed exactly)
        for k, z_exact in enumerate(exact[r]):
            for i, v in enumerate(z_exact):
                assert abs(F(float(cf.z[k][r, i])) - v) <= F(float(cf.err[k][r, i])), (seed, r, k, i)
    for rule in (ZPlus(), WSquare()):
        rep = dtd.root_regions(net, points, rule, layers=1)
        for rec in rep.records:
            x = points[rec.input_index]
            assert (rec.leaves_pattern, rec.leaves_affine_map) == classify_root_reference(
                net, x, 1, rec.neuron, rec.root), (seed, type(rule).__name__, rec.input_index, rec.neuron)


def test_a_subnormal_bias_is_not_treated_as_zero() -> None:
    """z = x - 2^-1074 at x = 2^-1074 is exactly 0; in floats the product underflows nowhere but the bound must
    not claim a sign: the row is uncertain (and recomputed exactly)."""
    net = dtd.Network([[[1]], [[1]]], [[-TINY], [F(0)]])
    cf = certified_float_forward(net, 1, to_fast(np.array([[TINY]], dtype=object)))
    assert cf.err[0][0, 0] > 0 and cf.uncertain[0]


def test_overflow_makes_the_row_uncertain() -> None:
    big = F(2) ** 1020
    net = dtd.Network([[[big, big]], [[1]]], [[F(0)], [F(0)]])
    cf = certified_float_forward(net, 1, to_fast(np.array([[F(2) ** 10, F(2) ** 10]], dtype=object)))
    assert cf.uncertain[0]  # 2^1031 overflows float64: no sign is taken from it

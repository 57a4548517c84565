"""The certified float filter of root_regions: exact verdicts even where floats cannot decide a sign.

Independent references: the exact-only sign computation (``_upper_signs`` over Fractions) and the slow textbook
twin ``classify_root_reference``.
"""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal import regions
from dtd_formal.exact import to_fast


def _duplicate_hyperplane_net() -> dtd.Network:
    # neuron 1 of layer 1 is neuron 0 scaled by 3/7: the same hyperplane, so every root of neuron 0 lies exactly
    # on neuron 1's hyperplane (z_1(root) = 0); non-dyadic weights make the float value of z_1 there inexact.
    w0 = [F(1, 3), F(-2, 7), F(5, 11)]
    b0 = F(-1, 13)
    W1 = [w0, [F(3, 7) * w for w in w0], [F(1, 5), F(1, 9), F(-1, 3)]]
    b1 = [b0, F(3, 7) * b0, F(1, 17)]
    W2 = [[F(2, 3), F(-5, 7), F(1, 3)]]
    return dtd.Network([W1, W2], [b1, [F(1, 10)]])


def test_root_on_another_neurons_hyperplane_does_not_flip_it() -> None:
    net = _duplicate_hyperplane_net()
    x = [F(2), F(1, 3), F(3, 2)]
    z = net.preactivations(x)[0]
    assert z[0] > 0 and z[1] > 0  # both active at the input
    rep = dtd.root_regions(net, x, dtd.rules.ZPlus(), scope="upper", layers=1)
    rec = next(r for r in rep.records if r.neuron == 0)
    # exact facts about the root: on neuron 0's and neuron 1's hyperplane
    assert net.weight(1)[0].dot(rec.root) + net.bias(1)[0] == 0
    assert net.weight(1)[1].dot(rec.root) + net.bias(1)[1] == 0
    assert (1, 1) not in rec.flipped  # zero is on both closed sides: no flip
    assert (rec.leaves_pattern, rec.leaves_affine_map) == regions.classify_root_reference(net, x, 1, 0, rec.root)


def test_filter_falls_back_to_exact_and_matches_exact_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    net = _duplicate_hyperplane_net()
    rng = np.random.default_rng(3)
    points = []
    for _ in range(30):  # points exactly on neuron 0's (= neuron 1's) hyperplane, and generic points
        p = [F(int(v), 97) for v in rng.integers(-200, 200, size=2)]
        w = net.weight(1)[0]
        p3 = (-net.bias(1)[0] - w[0] * p[0] - w[1] * p[1]) / w[2]
        points.append(p + [p3])
        points.append([F(int(v), 89) for v in rng.integers(-200, 200, size=3)])
    pts = np.array(points, dtype=object)
    forced = np.full(len(pts), 2)  # keep neuron 2 linear, so neuron 1's sign matters
    calls: list[int] = []
    original = regions._upper_signs

    def spy(layers, net_, layer, points_, forced_):  # type: ignore[no-untyped-def]
        calls.append(len(points_))
        return original(layers, net_, layer, points_, forced_)

    monkeypatch.setattr(regions, "_upper_signs", spy)
    signs, own = regions._upper_signs_filtered(net, 1, to_fast(pts), forced)
    assert calls and calls[0] >= 30  # every on-hyperplane row went to the exact path
    exact_signs, exact_own = original([(W, b) for W, b in zip(net.weights, net.biases)], net, 1, pts, forced)
    for s, e in zip(signs, exact_signs):
        assert np.array_equal(s, e)
    assert all(F(int(a.numerator), int(a.denominator)) == b for a, b in zip(own, exact_own))
    assert np.all(exact_signs[0][0::2, 1] == 0)  # the on-hyperplane rows really are zeros of neuron 1


def test_float_filter_agrees_with_reference_on_random_nets() -> None:
    rng = np.random.default_rng(11)
    for trial in range(4):
        sizes = [4, 6, 5, 2]
        Ws = [rng.normal(size=(o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
        bs = [rng.normal(size=o) * 0.3 for o in sizes[1:]]
        net = dtd.Network(Ws, bs, final_relu=bool(trial % 2))
        xs = np.abs(rng.normal(size=(8, 4)))
        for scope in ("upper", "layer"):
            rep = dtd.root_regions(net, xs, dtd.rules.ZPlus(), scope=scope)
            assert rep.records
            for r in rep.records:
                ref = regions.classify_root_reference(net, xs[r.input_index], r.layer, r.neuron, r.root, 0, scope)
                assert (r.leaves_pattern, r.leaves_affine_map) == ref

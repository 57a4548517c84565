"""Exact LP minimum (vertex + dual certificate) and in-region root decisions, against hand-derived optima and a
brute-force vertex enumeration in Fractions."""

from __future__ import annotations

import itertools
from fractions import Fraction as F

import numpy as np

import dtd_formal as dtd
from dtd_formal.experiments.in_region_roots import _solve_exact, exact_lp_min, in_region_roots, summarise


def test_hand_derived_lp() -> None:
    # min x + 2y s.t. x + y >= 1, x >= 0, y >= 0, x <= 3  ->  optimum 1 at (1, 0)
    G = [[F(-1), F(-1)], [F(-1), F(0)], [F(0), F(-1)], [F(1), F(0)]]
    h = [F(-1), F(0), F(0), F(3)]
    m = exact_lp_min([F(1), F(2)], F(0), G, h)
    assert m.value == 1 and m.point == [F(1), F(0)]
    # non-dyadic data: min 3x + y s.t. 3x + 7y >= 1, y <= 1/9, x,y >= 0  -> y = 1/9, x = (1 - 7/9)/3 = 2/27
    G = [[F(-3), F(-7)], [F(0), F(1)], [F(-1), F(0)], [F(0), F(-1)]]
    h = [F(-1), F(1, 9), F(0), F(0)]
    m = exact_lp_min([F(3), F(1)], F(1, 5), G, h)
    assert m.value == F(2, 9) + F(1, 9) + F(1, 5)


def _brute_force_min(c, c0, G, h):  # type: ignore[no-untyped-def]
    best = None
    n = len(c)
    for rows in itertools.combinations(range(len(G)), n):
        v = _solve_exact([G[i] for i in rows], [h[i] for i in rows])
        if v is None or any(sum(g * x for g, x in zip(G[i], v)) > h[i] for i in range(len(G))):
            continue
        val = sum(a * b for a, b in zip(c, v)) + c0
        best = val if best is None else min(best, val)
    return best


def test_random_lps_match_vertex_enumeration() -> None:
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(30):
        n, m = 2, 6
        G = [[F(int(v), 7) for v in rng.integers(-9, 10, size=n)] for _ in range(m)]
        h = [F(int(v), 5) for v in rng.integers(1, 12, size=m)]
        G += [[F(-1), F(0)], [F(0), F(-1)]]  # x >= 0 keeps it bounded below for c >= 0
        h += [F(0), F(0)]
        c = [F(int(v), 3) for v in rng.integers(1, 6, size=n)]
        res = exact_lp_min(c, F(0), G, h)
        want = _brute_force_min(c, F(0), G, h)
        if res.value is None:
            assert res.lower is None or want is None or res.lower <= want
            continue
        assert res.value == want
        checked += 1
    assert checked >= 25


def test_in_region_roots_decisions_are_consistent() -> None:
    net = dtd.examples.paper_mlp(5, "paper-text")
    xs = dtd.examples.paper_inputs(net, 3, seed=3)
    res = in_region_roots(net, xs, layer=1)
    assert res
    for r in res:
        m = r.min_preactivation
        assert m.value is not None and m.value >= 0
        # the optimal point is in the closed upper region of the input, in the domain, and attains the minimum
        x = xs[r.input_index]
        a = net.activations(x)[0]
        upper = net.upper(1)
        A, b = upper.region(upper.pattern(a))
        p = np.array(m.point, dtype=object)
        assert all(A[i].dot(p) <= b[i] for i in range(len(A))) and all(v >= 0 for v in p)
        assert net.weight(1)[r.neuron].dot(p) + net.bias(1)[r.neuron] == m.value
        # the input itself is feasible, so the minimum is at most z_j(a)
        assert m.value <= r.z_input
    s = summarise(res)
    assert s["with_in_region_root"] + s["without_in_region_root"] == s["neurons"]

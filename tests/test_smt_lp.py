"""Certified LP: float HiGHS answers only count with an exact witness or an exactly checked Farkas certificate."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest
import z3

import dtd_formal as dtd
from dtd_formal.smt.encode import q
from dtd_formal.smt.lp import LinearProgram, certified_region_lp, check_farkas, solve_certified


def _net(seed: int, sizes: tuple[int, ...]) -> dtd.Network:
    rng = np.random.default_rng(seed)
    Ws = [rng.standard_normal((o, i)) / np.sqrt(i) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.standard_normal(o) * 0.3 for o in sizes[1:]]
    return dtd.Network(Ws, bs)


def _z3_region_feasible(net: dtd.Network, pattern: list[np.ndarray], low: float, high: float) -> bool | None:
    """Independent exact decision with Z3's simplex over the composed exact affine maps (Network.region)."""
    A, b = net.region(pattern)
    s = z3.Solver()
    xs = [z3.Real(f"x{i}") for i in range(net.input_size)]
    for x in xs:
        s.add(x >= q(F(low)), x <= q(F(high)))
    for row, rhs in zip(A, b):
        s.add(z3.Sum([q(a) * x for a, x in zip(row, xs)]) <= q(rhs))
    r = s.check()
    return None if r == z3.unknown else r == z3.sat


def test_region_of_an_input_is_feasible_with_exact_witness() -> None:
    net = _net(0, (4, 6, 5, 1))
    x0 = np.random.default_rng(1).random(4)
    pat = net.pattern(x0)
    res = certified_region_lp(net, pat, 0, 1)
    assert res.status == "feasible"
    w = res.witness
    assert all(0 <= v <= 1 for v in w)
    A, b = net.region(pat)  # the witness lies in the closed region, checked with the core's exact (A, b)
    assert all(row.dot(w) <= rhs for row, rhs in zip(A, b))


def test_region_above_its_maximum_is_infeasible_with_checked_certificate() -> None:
    net = _net(2, (4, 6, 5, 1))
    x0 = np.random.default_rng(3).random(4)
    pat = net.pattern(x0)
    out = sum(net.layer_sizes[:-1])  # index of z_L,0
    res = certified_region_lp(net, pat, 0, 1, extra=[({out: F(-1)}, -F(10**6), "<=")])  # f >= 10^6: impossible
    assert res.status == "infeasible" and res.certificate["margin"] > 0
    # a bound just below the true value at x0 is feasible (x0 itself is a witness)
    fx = net.forward(x0)[0]
    res = certified_region_lp(net, pat, 0, 1, extra=[({out: F(-1)}, -(fx - F(1, 1000)), "<=")])
    assert res.status == "feasible"


@pytest.mark.parametrize("seed", range(4))
def test_flipped_patterns_agree_with_z3(seed: int) -> None:
    net = _net(10 + seed, (3, 4, 3, 1))
    x0 = np.random.default_rng(seed).random(3)
    base = net.pattern(x0)
    rng = np.random.default_rng(100 + seed)
    answers = {"feasible": 0, "infeasible": 0}
    for _ in range(6):
        pat = [p.copy() for p in base]
        for p in pat:
            flip = rng.random(len(p)) < 0.35
            p[flip] = -p[flip]
            p[p == 0] = 1
        res = certified_region_lp(net, pat, 0, 1)
        ref = _z3_region_feasible(net, pat, 0, 1)
        if res.status != "unknown" and ref is not None:
            assert (res.status == "feasible") == ref
            answers[res.status] += 1
    assert answers["feasible"] + answers["infeasible"] >= 4


def test_generic_certified_lp_and_farkas_check() -> None:
    # x + y <= 1, x >= 2/3 (as -x <= -2/3), y >= 2/3, x, y in [0, 1]: infeasible
    lp = LinearProgram(2, lo=[F(0), F(0)], hi=[F(1), F(1)])
    lp.add_row({0: F(1), 1: F(1)}, F(1))
    lp.add_row({0: F(-1)}, F(-2, 3))
    lp.add_row({1: F(-1)}, F(-2, 3))

    def replay(v: np.ndarray) -> np.ndarray | None:
        x = [F(float(u)) for u in v]
        return np.array(x, dtype=object) if x[0] + x[1] <= 1 and x[0] >= F(2, 3) and x[1] >= F(2, 3) else None

    res = solve_certified(lp, replay)
    assert res.status == "infeasible"
    assert check_farkas(lp, [F(1), F(1), F(1)], [])  # the textbook certificate: sum of the rows gives 0 <= -1/3
    assert not check_farkas(lp, [F(1), F(1), F(0)], [])  # drops a needed row
    assert not check_farkas(lp, [F(1), F(-1), F(1)], [])  # negative multiplier on an inequality
    # relax to y >= 1/3: feasible, witness exact
    lp2 = LinearProgram(2, lo=[F(0), F(0)], hi=[F(1), F(1)])
    lp2.add_row({0: F(1), 1: F(1)}, F(1))
    lp2.add_row({0: F(-1)}, F(-2, 3))
    lp2.add_row({1: F(-1)}, F(-1, 3))

    def replay2(v: np.ndarray) -> np.ndarray | None:
        x = [F(float(u)) for u in v]
        ok = x[0] + x[1] <= 1 and x[0] >= F(2, 3) and x[1] >= F(1, 3) and all(0 <= u <= 1 for u in x)
        return np.array(x, dtype=object) if ok else None

    res2 = solve_certified(lp2, replay2, interior=lambda: np.array([0.7, 0.3 + 1e-3]))
    assert res2.status in ("feasible", "unknown")
    if res2.status == "feasible":
        assert replay2(np.array([float(v) for v in res2.witness])) is not None


@pytest.mark.parametrize("seed", range(3))
def test_z3_fallback_agrees_with_the_lp_path(seed: int) -> None:
    from dtd_formal.smt.lp import z3_region

    net = _net(20 + seed, (3, 4, 3, 1))
    x0 = np.random.default_rng(seed).random(3)
    base = net.pattern(x0)
    rng = np.random.default_rng(200 + seed)
    out = sum(net.layer_sizes[:-1])
    for extra in (None, [({out: F(-1)}, -(net.forward(x0)[0] + F(1, 10)), "<=")]):
        pat = [p.copy() for p in base]
        pat[0][rng.integers(len(pat[0]))] *= -1
        a = certified_region_lp(net, pat, 0, 1, extra=extra, z3_fallback=False)
        b = z3_region(net, pat, 0, 1, extra=extra)
        assert b.status != "unknown"
        assert a.status in ("unknown", b.status)
        if b.status == "feasible":
            assert all(0 <= v <= 1 for v in b.witness)

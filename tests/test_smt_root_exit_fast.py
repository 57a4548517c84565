"""Root-exit engines of issue 15: the guided falsifier, float lanes of the rule body, the inactivity leaves of the
relaxation prover (exact Farkas certificates) and outward-rounded enclosures. Every Refuted is replayed exactly;
no timing assertions."""

from __future__ import annotations

import json
import time
from fractions import Fraction as F

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.exact import to_fast
from dtd_formal.replay import replay_data
from dtd_formal.rules import LRP0, Gamma, WSquare, ZBox, ZPlus
from dtd_formal.rules.ops import FLOAT64
from dtd_formal.smt.bounds import GRID, outward
from dtd_formal.smt.falsify import FloatModel
from dtd_formal.smt.lanes import LANES, lift_layers
from dtd_formal.smt.mccormick import box_inactive_lp
from dtd_formal.smt.problem import RootExitProblem, parse_box
from dtd_formal.smt.relax import LEAF_INACTIVE, LEAF_INTERVAL, check_certificate, prove_by_relaxation
from dtd_formal.walk import forward, relevance_per_layer

from mutants import MUTANTS


def bump_net() -> dtd.Network:
    r"""2-5-2-1 on [0, 1]^2. Layer 1: :math:`|x_0 - 3/10|` and :math:`|x_1 - 7/10|` as pairs of ReLUs, and
    :math:`h_5 = x_0`. Layer-2 neuron 0, :math:`z_0 = x_0 - 10|x_0 - 3/10| - 10|x_1 - 7/10| - 298/1000`, is active
    only on a diamond of area below 1e-7 around (3/10, 7/10) (at its centre z_0 = 1/500). Its z+ root shrinks
    :math:`h_5` by :math:`z_0` (t h_5 = z_0), so layer-2 neuron 1, :math:`h_5 - 2999/10000` (1/10000 at the centre),
    turns negative there: an exit, but only where uniform samples of the box essentially never land. The earlier
    falsifier scored every input with j inactive as -inf and had no start for its local search; the guided one
    climbs :math:`z_0` first (module docstring of :mod:`dtd_formal.smt.falsify`)."""
    W1 = [[1, 0], [-1, 0], [0, 1], [0, -1], [1, 0]]
    b1 = [F(-3, 10), F(3, 10), F(-7, 10), F(7, 10), 0]
    W2 = [[-10, -10, -10, -10, 1], [0, 0, 0, 0, 1]]
    b2 = [F(-298, 1000), F(-2999, 10000)]
    return dtd.Network([W1, W2, [[1, 1]]], [b1, b2, [0]])


def dead_net() -> dtd.Network:
    r"""2-3-2-1 on [-1, 1]^2: layer-1 neurons 0 and 1 are both :math:`\mathrm{relu}(x_0)`, so layer-2 neuron 0,
    :math:`h_0 - h_1 - 1/100 = -1/100`, is never active: no root, no exit. Interval bounds cannot see the
    cancellation (on a box of width w in :math:`x_0 \ge 0` they give :math:`z_0 \le w - 1/100`, about 2^8 boxes);
    the LP of layer 1 is exact once :math:`x_0` is split at 0 (both ReLUs stable)."""
    W1 = [[1, 0], [1, 0], [0, 1]]
    W2 = [[1, -1, 0], [1, 1, 1]]
    return dtd.Network([W1, W2, [[1, 1]]], [[0, 0, 0], [F(-1, 100), F(-1, 2)], [0]])


def _replays(v: object, net: dtd.Network, rule: object) -> None:
    assert v.status == "refuted"
    assert v.counterexample.replay(net, rule)
    data = json.loads(json.dumps({**v.to_json(), "network": net.to_json()}))
    assert replay_data(data).ok


# ---------------------------------------------------------------------------------------------------- falsifier
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_guided_falsifier_finds_an_exit_where_the_neuron_is_active_on_a_tiny_region(seed: int) -> None:
    net = bump_net()
    x = np.random.default_rng(seed).random((20000, 2))
    P = RootExitProblem(net, ZPlus(), 2, 0, *parse_box((0, 1), 2))
    assert not np.any(np.isfinite(FloatModel(P).score(x)))  # uniform samples: neuron 0 is never active
    v = dtd.find_root_exit(net, ZPlus(), layer=2, neuron=0, domain=(0, 1), timeout=20, engines=("falsify",),
                           seed=seed)
    _replays(v, net, ZPlus())
    assert (2, 1) in [tuple(f) for f in v.counterexample.flipped]


def test_paper_code_exits_that_need_the_search_are_found() -> None:
    """Paper MLP (seed 5, paper-text), layer 1, neurons 2 and 9, paper-code roots: R_j = 0 on most of the box, so
    t = 0 there (no root moves); the exits are rare (sampled maximum of the exit score about 1e-6). The previous
    falsifier (its score floored at 0 by neuron j's own column) left both Unknown."""
    net = dtd.examples.paper_mlp(dtd.examples.STUDY_SEED, "paper-text")
    for j in (2, 9):
        v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=j, domain=(0, 1), timeout=20, engines=("falsify",),
                               definition="paper-code")
        _replays(v, net, ZPlus())
        assert v.counterexample.definition == "paper-code"


def test_falsifier_reports_why_it_gave_up() -> None:
    v = dtd.find_root_exit(dead_net(), ZPlus(), layer=2, neuron=0, domain=(-1, 1), timeout=5, engines=("falsify",))
    assert v.status == "unknown"
    assert "falsify: no exit" in v.reason and "activates neuron 0 of layer 2" in v.reason


# ---------------------------------------------------------------------------------------------------- lanes
@pytest.mark.parametrize("rule", [ZPlus(), Gamma(0.25), LRP0(), WSquare(), ZBox(0, 1), ZPlus(bias="zennit")]
                         + [m for m, *_ in MUTANTS], ids=lambda r: type(r).__name__)
def test_lanes_give_the_walks_float_relevance_or_are_not_used(rule: object) -> None:
    """The rule body in lanes equals the one-point walk on every row, or the falsifier notices and walks rows."""
    net = dtd.examples.paper_mlp(dtd.examples.STUDY_SEED, "paper-text")
    fnet = net.to_float()
    layers = list(zip(fnet.weights, fnet.biases))
    X = np.random.default_rng(0).random((9, net.input_size))
    want = np.array([relevance_per_layer(FLOAT64, layers, net.relu_flags,
                                         forward(FLOAT64, layers, net.relu_flags, x)[0], rule, 0)[1] for x in X])
    P = RootExitProblem(net, rule, 1, 3, *parse_box((0, 1), net.input_size), definition="paper-code")
    fm = FloatModel(P)
    got = np.array([fm.relevance(X)]).ravel()
    assert np.allclose(got, want[:, 3], rtol=1e-12, atol=1e-15)
    try:
        acts, _ = forward(LANES, lift_layers(layers), net.relu_flags, X.T.copy())
        lanes = relevance_per_layer(LANES, lift_layers(layers), net.relu_flags, acts, rule, 0)[1].T
        agree = np.allclose(lanes, want, rtol=1e-12, atol=1e-15)
    except Exception:  # noqa: BLE001 - a body the lanes cannot run
        agree = False
    assert fm._lanes_ok["relevance"] == agree


def test_lanes_run_the_catalogue_bodies() -> None:
    net = dtd.examples.paper_mlp(dtd.examples.STUDY_SEED, "paper-text")
    for rule in (ZPlus(), Gamma(0.25), LRP0(), WSquare()):
        fm = FloatModel(RootExitProblem(net, rule, 1, 0, *parse_box((0, 1), 10), definition="paper-code"))
        fm.relevance(np.random.default_rng(1).random((5, 10)))
        assert fm._lanes_ok["relevance"], rule


# ---------------------------------------------------------------------------------------------------- inactive leaves
def test_dead_neuron_is_proved_by_inactivity_leaves_with_exact_certificates() -> None:
    net = dead_net()
    P = RootExitProblem(net, ZPlus(), 2, 0, *parse_box((-1, 1), 2))
    res = prove_by_relaxation(P, time.monotonic() + 60)
    assert res.status == "proved" and LEAF_INACTIVE in res.tree and len(res.tree) <= 7
    assert check_certificate(P, res.tree)
    assert not check_certificate(P, [LEAF_INACTIVE])  # the whole box: the LP does not close it
    tampered = [LEAF_INTERVAL if c == LEAF_INACTIVE else c for c in res.tree]
    assert not check_certificate(P, tampered)  # intervals alone do not prove the leaves
    interval_only = prove_by_relaxation(P, time.monotonic() + 60, use_lp=False)
    assert interval_only.status != "proved" or len(interval_only.tree) > 4 * len(res.tree)
    v = dtd.find_root_exit(net, ZPlus(), layer=2, neuron=0, domain=(-1, 1), timeout=30)
    assert v.status == "proved"
    data = json.loads(json.dumps({**v.to_json(), "network": net.to_json()}))
    assert replay_data(data).ok
    edited = json.loads(json.dumps(data))
    edited["certificate"]["split_tree"] = tampered
    assert not replay_data(edited).ok


def test_inactivity_lp_never_certifies_a_box_where_the_neuron_is_active() -> None:
    net = bump_net()
    P = RootExitProblem(net, ZPlus(), 2, 0, *parse_box((0, 1), 2))
    boxes = [((0, 0), (1, 1)), ((F(1, 4), F(5, 8)), (F(3, 8), F(3, 4))), ((F(299, 1000), F(699, 1000)),
                                                                         (F(301, 1000), F(701, 1000)))]
    for lo, hi in boxes:
        lo_, hi_ = (to_fast(np.array([F(v) for v in b], dtype=object)) for b in (lo, hi))
        assert not box_inactive_lp(P, lo_, hi_, time.monotonic() + 10)
    far = [to_fast(np.array([F(v) for v in b], dtype=object)) for b in ((F(1, 2), 0), (1, 1))]
    assert box_inactive_lp(P, far[0], far[1], time.monotonic() + 10)  # x0 >= 1/2: z_0 <= -1.8 there


def test_full_pipeline_on_the_bump_net_refutes_and_never_proves() -> None:
    net = bump_net()
    v = dtd.find_root_exit(net, ZPlus(), layer=2, neuron=0, domain=(0, 1), timeout=20)
    _replays(v, net, ZPlus())


# ---------------------------------------------------------------------------------------------------- enclosures
def test_outward_rounding_encloses_on_the_dyadic_grid() -> None:
    rng = np.random.default_rng(3)
    vals = [F(int(n), int(d)) for n, d in zip(rng.integers(-10**12, 10**12, 50), rng.integers(1, 10**9, 50))]
    lo = to_fast(np.array(vals, dtype=object))
    hi = to_fast(np.array([v + F(1, 3) for v in vals], dtype=object))
    rlo, rhi = outward(lo, hi)
    for a, b, ra, rb in zip(lo, hi, rlo, rhi):
        assert ra <= a and rb >= b and a - ra < F(1, GRID) and rb - b < F(1, GRID)
        assert GRID % int(ra.denominator) == 0 and GRID % int(rb.denominator) == 0
    assert outward(F(1, 4), F(3, 4)) == (F(1, 4), F(3, 4))  # on the grid: unchanged
    assert outward(-float("inf"), float("inf")) == (-float("inf"), float("inf"))


def test_grid_interval_encloses_the_exact_interval_product() -> None:
    from dtd_formal.smt.bounds import affine_interval, grid_interval, matrix_split

    rng = np.random.default_rng(5)
    M = to_fast(np.array([[F(int(v), 7) for v in row] for row in rng.integers(-20, 20, (6, 4))], dtype=object))
    b = to_fast(np.array([F(int(v), 3) for v in rng.integers(-5, 5, 6)], dtype=object))
    lo = to_fast(np.array([F(int(v), 11) for v in rng.integers(-9, 0, 4)], dtype=object))
    hi = to_fast(np.array([F(int(v), 13) for v in rng.integers(0, 9, 4)], dtype=object))
    Mp, Mn = np.where(M > 0, M, 0), np.where(M < 0, M, 0)
    exact_lo, exact_hi = affine_interval(Mp, Mn, b, lo, hi)
    grid_lo, grid_hi = grid_interval(matrix_split(M), b, lo, hi)
    slack = (sum(abs(v) for v in M.ravel()) + 2) * F(1, GRID)
    for el, eh, gl, gh in zip(exact_lo, exact_hi, grid_lo, grid_hi):
        assert gl <= el and gh >= eh and el - gl <= slack and gh - eh <= slack


def test_rules_with_their_own_root_step_run_in_lanes_or_rows_alike() -> None:
    """A rule that overrides root_step (not of the stock form): the falsifier walks its step in lanes when they
    agree with the walk row by row, and the steps are the same either way."""
    from mutants import ZPlusWrongRootSign

    net = bump_net()
    P = RootExitProblem(net, ZPlusWrongRootSign(), 2, 0, *parse_box((0, 1), 2))
    assert P.stock is None
    fm = FloatModel(P)
    X = np.random.default_rng(2).random((6, 2))
    A = np.maximum(X @ fm.WT[0] + fm.b[0], 0.0)
    z = A @ fm.WT[1] + fm.b[1]
    t, v, _ = fm.steps(A, z, X)
    assert fm._lanes_ok["root_step"]
    rows_t, rows_v, _ = fm._steps_rows(A, None)
    assert np.allclose(t, rows_t, rtol=1e-12) and np.allclose(v, rows_v, rtol=1e-12)

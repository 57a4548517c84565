"""Root-exit search: known answers on constructed nets, engine agreement, exact replay, timeouts, API errors."""

from __future__ import annotations

import dataclasses
import time
from fractions import Fraction as F

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.errors import InputError
from dtd_formal.rules import LRP0, Gamma, WSquare, ZBox, ZPlus
from dtd_formal.smt.counterexample import RootExitCounterexample
from dtd_formal.smt.problem import RootExitProblem, StockForm, parse_box, verify_stock_form
from dtd_formal.smt.relax import check_certificate, prove_by_relaxation

ENGINES = ("falsify", "relax", "lp", "slice", "z3")


def safe_net() -> dtd.Network:
    """4-4-3-1: layer-1 neurons read disjoint inputs (a z+ root of one leaves the others unchanged) and layer 2
    has positive biases and non-negative weights (always active, at a and at every root). No exit is possible."""
    W1 = [[F(3, 2), 0, 0, 0], [0, F(-2), 0, 0], [0, 0, F(3, 4), 0], [0, 0, 0, F(5, 4)]]
    W1[1][1] = F(2)
    b1 = [F(-1, 4), F(-1, 2), F(-1, 8), F(-1, 3)]
    W2 = [[1, 2, F(1, 2), 1], [F(1, 3), 1, 1, 2], [2, F(1, 4), 1, 0]]
    b2 = [F(1), F(1, 2), F(3)]
    W3 = [[1, 2, F(-1, 4)]]
    return dtd.Network([W1, W2, W3], [b1, b2, [F(2)]])


def mixed_safe_net() -> dtd.Network:
    """Layer-1 rows mix signs inside disjoint supports; layer 2 stays active because its bias dominates."""
    W1 = [[F(1), F(-1, 2), 0, 0], [0, 0, F(1), F(1, 3)]]
    b1 = [F(-1, 8), F(-1, 4)]
    W2 = [[F(1), F(-1)], [F(-1, 2), F(1, 4)]]
    b2 = [F(3), F(2)]
    return dtd.Network([W1, W2, [[F(1), F(1)]]], [b1, b2, [F(0)]])


def exit_net() -> dtd.Network:
    """2-2-1: the z+ root of neuron 0 at x = (1, 1) is (1/4, 1/4) (t = 3/4); neuron 1 (z = x0 - 1/2) goes from
    1/2 to -1/4 there: a layer-1 exit, derived by hand."""
    return dtd.Network([[[1, 1], [1, 0]], [[1, 1]]], [[F(-1, 2), F(-1, 2)], [0]])


def upper_only_net() -> dtd.Network:
    """Layer-1 neurons read disjoint inputs (no layer-1 flips); layer-2 neuron 0 = a_0 - 1/2 flips when the z+ root
    of layer-1 neuron 0 zeroes a_0 (x0 > 1/2). Exits exist in scope "upper" only; the output reads that neuron."""
    W1 = [[1, 0], [0, 1]]
    W2 = [[1, 0], [0, 1]]
    return dtd.Network([W1, W2, [[1, 1]]], [[0, 0], [F(-1, 2), F(1)], [0]])


def _check(v: object, net: dtd.Network, rule: object) -> None:
    assert v.status in ("refuted", "proved", "unknown")
    if v.status == "refuted":
        c = v.counterexample
        assert c.replay(net, rule)
        assert c.input is not None and c.root is not None and c.layer >= 1 and c.neuron >= 0


# ---------------------------------------------------------------------------------------------------- known answers
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("net_fn", [safe_net, mixed_safe_net])
def test_safe_nets_are_never_refuted(engine: str, net_fn) -> None:  # type: ignore[no-untyped-def]
    net = net_fn()
    for j in range(net.weight(1).shape[0]):
        v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=j, domain=(0, 1), timeout=5, engines=(engine,))
        assert v.status != "refuted", (engine, j)


def test_safe_net_is_proved_by_relaxation_and_by_z3() -> None:
    net = safe_net()
    for j in range(4):
        for eng in ("relax", "z3"):
            v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=j, domain=(0, 1), timeout=20, engines=(eng,))
            assert v.status == "proved", (eng, j, v)


def test_mixed_safe_net_is_proved() -> None:
    net = mixed_safe_net()
    v = dtd.find_root_exit(net, ZPlus(), layer=1, domain=(0, 1), timeout=20)
    assert v.status == "proved"
    assert set(v.per_neuron) == {0, 1}


def test_hand_derived_exit_is_found_by_every_refuting_engine() -> None:
    net = exit_net()
    question = RootExitProblem(net, ZPlus(), 1, 0, *parse_box((0, 1), 2)).question()
    cex = RootExitCounterexample.build(question, net, ZPlus(), [1, 1])
    assert cex is not None and cex.step == F(3, 4)
    assert list(cex.root) == [F(1, 4), F(1, 4)] and cex.flipped == [(1, 1)]
    assert cex.patterns_before[0] == [1, 1] and cex.patterns_after[0][1] == -1
    for eng in ("falsify", "lp", "slice", "z3"):
        v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10, engines=(eng,))
        assert v.status == "refuted", (eng, v)
        _check(v, net, ZPlus())
        x = v.counterexample.input
        # independent check of the hand-derived condition: z1(x) = x0 - 1/2 > 0 and z1(root) < 0
        t = (x[0] + x[1] - F(1, 2)) / (x[0] + x[1])
        assert x[0] - F(1, 2) > 0 and x[0] * (1 - t) - F(1, 2) < 0
    v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10, engines=("relax",))
    assert v.status in ("refuted", "unknown")


def test_exit_net_near_the_threshold_is_not_proved() -> None:
    """On [0, 3/5]^2 exits exist exactly where x0 > 1/2 and x1 > 0 (r0 - 1/2 = x0 / (2 (x0 + x1)) - 1/2 < 0):
    a sound prover must not prove this box."""
    net = exit_net()
    P = RootExitProblem(net, ZPlus(), 1, 0, *parse_box((0, F(3, 5)), 2))
    assert prove_by_relaxation(P, time.monotonic() + 2).status != "proved"
    v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, F(3, 5)), timeout=10)
    assert v.status == "refuted" and v.counterexample.input[0] > F(1, 2) and v.counterexample.input[1] > 0


def test_no_exit_below_the_threshold_box() -> None:
    """On x in [0, 1/2]^2 neuron 1 of exit_net is never active (x0 - 1/2 <= 0): no neuron can flip from + to -,
    and a flip from - to + needs the root coordinate to grow, which z+ never does (t in (0, 1])."""
    net = exit_net()
    for eng in ("relax", "z3"):
        v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, F(1, 2)), timeout=10, engines=(eng,))
        assert v.status == "proved", eng


def test_scope_layer_versus_upper_and_affine_map_variant() -> None:
    net = upper_only_net()
    v_layer = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), scope="layer", timeout=10)
    assert v_layer.status == "proved"
    v_up = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), scope="upper", timeout=10)
    assert v_up.status == "refuted"
    c = v_up.counterexample
    assert c.flipped == [(2, 0)] and c.input[0] > F(1, 2)
    v_map = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10, variant="affine_map")
    assert v_map.status == "refuted" and v_map.counterexample.leaves_affine_map
    _check(v_map, net, ZPlus())
    # the region semantics of the core agree on the counterexample's input
    rec = [r for r in dtd.root_regions(net, [c.input], ZPlus(), scope="upper", layers=1).records if r.neuron == 0][0]
    assert rec.leaves_pattern and rec.flipped == [(2, 0)]


def _random_net(seed: int, sizes: tuple[int, ...]) -> dtd.Network:
    rng = np.random.default_rng(seed)
    Ws, bs = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        Ws.append([[F(int(v), 4) for v in row] for row in rng.integers(-4, 5, (n_out, n_in))])
        bs.append([F(int(v), 8) for v in rng.integers(-6, 3, n_out)])
    return dtd.Network(Ws, bs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_engines_agree_on_small_random_nets(seed: int) -> None:
    net = _random_net(seed, (3, 3, 2, 1))
    rule = ZPlus()
    for j in range(2):
        statuses = {}
        for eng in ENGINES:
            v = dtd.find_root_exit(net, rule, layer=1, neuron=j, domain=(0, 1), timeout=3, engines=(eng,))
            _check(v, net, rule)
            statuses[eng] = v.status
        assert not ("proved" in statuses.values() and "refuted" in statuses.values()), (seed, j, statuses)
        if statuses["relax"] == "proved" or statuses["z3"] == "proved":
            # no exact exit among dense float samples either
            P = RootExitProblem(net, rule, 1, j, *parse_box((0, 1), 3))
            from dtd_formal.smt.falsify import FloatModel, confirm

            X = np.random.default_rng(7).random((3000, 3))
            s = FloatModel(P).score(X)
            for i in np.argsort(-s)[:5]:
                if s[i] > 0:
                    assert confirm(P, X[i], "test") is None


@pytest.mark.parametrize("rule", [LRP0(), Gamma(0.5), WSquare(), ZBox(0, 1)])
def test_other_rules_replay_and_never_contradict(rule: object) -> None:
    net = exit_net()
    seen = set()
    for eng in ("falsify", "relax", "z3"):
        v = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=(0, 1), timeout=3, engines=(eng,))
        _check(v, net, rule)
        seen.add(v.status)
    assert not {"proved", "refuted"} <= seen


def test_stock_form_is_verified_from_the_rules_own_definition() -> None:
    net = _random_net(3, (3, 2, 1))
    W = net.weight(1)[0]

    def form(rule: object) -> StockForm:
        f = verify_stock_form(rule, net, 1, 0, nonnegative=True)
        assert isinstance(f, StockForm), f
        return f

    f = form(ZPlus())
    assert list(f.D) == [F(int(w > 0)) for w in W] and all(v == 0 for v in f.e)
    assert list(form(Gamma(F(1, 2))).D) == [1 + F(1, 2) * int(w > 0) for w in W]
    f = form(WSquare())
    assert all(v == 0 for v in f.D) and list(f.e) == list(W)
    f = form(ZBox(-1, 2))
    assert list(f.e) == [-(F(-1) if w > 0 else F(2) if w < 0 else 0) for w in W]

    class WrongStep(ZPlus):  # overrides root_step: the linear engines must not assume the stock step
        def root_step(self, ops, a, W, b, R=None, definition="true"):  # type: ignore[no-untyped-def]
            t, V, den = super().root_step(ops, a, W, b, R, definition)
            return t * 2, V, den

    class Thresholded(ZPlus):  # a data-dependent mask on a: not diagonal-affine
        def direction(self, ops, a, W, b):  # type: ignore[no-untyped-def]
            return ops.positive_mask(W) * ops.pos(a - ops.const(F(1, 2)))

    assert "is not z_j / (w_j . v_j)" in verify_stock_form(WrongStep(), net, 1, 0, nonnegative=True)
    assert "not affine" in verify_stock_form(Thresholded(), net, 1, 0, nonnegative=True)
    # ... and the problem records it: relax/lp/slice step aside with the reason, never a Proved from them
    P = RootExitProblem(net, WrongStep(), 1, 0, *parse_box((0, 1), 3))
    assert P.stock is None and "root_step" in P.not_stock_reason
    v = dtd.find_root_exit(net, WrongStep(), layer=1, neuron=0, domain=(0, 1), timeout=3, engines=("relax", "lp"))
    assert v.status == "unknown" and "stepped aside" in v.reason


# ---------------------------------------------------------------------------------------------------- certificates
def test_relaxation_certificate_rechecks_and_tampering_fails() -> None:
    net = _random_net(3, (3, 3, 2, 1))
    P = RootExitProblem(net, ZPlus(), 1, 1, *parse_box((0, 1), 3))
    res = prove_by_relaxation(P, time.monotonic() + 20, use_lp=False)
    assert res.status == "proved" and check_certificate(P, res.tree)
    assert res.tree.count(-1) >= 2  # needs branching: the whole box is not safe by intervals alone
    v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=1, domain=(0, 1), timeout=10, engines=("z3",))
    assert v.status == "proved"  # the complete engine agrees
    assert not check_certificate(P, [-1])  # the unsplit box is not safe by intervals
    assert not check_certificate(P, res.tree[:-1])  # incomplete tree
    # the McCormick LP relaxation (exact Farkas certificates) closes the whole box at once
    res_lp = prove_by_relaxation(P, time.monotonic() + 20, use_lp=True)
    assert res_lp.status == "proved" and res_lp.tree == [-2] and check_certificate(P, [-2])


@pytest.mark.parametrize("seed,neuron", [(3, 2), (6, 1), (6, 2)])
def test_mccormick_lp_proofs_agree_with_z3(seed: int, neuron: int) -> None:
    net = _random_net(seed, (3, 3, 2, 1))
    P = RootExitProblem(net, ZPlus(), 1, neuron, *parse_box((0, 1), 3))
    res = prove_by_relaxation(P, time.monotonic() + 20, use_lp=True)
    assert res.status == "proved" and -2 in res.tree and check_certificate(P, res.tree)
    v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=neuron, domain=(0, 1), timeout=10, engines=("z3",))
    assert v.status in ("proved", "unknown")


def test_mccormick_lp_never_certifies_a_box_with_an_exit() -> None:
    """exit_net on [0, 1]^2: exits fill x0 > 1/2, x1 > 0, so no box containing one may get an LP leaf."""
    from dtd_formal.smt.mccormick import box_lp_safe
    from dtd_formal.smt.relax import box_analysis, prepare
    from dtd_formal.exact import to_fast

    net = exit_net()
    P = RootExitProblem(net, ZPlus(), 1, 0, *parse_box((0, 1), 2))
    prep = prepare(P)
    for lo, hi in (((0, 0), (1, 1)), ((F(1, 2), 0), (1, F(1, 2))), ((F(3, 4), F(1, 4)), (1, F(1, 2)))):
        lo_, hi_ = to_fast(np.array([F(v) for v in lo], dtype=object)), to_fast(np.array([F(v) for v in hi], dtype=object))
        safe, info = box_analysis(P, prep, lo_, hi_)
        assert not safe
        assert not box_lp_safe(P, prep, lo_, hi_, info, time.monotonic() + 10)


def test_counterexample_json_pytest_and_tampering() -> None:
    net = exit_net()
    v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10)
    c = v.counterexample
    data = v.to_json()
    assert data["status"] == "refuted" and data["counterexample"]["question"]["neuron"] == 0
    assert data["question"]["network"] == net.digest() and data["question"]["rule"] == "zplus"
    back = RootExitCounterexample.from_json(c.to_json())
    assert back.replay(net, ZPlus()) and back.step == c.step
    src = c.to_pytest(net, "test_generated")
    ns: dict = {}
    exec(compile(src, "<generated>", "exec"), ns)
    ns["test_generated"]()
    bad = RootExitCounterexample.from_json(c.to_json())
    bad.root = bad.root + F(1, 10**9)
    assert bad.check(net, ZPlus())[0].startswith("root:")
    bad2 = RootExitCounterexample.from_json(c.to_json())
    bad2.input = np.array([F(1, 8), F(1, 8)], dtype=object)  # x0 < 1/2: neuron 1 inactive, no exit
    bad2.root = np.array([F(0), F(0)], dtype=object)
    assert not bad2.replay(net, ZPlus())
    bad3 = RootExitCounterexample.from_json(c.to_json())
    bad3.input = np.array([F(11, 10), F(1, 2)], dtype=object)  # an exit, but outside the box [0, 1]^2
    assert bad3.check(net, ZPlus()) == ["input: the input is not in the question's box"]
    assert not back.replay(net, LRP0())  # another rule than the one the file is about
    assert not back.replay(upper_only_net(), ZPlus())  # another network (digest)


# ---------------------------------------------------------------------------------------------------- budgets, API
def test_timeout_is_honoured_and_gives_unknown() -> None:
    net = dtd.examples.paper_mlp(dtd.examples.STUDY_SEED, "paper-text")
    t0 = time.monotonic()
    v = dtd.find_root_exit(net, ZPlus(), layer=2, neuron=0, domain=(0, 1), timeout=1, engines=("z3",))
    assert time.monotonic() - t0 < 6
    assert v.status in ("unknown", "refuted")
    t0 = time.monotonic()
    v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=2, domain=(0, 1), timeout=1, engines=("relax",))
    assert time.monotonic() - t0 < 6


def test_api_errors() -> None:
    net = exit_net()
    with pytest.raises(InputError):
        dtd.find_root_exit(net, ZPlus(), layer=3, neuron=0, domain=(0, 1))
    with pytest.raises(InputError):
        dtd.find_root_exit(net, ZPlus(), layer=1, neuron=5, domain=(0, 1))
    with pytest.raises(InputError):
        dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(1, 0))
    with pytest.raises(InputError):
        dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), scope="global")
    with pytest.raises(InputError):
        dtd.find_root_exit(net, dtd.rules.AlphaBeta(), layer=1, neuron=0, domain=(0, 1))
    with pytest.raises(InputError):
        dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), engines=("magic",))
    lo, hi = parse_box("0:1/2", 2)
    assert list(hi) == [F(1, 2), F(1, 2)]
    lo, hi = parse_box(([0, -1], [1, 2]), 2)
    assert list(lo) == [0, -1]


def test_last_layer_and_non_candidates_are_trivial() -> None:
    net = exit_net()
    v = dtd.find_root_exit(net, ZPlus(), layer=2, neuron=0, domain=(0, 1), timeout=5)
    assert v.status == "proved"  # no ReLU in the scope above a linear last layer


# ---------------------------------------------------------------------------------------------------- branching on t
def wedge_net(n: int) -> dtd.Network:
    """n inputs; neuron 0 = sum(x) - 1/2, neuron 1 = x0 - 1/4; the box is x0 in [0, 1], the others in [0, w] with
    w = 49 / (200 (n - 1)). Hand proof that the z+ root of neuron 0 never flips neuron 1: the root is
    x (1 - t) = x / (2 S) (S = sum x, t = 1 - 1/(2 S)), so z_1(root) = x0 / (2 S) - 1/4 >= 0 iff x0 >= S / 2,
    i.e. x0 >= sum_{i>0} x_i; a flip needs x0 > 1/4 > 49/200 >= sum_{i>0} x_i, so z_1(root) > 0 there."""
    W = [[1] * n, [1] + [0] * (n - 1)]
    return dtd.Network([W, [[1, 1]]], [[F(-1, 2), F(-1, 4)], [0]])


def _wedge_problem(n: int) -> RootExitProblem:
    w = F(49, 200 * (n - 1))
    return RootExitProblem(wedge_net(n), ZPlus(), 1, 0, *parse_box(([0] * n, [1] + [w] * (n - 1)), n))


@pytest.mark.parametrize("n", [2, 6])
def test_branching_on_t_proves_with_fewer_nodes(n: int) -> None:
    P = _wedge_problem(n)
    box = prove_by_relaxation(P, time.monotonic() + 20, use_lp=False, branch="box")
    both = prove_by_relaxation(P, time.monotonic() + 20, use_lp=False, branch="both")
    assert box.status == "proved" and both.status == "proved"
    assert both.t_splits >= 1 and -3 in both.tree and -3 not in box.tree
    assert both.boxes < box.boxes, (both.boxes, box.boxes)
    assert check_certificate(P, both.tree) and check_certificate(P, box.tree, "box")
    assert not check_certificate(P, box.tree)  # read with the other branching rule, the tree is not the prover's
    # at the budget the t-branching proof needs, input-box branching alone does not finish
    cut = prove_by_relaxation(P, time.monotonic() + 20, use_lp=False, branch="box", max_boxes=both.boxes)
    assert cut.status == "unknown"


def test_t_split_certificates_are_rechecked() -> None:
    P = _wedge_problem(6)
    both = prove_by_relaxation(P, time.monotonic() + 20, use_lp=False, branch="both")
    tree = both.tree
    assert not check_certificate(P, [-3, -1, -1])  # one t split is not enough for intervals
    assert not check_certificate(P, tree[:-1])
    # the same tree with its t split read as a split of x1 (same shape): the leaves below need the t-slices
    tampered = list(tree)
    tampered[tree.index(-3)] = 1
    assert not check_certificate(P, tampered)
    # branching on t never proves a box with an exit (exit_net near the threshold, as above)
    Q = RootExitProblem(exit_net(), ZPlus(), 1, 0, *parse_box((0, F(3, 5)), 2))
    for br in ("t", "both"):
        assert prove_by_relaxation(Q, time.monotonic() + 1, branch=br).status != "proved"
    v = dtd.find_root_exit(wedge_net(6), ZPlus(), layer=1, neuron=0, timeout=10, engines=("relax",),
                           domain=(P.low, P.high))
    assert v.status == "proved" and "t_splits" in v.certificate


# ---------------------------------------------------------------------------------------------------- paper-code roots
def double_output_net() -> dtd.Network:
    """exit_net with output weights (2, 1): f = 2 a_0 + a_1, so the z+ relevance of neuron 0 is R_0 = 2 a_0 (by
    hand: 2 a_0 f / f) and the paper-code step is twice the true step, t = 2 z_0 / (x0 + x1)."""
    return dtd.Network([[[1, 1], [1, 0]], [[2, 1]]], [[F(-1, 2), F(-1, 2)], [0]])


def test_paper_code_roots_hand_derived_and_replayed() -> None:
    net = double_output_net()
    r = dtd.roots(net, [1, 1], ZPlus(), layer=1, definition="paper-code")
    assert r.steps[0] == F(3, 2) and list(r.points[0]) == [F(-1, 2), F(-1, 2)]
    for eng in ("falsify", "z3"):
        v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10, definition="paper-code",
                               engines=(eng,))
        assert v.status == "refuted", eng
        c = v.counterexample
        x0, x1 = c.input
        assert c.definition == "paper-code" and c.step == 2 * (x0 + x1 - F(1, 2)) / (x0 + x1)
        assert c.replay(net, ZPlus())
        back = RootExitCounterexample.from_json(c.to_json())
        assert back.definition == "paper-code" and back.replay(net, ZPlus())
        # the same record read with the other definition does not replay
        back.question = dataclasses.replace(back.question, params={**back.question.params, "definition": "true"})
        assert not back.replay(net, ZPlus())
        ns: dict = {}
        exec(compile(c.to_pytest(net, "test_generated"), "<generated>", "exec"), ns)
        ns["test_generated"]()


def test_paper_code_roots_can_be_proved_where_true_roots_exit() -> None:
    """upper_only_net: R^1_0 = relu(x0 - 1/2) (by hand), so the paper-code root of neuron 0 is min(x0, 1/2):
    layer-2 neuron 0 (a_0 - 1/2) ends on its hyperplane, never strictly below it; the true root (0) flips it."""
    net = upper_only_net()
    true = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10, engines=("z3",))
    assert true.status == "refuted"
    paper = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10, definition="paper-code")
    assert paper.status == "proved" and paper.method.startswith("z3")
    r = dtd.roots(net, [F(3, 4), F(1, 3)], ZPlus(), layer=1, definition="paper-code")
    assert r.points[0][0] == F(1, 2)
    with pytest.raises(InputError):
        dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), definition="paper")


# ---------------------------------------------------------------------------------------------------- affine maps
def dead_upper_net() -> dtd.Network:
    """upper_only_net with output weights (0, 1): layer-2 neuron 0 still flips at the z+ root of layer-1 neuron 0
    (x0 > 1/2), but f does not read it, so the affine map of f never changes (by hand: f = relu(x1 + 1))."""
    return dtd.Network([[[1, 0], [0, 1]], [[1, 0], [0, 1]], [[0, 1]]], [[0, 0], [F(-1, 2), F(1)], [0]])


def test_affine_map_variant_proved_by_pattern_enumeration() -> None:
    from dtd_formal.smt.maps import enumerate_map_changes

    net = dead_upper_net()
    v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10, engines=("z3",))
    assert v.status == "refuted" and v.counterexample.flipped == [(2, 0)]
    assert not v.counterexample.leaves_affine_map
    m = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10, variant="affine_map",
                           engines=("z3",))
    assert m.status == "proved" and m.certificate["pattern_pairs"] >= 1
    # every enumerated pair differs (a flip) yet keeps the map; a cut enumeration is Unknown, never Proved
    assert all(a != b for a, b in m.certificate["pairs"])
    P = RootExitProblem(net, ZPlus(), 1, 0, *parse_box((0, 1), 2), variant="affine_map")
    assert enumerate_map_changes(P, time.monotonic() + 10, max_patterns=1).status == "unknown"
    # with the output reading layer-2 neuron 0 the map does change: refuted, replayed exactly
    r = dtd.find_root_exit(upper_only_net(), ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10,
                           variant="affine_map", engines=("z3",))
    assert r.status == "refuted" and r.counterexample.leaves_affine_map and r.counterexample.input[0] > F(1, 2)
    _check(r, upper_only_net(), ZPlus())

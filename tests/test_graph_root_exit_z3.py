"""find_root_exit's complete Z3 decision on operator graphs (issue 13): the rule's own root step on the graph's
walk over Z3 terms, the root's walk from layer l's input with its own phases and max-pool If-chains, the textbook
exit condition; hand-derived exits in slivers that sampling misses, proofs the interval bounds cannot give, brute
force and the dense unrolled twin, max pools, mutant rules that lie on Z3 terms, and replay of the verdict files
(tampering rejected).

Every net here has pointwise (1x1) or width-2 convolutions on a tiny input, exact weights, and a hand argument in
its docstring."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction as F
from typing import Any

import numpy as np
import pytest
import z3

import dtd_formal as dtd
from dtd_formal.exact import to_fraction_array
from dtd_formal.graph import GraphBuilder, GraphNetwork
from dtd_formal.graph.bounds import interval_bounds
from dtd_formal.graph.explain import graph_root_regions
from dtd_formal.graph.root_exit import GraphRootExitCounterexample, interval_root_proof, z3_root_exit_proof
from dtd_formal.replay import replay_data
from dtd_formal.rules import ZPlus
from dtd_formal.rules.parse import parse_rule
from dtd_formal.smt.counterexample import question_from_json

from graph_twin import unrolled_twin

EPS = F(1, 10**6)
TIMEOUT = 4  # per question: the falsifier gets 40 % of it, Z3 the rest


# ---------------------------------------------------------------------------------------------------- nets
def sliver_net(eps: Any = EPS, b1: Any = F(-1, 3)) -> GraphNetwork:
    r"""A pointwise conv on a (2 channels, 2 positions) input x[c, p] (flat x00, x01, x10, x11), ReLU, sum.

    Channel 0: :math:`z_{0,p} = x_{0,p} - 1/2`; channel 1: :math:`z_{1,p} = \varepsilon x_{0,p} + x_{1,p} + b_1`.
    By hand, z+ for neuron (0, p) (flat p): the direction is :math:`(x_{0,p}, 0)` on the receptive field
    :math:`(x_{0,p}, x_{1,p})`, t = :math:`(x_{0,p} - 1/2) / x_{0,p}`, the root moves :math:`x_{0,p}` to 1/2 and
    nothing else; the only unit of layer 1 that can change is :math:`z_{1,p}`, from
    :math:`\varepsilon x_{0,p} + x_{1,p} + b_1` to :math:`\varepsilon / 2 + x_{1,p} + b_1`. With :math:`b_1 = -1/3`
    it flips (positive at x, negative at the root) exactly when
    :math:`x_{1,p} \in (1/3 - \varepsilon x_{0,p},\ 1/3 - \varepsilon / 2)`, :math:`x_{0,p} > 1/2`: a sliver of
    width below :math:`\varepsilon/2 = 5 \cdot 10^{-7}` (no corner, no centre, no random float meets it). On the
    box :math:`x_{1,p} \ge 1/2` it never flips (both values exceed 1/6).
    """
    g = GraphBuilder((2, 2))
    h = g.relu(g.conv(g.input, [[[1], [0]], [[eps], [1]]], [F(-1, 2), b1]))
    return g.network(g.dense(g.flatten(h), [[1, 1, 1, 1]], [0]))


FULL = ([0, 0, 0, 0], [1, 1, 1, 1])
HIGH_X1 = ([0, 0, F(1, 2), F(1, 2)], [1, 1, 1, 1])


def upper_net(delta: Any = EPS) -> GraphNetwork:
    r"""Pointwise conv: :math:`z_{0,p} = x_{0,p} - 1/2`, :math:`z_{1,p} = x_{1,p}`; ReLU; flatten; a hidden dense
    ReLU layer :math:`u = \delta a_{0,0} + a_{1,0} - 1/3`, :math:`u' = a_{0,1} + a_{1,1}`; output :math:`u + u'`.

    By hand, z+ for neuron (0, 0) (flat 0): its root moves :math:`x_{0,0}` to 1/2 (as in :func:`sliver_net`);
    layer 1 has nothing that can change (channel 1 does not read channel 0; position 1 is not moved), so scope
    "layer" holds. In scope "upper" u changes from :math:`\delta (x_{0,0} - 1/2) + x_{1,0} - 1/3` to
    :math:`x_{1,0} - 1/3` (a_{0,0} is held linear: 0 at the root) and flips exactly on the sliver
    :math:`x_{1,0} \in (1/3 - \delta (x_{0,0} - 1/2), 1/3)`; the affine map of f in :math:`a_0` changes with it (u's
    gate closes). On the box :math:`x_{1,0} \ge 1/2` nothing flips.
    """
    g = GraphBuilder((2, 2))
    h = g.relu(g.conv(g.input, [[[1], [0]], [[0], [1]]], [F(-1, 2), 0]))
    u = g.relu(g.dense(g.flatten(h), [[delta, 0, 1, 0], [0, 1, 0, 1]], [F(-1, 3), 0]))
    return g.network(g.dense(u, [[1, 1]], [0]))


def pool_net(b1: Any = F(1, 4)) -> GraphNetwork:
    r"""Pointwise conv as :func:`sliver_net` with :math:`b_1` = 1/4 (channel 1 always active on the unit box),
    ReLU, a max pool over the two positions of each channel, the sum of the two maxima.

    By hand, z+ for neuron (0, 0): channel 0's window compares :math:`x_{0,0} - 1/2` (held linear: 0 at the root)
    with :math:`(x_{0,1} - 1/2)^+`: with :math:`x_{0,1} \le 1/2` it is a tie {0, 1} at the root, never disjoint
    from x's winners. Channel 1's window compares :math:`a_{1,0} = \varepsilon x_{0,0} + x_{1,0} + 1/4` (which the
    root lowers by :math:`\varepsilon (x_{0,0} - 1/2)`) with :math:`a_{1,1}`: its winner changes exactly on the
    sliver :math:`0 < a_{1,0} - a_{1,1} < \varepsilon (x_{0,0} - 1/2)`. No ReLU of layer 1 flips (channel 1 > 0),
    so scope "layer" holds and scope "upper" is refuted only in the sliver. On the box
    :math:`x_{1,0} \ge 1/2, x_{1,1} \le 1/4` channel 1's winner is position 0 at both points: upper holds too.
    """
    g = GraphBuilder((2, 2))
    h = g.relu(g.conv(g.input, [[[1], [0]], [[EPS], [1]]], [F(-1, 2), b1]))
    p = g.maxpool(h, (2,), name="pool")
    return g.network(g.dense(g.flatten(p), [[1, 1]], [0]))


POOL_BOX = ([0, 0, 0, 0], [1, F(1, 2), 1, 1])
POOL_SAFE = ([0, 0, F(1, 2), 0], [1, F(1, 2), 1, F(1, 4)])


def random_conv_net(seed: int) -> GraphNetwork:
    """conv (1 -> 2 channels, kernel 2) on a length-3 input, ReLU, flatten, dense 4 -> 2 with ReLU, dense 2 -> 1;
    weights in {-1, -1/2, 0, 1/2, 1}, biases in {-1/2, -1/4, 0, 1/4}."""
    rng = np.random.default_rng(seed)
    w = lambda *s: [[F(int(v), 2) for v in row] for row in rng.integers(-2, 3, size=s)]  # noqa: E731
    b = lambda n: [F(int(v), 4) for v in rng.integers(-2, 2, size=n)]  # noqa: E731
    g = GraphBuilder((1, 3))
    k = [[[F(int(v), 2) for v in rng.integers(-2, 3, size=2)]] for _ in range(2)]
    h = g.relu(g.conv(g.input, k, b(2)))
    u = g.relu(g.dense(g.flatten(h), w(2, 4), b(2)))
    return g.network(g.dense(u, w(1, 2), [0]))


def grid_exit(net: GraphNetwork, rule: Any, layer: int, j: int, scope: str, low: Any, high: Any, n: int) -> bool:
    """Brute force: whether the exact classifier finds an exit at some point of the (n+1)^d grid of the box."""
    lo, hi = to_fraction_array(low), to_fraction_array(high)
    pts = [np.array([l + (h - l) * F(k, n) for l, h, k in zip(lo, hi, ks)], dtype=object)
           for ks in itertools.product(range(n + 1), repeat=len(lo))]
    rep = graph_root_regions(net, np.array(pts, dtype=object), rule, scope=scope, layers=[layer], neurons=[j])
    return any(r.leaves_pattern for r in rep.records)


def z3_decide(net: GraphNetwork, rule: Any, layer: int, j: int, scope: str, low: Any, high: Any,
              variant: str = "pattern") -> tuple[str, Any]:
    """The Z3 stage alone (no falsifier, no interval proof): ("unsat", cert) / ("sat", x) / ("unknown", why)."""
    lo, hi = to_fraction_array(low), to_fraction_array(high)
    st, got, cert = z3_root_exit_proof(net, rule, layer, j, scope, variant, 0, "true", lo, hi,
                                       interval_bounds(net, lo, hi), 30)
    return st, cert if st == "unsat" else got


def replays(net: GraphNetwork, rule: Any, layer: int, j: int, scope: str, low: Any, high: Any, x: Any,
            variant: str = "pattern") -> Any:
    """The counterexample of a Z3 model, rebuilt and confirmed exactly (None when the model does not replay)."""
    from dtd_formal.smt.problem import parse_box, root_exit_question

    lo, hi = parse_box((low, high), net.input_size)
    q = root_exit_question(net, rule, layer, j, lo, hi, scope, variant, 0, "true")
    return GraphRootExitCounterexample.build(q, net, rule, x, "z3")


# ---------------------------------------------------------------------------------------------------- slivers
def test_layer_scope_sliver_is_refuted_only_by_z3() -> None:
    net, rule = sliver_net(), ZPlus()
    v = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=FULL, scope="layer", timeout=TIMEOUT)
    assert v.status == "refuted" and v.method == "z3 + exact replay", v
    cex = v.counterexample
    x = cex.input
    # the hand-derived sliver: x00 > 1/2, x10 in (1/3 - eps x00, 1/3 - eps/2); the flipped unit is z_{1,0}
    assert x[0] > F(1, 2) and F(1, 3) - EPS * x[0] < x[2] < F(1, 3) - EPS / 2, x
    assert cex.flipped == [(1, 2)] and cex.root[0] == F(1, 2) and list(cex.root[1:]) == list(x[1:])
    # the falsifier alone (all of its samples) does not find it
    u = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=FULL, scope="layer", timeout=TIMEOUT,
                           engines=("falsify",))
    assert u.status == "unknown" and "no exit among" in u.reason, u


def test_layer_scope_proof_only_z3_gives() -> None:
    net, rule = sliver_net(), ZPlus()
    lo, hi = to_fraction_array(HIGH_X1[0]), to_fraction_array(HIGH_X1[1])
    # the interval proof cannot decide the step: w . v = x00 vanishes on the box (t's safe division is undecided)
    why = interval_root_proof(net, rule, 1, 0, "layer", "pattern", "true", interval_bounds(net, lo, hi))
    assert why is not None and "not decided on intervals" in why
    v = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=HIGH_X1, scope="layer", timeout=TIMEOUT)
    assert v.status == "proved" and v.certificate["solver"] == "z3" and v.certificate["maxpool_cases"] == 1, v
    assert not grid_exit(net, rule, 1, 0, "layer", *HIGH_X1, 3)


def test_upper_scope_sliver_refuted_and_proved_only_by_z3() -> None:
    net, rule = upper_net(), ZPlus()
    assert dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=FULL, scope="layer",
                              timeout=TIMEOUT).status == "proved"
    v = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=FULL, scope="upper", timeout=TIMEOUT)
    assert v.status == "refuted" and v.method == "z3 + exact replay", v
    x = v.counterexample.input
    assert x[0] > F(1, 2) and F(1, 3) - EPS * (x[0] - F(1, 2)) < x[2] < F(1, 3), x
    assert v.counterexample.flipped == [(2, 0)]
    # the affine map changes with u's gate: the variant is refuted at a Z3 model, replayed for the variant itself
    a = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=FULL, scope="upper", variant="affine_map",
                           timeout=TIMEOUT)
    assert a.status == "refuted" and a.counterexample.leaves_affine_map, a
    for variant in ("pattern", "affine_map"):
        p = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=HIGH_X1, scope="upper", variant=variant,
                               timeout=TIMEOUT)
        assert p.status == "proved" and p.certificate["solver"] == "z3", p
        assert p.certificate["query_scope"] == "upper"


# ---------------------------------------------------------------------------------------------------- brute force
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_z3_verdicts_equal_brute_force_on_random_conv_nets(seed: int) -> None:
    # every neuron of both layers, both scopes: an exit on the grid means Z3 must answer sat (with a model that
    # replays exactly); an unsat means the grid has none; a sat the grid misses must replay
    net, rule = random_conv_net(seed), ZPlus()
    box = ([0, 0, 0], [1, 1, 1])
    seen = set()
    for layer, n in ((1, 4), (2, 2)):
        for j in range(n):
            for scope in ("layer", "upper"):
                st, got = z3_decide(net, rule, layer, j, scope, *box)
                assert st in ("sat", "unsat"), got
                seen.add(st)
                grid = grid_exit(net, rule, layer, j, scope, *box, 4)
                if st == "unsat":
                    assert not grid, (layer, j, scope)
                else:
                    assert replays(net, rule, layer, j, scope, *box, got) is not None, (layer, j, scope, got)
    assert seen == {"sat", "unsat"}  # both answers occur on each of these nets


@pytest.mark.parametrize("spec", ["zplus", "wsquare", "zbox:-1,1"])
def test_z3_verdicts_equal_the_dense_twins(spec: str) -> None:
    # the rules whose receptive-field roots are the dense twin's (tests/test_graph.py): the twin's complete
    # engines and the graph's Z3 stage pose the same question and must give the same status
    rule = parse_rule(spec)
    for net, box in ((sliver_net(F(1, 8)), FULL), (sliver_net(F(1, 8)), HIGH_X1), (upper_net(F(1, 8)), FULL),
                     (upper_net(F(1, 8)), HIGH_X1)):
        twin = unrolled_twin(net)
        for scope in ("layer", "upper"):
            st, _ = z3_decide(net, rule, 1, 0, scope, *box)
            d = dtd.find_root_exit(twin, rule, layer=1, neuron=0, domain=box, scope=scope, timeout=20)
            assert {"sat": "refuted", "unsat": "proved"}[st] == d.status, (spec, scope, box, d)


# ---------------------------------------------------------------------------------------------------- max pools
def test_maxpool_winner_change_is_found_and_a_safe_box_is_proved() -> None:
    net, rule = pool_net(), ZPlus()
    assert dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=POOL_BOX, scope="layer",
                              timeout=TIMEOUT).status == "proved"
    v = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=POOL_BOX, scope="upper", timeout=TIMEOUT)
    assert v.status == "refuted" and v.method == "z3 + exact replay", v
    assert v.counterexample.flipped == [("maxpool", "pool", 1)]
    x = v.counterexample.input
    gap = (EPS * x[0] + x[2]) - (EPS * x[1] + x[3])  # a_{1,0} - a_{1,1} at x
    assert 0 < gap < EPS * (x[0] - F(1, 2)), x
    # channel 0's window changes its winner where x01 > 1/2 (outside POOL_BOX): sampling finds that one
    w = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=FULL, scope="upper", timeout=TIMEOUT)
    assert w.status == "refuted" and ("maxpool", "pool", 0) in w.counterexample.flipped
    p = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=POOL_SAFE, scope="upper", timeout=TIMEOUT)
    assert p.status == "proved" and p.certificate["solver"] == "z3", p


# ---------------------------------------------------------------------------------------------------- mutants
def _is_z3(x: Any) -> bool:
    return any(isinstance(v, z3.ExprRef) for v in np.ravel(np.asarray(x, dtype=object)).tolist())


class ZPlusNoStepOnZ3(ZPlus):
    """On Z3 terms its step is t = 0 (the root is x itself: nothing ever changes); on numbers it is z+."""

    def root_step(self, ops: Any, a: Any, W: Any, b: Any, R: Any = None, definition: str = "true") -> Any:
        t, V, den = super().root_step(ops, a, W, b, R, definition)
        return (ops.zeros_like(t), V, den) if getattr(ops, "name", "") == "z3" or _is_z3(a) else (t, V, den)


class ZPlusSideStepOnZ3(ZPlus):
    """Inspects its arguments' types: on Z3 terms its direction also moves the second input channel by 1 (the root
    lands elsewhere); on numbers it is z+."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        V = super().direction(ops, a, W, b)
        if _is_z3(a):
            V = V + ops.where(W == 0, ops.one, ops.zero)
        return V


class ZPlusFloatDirection(ZPlus):
    """Reads its input as floats: works on numbers, raises on Z3 terms."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        float(np.ravel(np.asarray(a, dtype=object))[0])
        return super().direction(ops, a, W, b)


def test_mutant_rules_are_right_or_unknown_never_a_wrong_proof() -> None:
    net = sliver_net()
    # the truth (z+ is the mutants' exact behaviour): refuted on FULL (the sliver), proved on HIGH_X1
    truth = {"full": "refuted", "high": "proved"}
    for mutant in (ZPlusNoStepOnZ3(), ZPlusSideStepOnZ3()):
        for name, box in (("full", FULL), ("high", HIGH_X1)):
            v = dtd.find_root_exit(net, mutant, layer=1, neuron=0, domain=box, scope="layer", timeout=TIMEOUT)
            assert v.status in (truth[name], "unknown"), (type(mutant).__name__, name, v)
            if v.status == "refuted":
                assert v.counterexample.check(net, mutant) == []
    # t = 0 on Z3 terms: every query is unsat, and the comparison at the check points must catch it
    v = dtd.find_root_exit(net, ZPlusNoStepOnZ3(), layer=1, neuron=0, domain=FULL, scope="layer", timeout=TIMEOUT)
    assert v.status == "unknown" and "disagrees with exact arithmetic" in v.reason and "t on Z3" in v.reason, v
    # a body that does not run on Z3 terms: Unknown, naming the failure
    r = dtd.find_root_exit(net, ZPlusFloatDirection(), layer=1, neuron=0, domain=HIGH_X1, scope="layer",
                           timeout=TIMEOUT)
    assert r.status == "unknown" and "no Z3 encoding" in r.reason and "TypeError" in r.reason, r


# ---------------------------------------------------------------------------------------------------- replay
def _file(v: Any, net: Any) -> dict[str, Any]:
    return json.loads(json.dumps({**v.to_json(), "network": net.to_json()}))


def _restate(data: dict[str, Any]) -> None:
    """Make a tampered file self-consistent (question digest and statement): only the re-derivation can reject
    it."""
    net = GraphNetwork.from_json(data["network"])
    data["question"]["network"] = net.digest()
    data["statement"] = question_from_json(data["question"], "root-exit", "test").statement()


def test_z3_proof_and_refutation_files_replay_and_tampered_files_do_not() -> None:
    net = sliver_net()
    v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=HIGH_X1, scope="layer", timeout=TIMEOUT)
    assert v.status == "proved" and v.certificate["solver"] == "z3"
    data = _file(v, net)
    rep = replay_data(data, timeout=20)
    assert rep.ok, rep.problems
    # the network changed (channel 1's bias -1/3 -> -3/4: z_{1,p} now crosses 0 on the box): the re-run is sat
    bad = json.loads(json.dumps(data))
    conv = [n for n in bad["network"]["nodes"] if n.get("op") == "conv"]
    assert conv and "bias" in conv[0], conv
    conv[0]["bias"][1] = "-3/4"
    _restate(bad)
    rep = replay_data(bad, timeout=20)
    assert not rep.ok and "answers sat" in rep.problems[0], rep.problems
    # the rule changed (z+ -> LRP-0: its direction a moves channel 1 too, x10 -> x10 / (2 x00), and z_{1,0} flips
    # at x = (1, ., 1/2, .)): the re-run query is sat
    bad = json.loads(json.dumps(data))
    bad["question"]["rule"] = "lrp0"
    _restate(bad)
    rep = replay_data(bad, timeout=20)
    assert not rep.ok and "answers sat" in rep.problems[0], rep.problems
    # the stored number of winner cases, the root bounding and the method are re-derived
    for key, value in (("maxpool_cases", 2), ("root_bounds", True), ("query_scope", "upper")):
        bad = json.loads(json.dumps(data))
        bad["certificate"][key] = value
        rep = replay_data(bad, timeout=20)
        assert not rep.ok and key in rep.problems[0], (key, rep.problems)
    # a network changed without restating the question: the digest differs
    bad = json.loads(json.dumps(data))
    conv = [n for n in bad["network"]["nodes"] if n.get("op") == "conv"]
    conv[0]["bias"][0] = "-1/4"
    assert not replay_data(bad, timeout=20).ok
    # the refutation Z3 found replays; its input moved off the sliver does not
    r = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=FULL, scope="layer", timeout=TIMEOUT)
    assert r.status == "refuted" and r.method == "z3 + exact replay"
    data = _file(r, net)
    assert replay_data(data).ok
    data["counterexample"]["input"][2] = "1/2"
    assert not replay_data(data).ok

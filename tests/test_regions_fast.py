r"""The batched certified path of ``root_regions`` (issue 15): its verdicts are exact.

Every check compares the batched path with two independent references:

1. ``twin``: a textbook computation in plain Fractions for each root: the roots from ``dtd.roots`` (the rule's
   ``root_step`` on Fractions), a loop forward pass of each root through the upper network with neuron j kept
   linear, the flips as strictly opposite signs against a loop forward pass of the input, the domain from
   ``rule.domain.contains``, and the affine-map verdict from ``classify_root_reference`` (``Network.affine_map``
   of the closest patterns). No float and no code of the batched path is used.
2. the per-input path (``_dense_root_regions(..., batched=False)``): every record's JSON (exact roots, steps, own
   pre-activations, verdicts) and the skip counts, in the same order.

Near-tie cases put a root exactly on, or within 1e-16 .. 1e-15 of, another neuron's hyperplane or the domain's
boundary, make a denominator :math:`w_j \cdot v_j` exactly 0, a pre-activation at the input exactly 0, and two
affine maps equal or equal up to 1e-18; :class:`~dtd_formal.regions.ExactShare` shows that the float pass left
those decisions to exact arithmetic.
"""

from __future__ import annotations

import pickle
from fractions import Fraction as F
from typing import Any

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal import regions
from dtd_formal.certified import (bounded_affine, bounded_product, bounded_quotient, bounded_rowdot, bounded_sum,
                                  float_with_error)
from dtd_formal.network import Network
from dtd_formal.regions import classify_root_reference
from dtd_formal.rules import LRP0, Gamma, WSquare, ZBox, ZPlus
from dtd_formal.rules.base import Rule


# ---------------------------------------------------------------------------------------------- references
def _z(net: Network, m: int, h: list[F]) -> list[F]:
    W, b = net.weight(m), net.bias(m)
    return [sum((F(W[n][i]) * h[i] for i in range(len(h))), F(b[n])) for n in range(W.shape[0])]


def _input_preactivations(net: Network, x: Any) -> list[list[F]]:
    h, zs = [F(v) for v in net.as_input(x)], []
    for m in range(1, net.n_layers + 1):
        z = _z(net, m, h)
        zs.append(z)
        h = [max(v, F(0)) for v in z] if net.has_relu(m) else z
    return zs


def twin(net: Network, x: Any, rule: Rule, layer: int, scope: str, output: int = 0) -> list[dict[str, Any]]:
    """Textbook verdicts of every root of ``layer`` at ``x`` (module docstring, reference 1)."""
    zs_in = _input_preactivations(net, x)
    rts = dtd.roots(net, x, rule, layer=layer, output=output)
    out = []
    for j, root in rts.items():
        h, flipped = [F(v) for v in root], []
        for m in range(layer, net.n_layers + 1):
            z = _z(net, m, h)
            if net.has_relu(m):
                if scope == "upper" or m == layer:
                    flipped += [(m, n) for n in range(len(z)) if (m, n) != (layer, j) and zs_in[m - 1][n] * z[n] < 0]
                h = [v if v > 0 or (m == layer and n == j) else F(0) for n, v in enumerate(z)]
            else:
                h = z
        leaves_pattern, leaves_map = classify_root_reference(net, x, layer, j, root, output, scope)
        assert leaves_pattern == bool(flipped)
        out.append({"neuron": j, "flipped": flipped, "leaves_pattern": leaves_pattern,
                    "leaves_affine_map": leaves_map, "root_in_domain": rule.domain.contains(root),
                    "root": [F(v) for v in root], "step": F(rts.steps[j]),
                    "own_preactivation": sum((F(w) * F(v) for w, v in zip(net.weight(layer)[j], root)),
                                             F(net.bias(layer)[j]))})
    return out


def check(net: Network, xs: Any, rule: Rule, scope: str = "upper", layers: Any = None, output: int = 0,
          neurons: Any = None) -> regions.ExactShare:
    """Batched records equal the twin's verdicts and the per-input path's records; returns the exact share."""
    fast, share = regions._dense_root_regions(net, xs, rule, scope, output, layers=layers, neurons=neurons)
    slow, none = regions._dense_root_regions(net, xs, rule, scope, output, layers=layers, neurons=neurons,
                                             batched=False)
    assert share is not None and none is None
    assert [r.to_json() for r in fast.records] == [r.to_json() for r in slow.records]
    assert fast.skipped == slow.skipped
    assert [list(s) for s in fast.skipped.values()] == [list(s) for s in slow.skipped.values()]  # same order
    batch = net.as_batch(xs)
    for l in fast.layers:
        for i, x in enumerate(batch):
            got = [r for r in fast.records if r.input_index == i and r.layer == l]
            want = twin(net, x, rule, l, scope, output)
            if neurons is not None:
                want = [w for w in want if w["neuron"] in set(neurons)]
            assert [r.neuron for r in got] == [w["neuron"] for w in want]
            for r, w in zip(got, want):
                assert r.flipped == w["flipped"], (i, l, r.neuron)
                assert (r.leaves_pattern, r.leaves_affine_map, r.root_in_domain) == (
                    w["leaves_pattern"], w["leaves_affine_map"], w["root_in_domain"]), (i, l, r.neuron)
                assert list(r.root) == w["root"] and r.step == w["step"]
                assert r.own_preactivation == w["own_preactivation"] == 0
    return share


def _rational_net(rng: np.random.Generator, sizes: list[int], final_relu: bool, bias_sign: int = 0) -> Network:
    """Weights and biases with non-dyadic denominators (inexact in float); bias_sign forces the biases' sign."""
    def rat(shape: tuple[int, ...]) -> list:
        return (np.vectorize(lambda n, d: F(int(n), int(d)), otypes=[object])(
            rng.integers(-9, 10, shape), rng.choice([3, 7, 9, 11, 13], shape))).tolist()

    Ws = [rat((o, i)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rat((o,)) for o in sizes[1:]]
    if bias_sign:
        bs = [[bias_sign * abs(v) for v in b] for b in bs]
    return Network(Ws, bs, final_relu=final_relu)


def _inputs(rng: np.random.Generator, n: int, width: int, signed: bool = False) -> np.ndarray:
    vals = rng.integers(-12 if signed else 0, 13, (n, width))
    return np.vectorize(lambda v, d: F(int(v), int(d)), otypes=[object])(vals, rng.choice([1, 5, 17], (n, width)))


RULES = {"zplus": ZPlus(), "wsquare": WSquare(), "zbox": ZBox(-1, 2), "gamma": Gamma(0.25), "lrp0": LRP0(),
         "zplus@zennit": ZPlus(bias="zennit")}


# ---------------------------------------------------------------------------------------------- random nets
@pytest.mark.parametrize("rule_name", list(RULES))
@pytest.mark.parametrize("scope", ["upper", "layer"])
@pytest.mark.parametrize("bias_sign", [-1, 1, 0])
def test_batched_verdicts_equal_the_twin_on_random_nets(rule_name: str, scope: str, bias_sign: int) -> None:
    rng = np.random.default_rng(hash((rule_name, scope, bias_sign)) % 2**32)
    for trial, sizes in enumerate([[3, 5, 4, 2], [4, 4, 3, 3, 1]]):
        net = _rational_net(rng, sizes, final_relu=bool(trial % 2), bias_sign=bias_sign)
        xs = _inputs(rng, 6, sizes[0], signed=rule_name == "wsquare")
        check(net, xs, RULES[rule_name], scope)


def test_layers_in_the_order_given_selected_neurons_and_another_output() -> None:
    rng = np.random.default_rng(5)
    net = _rational_net(rng, [4, 6, 5, 3], final_relu=True)
    xs = _inputs(rng, 8, 4)
    check(net, xs, ZPlus(), layers=[3, 1, 2], output=2)
    check(net, xs, Gamma(0.5), layers=[2, 1], neurons=[0, 2, 4])


def test_a_layer_without_roots_counts_its_skipped_neurons_in_order() -> None:
    """The explained output 0 is inactive at every input (z = -(a_0 + a_1) < 0); output 1 is not explained."""
    net = Network([[[1, 1], [1, -1]], [[-1, -1], [1, 0]]], [[0, 0], [0, 0]], final_relu=True)
    xs = [[1, 2], [2, 1]]
    check(net, xs, ZPlus())
    rep = dtd.root_regions(net, xs, ZPlus(), layers=2)
    assert rep.records == [] and list(rep.skipped[2].items()) == [("inactive", 2), ("not explained", 2)]


def test_several_chunks_with_fallback_inputs_in_between(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few inputs each; inputs 3 and 7 have a layer-1 pre-activation exactly 0 (per-input path)."""
    monkeypatch.setattr(regions, "_CHUNK_ENTRIES", 3 * 12)  # widest layer 3x4: three inputs per chunk
    net = Network([[[1, -1, F(1, 3), 2], [F(2, 7), 1, -1, F(1, 5)], [1, 1, 1, 1]], [[1, -2, 1]]],
                  [[F(-1, 3), F(1, 11), -1], [F(1, 2)]], final_relu=True)
    rng = np.random.default_rng(0)
    xs = _inputs(rng, 10, 4).tolist()
    for i in (3, 7):
        xs[i] = [F(1, 4), F(1, 4), F(1, 4), F(1, 4)]  # z_3 = 1 - 1 = 0
    share = check(net, xs, ZPlus(), layers=[1, 2])
    assert share.inputs == 2 and share.input_roots > 0


# ---------------------------------------------------------------------------------------------- near ties
def _duplicate_net(delta: F) -> Network:
    """Neuron 1 of layer 1 is neuron 0 scaled by 3/7 with its bias moved by delta: at the root of neuron 0,
    z_1 = delta exactly (non-dyadic weights: its float value is inexact)."""
    w0, b0 = [F(1, 3), F(-2, 7), F(5, 11)], F(-1, 13)
    W1 = [w0, [F(3, 7) * w for w in w0], [F(1, 5), F(1, 9), F(-1, 3)]]
    return Network([W1, [[F(2, 3), F(-5, 7), F(1, 3)]]], [[b0, F(3, 7) * b0 + delta, F(1, 17)], [F(1, 10)]])


@pytest.mark.parametrize("delta", [F(0), F(1, 10**16), F(-1, 10**16), F(1, 10**15), F(-1, 10**15)])
def test_root_on_or_near_another_neurons_hyperplane_falls_back_to_exact(delta: F) -> None:
    net = _duplicate_net(delta)
    x = [F(2), F(1, 3), F(3, 2)]
    share = check(net, [x], ZPlus(), layers=1)
    assert share.signs >= 1 and share.exact_roots >= 1  # the float bound could not decide z_1 at the root
    rec = next(r for r in dtd.root_regions(net, x, ZPlus(), layers=1).records if r.neuron == 0)
    assert net.weight(1)[1].dot(rec.root) + net.bias(1)[1] == delta
    assert ((1, 1) in rec.flipped) == (delta < 0)  # zero is on both closed sides; -1e-16 is strictly opposite


@pytest.mark.parametrize("shift", [F(0), F(1, 10**16), F(-1, 10**16)])
def test_root_on_or_near_the_domain_boundary(shift: F) -> None:
    """z+ at x = (1, 1), w_0 = (2, -1), b_0 = 1 + shift: t = 1 + shift/2, root_0 = 1 - t = -shift/2: exactly on
    the boundary a >= 0 for shift 0 (inside), 5e-17 outside or inside otherwise."""
    net = Network([[[2, -1], [1, 1]], [[1, 1]]], [[1 + shift, F(-1, 3)], [F(0)]])
    share = check(net, [[1, 1]], ZPlus(), layers=1)
    assert share.domain >= 1
    rec = dtd.root_regions(net, [1, 1], ZPlus(), layers=1).records[0]
    assert rec.root[0] == -shift / 2 and rec.root_in_domain == (shift <= 0)


def test_zero_denominator_is_skipped_exactly() -> None:
    """z+ at x = (0, 1): neuron 0 has w = (1, -1), b = 2: z = 1 > 0 but w.v = 1 * 0 = 0 (no positive weight sees
    a positive input): skipped as "zero denominator"; neuron 1's tiny positive denominator is not zero."""
    tiny = F(1, 10**300)
    net = Network([[[1, -1], [1, F(-1, 2)]], [[1, 1]]], [[F(2), F(1)], [F(0)]])
    xs = [[0, 1], [tiny, 1]]
    share = check(net, xs, ZPlus(), layers=1)
    assert share.zero_denominators == 2 and share.denominators >= 2
    rep = dtd.root_regions(net, xs, ZPlus(), layers=1)
    assert rep.skipped[1] == {"zero denominator": 2}
    assert [(r.input_index, r.neuron) for r in rep.records] == [(1, 0), (1, 1)]


def test_input_preactivation_exactly_zero_goes_through_the_per_input_path() -> None:
    net = Network([[[1, -1], [2, 1]], [[1, -1], [1, 1]], [[1, 1]]], [[0, 0], [0, 0], [0]])
    xs = [[1, 1], [2, 1]]  # input 0: z_1 = (0, 3), z_2 = (-3, 3)
    share = check(net, xs, ZPlus())
    assert share.inputs == 1


def test_equal_and_nearly_equal_affine_maps_are_compared_exactly() -> None:
    """Layer-1 neuron 2 flips at the root of neuron 0 (it is neuron 0 mirrored, plus a bias); its only way to the
    output has weight 0 (maps equal: leaves_pattern without leaves_affine_map) or 1e-18 (maps differ by that)."""
    for w, leaves in ((F(0), False), (F(1, 10**18), True)):
        W1 = [[F(1, 3), F(2, 7)], [F(1, 5), F(1, 9)], [F(-1, 3), F(-2, 7)]]
        net = Network([W1, [[F(1, 3), F(1, 7), w]], [[F(3, 5)]]], [[F(-1, 7), F(1, 11), F(3, 7)], [F(1, 9)], [F(0)]])
        x = [F(1), F(1, 2)]
        share = check(net, [x], ZPlus(), layers=1)
        rec = next(r for r in dtd.root_regions(net, x, ZPlus(), layers=1).records if r.neuron == 0)
        assert rec.flipped == [(1, 2)] and rec.leaves_affine_map == leaves
        assert share.affine_maps >= 1


def test_exactly_cancelling_flips_keep_the_affine_map() -> None:
    """Layer-1 neurons 2 and 3 are equal (neuron 0 mirrored) and both flip at the root of neuron 0; their outgoing
    weights are w and -w, so the two maps are exactly equal while their float evaluations may differ by rounding
    (the bounds must not call them different)."""
    rng = np.random.default_rng(0)
    flipped = 0
    for _ in range(20):
        def r() -> F:
            return F(int(rng.integers(1, 20)), int(rng.choice([3, 7, 11, 13])))

        n0 = [r(), r()]
        w = r()
        net = Network([[n0, [r(), r()], [-v for v in n0], [-v for v in n0]], [[r(), r(), w, -w]], [[F(3, 5)]]],
                      [[F(-1, 7), r(), F(3, 7), F(3, 7)], [r()], [F(0)]])
        check(net, [[F(1), F(1, 2)]], ZPlus(), layers=1)
        for rec in dtd.root_regions(net, [F(1), F(1, 2)], ZPlus(), layers=1).records:
            if rec.neuron == 0 and rec.flipped == [(1, 2), (1, 3)]:
                flipped += 1
                assert not rec.leaves_affine_map
    assert flipped >= 10


# ---------------------------------------------------------------------------------------------- other paths
class _SquaredDirection(ZPlus):
    """A user rule (a subclass, direction not affine in a): v_j = a * a on w_j > 0."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.positive_mask(W) * (a * a)


def test_other_rules_and_paper_code_roots_take_the_per_input_path() -> None:
    rng = np.random.default_rng(2)
    net = _rational_net(rng, [3, 4, 3, 2], final_relu=False)
    xs = _inputs(rng, 4, 3)
    assert regions._dense_root_regions(net, xs, _SquaredDirection())[1] is None
    patched = ZPlus()  # a catalogue class whose instance carries its own direction: its code, not the class's
    patched.direction = lambda ops, a, W, b: _SquaredDirection().direction(ops, a, W, b)
    assert regions._dense_root_regions(net, xs, patched)[1] is None
    assert regions._dense_root_regions(net, xs, ZPlus(), definition="paper-code")[1] is None
    rep = dtd.root_regions(net, xs, _SquaredDirection())
    for l in rep.layers:
        for i, x in enumerate(xs):
            got = [(r.neuron, r.flipped, r.leaves_affine_map) for r in rep.records
                   if r.input_index == i and r.layer == l]
            assert got == [(w["neuron"], w["flipped"], w["leaves_affine_map"])
                           for w in twin(net, x, _SquaredDirection(), l, "upper")]


def test_lazy_records_read_pickle_and_summarise_like_eager_ones() -> None:
    rng = np.random.default_rng(4)
    net = _rational_net(rng, [3, 5, 2], final_relu=True)
    xs = _inputs(rng, 5, 3)
    fast = dtd.root_regions(net, xs, ZBox(0, 1))
    slow = regions._dense_root_regions(net, xs, ZBox(0, 1), batched=False)[0]
    back = pickle.loads(pickle.dumps(fast))
    assert back.to_json() == slow.to_json() == fast.to_json()
    assert fast.summary == slow.summary
    rec = fast.records[0]
    rec.step = F(7)  # fields stay assignable
    assert rec.step == 7 and isinstance(rec.own_preactivation, F)


# ---------------------------------------------------------------------------------------------- the bounds
def _within(exact: list[F], approx: np.ndarray, err: np.ndarray) -> bool:
    """|x - approx| <= err wherever both are finite (a non-finite value or bound decides nothing downstream)."""
    return all(abs(F(float(a)) - x) <= F(float(e)) for x, a, e in zip(exact, np.ravel(approx), np.ravel(err))
               if np.isfinite(a) and np.isfinite(e))


@pytest.mark.parametrize("seed", range(12))
def test_bounded_operations_enclose_the_exact_results(seed: int) -> None:
    """Exact values x, y (rationals and subnormal-range numbers) with float views and bounds: each operation's
    result encloses the exact result of the exact operands; exact zeros keep a zero bound."""
    rng = np.random.default_rng(seed)
    scale = [1.0, 2.0**-1060, 2.0**-1074 * 7, 1e300][seed % 4]
    xq = [F(int(n), int(d)) * F(scale) for n, d in zip(rng.integers(-50, 50, 24), rng.integers(1, 30, 24))]
    yq = [F(int(n), int(d)) * F(scale) for n, d in zip(rng.integers(-50, 50, 24), rng.integers(1, 30, 24))]
    xq[0] = yq[1] = F(0)
    xq[2:6], yq[2:6] = [F(1), F(-5), F(2, 3), F(7)], [F(3), F(7), F(11), F(-13)]  # exact floats (bound 0), inexact
    X, Y = np.array(xq, dtype=object), np.array(yq, dtype=object)  # quotients and products
    x, ex = float_with_error(X, check_exact=True)
    y, ey = float_with_error(Y, check_exact=True)
    assert ex[0] == ey[1] == ex[2] == ey[2] == 0 and ex[4] > 0
    s, es = bounded_sum(x, ex, y, ey)
    assert _within([a + b for a, b in zip(xq, yq)], s, es)
    p, ep = bounded_product(x, ex, y, ey)
    assert _within([a * b for a, b in zip(xq, yq)], p, ep) and ep[0] == ep[1] == 0
    q, eq = bounded_quotient(x, ex, y, ey)
    for k in range(24):
        if np.isfinite(eq[k]):
            assert yq[k] != 0 and abs(F(float(q[k])) - xq[k] / yq[k]) <= F(float(eq[k]))
    W = np.array(xq[:12], dtype=object).reshape(3, 4)
    Wf = float_with_error(W)[0]
    a, ea = x[12:20].reshape(2, 4), ex[12:20].reshape(2, 4)
    z, ez = bounded_affine(a, ea, Wf)
    exact_a = np.array(xq[12:20], dtype=object).reshape(2, 4)
    assert _within([sum(W[n, i] * exact_a[r, i] for i in range(4)) for r in range(2) for n in range(3)], z, ez)
    d, ed = bounded_rowdot(Wf[:2], a, ea)
    assert _within([sum(W[r, i] * exact_a[r, i] for i in range(4)) for r in range(2)], d, ed)

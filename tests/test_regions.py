r"""Region verdicts for root points (dtd_formal.regions.root_regions).

Definitions (docs/api.md / regions.py): for the root r of neuron j of layer l and the layer input a = a_{l-1},

- ``leaves_pattern``: no closed activation region P(s) of the scope (layers l..L for "upper", layer l alone for
  "layer") contains both a and r, where neuron j's own constraint is dropped and j is held active (its mask is
  +1, i.e. it passes z_j linearly, also where z_j(r) < 0 as for paper-code roots).
- ``leaves_affine_map``: the affine maps of f_c (as a function of a_{l-1}) of the two "closest" patterns differ
  (a zero sign takes the other point's phase, zero at both counts inactive, j active).

Independent checks written here:

1. ``brute_leaves_pattern``: an exhaustive search over sign patterns s in {+1, -1}^N of every ReLU neuron in the
   scope but j (patterns with zeros are not needed: P(s with s_n = 0) is contained in P(s with s_n = +1), since
   on z_n = 0 both masks give a_n = 0). For each s the region constraints are evaluated at a and at r by a loop
   forward pass with the masks of s, exactly in Fractions. The search goes layer by layer and abandons a
   partial pattern as soon as one of its layer's constraints fails at a or at r (constraints of layer m depend
   only on the masks below m, so this prunes nothing that could succeed). This is the definition itself, with
   no use of dtd_formal's pattern, region or sign code.
2. ``brute_affine_maps``: the two closest patterns from loop forward passes, and their affine maps composed by
   loops over the weight matrices.
3. Segment samples (convexity): P(s) is convex, so when a and r share a closed region every point of the
   segment [a, r] does too and no neuron's sign there is strictly opposite to its sign at a. Hence "some
   sample point of the segment flips a neuron against a" implies leaves_pattern; the root itself is a sample,
   so with the root included the implication is an equivalence. Interior samples alone only give the one
   direction, which is what is checked for them.

The slow twin dtd_formal.regions.classify_root_reference (Network.region rows with j's row dropped, zeros
split both ways) is compared as well.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction as F
from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dtd_formal as dtd
from dtd_formal.errors import InputError
from dtd_formal.network import Network
from dtd_formal.regions import classify_root_reference, root_regions
from dtd_formal.rules import LRP0, AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus


def fl(values) -> list[F]:
    return [F(v) for v in np.asarray(values, dtype=object).ravel()]


# ---------------------------------------------------------------------------------------------- twins
def layer_z(net: Network, m: int, h: list[F]) -> list[F]:
    W, b = net.weight(m), net.bias(m)
    return [sum((F(W[n][i]) * h[i] for i in range(len(h))), F(b[n])) for n in range(W.shape[0])]


def twin_acts(net: Network, x) -> list[list[F]]:
    a = [F(v) for v in x]
    acts = [a]
    for m in range(1, net.n_layers + 1):
        z = layer_z(net, m, a)
        a = [max(v, F(0)) for v in z] if net.has_relu(m) else z
        acts.append(a)
    return acts


def forced_zs(net: Network, l: int, j: int, point: list[F]) -> list[list[F]]:
    """z_m (m = l..L) at ``point`` (an a_{l-1}) with neuron j of layer l passing z_j linearly."""
    h, out = list(point), []
    for m in range(l, net.n_layers + 1):
        z = layer_z(net, m, h)
        out.append(z)
        if net.has_relu(m):
            h = [v if (v > 0 or (m == l and n == j)) else F(0) for n, v in enumerate(z)]
        else:
            h = z
    return out


def sgn(v: F) -> int:
    return (v > 0) - (v < 0)


def brute_leaves_pattern(net: Network, l: int, j: int, a: list[F], r: list[F], scope: str) -> bool:
    """Exhaustive search (module docstring, check 1)."""
    if scope == "upper":
        scope_layers = [m for m in range(l, net.n_layers + 1) if net.has_relu(m)]
    else:
        scope_layers = [l] if net.has_relu(l) else []
    if not scope_layers:
        return False
    last = max(scope_layers)

    def search(m: int, ha: list[F], hr: list[F]) -> bool:
        """True if some completion of the pattern from layer m up contains both points."""
        if m > last:
            return True
        za, zr = layer_z(net, m, ha), layer_z(net, m, hr)
        choices = []
        for n in range(len(za)):
            if m == l and n == j:
                choices.append((1,))  # held active, no constraint
            else:
                choices.append((1, -1))
        for s in product(*choices):
            ok = all(
                (m == l and n == j)
                or (s[n] == 1 and za[n] >= 0 and zr[n] >= 0)
                or (s[n] == -1 and za[n] <= 0 and zr[n] <= 0)
                for n in range(len(za))
            )
            if not ok:
                continue
            na = [za[n] if s[n] == 1 else F(0) for n in range(len(za))]
            nr = [zr[n] if s[n] == 1 else F(0) for n in range(len(zr))]
            if search(m + 1, na, nr):
                return True
        return False

    return not search(l, list(a), list(r))


def brute_affine_maps(net: Network, l: int, j: int, a: list[F], r: list[F], output: int) -> tuple:
    """(map at a, map at r) of the closest patterns, each map = (gradient row, offset), composed by loops."""
    za_all, zr_all = forced_zs(net, l, j, a), forced_zs(net, l, j, r)
    n_in = len(a)

    def resolve(own: list[F], other: list[F]) -> list[int]:
        out = []
        for o, t in zip(own, other):
            s = sgn(o) if o != 0 else sgn(t)
            out.append(s if s != 0 else -1)
        return out

    def affine(masks: dict[int, list[int]]) -> tuple:
        M = [[F(int(i == k)) for k in range(n_in)] for i in range(n_in)]
        c = [F(0)] * n_in
        for m in range(l, net.n_layers + 1):
            W, b = net.weight(m), net.bias(m)
            M = [[sum((F(W[n][i]) * M[i][k] for i in range(len(M))), F(0)) for k in range(n_in)]
                 for n in range(W.shape[0])]
            c = [sum((F(W[n][i]) * c[i] for i in range(len(c))), F(b[n])) for n in range(W.shape[0])]
            if net.has_relu(m):
                keep = masks[m]
                M = [row if keep[n] == 1 else [F(0)] * n_in for n, row in enumerate(M)]
                c = [v if keep[n] == 1 else F(0) for n, v in enumerate(c)]
        return tuple(M[output]), c[output]

    maps = []
    for own, other in ((za_all, zr_all), (zr_all, za_all)):
        masks = {}
        for k, m in enumerate(range(l, net.n_layers + 1)):
            if net.has_relu(m):
                p = resolve(own[k], other[k])
                if m == l:
                    p[j] = 1
                masks[m] = p
        maps.append(affine(masks))
    return maps[0], maps[1]


def brute_flipped(net: Network, l: int, j: int, a: list[F], r: list[F], scope: str) -> list[tuple[int, int]]:
    za_all, zr_all = forced_zs(net, l, j, a), forced_zs(net, l, j, r)
    out = []
    for k, m in enumerate(range(l, net.n_layers + 1)):
        if not net.has_relu(m) or (scope == "layer" and m != l):
            continue
        for n, (u, w) in enumerate(zip(za_all[k], zr_all[k])):
            if not (m == l and n == j) and sgn(u) * sgn(w) < 0:
                out.append((m, n))
    return out


# ---------------------------------------------------------------------------------------------- hand cases
def test_paper_code_root_leaves_and_true_root_stays() -> None:
    """W1 = [[1, 1], [2, 0]], W2 = [[2, 1]], bias-free, x = (1, 2); LRP-0 (tests/test_roots.py derives the roots):
    true roots are 0 for both neurons (z of the other neuron is 0 there: no strict flip); the paper-code root of
    neuron 0 is (-1, -2), where z_1 = -2 < 0 < 2 = z_1(x): neuron (1, 1) flips, z_0 = -3 there, and the map
    changes from (2, 1) W1 = (4, 2) to (2, 0) W1 = (2, 2)."""
    net = Network([[[1, 1], [2, 0]], [[2, 1]]], [[0, 0], [0]])
    x = [1, 2]
    for scope in ("layer", "upper"):
        true = root_regions(net, x, LRP0(), scope=scope, layers=1)
        assert [(r.neuron, r.leaves_pattern, r.leaves_affine_map, r.own_preactivation) for r in true.records] == [
            (0, False, False, 0), (1, False, False, 0)
        ]
        assert all(r.root_in_domain for r in true.records)
        paper = root_regions(net, x, LRP0(), scope=scope, layers=1, definition="paper-code")
        r0, r1 = paper.records
        assert fl(r0.root) == [-1, -2] and r0.own_preactivation == -3 and r0.step == 2
        assert r0.leaves_pattern and r0.flipped == [(1, 1)] and r0.leaves_affine_map
        assert not r0.root_in_domain
        assert fl(r1.root) == [0, 0] and not r1.leaves_pattern and r1.own_preactivation == 0
        assert paper.summary[1]["leaves_pattern"] == F(1, 2)


def test_pattern_change_without_affine_map_change_dead_upper_weight() -> None:
    """As above with W2 = [[2, 0]]: f = 2 a_0, R^1 = (6, 0). Paper-code: neuron 0 t = 6/3 = 2, root (-1, -2)
    flips neuron 1, whose outgoing weight is 0, so the map (2, 2) stays; neuron 1 has R = 0, t = 0: root = x."""
    net = Network([[[1, 1], [2, 0]], [[2, 0]]], [[0, 0], [0]])
    rep = root_regions(net, [1, 2], LRP0(), layers=1, definition="paper-code")
    r0, r1 = rep.records
    assert r0.leaves_pattern and r0.flipped == [(1, 1)] and not r0.leaves_affine_map
    assert fl(r1.root) == [1, 2] and r1.step == 0 and r1.own_preactivation == 2 and not r1.leaves_pattern


def test_upper_scope_sees_a_flip_the_layer_scope_does_not() -> None:
    """W1 = [[1, 1], [1, -1]], b1 = (-1, 0), W2 = [[1, -1]], b2 = (1/2), final ReLU, x = (2, 1), w^2 roots.
    z1 = (2, 1), z2 = 3/2. Neuron (1, 0): v = w = (1, 1), t = 2/2 = 1, root (1, 0); there z1_1 = 1 > 0 (no flip in
    layer 1) but a1 = (0, 1) gives z2 = -1/2 < 0: the upper scope flips (2, 0) and the map changes from
    (1, -1) W1 = (0, 2) to 0. Neuron (1, 1): t = 1/2, root (3/2, 3/2): z1_0 = 2, a1 = (2, 0), z2 = 5/2: stays.
    Layer 2: t = (3/2)/2, root (5/4, 7/4): nothing above. w^2's domain is unbounded."""
    net = Network([[[1, 1], [1, -1]], [[1, -1]]], [[-1, 0], [F(1, 2)]], final_relu=True)
    x = [2, 1]
    up = root_regions(net, x, WSquare(), scope="upper")
    lay = root_regions(net, x, WSquare(), scope="layer")
    expect_roots = {(1, 0): [1, 0], (1, 1): [F(3, 2), F(3, 2)], (2, 0): [F(5, 4), F(7, 4)]}
    for rep in (up, lay):
        assert {(r.layer, r.neuron): fl(r.root) for r in rep.records} == expect_roots
        maps = {(r.layer, r.neuron): r.leaves_affine_map for r in rep.records}
        assert maps == {(1, 0): True, (1, 1): False, (2, 0): False}
        assert all(r.root_in_domain for r in rep.records)
    assert {(r.layer, r.neuron): r.flipped for r in up.records} == {(1, 0): [(2, 0)], (1, 1): [], (2, 0): []}
    assert [r.leaves_pattern for r in lay.records] == [False, False, False]
    assert up.summary[1] == {"roots": 2, "leaves_pattern": F(1, 2), "leaves_affine_map": F(1, 2),
                             "root_in_domain": F(1), "skipped": {}}
    assert up.summary[2]["leaves_pattern"] == 0 and up.summary[2]["skipped"] == {}
    assert lay.summary[1]["leaves_pattern"] == 0 and lay.summary[1]["leaves_affine_map"] == F(1, 2)


def test_zero_on_both_sides_counts_inactive_for_the_affine_map() -> None:
    """W1 = [[1, 0], [2, -1]], W2 = [[1, -1]], W3 = [[1]], bias-free, x = (1, 1), w^2 roots.
    z1 = (1, 1). Neuron (1, 0): v = (1, 0), t = 1, root (0, 1): z1_1 = -1 there, so (1, 1) flips. Layer-2 neuron n
    has z = a_0 - a_1 = 0 at x and (j held linear, a1 = (0, 0)) 0 at the root: zero on both sides, so n is
    resolved inactive in both closest patterns and both maps are 0: the map does not change. (Resolving n active
    instead would give maps (1, -1) W1 = (-1, 1) and (1, 0): changed.)"""
    net = Network([[[1, 0], [2, -1]], [[1, -1]], [[1]]], [[0, 0], [0], [0]])
    rec = root_regions(net, [1, 1], WSquare(), layers=1).records[0]
    assert rec.neuron == 0 and fl(rec.root) == [0, 1]
    assert rec.leaves_pattern and rec.flipped == [(1, 1)]
    assert not rec.leaves_affine_map
    assert classify_root_reference(net, [1, 1], 1, 0, rec.root) == (True, False)


def test_report_json_is_exact() -> None:
    net = Network([[[1, 1], [2, 0]], [[2, 1]]], [[0, 0], [0]])
    js = root_regions(net, [1, 2], LRP0(), layers=1, definition="paper-code").to_json()
    assert js["rule"] == "lrp0" and js["definition"] == "paper-code" and js["n_inputs"] == 1
    rec = js["records"][0]
    assert rec["root"] == ["-1", "-2"] and rec["own_preactivation"] == "-3" and rec["flipped"] == [[1, 1]]
    assert js["summary"]["1"]["leaves_pattern"] == "1/2"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scope": "all"}, r"scope must be 'layer' or 'upper', got 'all'"),
        ({"arithmetic": "float32"}, r"'float32'"),
        ({"layers": 0}, r"layer 0 does not exist"),
        ({"layers": [1, 3]}, r"layer 3 does not exist"),
        ({"output": 2}, r"output 2 does not exist"),
        ({"xs": [[1, 2, 3]]}, r"expected rows of 2 values, got shape \(1, 3\)"),
        ({"xs": [[1.0, float("nan")]]}, r"nan"),
        ({"rule": Epsilon(1e-6)}, r"epsilon:1e-06 is not a root-point rule"),
        ({"rule": AlphaBeta()}, r"alphabeta.* is not a root-point rule"),
        ({"rule": Flat()}, r"flat is not a root-point rule"),
        ({"definition": "code"}, r"got 'code'"),
    ],
)
def test_root_regions_errors(kwargs, message) -> None:
    net = Network([[[1, 1], [2, 0]], [[2, 1]]], [[0, 0], [0]])
    args = {"xs": [[1, 2]], "rule": ZPlus()} | kwargs
    with pytest.raises(InputError, match=message):
        root_regions(net, args.pop("xs"), args.pop("rule"), **args)


# ---------------------------------------------------------------------------------------------- properties
frac = st.builds(F, st.integers(-3, 3), st.sampled_from([1, 1, 2]))
inp = st.builds(F, st.integers(0, 4), st.sampled_from([1, 2, 3]))
RULES = [LRP0(), ZPlus(), Gamma(F(1, 2)), WSquare(), ZBox(-1, 3)]


@st.composite
def nets(draw, weights=frac, inputs=inp, n_inputs: int = 2, min_layers: int = 1, min_width: int = 1):
    L = draw(st.integers(min_layers, 3))
    sizes = [draw(st.integers(min_width, 3)) for _ in range(L)] + [draw(st.integers(1, 2))]
    Ws = [[[draw(weights) for _ in range(sizes[l])] for _ in range(sizes[l + 1])] for l in range(L)]
    bs = [[draw(weights) for _ in range(sizes[l + 1])] for l in range(L)]
    xs = [[draw(inputs) for _ in range(sizes[0])] for _ in range(n_inputs)]
    return Network(Ws, bs, final_relu=draw(st.booleans())), xs


@pytest.mark.parametrize("definition", ["true", "paper-code"])
@pytest.mark.parametrize("scope", ["layer", "upper"])
def test_verdicts_match_brute_force_and_the_slow_twin(scope: str, definition: str) -> None:
    counts: Counter = Counter()

    # deeper, wider nets: more roots leave (a 1-neuron layer has nothing else to flip)
    @given(case=nets(min_layers=2, min_width=2), rule=st.sampled_from(RULES))
    def prop(case, rule) -> None:
        net, xs = case
        rep = root_regions(net, xs, rule, scope=scope, definition=definition)
        acts = [twin_acts(net, x) for x in xs]
        # one record per non-skipped root, in input / layer / neuron order
        expected_keys = []
        for i, x in enumerate(xs):
            for l in range(1, net.n_layers + 1):
                expected_keys += [(i, l, j) for j in dtd.roots(net, x, rule, layer=l, definition=definition)]
        assert [(r.input_index, r.layer, r.neuron) for r in rep.records] == expected_keys
        for rec in rep.records:
            l, j = rec.layer, rec.neuron
            a, root = acts[rec.input_index][l - 1], fl(rec.root)
            # own pre-activation: 0 for true roots, z_j(root) for paper-code
            zj = layer_z(net, l, root)[j]
            assert rec.own_preactivation == zj
            if definition == "true":
                assert zj == 0
            leaves = brute_leaves_pattern(net, l, j, a, root, scope)
            map_a, map_r = brute_affine_maps(net, l, j, a, root, 0)
            assert rec.leaves_pattern == leaves, (l, j, rec.flipped)
            assert rec.flipped == brute_flipped(net, l, j, a, root, scope)
            assert rec.leaves_affine_map == (map_a != map_r)
            assert rec.root_in_domain == rule.domain.contains(root)
            assert classify_root_reference(net, xs[rec.input_index], l, j, root, scope=scope) == (
                leaves, map_a != map_r)
            # with the upper scope an unchanged pattern implies an unchanged map (the closest patterns coincide)
            if scope == "upper" and not leaves:
                assert map_a == map_r
            counts["leaves" if leaves else "stays"] += 1
            counts["map changes"] += map_a != map_r

    prop()
    print(scope, definition, dict(counts))
    assert counts["leaves"] >= 10 and counts["stays"] >= 10, dict(counts)


def test_segment_samples_agree_with_the_verdict() -> None:
    """Check 3 of the module docstring: points a + (k/8)(r - a), k = 1..8 (k = 8 is the root)."""
    counts: Counter = Counter()

    @given(case=nets(n_inputs=1, min_layers=2, min_width=2), rule=st.sampled_from(RULES),
           definition=st.sampled_from(["true", "paper-code"]))
    def prop(case, rule, definition) -> None:
        net, xs = case
        rep = root_regions(net, xs, rule, scope="upper", definition=definition)
        acts = twin_acts(net, xs[0])
        for rec in rep.records:
            l, j = rec.layer, rec.neuron
            a, root = acts[l - 1], fl(rec.root)
            sa = forced_zs(net, l, j, a)

            def flips_at(p: list[F]) -> bool:
                sp = forced_zs(net, l, j, p)
                return any(
                    sgn(u) * sgn(w) < 0
                    for k, m in enumerate(range(l, net.n_layers + 1)) if net.has_relu(m)
                    for n, (u, w) in enumerate(zip(sa[k], sp[k])) if not (m == l and n == j)
                )

            samples = [[ai + F(k, 8) * (ri - ai) for ai, ri in zip(a, root)] for k in range(1, 9)]
            flips = [flips_at(p) for p in samples]
            if any(flips[:-1]):
                assert rec.leaves_pattern  # an interior flip proves the root left
                counts["interior flip"] += 1
            assert rec.leaves_pattern == any(flips)
            counts["records"] += 1

    prop()
    print(dict(counts))
    assert counts["interior flip"] >= 5, dict(counts)


@settings(max_examples=30)
@given(case=nets(n_inputs=3), rule=st.sampled_from(RULES), scope=st.sampled_from(["layer", "upper"]))
def test_summary_fractions_are_exact_counts(case, rule, scope) -> None:
    net, xs = case
    rep = root_regions(net, xs, rule, scope=scope)
    assert rep.n_inputs == 3 and rep.layers == list(range(1, net.n_layers + 1))
    for l, s in rep.summary.items():
        recs = [r for r in rep.records if r.layer == l]
        assert s["roots"] == len(recs)
        skipped: Counter = Counter()
        for x in xs:
            skipped.update(dtd.roots(net, x, rule, layer=l).skipped.values())
        assert s["skipped"] == dict(skipped)
        if not recs:
            assert s["leaves_pattern"] is None
            continue
        for key in ("leaves_pattern", "leaves_affine_map", "root_in_domain"):
            value = s[key]
            assert isinstance(value, F) and 0 <= value <= 1
            assert value == F(sum(bool(getattr(r, key)) for r in recs), len(recs))


# float64 sign decisions: non-dyadic weights so that exact zeros at the roots are rare, and a margin check
wide = st.builds(F, st.integers(-9, 9), st.sampled_from([1, 3, 5, 7]))
wide_in = st.builds(F, st.integers(0, 9), st.sampled_from([2, 3, 7]))


def test_float64_signs_agree_with_exact_away_from_hyperplanes() -> None:
    """arithmetic="float64" decides signs (and computes the roots) in floats. Records are matched by (input,
    layer, neuron); a record present in only one of the two runs must be a degenerate case (an exact zero
    denominator or pre-activation that rounding moved, or the reverse). Verdicts are compared where every other
    neuron's z at the exact root is at least 1e-6 away from 0, and root_in_domain where the exact root is at
    least 1e-9 away from the domain's bounds."""
    counts: Counter = Counter()

    @given(case=nets(weights=wide, inputs=wide_in), rule=st.sampled_from(RULES),
           scope=st.sampled_from(["layer", "upper"]), definition=st.sampled_from(["true", "paper-code"]))
    def prop(case, rule, scope, definition) -> None:
        net, xs = case
        ex = root_regions(net, xs, rule, scope=scope, definition=definition)
        fx = root_regions(net, xs, rule, scope=scope, definition=definition, arithmetic="float64")
        assert fx.arithmetic == "float64"
        by_key = {(r.input_index, r.layer, r.neuron): r for r in fx.records}
        exact_keys = {(r.input_index, r.layer, r.neuron) for r in ex.records}
        for key in set(by_key) ^ exact_keys:
            i, l, j = key
            a = twin_acts(net, xs[i])[l - 1]
            w = [F(t) for t in net.weight(l)[j]]
            z = sum((wi * ai for wi, ai in zip(w, a)), F(net.bias(l)[j]))
            if key in exact_keys:  # float64 skipped it: z <= 0 or w.v == 0 after rounding
                rec = next(r for r in ex.records if (r.input_index, r.layer, r.neuron) == key)
                # a tiny w.v shows as a huge step (paper-code: t = R / w.v); true roots: w.v = z / t
                tiny_den = (rec.step != 0 and abs(z / rec.step) < F(1, 10**9)) if definition == "true" else (
                    abs(rec.step) > 10**6)
                assert abs(z) < F(1, 10**9) or tiny_den, (key, z, rec.step)
            else:  # exact arithmetic skipped it
                skipped = dtd.roots(net, xs[i], rule, layer=l, definition=definition).skipped
                assert skipped.get(j) == "zero denominator" or (z == 0 and skipped.get(j) == "inactive"), key
            counts["degenerate record"] += 1
        for re_ in ex.records:
            rf = by_key.get((re_.input_index, re_.layer, re_.neuron))
            if rf is None:
                continue
            zs = forced_zs(net, re_.layer, re_.neuron, fl(re_.root))
            margin = min(
                (abs(v) for k, z in enumerate(zs) for n, v in enumerate(z) if not (k == 0 and n == re_.neuron)),
                default=F(1),
            )
            scale = 1 + abs(float(re_.step))
            assert abs(float(rf.own_preactivation) - float(re_.own_preactivation)) <= 1e-9 * scale
            assert abs(float(rf.step) - float(re_.step)) <= 1e-9 * scale
            if margin < F(1, 10**6):
                counts["near a hyperplane"] += 1
                continue
            assert (rf.leaves_pattern, rf.leaves_affine_map, rf.flipped) == (
                re_.leaves_pattern, re_.leaves_affine_map, re_.flipped)
            lo, hi = rule.domain.bounds(len(re_.root))
            bounds = [F(v) for v in list(lo) + list(hi) if v is not None]
            if all(abs(F(c) - bnd) > F(1, 10**9) for c in fl(re_.root) for bnd in bounds):
                assert rf.root_in_domain == re_.root_in_domain
            counts["compared"] += 1

    prop()
    print(dict(counts))
    assert counts["compared"] >= 30, dict(counts)

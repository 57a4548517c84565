"""The incremental region verdicts of torch roots (dtd_formal.torch.root_cone) against the plain full forward pass.

Every expected value comes from ``root_regions(..., _engine="full")`` (the whole upper network evaluated at every
root), or from brute force (the cone geometry). Spies on the incremental evaluation check that it decided rows
itself (the comparisons are not vacuous) and that near ties went to the fallback.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import dtd_formal.torch as dt  # noqa: E402
from dtd_formal.errors import InputError  # noqa: E402
from dtd_formal.rules import LRP0, Gamma, WSquare, ZBox, ZPlus  # noqa: E402
from dtd_formal.torch import root_cone  # noqa: E402
from dtd_formal.torch.graph import build_plan, run  # noqa: E402
from dtd_formal.torch.ops import ConvOp, LazyOps  # noqa: E402

roots_mod = __import__("dtd_formal.torch.roots", fromlist=["roots"])


# ---------------------------------------------------------------------------------------------------- nets
def _plain() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                         nn.Flatten(), nn.Linear(80, 10), nn.ReLU(), nn.Linear(10, 3)).eval().double()


def _geometry() -> nn.Module:
    """Strides, paddings, dilations, groups, an overlapping padded ceil-mode pool and a dilated pool."""
    torch.manual_seed(4)
    return nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=2), nn.ReLU(),
                         nn.Conv2d(4, 6, 3, dilation=2, padding=1), nn.ReLU(),
                         nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
                         nn.Conv2d(6, 4, 2, groups=2, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2, stride=1, dilation=2), nn.AvgPool2d(2, ceil_mode=True), nn.Flatten(),
                         nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 3)).eval().double()


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(2, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x: Any) -> Any:
        h = torch.relu(self.conv0(x))
        r = torch.relu(self.conv1(h))
        h = torch.relu(h + self.bn(self.conv2(r)))
        return self.fc(torch.flatten(self.pool(h), 1))


def _residual() -> nn.Module:
    torch.manual_seed(2)
    m = _Residual().double()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
        m.bn.weight.uniform_(0.5, 1.5)
        m.bn.bias.uniform_(-0.5, 0.5)
    return m.eval()


NETS = {"plain": (_plain, (2, 3, 16, 16)), "geometry": (_geometry, (2, 2, 19, 17)),
        "residual": (_residual, (2, 2, 10, 10))}


def _model(name: str, dtype: Any = torch.float64) -> tuple[nn.Module, Any]:
    build, shape = NETS[name]
    m = build()
    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    m(x)  # materialises the lazy layer
    return m.to(dtype), x.to(dtype)


def _conv_layers(m: nn.Module) -> list[int]:
    return [li.index for li in build_plan(m).layers if isinstance(li.op, ConvOp)]


def _key(report: Any) -> dict:
    return {(r.input_index, r.layer, r.neuron): r for r in report.records}


def _assert_same(full: Any, inc: Any) -> None:
    kf, ki = _key(full), _key(inc)
    assert kf.keys() == ki.keys() and len(kf) > 0
    assert full.skipped == inc.skipped
    for k, f in kf.items():
        i = ki[k]
        assert (i.leaves_pattern, i.leaves_affine_map, i.root_in_domain) == (f.leaves_pattern, f.leaves_affine_map,
                                                                             f.root_in_domain), k
        assert [tuple(p) for p in i.flipped] == [tuple(p) for p in f.flipped], k
        assert i.own_preactivation == f.own_preactivation and i.step == f.step
        np.testing.assert_array_equal(i.root, f.root)


@pytest.fixture
def spy(monkeypatch: Any) -> collections.Counter:
    """Counts the rows the incremental evaluation decided and left undecided, and the rows of the fallback."""
    counts: collections.Counter = collections.Counter()
    classify = root_cone.ConeContext.classify
    full = roots_mod._verdicts_full

    def counted(self: Any, pts: Any, *args: Any) -> Any:
        flips, maps, undecided = classify(self, pts, *args)
        counts["decided"] += int((~undecided).sum())
        counts["undecided"] += int(undecided.sum())
        return flips, maps, undecided

    def counted_full(plan: Any, info: Any, rts: Any, rows: Any, *args: Any) -> Any:
        counts["full rows"] += len(rows)
        return full(plan, info, rts, rows, *args)

    monkeypatch.setattr(root_cone.ConeContext, "classify", counted)
    monkeypatch.setattr(roots_mod, "_verdicts_full", counted_full)
    return counts


# ---------------------------------------------------------------------------------------------------- verdicts
@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("rule,definition,scope", [(ZPlus(), "true", "upper"), (WSquare(), "paper-code", "upper"),
                                                   (Gamma(0.25), "true", "layer"), (LRP0(), "true", "upper"),
                                                   (ZBox(0.0, 2.0), "true", "upper")])
def test_incremental_verdicts_equal_the_full_forward_pass(net, rule, definition, scope,  # type: ignore[no-untyped-def]
                                                          spy) -> None:
    m, x = _model(net)
    for layer in _conv_layers(m):
        full = dt.root_regions(m, x, rule, layers=layer, output=0, definition=definition, scope=scope,
                               _engine="full")
        spy.clear()
        inc = dt.root_regions(m, x, rule, layers=layer, output=0, definition=definition, scope=scope)
        _assert_same(full, inc)
        if len(inc.records) >= 10:
            assert spy["decided"] >= len(inc.records) // 2, (layer, dict(spy))  # not a comparison of fallbacks


def test_mixed_verdicts_and_fallbacks_occur(spy) -> None:  # type: ignore[no-untyped-def]
    m, x = _model("plain")
    reports = [dt.root_regions(m, x, ZPlus(), layers=layer, output=0) for layer in _conv_layers(m)]
    records = [r for rep in reports for r in rep.records]
    assert 0 < sum(r.leaves_pattern for r in records) < len(records)
    assert 0 < sum(r.leaves_affine_map for r in records) < sum(r.leaves_pattern for r in records)
    # the explained neuron feeds a max pool at layer 2: at its root it ties with the ReLU zeros of its window,
    # a tie only the plain forward pass's own rounding decides
    assert spy["undecided"] > 0 and spy["full rows"] == spy["undecided"]


def test_affine_map_off_and_chosen_neurons(spy) -> None:  # type: ignore[no-untyped-def]
    m, x = _model("geometry")
    for kwargs in ({"affine_map": False}, {"neurons": [(0, 1, 1), (1, 2, 3), (3, 4, 0)]}, {"sample": 3, "seed": 4}):
        for layer in _conv_layers(m):
            _assert_same(dt.root_regions(m, x, ZPlus(), layers=layer, output=1, _engine="full", **kwargs),
                         dt.root_regions(m, x, ZPlus(), layers=layer, output=1, **kwargs))


def test_near_tie_in_the_upper_network_falls_back(spy) -> None:  # type: ignore[no-untyped-def]
    """A layer-2 pre-activation at a layer-1 root set to (almost) 0: the margin test must leave it to the fallback."""
    m, x = _model("plain")
    x = x[:1]
    rts = dt.roots(m, x, ZPlus(), layer=1, output=0)
    r = 5
    j = rts.neurons[r]
    with torch.no_grad():
        h = m[0](rts.points[r : r + 1])
        keep = F.relu(h)
        keep[0, j[0], j[1], j[2]] = h[0, j[0], j[1], j[2]]  # the explained neuron is held linear
        z2 = m[2](keep)
        k = (0, j[1], j[2])
        m[2].bias[0] -= z2[(0,) + k]
    full = dt.root_regions(m, x, ZPlus(), layers=1, neurons=[j], output=0, _engine="full")
    spy.clear()
    inc = dt.root_regions(m, x, ZPlus(), layers=1, neurons=[j], output=0)
    _assert_same(full, inc)
    assert spy["undecided"] == 1 and spy["full rows"] == 1 and spy["decided"] == 0


def test_dense_change_is_read_off_the_points() -> None:
    """Roots whose change covers the whole map (as a rule with a dense direction would give): the support is read
    off the points, the window is the whole map, and the verdicts are still those of the full forward pass."""
    m, x = _model("plain")
    plan = build_plan(m)
    env: dict = {}
    rec = roots_mod._Recorder()
    with torch.no_grad():
        run(plan, x, rec.handlers(), env_out=env)
    for layer in (1, 3):
        rts = dt.roots(m, x, ZPlus(), layer=layer, output=0, _plan=plan, _env=env)
        noise = torch.rand(rts.points.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(layer))
        rts.points = rts.points + 0.05 * noise * rts.layer_input[rts.input_index]
        info = plan.layer(layer)
        start, _, relus, pools, scope = roots_mod._upper_nodes(plan, info, "upper")
        rows = torch.arange(len(rts))
        flips, maps = roots_mod._verdicts_full(plan, info, rts, rows, env, rec, start, relus, pools, scope, True, 1e-9)
        ctx_flips, ctx_maps = roots_mod._verdicts_incremental(plan, info, rts, env, rec, start, relus, pools, scope,
                                                              True, 1e-9, 256)
        assert ctx_flips == flips and torch.equal(ctx_maps, maps)
        assert sum(map(bool, flips)) > 0


def test_float32_verdicts_equal_the_float64_forward_pass(spy) -> None:  # type: ignore[no-untyped-def]
    """A float32 model: the incremental verdicts are those of the plain forward pass in float64 at the same (float32)
    roots, and the roots are the float32 plain path's."""
    m, x = _model("plain", torch.float32)
    for layer in _conv_layers(m):
        inc = dt.root_regions(m, x, ZPlus(), layers=layer, output=0)
        full32 = dt.root_regions(m, x, ZPlus(), layers=layer, output=0, _engine="full")
        for a, b in zip(inc.records, full32.records):
            np.testing.assert_array_equal(a.root, b.root)
        flips, maps = roots_mod.float64_full_verdicts(m, x, ZPlus(), layer, output=0)
        assert [[tuple(p) for p in r.flipped] for r in inc.records] == [[tuple(p) for p in f] for f in flips]
        assert [r.leaves_affine_map for r in inc.records] == maps
    assert spy["decided"] > 0


# ---------------------------------------------------------------------------------------------------- first flip
def _assert_first_flip_agrees(full_flips: list, full_leaves: list, ff: Any) -> None:
    """First-flip records against the plain pass's: the same pattern verdict, and a non-empty subset of the plain
    pass's flips exactly when the root leaves (one node's for rows decided incrementally, all for the fallback's)."""
    assert len(ff.records) == len(full_flips) > 0
    for r, flips, leaves in zip(ff.records, full_flips, full_leaves):
        mine = [tuple(p) for p in r.flipped]
        assert r.leaves_pattern == leaves and bool(mine) == leaves, (r.layer, r.neuron)
        assert set(mine) <= {tuple(p) for p in flips}, (r.layer, r.neuron)
        assert r.leaves_affine_map is False


@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("rule,scope", [(ZPlus(), "upper"), (WSquare(), "upper"), (Gamma(0.25), "layer"),
                                        (ZBox(0.0, 2.0), "upper")])
def test_first_flip_verdicts_equal_the_full_forward_pass(net, rule, scope, spy) -> None:  # type: ignore[no-untyped-def]
    m, x = _model(net)
    for layer in _conv_layers(m):
        full = dt.root_regions(m, x, rule, layers=layer, output=0, scope=scope, affine_map=False, _engine="full")
        spy.clear()
        ff = dt.root_regions(m, x, rule, layers=layer, output=0, scope=scope, first_flip=True)
        _assert_first_flip_agrees([r.flipped for r in full.records], [r.leaves_pattern for r in full.records], ff)
        if len(ff.records) >= 10:
            assert spy["decided"] >= len(ff.records) // 2, (layer, dict(spy))


def test_first_flip_on_a_float32_model_follows_the_float64_forward_pass() -> None:
    m, x = _model("residual", torch.float32)
    for layer in _conv_layers(m):
        ff = dt.root_regions(m, x, ZPlus(), layers=layer, output=0, first_flip=True)
        flips, _ = roots_mod.float64_full_verdicts(m, x, ZPlus(), layer, affine_map=False, output=0)
        _assert_first_flip_agrees(flips, [bool(f) for f in flips], ff)


def test_first_flip_stops_rows_at_their_first_certain_flip(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Rows leave the batch once decided: the nodes after the layer's own ReLU see fewer rows than it, the logits
    are never evaluated, and some root that leaves lists fewer flips than the plain pass (it stopped early)."""
    m, x = _model("plain")
    seen: dict[str, int] = {}
    forward_node = root_cone.ConeContext._forward_node

    def counted(self: Any, n: Any, chg: Any, samp: Any, *args: Any) -> Any:
        seen[n.name] = seen.get(n.name, 0) + len(samp)
        return forward_node(self, n, chg, samp, *args)

    monkeypatch.setattr(root_cone.ConeContext, "_forward_node", counted)
    ff = dt.root_regions(m, x, ZPlus(), layers=1, output=0, first_flip=True)
    full = dt.root_regions(m, x, ZPlus(), layers=1, output=0, affine_map=False, _engine="full")
    own = build_plan(m).layer(1).relu_node
    later = [name for name in seen if list(seen).index(name) > list(seen).index(own)]
    assert later and all(seen[name] < seen[own] for name in later), seen
    last = [n.name for n in build_plan(m).nodes][-2]  # the logits
    assert last not in seen
    assert any(len(a.flipped) < len(b.flipped) for a, b in zip(ff.records, full.records))
    _assert_first_flip_agrees([r.flipped for r in full.records], [r.leaves_pattern for r in full.records], ff)


def test_first_flip_decides_past_a_near_tie_and_falls_back_before_one(spy) -> None:  # type: ignore[no-untyped-def]
    """A layer-2 pre-activation at a layer-1 root set to (almost) 0: the tie is uncertain, but another layer-2 sign
    flips with a certified margin, so first flip decides the row there and does not list the tied entry (the plain
    pass's rounding decides it). Where an uncertain sign or winner comes before any certain flip (the max-pool ties
    at layer 2's roots), the rows go to the plain pass."""
    m, x = _model("plain")
    x = x[:1]
    rts = dt.roots(m, x, ZPlus(), layer=1, output=0)
    r = 5
    j = rts.neurons[r]
    with torch.no_grad():  # as in test_near_tie_in_the_upper_network_falls_back
        h = m[0](rts.points[r : r + 1])
        keep = F.relu(h)
        keep[0, j[0], j[1], j[2]] = h[0, j[0], j[1], j[2]]
        m[2].bias[0] -= m[2](keep)[0, 0, j[1], j[2]]
    full = dt.root_regions(m, x, ZPlus(), layers=1, neurons=[j], output=0, affine_map=False, _engine="full")
    tied = (2, (0, j[1], j[2]))
    others = [tuple(p) for p in full.records[0].flipped if p[0] == 2 and tuple(p) != tied]
    assert others  # the row has certain flips at layer 2 besides the tie
    spy.clear()
    ff = dt.root_regions(m, x, ZPlus(), layers=1, neurons=[j], output=0, first_flip=True)
    assert [tuple(p) for p in ff.records[0].flipped] == others and ff.records[0].leaves_pattern
    assert spy["decided"] == 1 and spy["full rows"] == 0
    m, x = _model("plain")
    spy.clear()
    full = dt.root_regions(m, x, ZPlus(), layers=2, output=0, affine_map=False, _engine="full")
    spy.clear()
    ff = dt.root_regions(m, x, ZPlus(), layers=2, output=0, first_flip=True)
    assert spy["undecided"] > 0 and spy["full rows"] == spy["undecided"]
    _assert_first_flip_agrees([r.flipped for r in full.records], [r.leaves_pattern for r in full.records], ff)
    with pytest.raises(InputError, match="first_flip"):
        dt.root_regions(m, x, ZPlus(), layers=1, first_flip=True, affine_map=True)


# ---------------------------------------------------------------------------------------------------- the cone
@pytest.mark.parametrize("k,s,p,d", [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 2, 2), (2, 2, 0, 1), (3, 2, 1, 2),
                                     (1, 1, 0, 1), (5, 3, 2, 1), (3, 3, 1, 3)])
def test_reach_is_every_output_an_input_window_touches(k, s, p, d) -> None:
    """Brute force: the outputs a window of inputs reaches (a convolution of its indicator) lie in the computed
    window, and for some placement they fill it (one position less would miss an output)."""
    ax = root_cone._Axis(k, s, p, d)
    for n_in in (7, 12):
        n_out = (n_in + 2 * p - d * (k - 1) - 1) // s + 1
        if n_out < 1:
            continue
        for h in range(1, n_in + 1):
            tight = False
            for o in range(0, n_in - h + 1):
                ind = torch.zeros(1, 1, n_in, dtype=torch.float64)
                ind[..., o : o + h] = 1
                hit = F.conv1d(ind, torch.ones(1, 1, k, dtype=torch.float64), stride=s, padding=p, dilation=d)[0, 0]
                reached = torch.nonzero(hit, as_tuple=True)[0]
                if not len(reached):  # inputs no output reads (beyond the last stride)
                    continue
                start, size = ax.reach(torch.tensor([o]), h, n_out)
                lo = int(start)
                assert reached.min() >= lo and reached.max() < lo + size, (n_in, h, o)
                tight |= int(reached.max() - reached.min()) + 1 == size
                first, hp = ax.patch(start, size)  # the patch holds every input the window's outputs read
                assert int(first) <= (lo * s - p) and int(first) + hp >= (lo + size - 1) * s - p + d * (k - 1) + 1
            assert tight, (n_in, h)


def test_a_cone_one_position_too_small_changes_verdicts(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The end-to-end comparison is sensitive to the geometry: shrinking every reached window by one position
    loses flips that the full forward pass finds."""
    m, x = _model("plain")
    full = dt.root_regions(m, x, ZPlus(), layers=1, output=0, _engine="full")
    reach = root_cone._Axis.reach

    def short(self: Any, o: Any, h: int, n_out: int) -> Any:
        start, size = reach(self, o, h, n_out)
        return start, max(1, size - 1) if size < n_out else size

    monkeypatch.setattr(root_cone._Axis, "reach", short)
    inc = dt.root_regions(m, x, ZPlus(), layers=1, output=0)
    kf, ki = _key(full), _key(inc)
    assert any([tuple(p) for p in kf[k].flipped] != [tuple(p) for p in ki[k].flipped] for k in kf)


# ---------------------------------------------------------------------------------------------------- roots
@pytest.mark.parametrize("kwargs", [{"padding": 1}, {"stride": 2, "padding": 2}, {"dilation": 2}, {"groups": 2}])
def test_receptive_field_rows_equal_the_transposed_operator(kwargs) -> None:  # type: ignore[no-untyped-def]
    """Rows of the direction matrix computed on the receptive field, placed into the map, are LazyOps.rows'
    transposed convolution of a one-hot, to the bit (so the roots are the plain path's)."""
    torch.manual_seed(5)
    conv = nn.Conv2d(4, 6, 3, **kwargs).double()
    a = torch.rand(3, 4, 9, 8, dtype=torch.float64)
    op = ConvOp.from_module("conv", conv)
    ops = LazyOps(op, a, conv.weight.detach(), conv.bias.detach())
    for rule in (ZPlus(), Gamma(0.5), WSquare(), ZBox(0.0, 1.0)):
        t, V, den = rule.root_step(ops, ops.a, ops.W, ops.b, None, "true")
        out_shape = tuple(op.forward(a, conv.weight).shape[1:])
        flat = torch.randint(0, int(np.prod(out_shape)), (11,), generator=torch.Generator().manual_seed(6))
        samples = torch.randint(0, 3, (11,), generator=torch.Generator().manual_seed(7))
        onehot = torch.zeros((11, int(np.prod(out_shape))), dtype=torch.float64)
        onehot[torch.arange(11), flat] = 1
        onehot = onehot.reshape((11,) + out_shape)
        patch = roots_mod._ConvPatch.of(op, tuple(a.shape[1:]), conv.weight, flat, out_shape)
        on = patch.ok
        rows = torch.arange(11)[:, None, None, None].expand(on.shape)
        for sep in (V, ops.W):
            dense = torch.zeros((11,) + tuple(a.shape[1:]), dtype=torch.float64)
            dense[rows[on], patch.ch[on], patch.iy[on], patch.ix[on]] = patch.values(ops, sep, samples)[on]
            expected = ops.rows(sep, onehot, samples)
            assert torch.equal(dense, expected)
            assert int((expected != 0).sum()) > 11  # more than one entry per row: the placement is tested



def test_a_memory_bound_on_the_plain_pass_splits_the_roots_without_changing_verdicts(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The plain forward pass takes fewer roots at once where the upper network's values would exceed PASS_BYTES
    (one root per pass here); the records are those of the unsplit pass."""
    m, x = _model("plain")
    whole = dt.root_regions(m, x, ZPlus(), layers=1, output=0, _engine="full")
    sizes: list[int] = []
    full = roots_mod._verdicts_full

    def counted(plan: Any, info: Any, rts: Any, rows: Any, *args: Any) -> Any:
        sizes.append(len(rows))
        return full(plan, info, rts, rows, *args)

    monkeypatch.setattr(roots_mod, "_verdicts_full", counted)
    monkeypatch.setattr(roots_mod, "PASS_BYTES", 1)
    split = dt.root_regions(m, x, ZPlus(), layers=1, output=0, _engine="full")
    assert sizes and max(sizes) == 1 and sum(sizes) == len(whole.records) > 1
    _assert_same(whole, split)


def test_a_dead_filter_above_the_layer_is_decided_incrementally(spy) -> None:  # type: ignore[no-untyped-def]
    """A channel with zero weights and zero bias is exactly 0 at every root: its zero margin is no close call (it had
    sent every row to the fallback), and the records are still the full forward pass's."""
    m, x = _model("plain")
    with torch.no_grad():
        m[2].weight[1] = 0
        m[2].bias[1] = 0
    full = dt.root_regions(m, x, ZPlus(), layers=1, output=0, _engine="full")
    spy.clear()
    inc = dt.root_regions(m, x, ZPlus(), layers=1, output=0)
    _assert_same(full, inc)
    assert spy["decided"] >= len(inc.records) // 2 > 0, dict(spy)


def test_blocked_float64_layers_equal_the_whole_copy_and_allow_gradients(monkeypatch, spy) -> None:  # type: ignore[no-untyped-def]
    """Float64Weights multiplies a Linear layer without a copy block by block: the values are those of the whole
    float64 copy, and a float32 run whose fallback needs gradients (the affine map) gives the float64 verdicts."""
    monkeypatch.setattr(roots_mod.Float64Weights, "BLOCK", 64)  # Linear(80, 10) in blocks of one row
    m, x = _model("plain", torch.float32)
    lin = next(li for li in build_plan(m).layers if not isinstance(li.op, ConvOp) and li.weight.numel() > 64)
    a = torch.rand(3, lin.weight.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    blocked = roots_mod.Float64Weights([lin]).forward(lin, a)
    whole = F.linear(a, lin.weight.double(), lin.bias.double())
    torch.testing.assert_close(blocked, whole, rtol=1e-15, atol=1e-15)
    for layer in _conv_layers(m):
        inc = dt.root_regions(m, x, ZPlus(), layers=layer, output=0)
        flips, maps = roots_mod.float64_full_verdicts(m, x, ZPlus(), layer, output=0)
        assert [[tuple(p) for p in r.flipped] for r in inc.records] == [[tuple(p) for p in f] for f in flips]
        assert [r.leaves_affine_map for r in inc.records] == maps
    assert spy["full rows"] > 0  # the fallback (with its gradients) ran


@pytest.mark.parametrize("engine,kwargs", [("incremental", {}), ("incremental", {"first_flip": True}),
                                           ("full", {"affine_map": False})])
def test_a_layer_too_large_for_one_call_is_checked_in_groups_with_the_same_records(monkeypatch, engine,  # type: ignore[no-untyped-def]
                                                                                    kwargs) -> None:
    m, x = _model("residual")
    whole = {layer: dt.root_regions(m, x, ZPlus(), layers=layer, output=0, _engine=engine, **kwargs)
             for layer in (1, 3)}
    calls: list[int] = []
    roots_fn = roots_mod.roots

    def counted(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        return roots_fn(*args, **kw)

    monkeypatch.setattr(roots_mod, "roots", counted)
    monkeypatch.setattr(roots_mod, "ROOT_BYTES", 2 * 4 * 10 * 10 * 8 * 37)  # 37 neurons per group (layer 3: 37)
    for layer, ref in whole.items():
        calls.clear()
        grouped = dt.root_regions(m, x, ZPlus(), layers=layer, output=0, _engine=engine, **kwargs)
        assert len(calls) > 1, layer
        assert grouped.skipped == ref.skipped
        assert [(r.input_index, r.neuron) for r in grouped.records] == [(r.input_index, r.neuron) for r in ref.records]
        _assert_same(ref, grouped)
    assert sum(whole[1].skipped[1].values()) > 0  # the skip counts of the groups add up (inactive neurons)


def test_progress_bar_counts_every_root_and_changes_nothing(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    m, x = _model("residual")
    ref = dt.root_regions(m, x, ZPlus(), layers=3, output=0)
    monkeypatch.setattr(roots_mod, "ROOT_BYTES", 2 * 4 * 10 * 10 * 8 * 37)  # several groups: the total grows
    shown = dt.root_regions(m, x, ZPlus(), layers=3, output=0, progress=True)
    _assert_same(ref, shown)
    err = capsys.readouterr().err
    n = len(ref.records)
    assert n > 37 and "root regions" in err and f"{n}/{n}" in err

"""The torch backend (dtd_formal.torch) against the exact engine, hand-derived cases and onnxruntime.

GPU variants are parametrised over the device and skip cleanly where CUDA is absent.
"""

from __future__ import annotations

import importlib
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import dtd_formal as dtd
import dtd_formal.torch as dt
from dtd_formal.errors import InputError, UnsupportedLayerError
from dtd_formal.rules import (
    LRP0,
    AlphaBeta,
    Epsilon,
    EpsilonAlpha2Beta1,
    EpsilonPlus,
    Flat,
    Gamma,
    LayerwiseComposite,
    WSquare,
    ZBox,
    ZPlus,
)
from dtd_formal.torch.ops import ConvOp, LazyOps, ScratchPool, TorchOps

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def _rules() -> list:
    out = []
    for bias in ("dtd", "zennit"):
        out += [ZPlus(bias=bias), Epsilon(0.1, bias=bias), LRP0(bias=bias), Gamma(0.25, bias=bias),
                AlphaBeta(2, 1, bias=bias), ZBox(-1.0, 2.0, bias=bias), WSquare(bias=bias), Flat(bias=bias)]
    return out


RULES = _rules()


def _net(seed: int, sizes=(5, 7, 6, 3), final_relu=False) -> dtd.Network:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    return dtd.Network([rng.normal(size=(o, i)) for i, o in itertools.pairwise(sizes)],
                       [rng.normal(size=o) * 0.5 for o in sizes[1:]], final_relu=final_relu)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


# ---------------------------------------------------------------------------------------------------- import
def test_lazy_attribute_and_real_torch() -> None:
    assert dtd.torch is dt
    import dtd_formal.torch.ops as ops_mod

    assert ops_mod.torch is torch and "dtd_formal" not in torch.__file__


# ---------------------------------------------------------------------------------------------------- LRP vs exact
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rule", RULES, ids=[repr(r) for r in RULES])
def test_lrp_equals_exact_engine(rule, device) -> None:  # type: ignore[no-untyped-def]
    for seed, final_relu in ((0, False), (1, True)):
        net = _net(seed, final_relu=final_relu)
        xs = np.random.default_rng(10 + seed).normal(size=(3, 5))
        model = net.to_torch().to(device)
        per_layer: dict = {}
        xt = torch.tensor(xs, device=device)
        R = dt.lrp(model, xt, rule, output=1).cpu().numpy()  # ReLUs fused into the layers' functions
        R_rec = dt.lrp(model, xt, rule, output=1, per_layer=per_layer).cpu().numpy()  # unfused, recording
        for i, x in enumerate(xs):
            ref = dtd.lrp(net, x, rule, output=1)
            assert _rel(R[i], dtd.to_float(ref.input)) <= 1e-10
            assert _rel(R_rec[i], dtd.to_float(ref.input)) <= 1e-10
            for l in range(1, net.n_layers + 1):
                assert _rel(per_layer[l][i].cpu().numpy(), dtd.to_float(ref.per_layer[l])) <= 1e-10


def test_dense_rule_bodies_equal_lazy_path() -> None:
    net = _net(2, sizes=(4, 6, 5, 3))
    x = torch.tensor(np.random.default_rng(3).normal(size=(4, 4)))
    model = net.to_torch()
    for rule in RULES:
        lazy = dt.lrp(model, x, rule, output=2)
        dense = dt.lrp(model, x, rule, output=2, dense_linear=True)
        torch.testing.assert_close(lazy, dense, rtol=1e-10, atol=1e-13)


def test_composites_equal_exact_engine() -> None:
    net = _net(4, sizes=(5, 6, 6, 4))
    x = np.random.default_rng(4).uniform(-1, 1, size=5)
    for comp in (LayerwiseComposite(hidden=ZPlus(), first=ZBox(-1.0, 1.0), last=Epsilon(0.01)),
                 EpsilonPlus(), EpsilonAlpha2Beta1(bias="zennit")):
        ref = dtd.to_float(dtd.lrp(net, x, comp, output=0).input)
        got = dt.lrp(net.to_torch(), torch.tensor(x[None]), comp, output=0)[0].numpy()
        assert _rel(got, ref) <= 1e-10


def test_explained_output_starts_at_its_value_and_float32() -> None:
    net = _net(5, sizes=(4, 5, 3))
    x = torch.tensor(np.abs(np.random.default_rng(5).normal(size=(2, 4))))
    model = net.to_torch()
    per_layer: dict = {}
    dt.lrp(model, x, LRP0(), output=[0, 2], per_layer=per_layer)
    y = model(x).detach()
    top = per_layer[2]
    assert torch.equal(top[0], torch.tensor([y[0, 0], 0.0, 0.0], dtype=torch.float64))
    assert torch.equal(top[1], torch.tensor([0.0, 0.0, y[1, 2]], dtype=torch.float64))
    R32 = dt.lrp(net.to_torch(torch.float32), x.float(), ZPlus(), output=0)
    R64 = dt.lrp(model, x, ZPlus(), output=0)
    assert R32.dtype == torch.float32
    torch.testing.assert_close(R32.double(), R64, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------------- conv = dense
def _conv_matrix(conv: nn.Module, in_shape: tuple[int, ...]) -> torch.Tensor:
    """The dense matrix of a bias-free convolution on inputs of in_shape (columns = unit inputs)."""
    n = int(np.prod(in_shape))
    eye = torch.eye(n, dtype=torch.float64).reshape((n,) + in_shape)
    op = ConvOp.from_module("conv", conv)
    return op.forward(eye, conv.weight.detach()).reshape(n, -1).T


@pytest.mark.parametrize("dim,kwargs", [(2, {"stride": 2, "padding": 1}), (2, {"groups": 2, "dilation": 2}),
                                        (1, {"padding": 1})])
def test_conv_lazy_path_equals_dense_rule_body(dim, kwargs) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    cls = nn.Conv2d if dim == 2 else nn.Conv1d
    conv = cls(4, 6, 3, **kwargs).double()
    in_shape = (4, 7, 6) if dim == 2 else (4, 9)
    a = torch.randn((2,) + in_shape, dtype=torch.float64)
    M = _conv_matrix(conv, in_shape)
    op = ConvOp.from_module("conv", conv)
    W, b = conv.weight.detach(), conv.bias.detach()
    z0 = op.forward(a, W)
    out_shape = z0.shape[1:]
    b_full = b.repeat_interleave(int(np.prod(out_shape[1:])))
    R = torch.randn_like(z0)
    dense_ops = TorchOps()
    connected = (M != 0).double()  # the receptive fields
    for rule in RULES:
        for nonneg in (False, True):
            ai = a.abs() if nonneg else a
            y = op.forward(ai, W) + op.bias_view(b) if nonneg else None  # with and without the forward output
            ops = LazyOps(op, ai, W, b, y)
            got = rule.redistribute(ops, ops.a, ops.W, ops.b, ops.out(R)).t
            for i in range(2):
                Ri = R[i].reshape(-1)
                if isinstance(rule, Flat):
                    # Flat on a convolution is uniform over each receptive field (zennit's: a ones kernel), i.e.
                    # the dense body's "every input" restricted to the inputs the neuron is connected to
                    n = connected.sum(dim=1)
                    n = n if rule.bias == "dtd" else n + 1e-6
                    ref = connected.T @ (Ri / n)
                else:
                    ref = rule.redistribute(dense_ops, ai[i].reshape(-1), M, b_full, Ri)
                assert float((got[i].reshape(-1) - ref).abs().max() / ref.abs().max()) <= 1e-10, rule


# ---------------------------------------------------------------------------------------------------- fast paths
def test_row_blocked_linear_layers_equal_exact_engine(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    lrp_mod = importlib.import_module("dtd_formal.torch.lrp")
    made: list[bool] = []

    class CountingOps(LazyOps):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            made.append(bool(kwargs.get("row_block")))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(lrp_mod, "LazyOps", CountingOps)
    monkeypatch.setattr(lrp_mod, "LINEAR_ROW_BLOCK", 12)  # 7x5, 6x7, 3x6 weights: 4, 6, 2 blocks
    net = _net(6)
    xs = np.random.default_rng(6).normal(size=(3, 5))
    model = net.to_torch()
    for rule in RULES:
        made.clear()
        R = dt.lrp(model, torch.tensor(xs), rule, output=2).numpy()
        assert made.count(True) == 4 + 6 + 2 and made.count(False) == 0  # every layer in blocks of rows
        for i, x in enumerate(xs):
            assert _rel(R[i], dtd.to_float(dtd.lrp(net, x, rule, output=2).input)) <= 1e-10, rule


class _TotalScaledLRP0(LRP0):
    """A rule that mixes output neurons: LRP-0 scaled by sum(R) / (sum(R) + 1) over all of them."""

    def redistribute(self, ops, a, W, b, R):  # type: ignore[no-untyped-def]
        total = ops.sum(R)
        return super().redistribute(ops, a, W, b, R) * (total / (total + 1.0))


def test_a_rule_that_mixes_rows_runs_unblocked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(importlib.import_module("dtd_formal.torch.lrp"), "LINEAR_ROW_BLOCK", 12)
    net = _net(7)
    x = torch.tensor(np.random.default_rng(7).normal(size=(1, 5)))
    model = net.to_torch()
    got = dt.lrp(model, x, _TotalScaledLRP0(), output=0)
    dense = dt.lrp(model, x, _TotalScaledLRP0(), output=0, dense_linear=True)  # the body as written, per sample
    plain = dt.lrp(model, x, LRP0(), output=0)
    torch.testing.assert_close(got, dense, rtol=1e-12, atol=1e-14)
    assert not torch.allclose(got, plain)  # the scaling did act


def test_scratch_pool_hands_out_free_tensors_only() -> None:
    pool = ScratchPool()
    like = torch.zeros(2, 3)
    first = pool.take(like)
    second = pool.take(like)
    assert first.data_ptr() != second.data_ptr() and pool.holds(first) and pool.holds(second[1])
    pool.release()
    assert not pool.holds(first)
    again = {pool.take(like).data_ptr(), pool.take(like).data_ptr()}
    assert again == {first.data_ptr(), second.data_ptr()}  # reused after release, never twice at once
    assert pool.take(like).data_ptr() not in again
    cl = torch.zeros(1, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    assert pool.take(cl).stride() == cl.stride()
    assert pool.take(torch.zeros(4).expand(3, 4)).is_contiguous()  # never an overlapping (stride-0) tensor


def _conv_stack() -> nn.Module:
    """Three convolutions with outputs of one shape (the scratch pool reuses its tensors across them)."""
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 5 * 4, 4)).double().eval()


def _dense_twin(model: nn.Module, in_shape: tuple[int, ...]) -> dtd.Network:
    """The same network with each convolution written as its dense matrix (an independent reference)."""
    weights, biases, shape = [], [], in_shape
    for m in model:
        if isinstance(m, nn.Conv2d):
            M = _conv_matrix(m, shape)
            shape = (m.out_channels,) + shape[1:]
            weights.append(M.numpy())
            biases.append(m.bias.detach().repeat_interleave(int(np.prod(shape[1:]))).numpy())
        elif isinstance(m, nn.Linear):
            weights.append(m.weight.detach().numpy())
            biases.append(m.bias.detach().numpy())
    return dtd.Network(weights, biases)


@pytest.mark.parametrize("rule", [ZPlus(bias="zennit"), Epsilon(1e-6, bias="zennit"), Gamma(0.25), ZPlus()],
                         ids=repr)
def test_conv_net_with_scratch_reuse_and_channels_last_equals_dense_twin(rule) -> None:  # type: ignore[no-untyped-def]
    model = _conv_stack()
    twin = _dense_twin(model, (2, 5, 4))
    x = torch.tensor(np.random.default_rng(9).normal(size=(3, 2, 5, 4)))
    R = dt.lrp(model, x, rule, output=1)
    assert R.is_contiguous()
    for i in range(3):
        ref = dtd.to_float(dtd.lrp(twin, x[i].reshape(-1).numpy(), rule, output=1).input)
        assert _rel(R[i].reshape(-1).numpy(), ref) <= 1e-9, rule


# ---------------------------------------------------------------------------------------------------- layers
class _Residual(nn.Module):
    """A hand-written ResNet basic block (conv-bn-relu-conv-bn + identity, relu) and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3, bias=False)

    def forward(self, x):  # type: ignore[no-untyped-def]
        h = self.relu(self.stem(x))
        out = self.relu2(self.bn1(self.conv1(h)))
        out = self.bn2(self.conv2(out))
        out = out + h
        out = self.relu2(out)
        out = self.avg(self.pool(out))
        return self.fc(torch.flatten(out, 1))


def _residual_model(zero_bn_shift: bool) -> nn.Module:
    torch.manual_seed(1)
    m = _Residual().double()
    for bn in (m.bn1, m.bn2):
        with torch.no_grad():
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            if zero_bn_shift:  # make the folded bias (beta - mu s) zero: a bias-free network
                bn.bias.copy_(bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps))
    return m.eval()


@pytest.mark.parametrize("device", DEVICES)
def test_residual_block_conserves_and_plain_gradient_would_not(device) -> None:  # type: ignore[no-untyped-def]
    m = _residual_model(zero_bn_shift=True).to(device)
    x = torch.rand(2, 2, 6, 6, dtype=torch.float64, device=device)
    y = m(x).detach()
    for rule in (LRP0(), ZPlus(), Gamma(0.5)):
        R = dt.lrp(m, x, rule, output=0, norm="dtd")
        torch.testing.assert_close(R.sum(dim=(1, 2, 3)), y[:, 0], rtol=1e-10, atol=1e-12)
    # on a bias-free ReLU network LRP-0 is gradient x input, node by node (the residual sum and the average pool
    # included); a residual sum that passed the plain gradient would double the relevance of both branches
    R0 = dt.lrp(m, x, LRP0(), output=0, norm="dtd")
    torch.testing.assert_close(R0, dt.gradient_times_input(m, x, output=0), rtol=1e-9, atol=1e-12)
    Rz = dt.lrp(m, x, ZPlus(), output=0, norm="dtd")
    assert not torch.allclose(Rz, R0, rtol=1e-3)  # and z+ is a different explanation


def test_maxpool_is_winner_takes_all_and_avgpool_proportional() -> None:
    lin = nn.Linear(1, 1, bias=False).double()
    with torch.no_grad():
        lin.weight.fill_(2.0)
    model = nn.Sequential(nn.MaxPool1d(2), nn.AvgPool1d(2), nn.Flatten(), lin).eval()
    x = torch.tensor([[[1.0, 3.0, 4.0, 2.0]]], dtype=torch.float64)
    # f = 2 * (3 + 4) / 2 = 7; max-pool winners are x1 = 3 and x2 = 4; the average splits 7 as 3 : 4
    R = dt.lrp(model, x, LRP0(), output=0)
    assert torch.equal(R, torch.tensor([[[0.0, 3.0, 4.0, 0.0]]], dtype=torch.float64))


def test_batchnorm_canonizer_matches_exact_fold() -> None:
    torch.manual_seed(3)
    bn = nn.BatchNorm1d(6)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    model = nn.Sequential(nn.Linear(4, 6), bn, nn.ReLU(), nn.Dropout(0.3), nn.Linear(6, 2)).double().eval()
    net = dtd.Network.from_torch(model)
    x = np.random.default_rng(0).normal(size=4)
    for rule in (ZPlus(), Epsilon(1e-6, bias="zennit")):
        ref = dtd.to_float(dtd.lrp(net, x, rule, output=1).input)
        got = dt.lrp(model, torch.tensor(x[None]), rule, output=1)[0].numpy()
        assert _rel(got, ref) <= 1e-10


def test_context_manager_restores_forward_also_on_exception() -> None:
    net = _net(6)
    model = net.to_torch()
    x = torch.tensor(np.random.default_rng(6).normal(size=(2, 5)), requires_grad=True)
    plain = model(x)
    (g_plain,) = torch.autograd.grad(plain[:, 0].sum(), x)
    with pytest.raises(RuntimeError, match="boom"), dt.modified_gradients(model, ZPlus()):
        out = model(x)
        torch.testing.assert_close(out, plain)  # the same function inside
        (g_mod,) = torch.autograd.grad(out[:, 0].sum(), x)
        assert not torch.allclose(g_mod, g_plain)  # but modified gradients
        raise RuntimeError("boom")
    assert "forward" not in model.__dict__
    (g_after,) = torch.autograd.grad(model(x)[:, 0].sum(), x)
    assert torch.equal(g_after, g_plain)


class _Functional(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.lin = nn.Linear(3, 3)
        self.w = nn.Parameter(torch.ones(3, 3))

    def forward(self, x):  # type: ignore[no-untyped-def]
        if self.kind == "sigmoid":
            return self.lin(torch.sigmoid(x))
        if self.kind == "reuse":
            return self.lin(F.relu(self.lin(x)))
        if self.kind == "param":
            return self.lin(F.linear(x, self.w))
        if self.kind == "scale":
            return self.lin(x) * 2
        return self.lin(x)


@pytest.mark.parametrize("kind,match", [
    ("sigmoid", "sigmoid"), ("reuse", "'lin'.*more than once"), ("param", "get_attr 'w'|'w'"), ("scale", "mul"),
])
def test_refusals_name_the_op(kind, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsupportedLayerError, match=match):
        dt.lrp(_Functional(kind).eval(), torch.randn(1, 3), ZPlus())


def test_refusals_modules_and_modes() -> None:
    with pytest.raises(UnsupportedLayerError, match="'1' \\(Tanh\\)"):
        dt.lrp(nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2)), torch.randn(1, 3), ZPlus())
    with pytest.raises(InputError, match="training mode"):
        dt.lrp(nn.Sequential(nn.Linear(3, 3), nn.Dropout(), nn.Linear(3, 2)).train(), torch.randn(1, 3), ZPlus())
    with pytest.raises(UnsupportedLayerError, match="BatchNorm is folded only"):
        dt.lrp(nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 2)).eval(), torch.randn(1, 3), ZPlus())


# ---------------------------------------------------------------------------------------------------- roots, regions
def _records(report) -> dict:  # type: ignore[no-untyped-def]
    return {(r.input_index, r.layer, r.neuron): r for r in report.records}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1])
def test_root_regions_equal_exact_engine(seed, device) -> None:  # type: ignore[no-untyped-def]
    net = _net(seed, sizes=(6, 8, 7, 5, 3), final_relu=bool(seed))
    xs = np.abs(np.random.default_rng(seed).normal(size=(3, 6)))
    model = net.to_torch().to(device)
    n_leave = n_map = 0
    for rule, definition, scope in ((ZPlus(), "true", "upper"), (WSquare(), "paper-code", "layer"),
                                    (ZBox(0.0, 3.0), "true", "layer"), (Gamma(0.5), "paper-code", "upper")):
        ex = dtd.root_regions(net, xs, rule, scope=scope, output=0, definition=definition)
        to = dt.root_regions(model, torch.tensor(xs, device=device), rule, scope=scope, output=0, definition=definition)
        ke, kt = _records(ex), _records(to)
        assert ke.keys() == kt.keys()
        assert ex.skipped == to.skipped
        for k, e in ke.items():
            t = kt[k]
            assert _rel(t.root, dtd.to_float(e.root)) <= 1e-10
            assert (t.leaves_pattern, t.leaves_affine_map, t.root_in_domain) == (
                e.leaves_pattern, e.leaves_affine_map, e.root_in_domain)
            assert [tuple(p) for p in t.flipped] == [tuple(p) for p in e.flipped]
            assert abs(t.own_preactivation - float(e.own_preactivation)) <= 1e-10 * (1 + abs(float(e.own_preactivation)))
            n_leave += e.leaves_pattern
            n_map += e.leaves_affine_map
    assert 0 < n_map and 0 < n_leave < sum(1 for _ in ke) * 4  # a mix of verdicts was compared


def test_roots_of_a_conv_layer_equal_the_dense_network() -> None:
    torch.manual_seed(2)
    conv = nn.Conv2d(2, 3, 2, stride=1).double()
    fc = nn.Linear(27, 2).double()
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc).eval()
    M = _conv_matrix(conv, (2, 4, 4)).numpy()
    net = dtd.Network([M, fc.weight.detach().numpy()],
                      [conv.bias.detach().repeat_interleave(9).numpy(), fc.bias.detach().numpy()])
    xs = np.abs(np.random.default_rng(2).normal(size=(2, 32)))
    rule = ZPlus()
    ex = dtd.root_regions(net, xs, rule, layers=1, output=1)
    to = dt.root_regions(model, torch.tensor(xs.reshape(2, 2, 4, 4)), rule, layers=1, output=1)
    assert len(ex.records) > 5
    kt = {(r.input_index, int(np.ravel_multi_index(r.neuron, (3, 3, 3)))): r for r in to.records}
    assert kt.keys() == {(r.input_index, r.neuron) for r in ex.records}
    for e in ex.records:
        t = kt[(e.input_index, e.neuron)]
        assert _rel(t.root.reshape(-1), dtd.to_float(e.root)) <= 1e-10
        assert (t.leaves_pattern, t.leaves_affine_map, t.root_in_domain) == (
            e.leaves_pattern, e.leaves_affine_map, e.root_in_domain)
        flipped = [(lab, int(np.ravel_multi_index(n, (3, 3, 3))) if isinstance(n, tuple) else n) for lab, n in t.flipped]
        assert flipped == [tuple(p) for p in e.flipped]


def test_roots_choose_and_sample_neurons() -> None:
    net = _net(7, sizes=(5, 9, 3))
    model = net.to_torch()
    x = torch.tensor(np.abs(np.random.default_rng(7).normal(size=(2, 5))))
    everything = dt.roots(model, x, ZPlus(), layer=1, output=0)
    chosen = dt.roots(model, x, ZPlus(), layer=1, neurons=[0, 1, 2], output=0)
    assert set(chosen.neurons) <= {0, 1, 2}
    for i, j in zip(chosen.input_index.tolist(), chosen.neurons):
        torch.testing.assert_close(chosen.point(i, j), everything.point(i, j))
        assert abs(float(chosen.own_preactivation[chosen.neurons.index(j)])) < 1e-12 or True
    torch.testing.assert_close(everything.own_preactivation, torch.zeros_like(everything.own_preactivation), atol=1e-12, rtol=0)
    sampled = dt.roots(model, x, ZPlus(), layer=1, sample=2, output=0)
    counts = np.bincount(sampled.input_index.numpy(), minlength=2)
    assert (counts <= 2).all() and counts.sum() == min(2, int((everything.input_index == 0).sum())) + min(
        2, int((everything.input_index == 1).sum()))
    with pytest.raises(InputError, match="not a root-point rule"):
        dt.roots(model, x, Epsilon(0.1))


def test_residual_root_regions_run_and_hold_neuron_linear() -> None:
    m = _residual_model(zero_bn_shift=False)
    x = torch.rand(1, 2, 6, 6, dtype=torch.float64)
    rep = dt.root_regions(m, x, ZPlus(), layers=2, sample=5, output=0)
    assert 0 < len(rep.records) <= 5
    for r in rep.records:
        assert isinstance(r.neuron, tuple) and len(r.neuron) == 3
        assert abs(r.own_preactivation) < 1e-9
        assert all((lab, n) != (2, r.neuron) for lab, n in r.flipped)


# ---------------------------------------------------------------------------------------------------- CSC
def test_median_abs_cos_by_hand() -> None:
    from dtd_formal.torch.csc import median_abs_cos

    V = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert median_abs_cos(V) == pytest.approx(2**-0.5, rel=1e-12)


def test_csc_single_input_collapses_and_reports_every_lower_layer() -> None:
    rng = np.random.default_rng(8)  # one input: every explanation is a multiple of the same 1-vector
    net = dtd.Network([np.abs(rng.normal(size=(6, 1))), rng.normal(size=(6, 6)), rng.normal(size=(3, 6))],
                      [np.full(6, 0.1), np.full(6, 0.1), np.zeros(3)])  # layer 1 all active at x > 0
    model = net.to_torch()
    x = torch.tensor([[0.7]], dtype=torch.float64)
    rep = dt.csc(model, x, ZPlus(), layer=3, k=6)
    assert [r.layer for r in rep.rows] == [2, 1, 0]
    assert rep.rows[-1].median_abs_cos == pytest.approx(1.0)
    assert rep.rows[0].size == 6 and 0.0 <= rep.rows[0].median_abs_cos <= 1.0
    assert 0.3 < rep.rows[0].baseline < 1.0  # |N(0,1)| vectors of length 6 are far from orthogonal


# ---------------------------------------------------------------------------------------------------- ONNX
class _SmallConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):  # type: ignore[no-untyped-def]
        h = F.relu(self.bn(self.c1(x)))
        h = F.relu(self.c2(h) + h)
        h = self.pool(h)
        return self.fc(h.view(h.size(0), -1))


def test_from_onnx_matches_onnxruntime_and_explains_like_the_original(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(4)
    model = _SmallConv().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "small.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (torch.randn(1, 3, 8, 8),), str(path), dynamo=False,
                              input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                              do_constant_folding=False)
        except Exception as exc:  # noqa: BLE001
            pytest.skip(f"torch.onnx.export unavailable here: {exc}")
    loaded = dt.from_onnx(path)
    x = torch.randn(3, 3, 8, 8)
    ref = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(loaded(x).detach().numpy(), ref, rtol=1e-5, atol=1e-5)
    assert dt.build_plan(loaded).n_layers == 3
    R_loaded = dt.lrp(loaded.double(), x.double(), ZPlus(), output=2)
    R_orig = dt.lrp(model.double(), x.double(), ZPlus(), output=2)
    torch.testing.assert_close(R_loaded, R_orig, rtol=1e-5, atol=1e-7)


def test_from_onnx_names_unsupported_ops(tmp_path) -> None:  # type: ignore[no-untyped-def]
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("Sigmoid", ["x"], ["y"], name="squash")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])])
    path = tmp_path / "sig.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(UnsupportedLayerError, match="'squash' \\(Sigmoid\\)"):
        dt.from_onnx(path)


def test_float32_root_regions_and_json() -> None:
    import json

    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    x = torch.rand(2, 2, 4, 4)
    r32 = dt.root_regions(model, x, ZPlus(), layers=1, output=0)
    r64 = dt.root_regions(model.double(), x.double(), ZPlus(), layers=1, output=0)
    assert r32.arithmetic == "torch-float32" and r64.arithmetic == "torch-float64"
    k32, k64 = _records(r32), _records(r64)
    assert k32.keys() == k64.keys() and len(k64) > 3
    for k, r in k64.items():
        np.testing.assert_allclose(k32[k].root, r.root, rtol=1e-4, atol=1e-5)
    rec = next(iter(k64.values()))
    data = json.loads(json.dumps(rec.to_json()))
    assert data["neuron"] == list(rec.neuron) and np.asarray(data["root"]).shape == (2, 4, 4)
    assert any(lab == "_2" or isinstance(lab, int) for r in r64.records for lab, _ in r.flipped) or all(
        not r.leaves_pattern for r in r64.records)


def test_from_onnx_matmul_add_shape_ops_match_onnxruntime(tmp_path) -> None:  # type: ignore[no-untyped-def]
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    W1 = rng.normal(size=(2 * 3 * 2, 5)).astype(np.float32)  # MatMul weight (in, out)
    b1 = rng.normal(size=5).astype(np.float32)
    inits = [numpy_helper.from_array(W1, "W1"), numpy_helper.from_array(b1, "b1"),
             numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus1")]
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1, 3], name="swap"),  # (n, 2, 3, 2) -> (n, 3, 2, 2)
        helper.make_node("Shape", ["xt"], ["shp"]),
        helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["xt", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W1"], ["mm"]),
        helper.make_node("Add", ["mm", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 3, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "mm.onnx"
    onnx.save(model, str(path))
    loaded = dt.from_onnx(path)
    x = rng.normal(size=(4, 2, 3, 2)).astype(np.float32)
    ref = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    np.testing.assert_allclose(loaded(torch.tensor(x)).detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    plan = dt.build_plan(loaded)
    assert plan.n_layers == 1 and torch.allclose(plan.layers[0].bias, torch.tensor(b1))

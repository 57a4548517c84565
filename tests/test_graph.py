"""The exact operator graph (conv, pools, residual sums) against independent references: onnxruntime on every
shared ONNX file, the torch backend's float64 values on small conv and residual models, a dense unrolled twin
(exact equality), hand-derived max-pool and tie cases, and the certified float pass against exact evaluation."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import dtd_formal as dtd
import dtd_formal.graph.explain as graph_explain
from dtd_formal.exact import to_float, to_fraction_array
from dtd_formal.graph import GraphBuilder, GraphNetwork
from dtd_formal.rules.parse import parse_rule

from graph_nets import pool_net as _pool_net
from graph_twin import unrolled_twin as _unrolled_twin

ONNX_FILES = ["cifar_deep_kw.onnx", "cnn_max_mninst3.onnx", "conv_mp1.onnx", "mnist2x10.onnx",
              "ACASXU_experimental_v2a_1_1.onnx", "fc_2-2-3.onnx"] + [
    f"layer-zoo/{n}.onnx" for n in ("add", "batchnorm", "conv", "flatten", "maxpool", "reshape", "sub", "transpose")]


# ---------------------------------------------------------------------------------------------------- onnxruntime
@pytest.mark.parametrize("name", ONNX_FILES)
def test_exact_forward_matches_onnxruntime(shared_data: Path, name: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    import onnx

    path = shared_data / name
    model = onnx.load(str(path))
    inits = {i.name for i in model.graph.initializer}
    (inp,) = [i for i in model.graph.input if i.name not in inits]
    shape = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
    x = np.random.default_rng(7).uniform(0, 1, size=shape).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = sess.run(None, {inp.name: x})[0].astype(np.float64).ravel()
    net = dtd.load(path)
    assert net.input_size == x.size
    got = to_float(net.forward(x.astype(np.float64).ravel()))
    # float32 rounding: relative 1e-5 of the output scale
    scale = max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)


def test_conv_nets_load_as_graphs_with_their_layers(shared_data: Path) -> None:
    cifar = dtd.load(shared_data / "cifar_deep_kw.onnx")
    assert isinstance(cifar, GraphNetwork)
    assert [cifar.nodes[i.node].kind for i in cifar.layers] == ["conv"] * 4 + ["dense"] * 2
    assert cifar.input_shape == (3, 32, 32) and cifar.neuron_coords(1, 8 * 16 * 16 - 1) == (7, 15, 15)
    mnist = dtd.load(shared_data / "cnn_max_mninst3.onnx")
    assert "maxpool" in {n.kind for n in mnist.nodes}


# ---------------------------------------------------------------------------------------------------- torch twins
torch = pytest.importorskip("torch")
nn = torch.nn


class _Residual(nn.Module):
    """conv -> BN -> relu -> (conv + skip) -> relu -> avgpool -> linear -> relu -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.c2 = nn.Conv2d(3, 3, 3, padding="same")
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(27, 5)
        self.out = nn.Linear(5, 2)

    def forward(self, x):  # type: ignore[no-untyped-def]
        h = torch.relu(self.bn(self.c1(x)))
        h = torch.relu(self.c2(h) + h)
        h = self.pool(h)
        return self.out(torch.relu(self.fc(h.flatten(1))))


def _seeded(model: nn.Module, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    for p in model.parameters():
        p.data.uniform_(-0.6, 0.8)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return model.double().eval()


def _conv_max() -> nn.Module:
    return _seeded(nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(3, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(18, 4), nn.ReLU(),
                                 nn.Linear(4, 2)), 1)


def _conv_plain() -> nn.Module:
    """No max pool: the dense unrolled twin is the same function with the same layers."""
    return _seeded(nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3, stride=2),
                                 nn.ReLU(), nn.Flatten(), nn.Linear(8, 3), nn.ReLU(), nn.Linear(3, 2)), 2)


MODELS = {
    "conv-maxpool": (_conv_max, (1, 18, 18)),
    "residual-bn-avgpool": (lambda: _seeded(_Residual(), 3), (2, 6, 6)),
    "conv": (_conv_plain, (2, 6, 6)),
}
RULES = ["zplus", "gamma:0.25", "lrp0", "epsilon:0.1", "alphabeta:2,1", "wsquare", "flat", "zbox:-1,1"]


def _input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 1.0, size=shape)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_from_torch_forward_equals_torch(model_name: str) -> None:
    make, shape = MODELS[model_name]
    model = make()
    net = dtd.Network.from_torch(model, input_shape=shape)
    x = _input(shape)
    want = model(torch.tensor(x[None])).detach().numpy().ravel()
    np.testing.assert_allclose(to_float(net.forward(x.ravel())), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("rule_spec", RULES)
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_exact_relevance_equals_torch_backend(model_name: str, rule_spec: str) -> None:
    make, shape = MODELS[model_name]
    model = make()
    net = dtd.Network.from_torch(model, input_shape=shape)
    x = _input(shape, 1)
    rule = parse_rule(rule_spec)
    exact = to_float(dtd.lrp(net, x.ravel(), rule, output=0).input)
    ref = dtd.torch.lrp(model, torch.tensor(x[None]), rule, output=0)[0].numpy().ravel()
    assert np.max(np.abs(ref)) > 1e-6, "the reference relevance is all zero: the test would prove nothing"
    np.testing.assert_allclose(exact, ref, rtol=1e-10, atol=1e-12 * np.max(np.abs(ref)))


@pytest.mark.parametrize("rule_spec", ["zplus", "gamma:0.25", "wsquare", "zbox:-1,1"])
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_exact_roots_and_regions_equal_torch_backend(model_name: str, rule_spec: str) -> None:
    make, shape = MODELS[model_name]
    model = make()
    net = dtd.Network.from_torch(model, input_shape=shape)
    x = _input(shape, 2)
    rule = parse_rule(rule_spec)
    xt = torch.tensor(x[None])
    n_checked = n_regions = n_boundary = 0
    for layer in range(1, net.n_layers + 1):
        exact = dtd.roots(net, x.ravel(), rule, layer=layer)
        ref = dtd.torch.roots(model, xt, rule, layer=layer, output=0)
        conv = net.nodes[net.layer(layer).node].kind == "conv"
        key = (lambda j: net.neuron_coords(layer, j)) if conv else (lambda j: j)  # torch names conv neurons (c, y, x)
        ref_points = {n: ref.points[r].numpy().ravel() for r, n in enumerate(ref.neurons)}
        assert {key(j) for j in exact.points} == set(ref_points)
        for j, pt in exact.points.items():
            np.testing.assert_allclose(to_float(pt), ref_points[key(j)], rtol=1e-10, atol=1e-12)
            n_checked += 1
        rep = dtd.root_regions(net, x.ravel(), rule, layers=layer)
        tref = dtd.torch.root_regions(model, xt, rule, layers=layer, output=0)
        want = {r.neuron: (r.leaves_pattern, r.leaves_affine_map) for r in tref.records}
        assert {key(r.neuron) for r in rep.records} == set(want)
        for r in rep.records:
            if _root_on_a_boundary(net, x.ravel(), layer, r):
                n_boundary += 1
                continue
            assert (r.leaves_pattern, r.leaves_affine_map) == want[key(r.neuron)], (layer, key(r.neuron))
            n_regions += 1
    assert n_checked > 0 and n_regions >= max(10, n_boundary)


_BASE: dict[tuple[int, bytes], tuple[list, dict]] = {}


def _root_on_a_boundary(net: GraphNetwork, x: np.ndarray, layer: int, record) -> bool:  # type: ignore[no-untyped-def]
    """Whether the exact root lies on a boundary the input did not: a ReLU input that is exactly 0 at the root but
    not at x (besides the root's own neuron), or a max-pool window tied at the root but not at x. There the float
    reference lands on either side by rounding noise (about 1e-17), so it cannot be compared."""
    from dtd_formal.graph.network import pattern_of
    from dtd_formal.rules.ops import EXACT

    info = net.layer(layer)
    key = (id(net), x.tobytes())
    if key not in _BASE:
        vals = net.values(x)
        _BASE.clear()
        _BASE[key] = (vals, pattern_of(net, vals))
    vals, before = _BASE[key]
    linear = (info.relu_node, record.neuron) if info.relu_node is not None else None
    rv = net.evaluate(EXACT, vals[0], base=vals, override=(info.input_node, record.root), linear=linear)
    after = pattern_of(net, rv)
    for k, node in enumerate(net.nodes):
        if node.kind == "relu":
            new_zero = (np.asarray(after[k]) == 0) & (np.asarray(before[k]) != 0)
            if k == info.relu_node:
                new_zero[record.neuron] = False
            if new_zero.any():
                return True
        elif node.kind == "maxpool" and any(len(a) > 1 and a != b for a, b in zip(after[k], before[k])):
            return True
    return False


@pytest.mark.parametrize("rule_spec", ["zplus", "gamma:0.25", "lrp0", "epsilon:0.1", "wsquare", "zbox:-1,1"])
def test_graph_equals_dense_unrolled_twin_exactly(rule_spec: str) -> None:
    make, shape = MODELS["conv"]
    net = dtd.Network.from_torch(make(), input_shape=shape)
    twin = _unrolled_twin(net)
    x = _input(shape, 3).ravel()
    assert list(net.forward(x)) == list(twin.forward(x))
    rule = parse_rule(rule_spec)
    assert list(dtd.lrp(net, x, rule).input) == list(dtd.lrp(twin, x, rule).input)
    # roots: a conv neuron's rule sees its receptive field (as the torch backend and zennit do), so the roots agree
    # with the dense twin's for directions that vanish where w = 0 (z+, w^2, zB); LRP-0 and gamma would also move
    # the inputs outside the field in the dense view (docs/architecture.md, "receptive fields")
    if rule_spec in ("zplus", "wsquare", "zbox:-1,1"):
        for layer in (1, 2, 3):
            g, d = dtd.roots(net, x, rule, layer=layer), dtd.roots(twin, x, rule, layer=layer)
            assert set(g.points) == set(d.points) and g.points
            for j in g.points:
                assert list(g.points[j]) == list(d.points[j])
        gr = dtd.root_regions(net, x, rule)
        dr = dtd.root_regions(twin, x, rule)
        key = lambda r: (r.layer, r.neuron, r.leaves_pattern, r.leaves_affine_map, r.own_preactivation,  # noqa: E731
                         r.root_in_domain)
        assert sorted(map(key, gr.records)) == sorted(map(key, dr.records))
        if rule_spec == "zbox:-1,1":  # a box the input leaves (0.05..1 against 0..1/2): every coordinate is checked
            narrow = parse_rule("zbox:0,1/2")
            g2, d2 = dtd.root_regions(net, x, narrow, layers=1), dtd.root_regions(twin, x, narrow, layers=1)
            assert sorted(map(key, g2.records)) == sorted(map(key, d2.records))
            assert not any(r.root_in_domain for r in g2.records)


# ---------------------------------------------------------------------------------------------------- max pool
def test_root_that_changes_the_maxpool_argmax_leaves_the_region() -> None:
    # by hand at x = (1, 1): z = (2, 1/2), the pool picks neuron 0 and y = 2 x0.
    # z+ root of neuron 0: v = x * [w0 > 0] = (1, 0), t = z0 / (w0 . v) = 1, root (0, 1); there z1 = 3/2 > z0 = 0:
    # the pool's winner changes (no ReLU flips: neuron 1 stays on), and the map becomes y = -x0 + x1 + 1/2.
    # root of neuron 1: v = (0, 1), t = 1/2, root (1, 1/2): z0 = 2 still wins; nothing changes.
    net = _pool_net()
    rep = dtd.root_regions(net, [1, 1], parse_rule("zplus"), layers=1)
    by = {r.neuron: r for r in rep.records}
    assert list(by[0].root) == [0, 1] and list(by[1].root) == [1, Fraction(1, 2)]
    assert by[0].leaves_pattern and by[0].flipped == [("maxpool", "pool", 0)] and by[0].leaves_affine_map
    assert not by[1].leaves_pattern and not by[1].leaves_affine_map and by[1].flipped == []
    assert by[0].own_preactivation == 0 and by[1].own_preactivation == 0


# ---------------------------------------------------------------------------------------------------- certified pass
def _records(rep):  # type: ignore[no-untyped-def]
    return [(r.layer, r.neuron, r.leaves_pattern, r.leaves_affine_map, tuple(map(tuple, r.flipped)),
             r.own_preactivation, r.root_in_domain, r.step, tuple(r.root)) for r in rep.records]


def _exact_only(monkeypatch: pytest.MonkeyPatch) -> None:
    original = graph_explain.certified_graph_forward

    def never_certain(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = original(*args, **kwargs)
        out.uncertain[:] = True
        return out

    monkeypatch.setattr(graph_explain, "certified_graph_forward", never_certain)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_certified_float_pass_gives_the_exact_verdicts(model_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    make, shape = MODELS[model_name]
    net = dtd.Network.from_torch(make(), input_shape=shape)
    x = _input(shape, 4).ravel()
    rule = parse_rule("zplus")
    fast = _records(dtd.root_regions(net, x, rule))
    _exact_only(monkeypatch)
    assert fast == _records(dtd.root_regions(net, x, rule)) and fast


def test_certified_float_pass_on_a_real_maxpool_net(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = dtd.load(shared_data / "conv_mp1.onnx")
    x = np.random.default_rng(5).uniform(0, 1, net.input_size)
    rule = parse_rule("zplus")
    fast = _records(dtd.root_regions(net, x, rule, layers=[1, 2], neurons=range(60)))
    _exact_only(monkeypatch)
    assert fast == _records(dtd.root_regions(net, x, rule, layers=[1, 2], neurons=range(60))) and fast


def test_exact_zero_at_a_root_is_left_to_exact_arithmetic() -> None:
    # two identical conv channels: at channel 0's root, channel 1 has z exactly 0. Floats cannot certify that
    # sign; the exact fall-back sees 0, which is not a flip (a flip needs the opposite strict sign).
    from dtd_formal.graph.certified import certified_graph_forward

    g = GraphBuilder((1, 3))
    k = np.array([[[1, 2]], [[1, 2]]], dtype=object)
    h = g.relu(g.conv(g.input, k, [Fraction(-1, 3), Fraction(-1, 3)]))
    net = g.network(g.dense(g.flatten(h), [[1, 1, 1, 1]], [0]))
    x = [Fraction(1, 2), Fraction(1, 3), Fraction(1, 5)]
    rep = dtd.root_regions(net, x, parse_rule("zplus"), layers=1)
    r0 = [r for r in rep.records if r.neuron == 0][0]
    assert not r0.leaves_pattern and r0.flipped == []
    vals = net.values(x)
    info = net.layer(1)
    cert = certified_graph_forward(net, vals, info.input_node, np.array([r0.root], dtype=object),
                                   forced=(info.relu_node, np.array([0])))
    assert cert.uncertain[0]


# ---------------------------------------------------------------------------------------------------- JSON, CLI
def test_graph_json_round_trip(tmp_path: Path) -> None:
    make, shape = MODELS["residual-bn-avgpool"]
    net = dtd.Network.from_torch(make(), input_shape=shape)
    path = tmp_path / "res.json"
    net.save(path)
    back = dtd.load(path)
    assert isinstance(back, GraphNetwork) and back.digest() == net.digest()
    x = _input(shape, 6).ravel()
    assert list(back.forward(x)) == list(net.forward(x))
    data = json.loads(path.read_text())
    data["nodes"][1]["inputs"] = [99]
    path.write_text(json.dumps(data))
    with pytest.raises(dtd.InputError):
        dtd.load(path)


def test_roots_cli_with_conv_neuron(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dtd_formal.cli import main

    make, shape = MODELS["conv"]
    net = dtd.Network.from_torch(make(), input_shape=shape)
    path = tmp_path / "conv.json"
    net.save(path)
    x = _input(shape, 0)
    np.save(tmp_path / "x.npy", x)
    z1 = net.layer_values(net.values(x.ravel()), 1)[1]
    active = [j for j in range(len(z1)) if z1[j] > 0]
    c, yy, xx = net.neuron_coords(1, active[0])
    assert main(["roots", str(path), "--inputs", str(tmp_path / "x.npy"), "--rule", "zplus", "--layer", "1",
                 "--neuron", f"{c},{yy},{xx}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["neuron"] for r in out["records"]] == [active[0]]
    want = dtd.root_regions(net, x.ravel(), parse_rule("zplus"), layers=1, neurons=[active[0]]).records[0]
    assert out["records"][0]["leaves_pattern"] == want.leaves_pattern
    assert main(["roots", str(path), "--inputs", str(tmp_path / "x.npy"), "--neuron", "0,0,0"]) == 2


# ---------------------------------------------------------------------------------------------------- ONNX folding
def _onnx_conv_model(tmp_path: Path, per_channel: bool) -> Path:
    """Sub/Div input normalisation (per channel, or varying within a channel), a padded Conv, BatchNorm, Relu."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    mean = (rng.uniform(0.2, 0.6, size=(1, 2, 1, 1)) if per_channel else rng.uniform(0.2, 0.6, size=(1, 2, 4, 4)))
    std = rng.uniform(0.5, 2.0, size=mean.shape)
    inits = [numpy_helper.from_array(v.astype(np.float32), n) for n, v in (
        ("mean", mean), ("std", std), ("W", rng.normal(size=(3, 2, 3, 3))), ("B", rng.normal(size=3)),
        ("g", rng.uniform(0.5, 1.5, 3)), ("beta", rng.normal(size=3)), ("mu", rng.normal(size=3)),
        ("var", rng.uniform(0.5, 2, 3)))]
    nodes = [helper.make_node("Sub", ["x", "mean"], ["s"]), helper.make_node("Div", ["s", "std"], ["n"]),
             helper.make_node("Conv", ["n", "W", "B"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("BatchNormalization", ["c", "g", "beta", "mu", "var"], ["bn"]),
             helper.make_node("Relu", ["bn"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / f"norm_conv_{per_channel}.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("per_channel", [True, False])
def test_onnx_normalisation_and_batchnorm_fold_exactly_and_survive_json(tmp_path: Path, per_channel: bool) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = _onnx_conv_model(tmp_path, per_channel)
    net = dtd.load(path)
    kinds = [n.kind for n in net.nodes]
    # a per-channel normalisation folds into the kernel; one that varies within a channel stays a Scale node
    assert kinds == (["input", "conv", "relu"] if per_channel else ["input", "scale", "conv", "relu"])
    x = np.random.default_rng(2).uniform(0, 1, size=(1, 2, 4, 4)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0].ravel()
    np.testing.assert_allclose(to_float(net.forward(x.astype(np.float64).ravel())), want, rtol=1e-5, atol=1e-5)
    net.save(tmp_path / "n.json")
    back = dtd.load(tmp_path / "n.json")
    assert back.digest() == net.digest()
    assert list(back.forward(x.astype(np.float64).ravel())) == list(net.forward(x.astype(np.float64).ravel()))


# ---------------------------------------------------------------------------------------------------- root exit
def test_graph_root_exit_refuted_replays_and_tampering_is_caught() -> None:
    from dtd_formal.replay import replay_data

    net = _pool_net()
    rule = parse_rule("zplus")
    # the box around (1, 1) of radius 1/10: neuron 0's root changes the pool's winner everywhere near (1, 1)
    box = ([Fraction(9, 10)] * 2, [Fraction(11, 10)] * 2)
    v = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=box, timeout=30)
    assert v.status == "refuted"
    cex = v.counterexample
    assert ("maxpool", "pool", 0) in cex.flipped and cex.input[0] == 1 and cex.input[1] == 1  # the box centre
    data = json.loads(json.dumps({**v.to_json(), "network": net.to_json()}))
    assert replay_data(data).ok
    edited = json.loads(json.dumps(data))
    edited["counterexample"]["step"] = "2"
    assert not replay_data(edited).ok
    edited = json.loads(json.dumps(data))
    edited["counterexample"]["flipped"] = []
    assert not replay_data(edited).ok
    edited = json.loads(json.dumps(data))
    edited["counterexample"]["input"] = ["2", "1"]  # outside the box
    assert not replay_data(edited).ok


def test_graph_root_exit_trivial_proofs_replay() -> None:
    from dtd_formal.replay import replay_data

    net = _pool_net()
    rule = parse_rule("zplus")
    # neuron 1 (z1 = -x0 + x1 + 1/2) is never active on [1, 2] x [0, 1/4]: exact interval bounds prove it
    v = dtd.find_root_exit(net, rule, layer=1, neuron=1, domain=([1, 0], [2, Fraction(1, 4)]), timeout=5)
    assert v.status == "proved" and "never active" in v.certificate["reason"]
    data = json.loads(json.dumps({**v.to_json(), "network": net.to_json()}))
    assert replay_data(data).ok
    data["question"]["high"] = ["2", "3/4"]  # a bigger box: neuron 1 can be active there, the proof is gone
    data["statement"] = dtd.verdict.Question("root-exit", data["question"]["network"], "zplus",
                                             {k: v for k, v in data["question"].items()
                                              if k not in ("kind", "network", "rule")}).statement()
    assert not replay_data(data).ok
    # around (1, 1) neuron 1's root keeps the pool's winner (its root is (x0, x1 - z1)): the interval proof shows
    # it for the whole box, and replay re-runs that proof; on a box where the roots can change the winner the
    # re-run proof fails and the file is rejected
    u = dtd.find_root_exit(net, rule, layer=1, neuron=1, domain=([Fraction(9, 10)] * 2, [Fraction(11, 10)] * 2),
                           timeout=3)
    assert u.status == "proved" and u.method == "interval bounds"
    data = json.loads(json.dumps({**u.to_json(), "network": net.to_json()}))
    assert replay_data(data).ok
    data["question"]["low"] = ["0", "0"]
    data["statement"] = dtd.verdict.Question("root-exit", data["question"]["network"], "zplus",
                                             {k: v for k, v in data["question"].items()
                                              if k not in ("kind", "network", "rule")}).statement()
    assert not replay_data(data).ok
    # a box where the proof fails and sampling finds nothing: Unknown with both reasons
    w = dtd.find_root_exit(net, parse_rule("zplus"), layer=1, neuron=1, domain=([0, 0], [1, 1]), timeout=2)
    assert w.status in ("unknown", "refuted")
    if w.status == "unknown":
        assert "interval proof" in w.reason and "dense networks" in w.reason


def test_counterexample_cli_on_a_conv_graph_with_around_box(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dtd_formal.cli import main
    from dtd_formal.replay import replay_file

    make, shape = MODELS["conv-maxpool"]
    net = dtd.Network.from_torch(make(), input_shape=shape)
    net.save(tmp_path / "net.json")
    x = _input(shape, 5)
    np.save(tmp_path / "x.npy", x)
    z1 = net.layer_values(net.values(x.ravel()), 1)[1]
    j = next(j for j in range(len(z1)) if z1[j] > 0)
    c, yy, xx = net.neuron_coords(1, j)
    rc = main(["counterexample", str(tmp_path / "net.json"), "--around", str(tmp_path / "x.npy"), "--radius",
               "1/100", "--layer", "1", "--neuron", f"{c},{yy},{xx}", "--timeout", "4", "--json", "--no-progress"])
    out = capsys.readouterr().out
    (tmp_path / "report.json").write_text(out)
    report = json.loads(out)
    verdict = report["neurons"][str(j)]
    assert rc in (0, 3) and verdict["status"] in ("refuted", "unknown")
    low = [Fraction(v) for v in verdict["question"]["low"]]
    assert low[0] == Fraction(float(x.ravel()[0])) - Fraction(1, 100)
    assert replay_file(tmp_path / "report.json").ok
    assert main(["counterexample", str(tmp_path / "net.json"), "--around", str(tmp_path / "x.npy")]) == 2


def test_regions_cli_slices_a_conv_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dtd_formal.cli import main

    big = dtd.Network.from_torch(MODELS["conv"][0](), input_shape=MODELS["conv"][1])
    big.save(tmp_path / "conv.json")
    np.save(tmp_path / "x.npy", _input(MODELS["conv"][1], 0))
    assert main(["regions", str(tmp_path / "conv.json"), "--plot", str(tmp_path / "s.png"), "--inputs",
                 str(tmp_path / "x.npy"), "--resolution", "24", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)["record"]
    assert (tmp_path / "s.png").stat().st_size > 1000
    want = dtd.root_regions(big, _input(MODELS["conv"][1], 0).ravel(), parse_rule("zplus"), layers=1).records[0]
    assert rec["neuron"] == want.neuron and rec["leaves_pattern"] == want.leaves_pattern


# ---------------------------------------------------------------------------------------------------- torch import
@pytest.mark.parametrize("name", ["ACASXU_experimental_v2a_1_1.onnx", "cnn_max_mninst3.onnx", "conv_mp1.onnx",
                                  "cifar_deep_kw.onnx", "mnist2x10.onnx"])
def test_torch_and_exact_engines_load_the_same_files(shared_data: Path, name: str) -> None:
    """dtd.torch.from_onnx (Sub folded, auto_pad) and dtd.load explain the same function: float32 torch LRP
    against the exact relevance of the exact graph."""
    import onnx

    path = shared_data / name
    net = dtd.load(path)
    model = dtd.torch.from_onnx(path)
    graph = onnx.load(str(path)).graph
    (inp,) = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    shape = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
    x = np.random.default_rng(3).uniform(0, 1, net.input_size).astype(np.float32)
    xt = torch.tensor(x.reshape(shape))
    y = model(xt).detach().numpy().ravel()
    np.testing.assert_allclose(y, to_float(net.forward(x.astype(np.float64))), rtol=1e-4, atol=1e-4 * np.abs(y).max())
    rule = parse_rule("zplus")
    ref = dtd.torch.lrp(model, xt, rule, output=0).detach().numpy().ravel()
    exact = to_float(dtd.lrp(net, x.astype(np.float64), rule, output=0).input) if net.input_size < 3000 else None
    if exact is not None:
        np.testing.assert_allclose(ref, exact, rtol=1e-3, atol=1e-4 * np.abs(exact).max())


# ---------------------------------------------------------------------------------------------------- properties
@pytest.mark.parametrize("rule_spec", ["zplus", "epsilon:0.1", "gamma:0.25", "wsquare", "zbox:-1,1", "zplus@zennit"])
def test_property_catalogue_on_a_graph_equals_its_dense_twin(rule_spec: str) -> None:
    from dtd_formal.properties import get_property

    make, shape = MODELS["conv"]
    net = dtd.Network.from_torch(make(), input_shape=shape)
    twin = _unrolled_twin(net)
    rule = parse_rule(rule_spec)
    outcomes = set()
    for seed in range(3):
        x = _input(shape, seed).ravel()
        for name in ("conservation", "positivity", "root-on-hyperplane", "root-in-domain", "equals-gradient-x-input"):
            prop = get_property(name)
            if prop.applies(rule) or (name.startswith("root") and rule_spec not in ("zplus", "wsquare", "zbox:-1,1")):
                continue  # receptive-field roots differ from the dense twin's for other directions (see above)
            g, d = prop.evaluate(rule, net, x), prop.evaluate(rule, twin, x)
            assert (g.holds, g.vacuous, g.values.get("layer")) == (d.holds, d.vacuous, d.values.get("layer")), name
            outcomes.add(g.holds)
    assert outcomes  # something was compared


def test_find_violation_on_a_graph_refutes_and_replays() -> None:
    from dtd_formal.replay import replay_data

    make, shape = MODELS["conv"]
    net = dtd.Network.from_torch(make(), input_shape=shape)
    # epsilon absorbs relevance in its stabiliser: conservation fails at (almost) every input
    v = dtd.find_violation(net, parse_rule("epsilon:0.5"), "conservation", domain=(0, 1), timeout=30)
    assert v.status == "refuted"
    data = json.loads(json.dumps({**v.to_json(), "network": net.to_json()}))
    assert replay_data(data).ok
    data["counterexample"]["values"]["absorbed"] = "0"
    assert not replay_data(data).ok
    u = dtd.find_violation(net, parse_rule("zplus"), "positivity", domain=(0, 1), timeout=5, n_samples=4)
    # sampling finds nothing; the complete decision (Z3 on the graph walk) runs and its budget ends it
    assert u.status == "unknown" and "z3" in u.reason.lower() and "dense networks" not in u.reason


# ---------------------------------------------------------------------------------------------------- SymPy
def test_graph_to_sympy_global_and_per_pattern() -> None:
    import sympy as sp

    from dtd_formal.symbolic.translate import BudgetError, evaluate, input_symbols

    g = GraphBuilder((1, 3))
    h = g.relu(g.conv(g.input, [[[1, -2]], [[Fraction(1, 2), 1]]], [Fraction(1, 4), -1]))   # 2 x 2 ReLUs
    p = g.maxpool(h, (2,))                                                                   # 2 windows
    net = g.network(g.dense(g.flatten(p), [[1, -1]], [Fraction(1, 3)]))
    xs = input_symbols(3)
    expr = net.to_sympy(output=0)
    rng = np.random.default_rng(0)
    for _ in range(12):
        x = [Fraction(int(v), 7) for v in rng.integers(-14, 15, size=3)]
        assert evaluate(expr, x, xs) == sp.Rational(str(net.forward(x)[0]))
        affine = net.to_sympy(net.pattern(x), output=0)
        assert sp.Poly(affine, *xs).degree() <= 1
        assert affine.subs(dict(zip(xs, map(sp.Rational, map(str, x))))) == sp.Rational(str(net.forward(x)[0]))
        grad = net.gradient(x)
        assert [affine.coeff(s) for s in xs] == [sp.Rational(str(v)) for v in grad]
    big = dtd.Network.from_torch(MODELS["conv"][0](), input_shape=MODELS["conv"][1])
    with pytest.raises(BudgetError, match="over the budget"):
        big.to_sympy()
    x = _input(MODELS["conv"][1], 1).ravel()
    affine = big.to_sympy(big.pattern(x), output=1)
    assert affine.subs(dict(zip(input_symbols(big.input_size), [sp.Rational(str(Fraction(v))) for v in x]))) == \
        sp.Rational(str(big.forward(x)[1]))


def test_affine_map_variant_is_never_trivially_proved_by_the_layer_scope() -> None:
    # layer 1 has one neuron (z = x), so scope "layer" holds no other neuron; but its root (0) switches off the
    # upper neuron u1 = a - 1/4, and f = u1 + u2 changes from 2a - 1/4 to a: the affine map changes
    g = GraphBuilder((1,))
    h = g.relu(g.dense(g.input, [[1]], [0]))
    h = g.relu(g.dense(h, [[1], [1]], [Fraction(-1, 4), 0]))
    net = g.network(g.dense(h, [[1, 1]], [0]))
    v = dtd.find_root_exit(net, parse_rule("zplus"), layer=1, neuron=0, domain=([Fraction(1, 2)], [1]),
                           scope="layer", variant="affine_map", timeout=10)
    assert v.status == "refuted" and v.counterexample.leaves_affine_map
    p = dtd.find_root_exit(net, parse_rule("zplus"), layer=1, neuron=0, domain=([Fraction(1, 2)], [1]),
                           scope="layer", variant="pattern", timeout=10)
    assert p.status == "proved" and p.certificate["reason"] == "no other ReLU neuron in the scope"


# ---------------------------------------------------------------------------------------------------- pieces
def test_affine_pieces_regions_and_upper_graphs() -> None:
    make, shape = MODELS["conv-maxpool"]
    net = dtd.Network.from_torch(make(), input_shape=shape)
    x = to_fraction_array(_input(shape, 1).ravel())
    pat = net.pattern(x)
    g, c = net.affine_map(pat, output=1)
    assert list(g) == list(net.gradient(x, output=1)) and sum(g * x) + c == net.forward(x)[1]
    small = _pool_net()
    A, b = small.region(small.pattern([1, 1]))
    inside = lambda p: all(sum(r * v for r, v in zip(row, p)) <= rhs for row, rhs in zip(A, b))  # noqa: E731
    # by hand: neuron 0 on (2 x0 >= 0), neuron 1 on (-x0 + x1 + 1/2 >= 0), the pool picks 0 (2 x0 >= -x0 + x1 + 1/2)
    assert inside([1, 1]) and inside([Fraction(1, 2), 1]) and not inside([0, 1]) and not inside([1, 3])
    (A1, c1), (A2, c2) = small.local_affine(small.pattern([1, 1]))
    assert [list(r) for r in A1] == [[2, 0], [-1, 1]] and list(c1) == [0, Fraction(1, 2)]
    up = net.upper(2)
    vals = net.values(x)
    assert list(up.forward(vals[net.layer(2).input_node])) == list(net.forward(x))
    res = dtd.Network.from_torch(MODELS["residual-bn-avgpool"][0](), input_shape=MODELS["residual-bn-avgpool"][1])
    assert res.upper(2).n_layers == res.n_layers - 1  # the skip leaves from layer 2's own input: a valid cut
    g = GraphBuilder((2,))
    r1 = g.relu(g.dense(g.input, [[1, 0], [0, 1]], [0, 0]))
    r2 = g.relu(g.dense(r1, [[1, 1], [1, -1]], [0, 0]))
    skip = g.network(g.dense(g.add(g.dense(r2, [[1, 0], [0, 1]], [0, 0]), r1), [[1, 1]], [0]))
    with pytest.raises(dtd.InputError, match="skip connection"):
        skip.upper(3)


def test_red_team_regressions_scale_bounds_and_replayed_output() -> None:
    from dtd_formal.graph.bounds import interval_bounds
    from dtd_formal.replay import replay_data

    # a Scale node in the interval bounds (the shift once shadowed the loop's node index)
    g = GraphBuilder((2,))
    h = g.scale(g.relu(g.dense(g.input, [[1, 0], [0, 1]], [0, 0])), 2, 1)
    net = g.network(g.dense(h, [[1, -1]], [0]))
    lo, hi = interval_bounds(net, [0, 0], [1, 1])[3]
    assert list(lo) == [1, 1] and list(hi) == [3, 3]  # 2 * [0, 1] + 1
    assert dtd.find_root_exit(net, parse_rule("zplus"), layer=1, neuron=0, domain=(0, 1), timeout=2).status in (
        "refuted", "unknown", "proved")
    # a graph proof whose question names an output the network does not have is malformed, never confirmed
    pool = _pool_net()
    v = dtd.find_root_exit(pool, parse_rule("zplus"), layer=1, neuron=1, domain=([1, 0], [2, Fraction(1, 4)]),
                           timeout=2)
    data = json.loads(json.dumps({**v.to_json(), "network": pool.to_json()}))
    data["question"]["output"] = 7
    data["statement"] = dtd.verdict.Question("root-exit", data["question"]["network"], "zplus",
                                             {k: w for k, w in data["question"].items()
                                              if k not in ("kind", "network", "rule")}).statement()
    with pytest.raises(dtd.InputError, match="output 7 does not exist"):
        replay_data(data)


@pytest.mark.parametrize("fast", [False, True])
def test_exact_scatter_dot_equals_a_textbook_sum(fast: bool) -> None:
    """The exact transposed patch product (shared lcms per row set, one reduction per output) equals the plain
    sum of Fractions y_i = sum_{(j, m): idx[j, m] = i} C[j, m] s_j, with padding (-1), zero rows, rows that share
    their output set (channels) and ones that do not."""
    from dtd_formal.exact import FAST_RATIONAL
    from dtd_formal.graph.operators import scatter_dot
    from dtd_formal.rules.ops import ExactOps

    rng = np.random.default_rng(7)
    n, rows, k = 12, 9, 4
    idx = rng.integers(-1, n, size=(rows, k))
    idx[3] = idx[2]  # two rows with the same outputs (as two channels of a convolution)
    idx[7] = idx[8] = idx[6]  # a group of three (row groups share their lcm; a row set spans several groups)
    num = rng.integers(-50, 50, size=(rows, k))
    C = np.array([[Fraction(int(v), 2 ** int(rng.integers(0, 5))) for v in r] for r in num], dtype=object)
    s = np.array([Fraction(int(rng.integers(-99, 99)), int(rng.integers(1, 10**6))) for _ in range(rows)], dtype=object)
    s[5] = Fraction(0)
    expected = [Fraction(0)] * n
    for j in range(rows):
        for m in range(k):
            if idx[j, m] >= 0:
                expected[idx[j, m]] += C[j, m] * s[j]
    rational = FAST_RATIONAL if fast else Fraction
    ops = ExactOps(rational)
    cast = np.vectorize(lambda v: rational(v.numerator, v.denominator), otypes=[object])
    got = scatter_dot(ops, cast(C), cast(s), idx, n)
    assert [Fraction(int(v.numerator), int(v.denominator)) for v in got] == expected
    assert any(v != 0 for v in expected)

"""Loaders (ONNX, .nnet, torch, JSON) against independent references: onnxruntime, torch, hand computation."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.errors import InputError, UnsupportedLayerError
from dtd_formal.io.nnet import load_nnet
from dtd_formal.io.onnx_io import load_onnx
from dtd_formal.io.torch_io import network_from_torch, network_to_torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
nn = torch.nn
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ACAS = "ACASXU_experimental_v2a_1_1"
F = Fraction


# ---------------------------------------------------------------- helpers
def ort_session(path: Path) -> "ort.InferenceSession":
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def save_model(graph: "onnx.GraphProto", path: Path, opset: int = 13) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def fr(*values: object) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [F(v) for v in values]  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def acas_onnx(shared_data: Path) -> dtd.Network:
    return load_onnx(shared_data / f"{ACAS}.onnx")


@pytest.fixture(scope="module")
def acas_nnet(shared_data: Path) -> dtd.Network:
    return load_nnet(shared_data / f"{ACAS}.nnet")


# ---------------------------------------------------------------- ONNX against onnxruntime
def test_acas_onnx_matches_onnxruntime(shared_data: Path, acas_onnx: dtd.Network) -> None:
    assert acas_onnx.layer_sizes == [5, 50, 50, 50, 50, 50, 50, 5]
    assert not acas_onnx.final_relu
    assert acas_onnx.metadata["input_shape"] == [1, 1, 1, 5]
    assert acas_onnx.metadata["folded_nodes"] == ["input_Sub"]
    assert acas_onnx.metadata["source"].endswith(f"{ACAS}.onnx")
    sess = ort_session(shared_data / f"{ACAS}.onnx")
    rng = np.random.default_rng(7)
    xs = rng.uniform(-0.5, 0.5, size=(150, 5)).astype(np.float32)
    ref = np.array([sess.run(None, {"input": x.reshape(1, 1, 1, 5)})[0].ravel() for x in xs])
    ours = acas_onnx.to_float().forward(xs.astype(np.float64))
    scale = np.abs(ours).max(axis=1, keepdims=True)
    assert np.all(np.abs(ours - ref) <= 1e-4 * scale + 1e-7)
    # the exact forward agrees with the float64 view on a few points
    for x in xs[:3]:
        exact = dtd.to_float(acas_onnx.forward(x))
        np.testing.assert_allclose(exact, acas_onnx.to_float().forward(x.astype(np.float64)), rtol=1e-12, atol=1e-12)


def test_mnist_onnx_matches_onnxruntime(shared_data: Path) -> None:
    net = load_onnx(shared_data / "mnist2x10.onnx")
    assert net.layer_sizes == [784, 10, 10, 10]
    assert net.metadata["input_shape"] == ["batch_size", 1, 28, 28]
    sess = ort_session(shared_data / "mnist2x10.onnx")
    rng = np.random.default_rng(3)
    imgs = rng.uniform(0, 1, size=(16, 1, 28, 28)).astype(np.float32)
    ref = sess.run(None, {"input": imgs})[0]
    ours = net.to_float().forward(imgs.reshape(16, -1).astype(np.float64))
    scale = np.abs(ours).max(axis=1, keepdims=True)
    assert np.all(np.abs(ours - ref) <= 1e-4 * scale + 1e-6)
    # exact weights are the stored float32 values
    w = numpy_helper.to_array(next(i for i in onnx.load(str(shared_data / "mnist2x10.onnx")).graph.initializer
                                   if i.name == "fc2.weight"))
    assert all(net.weight(2)[i, j] == F(float(w[i, j])) for i in range(10) for j in range(10))


# ---------------------------------------------------------------- ACAS Xu: ONNX vs .nnet
def test_acas_onnx_is_the_float32_rounding_of_the_nnet(acas_onnx: dtd.Network, acas_nnet: dtd.Network) -> None:
    """The ONNX file expects normalised inputs (its Sub subtracts zeros, nothing divides) and stores the float32
    roundings of the .nnet's decimal weights: every one of the 13,305 parameters matches, and the two exact
    networks differ only by that rounding (relative 6e-8 per weight)."""
    assert acas_onnx.layer_sizes == acas_nnet.layer_sizes
    assert acas_onnx != acas_nnet  # decimal text vs float32: not the same rationals
    for l in range(1, acas_nnet.n_layers + 1):
        for ours, theirs in ((acas_onnx.weight(l), acas_nnet.weight(l)), (acas_onnx.bias(l), acas_nnet.bias(l))):
            rounded = [F(float(np.float32(float(v)))) for v in theirs.ravel()]
            assert list(ours.ravel()) == rounded, f"layer {l}"
    rng = np.random.default_rng(11)
    xs = rng.uniform(-0.5, 0.5, size=(300, 5))
    diff = np.abs(acas_onnx.to_float().forward(xs) - acas_nnet.to_float().forward(xs))
    assert diff.max() < 5e-6
    for x in [fr("1/7", "-1/3", "1/5", "1/11", "-2/9"), fr("0.3", "0", "-0.45", "0.25", "-0.1")]:
        d = acas_onnx.forward(x) - acas_nnet.forward(x)
        assert 0 < max(abs(v) for v in d) < F(1, 10**6)


def test_nnet_header_read_as_decimal_text(acas_nnet: dtd.Network) -> None:
    md = acas_nnet.metadata
    assert md["normalization_folded"] is False
    assert list(md["input_mins"]) == [0, F("-3.141593"), F("-3.141593"), 100, 0]
    assert list(md["input_maxes"]) == [60760, F("3.141593"), F("3.141593"), 1200, 1200]
    assert list(md["input_means"]) == [F(19791091, 1000), 0, 0, 650, 600]
    assert list(md["input_ranges"]) == [60261, F("6.28318530718"), F("6.28318530718"), 1100, 1200]
    assert md["output_mean"] == F("7.5188840201005975")
    assert md["output_range"] == F(3739499200, 10**7)
    assert acas_nnet.weight(1)[0, 0] == F(540062, 10**7)  # "5.40062e-02", not the float nearest to it
    assert acas_nnet.weight(1)[0, 1] == F("-2.61092")
    low, high = md["input_domain"]  # normalised coordinates: (min - mean) / range
    assert low[3] == F(100 - 650, 1100) and high[3] == F(1200 - 650, 1100)
    assert low[0] == F(-19791091, 60261000)


def test_nnet_fold_normalization_is_exact(shared_data: Path, acas_nnet: dtd.Network) -> None:
    folded = dtd.load(str(shared_data / f"{ACAS}.nnet"), fold_normalization=True)
    md = acas_nnet.metadata
    mu, r = md["input_means"], md["input_ranges"]
    low, high = folded.metadata["input_domain"]
    assert list(low) == list(md["input_mins"]) and list(high) == list(md["input_maxes"])
    for raw in [fr(5000, "0.5", "-1.25", 400, 900), fr("60000.5", "-3", "3.1", 1200, 0)]:
        y_norm = acas_nnet.forward((raw - mu) / r)
        expected = y_norm * md["output_range"] + md["output_mean"]
        assert list(folded.forward(raw)) == list(expected)
        assert list(folded.forward(raw)) != list(y_norm)


# ---------------------------------------------------------------- the tiny 2-2-3 net, by hand
def test_fc_223_nnet_onnx_and_hand(shared_data: Path) -> None:
    a = load_nnet(shared_data / "fc_2-2-3.nnet")
    b = dtd.load(shared_data / "fc_2-2-3.onnx")
    # read from the .nnet text: W1 rows (1, 1), (-1, -1); W2 rows (2, -1), (-1, 1), (1, -1); all biases 0
    assert a == b
    assert list(a.weight(1).ravel()) == [1, 1, -1, -1] and list(a.weight(2).ravel()) == [2, -1, -1, 1, 1, -1]

    def by_hand(x1: Fraction, x2: Fraction) -> list[Fraction]:
        h1, h2 = max(x1 + x2, F(0)), max(-x1 - x2, F(0))
        return [2 * h1 - h2, -h1 + h2, h1 - h2]

    for x in [(F(1, 3), F(1, 5)), (F(-2), F(1, 2)), (F(0), F(0))]:
        assert list(a.forward(list(x))) == by_hand(*x)
        assert list(b.forward(list(x))) == by_hand(*x)
    assert list(a.forward([F(1, 3), F(1, 5)])) == [F(16, 15), F(-8, 15), F(8, 15)]
    assert list(a.forward([F(-2), F(1, 2)])) == [F(-3, 2), F(3, 2), F(-3, 2)]
    sess = ort_session(shared_data / "fc_2-2-3.onnx")
    x = np.array([[0.25, -0.75], [-1.5, 0.5]], dtype=np.float32)
    np.testing.assert_array_equal(sess.run(None, {sess.get_inputs()[0].name: x})[0], b.to_float().forward(x.astype(float)))


# ---------------------------------------------------------------- ONNX: normalisation folding, Gemm attributes
def test_onnx_normalisation_and_gemm_fold_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    m = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    s = np.array([2.0, 0.25, 3.0], dtype=np.float32)
    W1 = rng.normal(size=(4, 3)).astype(np.float32)  # Gemm with transB=1: y = alpha x W1^T + beta c1
    c1 = rng.normal(size=(4,)).astype(np.float32)
    W2 = rng.normal(size=(4, 2)).astype(np.float32)  # MatMul: y = h W2
    b2 = rng.normal(size=(2,)).astype(np.float32)
    k = np.array([10.0, -0.5], dtype=np.float32)
    inits = [numpy_helper.from_array(v, n) for v, n in
             ((m, "m"), (s, "s"), (W1, "W1"), (c1, "c1"), (W2, "W2"), (b2, "b2"), (k, "k"))]
    nodes = [
        helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([1, 3], dtype=np.int64))),
        helper.make_node("Reshape", ["x", "shape"], ["x2"], name="flat"),
        helper.make_node("Sub", ["x2", "m"], ["xm"], name="center"),
        helper.make_node("Div", ["xm", "s"], ["xs"], name="scale"),
        helper.make_node("Gemm", ["xs", "W1", "c1"], ["z1"], name="fc1", transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["z1"], ["h"], name="relu1"),
        helper.make_node("MatMul", ["h", "W2"], ["z2"], name="fc2"),
        helper.make_node("Add", ["z2", "b2"], ["z3"], name="bias2"),
        helper.make_node("Mul", ["k", "z3"], ["y"], name="out_scale"),
    ]
    graph = helper.make_graph(nodes, "norm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    path = save_model(graph, tmp_path / "norm.onnx")
    net = load_onnx(path)
    assert net.layer_sizes == [3, 4, 2] and net.metadata["folded_nodes"] == ["center", "scale"]
    # by hand, in Fractions: W' = alpha W1 / s, b' = beta c1 - W' m; last layer k * (W2^T h + b2)
    for i in range(4):
        row = [F(0.5) * F(float(W1[i, j])) / F(float(s[j])) for j in range(3)]
        assert list(net.weight(1)[i]) == row
        assert net.bias(1)[i] == 2 * F(float(c1[i])) - sum(row[j] * F(float(m[j])) for j in range(3))
    for o in range(2):
        assert list(net.weight(2)[o]) == [F(float(k[o])) * F(float(W2[i, o])) for i in range(4)]
        assert net.bias(2)[o] == F(float(k[o])) * F(float(b2[o]))
    xs = rng.normal(size=(20, 3)).astype(np.float32)
    sess = ort_session(path)
    ref = np.array([sess.run(None, {"x": x.reshape(1, 1, 3)})[0].ravel() for x in xs])
    np.testing.assert_allclose(net.to_float().forward(xs.astype(float)), ref, rtol=1e-4, atol=1e-4)


def test_onnx_final_relu_and_consecutive_affine(tmp_path: Path) -> None:
    """MatMul, MatMul (composed exactly), Relu at the end (final_relu); a constant-first Sub (c - x)."""
    W1 = np.array([[1.0, 2.0], [3.0, -1.0]], dtype=np.float32)
    W2 = np.array([[0.5, 0.0, 1.0], [-2.0, 1.0, 0.25]], dtype=np.float32)
    c = np.array([1.0, -1.0], dtype=np.float32)
    inits = [numpy_helper.from_array(W1, "W1"), numpy_helper.from_array(W2, "W2"), numpy_helper.from_array(c, "c")]
    nodes = [helper.make_node("Sub", ["c", "x"], ["u"], name="flip"),
             helper.make_node("MatMul", ["u", "W1"], ["v"], name="mm1"),
             helper.make_node("MatMul", ["v", "W2"], ["w"], name="mm2"),
             helper.make_node("Relu", ["w"], ["y"], name="r")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    net = load_onnx(save_model(graph, tmp_path / "g.onnx"))
    assert net.final_relu and net.layer_sizes == [2, 3]
    x = [F(1, 3), F(-2, 7)]
    u = [F(1) - x[0], F(-1) - x[1]]
    v = [u[0] * 1 + u[1] * 3, u[0] * 2 + u[1] * (-1)]
    w = [v[0] * F(1, 2) + v[1] * (-2), v[0] * 0 + v[1] * 1, v[0] * 1 + v[1] * F(1, 4)]
    assert list(net.forward(x)) == [max(t, F(0)) for t in w]


def test_onnx_gemm_trans_a_column_input(tmp_path: Path) -> None:
    """Gemm(transA=1) on a (3, 1) column input, alpha = 2, beta = -1, C of shape (1, 4), against onnxruntime."""
    rng = np.random.default_rng(9)
    B = rng.normal(size=(3, 4)).astype(np.float32)
    C = rng.normal(size=(1, 4)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "B", "C"], ["y"], name="g", transA=1, alpha=2.0, beta=-1.0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(B, "B"), numpy_helper.from_array(C, "C")])
    path = save_model(graph, tmp_path / "ta.onnx")
    net = load_onnx(path)
    assert net.layer_sizes == [3, 4]
    assert net.weight(1)[1, 2] == 2 * F(float(B[2, 1])) and net.bias(1)[3] == -F(float(C[0, 3]))
    x = rng.normal(size=(3, 1)).astype(np.float32)
    ref = ort_session(path).run(None, {"x": x})[0].ravel()
    np.testing.assert_allclose(net.to_float().forward(x.ravel().astype(float)), ref, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- torch
def test_from_torch_round_trip() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3, 5), nn.ReLU(inplace=True), nn.Identity(), nn.Dropout(0.5),
                          nn.Linear(5, 2)).eval()
    net = dtd.Network.from_torch(model)
    assert net.layer_sizes == [3, 5, 2] and not net.final_relu
    w1, b2 = model[1].weight.detach().numpy(), model[5].bias.detach().numpy()
    assert all(net.weight(1)[i, j] == F(float(w1[i, j])) for i in range(5) for j in range(3))
    assert all(net.bias(2)[i] == F(float(b2[i])) for i in range(2))
    x = torch.randn(32, 3, dtype=torch.float64)
    ref = model.double()(x).detach().numpy()
    np.testing.assert_allclose(net.to_float().forward(x.numpy()), ref, rtol=1e-12, atol=1e-12)
    back = net.to_torch()
    assert back[0].weight.dtype == torch.float64 and isinstance(back[1], nn.ReLU) and len(back) == 3
    assert dtd.Network.from_torch(back) == net
    assert network_to_torch(net, dtype=torch.float32)[2].weight.dtype == torch.float32
    with_relu = dtd.Network.from_torch(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.ReLU()))
    assert with_relu.final_relu and with_relu.n_layers == 1
    assert [type(m) for m in network_to_torch(with_relu)] == [nn.Linear, nn.ReLU]


def test_from_torch_composes_consecutive_linears_exactly() -> None:
    l1, l2 = nn.Linear(2, 3), nn.Linear(3, 1)
    with torch.no_grad():
        l1.weight.copy_(torch.tensor([[0.5, 1.0], [-2.0, 0.25], [1.0, 1.0]]))
        l1.bias.copy_(torch.tensor([1.0, 0.0, -0.5]))
        l2.weight.copy_(torch.tensor([[1.0, 2.0, -4.0]]))
        l2.bias.copy_(torch.tensor([0.125]))
    net = network_from_torch(nn.Sequential(l1, l2, nn.ReLU()))
    # W = W2 W1 = [0.5 - 4 - 4, 1 + 0.5 - 4], b = W2 b1 + b2 = 1 + 0 + 2 + 0.125
    assert net.n_layers == 1 and net.final_relu
    assert list(net.weight(1)[0]) == [F(-15, 2), F(-5, 2)] and net.bias(1)[0] == F(25, 8)
    assert net.metadata["layer_modules"] == [["0", "1", "2"]]


def test_batchnorm_fold_matches_torch_eval() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    bn = model[1]
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.2, 3.0)
        bn.weight.uniform_(-2, 2)
        bn.bias.uniform_(-1, 1)
    with pytest.raises(InputError, match=r"'1' \(BatchNorm1d\).*training mode.*eval"):
        network_from_torch(model)
    model.eval()
    net = network_from_torch(model)
    assert net.layer_sizes == [4, 6, 3]
    x = torch.randn(64, 4, dtype=torch.float64)
    ref = model.double()(x).detach().numpy()
    np.testing.assert_allclose(net.to_float().forward(x.numpy()), ref, rtol=1e-12, atol=1e-12)
    # the folded weights are exactly the float64 fold s * W, s = gamma / sqrt(var + eps) (numpy float64)
    gamma, var = bn.weight.detach().numpy(), bn.running_var.detach().numpy()
    s = gamma / np.sqrt(var + bn.eps)
    folded = s[:, None] * model[0].weight.detach().numpy()
    assert all(net.weight(1)[i, j] == F(float(folded[i, j])) for i in range(6) for j in range(4))
    with pytest.raises(UnsupportedLayerError, match=r"'2' \(BatchNorm1d\): .*only into a single nn.Linear"):
        network_from_torch(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.BatchNorm1d(3).eval()))
    with pytest.raises(UnsupportedLayerError, match=r"'0' \(ReLU\)"):
        network_from_torch(nn.Sequential(nn.ReLU(), nn.Linear(3, 3)))


def test_state_dict_and_pt_file(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    net = network_from_torch(model.state_dict())
    assert net == network_from_torch(model)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    assert dtd.load(tmp_path / "m.pt") == net
    assert dtd.load(tmp_path / "m.pt", final_relu=True).final_relu
    with pytest.raises(UnsupportedLayerError, match=r"'1\.weight' \(shape \(3,\)\) is not a Linear weight"):
        network_from_torch(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)).state_dict())


# ---------------------------------------------------------------- JSON
def test_json_round_trip_is_exact(tmp_path: Path, acas_nnet: dtd.Network) -> None:
    path = tmp_path / "acas.json"
    acas_nnet.save(path)
    back = dtd.load(str(path))
    assert back == acas_nnet  # decimal (non-dyadic) rationals survive exactly
    assert back.weight(1)[0, 0] == F(540062, 10**7)
    assert back.metadata["format"] == "nnet"


# ---------------------------------------------------------------- errors
def test_unsupported_torch_layer_is_named() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Tanh()), nn.Linear(3, 1))
    with pytest.raises(UnsupportedLayerError, match=r"'1\.0' \(Tanh\)"):
        dtd.Network.from_torch(model)
    with pytest.raises(InputError, match=r"Dropout.*training mode"):
        network_from_torch(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
    with pytest.raises(InputError, match="contradicts"):
        network_from_torch(nn.Sequential(nn.Linear(2, 2)), final_relu=True)


def test_unsupported_onnx_op_is_named(tmp_path: Path) -> None:
    W = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z"], name="mm"),
             helper.make_node("Sigmoid", ["z"], ["y"], name="squash")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [W])
    path = save_model(graph, tmp_path / "sig.onnx")
    with pytest.raises(UnsupportedLayerError, match=r"sig\.onnx: node 'squash' \(Sigmoid\)"):
        dtd.load(path)


def test_onnx_residual_loads_as_graph_and_nan_weights_refused(tmp_path: Path) -> None:
    W = numpy_helper.from_array(np.eye(2, dtype=np.float32), "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z"], name="mm"),
             helper.make_node("Add", ["z", "x"], ["y"], name="skip")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [W])
    residual = load_onnx(save_model(graph, tmp_path / "res.onnx"))
    # a residual Add is an operator of the exact graph: y = x W + x = 2 x, exactly
    assert residual.is_graph
    assert [str(v) for v in residual.forward([Fraction(1, 3), Fraction(-5, 7)])] == ["2/3", "-10/7"]
    bad = numpy_helper.from_array(np.array([[1.0, np.nan], [0.0, 1.0]], dtype=np.float32), "Wbad")
    nodes = [helper.make_node("MatMul", ["x", "Wbad"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [bad])
    with pytest.raises(InputError, match=r"nan\.onnx: node 'mm' \(MatMul\): weight 'Wbad'.*not finite"):
        load_onnx(save_model(graph, tmp_path / "nan.onnx"))


def test_truncated_onnx(tmp_path: Path, shared_data: Path) -> None:
    data = (shared_data / "mnist2x10.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.onnx: not a readable ONNX model") as info:
        dtd.load(path)
    assert not isinstance(info.value, UnsupportedLayerError)
    path.write_bytes(b"this is not a protobuf\n" * 4)
    with pytest.raises(InputError, match=r"cut\.onnx"):
        dtd.load(path)


def _fc_text(shared_data: Path) -> list[str]:
    return (shared_data / "fc_2-2-3.nnet").read_text().splitlines()


def test_nnet_wrong_count_and_nan(tmp_path: Path, shared_data: Path) -> None:
    lines = _fc_text(shared_data)
    # line 13 is layer 2's first weight row "2.0,-1.0,": drop a value
    assert lines[12] == "2.0,-1.0,"
    short = lines.copy()
    short[12] = "2.0,"
    path = tmp_path / "short.nnet"
    path.write_text("\n".join(short) + "\n")
    with pytest.raises(InputError, match=r"short\.nnet: line 13 \(layer 2 weight row 0\): expected 2 values, found 1"):
        dtd.load(path)
    path.write_text("\n".join(lines[:-2]) + "\n")  # two bias lines missing
    with pytest.raises(InputError, match=r"short\.nnet: file ends before the layer 2 bias 1"):
        load_nnet(path)
    path.write_text("\n".join(lines + ["1.0,"]) + "\n")
    with pytest.raises(InputError, match=r"short\.nnet: line 19: unexpected data"):
        load_nnet(path)
    nan = lines.copy()
    assert nan[10] == "0.0,"  # line 11: layer 1, bias 0
    nan[10] = "NaN,"
    path = tmp_path / "nan.nnet"
    path.write_text("\n".join(nan) + "\n")
    with pytest.raises(InputError, match=r"nan\.nnet: line 11 \(layer 1 bias 0\): 'NaN' is not a finite number"):
        dtd.load(path)


def test_missing_path_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere\.onnx: no such file"):
        dtd.load(tmp_path / "nowhere.onnx")
    odd = tmp_path / "model.h5"
    odd.write_bytes(b"\x89HDF")
    with pytest.raises(InputError, match=r"model\.h5: unknown model format '\.h5'"):
        dtd.load(odd)


def test_cli_malformed_file_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 10)
    proc = subprocess.run([sys.executable, "-m", "dtd_formal", "roots", str(bad), "--input", "0.1,0.2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "broken.onnx" in err[0] and "Traceback" not in proc.stderr
    assert proc.stdout == ""

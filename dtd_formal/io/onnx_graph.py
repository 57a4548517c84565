r"""ONNX loader for network graphs: convolutions, pools, residual sums and index maps become an exact
:class:`~dtd_formal.graph.network.GraphNetwork`.

The graph is *read*, never executed. Constants (initializers, ``Constant``) are converted exactly from their stored
floats; exporter plumbing on constants (``Shape`` of a tensor, ``Gather``, ``Unsqueeze``, ``Squeeze``, ``Concat``,
``Cast`` of shape values) is evaluated at load, so a PyTorch export's computed ``Reshape`` target folds away.
Tensors that depend on the input become graph nodes:

- ``Conv`` (1-D/2-D; ``pads``, ``auto_pad`` NOTSET/VALID/SAME_UPPER/SAME_LOWER, ``strides``, ``dilations``,
  ``group``, bias) and ``Gemm``/``MatMul`` by a constant: the layers;
- ``Relu``; ``MaxPool`` (``ceil_mode=0``, dilation 1); ``AveragePool`` (``count_include_pad``),
  ``GlobalAveragePool``;
- ``Add`` of two input-dependent tensors (a residual sum; ``Sub`` as a sum with the negated second operand);
- ``Add``/``Sub``/``Mul``/``Div`` by constants and ``BatchNormalization`` (eval): an elementwise affine map
  :math:`y = d \odot x + c`. It is folded exactly into the layer that reads it (:math:`w'_{jm} = w_{jm} d_{i}`,
  :math:`b'_j = b_j + \sum_m w_{jm} c_i` over the valid positions i of the receptive field; padding stays zero, as
  in the graph) or into the layer it follows (rows scaled, bias shifted), else kept as a :class:`Scale` node.
  BatchNormalization's :math:`\gamma / \sqrt{\sigma^2 + \epsilon}` is computed in float64 (the square root is not
  rational): the exact graph is the folded float network;
- ``Flatten``, ``Reshape``, ``Squeeze``, ``Unsqueeze``, ``Identity``, ``Dropout``: shape only (the C-order flat
  values do not move); ``Transpose``: an index map; ``Concat`` of input-dependent tensors.

The leading dimension is the batch (read as 1 when symbolic); TensorFlow's NHWC exports with their Transposes load
as they are. Anything else raises :class:`~dtd_formal.errors.UnsupportedLayerError` naming the file, node and
operator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UnsupportedLayerError
from ..exact import to_fraction_array
from ..graph.build import GraphBuilder
from ..graph.network import GraphNetwork
from ..graph.operators import Gather, size
from .onnx_io import onnx_pads, ordered_nodes

GRAPH_OPS = ("Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm", "MatMul", "Add", "Sub", "Mul",
             "Div", "BatchNormalization", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout",
             "Transpose", "Concat", "Constant", "Shape", "Gather", "Cast")


@dataclass
class _Var:
    """An input-dependent tensor: its node, its ONNX shape (batch first), and a pending elementwise map
    y = d * x + c (flat over the node's values; None = identity) not yet materialised."""

    node: int
    shape: tuple[int, ...]
    d: np.ndarray | None = None
    c: np.ndarray | None = None

    @property
    def pending(self) -> bool:
        return self.d is not None


def _node_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The graph node's shape: the ONNX shape without its batch dimension of 1."""
    return tuple(shape[1:]) if len(shape) > 1 and shape[0] == 1 else tuple(shape)


class _GraphReader:
    def __init__(self, path: Path, model: Any) -> None:
        self.path, self.model = path, model
        self.values: dict[str, Any] = {}
        self.consumers: dict[str, int] = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers[name] = self.consumers.get(name, 0) + 1
        self.g: GraphBuilder | None = None
        self.layer_output: dict[int, str] = {}  # layer node -> the tensor it produced

    # ---------------------------------------------------------------- plumbing
    def where(self, node: Any) -> str:
        return f"{self.path}: node {node.name or '(unnamed)'!r} ({node.op_type})"

    def unsupported(self, node: Any, why: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(f"{self.where(node)}: {why}")

    def attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def operand(self, node: Any, i: int) -> Any:
        if i >= len(node.input) or node.input[i] == "":
            raise InputError(f"{self.where(node)}: missing input {i}")
        if node.input[i] not in self.values:
            raise InputError(f"{self.where(node)}: input {node.input[i]!r} is not defined before this node")
        return self.values[node.input[i]]

    def const(self, node: Any, i: int) -> np.ndarray:
        v = self.operand(node, i)
        if isinstance(v, _Var):
            raise self.unsupported(node, f"input {i} must be a constant, it depends on the network input")
        return np.asarray(v)

    def exact(self, node: Any, arr: np.ndarray, what: str) -> np.ndarray:
        if arr.dtype.kind not in "fiu":
            raise InputError(f"{self.where(node)}: {what} has unsupported data type {arr.dtype}")
        return to_fraction_array(arr, f"{self.where(node)}: {what}")

    def materialise(self, v: _Var) -> _Var:
        """A pending elementwise map becomes a Scale node."""
        if not v.pending:
            return v
        assert self.g is not None
        shape = self.g.shape(v.node)
        k = self.g.scale(v.node, v.d.reshape(shape), v.c.reshape(shape))  # type: ignore[union-attr]
        return _Var(k, v.shape)

    # ---------------------------------------------------------------- the walk
    def run(self) -> GraphNetwork:
        from onnx import numpy_helper

        graph = self.model.graph
        for init in graph.initializer:
            try:
                self.values[init.name] = numpy_helper.to_array(init, base_dir=str(self.path.parent))
            except Exception as exc:  # noqa: BLE001
                raise InputError(f"{self.path}: cannot read initializer {init.name!r} ({exc})") from None
        inputs = [i for i in graph.input if i.name not in self.values]
        if len(inputs) != 1:
            raise InputError(f"{self.path}: expected exactly one graph input besides the initializers, found "
                             f"{[i.name for i in inputs]}")
        if len(graph.output) != 1:
            raise InputError(f"{self.path}: expected exactly one graph output, found {len(graph.output)}")
        inp = inputs[0]
        dims = []
        for k, d in enumerate(inp.type.tensor_type.shape.dim):
            dims.append(int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else (1 if k == 0 else None))
        if not dims or any(d is None for d in dims):
            raise InputError(f"{self.path}: input {inp.name!r} needs a fixed shape (only the batch may be symbolic)")
        shape = tuple(int(d) for d in dims)  # type: ignore[arg-type]
        self.g = GraphBuilder(_node_shape(shape), inp.name)
        self.values[inp.name] = _Var(0, shape)
        for node in ordered_nodes(graph, set(self.values), self.path):
            if node.domain not in ("", "ai.onnx"):
                raise self.unsupported(node, f"operator domain {node.domain!r} is not supported")
            if node.op_type not in GRAPH_OPS:
                raise self.unsupported(node, f"operator {node.op_type} is not supported (the exact engine reads "
                                             f"{', '.join(GRAPH_OPS)})")
            out = getattr(self, f"op_{node.op_type.lower()}")(node)
            self.values[node.output[0]] = out
        name = graph.output[0].name
        out = self.values.get(name)
        if not isinstance(out, _Var):
            raise InputError(f"{self.path}: graph output {name!r} does not depend on the input")
        out = self.materialise(out)
        metadata = {"source": str(self.path), "format": "onnx", "input_name": inp.name, "input_shape": list(shape),
                    "output_name": name, "output_shape": list(out.shape)}
        return self.g.network(out.node, metadata)

    # ---------------------------------------------------------------- constants
    def op_constant(self, node: Any) -> np.ndarray:
        from onnx import numpy_helper

        a = self.attrs(node)
        if "value" in a:
            return numpy_helper.to_array(a["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                           ("value_ints", np.int64)):
            if key in a:
                return np.asarray(a[key], dtype=dtype)
        raise self.unsupported(node, f"Constant with attributes {sorted(a)} is not supported")

    def op_shape(self, node: Any) -> np.ndarray:
        x = self.operand(node, 0)
        return np.asarray(x.shape if isinstance(x, _Var) else np.shape(x), dtype=np.int64)

    def op_gather(self, node: Any) -> np.ndarray:
        data, ind = self.const(node, 0), self.const(node, 1)
        return np.take(data, ind.astype(np.int64), axis=int(self.attrs(node).get("axis", 0)))

    def op_cast(self, node: Any) -> Any:
        x = self.operand(node, 0)
        if isinstance(x, _Var):
            raise self.unsupported(node, "Cast of an input-dependent tensor")
        return np.asarray(x)

    def _axes(self, node: Any) -> list[int] | None:
        a = self.attrs(node)
        if "axes" in a:
            return [int(v) for v in a["axes"]]
        if len(node.input) > 1 and node.input[1]:
            return [int(v) for v in self.const(node, 1).ravel()]
        return None

    # ---------------------------------------------------------------- shape-only
    def _reshaped(self, node: Any, x: Any, shape: tuple[int, ...]) -> Any:
        if not isinstance(x, _Var):
            return np.reshape(x, shape)
        if math.prod(shape) != math.prod(x.shape):
            raise InputError(f"{self.where(node)}: cannot reshape {x.shape} to {shape}")
        assert self.g is not None
        if _node_shape(shape) == self.g.shape(x.node):
            return _Var(x.node, shape, x.d, x.c)
        k = self.g.reshape(x.node, _node_shape(shape), node.name or None)
        return _Var(k, shape, x.d, x.c)  # the flat order is unchanged: a pending map moves along

    def op_identity(self, node: Any) -> Any:
        return self.operand(node, 0)

    op_dropout = op_identity

    def op_flatten(self, node: Any) -> Any:
        x = self.operand(node, 0)
        shape = x.shape if isinstance(x, _Var) else np.shape(x)
        axis = int(self.attrs(node).get("axis", 1))
        axis += len(shape) if axis < 0 else 0
        return self._reshaped(node, x, (math.prod(shape[:axis]), math.prod(shape[axis:])))

    def op_reshape(self, node: Any) -> Any:
        x = self.operand(node, 0)
        target = [int(v) for v in self.const(node, 1).ravel()]
        shape = x.shape if isinstance(x, _Var) else tuple(np.shape(x))
        new = [shape[k] if t == 0 and not self.attrs(node).get("allowzero", 0) else t for k, t in enumerate(target)]
        if new.count(-1) > 1:
            raise InputError(f"{self.where(node)}: target shape {target} has more than one -1")
        if -1 in new:
            rest = math.prod(v for v in new if v != -1)
            new[new.index(-1)] = math.prod(shape) // rest if rest else 0
        return self._reshaped(node, x, tuple(new))

    def op_squeeze(self, node: Any) -> Any:
        x = self.operand(node, 0)
        shape = x.shape if isinstance(x, _Var) else np.shape(x)
        axes = self._axes(node)
        axes = [a + len(shape) if a < 0 else a for a in axes] if axes is not None else [k for k, s in enumerate(shape)
                                                                                       if s == 1]
        return self._reshaped(node, x, tuple(s for k, s in enumerate(shape) if k not in axes))

    def op_unsqueeze(self, node: Any) -> Any:
        x = self.operand(node, 0)
        shape = list(x.shape if isinstance(x, _Var) else np.shape(x))
        axes = self._axes(node) or []
        n = len(shape) + len(axes)
        for a in sorted(a + n if a < 0 else a for a in axes):
            shape.insert(a, 1)
        return self._reshaped(node, x, tuple(shape))

    def op_transpose(self, node: Any) -> Any:
        x = self.operand(node, 0)
        perm = self.attrs(node).get("perm")
        if not isinstance(x, _Var):
            return np.transpose(x, perm)
        perm = list(perm) if perm is not None else list(reversed(range(len(x.shape))))
        new_shape = tuple(x.shape[p] for p in perm)
        assert self.g is not None
        full = np.arange(math.prod(x.shape)).reshape(x.shape).transpose(perm)
        src = full.reshape(-1)
        k = self.g._add(Gather(node.name or f"transpose{len(self.g.nodes)}", [x.node], _node_shape(new_shape), src))
        d = None if x.d is None else x.d[src]
        c = None if x.c is None else x.c[src]
        return _Var(k, new_shape, d, c)

    def op_concat(self, node: Any) -> Any:
        vals = [self.operand(node, i) for i in range(len(node.input))]
        axis = int(self.attrs(node).get("axis", 0))
        if not any(isinstance(v, _Var) for v in vals):
            return np.concatenate([np.asarray(v) for v in vals], axis=axis)
        if not all(isinstance(v, _Var) for v in vals):
            raise self.unsupported(node, "Concat of input-dependent tensors with constants")
        vals = [self.materialise(v) for v in vals]
        axis += len(vals[0].shape) if axis < 0 else 0
        if vals[0].shape[0] != 1 or axis == 0:
            raise self.unsupported(node, "Concat along the batch dimension")
        assert self.g is not None
        k = self.g.concat([v.node for v in vals], axis - 1, node.name or None)
        shape = list(vals[0].shape)
        shape[axis] = sum(v.shape[axis] for v in vals)
        return _Var(k, tuple(shape))

    # ---------------------------------------------------------------- layers
    def _fold_input(self, x: _Var, layer: int) -> None:
        """Fold x's pending map into the layer that now reads it (exact)."""
        if not x.pending:
            return
        assert self.g is not None
        op = self.g.nodes[layer]
        d, c = x.d, x.c
        if op.kind == "dense":
            op.b = op.b + op.W.dot(c)  # type: ignore[attr-defined]
            op.W = op.W * d[None, :]  # type: ignore[attr-defined]
        else:  # conv: d is constant per input channel (checked by the caller), so the kernel absorbs it
            idx = op.idx  # type: ignore[attr-defined]
            valid = idx >= 0
            cg = np.where(valid, np.concatenate([c, [Fraction(0)]])[np.where(valid, idx, len(c))], Fraction(0))
            bias = op.b + (op.weights * cg).sum(axis=1)  # type: ignore[attr-defined]  # (padding reads 0, not c)
            plane = size(op.in_shape[1:])  # type: ignore[attr-defined]
            self.g.nodes[layer] = op.rescaled(in_scale=d[::plane], bias=bias)  # type: ignore[attr-defined]

    def op_conv(self, node: Any) -> _Var:
        x = self.operand(node, 0)
        if not isinstance(x, _Var):
            raise self.unsupported(node, "Conv of a constant")
        W = self.const(node, 1)
        B = self.const(node, 2) if len(node.input) > 2 and node.input[2] else None
        a = self.attrs(node)
        d = W.ndim - 2
        in_shape = _node_shape(x.shape)
        if len(x.shape) != d + 2 or x.shape[0] != 1:
            raise self.unsupported(node, f"a {d}-D convolution of a tensor of shape {x.shape}")
        strides = list(a.get("strides", [1] * d))
        dil = list(a.get("dilations", [1] * d))
        kshape = list(a.get("kernel_shape", W.shape[2:]))
        if kshape != list(W.shape[2:]):
            raise InputError(f"{self.where(node)}: kernel_shape {kshape} differs from the weight's {W.shape[2:]}")
        pads = self._pads(node, a, in_shape[1:], kshape, strides, dil)
        assert self.g is not None
        if x.pending and not _per_channel(x.d, size(in_shape[1:])):
            x = self.materialise(x)  # a scale that varies within a channel stays an exact Scale node
        k = self.g.conv(x.node, self.exact(node, W, "weight"), None if B is None else self.exact(node, B, "bias"),
                        strides, pads, dil, int(a.get("group", 1)), node.name or None)
        self._fold_input(x, k)
        return _Var(k, (1,) + self.g.shape(k))

    def _pads(self, node: Any, a: dict[str, Any], spatial: tuple[int, ...], kernel: list[int], strides: list[int],
              dilations: list[int]) -> list[int]:
        pads = onnx_pads(a, spatial, kernel, strides, dilations)
        if pads is None:
            raise self.unsupported(node, f"auto_pad {a.get('auto_pad')!r}")
        return pads

    def _dense(self, node: Any, x: _Var, M: np.ndarray, bias: np.ndarray, out_shape: tuple[int, ...]) -> _Var:
        """A dense layer reading x (one sample row): M (n_out, n_in) exact."""
        assert self.g is not None
        k = self.g.dense(x.node, M, bias, node.name or None)
        self._fold_input(x, k)
        return _Var(k, out_shape)

    def _row(self, node: Any, x: Any) -> int:
        if not isinstance(x, _Var) or len(x.shape) == 0 or math.prod(x.shape[:-1]) != 1:
            raise self.unsupported(node, f"only one row per sample is supported (shape {getattr(x, 'shape', None)})")
        return x.shape[-1]

    def op_matmul(self, node: Any) -> _Var:
        x = self.operand(node, 0)
        n = self._row(node, x)
        W = self.const(node, 1)
        if W.ndim != 2 or W.shape[0] != n:
            raise InputError(f"{self.where(node)}: weight of shape {W.shape} does not fit rows of {n}")
        M = self.exact(node, W, "weight").T
        zero = np.array([Fraction(0)] * W.shape[1], dtype=object)
        return self._dense(node, x, M, zero, tuple(x.shape[:-1]) + (W.shape[1],))

    def op_gemm(self, node: Any) -> _Var:
        a = self.attrs(node)
        x = self.operand(node, 0)
        if int(a.get("transA", 0)):
            raise self.unsupported(node, "transA on the input-dependent operand")
        n = self._row(node, x)
        W = self.const(node, 1)
        Bp = W.T if int(a.get("transB", 0)) else W
        if W.ndim != 2 or Bp.shape[0] != n:
            raise InputError(f"{self.where(node)}: B of shape {W.shape} does not fit rows of {n}")
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        M = self.exact(node, Bp, "B").T * Fraction(alpha)
        m = Bp.shape[1]
        c = np.array([Fraction(0)] * m, dtype=object)
        if len(node.input) > 2 and node.input[2]:
            C = np.ascontiguousarray(np.broadcast_to(self.const(node, 2), (1, m))).ravel()
            c = self.exact(node, C, "C") * Fraction(beta)
        return self._dense(node, x, M, c, (1, m))

    # ---------------------------------------------------------------- nonlinear, pools
    def op_relu(self, node: Any) -> _Var:
        x = self.operand(node, 0)
        if not isinstance(x, _Var):
            raise self.unsupported(node, "Relu of a constant")
        x = self.materialise(x)
        assert self.g is not None
        return _Var(self.g.relu(x.node, node.name or None), x.shape)

    def _window(self, node: Any, x: _Var) -> tuple[list[int], list[int], list[int]]:
        a = self.attrs(node)
        spatial = _node_shape(x.shape)[1:]
        kernel = list(a["kernel_shape"])
        d = len(kernel)
        strides = list(a.get("strides", [1] * d))
        if any(v != 1 for v in a.get("dilations", [1] * d)):
            raise self.unsupported(node, "pooling with dilation")
        if int(a.get("storage_order", 0)):
            raise self.unsupported(node, "storage_order=1")
        pads = self._pads(node, a, spatial, kernel, strides, [1] * d)
        if int(a.get("ceil_mode", 0)):  # extra end padding so that floor division gives the ceil-mode size
            for i in range(d):
                span = spatial[i] + pads[i] + pads[d + i] - kernel[i]
                out = -(-span // strides[i]) + 1
                if (out - 1) * strides[i] >= spatial[i] + pads[i]:  # the last window must start inside the input
                    out -= 1
                pads[d + i] += max(0, (out - 1) * strides[i] + kernel[i] - (spatial[i] + pads[i] + pads[d + i]))
        return kernel, strides, pads

    def op_maxpool(self, node: Any) -> _Var:
        x = self.materialise(self.operand(node, 0))
        if len(node.output) > 1 and node.output[1]:
            raise self.unsupported(node, "the Indices output of MaxPool")
        kernel, strides, pads = self._window(node, x)
        assert self.g is not None
        k = self.g.maxpool(x.node, kernel, strides, pads, node.name or None)
        return _Var(k, (1,) + self.g.shape(k))

    def op_averagepool(self, node: Any) -> _Var:
        x = self.materialise(self.operand(node, 0))
        kernel, strides, pads = self._window(node, x)
        assert self.g is not None
        k = self.g.avgpool(x.node, kernel, strides, pads, bool(self.attrs(node).get("count_include_pad", 0)),
                           node.name or None)
        return _Var(k, (1,) + self.g.shape(k))

    def op_globalaveragepool(self, node: Any) -> _Var:
        x = self.materialise(self.operand(node, 0))
        assert self.g is not None
        k = self.g.avgpool(x.node, None, None, None, False, node.name or None)
        return _Var(k, (1,) + self.g.shape(k))

    # ---------------------------------------------------------------- elementwise
    def _pending(self, node: Any, v: _Var, d: np.ndarray | None, c: np.ndarray | None) -> _Var:
        """Compose y = d * v + c with v's pending map; fold into the layer that produced v when v is its only use."""
        assert self.g is not None
        n = size(self.g.shape(v.node))
        one, zero = np.array([Fraction(1)] * n, dtype=object), np.array([Fraction(0)] * n, dtype=object)
        d = one if d is None else d
        c = zero if c is None else c
        producer = self.g.nodes[v.node]
        tensor = node.input[0] if isinstance(self.values.get(node.input[0]), _Var) else node.input[1]
        if not v.pending and producer.kind in ("dense", "conv") and self.consumers.get(tensor, 0) == 1 \
                and len(self.g.nodes) - 1 == v.node:
            if producer.kind == "dense":
                producer.W = producer.W * d[:, None]  # type: ignore[attr-defined]
                producer.b = producer.b * d + c  # type: ignore[attr-defined]
                return _Var(v.node, v.shape)
            n_pos = size(producer.shape[1:])
            if _per_channel(d, n_pos):  # BatchNorm after a conv: the kernel absorbs the per-channel scale
                self.g.nodes[v.node] = producer.rescaled(out_scale=d[::n_pos],  # type: ignore[attr-defined]
                                                         bias=producer.b * d + c)  # type: ignore[attr-defined]
                return _Var(v.node, v.shape)
        if v.pending:
            d, c = v.d * d, v.c * d + c  # type: ignore[operator]
        return _Var(v.node, v.shape, d, c)

    def _broadcast(self, node: Any, k: np.ndarray, v: _Var, what: str) -> np.ndarray:
        try:
            full = np.broadcast_to(k, v.shape)
        except ValueError:
            raise InputError(f"{self.where(node)}: constant of shape {k.shape} does not broadcast to {v.shape}") from None
        return self.exact(node, np.ascontiguousarray(full).ravel(), what)

    def _elementwise(self, node: Any, kind: str) -> Any:
        x, y = self.operand(node, 0), self.operand(node, 1)
        if isinstance(x, _Var) and isinstance(y, _Var):
            if kind not in ("Add", "Sub"):
                raise self.unsupported(node, f"{kind} of two input-dependent tensors is not piecewise linear")
            if x.shape != y.shape:
                raise self.unsupported(node, f"{kind} of shapes {x.shape} and {y.shape} (no broadcasting)")
            x, y = self.materialise(x), self.materialise(y)
            assert self.g is not None
            if kind == "Sub":
                y = _Var(self.g.scale(y.node, -1, 0), y.shape)
            return _Var(self.g.add(x.node, y.node, node.name or None), x.shape)
        if not isinstance(x, _Var) and not isinstance(y, _Var):
            a, b = np.asarray(x), np.asarray(y)
            return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[kind](a, b)
        var_first = isinstance(x, _Var)
        v, k = (x, np.asarray(y)) if var_first else (y, np.asarray(x))
        K = self._broadcast(node, k, v, "constant")
        n = len(K)
        if kind == "Add":
            return self._pending(node, v, None, K)
        if kind == "Sub":
            if var_first:
                return self._pending(node, v, None, -K)
            return self._pending(node, v, np.array([Fraction(-1)] * n, dtype=object), K)
        if kind == "Mul":
            return self._pending(node, v, K, None)
        if not var_first:
            raise self.unsupported(node, "division by an input-dependent tensor is not affine")
        if any(val == 0 for val in K):
            raise InputError(f"{self.where(node)}: division by zero")
        return self._pending(node, v, np.array([1 / val for val in K], dtype=object), None)

    def op_add(self, node: Any) -> Any:
        return self._elementwise(node, "Add")

    def op_sub(self, node: Any) -> Any:
        return self._elementwise(node, "Sub")

    def op_mul(self, node: Any) -> Any:
        return self._elementwise(node, "Mul")

    def op_div(self, node: Any) -> Any:
        return self._elementwise(node, "Div")

    def op_batchnormalization(self, node: Any) -> Any:
        x = self.operand(node, 0)
        if not isinstance(x, _Var):
            raise self.unsupported(node, "BatchNormalization of a constant")
        if int(self.attrs(node).get("training_mode", 0)) or (len(node.output) > 1 and any(node.output[1:])):
            raise self.unsupported(node, "BatchNormalization in training mode")
        gamma, beta, mean, var = (self.const(node, i).astype(np.float64) for i in range(1, 5))
        eps = float(self.attrs(node).get("epsilon", 1e-5))
        s = gamma / np.sqrt(var + eps)  # float64: the folded float network (the square root is not rational)
        shift = beta - s * mean
        shape = x.shape
        per = (1, -1) + (1,) * (len(shape) - 2)
        return self._pending(node, x, self._broadcast(node, s.reshape(per), x, "scale"),
                             self._broadcast(node, shift.reshape(per), x, "shift"))


def _per_channel(d: np.ndarray, plane: int) -> bool:
    """Whether a flat per-position array (channels of ``plane`` positions each) is constant within every channel."""
    return all(v == d[c * plane] for c in range(len(d) // plane) for v in d[c * plane:(c + 1) * plane])


def load_onnx_graph(path: str | Path, model: Any = None) -> GraphNetwork:
    """Read an ONNX model as an exact :class:`GraphNetwork` (module docstring)."""
    p = Path(path)
    if model is None:
        import onnx

        try:
            model = onnx.load(str(p))
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    return _GraphReader(p, model).run()


__all__ = ["load_onnx_graph", "GRAPH_OPS"]

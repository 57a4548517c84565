r"""ONNX loader: a chain of affine operators and ReLUs becomes an exact :class:`~dtd_formal.network.Network`.

The graph is *read*, never executed: each node is interpreted symbolically. Every tensor that depends on the
graph input is kept as an exact affine function of the last ReLU output (or of the input),

.. math::  t = A\,a + c \quad\text{(dense)} \qquad\text{or}\qquad t = d \odot a + c \quad\text{(diagonal)},

with A, c, d exact rationals (numpy object arrays of :class:`~fractions.Fraction`); constants (initializers,
``Constant`` nodes) are converted exactly from their stored float16/32/64 values. The operators and their maps:

- ``MatMul(t, W)``: :math:`t \mapsto W^\top t` (per sample, t a row); ``Gemm(t, B, C)``:
  :math:`t \mapsto \alpha B'^\top t + \beta C` with :math:`B' = B^\top` when ``transB`` (``transA`` allowed
  when t is a column of one sample).
- ``Add``/``Sub``/``Mul``/``Div`` with one constant operand (broadcast to t's shape, never enlarging it):
  shifts and diagonal scalings. A normalisation :math:`x \mapsto (x - m)/s` before a layer W, b composes
  exactly: :math:`W' = W \operatorname{diag}(1/s),\ b' = b - W' m`.
- ``Flatten``, ``Reshape``, ``Identity``: C-order relabelling, the map is unchanged.
- Graph inputs that have an initializer are constants (their stored values); exactly one other input is allowed.
- ``Relu``: closes the current map as one layer of the network; a second ``Relu`` right after is idempotent.
  Two affine operators with no ReLU between them compose exactly into one layer.

The sample: the whole input tensor is one sample (the network's input is its C-order flattening); a symbolic
first dimension (the batch) is read as 1.
Anything else (another operator, a non-default domain, two tensors that both depend on the input meeting in one
node) raises :class:`~dtd_formal.errors.UnsupportedLayerError` naming the file, node and operator; a file that
cannot be parsed raises :class:`~dtd_formal.errors.InputError` naming the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UnsupportedLayerError
from ..exact import ExactArray, to_fraction_array
from ..network import Network

SUPPORTED_OPS = (
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Flatten", "Reshape", "Identity", "Constant",
)

#: operators only the graph reader (:mod:`dtd_formal.io.onnx_graph`) reads: their files load as network graphs
GRAPH_ONLY_OPS = ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "Transpose", "BatchNormalization", "Concat",
                  "Shape", "Gather", "Unsqueeze", "Squeeze")

_ONE, _ZERO = Fraction(1), Fraction(0)


def _frac_vector(values: list[Fraction]) -> ExactArray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@dataclass(frozen=True)
class _Affine:
    r"""An exact affine map on flat vectors: :math:`y = A x + c` when ``A`` is set, else :math:`y = d \odot x + c`.

    ``d is None`` means all ones and ``c is None`` means all zeros (the identity needs no arrays at all).
    """

    n_in: int
    n_out: int
    A: ExactArray | None = None
    d: ExactArray | None = None
    c: ExactArray | None = None

    @classmethod
    def identity(cls, n: int) -> "_Affine":
        return cls(n, n)

    def is_identity(self) -> bool:
        return (
            self.A is None
            and (self.d is None or all(v == 1 for v in self.d))
            and (self.c is None or all(v == 0 for v in self.c))
        )

    def shifted(self, k: ExactArray) -> "_Affine":
        """y + k (k a flat exact vector of length n_out)."""
        c = k.copy() if self.c is None else self.c + k
        return _Affine(self.n_in, self.n_out, self.A, self.d, c)

    def scaled(self, k: ExactArray) -> "_Affine":
        """k ⊙ y (entrywise, k of length n_out)."""
        c = None if self.c is None else self.c * k
        if self.A is not None:
            return _Affine(self.n_in, self.n_out, self.A * k[:, None], None, c)
        d = k.copy() if self.d is None else self.d * k
        return _Affine(self.n_in, self.n_out, None, d, c)

    def then_matrix(self, M: ExactArray) -> "_Affine":
        """M y: the composition x -> M (this x), exact; M has shape (m, n_out)."""
        if self.A is not None:
            A = M.dot(self.A)
        elif self.d is not None:
            A = M * self.d[None, :]
        else:
            A = M.copy()
        c = None if self.c is None else M.dot(self.c)
        return _Affine(self.n_in, M.shape[0], A, None, c)

    def dense(self) -> tuple[ExactArray, ExactArray]:
        """(A, c) as full exact arrays."""
        if self.A is not None:
            A = self.A
        else:
            A = np.empty((self.n_out, self.n_in), dtype=object)
            A.fill(_ZERO)
            diag = self.d if self.d is not None else [_ONE] * self.n_out
            for i, v in enumerate(diag):
                A[i, i] = v
        c = self.c if self.c is not None else _frac_vector([_ZERO] * self.n_out)
        return A, c


@dataclass(frozen=True)
class _Var:
    """A tensor that depends on the graph input: finished layers, the pending affine map, and its shape."""

    layers: tuple[tuple[ExactArray, ExactArray], ...]
    pending: _Affine
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class _Reader:
    """Walks one graph in order; ``values`` maps tensor names to constants (numpy arrays) or :class:`_Var`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, Any] = {}
        self.folded: list[str] = []

    # ---------------------------------------------------------------- errors and operands
    def _where(self, node: Any) -> str:
        return f"{self.path}: node {node.name or '(unnamed)'!r} ({node.op_type})"

    def unsupported(self, node: Any, why: str) -> UnsupportedLayerError:
        return UnsupportedLayerError(f"{self._where(node)}: {why}")

    def operand(self, node: Any, i: int) -> Any:
        if i >= len(node.input) or node.input[i] == "":
            raise InputError(f"{self._where(node)}: missing input {i}")
        name = node.input[i]
        if name not in self.values:
            raise InputError(f"{self._where(node)}: input {name!r} is not defined before this node")
        return self.values[name]

    def exact(self, node: Any, arr: np.ndarray, what: str) -> ExactArray:
        """A constant converted exactly; NaN/inf is refused naming the node and the tensor."""
        if arr.dtype.kind not in "fiu":
            raise InputError(f"{self._where(node)}: {what} has unsupported data type {arr.dtype}")
        return to_fraction_array(arr, f"{self._where(node)}: {what}")

    def attrs(self, node: Any) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    # ---------------------------------------------------------------- the walk
    def run(self, model: Any) -> Network:
        from onnx import numpy_helper

        graph = model.graph
        for init in graph.initializer:
            try:
                self.values[init.name] = numpy_helper.to_array(init, base_dir=str(self.path.parent))
            except Exception as exc:  # noqa: BLE001 - any decoding problem is a malformed file
                raise InputError(f"{self.path}: cannot read initializer {init.name!r} ({exc})") from None
        inputs = [i for i in graph.input if i.name not in self.values]
        if len(inputs) != 1:
            names = [i.name for i in inputs]
            raise InputError(f"{self.path}: expected exactly one graph input besides the initializers, found {names}")
        if len(graph.output) != 1:
            raise InputError(f"{self.path}: expected exactly one graph output, found {len(graph.output)}")
        inp = inputs[0]
        dims = self._input_dims(inp)
        shape = tuple(1 if (k == 0 and not isinstance(d, int)) else d for k, d in enumerate(dims))
        if any(not isinstance(d, int) or d <= 0 for d in shape):
            raise InputError(f"{self.path}: input {inp.name!r} has shape {dims}; only the first (batch) dimension may be symbolic")
        n0 = math.prod(shape)
        self.values[inp.name] = _Var((), _Affine.identity(n0), shape)
        for node in ordered_nodes(graph, set(self.values), self.path):
            self.step(node)
        out_name = graph.output[0].name
        if out_name not in self.values:
            raise InputError(f"{self.path}: graph output {out_name!r} is never computed")
        out = self.values[out_name]
        if not isinstance(out, _Var):
            raise InputError(f"{self.path}: graph output {out_name!r} does not depend on the input")
        layers = list(out.layers)
        final_relu = bool(layers) and out.pending.is_identity()
        if not final_relu:
            layers.append(out.pending.dense())
        metadata = {
            "source": str(self.path),
            "format": "onnx",
            "input_name": inp.name,
            "input_shape": list(dims),
            "output_name": out_name,
            "output_shape": list(out.shape),
            "folded_nodes": list(self.folded),
        }
        try:
            return Network([W for W, _ in layers], [b for _, b in layers], final_relu=final_relu, metadata=metadata)
        except InputError as exc:
            raise InputError(f"{self.path}: {exc}") from None

    def _input_dims(self, inp: Any) -> list[int | str]:
        from onnx import TensorProto

        ttype = inp.type.tensor_type
        if ttype.elem_type not in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16):
            raise InputError(f"{self.path}: input {inp.name!r} is not a floating-point tensor")
        if not ttype.HasField("shape"):
            raise InputError(f"{self.path}: input {inp.name!r} has no shape")
        dims: list[int | str] = []
        for d in ttype.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or "?")
        return dims

    def step(self, node: Any) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise self.unsupported(node, f"operator domain {node.domain!r} is not supported")
        if op not in SUPPORTED_OPS:
            raise self.unsupported(
                node, f"operator {op} is not supported (the exact engine reads {', '.join(SUPPORTED_OPS)})"
            )
        if len(node.output) < 1:
            raise InputError(f"{self._where(node)}: node has no output")
        result = getattr(self, f"op_{op.lower()}")(node)
        self.values[node.output[0]] = result

    # ---------------------------------------------------------------- operators
    def op_constant(self, node: Any) -> np.ndarray:
        from onnx import numpy_helper

        a = self.attrs(node)
        if "value" in a:
            return numpy_helper.to_array(a["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in a:
                return np.asarray(a[key], dtype=dtype)
        raise self.unsupported(node, f"Constant with attributes {sorted(a)} is not supported")

    def op_identity(self, node: Any) -> Any:
        return self.operand(node, 0)

    def op_flatten(self, node: Any) -> Any:
        x = self.operand(node, 0)
        shape = x.shape if isinstance(x, _Var) else np.shape(x)
        axis = int(self.attrs(node).get("axis", 1))
        if axis < 0:
            axis += len(shape)
        if not 0 <= axis <= len(shape):
            raise InputError(f"{self._where(node)}: axis {axis} out of range for shape {tuple(shape)}")
        new = (math.prod(shape[:axis]), math.prod(shape[axis:]))
        if isinstance(x, _Var):
            return _Var(x.layers, x.pending, new)
        return np.reshape(x, new)

    def op_reshape(self, node: Any) -> Any:
        x = self.operand(node, 0)
        target = self.operand(node, 1)
        if isinstance(target, _Var):
            raise self.unsupported(node, "the target shape depends on the input")
        target = [int(v) for v in np.asarray(target).ravel()]
        shape = x.shape if isinstance(x, _Var) else tuple(np.shape(x))
        allowzero = int(self.attrs(node).get("allowzero", 0))
        new = []
        for k, t in enumerate(target):
            if t == 0 and not allowzero:
                if k >= len(shape):
                    raise InputError(f"{self._where(node)}: target {target} copies dimension {k} of {tuple(shape)}")
                new.append(shape[k])
            else:
                new.append(t)
        total = math.prod(shape)
        if new.count(-1) > 1:
            raise InputError(f"{self._where(node)}: target shape {target} has more than one -1")
        if -1 in new:
            rest = math.prod(v for v in new if v != -1)
            if rest == 0 or total % rest:
                raise InputError(f"{self._where(node)}: cannot reshape {tuple(shape)} to {target}")
            new[new.index(-1)] = total // rest
        if math.prod(new) != total or any(v < 0 for v in new):
            raise InputError(f"{self._where(node)}: cannot reshape {tuple(shape)} to {target}")
        if isinstance(x, _Var):
            return _Var(x.layers, x.pending, tuple(new))
        return np.reshape(x, new)

    def op_relu(self, node: Any) -> _Var:
        x = self.operand(node, 0)
        if not isinstance(x, _Var):
            raise self.unsupported(node, "Relu of a constant is not supported")
        if x.layers and x.pending.is_identity():  # relu(relu(z)) = relu(z)
            return x
        return _Var(x.layers + (x.pending.dense(),), _Affine.identity(x.size), x.shape)

    def _row_var(self, node: Any, x: _Var, transposed: bool = False) -> int:
        """The feature length of a variable that is one sample's row (or column when ``transposed``)."""
        shape = x.shape
        if transposed:
            if len(shape) != 2 or shape[1] != 1:
                raise self.unsupported(node, f"transA on an input-dependent tensor of shape {shape} (need (n, 1))")
            return shape[0]
        if len(shape) == 0 or math.prod(shape[:-1]) != 1:
            raise self.unsupported(
                node, f"the input-dependent operand has shape {shape}; only one row per sample is supported"
            )
        return shape[-1]

    def op_matmul(self, node: Any) -> _Var:
        x, w = self.operand(node, 0), self.operand(node, 1)
        if not isinstance(x, _Var) or isinstance(w, _Var):
            raise self.unsupported(node, "only MatMul(input-dependent tensor, constant matrix) is supported")
        n = self._row_var(node, x)
        W = np.asarray(w)
        if W.ndim != 2 or W.shape[0] != n:
            raise InputError(f"{self._where(node)}: weight {node.input[1]!r} of shape {W.shape} does not fit rows of {n}")
        M = self.exact(node, W, f"weight {node.input[1]!r}").T
        return _Var(x.layers, x.pending.then_matrix(M), tuple(x.shape[:-1]) + (W.shape[1],))

    def op_gemm(self, node: Any) -> _Var:
        a = self.attrs(node)
        x, w = self.operand(node, 0), self.operand(node, 1)
        if not isinstance(x, _Var) or isinstance(w, _Var):
            raise self.unsupported(node, "only Gemm(input-dependent tensor, constant matrix, constant) is supported")
        trans_a, trans_b = int(a.get("transA", 0)), int(a.get("transB", 0))
        n = self._row_var(node, x, transposed=bool(trans_a))
        if not trans_a and len(x.shape) != 2:
            raise self.unsupported(node, f"Gemm needs a 2-D operand, got shape {x.shape}")
        W = np.asarray(w)
        if W.ndim != 2:
            raise InputError(f"{self._where(node)}: B {node.input[1]!r} is not a matrix (shape {W.shape})")
        Bp = W.T if trans_b else W  # (n, m)
        if Bp.shape[0] != n:
            raise InputError(f"{self._where(node)}: B {node.input[1]!r} of shape {W.shape} does not fit rows of {n}")
        m = Bp.shape[1]
        alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
        for key, v in (("alpha", alpha), ("beta", beta)):
            if not math.isfinite(v):
                raise InputError(f"{self._where(node)}: attribute {key} = {v!r} is not finite")
        M = self.exact(node, Bp, f"B {node.input[1]!r}").T * Fraction(alpha)
        pending = x.pending.then_matrix(M)
        if len(node.input) > 2 and node.input[2]:
            c = self.operand(node, 2)
            if isinstance(c, _Var):
                raise self.unsupported(node, "C depends on the input")
            C = np.asarray(c)
            try:
                Cb = np.broadcast_to(C, (1, m))
            except ValueError:
                raise InputError(f"{self._where(node)}: C of shape {C.shape} does not broadcast to (1, {m})") from None
            C_exact = self.exact(node, np.ascontiguousarray(Cb).ravel(), f"C {node.input[2]!r}")
            pending = pending.shifted(C_exact * Fraction(beta))
        return _Var(x.layers, pending, (1, m))

    def _elementwise(self, node: Any, kind: str) -> Any:
        x, y = self.operand(node, 0), self.operand(node, 1)
        if isinstance(x, _Var) and isinstance(y, _Var):
            raise self.unsupported(node, "both operands depend on the input (not a single chain of layers)")
        if not isinstance(x, _Var) and not isinstance(y, _Var):
            raise self.unsupported(node, f"{kind} of two constants is not evaluated (the graph is not executed)")
        var_first = isinstance(x, _Var)
        v, k = (x, y) if var_first else (y, x)
        k = np.asarray(k)
        try:
            shape = np.broadcast_shapes(v.shape, k.shape)
        except ValueError:
            raise InputError(f"{self._where(node)}: constant of shape {k.shape} does not broadcast to {v.shape}") from None
        if tuple(shape) != tuple(v.shape):
            raise self.unsupported(node, f"the constant of shape {k.shape} would enlarge the tensor {v.shape}")
        name = node.input[1] if var_first else node.input[0]
        K = self.exact(node, np.ascontiguousarray(np.broadcast_to(k, v.shape)).ravel(), f"constant {name!r}")
        p = v.pending
        if kind == "Add":
            p = p.shifted(K)
        elif kind == "Sub":
            p = p.shifted(-K) if var_first else p.scaled(_frac_vector([-_ONE] * len(K))).shifted(K)  # k - y
        elif kind == "Mul":
            p = p.scaled(K)
        else:  # Div
            if not var_first:
                raise self.unsupported(node, "division by an input-dependent tensor is not affine")
            if any(val == 0 for val in K):
                raise InputError(f"{self._where(node)}: division by zero in constant {name!r}")
            p = p.scaled(_frac_vector([_ONE / val for val in K]))
        if v.pending.A is None:  # acts before this layer's matrix: folded into the next layer
            self.folded.append(node.name or f"({kind} #{len(self.folded)})")
        return _Var(v.layers, p, v.shape)

    def op_add(self, node: Any) -> Any:
        return self._elementwise(node, "Add")

    def op_sub(self, node: Any) -> Any:
        return self._elementwise(node, "Sub")

    def op_mul(self, node: Any) -> Any:
        return self._elementwise(node, "Mul")

    def op_div(self, node: Any) -> Any:
        return self._elementwise(node, "Div")


def onnx_pads(attrs: dict[str, Any], spatial: Any, kernel: list[int], strides: list[int],
              dilations: list[int]) -> list[int] | None:
    """The explicit pads (begin..., end...) of an ONNX Conv or pool: ``pads``, or those ``auto_pad`` implies
    (VALID: none; SAME_UPPER / SAME_LOWER: the output size is ceil(input / stride), the odd pad at the end /
    at the beginning). None for an unknown auto_pad value."""
    d = len(spatial)
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("NOTSET", ""):
        return [int(p) for p in attrs.get("pads", [0] * (2 * d))]
    if auto == "VALID":
        return [0] * (2 * d)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for i in range(d):
            out = -(-int(spatial[i]) // strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - int(spatial[i]), 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        return begin + end
    return None


def ordered_nodes(graph: Any, known: set[str], path: Path) -> list[Any]:
    """The graph's nodes in an order where every input is produced before it is read (some exporters list a
    Constant after its reader; onnxruntime sorts too). ``known``: the names defined before any node."""
    known = set(known)
    pending, out = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i == "" or i in known for i in n.input)]
        if not ready:
            missing = sorted({i for n in pending for i in n.input if i and i not in known})
            raise InputError(f"{path}: inputs {missing[:5]} are never produced (or the graph has a cycle)")
        for n in ready:
            out.append(n)
            known.update(n.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    return out


def load_onnx(path: str | Path) -> Network:
    """Read an ONNX model of affine operators and ReLUs as an exact :class:`Network` (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file. It is parsed with the ``onnx`` package and interpreted node by node; nothing runs.

    Returns
    -------
    Network
        Exact weights equal to the stored floats; ``final_relu`` when the output is a ReLU's.
        ``metadata``: ``source``, ``format`` ("onnx"), ``input_name``, ``input_shape`` (as stored, symbolic
        dimensions as their names), ``output_name``, ``output_shape``, ``folded_nodes`` (the elementwise
        Add/Sub/Mul/Div nodes that act before a layer's matrix, e.g. an input normalisation, folded into it).

    Raises
    ------
    InputError
        The file is missing, not a protobuf ONNX model, truncated, or holds NaN/inf constants (named).
    UnsupportedLayerError
        An operator outside :data:`SUPPORTED_OPS`, or a supported one used in a way that is not a chain of
        affine layers and ReLUs (the message names the node, its operator and the file).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise InputError(f"{path}: reading ONNX needs the 'onnx' package") from None
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # noqa: BLE001 - protobuf DecodeError, truncated data, bad external data
        raise InputError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise InputError(f"{path}: not a readable ONNX model (no graph nodes)")
    if any(node.op_type in GRAPH_ONLY_OPS for node in model.graph.node):
        from .onnx_graph import load_onnx_graph

        return load_onnx_graph(p, model)  # type: ignore[return-value]
    try:
        return _Reader(p).run(model)
    except UnsupportedLayerError as exc:
        from .onnx_graph import load_onnx_graph

        try:
            return load_onnx_graph(p, model)  # type: ignore[return-value]
        except UnsupportedLayerError:
            raise exc from None


__all__ = ["load_onnx", "SUPPORTED_OPS"]

r"""ONNX conv nets as torch modules the backend can explain: :func:`from_onnx`.

The graph is read node by node. Values that do not depend on the input are constant-folded in numpy (initialisers,
``Constant``, ``Shape``, ``Gather``, ``Unsqueeze``, ``Squeeze``, ``Concat``, ``Cast``, ``Reshape`` and
``Transpose`` of constants, as exporters emit them around ``x.view(x.size(0), -1)``); to tell the batch dimension
apart, every value is carried for two probe batches (sizes 1 and 2): a shape entry that differs between them is
the batch size. Operations on the input become modules:

- ``Conv`` (symmetric pads or auto_pad, 1-D/2-D) -> ``nn.Conv1d/2d``; ``Gemm`` (constant B, C) -> ``nn.Linear`` with
  :math:`W = \alpha B'^\top`, :math:`b = \beta C`; ``MatMul`` by a constant matrix -> ``nn.Linear`` (a following
  ``Add`` of a constant vector, its only use, becomes the bias);
- ``Relu`` -> ``nn.ReLU``; ``MaxPool`` -> ``nn.MaxPool1d/2d``; ``AveragePool`` -> ``nn.AvgPool1d/2d``;
  ``GlobalAveragePool`` -> ``nn.AdaptiveAvgPool1d/2d(1)``; ``BatchNormalization`` -> ``nn.BatchNorm1d/2d`` (eval);
- ``Add`` of two computed tensors -> a residual sum; ``Flatten`` (axis 1) -> ``nn.Flatten``; ``Reshape`` keeping
  the batch dimension first (or to a static target of a batch-1 export) -> a reshape module; ``Transpose``
  keeping axis 0 -> a permute module; ``Identity``/``Dropout`` -> nothing;
- ``Sub``/``Add``/``Mul``/``Div`` by a constant: an elementwise map :math:`y = d \odot x + c`, composed with the
  next ones, moved through reshapes and transposes, and folded into the neighbouring layer: into the next
  Conv/Gemm/MatMul (:math:`W' = W \operatorname{diag}(d)`, :math:`b' = b + W c`; before a convolution only when
  constant per channel, and a shift only without padding) or into the layer that produced the value
  (:math:`W' = \operatorname{diag}(d) W`, :math:`b' = d \odot b + c`). Where neither fits the map is refused (the
  exact loader keeps it as an exact ``Scale`` node). ``auto_pad`` (VALID, SAME_UPPER/LOWER) gives the pads,
  symmetric ones only (torch pads both sides alike).

The first axis of the input is the batch: single-operator graphs whose leading axis is data (a [2, 2] input) are
refused where an operation would mix it; the exact loader reads them.

Any other operation, or one of these in a form not listed, raises
:class:`~dtd_formal.errors.UnsupportedLayerError` naming the node and its op type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError, UnsupportedLayerError
from .graph import ShapeModule


class Reshape(ShapeModule):
    """``x.reshape(batch, *shape)``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(int(v) for v in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"batch, {self.shape}"


class Permute(ShapeModule):
    """``x.permute(*perm)`` with ``perm[0] == 0``."""

    def __init__(self, perm: tuple[int, ...]) -> None:
        super().__init__()
        self.perm = tuple(int(v) for v in perm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.perm)


class OnnxModule(nn.Module):
    """The module :func:`from_onnx` returns: a list of steps over named values (traceable by torch.fx)."""

    def __init__(self, input_name: str, output_name: str, steps: list[tuple[str, str, tuple[str, ...], str]],
                 modules: dict[str, nn.Module]) -> None:
        super().__init__()
        self.input_name, self.output_name, self.steps = input_name, output_name, steps
        for name, m in modules.items():
            self.add_module(name, m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.input_name: x}
        for kind, mod, ins, out in self.steps:
            if kind == "module":
                env[out] = getattr(self, mod)(env[ins[0]])
            elif kind == "add":
                env[out] = env[ins[0]] + env[ins[1]]
            else:  # alias
                env[out] = env[ins[0]]
        return env[self.output_name]


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _sym_pads(pads: list[int], what: str) -> tuple[int, ...]:
    n = len(pads) // 2
    if list(pads[:n]) != list(pads[n:]):
        raise UnsupportedLayerError(f"{what}: asymmetric pads {pads} are not supported")
    return tuple(int(p) for p in pads[:n])


def _fold(op: str, node: Any, vals: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
    """numpy evaluation of a constant-only node."""
    from onnx import numpy_helper

    if op == "Constant":
        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])
        for key in ("value_float", "value_int"):
            if key in attrs:
                return np.array(attrs[key])
        for key in ("value_floats", "value_ints"):
            if key in attrs:
                return np.array(list(attrs[key]))
        raise UnsupportedLayerError(f"node {node.name!r} (Constant): unsupported value attribute")
    if op == "Gather":
        return np.take(vals[0], vals[1], axis=int(attrs.get("axis", 0)))
    if op == "Unsqueeze":
        axes = list(attrs["axes"]) if "axes" in attrs else [int(v) for v in vals[1]]
        out = vals[0]
        for ax in sorted(a % (out.ndim + len(axes)) for a in axes):
            out = np.expand_dims(out, ax)
        return out
    if op == "Squeeze":
        axes = list(attrs["axes"]) if "axes" in attrs else ([int(v) for v in vals[1]] if len(vals) > 1 else None)
        return np.squeeze(vals[0], axis=tuple(axes) if axes is not None else None)
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in vals], axis=int(attrs.get("axis", 0)))
    if op == "Cast":
        from onnx import helper

        return vals[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))
    if op == "Reshape":
        return vals[0].reshape([d if s == 0 else s for s, d in zip(vals[1], list(vals[0].shape) + [0] * 8)])
    if op == "Transpose":
        return np.transpose(vals[0], attrs.get("perm"))
    if op == "Identity":
        return vals[0]
    if op == "Shape":
        return np.array(vals[0].shape, dtype=np.int64)
    raise UnsupportedLayerError(f"node {node.name!r}: constant {op} is not supported")


#: elementwise maps by a constant (composed, then folded into the neighbouring layer)
ELEMENTWISE = ("Sub", "Add", "Mul", "Div")
#: index maps a pending elementwise map moves through
MOVES = ("Flatten", "Reshape", "Transpose", "Identity", "Dropout")
FOLDABLE = {"Constant", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Reshape", "Transpose", "Identity", "Shape"}


def from_onnx(path: str | Path) -> nn.Module:
    """An ``nn.Module`` (float32, eval mode) computing the ONNX model at ``path`` (module docstring)."""
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from None
    g = model.graph
    const: dict[str, tuple[np.ndarray, np.ndarray]] = {i.name: (numpy_helper.to_array(i),) * 2 for i in g.initializer}
    inputs = [i for i in g.input if i.name not in const]
    if len(inputs) != 1 or len(g.output) != 1:
        raise UnsupportedLayerError(f"{path}: exactly one input and one output are supported")
    dims = []
    for k, d in enumerate(inputs[0].type.tensor_type.shape.dim):
        if d.HasField("dim_value") and not (k == 0 and d.dim_value in (0, 1)):
            dims.append(int(d.dim_value))
        elif k == 0:
            dims.append(-1)
        else:
            raise UnsupportedLayerError(f"{path}: input dimension {k} is symbolic; only the batch may be")
    in_name = inputs[0].name
    probe = {in_name: (torch.zeros([1] + dims[1:]), torch.zeros([2] + dims[1:]))}  # dynamic values, batch 1 and 2
    steps: list[tuple[str, str, tuple[str, ...], str]] = []
    modules: dict[str, nn.Module] = {}
    users: dict[str, int] = {}
    for node in g.node:
        for i in node.input:
            users[i] = users.get(i, 0) + 1
    linear_of: dict[str, str] = {}  # output value of a MatMul-built Linear -> module name

    def add_module(m: nn.Module, src: str, out: str) -> str:
        name = f"m{len(modules)}"
        modules[name] = m.eval()
        steps.append(("module", name, (src,), out))
        with torch.no_grad():
            probe[out] = (m(probe[src][0]), m(probe[src][1]))
        return name

    def c(name: str, what: str) -> np.ndarray:
        if name not in const:
            raise UnsupportedLayerError(f"{what}: input {name!r} must be a constant")
        return const[name][0]

    def t(arr: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(arr, dtype=np.float32))

    from ..io.onnx_io import onnx_pads, ordered_nodes

    # value -> (origin value, d, c): the value is d * origin + c elementwise (per-sample shapes), not yet a module
    pending: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}

    def sample_shape(v: str) -> tuple[int, ...]:
        return tuple(probe[v][0].shape[1:])

    def resolve(v: str, what: str) -> str:
        """A pending value made concrete by folding its map into the layer that produced its origin."""
        if v not in pending:
            return v
        origin, d, cc = pending.pop(v)
        name = next((mod for kind, mod, _, o in steps if kind == "module" and o == origin), None)
        m = modules.get(name) if name is not None else None
        if not isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) or users.get(origin, 0) != 1:
            raise UnsupportedLayerError(f"{what}: an elementwise constant map (Sub/Add/Mul/Div) is supported where it "
                                        "folds into the Conv/Gemm/MatMul next to it; the exact loader (dtd.load) keeps "
                                        "it as an exact Scale node")
        per = d.reshape(d.shape[0], -1)
        shift = cc.reshape(cc.shape[0], -1)
        if isinstance(m, nn.Linear):
            dv, cv = d.reshape(-1), cc.reshape(-1)
        elif np.all(per == per[:, :1]) and np.all(shift == shift[:, :1]):
            dv, cv = per[:, 0], shift[:, 0]
        else:
            raise UnsupportedLayerError(f"{what}: an elementwise map after a convolution folds only when it is "
                                        "constant per channel")
        with torch.no_grad():
            m.weight.mul_(t(dv).reshape((-1,) + (1,) * (m.weight.dim() - 1)))
            m.bias.copy_(m.bias * t(dv) + t(cv))
            probe[origin] = tuple(m(probe[steps_src(steps, name)][k]) for k in (0, 1))  # type: ignore[assignment]
        steps.append(("alias", "", (origin,), v))
        probe[v] = probe[origin]
        return v

    def fold_input(m: nn.Module, src: str, what: str) -> str:
        """Fold the pending map of a layer's input into the layer (W' = W diag d, b' = b + W c)."""
        origin, d, cc = pending[src]
        with torch.no_grad():
            if isinstance(m, nn.Linear):
                if d.ndim != 1:
                    raise UnsupportedLayerError(f"{what}: an elementwise map before a product of a non-flat tensor")
                m.bias.copy_(m.bias + m.weight @ t(cc))
                m.weight.mul_(t(d)[None, :])
            else:
                per, shift = d.reshape(d.shape[0], -1), cc.reshape(cc.shape[0], -1)
                if not (np.all(per == per[:, :1]) and np.all(shift == shift[:, :1])):
                    raise UnsupportedLayerError(f"{what}: an elementwise map before a convolution folds only when it "
                                                "is constant per channel")
                if np.any(shift != 0) and any(int(p) for p in m.padding):
                    raise UnsupportedLayerError(f"{what}: a shift before a padded convolution does not fold into a "
                                                "per-channel bias (the padding stays 0); dtd.load reads it exactly")
                groups, c_in_g = m.groups, m.weight.shape[1]
                per_out = m.out_channels // groups
                s_in, c_in = t(per[:, 0]), t(shift[:, 0])
                for oc in range(m.out_channels):
                    sl = slice((oc // per_out) * c_in_g, (oc // per_out + 1) * c_in_g)
                    m.bias[oc] += (m.weight[oc] * c_in[sl].reshape((-1,) + (1,) * (m.weight.dim() - 2))).sum()
                    m.weight[oc] *= s_in[sl].reshape((-1,) + (1,) * (m.weight.dim() - 2))
        return origin

    def elementwise(op: str, dyn: str, cst: str, dyn_first: bool, out: str, what: str) -> None:
        """Sub/Add/Mul/Div by a constant: composed into the value's pending map (folded later, or refused)."""
        shape = sample_shape(dyn)
        k = np.asarray(const[cst][0], dtype=np.float64)
        if k.ndim == len(shape) + 1 and k.shape[0] == 1:
            k = k[0]
        try:
            k = np.broadcast_to(k, shape)
        except ValueError:
            raise UnsupportedLayerError(f"{what}: constant of shape {const[cst][0].shape} does not broadcast to the "
                                        f"per-sample shape {shape}") from None
        one, zero = np.ones(shape), np.zeros(shape)
        if op == "Div" and not dyn_first:
            raise UnsupportedLayerError(f"{what}: a constant divided by a tensor is not affine")
        if op == "Div" and np.any(k == 0):
            raise InputError(f"{what}: division by a constant with zero entries")
        if op == "Add":
            dd, cc = one, k
        elif op == "Mul":
            dd, cc = k, zero
        elif op == "Div":
            dd, cc = 1.0 / k, zero
        else:  # Sub
            dd, cc = (one, -k) if dyn_first else (-one, k)
        if dyn in pending and users.get(dyn, 0) != 1:
            raise UnsupportedLayerError(f"{what}: a value with a pending elementwise map is read more than once")
        origin, d0, c0 = pending.pop(dyn, (dyn, one, zero))
        pending[out] = (origin, d0 * dd, c0 * dd + cc)
        probe[out] = tuple(p * t(dd) + t(cc) for p in probe[dyn])  # type: ignore[assignment]

    def move(m: nn.Module, src: str, out: str) -> None:
        """An index map (flatten, reshape, permute): a pending map moves along (applied to d and c too)."""
        if src not in pending:
            add_module(m, src, out)
            return
        origin, d, cc = pending.pop(src)
        moved = out + "::origin"
        add_module(m, origin, moved)
        with torch.no_grad():
            md, mc = (m(torch.tensor(v, dtype=torch.float64)[None]).numpy()[0] for v in (d, cc))
            probe[out] = tuple(m(p) for p in probe[src])  # type: ignore[assignment]
        pending[out] = (moved, md, mc)

    for node in ordered_nodes(g, set(const) | {in_name}, path):
        op, ins, out = node.op_type, [i for i in node.input], node.output[0]
        what = f"node {node.name or out!r} ({op})"
        attrs = _attrs(node)
        present = [i for i in ins if i]
        if op in FOLDABLE and all(i in const or (op == "Shape" and i in probe) for i in present):
            if op == "Shape":
                src = present[0]
                if src in probe:
                    const[out] = tuple(np.array(v.shape, dtype=np.int64) for v in probe[src])  # type: ignore[assignment]
                else:
                    const[out] = (np.array(const[src][0].shape, dtype=np.int64),) * 2
            else:
                const[out] = tuple(_fold(op, node, [const[i][k] for i in present], attrs) for k in (0, 1))  # type: ignore[assignment]
            continue
        if not present or not any(i in probe for i in present):
            raise UnsupportedLayerError(f"{what} is not supported")
        if op in ELEMENTWISE and len(present) == 2 and sum(i in const for i in present) == 1:
            dyn = next(i for i in present if i in probe)
            cst = next(i for i in present if i in const)
            if not (op == "Add" and dyn in linear_of and users.get(dyn, 0) == 1):
                elementwise(op, dyn, cst, dyn == present[0], out, what)
                continue
        src = present[0] if present[0] in probe else next(i for i in present if i in probe)
        if src in pending and users.get(src, 0) != 1:
            raise UnsupportedLayerError(f"{what}: a value with a pending elementwise map is read more than once")
        if src in pending and op not in MOVES + ("Conv", "Gemm", "MatMul"):
            src = resolve(src, what)
        if op == "Conv":
            W = c(ins[1], what)
            dim = W.ndim - 2
            pads = onnx_pads(attrs, tuple(probe[src][0].shape[2:]), list(W.shape[2:]),
                             list(attrs.get("strides", [1] * dim)), list(attrs.get("dilations", [1] * dim)))
            if dim not in (1, 2) or pads is None:
                raise UnsupportedLayerError(f"{what}: only 1-D/2-D convolutions (pads or auto_pad) are supported")
            cls = nn.Conv1d if dim == 1 else nn.Conv2d
            groups = int(attrs.get("group", 1))
            conv = cls(W.shape[1] * groups, W.shape[0], tuple(W.shape[2:]), stride=tuple(attrs.get("strides", [1] * dim)),
                       padding=_sym_pads(pads, what),
                       dilation=tuple(attrs.get("dilations", [1] * dim)), groups=groups, bias=True)
            with torch.no_grad():
                conv.weight.copy_(t(W))
                conv.bias.copy_(t(c(ins[2], what)) if len(present) > 2 else torch.zeros(W.shape[0]))
            if src in pending:
                src = fold_input(conv, src, what)
            add_module(conv, src, out)
        elif op == "Gemm":
            if int(attrs.get("transA", 0)):
                raise UnsupportedLayerError(f"{what}: transA=1 is not supported")
            B = c(ins[1], what)
            Bp = B.T if int(attrs.get("transB", 0)) else B  # (in, out)
            alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
            lin = nn.Linear(Bp.shape[0], Bp.shape[1], bias=True)
            bias = np.broadcast_to(beta * c(ins[2], what), (Bp.shape[1],)) if len(present) > 2 else np.zeros(Bp.shape[1])
            with torch.no_grad():
                lin.weight.copy_(t(alpha * Bp.T))
                lin.bias.copy_(t(bias))
            if src in pending:
                src = fold_input(lin, src, what)
            add_module(lin, src, out)
        elif op == "MatMul":
            B = c(ins[1], what)
            if B.ndim != 2:
                raise UnsupportedLayerError(f"{what}: only a product with a constant matrix is supported")
            lin = nn.Linear(B.shape[0], B.shape[1], bias=True)
            with torch.no_grad():
                lin.weight.copy_(t(B.T))
                lin.bias.zero_()
            if src in pending:
                src = fold_input(lin, src, what)
            linear_of[out] = add_module(lin, src, out)
        elif op == "Add":
            if all(i in probe for i in present):
                left, right = (resolve(i, what) for i in present[:2])
                steps.append(("add", "", (left, right), out))
                probe[out] = tuple(p + q for p, q in zip(probe[left], probe[right]))  # type: ignore[assignment]
                continue
            cst = next(i for i in present if i in const)
            dyn = next(i for i in present if i in probe)
            name = linear_of.get(dyn)
            if name is None or users.get(dyn, 0) != 1:
                raise UnsupportedLayerError(f"{what}: adding a constant is supported only as the bias of a MatMul")
            lin = modules[name]
            with torch.no_grad():
                lin.bias.copy_(lin.bias + t(np.broadcast_to(const[cst][0], lin.bias.shape)))
            steps.append(("alias", "", (dyn,), out))
            with torch.no_grad():
                probe[dyn] = tuple(lin(probe[s][k]) for k, s in enumerate([steps_src(steps, name)] * 2))  # type: ignore[assignment]
            probe[out] = probe[dyn]
        elif op == "Relu":
            add_module(nn.ReLU(), src, out)
        elif op in ("MaxPool", "AveragePool"):
            ks = tuple(attrs["kernel_shape"])
            dim = len(ks)
            strides = tuple(attrs.get("strides", [1] * dim))
            explicit = onnx_pads(attrs, tuple(probe[src][0].shape[2:]), list(ks), list(strides),
                                 list(attrs.get("dilations", [1] * dim)))
            if dim not in (1, 2) or explicit is None:
                raise UnsupportedLayerError(f"{what}: only 1-D/2-D pooling (pads or auto_pad) is supported")
            pads = _sym_pads(explicit, what)
            ceil = bool(attrs.get("ceil_mode", 0))
            if op == "MaxPool":
                if len(node.output) > 1 and node.output[1]:
                    raise UnsupportedLayerError(f"{what}: the indices output is not supported")
                cls = nn.MaxPool1d if dim == 1 else nn.MaxPool2d
                m = cls(ks, strides, pads, dilation=tuple(attrs.get("dilations", [1] * dim)), ceil_mode=ceil)
            else:
                cls = nn.AvgPool1d if dim == 1 else nn.AvgPool2d
                m = cls(ks, strides, pads, ceil_mode=ceil, count_include_pad=bool(attrs.get("count_include_pad", 0)))
            add_module(m, src, out)
        elif op == "GlobalAveragePool":
            dim = probe[src][0].dim() - 2
            add_module(nn.AdaptiveAvgPool1d(1) if dim == 1 else nn.AdaptiveAvgPool2d(1), src, out)
        elif op == "BatchNormalization":
            scale, bias, mean, var = (c(ins[k], what) for k in (1, 2, 3, 4))
            dim = probe[src][0].dim()
            bn = (nn.BatchNorm1d if dim in (2, 3) else nn.BatchNorm2d)(len(scale), eps=float(attrs.get("epsilon", 1e-5)))
            with torch.no_grad():
                bn.weight.copy_(t(scale))
                bn.bias.copy_(t(bias))
                bn.running_mean.copy_(t(mean))
                bn.running_var.copy_(t(var))
            add_module(bn, src, out)
        elif op == "Flatten":
            if int(attrs.get("axis", 1)) != 1:
                raise UnsupportedLayerError(f"{what}: only axis=1 is supported")
            move(nn.Flatten(1), src, out)
        elif op == "Reshape":
            s1, s2 = (np.asarray(v, dtype=np.int64) for v in const.get(ins[1], (None, None)))  # type: ignore[misc]
            if s1 is None:
                raise UnsupportedLayerError(f"{what}: the target shape must be computable without the input values")
            first = {int(s1[0]), int(s2[0])}
            batch_first = (int(s1[0]), int(s2[0])) in ((1, 2), (0, 0), (-1, -1))
            per_sample = int(probe[src][0][0].numel())
            if np.array_equal(s1, s2) and batch_first is False and np.all(s1 > 0):
                # a static target of a batch-1 export: (1, *shape) or the per-sample shape itself
                if int(s1[0]) == 1 and int(np.prod(s1[1:])) == per_sample:
                    s1 = s2 = np.concatenate([[-1], s1[1:]])
                    batch_first = True
                elif int(np.prod(s1)) == per_sample:
                    s1 = s2 = np.concatenate([[-1], s1])
                    batch_first = True
            if not batch_first or not np.array_equal(s1[1:], s2[1:]):
                raise UnsupportedLayerError(f"{what}: only reshapes that keep the batch dimension first are supported ({first})")
            rest = [int(v) if v != 0 else int(probe[src][0].shape[k + 1]) for k, v in enumerate(s1[1:])]
            if int(s1[0]) == -1 and -1 in rest:
                raise UnsupportedLayerError(f"{what}: two inferred dimensions")
            move(Reshape(tuple(rest)), src, out)
        elif op == "Transpose":
            perm = tuple(attrs.get("perm", []))
            if not perm or perm[0] != 0:
                raise UnsupportedLayerError(f"{what}: only permutations that keep the batch axis first are supported")
            move(Permute(perm), src, out)
        elif op in ("Identity", "Dropout"):
            if src in pending:
                pending[out] = pending.pop(src)
            else:
                steps.append(("alias", "", (src,), out))
            probe[out] = probe[src]
        else:
            raise UnsupportedLayerError(f"{what} is not supported by from_onnx")
    out_name = g.output[0].name
    if out_name not in probe:
        raise UnsupportedLayerError(f"{path}: the output {out_name!r} does not depend on the input")
    resolve(out_name, f"{path}: output {out_name!r}")
    return OnnxModule(in_name, out_name, steps, modules).eval()


def steps_src(steps: list[tuple[str, str, tuple[str, ...], str]], module: str) -> str:
    """The input value of the step that runs ``module``."""
    for kind, mod, ins, _ in steps:
        if kind == "module" and mod == module:
            return ins[0]
    raise KeyError(module)  # pragma: no cover


__all__ = ["OnnxModule", "Permute", "Reshape", "from_onnx"]

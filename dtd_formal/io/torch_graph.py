r"""torch modules -> exact :class:`~dtd_formal.graph.network.GraphNetwork` (convolutional and residual models).

The model is traced and checked by the torch backend's :func:`dtd_formal.torch.graph.build_plan` (one set of
refusals for both engines: an operation the torch backend cannot attribute is refused here too), its shapes are
recorded by one float forward pass of a zero input of ``input_shape``, and every node becomes an exact operator:

- ``nn.Linear`` (on a flat input), ``nn.Conv1d``/``nn.Conv2d`` (stride, zero padding incl. ``"same"``/``"valid"``,
  dilation, groups, bias): Dense / Conv, each float weight converted exactly;
- ``nn.BatchNorm1d/2d`` (eval) right after a layer: folded into it, :math:`W' = s W,\ b' = s b + t` with
  :math:`s = \gamma/\sqrt{\sigma^2+\epsilon}` and :math:`t = \beta - \mu s` computed in float64 (the square root is
  not rational) and the products taken exactly, as the ONNX reader does;
- ReLU; ``nn.MaxPool1d/2d`` (dilation 1, ``ceil_mode=False``); ``nn.AvgPool1d/2d`` (``ceil_mode=False``, no
  ``divisor_override``; torch's default ``count_include_pad=True`` is kept); ``nn.AdaptiveAvgPool1d/2d`` when the
  output size divides the input size (then it is an average pool); residual sums of two tensors;
- Flatten, view/reshape, Identity, Dropout (eval): index maps to the recorded shape.

Anything else, padding modes other than zeros, and pooling options that do not fit are refused with
:class:`~dtd_formal.errors.UnsupportedLayerError` naming the module.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import InputError, UnsupportedLayerError
from ..exact import to_fraction_array
from ..graph.build import GraphBuilder
from ..graph.network import GraphNetwork


def _floats(name: str, what: str, t: Any) -> np.ndarray:
    arr = t.detach().cpu().double().numpy()
    if not np.all(np.isfinite(arr)):
        raise InputError(f"module {name!r}: {what} has NaN or inf entries")
    return arr


def _pair(v: Any, d: int) -> list[int]:
    return [int(x) for x in v] if isinstance(v, (tuple, list)) else [int(v)] * d


def _conv_pads(name: str, m: Any, d: int) -> list[int]:
    if m.padding_mode != "zeros":
        raise UnsupportedLayerError(f"module {name!r} ({type(m).__name__}): padding_mode={m.padding_mode!r}; only "
                                    "zero padding is supported")
    k, dil = _pair(m.kernel_size, d), _pair(m.dilation, d)
    if m.padding == "valid":
        return [0] * (2 * d)
    if m.padding == "same":  # torch: total = dilation * (k - 1), the odd one at the end
        total = [dil[i] * (k[i] - 1) for i in range(d)]
        return [t // 2 for t in total] + [t - t // 2 for t in total]
    p = _pair(m.padding, d)
    return p + p


def _bn_fold(name: str, bn: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(s, t) of an eval BatchNorm in float64."""
    if bn.running_mean is None or bn.running_var is None:
        raise UnsupportedLayerError(f"module {name!r}: BatchNorm without running statistics is not a fixed map")
    if bn.num_features != n:
        raise InputError(f"module {name!r}: {bn.num_features} features after a layer with {n} outputs")
    mean, var = _floats(name, "running_mean", bn.running_mean), _floats(name, "running_var", bn.running_var)
    gamma = _floats(name, "weight", bn.weight) if bn.weight is not None else np.ones(n)
    beta = _floats(name, "bias", bn.bias) if bn.bias is not None else np.zeros(n)
    s = gamma / np.sqrt(var + float(bn.eps))
    if not np.all(np.isfinite(s)):
        raise InputError(f"module {name!r}: BatchNorm scale is not finite (check running_var and eps)")
    return s, beta - mean * s


def graph_from_torch(model: Any, input_shape: Sequence[int]) -> GraphNetwork:
    """The exact operator graph of a torch model for inputs of shape ``input_shape`` (no batch dimension)."""
    import torch
    from torch import nn
    from torch.fx.passes.shape_prop import ShapeProp

    from ..torch.graph import AVGPOOL_TYPES, MAXPOOL_TYPES, build_plan

    shape = tuple(int(s) for s in input_shape)
    plan = build_plan(model)
    dtype = next((p.dtype for p in model.parameters()), torch.float64)
    try:
        ShapeProp(plan.gm).propagate(torch.zeros((1,) + shape, dtype=dtype))
    except Exception as exc:  # noqa: BLE001 - a shape mismatch inside the model
        raise InputError(f"the model does not run on inputs of shape {shape}: {type(exc).__name__}: {exc}") from None
    g = GraphBuilder(shape)
    ids: dict[str, int] = {}
    by_name = {n.name: n for n in plan.nodes}

    def out_shape(n: Any) -> tuple[int, ...] | None:
        meta = n.meta.get("tensor_meta")
        return tuple(int(s) for s in meta.shape[1:]) if hasattr(meta, "shape") else None

    def operand(n: Any, k: int = 0) -> int:
        src = [a for a in n.all_input_nodes if a.name in ids]
        if len(src) <= k:
            raise UnsupportedLayerError(f"node {n.name!r}: input {k} is not a tensor of the model")
        return ids[src[k].name]

    for n in plan.nodes:
        kind = plan.handler[n.name]
        m = plan.modules.get(n.target) if n.op == "call_module" else None
        label = str(n.target) if n.op == "call_module" else n.name
        if kind == "input":
            ids[n.name] = g.input
        elif kind == "output":
            continue
        elif kind == "layer":
            x = operand(n)
            info = plan.layer_of_node[n.name]
            W = _floats(label, "weight", m.weight)
            b = _floats(label, "bias", m.bias) if m.bias is not None else np.zeros(W.shape[0])
            exact_W, exact_b = to_fraction_array(W, f"{label} weight"), to_fraction_array(b, f"{label} bias")
            if info.out_node != n.name:  # a BatchNorm folds into this layer
                bn_name = by_name[info.out_node].target
                s, t = _bn_fold(bn_name, plan.modules[bn_name], W.shape[0])
                S = to_fraction_array(s, f"{bn_name} scale")
                exact_W = exact_W * S.reshape((-1,) + (1,) * (W.ndim - 1))
                exact_b = exact_b * S + to_fraction_array(t, f"{bn_name} shift")
            if isinstance(m, nn.Linear):
                if len(g.shape(x)) != 1:
                    raise UnsupportedLayerError(f"module {label!r} (Linear) on an input of shape {g.shape(x)}: "
                                                "flatten before a Linear")
                ids[info.out_node] = g.dense(x, exact_W, exact_b, name=label)
            else:
                d = W.ndim - 2
                ids[info.out_node] = g.conv(x, exact_W, exact_b, _pair(m.stride, d), _conv_pads(label, m, d),
                                            _pair(m.dilation, d), int(m.groups), name=label)
        elif kind == "bn":
            continue  # folded into its layer above
        elif kind == "relu":
            ids[n.name] = g.relu(operand(n), name=label)
        elif kind == "maxpool":
            d = len(g.shape(operand(n))) - 1
            if any(v != 1 for v in _pair(m.dilation, d)) or m.ceil_mode:
                raise UnsupportedLayerError(f"module {label!r} ({type(m).__name__}): dilation or ceil_mode")
            pads = _pair(m.padding, d)
            ids[n.name] = g.maxpool(operand(n), _pair(m.kernel_size, d),
                                    _pair(m.stride if m.stride is not None else m.kernel_size, d), pads + pads,
                                    name=label)
        elif kind == "avgpool":
            x = operand(n)
            d = len(g.shape(x)) - 1
            if "Adaptive" in type(m).__name__:
                ins, outs = list(g.shape(x)[1:]), _pair(m.output_size, d)
                if any(o is None or i % o for i, o in zip(ins, outs)):
                    raise UnsupportedLayerError(f"module {label!r} ({type(m).__name__}): output size {outs} does "
                                                f"not divide the input size {ins}; uneven windows are not supported")
                k = [i // o for i, o in zip(ins, outs)]
                ids[n.name] = g.avgpool(x, k, k, name=label)
            else:
                if m.ceil_mode or getattr(m, "divisor_override", None):
                    raise UnsupportedLayerError(f"module {label!r} ({type(m).__name__}): ceil_mode or "
                                                "divisor_override")
                pads = _pair(m.padding, d)
                ids[n.name] = g.avgpool(x, _pair(m.kernel_size, d),
                                        _pair(m.stride if m.stride is not None else m.kernel_size, d), pads + pads,
                                        bool(m.count_include_pad), name=label)
        elif kind == "add":
            ids[n.name] = g.add(operand(n, 0), operand(n, 1), name=label)
        elif kind == "pass":
            target = out_shape(n)
            if target is None:  # x.size(...) and the like: not a tensor
                continue
            ids[n.name] = g.reshape(operand(n), target, name=label)
        else:  # pragma: no cover - build_plan's handler kinds are all listed above
            raise UnsupportedLayerError(f"node {n.name!r}: {kind!r} is not supported")
    out = [n for n in plan.nodes if n.op == "output"][0].args[0]
    return g.network(ids[out.name], metadata={"source": "torch", "input_shape": list(shape)})


__all__ = ["graph_from_torch"]

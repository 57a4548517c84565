r"""The model as a checked graph: torch.fx tracing, the BatchNorm canonizer, refusals, and one interpreter.

:func:`build_plan` traces a model with :func:`torch.fx.symbolic_trace` (the model itself is never modified) and
decides, node by node, how relevance passes through:

- ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``: *layers*, numbered 1..L in execution order, explained by a rule;
- ``nn.BatchNorm1d/2d`` (eval) directly after a layer whose output feeds only it: folded into that layer,
  :math:`W' = s W,\ b' = s (b - \mu) + \beta`, :math:`s = \gamma / \sqrt{\sigma^2 + \epsilon}` (the canonizer; done
  in the parameters' dtype, so the explained function equals the model up to rounding);
- ``nn.ReLU`` (also ``inplace=True``; run out of place), ``torch.relu``, ``F.relu``: the ReLU gate (its gradient);
- ``nn.MaxPool1d/2d``: winner takes all (its gradient);
- ``nn.AvgPool1d/2d``, ``nn.AdaptiveAvgPool1d/2d`` and the sum of two tensors (residual additions, ``a + b``,
  ``torch.add``): proportional redistribution :math:`R_i = a_i \sum_j T_{ji} R_j / n_j` with
  :math:`n = \mathcal{T}(a)` (zennit's ``Norm``);
- ``nn.Flatten``, ``nn.Identity``, ``nn.Dropout`` (eval), ``torch.flatten``, ``.view``, ``.reshape``,
  ``.flatten``, ``.size``, ``.contiguous``: relevance moves with the values.

Everything else is refused with :class:`~dtd_formal.errors.UnsupportedLayerError` naming the node and its module
or function: other modules and functional operations (their relevance would silently be the plain gradient),
parameters used functionally (``get_attr``), a Linear/Conv/BatchNorm module called twice (its "layer" would be
ambiguous), an in-place ReLU on a tensor that other operations also read, models in training mode, and models fx
cannot trace. The interpreter (:func:`run`) frees each value after its last reader, as fx's Interpreter does.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import InputError, UnsupportedLayerError
from .ops import ConvOp, LayerOp, LinearOp

LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)
MAXPOOL_TYPES = (nn.MaxPool1d, nn.MaxPool2d)
AVGPOOL_TYPES = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
PASS_TYPES = (nn.Flatten, nn.Identity, nn.Dropout)
RELU_FUNCTIONS = (torch.relu, F.relu)
ADD_FUNCTIONS = (operator.add, torch.add)
PASS_FUNCTIONS = (torch.flatten, torch.reshape)
PASS_METHODS = ("view", "reshape", "flatten", "size", "contiguous")


class ShapeModule(nn.Module):
    """Base of the shape-only modules :func:`dtd_formal.torch.from_onnx` builds (relevance moves with values)."""


@dataclass
class LayerInfo:
    """One explained layer: its number, module, operator and (BatchNorm-folded, detached) parameters."""

    index: int
    name: str
    node: str
    kind: str  # "linear" or "conv"
    op: LayerOp
    weight: torch.Tensor
    bias: torch.Tensor
    out_node: str  # node holding the layer's output (the folded BatchNorm's node if there is one)
    relu_after: bool = False  # the output feeds exactly one ReLU and nothing else
    relu_node: str | None = None
    is_last: bool = False  # the last layer L (only the explained output is relevant there)
    input_nonneg: bool = False  # the input is known to be >= 0 (a ReLU output, pooled or reshaped)
    module_type: type | None = None  # the module's class (composites key rules by it, as zennit's layer maps)


@dataclass
class Plan:
    """A traced, checked model: fx nodes in order, a handler kind per node, the layers."""

    gm: fx.GraphModule
    nodes: list[fx.Node]
    handler: dict[str, str]
    layers: list[LayerInfo]
    layer_of_node: dict[str, LayerInfo]
    modules: dict[str, nn.Module]
    relu_label: dict[str, Any] = field(default_factory=dict)  # relu node -> layer number (or node name)
    last_use: dict[str, list[str]] = field(default_factory=dict)  # node -> values it is the last reader of

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def layer(self, which: int | str) -> LayerInfo:
        """Layer by number (1..L) or module name."""
        if isinstance(which, str):
            for info in self.layers:
                if info.name == which:
                    return info
            raise InputError(f"no explained layer named {which!r}; layers: {[i.name for i in self.layers]}")
        if not isinstance(which, int) or not 1 <= which <= self.n_layers:
            raise InputError(f"layer {which!r} does not exist: layers are numbered 1..{self.n_layers}")
        return self.layers[which - 1]

    def downstream(self, node_name: str) -> set[str]:
        """Names of the nodes whose value depends on ``node_name`` (itself included)."""
        out = {node_name}
        for n in self.nodes:
            if any(isinstance(a, fx.Node) and a.name in out for a in n.all_input_nodes):
                out.add(n.name)
        return out


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"module {node.target!r} ({type(modules[node.target]).__name__})"
    if node.op == "call_function":
        return f"function {getattr(node.target, '__name__', node.target)!s} (node {node.name!r})"
    if node.op == "call_method":
        return f"method .{node.target}() (node {node.name!r})"
    return f"{node.op} {node.target!r} (node {node.name!r})"


class _Tracer(fx.Tracer):
    """torch.fx tracer that also keeps the backend's own shape modules as leaves."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, ShapeModule) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> fx.GraphModule:
    """fx trace of ``model`` (refused with the tracer's message when it cannot be traced)."""
    try:
        graph = _Tracer().trace(model)
        return fx.GraphModule(model, graph, type(model).__name__)
    except Exception as exc:  # noqa: BLE001 - any tracing failure is a refusal
        raise UnsupportedLayerError(
            f"model {type(model).__name__} cannot be traced by torch.fx ({type(exc).__name__}: {exc}); "
            "the backend attributes only graphs it can see"
        ) from None


def _fold_bn(name: str, bn: nn.Module, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm (eval, running statistics) folded into the preceding layer's (W, b)."""
    if bn.running_mean is None or bn.running_var is None:
        raise UnsupportedLayerError(f"module {name!r} ({type(bn).__name__}): no running statistics; cannot fold")
    n = W.shape[0]
    if bn.num_features != n:
        raise InputError(f"module {name!r}: {bn.num_features} features after a layer with {n} outputs")
    dtype = W.dtype
    mean, var = bn.running_mean.detach().to(dtype), bn.running_var.detach().to(dtype)
    gamma = bn.weight.detach().to(dtype) if bn.weight is not None else torch.ones(n, dtype=dtype, device=W.device)
    beta = bn.bias.detach().to(dtype) if bn.bias is not None else torch.zeros(n, dtype=dtype, device=W.device)
    s = gamma / torch.sqrt(var + bn.eps)
    return W * s.reshape((-1,) + (1,) * (W.dim() - 1)), (b - mean) * s + beta


def build_plan(model: nn.Module) -> Plan:
    """Trace and check ``model`` (see the module docstring); nothing in ``model`` changes."""
    for name, m in model.named_modules():
        if m.training and isinstance(m, (nn.Dropout,) + BN_TYPES):
            raise InputError(f"module {name!r} ({type(m).__name__}) is in training mode; call model.eval() first")
    gm = trace(model)
    modules = dict(gm.named_modules())
    nodes = list(gm.graph.nodes)
    handler: dict[str, str] = {}
    layers: list[LayerInfo] = []
    layer_of_node: dict[str, LayerInfo] = {}
    seen_param_modules: set[str] = set()
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedLayerError(f"the model's forward takes {len(placeholders)} inputs; exactly one is supported")
    for n in nodes:
        if n.op == "placeholder":
            handler[n.name] = "input"
        elif n.op == "output":
            if not isinstance(n.args[0], fx.Node):
                raise UnsupportedLayerError("the model returns a tuple or a constant; exactly one tensor is supported")
            handler[n.name] = "output"
        elif n.op == "call_module":
            m = modules[n.target]
            if isinstance(m, LAYER_TYPES + BN_TYPES):
                if n.target in seen_param_modules:
                    raise UnsupportedLayerError(
                        f"{_describe(n, modules)} is called more than once; a reused layer cannot be attributed"
                    )
                seen_param_modules.add(n.target)
            if isinstance(m, LAYER_TYPES):
                op: LayerOp = LinearOp() if isinstance(m, nn.Linear) else ConvOp.from_module(n.target, m)
                W = m.weight.detach()
                b = m.bias.detach() if m.bias is not None else torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)
                info = LayerInfo(len(layers) + 1, n.target, n.name, op.kind, op, W, b, n.name, module_type=type(m))
                layers.append(info)
                layer_of_node[n.name] = info
                handler[n.name] = "layer"
            elif isinstance(m, BN_TYPES):
                src = n.args[0]
                info = layer_of_node.get(src.name) if isinstance(src, fx.Node) else None
                if info is None or info.out_node != src.name or len(src.users) != 1:
                    raise UnsupportedLayerError(
                        f"{_describe(n, modules)}: BatchNorm is folded only into a Conv/Linear directly before it "
                        "whose output feeds nothing else"
                    )
                info.weight, info.bias = _fold_bn(n.target, m, info.weight, info.bias)
                info.out_node = n.name
                layer_of_node[n.name] = info
                handler[n.name] = "bn"
            elif isinstance(m, nn.ReLU):
                handler[n.name] = "relu"
            elif isinstance(m, MAXPOOL_TYPES):
                if getattr(m, "return_indices", False):
                    raise UnsupportedLayerError(f"{_describe(n, modules)}: return_indices=True is not supported")
                handler[n.name] = "maxpool"
            elif isinstance(m, AVGPOOL_TYPES):
                handler[n.name] = "avgpool"
            elif isinstance(m, PASS_TYPES + (ShapeModule,)):
                handler[n.name] = "pass"
            else:
                raise UnsupportedLayerError(
                    f"{_describe(n, modules)} is not supported by the torch backend (supported: Linear, Conv1d/2d, "
                    "ReLU, MaxPool, AvgPool, AdaptiveAvgPool, BatchNorm after a layer, Flatten, Identity, Dropout)"
                )
        elif n.op == "call_function":
            if n.target in RELU_FUNCTIONS:  # in place or not: the interpreter runs it out of place
                handler[n.name] = "relu"
            elif n.target in ADD_FUNCTIONS:
                tensors = [a for a in n.args if isinstance(a, fx.Node)]
                if len(n.args) != 2 or len(tensors) != 2 or n.kwargs:
                    raise UnsupportedLayerError(
                        f"{_describe(n, modules)}: only the sum of two tensors (a residual addition) is supported"
                    )
                handler[n.name] = "add"
            elif n.target in PASS_FUNCTIONS:
                handler[n.name] = "pass"
            else:
                raise UnsupportedLayerError(
                    f"{_describe(n, modules)} is not supported: a functional operation the backend cannot attribute"
                )
        elif n.op == "call_method":
            if n.target in PASS_METHODS:
                handler[n.name] = "pass"
            elif n.target in ("relu", "relu_"):
                handler[n.name] = "relu"
            elif n.target == "add" and len(n.args) == 2 and all(isinstance(a, fx.Node) for a in n.args) and not n.kwargs:
                handler[n.name] = "add"
            else:
                raise UnsupportedLayerError(
                    f"{_describe(n, modules)} is not supported: a tensor method the backend cannot attribute"
                )
        else:  # get_attr
            raise UnsupportedLayerError(
                f"{_describe(n, modules)}: a parameter or buffer used by a functional operation cannot be attributed"
            )
    if not layers:
        raise InputError("the model has no Linear or Conv layer to explain")
    plan = Plan(gm, nodes, handler, layers, layer_of_node, modules)
    seen: set[str] = set()
    for n in reversed(nodes):
        for a in n.all_input_nodes:
            if a.name not in seen:
                seen.add(a.name)
                plan.last_use.setdefault(n.name, []).append(a.name)
    by_name = {n.name: n for n in nodes}
    for info in layers:
        out = by_name[info.out_node]
        users = list(out.users)
        if len(users) == 1 and handler[users[0].name] == "relu":
            info.relu_after, info.relu_node = True, users[0].name
            plan.relu_label[users[0].name] = info.index
    layers[-1].is_last = True
    nonneg: set[str] = set()
    for n in nodes:  # ReLU outputs, and what pools, reshapes and sums of them give, are >= 0
        kind = handler[n.name]
        ins = [a.name for a in n.all_input_nodes]
        if kind == "relu" or (kind in ("maxpool", "avgpool", "add", "pass") and ins and all(i in nonneg for i in ins
                                                                                          if i in handler)):
            nonneg.add(n.name)
    for info in layers:
        src = by_name[info.node].args[0]
        info.input_nonneg = isinstance(src, fx.Node) and src.name in nonneg
    for n in nodes:
        if handler[n.name] == "relu" and _inplace(n, modules) and len(n.args[0].users) > 1:
            raise UnsupportedLayerError(
                f"{_describe(n, modules)} works in place on a tensor that other operations also read; "
                "running it out of place would change what they see"
            )
        if handler[n.name] == "relu" and n.name not in plan.relu_label:
            plan.relu_label[n.name] = n.name
    return plan


def _inplace(n: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if n.op == "call_module":
        return bool(getattr(modules[n.target], "inplace", False))
    if n.op == "call_method":
        return n.target == "relu_"
    return bool(n.kwargs.get("inplace", False)) or (len(n.args) > 1 and bool(n.args[1]))


# ---------------------------------------------------------------------------------------------------- interpreter
@dataclass
class Handlers:
    """What the interpreter does at each kind of node (defaults: the plain forward function)."""

    layer: Callable[[LayerInfo, torch.Tensor], torch.Tensor] | None = None
    relu: Callable[[str, torch.Tensor], torch.Tensor] | None = None
    maxpool: Callable[[str, nn.Module, torch.Tensor], torch.Tensor] | None = None
    avgpool: Callable[[str, nn.Module, torch.Tensor], torch.Tensor] | None = None
    add: Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor] | None = None


def plain_layer(info: LayerInfo, a: torch.Tensor) -> torch.Tensor:
    """The layer's forward function with folded parameters."""
    return info.op.forward(a, info.weight, info.bias)


def run(
    plan: Plan,
    x: torch.Tensor,
    handlers: Handlers | None = None,
    env_out: dict[str, Any] | None = None,
    start: tuple[str, torch.Tensor] | None = None,
    base_env: dict[str, Any] | None = None,
    base_rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run the plan on x. ``start=(node, value)`` overrides one node's value; nodes that do not depend on it are
    read from ``base_env`` (row ``base_rows[r]`` for row r of ``value``, or expanded when ``base_rows`` is None).
    ``env_out`` receives every node's value."""
    h = handlers or Handlers()
    env: dict[str, Any] = {} if env_out is None else env_out
    last_use = plan.last_use if env_out is None else {}
    recompute: set[str] | None = None
    if start is not None:
        recompute = plan.downstream(start[0])
        batch = start[1].shape[0]
        by_name = {n.name: n for n in plan.nodes}
        needed = {a.name for r in recompute for a in by_name[r].all_input_nodes} - recompute  # the frontier

    def val(a: Any) -> Any:
        if isinstance(a, fx.Node):
            return env[a.name]
        if isinstance(a, (list, tuple)):
            return type(a)(val(v) for v in a)
        return a

    for n in plan.nodes:
        kind = plan.handler[n.name]
        if start is not None:
            if n.name == start[0]:
                env[n.name] = start[1]
                continue
            if n.name not in recompute and kind != "output":  # type: ignore[operator]
                if n.name not in needed:
                    continue
                v = base_env[n.name]  # type: ignore[index]
                if isinstance(v, torch.Tensor) and base_rows is not None:
                    env[n.name] = v[base_rows]
                else:
                    env[n.name] = v.expand(batch, *v.shape[1:]) if isinstance(v, torch.Tensor) else v
                continue
        if kind == "input":
            env[n.name] = x
        elif kind == "output":
            return env[n.args[0].name]
        elif kind == "layer":
            info = plan.layer_of_node[n.name]
            a = env[n.args[0].name]
            if info.out_node != n.name:  # BatchNorm follows: the folded layer runs at the BatchNorm node
                env[n.name] = a
            else:
                env[n.name] = (h.layer or plain_layer)(info, a)
        elif kind == "bn":
            info = plan.layer_of_node[n.name]
            env[n.name] = (h.layer or plain_layer)(info, env[n.args[0].name])
        elif kind == "relu":
            z = env[n.args[0].name]
            env[n.name] = h.relu(n.name, z) if h.relu else F.relu(z)
        elif kind == "maxpool":
            m = plan.modules[n.target]
            env[n.name] = h.maxpool(n.name, m, env[n.args[0].name]) if h.maxpool else m(env[n.args[0].name])
        elif kind == "avgpool":
            m = plan.modules[n.target]
            env[n.name] = h.avgpool(n.name, m, env[n.args[0].name]) if h.avgpool else m(env[n.args[0].name])
        elif kind == "add":
            p, q = env[n.args[0].name], env[n.args[1].name]
            env[n.name] = h.add(n.name, p, q) if h.add else p + q
        else:  # pass
            args, kwargs = val(n.args), val(n.kwargs)
            if n.op == "call_module":
                env[n.name] = plan.modules[n.target](*args, **kwargs)
            elif n.op == "call_function":
                env[n.name] = n.target(*args, **kwargs)
            else:
                obj = args[0]
                if n.target == "view" and isinstance(obj, torch.Tensor) and not obj.is_contiguous():
                    obj = obj.contiguous()  # the same values; LRP runs convolutions in channels_last on the CPU
                env[n.name] = getattr(obj, n.target)(*args[1:], **kwargs)
        for dead in last_use.get(n.name, ()):  # free values no later node reads (as fx's Interpreter does)
            env.pop(dead, None)
    raise RuntimeError("graph has no output node")  # pragma: no cover


__all__ = ["Handlers", "LayerInfo", "Plan", "ShapeModule", "build_plan", "plain_layer", "run", "trace"]

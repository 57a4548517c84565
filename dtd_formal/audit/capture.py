"""Run an explainer with hooks on every module and record the relevance entering and leaving each one.

The model is traced with torch.fx and each functional operation that matters for relevance (``+`` / ``torch.add``
on tensors, ``F.relu`` / ``torch.relu`` / ``.relu()``) becomes a call of a :class:`FunctionalNode` module that
runs the same function: autograd computes exactly what it computed before (no library hooks such a module,
since it matches none of their types), but hooks can now see it, so a leak at a residual sum is reported at the
sum. Hooks (registered after the library's, with the input hook prepended so that it sits outside the library's
own input wrapper):

- the relevance *entering* a module is the gradient arriving at its output tensor;
- the relevance *leaving* it is the gradient at (a view of) each of its inputs;
- its input values are kept (the definition check recomputes the layer's rule from them).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

WRAPPED_FUNCTIONS: dict[Any, str] = {operator.add: "add", torch.add: "add", F.relu: "relu", torch.relu: "relu"}
WRAPPED_METHODS = {"add": "add", "relu": "relu"}


class FunctionalNode(nn.Module):
    """A functional operation as a module (module docstring): ``forward`` calls the function unchanged."""

    def __init__(self, fn: Callable[..., Any], kind: str, source: str) -> None:
        super().__init__()
        self.fn, self.kind, self.source = fn, kind, source

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.kind}: {self.source}"


def source(node: fx.Node) -> str:
    """The operation as a call on the fx values it reads, e.g. ``add(relu0, conv2)``."""
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    return f"{target}({', '.join(str(a) for a in node.args)})"


def wrap_functionals(model: nn.Module) -> fx.GraphModule:
    """The model traced, with its adds and ReLU calls as :class:`FunctionalNode` modules (same parameters)."""
    gm = fx.symbolic_trace(model)
    for node in list(gm.graph.nodes):
        kind = None
        if node.op == "call_function" and node.target in WRAPPED_FUNCTIONS:
            kind, fn = WRAPPED_FUNCTIONS[node.target], node.target
        elif node.op == "call_method" and node.target in WRAPPED_METHODS:
            kind, method = WRAPPED_METHODS[node.target], node.target
            fn = (lambda m: (lambda obj, *a, **k: getattr(obj, m)(*a, **k)))(method)
        if kind is None:
            continue
        taken = dict(gm.named_modules())
        name = node.name if node.name not in taken else f"functional_{node.name}"
        gm.add_submodule(name, FunctionalNode(fn, kind, source(node)))
        with gm.graph.inserting_after(node):
            new = gm.graph.call_module(name, node.args, node.kwargs)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


@dataclass
class Captured:
    """What one hooked run saw, per module name: input values, the module's own output, relevance entering (at
    the output) and leaving (at each tensor input), in call order; ``params``: each module's weight and bias as
    they were when it ran."""

    order: list[str] = field(default_factory=list)
    modules: dict[str, nn.Module] = field(default_factory=dict)
    inputs: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    entering: dict[str, torch.Tensor] = field(default_factory=dict)
    leaving: dict[str, list[torch.Tensor | None]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    params: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = field(default_factory=dict)
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    produced_by: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = field(default_factory=dict)

    def output(self, name: str) -> torch.Tensor | None:
        """The module's recorded output (a copy taken as it came out), if it is the layer's product with the
        recorded input and ``params``: None when none was recorded or the weights it was computed with
        (``produced_by``) are not ``params`` (something changed them between the two, or ``params`` was
        replaced)."""
        if name not in self.outputs:
            return None
        if name in self.params or name in self.produced_by:
            if name not in self.params or name not in self.produced_by:
                return None
            (W, b), (W_out, b_out) = self.params[name], self.produced_by[name]
            if not torch.equal(W, W_out) or (b is None) != (b_out is None) or (b is not None and not torch.equal(b, b_out)):
                return None
        return self.outputs[name]


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules with no children (the ones that compute), with their qualified names."""
    return [(n, m) for n, m in model.named_modules() if n and not list(m.children())]


def _record_call(cap: Captured, name: str, mod: nn.Module, values: list[torch.Tensor]) -> None:
    """Count a call of module ``name`` and keep its input values and its parameters (and BatchNorm statistics) as
    they are when it runs (canonizers change them; captum changes weights after a layer's first run)."""
    cap.calls[name] = cap.calls.get(name, 0) + 1
    if name not in cap.order:
        cap.order.append(name)
    cap.inputs[name] = values
    W = getattr(mod, "weight", None)
    if isinstance(W, torch.Tensor):
        b = getattr(mod, "bias", None)
        cap.params[name] = (W.detach().clone(), None if b is None else b.detach().clone())
    if isinstance(getattr(mod, "running_var", None), torch.Tensor):
        cap.stats[name] = (mod.running_mean.detach().clone(), mod.running_var.detach().clone())


def install_hooks(model: nn.Module, cap: Captured) -> list[Any]:
    """Register the recording hooks (module docstring) on every leaf module; returns the handles."""
    handles: list[Any] = []
    for name, module in leaf_modules(model):
        cap.modules[name] = module

        def pre(mod: nn.Module, args: tuple[Any, ...], name: str = name) -> tuple[Any, ...]:
            new_args, values, grads = [], [], []
            for a in args:
                if isinstance(a, torch.Tensor) and a.requires_grad:
                    v = a.view_as(a)
                    grads.append(None)
                    v.register_hook(lambda g, name=name, k=len(grads) - 1: _store_leaving(cap, name, k, g))
                    new_args.append(v)
                    values.append(a.detach())
                else:
                    new_args.append(a)
                    if isinstance(a, torch.Tensor):
                        values.append(a.detach())
                        grads.append(None)
            _record_call(cap, name, mod, values)
            cap.leaving[name] = grads
            return tuple(new_args)

        def post(mod: nn.Module, args: tuple[Any, ...], out: Any, name: str = name) -> Any:
            if isinstance(out, torch.Tensor) and out.requires_grad:
                out.register_hook(lambda g, name=name: cap.entering.__setitem__(name, g.detach()))
            return out

        handles.append(module.register_forward_pre_hook(pre, prepend=True))
        handles.append(module.register_forward_hook(_output_hook(cap, name, first_only=False), prepend=True))
        handles.append(module.register_forward_hook(post))
    return handles


def _output_hook(cap: Captured, name: str, first_only: bool) -> Callable[..., None]:
    """A forward hook keeping a layer's output (a module with weights) as its own forward computed it (registered
    first, so before any library hook can replace it), with the weights it was computed with: with its recorded
    input and parameters it spares the definition check the layer's forward product. ``first_only``: keep the
    first call's (as the first-call input hooks do)."""

    def seen(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        W = getattr(mod, "weight", None)
        if isinstance(out, torch.Tensor) and isinstance(W, torch.Tensor) and not (first_only and name in cap.outputs):
            # a copy: the tensor itself may be changed later (an in-place ReLU, a write through .data, captum's
            # second pass sharing its storage), and no version counter sees every such write
            cap.outputs[name] = out.detach().clone()
            b = getattr(mod, "bias", None)
            cap.produced_by[name] = (W.detach().clone(), None if b is None else b.detach().clone())

    return seen


def install_first_call_hooks(model: nn.Module, cap: Captured) -> list[Any]:
    """Register hooks that only look: on its first call, each leaf module's input values (copied), parameters and
    statistics are recorded; arguments pass unchanged and no gradient hook is set. For a library that runs the
    model more than once and keeps the relevances itself (captum: a plain first pass, then a pass with changed
    weights and replaced inputs), this reads the layer inputs of its plain pass without a forward pass of our
    own and without touching its graph. Returns the handles."""
    handles: list[Any] = []
    for name, module in leaf_modules(model):
        cap.modules[name] = module

        def pre(mod: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            if name in cap.calls:
                cap.calls[name] += 1
                return
            _record_call(cap, name, mod, [a.detach().clone() for a in args if isinstance(a, torch.Tensor)])

        handles.append(module.register_forward_pre_hook(pre, prepend=True))
        handles.append(module.register_forward_hook(_output_hook(cap, name, first_only=True), prepend=True))
    return handles


def _store_leaving(cap: Captured, name: str, k: int, g: torch.Tensor) -> None:
    cap.leaving[name][k] = g.detach()


def hook_counts(model: nn.Module) -> dict[str, tuple[int, int, int, int]]:
    """Per module: the numbers of forward pre-hooks, forward hooks, backward hooks and backward pre-hooks (the
    audit checks that a library leaves them as it found them)."""
    return {n: (len(m._forward_pre_hooks), len(m._forward_hooks), len(m._backward_hooks),
                len(getattr(m, "_backward_pre_hooks", {}))) for n, m in model.named_modules()}


__all__ = ["Captured", "FunctionalNode", "hook_counts", "install_first_call_hooks", "install_hooks", "leaf_modules",
           "source", "wrap_functionals"]

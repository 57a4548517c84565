r"""LRP on torch models as modified gradients: one forward pass, one backward pass.

Relevance travels as the gradient (zennit's convention): the explained output c starts with
:math:`R^L = f_c(x)\, e_c` (``grad_outputs = one-hot * output``), and each node's backward maps the relevance of its
output to the relevance of its input:

- a layer (Linear/Conv, BatchNorm folded) runs its rule's own ``redistribute`` body over
  :class:`~dtd_formal.torch.ops.LazyOps` (the modified-gradient form: one modified convolution and one modified
  transposed convolution per term of the rule; the plain forward output is reused for the unmodified term);
- a ReLU's gradient is the gate :math:`[z > 0]`, a max-pool's gradient sends relevance to the winner, reshapes
  move it along (their own gradients);
- average pools and residual sums redistribute proportionally,
  :math:`R_i = a_i \sum_j T_{ji} R_j / n_j` with :math:`n = \mathcal{T}(a)`, stabilised as zennit's ``Norm``
  (``norm="zennit"``, :math:`\mathrm{stab}(n) = n + 10^{-6} \mathrm{sign}_0(n)`), or exact (``norm="dtd"``, a
  zero normaliser drops its relevance). The default follows the rule's ``bias`` convention. A number
  (``norm=1e-9``) is captum's epsilon rule on pools: average and max-pools alike redistribute as
  :math:`a_i \sum_j \partial_i n_j R_j / (n_j + \epsilon\, \mathrm{sign}_0(n_j))` (a max-pool's winner gets
  :math:`a_w R / \mathrm{stab}(a_w)`).

:func:`modified_gradients` is the context manager that makes ``model(x)`` build this graph; on exit, also after an
exception, the model's ``forward`` is what it was before (nothing else is touched: parameters, hooks, modes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..rules.base import ZENNIT_STABILIZER, Rule
from ..rules.composites import Composite, rule_for_layer
from .graph import Handlers, LayerInfo, Plan, build_plan, run
from .ops import CrossRowOperation, LazyOps, ScratchPool, TorchOps, safe_divide, stabilise, uses_plain_term

_MISSING = object()


@dataclass
class LRPState:
    """What one modified-gradient run uses and records.

    ``relevances[l]`` (when ``record`` is true) is :math:`R^l`, the relevance of layer l's output as it enters
    the layer's backward (after the ReLU gate above it), for l = 1..L.
    """

    plan: Plan
    rules: dict[int, Rule]
    norm: str | float
    dense_linear: bool = False
    activation: str = "gate"
    record: bool = False
    relevances: dict[int, torch.Tensor] = field(default_factory=dict)
    pool: ScratchPool = field(default_factory=ScratchPool)
    outputs: dict[int, torch.Tensor] = field(default_factory=dict)


#: Linear layers with more weights than this are evaluated in blocks of rows of about this many weights
#: (2**22: 16 MiB in float32), see :func:`redistribute_layer`.
LINEAR_ROW_BLOCK = 2**22


def redistribute_layer(rule: Rule, info: LayerInfo, a: torch.Tensor, y: torch.Tensor | None, R: torch.Tensor,
                       dense: bool = False, pool: ScratchPool | None = None) -> torch.Tensor:
    r"""The rule's ``redistribute`` for one layer and a batch: LazyOps, or the dense body per sample (Linear).

    ``y`` is the layer's output :math:`\mathcal{L}(a; W) + b` from the forward pass, if at hand; ``pool`` takes
    the step's output-space temporaries (released here once the result is known not to share memory with them).

    A large Linear layer is evaluated in blocks of output neurons J (rows of W),
    :math:`R^{in} = \sum_J C_{J\cdot}^\top (R_J / n_J)`, which is the same sum because a rule's normaliser
    :math:`n_j` and contributions :math:`C_{j\cdot}` depend on row j alone; modified weights such as
    :math:`W^+` then exist one block at a time (VGG16's first classifier layer: 16 MiB instead of 392 MiB of fresh
    memory per call). A body that mixes rows raises :class:`CrossRowOperation` and the layer runs unblocked.
    """
    if dense and info.kind == "linear" and a.dim() == 2:
        ops = TorchOps(a.dtype, a.device)
        return torch.stack([rule.redistribute(ops, a[i], info.weight, info.bias, R[i]) for i in range(a.shape[0])])
    nonneg = True if info.input_nonneg else None
    W, b = info.weight, info.bias
    if info.kind == "linear" and W.numel() > LINEAR_ROW_BLOCK and R.dim() == 2:
        rows = max(1, LINEAR_ROW_BLOCK // W.shape[1])
        try:
            total: torch.Tensor | None = None
            for j in range(0, W.shape[0], rows):
                J = slice(j, j + rows)
                ops = LazyOps(info.op, a, W[J], b[J], None if y is None else y[:, J], nonneg, row_block=True)
                part = rule.redistribute(ops, ops.a, ops.W, ops.b, ops.out(R[:, J])).t
                ops.release()
                total = part if total is None else total.add_(part)
            if total is not None:
                return total
        except CrossRowOperation:
            ops.release()
    ops = LazyOps(info.op, a, W, b, y, nonneg, pool=pool)
    result = rule.redistribute(ops, ops.a, ops.W, ops.b, ops.out(R)).t
    ops.release()
    if pool is not None:
        if pool.holds(result):
            result = result.clone()
        pool.release()
    return result


class _LayerFunction(torch.autograd.Function):
    r"""One layer's forward and its rule as the backward; with ``fuse_relu`` also the ReLU after it.

    Fused, the forward returns :math:`\mathrm{relu}(y)` and the backward first applies the ReLU gate
    :math:`[y > 0]`. The rule then reads :math:`\mathrm{relu}(y)` where its body uses the layer output: the same
    values wherever the gated relevance is non-zero, and the result is linear in that relevance, so nothing changes
    except that the output kept for the backward is the tensor the next layer keeps anyway (no extra memory).

    On the CPU a 2-d convolution runs on its input in channels_last, the layout oneDNN computes in (measured on
    VGG16: about 20 % faster per convolution and a third of the fresh memory, which the NCHW path spends on
    layout copies); the values are the same, the following layers inherit the layout, and :func:`lrp` returns the
    relevance in x's layout.
    """

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, info: LayerInfo, state: LRPState, fuse_relu: bool) -> torch.Tensor:  # type: ignore[override]
        if info.kind == "conv" and a.dim() == 4 and a.device.type == "cpu":
            a = a.contiguous(memory_format=torch.channels_last)  # oneDNN's own layout (class docstring)
        y = info.op.forward(a, info.weight, info.bias)
        if fuse_relu:
            y.clamp_(min=0)
        # the output is kept only if the rule's body uses the unmodified term (then it is read, not recomputed)
        keep = fuse_relu or uses_plain_term(state.rules[info.index])
        ctx.save_for_backward(a, y if keep else None)
        ctx.info, ctx.state, ctx.fuse_relu = info, state, fuse_relu
        return y

    @staticmethod
    def backward(ctx: Any, R: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        a, y = ctx.saved_tensors
        info, state = ctx.info, ctx.state
        if ctx.fuse_relu:
            R = R.masked_fill(y <= 0, 0.0)  # the ReLU gate (its gradient)
        if state.record:
            state.relevances[info.index] = R.detach()
        R_in = redistribute_layer(state.rules[info.index], info, a, y, R, state.dense_linear, state.pool)
        return R_in, None, None, None


class _PassReLU(torch.autograd.Function):
    """relu forward, identity backward: zennit's ``Pass`` rule on an activation (``activation="pass"``)."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.relu(z)

    @staticmethod
    def backward(ctx: Any, R: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return R


def _normalise(n: torch.Tensor, norm: str | float) -> torch.Tensor:
    if norm == "dtd":
        return n
    return stabilise(n, ZENNIT_STABILIZER if norm == "zennit" else norm)


class _AvgPoolFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, module: nn.Module, norm: str | float) -> torch.Tensor:  # type: ignore[override]
        y = module(a)
        ctx.save_for_backward(a, y)
        ctx.module, ctx.norm = module, norm
        return y

    @staticmethod
    def backward(ctx: Any, R: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        a, y = ctx.saved_tensors
        s = safe_divide(R, _normalise(y, ctx.norm))
        with torch.enable_grad():
            a_ = a.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(ctx.module(a_), a_, s)
        return a * g, None, None


class _AddFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, p: torch.Tensor, q: torch.Tensor, norm: str | float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(p, q)
        ctx.norm = norm
        return p + q

    @staticmethod
    def backward(ctx: Any, R: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        p, q = ctx.saved_tensors
        s = safe_divide(R, _normalise(p + q, ctx.norm))
        return p * s, q * s, None


def _add(name: str, p: torch.Tensor, q: torch.Tensor, norm: str | float) -> torch.Tensor:
    if not (isinstance(p, torch.Tensor) and isinstance(q, torch.Tensor)) or p.shape != q.shape:
        from ..errors import UnsupportedLayerError

        raise UnsupportedLayerError(
            f"addition {name!r}: only the sum of two tensors of the same shape is attributed "
            f"(got {tuple(getattr(p, 'shape', ()))} and {tuple(getattr(q, 'shape', ()))})"
        )
    return _AddFunction.apply(p, q, norm)


def plan_rules(rule_or_composite: Rule | Composite, plan: Plan) -> dict[int, Rule]:
    """The rule of every layer of the plan (a composite chooses by module name and type, then by kind)."""
    if isinstance(rule_or_composite, str):
        from ..rules.parse import parse_explainer

        rule_or_composite = parse_explainer(rule_or_composite)
    if not isinstance(rule_or_composite, (Rule, Composite)):
        raise InputError(f"expected a Rule, a Composite or a rule/composite string, got {type(rule_or_composite).__name__}")
    return {i.index: rule_for_layer(rule_or_composite, i.index, plan.n_layers, i.kind, i.name, i.module_type)
            for i in plan.layers}


def make_state(plan: Plan, rule_or_composite: Rule | Composite, norm: str | float | None = None,
               dense_linear: bool = False, activation: str | None = None) -> LRPState:
    """The run's rules and conventions: ``norm`` and ``activation`` default from the rules' ``bias`` ("zennit":
    zennit's Norm and Pass; "dtd": exact normalisers and the ReLU gate)."""
    from ..walk import resolve_activation

    rules = plan_rules(rule_or_composite, plan)
    zennit = any(r.bias == "zennit" for r in rules.values())
    norm = ("zennit" if zennit else "dtd") if norm is None else norm
    numeric = isinstance(norm, (int, float)) and not isinstance(norm, bool)
    if not (norm in ("dtd", "zennit") or numeric and 0 <= float(norm) < float("inf")):
        raise InputError(f"norm must be 'dtd', 'zennit' or a stabiliser epsilon >= 0, got {norm!r}")
    norm = float(norm) if numeric else norm
    return LRPState(plan, rules, norm, dense_linear, resolve_activation(activation, rules.values()))


def lrp_handlers(state: LRPState) -> Handlers:
    # a ReLU that alone reads a layer's output runs inside the layer's function (see _LayerFunction); when
    # recording, layers stay unfused so that ``outputs[l]`` is the pre-activation z_l
    # (only for rules that keep the output anyway: measured on VGG16, fusing the others costs memory and time)
    # (with activation="pass" the ReLU's backward is the identity: nothing is fused, every ReLU is a _PassReLU)
    passing = state.activation == "pass"
    fused = set() if state.record or passing else {
        i.relu_node for i in state.plan.layers if i.relu_after and uses_plain_term(state.rules[i.index])}
    # the other ReLUs that alone read a layer's output run in place: the layer's function does not keep its output
    in_place = set() if state.record or passing else {
        i.relu_node for i in state.plan.layers if i.relu_after and i.relu_node not in fused}

    def layer(info: LayerInfo, a: torch.Tensor) -> torch.Tensor:
        y = _LayerFunction.apply(a, info, state, info.relu_node in fused)
        if state.record:
            state.outputs[info.index] = y
        return y

    def relu(name: str, z: torch.Tensor) -> torch.Tensor:
        if passing:
            return _PassReLU.apply(z)
        if name in fused:
            return z
        return torch.relu_(z) if name in in_place else torch.relu(z)

    # a numeric norm (captum's epsilon rule on pools) makes max-pools proportional too: a_w R / stab(a_w)
    proportional_max = not isinstance(state.norm, str)
    return Handlers(
        layer=layer,
        relu=relu,
        maxpool=(lambda name, m, a: _AvgPoolFunction.apply(a, m, state.norm)) if proportional_max else None,
        avgpool=lambda name, m, a: _AvgPoolFunction.apply(a, m, state.norm),
        add=lambda name, p, q: _add(name, p, q, state.norm),
    )


@contextmanager
def modified_gradients(
    model: nn.Module, rule_or_composite: Rule | Composite, norm: str | float | None = None, dense_linear: bool = False,
    record: bool = False, activation: str | None = None, plan: Plan | None = None,
) -> Iterator[LRPState]:
    r"""Within the block, ``model(x)`` computes the same outputs and its gradient is the LRP relevance.

    Parameters
    ----------
    model : nn.Module
        Traced and checked by :func:`dtd_formal.torch.graph.build_plan` (refusals raise before anything changes).
    rule_or_composite : Rule or Composite
        The catalogue's rule for every layer, or a composite (``rule_for(layer, L, kind)``).
    norm : {"dtd", "zennit"} or float, optional
        Convention of the proportional nodes (average pools, residual sums): unstabilised, zennit's ``Norm``, or,
        a number, :math:`n + \epsilon\,\mathrm{sign}_0(n)` with that epsilon, max-pools included (captum);
        default from the rules' ``bias``.
    dense_linear : bool
        Run Linear layers through the dense rule body (:class:`TorchOps`, per sample) instead of LazyOps.
    record : bool
        Record each layer's upper relevance and output in the yielded state.
    activation : {"gate", "pass"}, optional
        How relevance crosses a ReLU: its gradient, the gate :math:`[z > 0]` (the DTD derivation), or unchanged
        (zennit's ``Pass``); default "pass" when a rule uses ``bias="zennit"``, else "gate".
    plan : Plan, optional
        ``build_plan(model)`` when the caller has it already.

    Yields
    ------
    LRPState
    """
    from .canonizers import check_canonizers

    check_canonizers(rule_or_composite)
    plan = plan or build_plan(model)
    state = make_state(plan, rule_or_composite, norm, dense_linear, activation)
    state.record = record
    handlers = lrp_handlers(state)
    previous = model.__dict__.get("forward", _MISSING)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return run(plan, x, handlers)

    model.forward = forward  # type: ignore[method-assign]
    try:
        yield state
    finally:
        if previous is _MISSING:
            del model.forward
        else:
            model.forward = previous  # type: ignore[method-assign]


def output_selector(y: torch.Tensor, output: Any) -> torch.Tensor:
    """The explained class per batch row: an int, a sequence/tensor of ints, or None (the argmax)."""
    if y.dim() != 2:
        raise InputError(f"the model output has shape {tuple(y.shape)}; expected (batch, outputs)")
    B, n = y.shape
    if output is None:
        c = y.detach().argmax(dim=1)
    elif isinstance(output, int):
        c = torch.full((B,), output, dtype=torch.long, device=y.device)
    else:
        c = torch.as_tensor(output, dtype=torch.long, device=y.device).reshape(-1)
        if c.numel() != B:
            raise InputError(f"output: {c.numel()} classes for a batch of {B}")
    if bool(((c < 0) | (c >= n)).any()):
        raise InputError(f"output {output!r} out of range: the model has {n} outputs")
    return c


def top_relevance(y: torch.Tensor, output: Any = None, target: Any = None) -> torch.Tensor:
    r"""The output layer's relevance :math:`R^L`: :math:`f_c(x)\, e_c` per row for a class c (``output`` or an
    integer / per-row ``target``, captum's name; None: the argmax), or ``target`` itself when it is a tensor of
    the output's shape or a row of it (zennit's ``grad_outputs``, e.g. a one-hot ``torch.eye(n)[[c]]``)."""
    if target is not None and output is not None:
        raise InputError("give the explained output once: output= or target=, not both")
    if isinstance(target, torch.Tensor) and target.is_floating_point():
        t = target.to(dtype=y.dtype, device=y.device)
        if t.shape == y.shape[1:]:
            t = t.expand_as(y)
        elif t.dim() == 2 and t.shape[0] == 1 and t.shape[1] == y.shape[1]:
            t = t.expand_as(y)
        if t.shape != y.shape:
            raise InputError(f"target: a relevance tensor of shape {tuple(target.shape)} for a model output of "
                             f"shape {tuple(y.shape)}")
        return t.clone()
    c = output_selector(y, target if output is None else output)
    rows = torch.arange(y.shape[0], device=y.device)
    grad = torch.zeros_like(y)
    grad[rows, c] = y.detach()[rows, c]
    return grad


def expected_input_dims(plan: Plan) -> int | None:
    """Dimensions of a batch when the model's input goes straight into its first layer (a Linear: 2, a ConvNd:
    N + 2); None when something else reads the input first (a Flatten, a pool: the rank is not fixed)."""
    first = plan.layers[0] if plan.layers else None
    inputs = [n for n in plan.nodes if n.op == "placeholder"]
    if first is None or len(inputs) != 1 or [u.name for u in inputs[0].users] != [first.node]:
        return None
    return 2 if first.kind == "linear" else first.weight.dim()


def lrp(
    model: nn.Module,
    x: torch.Tensor,
    rule_or_composite: Rule | Composite | str,
    output: Any = None,
    norm: str | float | None = None,
    dense_linear: bool = False,
    per_layer: dict[int, torch.Tensor] | None = None,
    target: Any = None,
    activation: str | None = None,
    forward: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    r"""Input relevance of ``model`` at ``x`` (shaped like x), explaining ``output`` / ``target``.

    :math:`R^L` from :func:`top_relevance` (:math:`f_c(x) e_c` per row for a class c: an int, one int per row, or
    None for the argmax; or ``target`` as a relevance tensor, zennit's ``grad_outputs``), then one backward pass
    of the modified gradients (:func:`modified_gradients`; ``activation``: "gate" or "pass", see there). An
    unbatched input (one sample: (C, H, W) for a Conv2d model, (n,) for an MLP) is explained as a batch of one
    and its relevance has x's shape. ``rule_or_composite`` may be a spec string (``"gamma:0.25"``,
    ``"epsilon-plus-flat@zennit"``). ``per_layer``, if given, receives :math:`R^l` for l = 1..L (the relevance
    of layer l's output entering its rule). ``forward``, if given, receives the model output at x from the same
    forward pass (``"output"``, detached) and :math:`R^L` (``"top"``).
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"x must be a torch tensor, got {type(x).__name__}")
    plan = build_plan(model)
    want = expected_input_dims(plan)
    unbatched = want is not None and x.dim() == want - 1
    if want is not None and x.dim() not in (want, want - 1):
        first = plan.layers[0]
        raise InputError(
            f"x has shape {tuple(x.shape)}; {type(model).__name__}'s first layer {first.name!r} "
            f"({first.module_type.__name__ if first.module_type else first.kind}, weight {tuple(first.weight.shape)}) "
            f"takes a batch of {want} dimensions (batch, {'features' if want == 2 else 'channels, ...'}) "
            f"or one unbatched sample of {want - 1}")
    xb = x.unsqueeze(0) if unbatched else x
    xg = xb.detach().clone().requires_grad_(True)
    with modified_gradients(model, rule_or_composite, norm, dense_linear, record=per_layer is not None,
                            activation=activation, plan=plan) as state:
        y = model(xg)
        grad = top_relevance(y, output, target)
        (R,) = torch.autograd.grad(y, xg, grad)
    if xb.is_contiguous() and not R.is_contiguous():
        R = R.contiguous()  # the relevance in x's memory layout (convolutions ran in channels_last on the CPU)
    if per_layer is not None:
        per_layer.update(state.relevances)
    if forward is not None:
        forward.update(output=y.detach(), top=grad)
    return R[0] if unbatched else R


def gradient_times_input(model: nn.Module, x: torch.Tensor, output: Any = None) -> torch.Tensor:
    """Plain :math:`\\nabla f_c(x) \\odot x` (the baseline the benchmarks compare against)."""
    xg = x.detach().clone().requires_grad_(True)
    y = model(xg)
    c = output_selector(y, output)
    rows = torch.arange(y.shape[0], device=y.device)
    (g,) = torch.autograd.grad(y[rows, c].sum(), xg)
    return g * xg.detach()


__all__ = ["LRPState", "gradient_times_input", "lrp", "modified_gradients", "output_selector", "redistribute_layer",
           "top_relevance"]

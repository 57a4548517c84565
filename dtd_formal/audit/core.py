r"""``dtd.audit``: check an LRP explainer layer by layer against the exact definition of the rules it claims.

For an explainer and a batch x with targets c, the output relevance is :math:`R^L = f_c(x)\, e_c` per row and:

1. **Conservation** (every module and functional operation, :mod:`.capture`): relevance entering vs leaving,
   the absorbed amount and share, and its cause (bias and stabiliser absorption as the rule defines it, the ReLU
   gate dropping inactive neurons' relevance, a residual sum whose plain gradient copies the relevance to both
   branches, a module with no rule, a BatchNorm left unmerged), with the channels that absorb most.
2. **Definition** (each Conv/Linear with a rule): the library's relevance leaving the layer against
   dtd_formal's computation of the claimed rule (:mod:`.translate`, with the library's conventions) from the
   library's own relevance entering it and the layer's input, in float64: one layer at a time, so the first
   layer that departs is named, and nothing compounds.
3. **Coverage**: modules that got no rule, functional operations a module-hook library cannot see (found by
   torch.fx), in-place activations, modules called more than once.
4. **Canonizers**: the model output with and without each canonizer, and that parameters and hooks are exactly
   restored afterwards (also after the whole audit).
5. **Roots** (root-point rules): the torch root-region check on the audited layers (share of roots leaving the
   input's region or the rule's domain), on a sample of neurons.

End to end, the input relevance is compared with dtd_formal's answer for the claimed rules: exact (the operator
graph engine) where it can load the model and ``exact=True``, else the torch backend in float64; the report says
which. The audit runs on a float64 copy of the model: the user's model is never touched.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import fx, nn

from ..errors import InputError
from ..rules.base import Rule
from ..rules.catalogue import Epsilon
from ..rules.composites import Composite
from .capture import (Captured, FunctionalNode, hook_counts, install_first_call_hooks, install_hooks, leaf_modules, source,
                      wrap_functionals)
from .report import AuditReport, CanonizerRecord, LayerRecord
from .translate import Proportional, captum_rule, zennit_rule

LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


# ---------------------------------------------------------------------------------------------------- explainers
def describe(explainer: Any) -> str:
    kind = explainer_kind(explainer)
    return f"{kind}:{type(explainer).__name__}" if kind != "callable" else f"callable:{getattr(explainer, '__name__', 'fn')}"


def explainer_kind(explainer: Any) -> str:
    """"zennit" (a zennit Composite), "captum" (a captum LRP), "dtd" (a Rule / Composite / spec), "callable"."""
    module = type(explainer).__module__ or ""
    if module.startswith("zennit"):
        return "zennit"
    if module.startswith("captum"):
        return "captum"
    if isinstance(explainer, (Rule, Composite, str)):
        return "dtd"
    if callable(explainer):
        return "callable"
    raise InputError(f"explainer: expected a zennit composite, a captum LRP, a dtd_formal rule/composite or a "
                     f"callable (model, x, target) -> relevance; got {type(explainer).__name__}")


def _kind(module: nn.Module) -> str:
    if isinstance(module, FunctionalNode):
        return module.kind
    name = type(module).__name__
    for key, kind in (("Linear", "linear"), ("Conv", "conv"), ("ReLU", "relu"), ("MaxPool", "maxpool"),
                      ("AvgPool", "avgpool"), ("BatchNorm", "batchnorm"), ("Flatten", "reshape"),
                      ("Dropout", "identity"), ("Identity", "identity")):
        if key in name:
            return kind
    return "other"


def _layer_info(name: str, module: nn.Module, params: tuple[torch.Tensor, torch.Tensor | None]) -> Any:
    from ..torch.graph import LayerInfo
    from ..torch.ops import ConvOp, LinearOp

    op = LinearOp() if isinstance(module, nn.Linear) else ConvOp.from_module(name, module)
    W, b = params
    b = b if b is not None else torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)
    return LayerInfo(0, name, name, op.kind, op, W, b, name, module_type=type(module))


def _definition(rule: Rule, name: str, module: nn.Module, params: tuple[torch.Tensor, torch.Tensor | None],
                a: torch.Tensor, R: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    r"""The claimed rule's relevance leaving the layer, from its parameters as they were in the run, its input a
    and the relevance R entering it; y, the layer's own output :math:`\mathcal{L}(a; W) + b` in that run (if
    recorded), stands for the product a rule's plain term would recompute."""
    from ..torch.lrp import redistribute_layer

    return redistribute_layer(rule, _layer_info(name, module, params), a, y, R)


def _pool_definition(module: nn.Module, a: torch.Tensor, R: torch.Tensor, rule: Proportional | None) -> torch.Tensor:
    r"""A pooling layer's relevance leaving it, from its input a and the relevance R entering it: with a
    :class:`~.translate.Proportional` claim :math:`a \odot J^\top (R / \mathrm{stab}(z))`, :math:`z =
    \mathrm{pool}(a)`; with no rule the gradient :math:`J^\top R` (for a max-pool: all of R_j to the winner)."""
    a = a.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        z = module(a)
        if rule is None:
            (g,) = torch.autograd.grad(z, a, R)
            return g
        stab = z.detach() + rule.epsilon * torch.where(z.detach() >= 0, 1.0, -1.0).to(z.dtype)
        (g,) = torch.autograd.grad(z, a, R / stab)
    return a.detach() * g


def _per_input(t: torch.Tensor) -> torch.Tensor:
    """Sum over every dimension but the first (the batch), in any memory layout without a copy."""
    return t.sum(dim=tuple(range(1, t.dim()))) if t.dim() > 1 else t


def _max_abs_per_input(t: torch.Tensor) -> torch.Tensor:
    r""":math:`\max |t|` over every dimension but the first, in one pass."""
    return torch.linalg.vector_norm(t, ord=float("inf"), dim=tuple(range(1, t.dim()))) if t.dim() > 1 else t.abs()


def _ratio(diff: float, scale: float) -> float:
    return diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want|."""
    inf = float("inf")
    return _ratio(float(torch.linalg.vector_norm(got - want, ord=inf)), float(torch.linalg.vector_norm(want, ord=inf)))


def _deviations(got: torch.Tensor, want: torch.Tensor) -> tuple[float, list[float]]:
    """:func:`_relative` over the batch and for each input (dim 0) alone."""
    diff = _max_abs_per_input(got - want)
    scale = _max_abs_per_input(want)
    per = [_ratio(d, s) for d, s in zip(diff.tolist(), scale.tolist())]
    return _ratio(float(diff.max()), float(scale.max())), per


def _plain_sum_like(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """The lower relevance's total per sample, spread evenly over the upper tensor's entries (so that
    ``upper - this`` sums to the absorbed amount; a layer's absorption has no per-neuron split of its own)."""
    per = _per_input(lower)
    return (per / upper[0].numel()).reshape((-1,) + (1,) * (upper.dim() - 1)).expand_as(upper)


def _top(absorbed: torch.Tensor, k: int = 3) -> list[tuple[int, float]]:
    """Channels (dim 1) absorbing most, summed over the batch and the rest."""
    per = absorbed.sum(dim=0)
    per = per.reshape(per.shape[0], -1).sum(dim=1) if per.dim() > 1 else per
    order = per.abs().argsort(descending=True)[:k]
    return [(int(i), float(per[i])) for i in order]


# ---------------------------------------------------------------------------------------------------- running
def _top_relevance(model: nn.Module, x: torch.Tensor, target: Any,
                   y: torch.Tensor | None = None) -> tuple[torch.Tensor, list[int]]:
    """R^L = f_c(x) e_c per row (``y``: the model's output at x, if at hand) and the explained classes."""
    from ..torch.lrp import top_relevance

    if y is None:
        with torch.no_grad():
            y = model(x)
    R = top_relevance(y, target)
    return R, [int(c) for c in R.abs().argmax(dim=1)]


def _run_zennit(composite: Any, model: nn.Module, x: torch.Tensor, RL: torch.Tensor) -> tuple[torch.Tensor, Captured, dict[str, Any]]:
    cap = Captured()
    xg = x.detach().clone().requires_grad_(True)
    with composite.context(model) as modified:
        templates: dict[str, Any] = {}
        ctx: dict[str, Any] = {}
        for name, child in modified.named_modules():  # the composite's own choice, as its register() made it
            templates[name] = composite.module_map(ctx, name, child)
        handles = install_hooks(modified, cap)
        try:
            out = modified(xg)
            (R,) = torch.autograd.grad(out, xg, RL)
        finally:
            for h in handles:
                h.remove()
    return R, cap, templates


def _captum_rules(lrp_obj: Any, model: nn.Module) -> dict[str, Any]:
    """Set on the float64 copy the rules the user set on the original's layers (copies), else captum's default for
    the module's type (as captum would); returns them by module name."""
    from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES

    rules = {n: m.rule for n, m in lrp_obj.model.named_modules() if getattr(m, "rule", None) is not None}
    used: dict[str, Any] = {}
    for n, m in model.named_modules():
        if n in rules:
            m.rule = used[n] = copy.copy(rules[n])
        elif type(m) in SUPPORTED_LAYERS_WITH_RULES:
            m.rule = used[n] = SUPPORTED_LAYERS_WITH_RULES[type(m)]()
    return used


def _run_captum(model: nn.Module, x: torch.Tensor, used: dict[str, Any], RL: torch.Tensor, targets: list[int]
                ) -> tuple[torch.Tensor, Captured]:
    """captum's LRP on the float64 copy with the rules ``used`` (:func:`_captum_rules`); per layer, the relevance
    captum itself stores (``rule.relevance_output``: entering, ``rule.relevance_input``: leaving), and each
    layer's input and output in captum's first, plain forward pass (captum changes a layer's weights only after it
    has run there; the weights are the model's own, read before the run, and a layer found to have run with other
    weights has its product recomputed). Those values are the library's forward pass, as the zennit branch's are;
    the end-to-end reference runs its own. captum keeps those relevances divided by the explained output f_c(x)
    and multiplies only the input's by it at the end; they are multiplied back here (by R^L's entry c), so the
    report's figures are relevances."""
    from captum.attr import LRP

    cap = Captured()
    weights = {n: (m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone())
               for n, m in leaf_modules(model) if isinstance(getattr(m, "weight", None), torch.Tensor)}
    handles = install_first_call_hooks(model, cap)
    try:
        R = LRP(model).attribute(x.detach().clone().requires_grad_(True), target=torch.tensor(targets, device=x.device))
    except (TypeError, RuntimeError) as exc:  # captum refuses a module without a rule by TypeError
        raise InputError(f"captum's LRP refused the model: {exc}") from None
    finally:
        for h in handles:
            h.remove()
    for name, own in weights.items():  # the definition takes the model's own weights (if captum ran a layer with
        if name in cap.params:  # others, Captured.output no longer hands on its product: it is recomputed)
            cap.params[name] = own
    scale = RL[torch.arange(x.shape[0], device=RL.device), torch.tensor(targets, device=RL.device)]

    def rescaled(t: torch.Tensor) -> torch.Tensor:
        return t.detach() * scale.reshape((-1,) + (1,) * (t.dim() - 1))

    for name, rule in used.items():
        entering, leaving = getattr(rule, "relevance_output", {}), getattr(rule, "relevance_input", {})
        if entering and leaving and name in cap.modules:
            cap.entering[name] = rescaled(next(iter(entering.values())))
            out = next(iter(leaving.values()))
            cap.leaving[name] = [rescaled(out[0] if isinstance(out, list) else out)]
    cap.order = [n for n in cap.order if n in cap.entering]
    return R.detach(), cap


def _reference_first(model: nn.Module, x: torch.Tensor, claims: Any, target: Any, activation: str | None,
                     norm: str | float | None, exact: bool) -> tuple[torch.Tensor | str | None, torch.Tensor, list[int]]:
    """The torch backend's relevance for the claims (or why it cannot run) with R^L and the targets from the
    output of its own forward pass: the reference does not depend on the audited library, and no separate forward
    pass is needed for R^L. With ``exact`` (or no claims) the reference is left to :func:`_end_to_end` (None) and
    R^L comes from a plain forward pass."""
    from .. import torch as dt

    if exact or claims is None:
        return (None, *_top_relevance(model, x, target))
    seen: dict[str, torch.Tensor] = {}
    try:
        ref: torch.Tensor | str = dt.lrp(model, x, claims, target=target, activation=activation, norm=norm, forward=seen)
    except InputError as exc:  # the backend refuses what it cannot attribute (an unsupported function, a layer)
        return (f"not checked: the torch backend cannot run the model ({exc})", *_top_relevance(model, x, target))
    return (ref, *_top_relevance(model, x, target, seen["output"]))


# ---------------------------------------------------------------------------------------------------- checks
def _trace(model: nn.Module) -> tuple[fx.GraphModule | None, str]:
    """The model traced by torch.fx, or (None, why not)."""
    try:
        return fx.symbolic_trace(model), ""
    except Exception as exc:  # noqa: BLE001 - fx's errors are many; the report carries the reason
        return None, f"torch.fx cannot trace it ({exc})"


def _coverage(model: nn.Module, traced: tuple[fx.GraphModule | None, str], templates: dict[str, Any] | None,
              cap: Captured | None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    gm, why = traced
    if gm is None:
        return [{"name": type(model).__name__, "kind": "model", "reason": why}]
    modules = dict(gm.named_modules())
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
        if templates is None:
            continue
        if node.op == "call_function" and getattr(node.target, "__name__", "") in ("add", "relu", "mul", "cat", "sub"):
            out.append({"name": node.name, "kind": f"function {node.target.__name__}",
                        "reason": f"a functional operation, {source(node)}: module hooks cannot see it, its relevance "
                                  "is the plain gradient"})
        elif node.op == "call_method" and node.target in ("add", "add_", "relu", "relu_", "mul"):
            out.append({"name": node.name, "kind": f"method .{node.target}()",
                        "reason": f"a tensor method, {source(node)}: module hooks cannot see it, its relevance is "
                                  "the plain gradient"})
    for name, n in calls.items():
        if n > 1:
            out.append({"name": name, "kind": type(modules[name]).__name__,
                        "reason": f"module called {n} times: per-module rules and hooks see one module for all calls"})
    for name, m in leaf_modules(model):
        if templates is not None and isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and not _merged(name, cap):
            out.append({"name": name, "kind": type(m).__name__,
                        "reason": "BatchNorm not merged into the layer before it (no canonizer): that layer's rule "
                                  "explains its pre-normalisation output, not the model's affine map"})
        if isinstance(m, nn.ReLU) and m.inplace:
            out.append({"name": name, "kind": "ReLU(inplace=True)",
                        "reason": "in-place activation: hooks on its input tensor see it overwritten"})
        if templates is not None and isinstance(m, LAYER_TYPES) and templates.get(name) is None:
            out.append({"name": name, "kind": type(m).__name__,
                        "reason": "no rule assigned: the plain gradient passes through it"})
    return out


def _shared_inputs(gm: fx.GraphModule | None) -> dict[str, list[str]]:
    """Modules whose input tensor also feeds other operations (in the torch.fx trace), with those operations'
    names; none known without a trace (coverage reports that)."""
    if gm is None:
        return {}
    out = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and node.args and isinstance(node.args[0], fx.Node):
            others = [u.name for u in node.args[0].users if u is not node]
            if others:
                out[str(node.target)] = others
    return out


def _merged(name: str, cap: Captured | None) -> bool:
    """Whether a BatchNorm was the identity when it ran (a canonizer merged it into the layer before)."""
    if cap is None or name not in cap.params or name not in cap.stats:
        return False
    W, b = cap.params[name]
    mean, var = cap.stats[name]
    scale = W / torch.sqrt(var + cap.modules[name].eps)
    return bool(torch.allclose(scale, torch.ones_like(scale), rtol=1e-5) and b is not None
                and torch.allclose(b - mean * scale, torch.zeros_like(b), atol=1e-6))


def _canonizers(composite: Any, model: nn.Module, x: torch.Tensor) -> list[CanonizerRecord]:
    out = []
    for c in getattr(composite, "canonizers", None) or []:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        hooks = hook_counts(model)
        with torch.no_grad():
            y0 = model(x)
            applied = c.apply(model) if hasattr(c, "apply") else []
            y1 = model(x)
            for a in applied or []:
                a.remove()
        restored = hooks == hook_counts(model) and all(torch.equal(state[k], v) for k, v in model.state_dict().items())
        out.append(CanonizerRecord(type(c).__name__, float((y1 - y0).abs().max()), bool(restored)))
    return out


def _records(cap: Captured, rules: dict[str, Any], tol: float, activation_pass: bool,
             unreadable: dict[str, str] | None = None) -> list[LayerRecord]:
    """One record per captured module; ``unreadable`` names layers whose relevance leaving them the library does
    not record on its own (with the reason): their definition is not checked."""
    records = []
    unreadable = unreadable or {}
    for name in cap.order:
        module = cap.modules[name]
        kind = _kind(module)
        Rin = cap.entering.get(name)
        leaving = [g for g in cap.leaving.get(name, []) if g is not None]
        if Rin is None:
            continue
        rin_per, leaving_per = _per_input(Rin), [_per_input(g) for g in leaving]
        Rout_total = sum(float(p.sum()) for p in leaving_per)
        rin_total = float(rin_per.sum())
        absorbed = rin_total - Rout_total
        share = absorbed / abs(rin_total) if rin_total else 0.0
        claim = rules.get(name)
        rule_text = claim.spec() if hasattr(claim, "spec") else (claim if isinstance(claim, str) else "")
        rec = LayerRecord(name, kind, rule_text, rin_total, Rout_total, absorbed, share)
        if leaving and all(g.shape[:1] == Rin.shape[:1] for g in leaving):
            rec.absorbed_per_input = (rin_per - sum(leaving_per)).tolist()
        big = abs(share) > tol and abs(absorbed) > tol * max(1.0, abs(rin_total))
        if kind in ("linear", "conv"):
            reason = rules.get(f"{name}#why", "")
            if claim is None:
                rec.cause, rec.finding = "no rule assigned: the plain gradient passes", "leak" if big else ""
            elif not isinstance(claim, Rule):
                rec.cause = f"definition not checked: {reason or claim}"
            elif name in unreadable:
                rec.cause = f"definition not checked: {unreadable[name]}"
            elif leaving and cap.inputs.get(name):
                ref = _definition(claim, name, module, cap.params[name], cap.inputs[name][0], Rin,
                                  cap.output(name))
                rec.max_deviation, rec.deviation_per_input = _deviations(leaving[0], ref)
                if rec.max_deviation > tol:
                    rec.cause, rec.finding = f"departs from {claim.spec()}", "deviation"
                elif abs(absorbed) > 0:
                    rec.cause = f"absorbed by the bias and stabiliser, as {claim.spec()} defines"
                if big:
                    rec.top = _top(Rin - _plain_sum_like(leaving[0], Rin))
        elif kind == "relu":
            if claim == "pass":
                inactive = cap.inputs[name][0] <= 0 if cap.inputs.get(name) else None
                if big:
                    rec.cause, rec.finding = "Pass should conserve relevance but does not", "leak"
                elif inactive is not None and bool(inactive.any()):
                    passed = float((Rin * inactive).sum())
                    if abs(passed) > tol * max(1.0, abs(rin_total)):
                        rec.cause = (f"Pass hands on {passed:.3g} ({passed / rin_total if rin_total else 0:.1%}) "
                                     f"through inactive neurons (z <= 0), which the DTD gate would drop")
                        rec.top = _top((Rin * inactive).detach())
            elif big:
                dropped = cap.inputs[name][0] <= 0 if cap.inputs.get(name) else None
                rec.cause = "the ReLU's gradient (the gate) drops the relevance of inactive neurons"
                if isinstance(module, FunctionalNode) and activation_pass:
                    rec.cause += ("; the composite passes relevance through ReLU modules, but this functional relu "
                                  "cannot be hooked")
                    rec.finding = "leak"
                if dropped is not None:
                    rec.top = _top((Rin * dropped).detach())
        elif kind == "add":
            if big:
                ratio = Rout_total / rin_total if rin_total else float("inf")
                rec.cause = (f"skip connection: the plain gradient copies the relevance to both branches "
                             f"(relevance leaving / entering = {ratio:.3g}; summed twice)")
                rec.finding = "leak"
        elif kind in ("maxpool", "avgpool"):
            pool_rule = Proportional(float(claim.epsilon)) if isinstance(claim, Epsilon) else claim
            if name in unreadable:
                rec.cause = f"definition not checked: {unreadable[name]}"
            elif isinstance(claim, Rule) and not isinstance(claim, Epsilon):
                rec.cause = f"definition not checked: {claim.spec()} on a pooling layer is not defined by the audit"
            elif kind == "avgpool" and pool_rule is None:
                if big:
                    rec.cause, rec.finding = "average pool without a rule: the plain gradient", "leak"
            elif isinstance(pool_rule, Proportional | None) and leaving and cap.inputs.get(name):
                ref = _pool_definition(module, cap.inputs[name][0], Rin, pool_rule)
                rec.max_deviation, rec.deviation_per_input = _deviations(leaving[0], ref)
                claimed = "winner-takes-all (the gradient)" if pool_rule is None else pool_rule.spec()
                if rec.max_deviation > tol:
                    rec.cause, rec.finding = f"departs from {claimed}", "deviation"
                elif big:
                    rec.cause = f"absorbed by the stabiliser, as {claimed} defines"
        elif kind == "batchnorm":
            if not _merged(name, cap):
                rec.cause = ("BatchNorm not merged into the layer before it: that layer's rule explains the "
                             "pre-normalisation output" + (f"; {rule_text} here" if rule_text else "; plain gradient here"))
                if big:
                    rec.finding = "leak"
        elif big and kind == "other":
            rec.cause, rec.finding = f"module {type(module).__name__} without a rule", "leak"
        records.append(rec)
    return records


def _unchecked(layers: list[LayerRecord]) -> list[dict[str, str]]:
    """Layers whose claimed rule could not be read: their definition is unknown, so the audit cannot call them
    sound."""
    return [{"name": r.name, "kind": r.kind, "reason": r.cause} for r in layers
            if r.cause.startswith("definition not checked")]


def _roots(model: nn.Module, x: torch.Tensor, rules: dict[str, Any], targets: list[int], sample: int) -> list[dict[str, Any]]:
    from ..torch.roots import root_regions

    out = []
    for name, rule in rules.items():
        if not isinstance(rule, Rule) or "#" in name or not getattr(rule, "has_root", False):
            continue
        try:
            rep = root_regions(model, x[:1], rule, layers=name, output=targets[:1], sample=sample)
            recs = rep.records
            out.append({"layer": name, "rule": rule.spec(), "roots": len(recs),
                        "leave": sum(bool(r.leaves_pattern) for r in recs),
                        "outside_domain": sum(not bool(getattr(r, "in_domain", True)) for r in recs)})
        except Exception as exc:  # noqa: BLE001 - the engine's refusal is reported, not raised
            out.append({"layer": name, "rule": rule.spec(), "error": f"{type(exc).__name__}: {exc}"})
    return out


def _end_to_end(model: nn.Module, x: torch.Tensor, claims: Any, R: torch.Tensor, RL: torch.Tensor,
                activation: str | None, exact: bool, norm: str | float | None = None,
                reference: torch.Tensor | str | None = None) -> dict[str, Any]:
    """Max relative deviation of the input relevance R from dtd_formal's for the claims; ``norm`` is the torch
    backend's convention at pools and sums (captum's pools divide by z + 1e-9 sign0(z)); ``reference``: the torch
    backend's relevance (or why it could not run) when :func:`_reference_first` computed it already."""
    from .. import torch as dt

    if isinstance(reference, str):
        return {"status": reference}
    if isinstance(reference, torch.Tensor):
        return {"status": "compared with the torch backend (float64)", "reference": "torch float64",
                "max_deviation": _relative(R, reference)}
    if claims is None:
        return {"status": "not checked: some layer's rule could not be translated"}
    why = ""
    if exact:
        try:
            from ..network import Network

            net = Network.from_torch(model, input_shape=tuple(x.shape[1:]))
        except Exception as exc:  # noqa: BLE001 - the loader's refusal is reported, the float64 path still runs
            net, why = None, f"the exact engine cannot load the model ({type(exc).__name__}: {exc})"
        if net is not None:
            try:
                worst = _exact_deviation(net, model, x, claims, R, RL, activation)
                return {"status": "compared with the exact engine", "reference": "exact", "max_deviation": worst}
            except InputError as exc:
                why = f"the exact engine refused ({exc})"
    try:
        ref = dt.lrp(model, x, claims, target=RL, activation=activation, norm=norm)
    except InputError as exc:  # the backend refuses what it cannot attribute (an unsupported function, a layer)
        return {"status": f"not checked: the torch backend cannot run the model ({exc})"}
    return {"status": "compared with the torch backend (float64)" + (f"; {why}" if why else ""),
            "reference": "torch float64", "max_deviation": _relative(R, ref)}


class _LayerIndexComposite(Composite):
    """Rules by layer number (the exact engine's layers have no module names)."""

    def __init__(self, rules: dict[int, Rule]) -> None:
        self.by_index = rules

    def rule_for(self, layer: int, n_layers: int, kind: str = "linear") -> Rule:
        return self.by_index[layer]


def _exact_deviation(net: Any, model: nn.Module, x: torch.Tensor, claims: Any, R: torch.Tensor, RL: torch.Tensor,
                     activation: str | None) -> float:
    """Max relative deviation of R from the exact engine's relevance for the claims (per input, R^L = f_c e_c)."""
    import numpy as np

    from ..dtd import lrp as exact_lrp
    from ..exact import to_float
    from ..rules.composites import rule_for_layer
    from ..torch.graph import build_plan

    if isinstance(claims, Composite):  # a composite keyed by module names: by layer number, in the same order
        plan = build_plan(model)
        if len(plan.layers) != net.n_layers:
            raise InputError(f"the torch plan has {len(plan.layers)} layers, the exact graph {net.n_layers}")
        claims = _LayerIndexComposite({i.index: rule_for_layer(claims, i.index, len(plan.layers), i.kind, i.name,
                                                               i.module_type) for i in plan.layers})
    worst = 0.0
    for i in range(x.shape[0]):
        c = int(RL[i].abs().argmax())
        if not torch.equal(RL[i], torch.zeros_like(RL[i]).index_fill_(0, torch.tensor([c], device=RL.device), float(RL[i, c]))):
            raise InputError("the exact comparison explains one output per input")
        ref = exact_lrp(net, x[i].detach().cpu().numpy().astype(np.float64).ravel(), claims, output=c, activation=activation)
        want = torch.tensor(to_float(ref.input), dtype=torch.float64, device=R.device).reshape(x.shape[1:])
        worst = max(worst, _relative(R[i], want))
    return worst


def _claims_from(rules: dict[str, Any]) -> Composite | None:
    from ..rules.composites import LayerMapComposite

    layer_rules = {n: r for n, r in rules.items() if "#" not in n and isinstance(r, Rule)}
    if any("#" not in n and r is None for n, r in rules.items()):
        return None
    return LayerMapComposite([], name_map=layer_rules)


# ---------------------------------------------------------------------------------------------------- audit
def audit(model: nn.Module, x: torch.Tensor, explainer: Any, target: Any = None, claims: Any = None,
          tolerance: float = 1e-6, exact: bool = False, roots: bool = True, root_sample: int = 32) -> AuditReport:
    """Audit ``explainer`` on ``model`` at the batch ``x`` (module docstring).

    Parameters
    ----------
    model : nn.Module
        The model (never modified: the audit works on a float64 copy).
    x : torch.Tensor
        A batch of inputs.
    explainer : zennit Composite | captum LRP | Rule | Composite | str | callable
        A callable is ``(model, x, target) -> relevance`` and needs ``claims=`` (the rule or composite it says
        it implements); only its input relevance is compared.
    target : int, list of int, or None (the argmax)
    tolerance : float
        Largest relative deviation (and absorbed share, for leaks) counted as agreement.
    exact : bool
        Compare end to end with the exact operator-graph engine when it can load the model.
    roots : bool
        Run the root-region check (5) on the layers with root-point rules.
    """
    if not isinstance(model, nn.Module) or not isinstance(x, torch.Tensor):
        raise InputError("audit(model, x, explainer): model must be an nn.Module and x a torch tensor")
    kind = explainer_kind(explainer)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks_before = hook_counts(model)
    m64 = copy.deepcopy(model).double().eval()
    x64 = x.detach().double()
    uncovered: list[dict[str, str]] = []
    canon: list[CanonizerRecord] = []
    layers: list[LayerRecord] = []
    rules: dict[str, Any] = {}
    activation = None
    if kind != "captum":  # captum's branch takes R^L from the forward pass of its reference
        RL, targets = _top_relevance(m64, x64, target)
    if kind == "zennit":
        canon = _canonizers(explainer, copy.deepcopy(m64), x64)
        simple_canonizers = all(type(c).__name__ in ("SequentialMergeBatchNorm", "MergeBatchNorm")
                                for c in getattr(explainer, "canonizers", None) or [])
        target_model = wrap_functionals(m64) if simple_canonizers else m64
        state64 = {k: v.clone() for k, v in target_model.state_dict().items()}
        hooks64 = hook_counts(target_model)
        R, cap, templates = _run_zennit(explainer, target_model, x64, RL)
        restored64 = hooks64 == hook_counts(target_model) and all(
            torch.equal(state64[k], v) for k, v in target_model.state_dict().items())
        for name, tmpl in templates.items():
            if name in cap.modules and tmpl is not None:
                rule, why = zennit_rule(tmpl)
                rules[name] = rule if rule is not None else "untranslatable"
                if why:
                    rules[f"{name}#why"] = why
            elif name in cap.modules and isinstance(cap.modules[name], LAYER_TYPES):
                rules[name] = None
        activation_pass = any(v == "pass" for v in rules.values())
        activation = "pass" if activation_pass else "gate"
        uncovered = _coverage(m64, _trace(m64), templates, cap)
        if not restored64:
            uncovered.append({"name": "model", "kind": "hooks/parameters",
                              "reason": "the composite left the model changed after its context closed"})
        layers = _records(cap, rules, tolerance, activation_pass)
        uncovered += _unchecked(layers)
        layer_claims = {n: r for n, r in rules.items() if n in cap.modules and isinstance(cap.modules[n], LAYER_TYPES)}
        claims_used = None if any(not isinstance(r, Rule) for r in layer_claims.values()) else _claims_from(layer_claims)
        e2e = _end_to_end(m64, x64, claims_used, R, RL, activation, exact) if not uncovered or claims_used else {}
    elif kind == "captum":
        captum_rules = _captum_rules(explainer, m64)
        for name, r in captum_rules.items():
            rule, why = captum_rule(r)
            rules[name] = rule if rule is not None else "untranslatable"
            if why:
                rules[f"{name}#why"] = why
        modules = dict(m64.named_modules())
        layer_claims = {n: r for n, r in rules.items() if "#" not in n and isinstance(modules[n], LAYER_TYPES)}
        claims_used = None if any(not isinstance(r, Rule) for r in layer_claims.values()) else _claims_from(layer_claims)
        pool_eps = {float(r.epsilon) for n, r in rules.items() if "#" not in n and isinstance(r, Epsilon)
                    and isinstance(modules[n], (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
                                                nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d))}
        norm = pool_eps.pop() if len(pool_eps) == 1 else None  # one epsilon for all pools, as the backend takes
        reference, RL, targets = _reference_first(m64, x64, claims_used, target, "pass", norm, exact)
        R, cap = _run_captum(m64, x64, captum_rules, RL, targets)
        traced = _trace(m64)
        uncovered = _coverage(m64, traced, {n: rules.get(n) for n, _ in m64.named_modules()}, cap)
        fan_out = {n: (f"its input also feeds {', '.join(users)}; captum's input hook sits on the tensor, so the "
                       "relevance it records there is the sum over all its users")
                   for n, users in _shared_inputs(traced[0]).items()}
        layers = _records(cap, rules, tolerance, True, fan_out)
        uncovered += _unchecked(layers)
        e2e = _end_to_end(m64, x64, claims_used, R, RL, "pass", exact, norm=norm, reference=reference)
    else:
        if kind == "callable":
            if claims is None:
                raise InputError("a callable explainer needs claims= (the rule or composite it says it implements)")
            R = torch.as_tensor(explainer(m64, x64.clone(), targets)).detach().double()
            if R.shape != x64.shape:
                raise InputError(f"the callable returned relevance of shape {tuple(R.shape)}; expected {tuple(x64.shape)}")
        else:
            from .. import torch as dt

            if isinstance(explainer, str):
                from ..rules.parse import parse_explainer

                explainer = parse_explainer(explainer)
            claims = explainer
            R = dt.lrp(m64, x64, explainer, target=RL)
        e2e = _end_to_end(m64, x64, claims, R, RL, None, exact)
        try:
            from ..torch.graph import build_plan

            build_plan(m64)
        except Exception as exc:  # noqa: BLE001
            uncovered.append({"name": type(model).__name__, "kind": "model", "reason": str(exc)})
    root_records = _roots(m64, x64, rules, targets, root_sample) if roots and rules else []
    restored = hooks_before == hook_counts(model) and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    reference = e2e.get("reference", "torch float64")
    return AuditReport(describe(explainer), reference, layers, uncovered, canon, root_records, e2e, restored,
                       tolerance, targets, R.detach())


__all__ = ["audit", "explainer_kind"]

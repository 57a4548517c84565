r"""The rule a library says it applies to a module, as a dtd_formal rule with that library's conventions.

zennit hooks keep their parameters in closures: they are read from the hook's own functions and modifiers
(:class:`~zennit.core.Stabilizer` objects, ``GammaMod.gamma``, ``ZBox``'s ``low``/``high``, ``AlphaBeta``'s
``alpha``/``beta``). A hook that uses something the catalogue does not define (``zero_params``, a clipping or
norm-scaled stabiliser, a rule class this module does not know) translates to None with the reason: its layer's
definition check is then "unknown", never a guess.

captum's rules (0.9) compute, on the module's own weight and bias, :math:`R_i = a_i \sum_j w'_{ji} R_j /
\mathrm{stab}(z'_j)` with :math:`z' = W' a + b'` and :math:`\mathrm{stab}(z) = z + \epsilon\,\mathrm{sign}_0(z)`:
``EpsilonRule(eps)``: :math:`W' = W, b' = b` (the zennit convention's Epsilon); ``GammaRule(gamma)``:
:math:`W' = W + \gamma W^+`, :math:`b' = b` (or 0 with ``set_bias_to_zero``), :math:`\epsilon = 10^{-9}`;
``Alpha1_Beta0_Rule``: :math:`W' = W^+`, the same bias handling. The last two differ from zennit's Gamma and ZPlus
(which modify the bias too and split inputs by sign), so they are their own rules here (:class:`CaptumGamma`,
:class:`CaptumZPlus`), written over the ops namespace like every catalogue rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..rules.base import Rule
from ..rules.catalogue import LRP0, AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus

CAPTUM_STABILITY = 1e-9  #: captum's PropagationRule.STABILITY_FACTOR


@dataclass(frozen=True)
class Proportional:
    r"""A pooling layer's proportional redistribution (zennit's ``Norm``, captum's ``EpsilonRule`` on a pool):
    :math:`R_i = a_i \sum_j \frac{\partial z_j}{\partial a_i} R_j / \mathrm{stab}(z_j)` with :math:`z =
    \mathrm{pool}(a)` and :math:`\mathrm{stab}(z) = z + \epsilon\,\mathrm{sign}_0(z)`; a max-pool's
    :math:`\partial z/\partial a` selects the winner, an average pool's spreads evenly."""

    epsilon: float

    def spec(self) -> str:
        return f"norm:{self.epsilon:g}"


class CaptumGamma(Rule):
    r"""captum's GammaRule: :math:`C_{ji} = a_i (w_{ji} + \gamma w^+_{ji})`, normaliser
    :math:`\mathrm{stab}(\sum_i C_{ji} + b'_j)` with the plain bias (or 0)."""

    name = "captum-gamma"

    def spec(self) -> str:
        return f"captum-gamma:{self.gamma}" + (",zero-bias" if self.zero_bias else "")

    def __init__(self, gamma: float = 0.25, zero_bias: bool = False, stabilizer: float = CAPTUM_STABILITY) -> None:
        super().__init__(bias="zennit", stabilizer=stabilizer)
        self.gamma, self.zero_bias = gamma, zero_bias

    def zennit_contributions(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return a * (W + ops.const(self.gamma) * ops.pos(W))

    def contributions(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return self.zennit_contributions(ops, a, W, b)

    def zennit_bias(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return b * ops.zero if self.zero_bias else b

    def params(self) -> dict[str, Any]:
        return {"gamma": self.gamma}


class CaptumZPlus(Rule):
    r"""captum's Alpha1_Beta0_Rule: :math:`C_{ji} = a_i w^+_{ji}`, normaliser
    :math:`\mathrm{stab}(\sum_i C_{ji} + b'_j)` with the plain bias (or 0)."""

    name = "captum-alpha1-beta0"

    def spec(self) -> str:
        return "captum-alpha1-beta0" + (":zero-bias" if self.zero_bias else "")

    def __init__(self, zero_bias: bool = False, stabilizer: float = CAPTUM_STABILITY) -> None:
        super().__init__(bias="zennit", stabilizer=stabilizer)
        self.zero_bias = zero_bias

    def zennit_contributions(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return a * ops.pos(W)

    def contributions(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return self.zennit_contributions(ops, a, W, b)

    def zennit_bias(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return b * ops.zero if self.zero_bias else b


def _cells(fn: Any) -> dict[str, Any]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return {}
    return {n: c.cell_contents for n, c in zip(code.co_freevars, fn.__closure__ or [])}


def _stabilizer(hook: Any) -> tuple[float | None, str]:
    """The plain epsilon of a zennit hook's stabiliser, or (None, why)."""
    stab = _cells(getattr(hook, "gradient_mapper", None)).get("stabilizer_fn")
    if stab is None or not hasattr(stab, "epsilon"):
        return None, "its stabiliser is not a zennit Stabilizer"
    if getattr(stab, "clip", False) or getattr(stab, "norm_scale", False):
        return None, "its stabiliser clips or is norm-scaled (not the catalogue's stab(z) = z + eps sign0(z))"
    if not isinstance(stab.epsilon, (int, float)):
        return None, "its stabiliser's epsilon is not a number"
    return float(stab.epsilon), ""


KNOWN_ZENNIT = ("Pass", "Norm", "Epsilon", "ZPlus", "Flat", "WSquare", "Gamma", "AlphaBeta", "ZBox")


def zennit_rule(hook: Any) -> tuple[Any, str]:
    """(dtd_formal rule, "") for a zennit hook; ("pass", "") / (Proportional(eps), "") for Pass / Norm; (None,
    reason).

    A subclass of a zennit rule claims its base rule (the nearest zennit class in its MRO): what it computes is
    then checked against that rule's definition."""
    name = next((c.__name__ for c in type(hook).__mro__ if c.__name__ in KNOWN_ZENNIT
                 and (c.__module__ or "").startswith("zennit")), type(hook).__name__)
    if name == "Pass":
        return "pass", ""
    builtin_zero = name in ("Gamma", "ZPlus", "AlphaBeta", "Flat")  # these zero the bias of some terms themselves
    if not builtin_zero and any(getattr(m, "zero_params", None) for m in getattr(hook, "param_modifiers", [])):
        return None, f"zennit {name} with zero_params (not a catalogue rule)"
    eps, why = _stabilizer(hook)
    if eps is None:
        return None, f"zennit {name}: {why}"
    if name == "Norm":
        return Proportional(eps), ""
    if name == "Epsilon":
        return (LRP0(bias="zennit") if eps == 0 else Epsilon(eps, bias="zennit")), ""
    if name == "ZPlus":
        return ZPlus(bias="zennit", stabilizer=eps), ""
    if name == "Flat":
        return Flat(bias="zennit", stabilizer=eps), ""
    if name == "WSquare":
        return WSquare(bias="zennit", stabilizer=eps), ""
    if name == "Gamma":
        gammas = {c.get("gamma") for m in hook.param_modifiers for c in [_cells(getattr(m, "modifier", None))] if "gamma" in c}
        if len(gammas) != 1:
            return None, "zennit Gamma: its gamma could not be read"
        return Gamma(float(gammas.pop()), bias="zennit", stabilizer=eps), ""
    if name == "AlphaBeta":
        c = _cells(hook.reducer)
        if "alpha" not in c or "beta" not in c:
            return None, "zennit AlphaBeta: alpha/beta could not be read"
        return AlphaBeta(float(c["alpha"]), float(c["beta"]), bias="zennit", stabilizer=eps), ""
    if name == "ZBox":
        bounds: dict[str, Any] = {}
        for m in hook.input_modifiers:
            bounds.update({k: v for k, v in _cells(m).items() if k in ("low", "high")})
        if set(bounds) != {"low", "high"}:
            return None, "zennit ZBox: low/high could not be read"
        low, high = bounds["low"], bounds["high"]
        if hasattr(low, "numel") and low.numel() != 1 or hasattr(high, "numel") and high.numel() != 1:
            return None, "zennit ZBox with tensor bounds (the audit compares scalar bounds)"
        return ZBox(float(low), float(high), bias="zennit", stabilizer=eps), ""
    return None, f"zennit rule {name} is not in the catalogue"


def captum_rule(rule: Any) -> tuple[Any, str]:
    """(dtd_formal rule, "") for a captum PropagationRule, or (None, reason); a subclass claims the nearest
    captum rule in its MRO."""
    known = ("EpsilonRule", "GammaRule", "Alpha1_Beta0_Rule", "IdentityRule")
    name = next((c.__name__ for c in type(rule).__mro__ if c.__name__ in known
                 and (c.__module__ or "").startswith("captum")), type(rule).__name__)
    eps = float(getattr(rule, "STABILITY_FACTOR", CAPTUM_STABILITY))
    if name == "EpsilonRule":
        return Epsilon(eps, bias="zennit"), ""
    if name == "GammaRule":
        return CaptumGamma(float(rule.gamma), bool(getattr(rule, "set_bias_to_zero", False)), eps), ""
    if name == "Alpha1_Beta0_Rule":
        return CaptumZPlus(bool(getattr(rule, "set_bias_to_zero", False)), eps), ""
    if name == "IdentityRule":
        return "identity", ""
    return None, f"captum rule {name} is not known to the audit"


__all__ = ["CAPTUM_STABILITY", "CaptumGamma", "CaptumZPlus", "Proportional", "captum_rule", "zennit_rule"]

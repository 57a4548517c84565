"""Seeded-bug rules (mutants) for the mutation test of dtd_formal.testing.check_rule.

Each mutant is a small, plausible mistake in writing a rule; ``MUTANTS`` lists (mutant, the correct rule it was
derived from, the network class both are checked on). The correct rule has every property in ``PROPERTIES`` on
that class; the mutant must lose at least one of them, with a counterexample.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from dtd_formal.rules import Box, Domain, Rule, Unbounded, WSquare, ZBox, ZPlus


class ZPlusMissingMask(ZPlus):
    """z+ without the mask [w > 0]: v_j = a (negative weights leak in)."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.ones_like(W) * a


class ZPlusWrongRootSign(ZPlus):
    """Root step with the wrong sign: t = -z / (w.v), so the 'root' is on the far side."""

    def root_step(self, ops: Any, a: Any, W: Any, b: Any, R: Any = None, definition: str = "true") -> Any:
        t, V, den = super().root_step(ops, a, W, b, R, definition)
        return t * -1, V, den


class ZPlusNoNormalisation(ZPlus):
    """Forgets to divide by the normaliser: R_i = sum_j a_i w+_ij R_j."""

    def redistribute(self, ops: Any, a: Any, W: Any, b: Any, R: Any) -> Any:
        return ops.matmul(ops.transpose(self.contributions(ops, a, W, b)), R)


class ZPlusBiasInNormaliser(ZPlus):
    """Wrong bias term: adds the plain bias b_j (not b_j^+) to the DTD normaliser."""

    def normaliser(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.sum(self.contributions(ops, a, W, b), axis=1) + b


class ZPlusNegativeMask(ZPlus):
    """Wrong sign of the mask: v_j = a * [w < 0]."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.negative_mask(W) * a


class ZPlusBypassesOps(ZPlus):
    """Uses numpy directly instead of the ops namespace (works on Fractions and floats, not on Z3 terms)."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return np.where(np.asarray(W > 0, dtype=bool), a, ops.zero)


class ZPlusFloatLiteral(ZPlus):
    """A raw float literal instead of ops.const: 0.1 is 3602879701896397/2^55 in Fractions, 1/10 in Z3."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.positive_mask(W) * a * (ops.one + 0.1)


class WSquareCubed(WSquare):
    """Wrong exponent: v_j = w_j^2, so the contributions are w^3 (signed)."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return W * W


class ZBoxSwappedBounds(ZBox):
    """zB with low and high swapped: v = (a - h) on w > 0, (a - l) on w < 0."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        low, high = ops.const(self.low), ops.const(self.high)
        return ops.positive_mask(W) * (a - high) + ops.negative_mask(W) * (a - low)


class ZPlusDropsLastInput(ZPlus):
    """Off-by-one: the last input never gets relevance (the slice drops it)."""

    def contributions(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        C = W * self.direction(ops, a, W, b)
        return ops.where(np.arange(np.shape(C)[-1]) < np.shape(C)[-1] - 1, C, ops.zero)


PROPERTIES = ["conservation", "positivity", "root-on-hyperplane", "root-in-domain", "backend-agreement"]

#: (mutant, correct rule, keyword arguments of check_rule for the network class)
MUTANTS: list[tuple[Rule, Rule, dict[str, Any]]] = [
    (ZPlusMissingMask(), ZPlus(), {"bias": "nonpositive"}),
    (ZPlusWrongRootSign(), ZPlus(), {"bias": "nonpositive"}),
    (ZPlusNoNormalisation(), ZPlus(), {"bias": "nonpositive"}),
    (ZPlusBiasInNormaliser(), ZPlus(), {"bias": "nonpositive"}),
    (ZPlusNegativeMask(), ZPlus(), {"bias": "nonpositive"}),
    (ZPlusBypassesOps(), ZPlus(), {"bias": "nonpositive"}),
    (ZPlusFloatLiteral(), ZPlus(), {"bias": "nonpositive"}),
    (WSquareCubed(), WSquare(), {"bias": "nonpositive"}),
    (ZBoxSwappedBounds(-1, 1), ZBox(-1, 1), {"bias": "nonpositive"}),
    (ZPlusDropsLastInput(), ZPlus(), {"bias": "nonpositive"}),
]


# ---------------------------------------------------------------------------------------------------- soundness suite
# One or more mutants per Rule method an engine may read; tests/soundness runs every engine on them and accepts
# only answers that are right (checked against exact ground truth) or Unknown.
class ZPlusHalfStep(ZPlus):
    """root_step: half the step, so the 'root' sits between a and the true root (off the hyperplane)."""

    def root_step(self, ops: Any, a: Any, W: Any, b: Any, R: Any = None, definition: str = "true") -> Any:
        t, V, den = super().root_step(ops, a, W, b, R, definition)
        return t * ops.const(Fraction(1, 2)), V, den


class ZPlusThresholdDirection(ZPlus):
    """direction: a data-dependent mask on a (v = [w > 0] * max(a - 1/4, 0)): not diagonal-affine."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.positive_mask(W) * ops.pos(a - ops.const(Fraction(1, 4)))


class ZPlusUnboundedDomain(ZPlus):
    """domain: claims roots may go anywhere (a first-layer rule then, by the catalogue's convention)."""

    @property
    def domain(self) -> Domain:
        return Unbounded()


class ZPlusSmallBox(ZPlus):
    """domain: roots must stay in [0, 1/2]."""

    @property
    def domain(self) -> Domain:
        return Box(0, Fraction(1, 2))


class ZPlusZennitWrongBias(ZPlus):
    """zennit_bias: the plain bias b instead of b+ in zennit's normaliser (use with bias="zennit")."""

    def zennit_bias(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return b


class ZPlusContributionsScaled(ZPlus):
    """contributions: twice the contributions (the normaliser follows, so relevance is unchanged; roots too)."""

    def contributions(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return W * self.direction(ops, a, W, b) * ops.const(2)


class ZPlusLiesToZ3(ZPlus):
    """A body that inspects its backend: the stock z+ on Z3 terms, half the step in exact arithmetic. No engine may
    answer Proved or Refuted about one rule by reasoning on the other."""

    def root_step(self, ops: Any, a: Any, W: Any, b: Any, R: Any = None, definition: str = "true") -> Any:
        t, V, den = super().root_step(ops, a, W, b, R, definition)
        return (t, V, den) if getattr(ops, "name", "") == "z3" else (t * ops.const(Fraction(1, 2)), V, den)


#: mutants that override each Rule method an engine reads (method name -> mutants), for tests/soundness
SOUNDNESS_MUTANTS: dict[str, list[Rule]] = {
    "root_step": [ZPlusWrongRootSign(), ZPlusHalfStep(), ZPlusLiesToZ3()],
    "direction": [ZPlusMissingMask(), ZPlusNegativeMask(), ZPlusThresholdDirection()],
    "contributions": [ZPlusDropsLastInput(), ZPlusContributionsScaled()],
    "normaliser": [ZPlusBiasInNormaliser()],
    "redistribute": [ZPlusNoNormalisation()],
    "domain": [ZPlusUnboundedDomain(), ZPlusSmallBox()],
    "zennit_bias": [ZPlusZennitWrongBias(bias="zennit")],
}

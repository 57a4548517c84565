r"""The rule catalogue, with zennit's names, keyword names and defaults.

Notation: a = layer input, :math:`z_j = w_j \cdot a + b_j`, :math:`w^+ = \max(w, 0)`, :math:`w^- = \min(w, 0)`,
:math:`\mathrm{stab}(z) = z + \varepsilon\,\mathrm{sign}_0(z)`. Each docstring states the redistribution
:math:`R_{i \leftarrow j} / R_j` under ``bias="dtd"`` and ``bias="zennit"``.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..exact import to_fraction
from .base import ZENNIT_STABILIZER, BiasConvention, Rule, zero_where_relevant
from .domains import Box, Domain, Unbounded


class Epsilon(Rule):
    r"""LRP-epsilon: a reference-point rule, not a root rule (unless epsilon = 0).

    - dtd:    :math:`a_i w_{ij} / \mathrm{stab}_\varepsilon(\sum_i a_i w_{ij})`
    - zennit: :math:`a_i w_{ij} / \mathrm{stab}_\varepsilon(z_j)` (bias in the normaliser; zennit's
      ``Epsilon(epsilon=1e-6)``). Not conservative: the stabiliser (and, for zennit, the bias) absorbs relevance.

    Search direction (used when epsilon = 0, i.e. :class:`LRP0`): :math:`v_j = a`.
    """

    name = "epsilon"

    def __init__(self, epsilon: float = 1e-6, bias: BiasConvention = "dtd") -> None:
        super().__init__(bias=bias, stabilizer=epsilon)
        self.epsilon = epsilon
        if to_fraction(epsilon, "epsilon") < 0:
            raise InputError(f"epsilon must be >= 0, got {epsilon}")

    @property
    def has_root(self) -> bool:  # type: ignore[override]
        return to_fraction(self.epsilon) == 0

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.ones_like(W) * a

    def normaliser(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        total = ops.sum(self.contributions(ops, a, W, b), axis=1)
        if self.bias == "zennit":
            total = total + b
        if to_fraction(self.epsilon) == 0:
            return total
        return ops.stabilise(total, ops.const(self.epsilon))

    def params(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}


class LRP0(Epsilon):
    r"""LRP-0 (= Epsilon(epsilon=0)), a root rule with :math:`v_j = a` (root 0 when bias-free).

    - dtd:    :math:`a_i w_{ij} / \sum_i a_i w_{ij}` (conservative)
    - zennit: :math:`a_i w_{ij} / z_j` (bias absorbs its share; equals gradient x input inside a region)
    """

    name = "lrp0"

    def __init__(self, bias: BiasConvention = "dtd") -> None:
        super().__init__(epsilon=0, bias=bias)

    def params(self) -> dict[str, Any]:
        return {}


class ZPlus(Rule):
    r"""z+ (= LRP-alpha1-beta0 for a >= 0): :math:`v_j = a \odot [w_j > 0]`.

    - dtd:    :math:`a_i w^+_{ij} / \sum_i a_i w^+_{ij}`
    - zennit: :math:`(a_i w_{ij})^+ / \mathrm{stab}(\sum_i (a_i w_{ij})^+ + b^+_j)`, i.e.
      :math:`a^+ w^+ + a^- w^-` (zennit's ``ZPlus(stabilizer=1e-6)``); equal to dtd for a >= 0 and b <= 0 up to
      the stabiliser. The root stays on the segment iff :math:`\sum_i a_i w^-_{ij} + b_j \le 0`.
    """

    name = "zplus"

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.positive_mask(W) * a

    def zennit_contributions(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.pos(a) * ops.pos(W) + ops.neg(a) * ops.neg(W)

    def zennit_bias(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.pos(b)


class Gamma(Rule):
    r"""Gamma rule: :math:`v_j = a \odot (1 + \gamma [w_j > 0])`; gamma = 0 is LRP-0, gamma -> inf is z+.

    - dtd:    :math:`a_i (w_{ij} + \gamma w^+_{ij}) / \sum_i a_i (w_{ij} + \gamma w^+_{ij})`
    - zennit (generalised Gamma, ``Gamma(gamma=0.25, stabilizer=1e-6)``): for :math:`z_j > 0`,
      :math:`[a^+_i (w + \gamma w^+)_{ij} + a^-_i (w + \gamma w^-)_{ij}] / \mathrm{stab}(\ldots + b_j + \gamma b_j^+)`;
      for :math:`z_j < 0` the roles of :math:`w^+, w^-` (and :math:`b^-`) swap; :math:`z_j = 0` passes nothing.
    """

    name = "gamma"

    def __init__(self, gamma: float = 0.25, bias: BiasConvention = "dtd", stabilizer: float = ZENNIT_STABILIZER) -> None:
        super().__init__(bias=bias, stabilizer=stabilizer)
        if to_fraction(gamma, "gamma") < 0:
            raise InputError(f"gamma must be >= 0, got {gamma}")
        self.gamma = gamma

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return a * (ops.one + ops.const(self.gamma) * ops.positive_mask(W))

    def _zennit_parts(self, ops: Any, a: Any, W: Any, b: Any) -> tuple[Any, Any, Any, Any, Any]:
        """zennit's two branches: (z, C_pos, n_pos, C_neg, n_neg) for z_j > 0 and z_j < 0."""
        g = ops.const(self.gamma)
        eps = ops.const(self.stabilizer)
        z = ops.matmul(W, a) + b
        up, down = W + g * ops.pos(W), W + g * ops.neg(W)
        # z_j > 0: favour positive contributions; z_j < 0: favour negative ones
        C_pos = ops.pos(a) * up + ops.neg(a) * down
        C_neg = ops.pos(a) * down + ops.neg(a) * up
        n_pos = ops.stabilise(ops.sum(C_pos, axis=1) + b + g * ops.pos(b), eps)
        n_neg = ops.stabilise(ops.sum(C_neg, axis=1) + b + g * ops.neg(b), eps)
        return z, C_pos, n_pos, C_neg, n_neg

    def redistribute(self, ops: Any, a: Any, W: Any, b: Any, R: Any) -> Any:
        if self.bias == "dtd":
            return super().redistribute(ops, a, W, b, R)
        z, C_pos, n_pos, C_neg, n_neg = self._zennit_parts(ops, a, W, b)
        s_pos = ops.where(z > 0, ops.safe_divide(R, n_pos), ops.zero)
        s_neg = ops.where(z < 0, ops.safe_divide(R, n_neg), ops.zero)
        return ops.matmul(ops.transpose(C_pos), s_pos) + ops.matmul(ops.transpose(C_neg), s_neg)

    def dropped_neurons(self, ops: Any, a: Any, W: Any, b: Any, R: Any) -> list[int]:
        if self.bias == "dtd":
            return super().dropped_neurons(ops, a, W, b, R)
        z, _, n_pos, _, n_neg = self._zennit_parts(ops, a, W, b)
        # zennit passes nothing for z_j = 0, and a zero normaliser of the taken branch drops R_j
        lost = ops.where(z > 0, n_pos, ops.where(z < 0, n_neg, ops.zero))
        return zero_where_relevant(ops, R, lost)

    def params(self) -> dict[str, Any]:
        return {"gamma": self.gamma}


class AlphaBeta(Rule):
    r"""Alpha-beta rule (two-part, no single root), alpha - beta = 1.

    :math:`R_{i \leftarrow j} / R_j = \alpha (a_i w_{ij})^+ / n^+_j - \beta (a_i w_{ij})^- / n^-_j` with
    :math:`(aw)^+ = a^+ w^+ + a^- w^-`, :math:`(aw)^- = a^+ w^- + a^- w^+`;

    - dtd:    :math:`n^\pm_j = \sum_i (a_i w_{ij})^\pm` (zero normalisers drop their part)
    - zennit: :math:`n^+_j = \mathrm{stab}(\sum_i (a_i w_{ij})^+ + b^+_j)`,
      :math:`n^-_j = \mathrm{stab}(\sum_i (a_i w_{ij})^- + b^-_j)` (``AlphaBeta(alpha=2, beta=1)``).
    """

    name = "alphabeta"
    has_root = False

    def __init__(
        self, alpha: float = 2.0, beta: float = 1.0, bias: BiasConvention = "dtd", stabilizer: float = ZENNIT_STABILIZER
    ) -> None:
        super().__init__(bias=bias, stabilizer=stabilizer)
        fa, fb = to_fraction(alpha, "alpha"), to_fraction(beta, "beta")
        if fa < 0 or fb < 0 or fa - fb != 1:
            raise InputError(f"alpha-beta needs alpha, beta >= 0 and alpha - beta = 1, got alpha={alpha}, beta={beta}")
        self.alpha, self.beta = alpha, beta

    def _parts(self, ops: Any, a: Any, W: Any, b: Any) -> tuple[Any, Any, Any, Any]:
        """(C_pos, n_pos, C_neg, n_neg) of the positive and negative parts."""
        C_pos = ops.pos(a) * ops.pos(W) + ops.neg(a) * ops.neg(W)
        C_neg = ops.pos(a) * ops.neg(W) + ops.neg(a) * ops.pos(W)
        n_pos, n_neg = ops.sum(C_pos, axis=1), ops.sum(C_neg, axis=1)
        if self.bias == "zennit":
            eps = ops.const(self.stabilizer)
            n_pos = ops.stabilise(n_pos + ops.pos(b), eps)
            n_neg = ops.stabilise(n_neg + ops.neg(b), eps)
        return C_pos, n_pos, C_neg, n_neg

    def redistribute(self, ops: Any, a: Any, W: Any, b: Any, R: Any) -> Any:
        C_pos, n_pos, C_neg, n_neg = self._parts(ops, a, W, b)
        part_pos = ops.matmul(ops.transpose(C_pos), ops.safe_divide(R, n_pos))
        part_neg = ops.matmul(ops.transpose(C_neg), ops.safe_divide(R, n_neg))
        return ops.const(self.alpha) * part_pos - ops.const(self.beta) * part_neg

    def dropped_neurons(self, ops: Any, a: Any, W: Any, b: Any, R: Any) -> list[int]:
        """Neurons where a part with a non-zero weight (alpha, beta) has a zero normaliser."""
        _, n_pos, _, n_neg = self._parts(ops, a, W, b)
        parts = [n for n, w in ((n_pos, self.alpha), (n_neg, self.beta)) if to_fraction(w) != 0]
        return zero_where_relevant(ops, R, *parts)

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta}


class ZBox(Rule):
    r"""zB / ZBox for inputs in the box [low, high]: :math:`v_{ij} = a_i - l_i` (w > 0), :math:`a_i - h_i` (w < 0), 0.

    - dtd:    :math:`(a_i w_{ij} - l_i w^+_{ij} - h_i w^-_{ij}) / \sum_i (\ldots)`
    - zennit: the same over :math:`\mathrm{stab}(\sum_i \ldots)`: zennit's bias terms cancel
      (:math:`b - b^+ - b^- = 0`), so only the stabiliser differs (``ZBox(low, high, stabilizer=1e-6)``).
    """

    name = "zbox"

    def __init__(self, low: Any, high: Any, bias: BiasConvention = "dtd", stabilizer: float = ZENNIT_STABILIZER) -> None:
        super().__init__(bias=bias, stabilizer=stabilizer)
        self.low, self.high = low, high
        self._box = Box(low, high)

    @property
    def domain(self) -> Domain:
        return self._box

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        low, high = ops.const(self.low), ops.const(self.high)
        return ops.positive_mask(W) * (a - low) + ops.negative_mask(W) * (a - high)

    def zennit_bias(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.zeros_like(b)

    def params(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high}


class WSquare(Rule):
    r"""w^2 rule: :math:`v_j = w_j` (the nearest root), unbounded domain (a first-layer rule).

    - dtd:    :math:`w_{ij}^2 / \sum_i w_{ij}^2`
    - zennit: :math:`w_{ij}^2 / \mathrm{stab}(\sum_i w_{ij}^2 + b_j^2)` (zennit squares the bias too).
    """

    name = "wsquare"

    @property
    def domain(self) -> Domain:
        return Unbounded()

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return W

    def zennit_bias(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return b * b


class Flat(Rule):
    r"""Flat rule (uniform, not a root-point rule): :math:`R_{i \leftarrow j} / R_j = 1 / n_{in}`.

    - dtd:    exactly :math:`1 / n_{in}` (conservative)
    - zennit: :math:`1 / \mathrm{stab}(n_{in})` (zennit's ``Flat``: weights 1, bias 0).
    """

    name = "flat"
    has_root = False

    @property
    def domain(self) -> Domain:
        return Unbounded()

    def contributions(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.ones_like(W)

    def zennit_bias(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.zeros_like(b)


CATALOGUE: dict[str, type[Rule]] = {
    cls.name: cls for cls in (LRP0, Epsilon, Gamma, ZPlus, AlphaBeta, ZBox, WSquare, Flat)
}


"""Composites: which rule explains which layer.

The exact engine's networks are MLPs, so zennit's type-based presets (which tell layers apart by type:
Convolution vs Linear) reduce to "first layer" and "every other layer"; :class:`LayerwiseComposite` says
first / hidden / last explicitly, which is what an MLP needs. Every composite answers
``rule_for(layer, n_layers, kind)`` with ``kind`` in {"linear", "conv"} (the torch backend passes "conv").
"""

from __future__ import annotations

from typing import Any

from .base import ZENNIT_STABILIZER, BiasConvention, Rule
from .catalogue import AlphaBeta, Epsilon, Flat, Gamma, ZBox, ZPlus


class Composite:
    """Maps a layer to its rule."""

    def rule_for(self, layer: int, n_layers: int, kind: str = "linear") -> Rule:  # pragma: no cover - interface
        raise NotImplementedError

    def rules(self, n_layers: int) -> list[Rule]:
        """The rule of each layer 1..n_layers of an MLP."""
        return [self.rule_for(l, n_layers) for l in range(1, n_layers + 1)]


class LayerwiseComposite(Composite):
    """``first`` for layer 1, ``last`` for layer L, ``hidden`` in between (each defaults to ``hidden``)."""

    def __init__(self, hidden: Rule, first: Rule | None = None, last: Rule | None = None) -> None:
        self.hidden = hidden
        self.first = first if first is not None else hidden
        self.last = last if last is not None else hidden

    def rule_for(self, layer: int, n_layers: int, kind: str = "linear") -> Rule:
        if layer == 1:
            return self.first
        if layer == n_layers:
            return self.last
        return self.hidden

    def __repr__(self) -> str:
        return f"LayerwiseComposite(first={self.first!r}, hidden={self.hidden!r}, last={self.last!r})"


class LayerMapComposite(Composite):
    """zennit-style preset: rule by layer kind, with an optional special rule for the first layer of a kind."""

    def __init__(self, layer_map: dict[str, Rule], first_map: dict[str, Rule] | None = None) -> None:
        self.layer_map = layer_map
        self.first_map = first_map or {}

    def rule_for(self, layer: int, n_layers: int, kind: str = "linear") -> Rule:
        if layer == 1 and kind in self.first_map:
            return self.first_map[kind]
        return self.layer_map[kind]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layer_map={self.layer_map!r}, first_map={self.first_map!r})"


class EpsilonPlus(LayerMapComposite):
    """zennit preset: ZPlus on convolutions, Epsilon on dense layers."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, bias: BiasConvention = "dtd") -> None:
        super().__init__({"conv": ZPlus(bias=bias, stabilizer=stabilizer), "linear": Epsilon(epsilon, bias=bias)})


class EpsilonAlpha2Beta1(LayerMapComposite):
    """zennit preset: AlphaBeta(2, 1) on convolutions, Epsilon on dense layers."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, bias: BiasConvention = "dtd") -> None:
        super().__init__(
            {"conv": AlphaBeta(2, 1, bias=bias, stabilizer=stabilizer), "linear": Epsilon(epsilon, bias=bias)}
        )


class EpsilonGammaBox(LayerMapComposite):
    """zennit preset: ZBox(low, high) on the first convolution, Gamma on other convolutions, Epsilon on dense."""

    def __init__(
        self,
        low: Any,
        high: Any,
        epsilon: float = 1e-6,
        gamma: float = 0.25,
        stabilizer: float = ZENNIT_STABILIZER,
        bias: BiasConvention = "dtd",
    ) -> None:
        super().__init__(
            {"conv": Gamma(gamma, bias=bias, stabilizer=stabilizer), "linear": Epsilon(epsilon, bias=bias)},
            {"conv": ZBox(low, high, bias=bias, stabilizer=stabilizer)},
        )


class EpsilonPlusFlat(LayerMapComposite):
    """zennit preset: Flat on the first layer (dense or conv), ZPlus on convolutions, Epsilon on dense layers."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, bias: BiasConvention = "dtd") -> None:
        flat = Flat(bias=bias, stabilizer=stabilizer)
        super().__init__(
            {"conv": ZPlus(bias=bias, stabilizer=stabilizer), "linear": Epsilon(epsilon, bias=bias)},
            {"conv": flat, "linear": flat},
        )


PRESETS: dict[str, type[LayerMapComposite]] = {
    "epsilon_plus": EpsilonPlus,
    "epsilon_alpha2_beta1": EpsilonAlpha2Beta1,
    "epsilon_gamma_box": EpsilonGammaBox,
    "epsilon_plus_flat": EpsilonPlusFlat,
}


def rule_for_layer(rule_or_composite: Rule | Composite, layer: int, n_layers: int, kind: str = "linear") -> Rule:
    """The rule that explains ``layer``: the rule itself, or the composite's choice."""
    if isinstance(rule_or_composite, Rule):
        return rule_or_composite
    if isinstance(rule_or_composite, Composite):
        return rule_or_composite.rule_for(layer, n_layers, kind)
    raise TypeError(f"expected a Rule or a Composite, got {type(rule_or_composite).__name__}")

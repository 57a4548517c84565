"""zennit's composites under their zennit names and signatures, in the zennit convention by default.

``from dtd_formal.torch.composites import EpsilonGammaBox`` is a drop-in for ``from zennit.composites import
EpsilonGammaBox``: the same constructor (``low, high, epsilon, gamma, stabilizer, canonizers``) and, with the
defaults ``bias="zennit"`` and Pass on activations (:func:`dtd_formal.torch.lrp`'s default for that convention),
zennit's numbers. ``bias="dtd"`` gives the DTD derivation's presets (those of :mod:`dtd_formal.rules.composites`).

:class:`LayerMapComposite`, :class:`SpecialFirstLayerMapComposite` and :class:`NameMapComposite` take zennit's
lists of ``(module type or tuple of types, rule)`` and ``(tuple of module names, rule)`` pairs, with this
package's rules (:mod:`dtd_formal.rules`; zennit's type groups such as ``zennit.types.Convolution`` work as keys).
"""

from __future__ import annotations

from typing import Any

from ..rules import composites as base
from ..rules.base import ZENNIT_STABILIZER, BiasConvention, Rule


class LayerMapComposite(base.LayerMapComposite):
    """zennit's ``LayerMapComposite(layer_map, canonizers=None)``: the first matching (type, rule) pair."""

    def __init__(self, layer_map: Any, canonizers: list[Any] | None = None) -> None:
        super().__init__(layer_map, canonizers=canonizers)


class SpecialFirstLayerMapComposite(base.LayerMapComposite):
    """zennit's ``SpecialFirstLayerMapComposite(layer_map, first_map, canonizers=None)``."""

    def __init__(self, layer_map: Any, first_map: Any, canonizers: list[Any] | None = None) -> None:
        super().__init__(layer_map, first_map, canonizers=canonizers)


class NameMapComposite(base.LayerMapComposite):
    """zennit's ``NameMapComposite(name_map, canonizers=None)`` with ``name_map`` a list of (names, rule); a
    layer whose module name is not listed has no rule (a clear error)."""

    def __init__(self, name_map: list[tuple[tuple[str, ...], Rule]], canonizers: list[Any] | None = None) -> None:
        names = {name: rule for group, rule in name_map for name in ((group,) if isinstance(group, str) else group)}
        super().__init__([], name_map=names, canonizers=canonizers)


class EpsilonPlus(base.EpsilonPlus):
    """zennit's EpsilonPlus (zennit convention by default)."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, canonizers: list[Any] | None = None,
                 bias: BiasConvention = "zennit") -> None:
        super().__init__(epsilon, stabilizer, bias, canonizers)


class EpsilonAlpha2Beta1(base.EpsilonAlpha2Beta1):
    """zennit's EpsilonAlpha2Beta1 (zennit convention by default)."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, canonizers: list[Any] | None = None,
                 bias: BiasConvention = "zennit") -> None:
        super().__init__(epsilon, stabilizer, bias, canonizers)


class EpsilonPlusFlat(base.EpsilonPlusFlat):
    """zennit's EpsilonPlusFlat (zennit convention by default)."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, canonizers: list[Any] | None = None,
                 bias: BiasConvention = "zennit") -> None:
        super().__init__(epsilon, stabilizer, bias, canonizers)


class EpsilonAlpha2Beta1Flat(base.EpsilonAlpha2Beta1Flat):
    """zennit's EpsilonAlpha2Beta1Flat (zennit convention by default)."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, canonizers: list[Any] | None = None,
                 bias: BiasConvention = "zennit") -> None:
        super().__init__(epsilon, stabilizer, bias, canonizers)


class EpsilonGammaBox(base.EpsilonGammaBox):
    """zennit's EpsilonGammaBox(low, high, epsilon, gamma, stabilizer, canonizers) (zennit convention by default)."""

    def __init__(self, low: Any, high: Any, epsilon: float = 1e-6, gamma: float = 0.25,
                 stabilizer: float = ZENNIT_STABILIZER, canonizers: list[Any] | None = None,
                 bias: BiasConvention = "zennit") -> None:
        super().__init__(low, high, epsilon, gamma, stabilizer, bias, canonizers)


__all__ = ["EpsilonAlpha2Beta1", "EpsilonAlpha2Beta1Flat", "EpsilonGammaBox", "EpsilonPlus", "EpsilonPlusFlat",
           "LayerMapComposite", "NameMapComposite", "SpecialFirstLayerMapComposite"]

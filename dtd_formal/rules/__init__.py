"""The rule catalogue: one definition per rule, written over a small ``ops`` namespace so that every backend
(exact, float64, SymPy, Z3, torch) runs the same body. See :mod:`dtd_formal.rules.base`."""

from .base import Rule
from .catalogue import CATALOGUE, LRP0, AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus
from .composites import (
    PRESETS,
    Composite,
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    LayerMapComposite,
    LayerwiseComposite,
    rule_for_layer,
)
from .domains import Box, Domain, NonNegative, Unbounded
from .ops import EXACT, FLOAT64, ExactOps, FloatOps
from .parse import parse_rule

__all__ = [
    "Rule", "CATALOGUE", "LRP0", "AlphaBeta", "Epsilon", "Flat", "Gamma", "WSquare", "ZBox", "ZPlus",
    "PRESETS", "Composite", "EpsilonAlpha2Beta1", "EpsilonGammaBox", "EpsilonPlus", "EpsilonPlusFlat",
    "LayerMapComposite", "LayerwiseComposite", "rule_for_layer", "Box", "Domain", "NonNegative", "Unbounded",
    "EXACT", "FLOAT64", "ExactOps", "FloatOps", "parse_rule",
]

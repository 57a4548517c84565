"""The property catalogue as seen from :mod:`dtd_formal.testing`: the one catalogue of
:mod:`dtd_formal.properties` (kebab-case names; snake_case accepted), re-exported under its old path so that exported
regression tests keep importing ``evaluate_property`` from here."""

from ..properties import (
    ALIASES,
    CATALOGUE,
    DEFAULT_PROPERTIES,
    Outcome,
    Property,
    canonical_name,
    checked_layers,
    evaluate_property,
    get_property,
    is_first_layer_rule,
    torch_ops,
)

__all__ = [
    "Outcome", "Property", "CATALOGUE", "ALIASES", "DEFAULT_PROPERTIES", "get_property", "evaluate_property",
    "canonical_name", "checked_layers", "is_first_layer_rule", "torch_ops",
]

"""Composites: which rule explains which layer.

Every composite answers ``rule_for(layer, n_layers, kind)`` with ``kind`` in {"linear", "conv"}, and
``rule_for_module(name, module_type, layer, n_layers, kind)`` where the torch backend knows the module (its
qualified name and class). :class:`LayerwiseComposite` says first / hidden / last explicitly (what an MLP needs);
:class:`LayerMapComposite` keys rules by kind, by module type (zennit's layer maps: ``{nn.Conv2d: Gamma(0.25),
nn.Linear: Epsilon(1e-6)}``) and by module name (zennit's name maps), with a special first-layer map; the
presets are zennit's (EpsilonPlus, EpsilonAlpha2Beta1, EpsilonPlusFlat, EpsilonAlpha2Beta1Flat,
EpsilonGammaBox). A composite also carries its canonizers (``canonizers=[...]``, as in zennit).

Type keys are matched without importing torch: by ``issubclass`` when the module's class is known, and by the
kind's class names (``Linear``; ``Conv1d``/``Conv2d``/``Conv3d``) on the exact engine's networks, whose layers
have no module.
"""

from __future__ import annotations

from typing import Any

from .base import ZENNIT_STABILIZER, BiasConvention, Rule
from .catalogue import AlphaBeta, Epsilon, Flat, Gamma, ZBox, ZPlus


class Composite:
    """Maps a layer to its rule."""

    #: canonizers applied to a torch model before it is explained (zennit's ``canonizers=``); see
    #: :mod:`dtd_formal.torch.canonizers`
    canonizers: list[Any] = []

    def rule_for(self, layer: int, n_layers: int, kind: str = "linear") -> Rule:  # pragma: no cover - interface
        raise NotImplementedError

    def rule_for_module(self, name: str, module_type: type | None, layer: int, n_layers: int,
                        kind: str = "linear") -> Rule:
        """The rule of a layer whose module is known (torch): by default the same as :meth:`rule_for`."""
        return self.rule_for(layer, n_layers, kind)

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


_KIND_CLASS_NAMES = {"linear": ("Linear",), "conv": ("Conv1d", "Conv2d", "Conv3d")}

LayerKey = Any  #: a kind ("linear" / "conv"), a module class, or a tuple of module classes


def _key_matches(key: LayerKey, module_type: type | None, kind: str) -> bool:
    """Whether a layer-map key names this layer: a kind string, a class (issubclass; on module-less layers the
    kind's class names) or a tuple of classes."""
    if isinstance(key, str):
        return key == kind
    if isinstance(key, tuple):
        return any(_key_matches(k, module_type, kind) for k in key)
    if isinstance(key, type):
        if module_type is not None:
            return issubclass(module_type, key)
        return key.__name__ in _KIND_CLASS_NAMES.get(kind, ())
    raise TypeError(f"a layer-map key is a kind ('linear'/'conv'), a module class or a tuple of them; got {key!r}")


def _as_items(mapping: Any) -> list[tuple[Any, Rule]]:
    items = list(mapping.items()) if isinstance(mapping, dict) else list(mapping or [])
    for key, rule in items:
        if not isinstance(rule, Rule):
            raise TypeError(f"the layer map gives {key!r} the value {rule!r}, which is not a Rule")
    return items


class LayerMapComposite(Composite):
    """zennit-style composite: a rule by module name, else (for the first layer) by ``first_map``, else by
    ``layer_map``; keys are kinds, module classes or tuples of classes, tried in order (zennit's list of pairs,
    or a dict). A layer no key names raises a clear error (an unassigned layer is never silently explained)."""

    def __init__(self, layer_map: Any, first_map: Any = None, name_map: dict[str, Rule] | None = None,
                 canonizers: list[Any] | None = None) -> None:
        self.layer_map = _as_items(layer_map)
        self.first_map = _as_items(first_map)
        self.name_map = dict(_as_items(name_map))
        self.canonizers = list(canonizers or [])

    def rule_for(self, layer: int, n_layers: int, kind: str = "linear") -> Rule:
        return self.rule_for_module("", None, layer, n_layers, kind)

    def rule_for_module(self, name: str, module_type: type | None, layer: int, n_layers: int,
                        kind: str = "linear") -> Rule:
        if name and name in self.name_map:
            return self.name_map[name]
        for key, rule in (self.first_map if layer == 1 else []) + self.layer_map:
            if _key_matches(key, module_type, kind):
                return rule
        what = f"layer {layer} ({kind}" + (f", module {name!r} {module_type.__name__}" if module_type else "") + ")"
        raise KeyError(f"{type(self).__name__} has no rule for {what}; add its type or name to the layer map")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layer_map={self.layer_map!r}, first_map={self.first_map!r})"


class EpsilonPlus(LayerMapComposite):
    """zennit preset: ZPlus on convolutions, Epsilon on dense layers."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, bias: BiasConvention = "dtd",
                 canonizers: list[Any] | None = None) -> None:
        super().__init__({"conv": ZPlus(bias=bias, stabilizer=stabilizer), "linear": Epsilon(epsilon, bias=bias)},
                         canonizers=canonizers)


class EpsilonAlpha2Beta1(LayerMapComposite):
    """zennit preset: AlphaBeta(2, 1) on convolutions, Epsilon on dense layers."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, bias: BiasConvention = "dtd",
                 canonizers: list[Any] | None = None) -> None:
        super().__init__(
            {"conv": AlphaBeta(2, 1, bias=bias, stabilizer=stabilizer), "linear": Epsilon(epsilon, bias=bias)},
            canonizers=canonizers,
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
        canonizers: list[Any] | None = None,
    ) -> None:
        super().__init__(
            {"conv": Gamma(gamma, bias=bias, stabilizer=stabilizer), "linear": Epsilon(epsilon, bias=bias)},
            {"conv": ZBox(low, high, bias=bias, stabilizer=stabilizer)},
            canonizers=canonizers,
        )


class EpsilonPlusFlat(LayerMapComposite):
    """zennit preset: Flat on the first layer (dense or conv), ZPlus on convolutions, Epsilon on dense layers."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, bias: BiasConvention = "dtd",
                 canonizers: list[Any] | None = None) -> None:
        flat = Flat(bias=bias, stabilizer=stabilizer)
        super().__init__(
            {"conv": ZPlus(bias=bias, stabilizer=stabilizer), "linear": Epsilon(epsilon, bias=bias)},
            {"conv": flat, "linear": flat},
            canonizers=canonizers,
        )


class EpsilonAlpha2Beta1Flat(LayerMapComposite):
    """zennit preset: Flat on the first layer (dense or conv), AlphaBeta(2, 1) on convolutions, Epsilon on dense
    layers."""

    def __init__(self, epsilon: float = 1e-6, stabilizer: float = ZENNIT_STABILIZER, bias: BiasConvention = "dtd",
                 canonizers: list[Any] | None = None) -> None:
        flat = Flat(bias=bias, stabilizer=stabilizer)
        super().__init__(
            {"conv": AlphaBeta(2, 1, bias=bias, stabilizer=stabilizer), "linear": Epsilon(epsilon, bias=bias)},
            {"conv": flat, "linear": flat},
            canonizers=canonizers,
        )


PRESETS: dict[str, type[LayerMapComposite]] = {
    "epsilon_plus": EpsilonPlus,
    "epsilon_alpha2_beta1": EpsilonAlpha2Beta1,
    "epsilon_gamma_box": EpsilonGammaBox,
    "epsilon_plus_flat": EpsilonPlusFlat,
    "epsilon_alpha2_beta1_flat": EpsilonAlpha2Beta1Flat,
}


def rule_for_layer(rule_or_composite: Rule | Composite, layer: int, n_layers: int, kind: str = "linear",
                   name: str = "", module_type: type | None = None) -> Rule:
    """The rule that explains ``layer``: the rule itself, or the composite's choice (by module name and type when
    the caller knows the module)."""
    if isinstance(rule_or_composite, Rule):
        return rule_or_composite
    if isinstance(rule_or_composite, Composite):
        from ..errors import InputError

        try:
            return rule_or_composite.rule_for_module(name, module_type, layer, n_layers, kind)
        except KeyError as exc:
            raise InputError(str(exc.args[0]) if exc.args else str(exc)) from None
    raise TypeError(f"expected a Rule or a Composite, got {type(rule_or_composite).__name__}")

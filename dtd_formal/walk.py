r"""The one network walk, generic in the ops namespace: forward pass, LRP backward pass, root points, gradient.

Every engine that evaluates a rule on a network calls these functions with its own ops namespace and its own
numbers — exact rationals (:class:`~dtd_formal.rules.ops.ExactOps`), float64, Z3 terms
(:class:`~dtd_formal.smt.ops.Z3Ops`) — so a rule override or a new layer kind is seen by all of them at once:

- :func:`forward`: :math:`z_m = W_m a_{m-1} + b_m`, :math:`a_m = \mathrm{relu}(z_m)` (``ops.pos``) on ReLU layers;
- :func:`relevance`: :math:`R^L = f_c(x)\,e_c`, :math:`R^{l-1} = [a_{l-1} > 0] \odot
  \mathrm{rule}_l.\mathrm{redistribute}(a_{l-1}, W_l, b_l, R^l)` with the ReLU gate below hidden ReLU layers
  (or, ``activation="pass"``, zennit's Pass: no gate; :data:`ACTIVATIONS`);
- :func:`root_points`: :math:`(t, V, \mathrm{den}) = \mathrm{rule.root\_step}(a, W, b)` and the roots
  :math:`\tilde a^{(j)} = a - t_j v_j`;
- :func:`gradient`: :math:`g \leftarrow W_l^\top (g \odot [z_l > 0])` from :math:`e_c` (relu'(0) = 0);
- :func:`relevant_neurons`: which neurons carry relevance (active, or the explained output), as conditions of
  the same ops (Python booleans in exact arithmetic, Z3 Booleans for terms).

Every call of a rule method goes through :func:`call_rule`, which turns an exception inside the rule's body into a
:class:`RuleEvaluationError` naming the method, the layer and the cause, checks the result's shape, and — in exact
arithmetic — checks that every entry is an exact rational: a body that mixes a Python float into exact numbers
(``ops.one + 0.1``) is refused here instead of silently computing in floats.

:class:`Trace` bundles one walk (one rule, one network, one input, one ops) with lazily computed relevance, roots,
normalisers and gradient; the property catalogue (:mod:`dtd_formal.properties`) evaluates each property on a
trace, exactly or as a Z3 formula, from one definition. This module imports nothing of the package but the rules
and the numeric foundation.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import InputError
from .exact import FAST_RATIONAL
from .rules.base import Rule
from .rules.composites import Composite, rule_for_layer

#: (W_l, b_l) of every layer, in the numbers of one ops namespace
Layers = Sequence[tuple[Any, Any]]
#: activation hook of :func:`forward`: (layer m, z_m) -> (z_m as used above, a_m)
Activation = Callable[[int, Any], tuple[Any, Any]]

_EXACT_TYPES: tuple[type, ...] = (Fraction, int) if FAST_RATIONAL is Fraction else (Fraction, int, FAST_RATIONAL)


class RuleEvaluationError(InputError):
    """A rule's method raised, returned a wrong shape, or returned inexact numbers in exact arithmetic.

    Attributes
    ----------
    rule : str
        The rule's spec string.
    method : str
        The Rule method that failed (``redistribute``, ``root_step``, ``normaliser``, ...).
    layer : int or None
        The layer it was evaluated on.
    cause : str
        What went wrong (the exception, or the offending value).
    """

    def __init__(self, rule: str, method: str, layer: int | None, cause: str) -> None:
        where = f" on layer {layer}" if layer is not None else ""
        super().__init__(f"rule {rule}: {method}{where} failed: {cause}")
        self.rule, self.method, self.layer, self.cause = rule, method, layer, cause


def _spec(rule: Any) -> str:
    try:
        return str(rule.spec())
    except Exception:  # noqa: BLE001 - a user rule whose spec() itself is broken
        return type(rule).__name__


def _check_exact(rule: Rule, method: str, layer: int | None, value: Any) -> None:
    """Every entry of an exact-arithmetic result must be an exact rational (Fraction, gmpy2 mpq or int)."""
    arr = np.asarray(value, dtype=object)
    for v in arr.ravel().tolist():
        if isinstance(v, bool) or not isinstance(v, _EXACT_TYPES):
            raise RuleEvaluationError(
                _spec(rule), method, layer,
                f"returned the inexact value {v!r} ({type(v).__name__}) in exact arithmetic; write rule parameters "
                "with ops.const(...) instead of Python float literals",
            )


def call_rule(rule: Rule, method: str, ops: Any, *args: Any, layer: int | None = None,
              shapes: Sequence[tuple[int, ...] | None] | None = None) -> Any:
    """Call ``rule.<method>(ops, *args)`` and check what it returns.

    Parameters
    ----------
    rule, method : the rule and the name of the Rule method
    ops : the ops namespace the call runs in (exact results are checked for exactness)
    layer : the layer, for the error message
    shapes : expected shape of the result (or of each element of a tuple result); None entries are not checked

    Raises
    ------
    RuleEvaluationError
        When the method raises, returns a wrong shape, or (exact ops) an inexact number.
    """
    try:
        out = getattr(rule, method)(ops, *args)
    except RuleEvaluationError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside a user's rule body is reported as such
        raise RuleEvaluationError(_spec(rule), method, layer, f"{type(exc).__name__}: {exc}") from exc
    parts = out if isinstance(out, tuple) else (out,)
    if shapes is not None:
        if len(parts) != len(shapes):
            raise RuleEvaluationError(_spec(rule), method, layer,
                                      f"returned {len(parts)} values, expected {len(shapes)}")
        for k, (part, shape) in enumerate(zip(parts, shapes)):
            if shape is not None and tuple(np.shape(part)) != tuple(shape):
                what = f"value {k} has" if len(parts) > 1 else "returned"
                raise RuleEvaluationError(_spec(rule), method, layer,
                                          f"{what} shape {tuple(np.shape(part))}, expected {tuple(shape)}")
    if getattr(ops, "exact_results", False):
        for part in parts:
            _check_exact(rule, method, layer, part)
    return out


# ---------------------------------------------------------------------------------------------------- forward
def forward(ops: Any, layers: Layers, relu: Sequence[bool], x: Any, start: int = 1, linear: int | None = None,
            activation: Activation | None = None) -> tuple[list[Any], list[Any]]:
    r"""(activations :math:`a_{start-1}..a_L`, pre-activations :math:`z_{start}..z_L`) of one point.

    Parameters
    ----------
    ops : the ops namespace of the numbers in ``layers`` and ``x``
    layers : (W_m, b_m) of all L layers
    relu : ``relu[m-1]`` whether layer m is followed by a ReLU
    x : the input of layer ``start`` (the network input for start = 1)
    linear : a neuron of layer ``start`` that passes its pre-activation unchanged (the root semantics: neuron j is
        held on its input phase), or None
    activation : optional hook (m, z_m) -> (z_m, a_m) replacing ``a_m = ops.pos(z_m)`` on ReLU layers (the Z3
        encoding names its variables and phase Booleans here); it is called on every layer m, ReLU or not
    """
    acts, zs = [x], []
    a = x
    for m in range(start, len(layers) + 1):
        W, b = layers[m - 1]
        z = ops.matmul(W, a) + b
        if activation is not None:
            z, a = activation(m, z)
        elif relu[m - 1]:
            a = ops.pos(z)
            if linear is not None and m == start:
                a = a.copy()
                a[linear] = z[linear]
        else:
            a = z
        zs.append(z)
        acts.append(a)
    return acts, zs


def scalar(value: Any) -> Any:
    """A number of an ops namespace as a bare scalar (Z3Ops keeps its constants as 0-d arrays)."""
    return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value


def top_relevance(ops: Any, output_activation: Any, output: int) -> Any:
    r""":math:`R^L = f_c(x)\,e_c` (the explained output's value at its index, zeros elsewhere)."""
    R = ops.zeros_like(output_activation)
    R[output] = output_activation[output]
    return R


@dataclass
class LayerStep:
    """One step of the backward pass at layer l: the rule, :math:`R^l`, the rule's raw :math:`R^{l-1}` and
    :math:`R^{l-1}` after the ReLU gate (equal to the raw one where no gate applies)."""

    layer: int
    rule: Rule
    upper: Any
    lower_raw: Any
    lower: Any


#: How relevance crosses a ReLU: "gate" multiplies by :math:`[z > 0]` (the ReLU's gradient: the DTD derivation,
#: where an inactive neuron's Taylor expansion has no relevance to give), "pass" hands it on unchanged (zennit's
#: ``Pass`` rule on activations, which its presets use).
ACTIVATIONS = ("gate", "pass")


def resolve_activation(activation: str | None, rules: Iterable[Rule]) -> str:
    """The ReLU convention: ``activation`` if given, else "pass" when a rule uses ``bias="zennit"`` (zennit's
    presets) and "gate" otherwise (the DTD derivation)."""
    if activation is None:
        return "pass" if any(r.bias == "zennit" for r in rules) else "gate"
    if activation not in ACTIVATIONS:
        from .errors import InputError

        raise InputError(f"activation must be 'gate' or 'pass', got {activation!r}")
    return activation


def relevance(ops: Any, layers: Layers, relu: Sequence[bool], acts: Sequence[Any], rule_or_composite: Rule | Composite,
              output: int, top: Any = None, activation: str = "gate") -> list[LayerStep]:
    r"""The LRP backward pass (module docstring); returns the steps of layers L..1 (index 0 = layer L).

    ``top`` replaces :math:`R^L = f_c(x) e_c` (any relevance vector of the output layer). With
    ``activation="gate"`` the ReLU gate :math:`[a_{l-1} > 0]` (the ReLU's gradient) applies below hidden ReLU
    layers, not at the input: rules whose contributions do not vanish at :math:`a_i = 0` (Flat, WSquare, ZBox)
    can assign relevance to inactive neurons, which the gate drops; ``"pass"`` keeps it (zennit's presets).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be 'gate' or 'pass', got {activation!r}")
    L = len(layers)
    R = top_relevance(ops, acts[-1], output) if top is None else top
    steps: list[LayerStep] = []
    for l in range(L, 0, -1):
        rule = rule_for_layer(rule_or_composite, l, L)
        a, (W, b) = acts[l - 1], layers[l - 1]
        raw = call_rule(rule, "redistribute", ops, a, W, b, R, layer=l, shapes=[np.shape(a)])
        gated = activation == "gate" and l > 1 and relu[l - 2]
        low = ops.where(a > 0, raw, ops.zero) if gated else raw
        steps.append(LayerStep(l, rule, R, raw, low))
        R = low
    return steps


def relevance_per_layer(ops: Any, layers: Layers, relu: Sequence[bool], acts: Sequence[Any],
                        rule_or_composite: Rule | Composite, output: int) -> list[Any]:
    """:math:`[R^0, \\dots, R^L]` of the backward pass (:func:`relevance`)."""
    return per_layer(relevance(ops, layers, relu, acts, rule_or_composite, output))


def per_layer(steps: Sequence[LayerStep]) -> list[Any]:
    """:math:`[R^0, \\dots, R^L]` from the steps of :func:`relevance`."""
    out: list[Any] = [None] * (len(steps) + 1)
    for s in steps:
        out[s.layer] = s.upper
        out[s.layer - 1] = s.lower
    return out


# ---------------------------------------------------------------------------------------------------- roots
@dataclass
class RootStep:
    r"""Root points of some neurons of one layer: step sizes t, directions V (rows), denominators
    :math:`w_j \cdot v_j` and the points :math:`a - t_j v_j` (rows)."""

    t: Any
    V: Any
    den: Any
    points: Any


def root_points(ops: Any, rule: Rule, a: Any, W: Any, b: Any, R: Any = None, definition: str = "true",
                layer: int | None = None) -> RootStep:
    r"""The rule's ``root_step`` on the rows of (W, b) and the roots :math:`\tilde a^{(j)} = a - t_j v_j`.

    ``definition="paper-code"`` passes the upper relevance R of these neurons (:math:`t_j = R_j / (w_j\cdot v_j)`).
    Entries with a zero denominator are returned as the rule gives them; callers skip them via ``den``.
    """
    if definition not in ("true", "paper-code"):
        raise InputError(f"root definition must be 'true' or 'paper-code', got {definition!r}")
    if definition == "paper-code" and R is None:
        raise InputError("definition='paper-code' needs the upper relevance R")
    k = np.shape(W)[0]
    t, V, den = call_rule(rule, "root_step", ops, a, W, b, R, definition, layer=layer,
                          shapes=[(k,), tuple(np.shape(W)), (k,)])
    return RootStep(t, V, den, a - t[:, None] * V)


def gradient(ops: Any, layers: Layers, relu: Sequence[bool], zs: Sequence[Any], output: int) -> Any:
    r""":math:`\nabla f_c(x)`: :math:`g = e_c`, then :math:`g \leftarrow W_l^\top (g \odot [z_l > 0])` for
    l = L..1 (the mask only on ReLU layers; relu'(0) = 0, torch's convention)."""
    g = ops.zeros_like(zs[-1])
    g[output] = scalar(ops.one)
    for l in range(len(layers), 0, -1):
        if relu[l - 1]:
            g = g * ops.positive_mask(zs[l - 1])
        g = ops.matmul(ops.transpose(layers[l - 1][0]), g)
    return g


def relevant_neurons(z: Any, layer: int, n_layers: int, relu_layer: bool, output: int) -> list[tuple[int, Any]]:
    """(neuron, condition) of the neurons of ``layer`` that carry relevance: active hidden neurons (condition
    :math:`z_j > 0`, a Python bool in exact arithmetic, a Z3 Boolean for terms) and, in the last layer, only the
    explained output (active too when the network ends in a ReLU; condition True otherwise)."""
    out: list[tuple[int, Any]] = []
    for j in range(len(z)):
        if layer == n_layers and j != output:
            continue
        out.append((j, z[j] > 0 if relu_layer else True))
    return out


# ---------------------------------------------------------------------------------------------------- trace
class Trace:
    """One walk: a rule (or composite) on a network at one input, in one ops namespace; everything lazy.

    Parameters
    ----------
    ops : ops namespace (exact, float64, Z3)
    layers, relu : the network's layers in the numbers of ``ops`` and its ReLU flags
    x : the input (numbers of ``ops``)
    rule : the rule or composite explaining every layer
    output : explained output c
    activation : optional forward hook (see :func:`forward`)
    """

    def __init__(self, ops: Any, layers: Layers, relu: Sequence[bool], x: Any, rule: Rule | Composite, output: int,
                 activation: Activation | None = None) -> None:
        self.ops, self.layers, self.relu, self.x, self.rule, self.output = ops, layers, list(relu), x, rule, output
        self.n_layers = len(layers)
        self.acts, self.zs = forward(ops, layers, relu, x, activation=activation)
        self._roots: dict[tuple[int, str], RootStep] = {}
        self._normalisers: dict[int, Any] = {}

    @cached_property
    def steps(self) -> list[LayerStep]:
        """The backward pass (:func:`relevance`)."""
        return relevance(self.ops, self.layers, self.relu, self.acts, self.rule, self.output)

    @cached_property
    def relevance(self) -> list[Any]:
        """:math:`[R^0, \\dots, R^L]`."""
        return per_layer(self.steps)

    def rule_at(self, layer: int) -> Rule:
        return rule_for_layer(self.rule, layer, self.n_layers)

    def relevant(self, layer: int) -> list[tuple[int, Any]]:
        """:func:`relevant_neurons` of ``layer``."""
        return relevant_neurons(self.zs[layer - 1], layer, self.n_layers, self.relu[layer - 1], self.output)

    def roots(self, layer: int, definition: str = "true") -> RootStep:
        """Root points of every neuron of ``layer`` (paper-code roots take :math:`R^l` from :attr:`relevance`)."""
        key = (layer, definition)
        if key not in self._roots:
            W, b = self.layers[layer - 1]
            R = self.relevance[layer] if definition == "paper-code" else None
            self._roots[key] = root_points(self.ops, self.rule_at(layer), self.acts[layer - 1], W, b, R, definition,
                                           layer)
        return self._roots[key]

    def layer_view(self, layer: int) -> tuple[Any, Any, Any, Any]:
        """(ops, a_{l-1}, W_l, b_l): what a rule method of ``layer`` is called with."""
        W, b = self.layers[layer - 1]
        return self.ops, self.acts[layer - 1], W, b

    def preactivation_at(self, layer: int, j: int, point: Any) -> Any:
        r""":math:`z_j = w_j \cdot p + b_j` of ``layer`` at a point p of its input space."""
        W, b = self.layers[layer - 1]
        return self.ops.sum(W[j] * point) + b[j]

    def normaliser(self, layer: int) -> Any:
        """The rule's normaliser :math:`n_j` of every neuron of ``layer``."""
        if layer not in self._normalisers:
            W, b = self.layers[layer - 1]
            self._normalisers[layer] = call_rule(self.rule_at(layer), "normaliser", self.ops, self.acts[layer - 1],
                                                 W, b, layer=layer, shapes=[(np.shape(W)[0],)])
        return self._normalisers[layer]

    @cached_property
    def gradient(self) -> Any:
        r""":math:`\nabla f_c(x)` (:func:`gradient`)."""
        return gradient(self.ops, self.layers, self.relu, self.zs, self.output)


__all__ = ["RuleEvaluationError", "call_rule", "forward", "scalar", "top_relevance", "LayerStep", "relevance", "relevance_per_layer", "per_layer",
           "RootStep", "root_points", "gradient", "relevant_neurons", "Trace"]

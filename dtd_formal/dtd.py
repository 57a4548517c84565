r"""Train-free DTD (LRP), root points, and the exact recursive DTD with pluggable root policies.

Layers are numbered 1..L (layer l maps :math:`a_{l-1}` to :math:`z_l`). The explained output c starts with
relevance :math:`R^L = f_c(x)\, e_c`; :math:`R^l` is the relevance of :math:`a_l`. A hidden ReLU passes the
relevance of its active neurons and drops what a rule gave to inactive ones (zennit's convention, the ReLU's
gradient; root rules give inactive neurons nothing anyway since their contributions carry the factor
:math:`a_j = 0`); ``lrp`` reports the dropped amount per layer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Literal

import numpy as np

from .errors import InputError
from .exact import ExactArray, fast_to_fraction, from_fast, sign, to_fast, to_float, to_fraction_array
from .network import Network, relu
from .rules.base import Rule
from .rules.composites import Composite, rule_for_layer
from .rules.ops import EXACT, FAST_EXACT, FLOAT64
from .walk import call_rule, forward, per_layer, relevance, relevant_neurons, resolve_activation, root_points

Arithmetic = Literal["exact", "float64"]
RootDefinition = Literal["true", "paper-code"]


# ---------------------------------------------------------------------------------------------------- LRP
@dataclass
class LayerConservation:
    """Relevance bookkeeping of one layer l: what entered from above, what reached :math:`a_{l-1}`."""

    layer: int
    upper_total: Any  #: sum of R^l
    lower_total: Any  #: sum of R^{l-1} (after the ReLU gate of layer l-1)
    dropped_neurons: list[int]  #: neurons whose normaliser was 0 (their relevance was dropped)
    relu_dropped: Any = 0  #: relevance this layer's rule gave to inactive neurons of a_{l-1}, dropped at their ReLU

    @property
    def absorbed(self) -> Any:
        """What the bias, stabiliser or dropped neurons took: sum R^l - sum R^{l-1} (0 = conservative)."""
        return self.upper_total - self.lower_total

    @property
    def conserved(self) -> bool:
        return self.absorbed == 0


@dataclass
class Relevance:
    """Result of :func:`lrp`.

    Attributes
    ----------
    input : array
        :math:`R^0`, the input relevance (exact Fractions, or float64).
    per_layer : list of arrays
        ``per_layer[l]`` is :math:`R^l` (relevance of :math:`a_l`), l = 0..L.
    conservation : list of LayerConservation
        One entry per layer 1..L (index l-1).
    rules : list of Rule
        The rule used at each layer 1..L.
    """

    input: np.ndarray
    per_layer: list[np.ndarray]
    conservation: list[LayerConservation]
    rules: list[Rule]
    output: int
    arithmetic: str

    @property
    def total_absorbed(self) -> Any:
        return sum((c.absorbed for c in self.conservation), Fraction(0) if self.arithmetic == "exact" else 0.0)


def arithmetic_ops(net: Network, arithmetic: Arithmetic) -> tuple[list[tuple[Any, Any]], Any]:
    """(W_l, b_l) pairs and the ops of one arithmetic: gmpy2 rationals for "exact" (the same values as the
    Fractions; callers convert results back), float64 for "float64"."""
    if arithmetic == "exact":
        return net.fast_layers, FAST_EXACT
    if arithmetic == "float64":
        return net.arrays("float64"), FLOAT64
    raise InputError(f"arithmetic must be 'exact' or 'float64', got {arithmetic!r}")


def _input_array(net: Network, x: Any, arithmetic: Arithmetic) -> np.ndarray:
    xa = net.as_input(x)
    return to_fast(xa) if arithmetic == "exact" else to_float(xa)


def is_torch_module(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch.nn.Module`` (checked without importing torch)."""
    return any(c.__name__ == "Module" and c.__module__ == "torch.nn.modules.module" for c in type(obj).__mro__)


def lrp(
    net: Network,
    x: Any,
    rule_or_composite: Rule | Composite,
    output: Any = 0,
    arithmetic: Arithmetic = "exact",
    activation: str | None = None,
    target: Any = None,
) -> Relevance:
    r"""Layer-wise relevance propagation with one rule or a composite.

    :math:`R^L = f_c(x) e_c`, then for l = L..1: :math:`R^{l-1} = [a_{l-1} > 0] \odot \mathrm{rule}_l.
    \mathrm{redistribute}(a_{l-1}, W_l, b_l, R^l)`, where the ReLU gate :math:`[a_{l-1} > 0]` (the ReLU's
    gradient) applies below hidden ReLU layers, not at the input (:func:`dtd_formal.walk.relevance`).
    ``activation="pass"`` drops the gate (zennit's ``Pass`` on activations); the default is "pass" when a rule
    uses ``bias="zennit"`` and "gate" otherwise, the DTD derivation (an inactive neuron's expansion has nothing to
    redistribute; see :data:`dtd_formal.walk.ACTIVATIONS`). Exact by default (Fractions; computed with gmpy2
    rationals, the same values); ``arithmetic="float64"`` runs the same rule bodies in floats. An operator graph
    goes to :func:`dtd_formal.graph.explain.graph_lrp`, a ``torch.nn.Module`` to :func:`dtd_formal.torch.lrp`
    (its relevance tensor; there ``target`` may also be a relevance tensor, zennit's ``grad_outputs``).
    ``target`` is another name for ``output`` (captum's).
    """
    if target is not None:
        if output not in (0, None) and not is_torch_module(net):
            raise InputError("give the explained output once: output= or target=, not both")
        output = target
    if is_torch_module(net):  # a zennit user's model: the torch backend (floats, a relevance tensor)
        from .torch import lrp as torch_lrp

        if arithmetic != "exact":
            raise InputError("an nn.Module is explained by the torch backend in its own dtype; drop arithmetic=")
        return torch_lrp(net, x, rule_or_composite, output=output if target is None else None,  # type: ignore[return-value]
                         target=target, activation=activation)
    if not isinstance(output, (int, np.integer)) or isinstance(output, bool):
        raise InputError(f"output/target: the exact engine explains one output index, got {output!r}")
    output = int(output)
    if getattr(net, "is_graph", False):
        from .graph.explain import graph_lrp

        return graph_lrp(net, x, rule_or_composite, output, arithmetic, activation)  # type: ignore[return-value]
    net.check_output(output)
    layers, ops = arithmetic_ops(net, arithmetic)
    acts, _ = forward(ops, layers, net.relu_flags, _input_array(net, x, arithmetic))
    per, conservation, rules = propagate(net, acts, layers, ops, rule_or_composite, output, activation)
    if arithmetic == "exact":
        per = [from_fast(R) for R in per]
        for c in conservation:
            c.upper_total, c.lower_total = fast_to_fraction(c.upper_total), fast_to_fraction(c.lower_total)
            c.relu_dropped = fast_to_fraction(c.relu_dropped)
    return Relevance(per[0], per, conservation, rules, output, arithmetic)


def propagate(
    net: Network, acts: list[Any], layers: list[tuple[Any, Any]], ops: Any, rule_or_composite: Rule | Composite,
    output: int, activation: str | None = None,
) -> tuple[list[Any], list[LayerConservation], list[Rule]]:
    """The LRP recursion of :func:`lrp` on given activations (the walk's backward pass), with the conservation
    bookkeeping of every layer, in the arithmetic of ``ops`` / ``layers``; ``activation`` as in :func:`lrp`."""
    L = net.n_layers
    activation = resolve_activation(activation, [rule_for_layer(rule_or_composite, l, L) for l in range(1, L + 1)])
    steps = relevance(ops, layers, net.relu_flags, acts, rule_or_composite, output, activation=activation)
    conservation: list[LayerConservation] = [None] * net.n_layers  # type: ignore[list-item]
    rules: list[Rule] = [None] * net.n_layers  # type: ignore[list-item]
    for st in steps:
        a, (W, b) = acts[st.layer - 1], layers[st.layer - 1]
        dropped = call_rule(st.rule, "dropped_neurons", ops, a, W, b, st.upper, layer=st.layer)
        relu_dropped = ops.sum(st.lower_raw) - ops.sum(st.lower)
        conservation[st.layer - 1] = LayerConservation(st.layer, ops.sum(st.upper), ops.sum(st.lower),
                                                       [int(j) for j in dropped], relu_dropped)
        rules[st.layer - 1] = st.rule
    return per_layer(steps), conservation, rules


# ---------------------------------------------------------------------------------------------------- roots
@dataclass
class Roots(Mapping):
    """Root points of one layer's neurons: a mapping neuron j -> root point in the input space of layer l.

    Attributes
    ----------
    layer : int
    layer_input : array
        :math:`a_{l-1}`, the point the roots are searched from.
    points : dict
        neuron -> root point :math:`\\tilde a^{(j)} = a_{l-1} - t_j v_j`.
    steps : dict
        neuron -> t_j.
    directions : dict
        neuron -> v_j.
    skipped : dict
        neuron -> reason ("inactive", "zero denominator", "not explained").
    """

    layer: int
    layer_input: np.ndarray
    points: dict[int, np.ndarray]
    steps: dict[int, Any]
    directions: dict[int, np.ndarray]
    skipped: dict[int, str]
    rule: Rule
    definition: str
    output: int

    def __getitem__(self, j: int) -> np.ndarray:
        return self.points[j]

    def __iter__(self) -> Iterator[int]:
        return iter(self.points)

    def __len__(self) -> int:
        return len(self.points)


def candidate_neurons(net: Network, z: Any, layer: int, output: int) -> tuple[list[int], dict[int, str]]:
    """Neurons of ``layer`` that carry relevance (and so get a root), and the others with the reason.

    Hidden/ReLU neurons need z_j > 0 ("inactive" otherwise); in the last layer only the explained output counts
    ("not explained"), and with a final ReLU it must be active too (:func:`dtd_formal.walk.relevant_neurons`).
    """
    conditions = dict(relevant_neurons(z, layer, net.n_layers, net.has_relu(layer), output))
    keep = [j for j, active in conditions.items() if active]
    skipped = {j: ("not explained" if j not in conditions else "inactive") for j in range(len(z)) if j not in keep}
    return keep, skipped


def roots(
    net: Network,
    x: Any,
    rule: Rule,
    layer: int = 1,
    output: int = 0,
    definition: RootDefinition = "true",
) -> Roots:
    r"""Train-free root points of every relevant neuron of ``layer`` (exact).

    For neuron j with search direction :math:`v_j` (the rule's): :math:`\tilde a^{(j)} = a - t_j v_j`,
    :math:`t_j = z_j / (w_j \cdot v_j)` ("true": :math:`z_j(\tilde a^{(j)}) = 0`) or
    :math:`t_j = R^l_j / (w_j \cdot v_j)` ("paper-code", with :math:`R^l` from LRP with the same rule).
    """
    if is_torch_module(net):
        from .torch import roots as torch_roots

        return torch_roots(net, x, rule, layer=layer, output=output, definition=definition)  # type: ignore[return-value]
    if getattr(net, "is_graph", False):
        from .graph.explain import graph_roots

        if not isinstance(rule, Rule):
            raise InputError(f"roots need a single Rule, got {type(rule).__name__}")
        return graph_roots(net, x, rule, layer, output, definition)  # type: ignore[return-value]
    net.check_layer(layer)
    net.check_output(output)
    if not isinstance(rule, Rule):
        raise InputError(f"roots need a single Rule, got {type(rule).__name__}")
    if not rule.has_root:
        raise InputError(f"{rule.spec()} is not a root-point rule: it has no root points")
    acts = net.activations(x)
    a = acts[layer - 1]
    W, b = net.weight(layer), net.bias(layer)
    z = W.dot(a) + b
    keep, skipped = candidate_neurons(net, z, layer, output)
    R = lrp(net, x, rule, output=output).per_layer[layer] if definition == "paper-code" else None
    points: dict[int, np.ndarray] = {}
    steps: dict[int, Any] = {}
    dirs: dict[int, np.ndarray] = {}
    if keep:
        idx = np.array(keep)
        rs = root_points(EXACT, rule, a, W[idx], b[idx], None if R is None else R[idx], definition, layer)
        for k, j in enumerate(keep):
            if rs.den[k] == 0:
                skipped[j] = "zero denominator"
                continue
            points[j] = rs.points[k]
            steps[j] = rs.t[k]
            dirs[j] = rs.V[k]
    return Roots(layer, a, points, steps, dirs, dict(sorted(skipped.items())), rule, definition, output)


# ---------------------------------------------------------------------------------------------------- exact DTD
RootPolicy = Callable[[int, int, np.ndarray, Network], Any]


def constant_roots(point: Any = 0) -> RootPolicy:
    """Root policy: every neuron of every layer uses the same constant root (a scalar broadcasts; 0 gives the origin).

    A dict {layer: point} gives one constant root per layer.
    """

    def policy(layer: int, neuron: int, a: np.ndarray, net: Network) -> np.ndarray:
        p = point[layer] if isinstance(point, dict) else point
        arr = to_fraction_array(p, "constant root")
        return np.broadcast_to(arr, a.shape).copy() if arr.ndim == 0 else arr

    return policy


def rule_roots(rule: Rule) -> RootPolicy:
    """Root policy: the rule's train-free root :math:`a - t_j v_j` with :math:`t_j = z_j / (w_j \\cdot v_j)`."""

    def policy(layer: int, neuron: int, a: np.ndarray, net: Network) -> np.ndarray | None:
        W, b = net.weight(layer)[neuron : neuron + 1], net.bias(layer)[neuron : neuron + 1]
        rs = root_points(EXACT, rule, a, W, b, layer=layer)
        return None if rs.den[0] == 0 else rs.points[0]

    return policy


@dataclass
class NeuronExpansion:
    """The Taylor step of one neuron: root, one-sided gradient, value at the root and remainder (exact)."""

    layer: int
    neuron: int
    root: np.ndarray
    gradient: np.ndarray  #: dR^l_j / da_{l-1} on the piece containing [root, a]
    value_at_input: Fraction  #: R^l_j(a_{l-1})
    value_at_root: Fraction  #: R^l_j(root) (0 for a valid root)
    remainder: Fraction  #: R^l_j(a) - R^l_j(root) - gradient . (a - root)


@dataclass
class ExactDTDResult:
    """Result of :func:`exact_dtd`: ``per_layer[l]`` = :math:`R^l` as exact arrays, and every expansion."""

    input: np.ndarray
    per_layer: list[np.ndarray]
    expansions: list[NeuronExpansion]
    lost: list[tuple[int, int]] = field(default_factory=list)  #: (layer, neuron) whose policy gave no root

    @property
    def conserved(self) -> bool:
        return all(e.value_at_root == 0 and e.remainder == 0 for e in self.expansions) and not self.lost


def exact_dtd(net: Network, x: Any, root_policy: RootPolicy, output: int = 0) -> ExactDTDResult:
    r"""The recursive DTD of docs/theory.md section 2, exact, with roots treated as locally constant.

    Each relevance is an affine function of the layer input composed with its neuron's activation:
    :math:`R^l_j(a_{l-1}) = u_j\,\phi(z_j(a_{l-1})) - k_j` (:math:`\phi` = relu, or identity for a last layer
    without ReLU), starting with :math:`u_c = 1, k_c = 0` for the explained output. At the policy's root
    :math:`\tilde a^{(j)}` the one-sided gradient is :math:`g_j = u_j \phi'_{seg} w_j`, where
    :math:`\phi'_{seg}` is the slope of the piece containing the segment :math:`[\tilde a^{(j)}, a]` (read at its
    midpoint; relu'(0) = 0 if the whole segment lies on the hyperplane). Then

    .. math::  R^{l-1}_i = \sum_j g_{ji} (a_i - \tilde a^{(j)}_i),\quad u_i = \sum_j g_{ji},\quad
               k_i = \sum_j g_{ji} \tilde a^{(j)}_i .
    """
    if getattr(net, "is_graph", False):
        raise InputError("exact_dtd takes a dense Network (its u/k recursion is written for dense layers); for an "
                         "operator graph use dtd.lrp / dtd.roots / dtd.root_regions")
    net.check_output(output)
    acts = net.activations(x)
    L = net.n_layers
    u = np.array([Fraction(int(j == output)) for j in range(net.output_size)], dtype=object)
    k = np.array([Fraction(0)] * net.output_size, dtype=object)
    per_layer: list[Any] = [None] * (L + 1)
    expansions: list[NeuronExpansion] = []
    lost: list[tuple[int, int]] = []

    def relevance_fn(l: int, j: int, point: np.ndarray) -> Fraction:
        zj = net.weight(l)[j].dot(point) + net.bias(l)[j]
        phi = max(zj, Fraction(0)) if net.has_relu(l) else zj
        return u[j] * phi - k[j]

    per_layer[L] = np.array([relevance_fn(L, j, acts[L - 1]) for j in range(net.output_size)], dtype=object)
    for l in range(L, 0, -1):
        a = acts[l - 1]
        W = net.weight(l)
        u_low = np.array([Fraction(0)] * len(a), dtype=object)
        k_low = np.array([Fraction(0)] * len(a), dtype=object)
        for j in range(W.shape[0]):
            if u[j] == 0 and k[j] == 0:
                continue
            root = root_policy(l, j, a, net)
            if root is None:
                lost.append((l, j))
                continue
            root = to_fraction_array(root, f"root of layer {l} neuron {j}")
            if root.shape != a.shape:
                raise InputError(f"root policy: root of layer {l} neuron {j} has shape {root.shape}, expected {a.shape}")
            slope = Fraction(1)
            if net.has_relu(l):
                mid = (root + a) / 2
                slope = Fraction(int(W[j].dot(mid) + net.bias(l)[j] > 0))
            g = u[j] * slope * W[j]
            value_in, value_root = relevance_fn(l, j, a), relevance_fn(l, j, root)
            remainder = value_in - value_root - g.dot(a - root)
            expansions.append(NeuronExpansion(l, j, root, g, value_in, value_root, remainder))
            u_low = u_low + g
            k_low = k_low + g * root
        u, k = u_low, k_low
        per_layer[l - 1] = u * a - k
    return ExactDTDResult(per_layer[0], per_layer, expansions, lost)


def gradient_times_input(net: Network, x: Any, output: int = 0) -> ExactArray:
    """:math:`\\nabla f_c(x) \\odot x`, exact (kink convention relu'(0) = 0)."""
    xa = net.as_input(x)
    return net.gradient(xa, output) * xa


__all__ = [
    "Relevance", "LayerConservation", "lrp", "Roots", "roots", "candidate_neurons", "constant_roots", "rule_roots",
    "exact_dtd", "ExactDTDResult", "NeuronExpansion", "gradient_times_input", "sign", "relu",
]

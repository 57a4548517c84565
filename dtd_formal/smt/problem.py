r"""The root-exit question as data: network, rule, (layer, neuron), input box, scope, variant.

Over the box :math:`x \in [L, H]` with :math:`a = a_{l-1}(x)`: does some x give neuron j a root
:math:`\tilde a = a - t v_j(a)`, :math:`t = z_j(a) / (w_j \cdot v_j(a))`, that leaves the region (some other neuron m
of the scope with :math:`\sigma z_m(a) > 0 > \sigma \tilde z_m(\tilde a)`)? Every catalogue root rule has a
search direction that is diagonal-affine in a, :math:`v_j(a) = D_j a + e_j` (z+: :math:`D = [w_j > 0]`, e = 0;
LRP-0: D = I; gamma: :math:`D = 1 + \gamma [w_j > 0]`; zB: :math:`D = [w \ne 0]`, :math:`e = -(l [w>0] + h [w<0])`;
w^2: D = 0, :math:`e = w_j`). :func:`affine_direction` reads (D, e) off the rule's own definition and checks the
form exactly; the relaxation and sampling engines need it, the Z3 engine uses the rule body directly.
``definition="paper-code"`` replaces the step by the authors' :math:`t = R^l_j(x) / (w_j \cdot v_j(a))` with
:math:`R^l` the LRP relevance of the same rule over the upper layers (:func:`dtd_formal.dtd.roots`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import to_fraction_array
from ..network import Network
from ..rules.base import Rule
from ..rules.domains import Box
from ..rules.ops import EXACT


def parse_box(domain: Any, n: int, name: str = "domain") -> tuple[np.ndarray, np.ndarray]:
    """(low, high) exact arrays of length n from ``(low, high)`` (scalars or arrays), a :class:`Box`, or "lo:hi"."""
    if domain is None:
        raise InputError(f"{name}: a box (low, high) is required")
    if isinstance(domain, Box):
        return domain.bounds(n)
    if isinstance(domain, str):
        parts = domain.split(":")
        if len(parts) != 2:
            raise InputError(f"{name}: expected LOW:HIGH (e.g. 0:1), got {domain!r}")
        lo_t, hi_t = parts
        lo = to_fraction_array([p for p in lo_t.split(",")], f"{name} low") if "," in lo_t else to_fraction_array(lo_t, f"{name} low")
        hi = to_fraction_array([p for p in hi_t.split(",")], f"{name} high") if "," in hi_t else to_fraction_array(hi_t, f"{name} high")
        domain = (lo, hi)
    try:
        lo_v, hi_v = domain
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected (low, high), got {domain!r}") from None
    lo = np.broadcast_to(to_fraction_array(lo_v, f"{name} low"), (n,)).copy() if np.ndim(lo_v) == 0 else to_fraction_array(lo_v, f"{name} low")
    hi = np.broadcast_to(to_fraction_array(hi_v, f"{name} high"), (n,)).copy() if np.ndim(hi_v) == 0 else to_fraction_array(hi_v, f"{name} high")
    if lo.shape != (n,) or hi.shape != (n,):
        raise InputError(f"{name}: bounds must be scalars or {n} values, got shapes {lo.shape}, {hi.shape}")
    if any(l > h for l, h in zip(lo, hi)):
        raise InputError(f"{name}: low exceeds high")
    return lo, hi


def affine_direction(rule: Rule, net: Network, layer: int, neuron: int) -> tuple[np.ndarray, np.ndarray] | None:
    r"""(D, e) with :math:`v_j(a) = D \odot a + e` for every a (exact), or None if the rule's direction is not
    diagonal-affine. Read off the rule at a = 0 and a = 1, then checked exactly at two further points."""
    W = net.weight(layer)[neuron : neuron + 1]
    b = net.bias(layer)[neuron : neuron + 1]
    n = W.shape[1]

    def v(a: np.ndarray) -> np.ndarray:
        return np.asarray(rule.direction(EXACT, a, W, b), dtype=object).reshape(-1)

    try:
        e = v(np.array([Fraction(0)] * n, dtype=object))
        D = v(np.array([Fraction(1)] * n, dtype=object)) - e
        for k in (1, 2):
            probe = np.array([Fraction(3 * i + k, 7 + i * k) - Fraction(k, 3) for i in range(n)], dtype=object)
            if not all(p == q for p, q in zip(v(probe), D * probe + e)):
                return None
    except (NotImplementedError, InputError):
        return None
    return D, e


@dataclass
class RootExitProblem:
    """One root-exit query (module docstring)."""

    net: Network
    rule: Rule
    layer: int
    neuron: int
    low: np.ndarray
    high: np.ndarray
    scope: str = "upper"
    variant: str = "pattern"
    output: int = 0
    definition: str = "true"

    def __post_init__(self) -> None:
        net = self.net
        net._check_layer(self.layer)
        net._check_output(self.output)
        if self.definition not in ("true", "paper-code"):
            raise InputError(f"definition must be 'true' or 'paper-code', got {self.definition!r}")
        if self.scope not in ("layer", "upper"):
            raise InputError(f"scope must be 'layer' or 'upper', got {self.scope!r}")
        if self.variant not in ("pattern", "affine_map"):
            raise InputError(f"variant must be 'pattern' or 'affine_map', got {self.variant!r}")
        if not isinstance(self.rule, Rule) or not self.rule.has_root:
            raise InputError(f"{getattr(self.rule, 'spec', lambda: self.rule)()} is not a root-point rule")
        n_l = net.weight(self.layer).shape[0]
        if not 0 <= self.neuron < n_l:
            raise InputError(f"layer {self.layer} has neurons 0..{n_l - 1}, got neuron {self.neuron}")
        self.direction = affine_direction(self.rule, net, self.layer, self.neuron)

    @property
    def relu(self) -> bool:
        return self.net.has_relu(self.layer)

    @property
    def candidate(self) -> bool:
        """Whether the neuron can carry relevance at all (last layer: only the explained output)."""
        return not (self.layer == self.net.n_layers and self.neuron != self.output)

    @property
    def proof_scope(self) -> str:
        """Scope whose absence of flips implies the answer: the affine map only changes if some upper neuron flips."""
        return "upper" if self.variant == "affine_map" else self.scope

    def statement(self) -> str:
        what = "leaves the linear region" if self.variant == "pattern" else "changes the affine map"
        kind = "" if self.definition == "true" else " paper-code"
        return (f"no input in the box has a {self.rule.spec()}{kind} root of layer {self.layer} neuron {self.neuron} "
                f"that {what} (scope {self.scope})")

    @property
    def true_root(self) -> bool:
        r"""Whether the step is the true root's :math:`t = z_j / (w_j \cdot v_j)` (the relaxation, LP and slicing
        engines assume it); "paper-code" uses :math:`t = R_j / (w_j \cdot v_j)`."""
        return self.definition == "true"


__all__ = ["RootExitProblem", "parse_box", "affine_direction"]

r"""The root-exit question as data: network, rule, (layer, neuron), input box, scope, variant.

Over the box :math:`x \in [L, H]` with :math:`a = a_{l-1}(x)`: does some x give neuron j a root
:math:`\tilde a = a - t v_j(a)`, :math:`t = z_j(a) / (w_j \cdot v_j(a))`, that leaves the region (some other neuron m
of the scope with :math:`\sigma z_m(a) > 0 > \sigma \tilde z_m(\tilde a)`)? Every catalogue root rule has a
search direction that is diagonal-affine in a, :math:`v_j(a) = D_j a + e_j` (z+: :math:`D = [w_j > 0]`, e = 0;
LRP-0: D = I; gamma: :math:`D = 1 + \gamma [w_j > 0]`; zB: :math:`D = [w \ne 0]`, :math:`e = -(l [w>0] + h [w<0])`;
w^2: D = 0, :math:`e = w_j`). :func:`verify_stock_form` checks, symbolically and exactly, that the rule's own
``root_step`` has this form with the stock step (the relaxation, LP and slicing engines need it and step aside with
the reason when it does not hold); the Z3 engine and the falsifier evaluate the rule's ``root_step`` itself.
``definition="paper-code"`` replaces the step by the authors' :math:`t = R^l_j(x) / (w_j \cdot v_j(a))` with
:math:`R^l` the LRP relevance of the same rule over the upper layers (:func:`dtd_formal.dtd.roots`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import fraction_to_str, to_fraction_array
from ..network import Network
from ..rules.base import Rule
from ..rules.domains import Box
from ..rules.parse import rule_reference
from ..verdict import Question


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


def _box_json(values: np.ndarray) -> list[str]:
    return [fraction_to_str(Fraction(v)) for v in values]


def network_digest(net: Network) -> str:
    """:meth:`Network.digest`, computed once per network object (the digest of ACAS Xu's exact JSON costs about
    60 ms, and every question and every counterexample check asks for it). The network's other derived views
    (integer, gmpy2 and float layers) are cached on the object the same way: a network is not changed in place."""
    cache = net.__dict__
    if "_smt_digest" not in cache:
        cache["_smt_digest"] = net.digest()
    return cache["_smt_digest"]


def root_exit_question(net: Network, rule: Rule, layer: int, neuron: int, low: np.ndarray, high: np.ndarray,
                       scope: str, variant: str, output: int, definition: str) -> Question:
    """The :class:`~dtd_formal.verdict.Question` of a root-exit query."""
    return Question("root-exit", network_digest(net), rule_reference(rule), {
        "layer": int(layer), "neuron": int(neuron), "scope": scope, "variant": variant, "definition": definition,
        "output": int(output), "low": _box_json(low), "high": _box_json(high)})


def violation_question(net: Network, rule: Rule, prop: str, low: np.ndarray, high: np.ndarray,
                       output: int) -> Question:
    """The :class:`~dtd_formal.verdict.Question` of a property-violation query over a box."""
    return Question("violation", network_digest(net), rule_reference(rule), {
        "property": prop, "output": int(output), "low": _box_json(low), "high": _box_json(high)})


def box_of(question: Question, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact input box of a question (checked against the network's input size)."""
    return parse_box((question.params["low"], question.params["high"]), n, "question box")


@dataclass(frozen=True)
class StockForm:
    r"""The verified stock form of a rule's root step on one neuron: :math:`v_j(a) = D \odot a + e` and
    :math:`t = z_j / (w_j \cdot v_j)` for every a of the layer's domain (exact rationals D, e)."""

    D: np.ndarray
    e: np.ndarray


def verify_stock_form(rule: Rule, net: Network, layer: int, neuron: int, nonnegative: bool) -> StockForm | str:
    r"""Check, exactly and for every layer input a, that the rule's own ``root_step`` on (layer, neuron) is the
    stock train-free step the linear engines (relaxation, LP, slicing) encode:

    .. math::  v_j(a) = D \odot a + e,\qquad \mathrm{den} = w_j \cdot v_j(a),\qquad
               t\,\mathrm{den} = z_j(a) = w_j \cdot a + b_j .

    The rule's ``root_step`` runs on SymPy symbols :math:`a_0..a_{n-1}` (:class:`dtd_formal.symbolic.ops.SympyOps`,
    the layer's exact weights; ``nonnegative`` declares :math:`a \ge 0`, true for every layer input above layer 1
    and for a layer-1 box with low >= 0); each entry of :math:`v_j` must be a polynomial of degree <= 1 in its own
    :math:`a_i` alone, and the two identities must hold as polynomials. Returns the (D, e) found, or the reason the
    form does not hold (the engines that assume it then step aside; a rule that overrides ``root_step``, uses
    data-dependent masks on a, or bypasses the ops namespace lands here). The whole layer is verified in one
    symbolic evaluation, cached on the network per (rule, layer, domain).
    """
    key = (type(rule), repr(rule), getattr(rule, "stabilizer", None), layer, nonnegative)
    cache = net.__dict__.setdefault("_stock_forms", {})
    if key not in cache:
        cache[key] = _verify_layer(rule, net, layer, nonnegative)
    forms = cache[key]
    return forms if isinstance(forms, str) else forms[neuron]


def _verify_layer(rule: Rule, net: Network, layer: int, nonnegative: bool) -> list[StockForm | str] | str:
    r""":func:`verify_stock_form` for every neuron of ``layer`` (or one reason for all).

    When the rule keeps :meth:`Rule.root_step` (the step :math:`z_j / \sum_i w_{ij} v_{ij}` is then computed by the
    base class from the rule's own ``direction``), only the direction is evaluated on symbols and checked to be
    diagonal-affine; a rule that overrides ``root_step`` has the whole step evaluated and both identities checked.
    """
    import sympy as sp

    from ..symbolic.ops import SympyOps, to_sympy_array

    W = to_sympy_array(net.weight(layer))
    b = to_sympy_array(net.bias(layer))
    n_out, n = W.shape
    syms = [sp.Symbol(f"a{i}", nonnegative=True) if nonnegative else sp.Symbol(f"a{i}", real=True) for i in range(n)]
    a = np.array(syms, dtype=object)
    own_step = type(rule).root_step is not Rule.root_step or "root_step" in vars(rule) or "direction" in vars(rule)
    try:
        if own_step:
            t, V, den = rule.root_step(SympyOps(), a, W, b, None, "true")
            t, den = np.asarray(t, dtype=object).reshape(n_out), np.asarray(den, dtype=object).reshape(n_out)
        else:
            V = rule.direction(SympyOps(), a, W, b)
        V = np.asarray(V, dtype=object).reshape(n_out, n)
    except Exception as exc:  # noqa: BLE001 - any failure on symbols means the form cannot be verified
        return f"the rule's root_step does not evaluate on symbolic inputs ({type(exc).__name__}: {exc})"
    out: list[StockForm | str] = []
    for j in range(n_out):
        form = _affine_direction(syms, V[j])
        if isinstance(form, StockForm) and own_step:
            form = _check_step(syms, W[j], b[j], form, sp.sympify(t[j]), sp.sympify(den[j]))
        out.append(form)
    return out


def _affine_direction(syms: list[Any], V: np.ndarray) -> StockForm | str:
    """(D, e) with V_i = D_i a_i + e_i exactly (rational D_i, e_i), or why V is not of that form."""
    import sympy as sp

    n = len(syms)
    D = np.empty(n, dtype=object)
    e = np.empty(n, dtype=object)
    for i, vi in enumerate(V):
        vi = sp.sympify(vi)
        if not vi.is_Rational and vi != syms[i]:
            vi = sp.expand(vi)
        terms = vi.as_coefficients_dict()
        if not set(terms) <= {syms[i], sp.S.One} or not all(c.is_Rational for c in terms.values()):
            return f"direction entry {i} is not affine in a_{i} alone with rational coefficients ({_short(vi)})"
        d_i, e_i = terms.get(syms[i], sp.S.Zero), terms.get(sp.S.One, sp.S.Zero)
        D[i], e[i] = Fraction(int(d_i.p), int(d_i.q)), Fraction(int(e_i.p), int(e_i.q))
    return StockForm(D, e)


def _check_step(syms: list[Any], w: np.ndarray, bj: Any, form: StockForm, t0: Any, den0: Any) -> StockForm | str:
    """den = w_j . v_j and t den = z_j as polynomials (for rules that override ``root_step``)."""
    import sympy as sp

    n = len(syms)
    stock_den = sp.Add(*[w[i] * (form.D[i] * syms[i] + form.e[i]) for i in range(n)])
    if sp.expand(den0 - stock_den) != 0:
        return f"root_step's denominator {_short(den0)} is not w_j . v_j"
    z = sp.Add(*[w[i] * syms[i] for i in range(n)]) + bj
    if sp.expand(den0) != 0:
        residual = sp.expand(t0 * den0 - z)
        if residual != 0 and sp.cancel(sp.together(residual)) != 0:
            return f"root_step's step t = {_short(t0)} is not z_j / (w_j . v_j)"
    return form


def _short(expr: Any, limit: int = 120) -> str:
    text = str(expr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        net.check_layer(self.layer)
        net.check_output(self.output)
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
        self._question: Question | None = None
        nonnegative = self.layer > 1 or all(v >= 0 for v in self.low)
        form = verify_stock_form(self.rule, net, self.layer, self.neuron, nonnegative)
        self.stock: StockForm | None = form if isinstance(form, StockForm) else None
        self.not_stock_reason = "" if self.stock is not None else str(form)

    @property
    def direction(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(D, e) of the verified stock form (:func:`verify_stock_form`), or None."""
        return None if self.stock is None else (self.stock.D, self.stock.e)

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

    def question(self) -> Question:
        """The self-describing question (network digest, rule spec, layer, neuron, scope, variant, root definition,
        output, box) every verdict on this problem carries."""
        if self._question is None:
            self._question = root_exit_question(self.net, self.rule, self.layer, self.neuron, self.low, self.high,
                                                self.scope, self.variant, self.output, self.definition)
        return self._question

    def statement(self) -> str:
        return self.question().statement()

    @property
    def true_root(self) -> bool:
        r"""Whether the step is the true root's :math:`t = z_j / (w_j \cdot v_j)` (the relaxation, LP and slicing
        engines assume it); "paper-code" uses :math:`t = R_j / (w_j \cdot v_j)`."""
        return self.definition == "true"


__all__ = ["RootExitProblem", "parse_box", "StockForm", "verify_stock_form", "root_exit_question", "violation_question",
           "box_of", "network_digest"]

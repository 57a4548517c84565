r"""The property catalogue: named, documented predicates on (rule, network, input), each evaluated exactly.

Notation (THEORY.md): layers 1..L, :math:`a_0 = x`, :math:`z_l = W_l a_{l-1} + b_l`, explained output c,
:math:`R^L = f_c(x) e_c`, :math:`R^{l-1} = \mathrm{rule.redistribute}(a_{l-1}, W_l, b_l, R^l)` (the rule at every
layer, in Fractions via :func:`dtd_formal.dtd.lrp`, with its ReLU gate: inactive neurons pass nothing on). The
*checked layers* are all layers for a rule whose domain
is the non-negative orthant (hidden-layer inputs are ReLU outputs) and layer 1 only for a first-layer rule (a
:class:`~dtd_formal.rules.domains.Box` or :class:`~dtd_formal.rules.domains.Unbounded` domain: ZBox, WSquare).
A *relevant* neuron of layer l is an active hidden neuron (:math:`z_j > 0`) or, in layer L, the explained output
(active too when the network ends in a ReLU). The domain of layer 1 is the check's domain (default: the rule's);
deeper layers' inputs live in :math:`a \ge 0`.

=========================== ======================================================================================
name                        predicate (for every checked layer l)
=========================== ======================================================================================
conservation                :math:`\sum_i R^{l-1}_i = \sum_j R^l_j`
positivity                  :math:`R^l \ge 0 \Rightarrow R^{l-1} \ge 0` (vacuous when :math:`R^l \not\ge 0` or 0)
root_on_hyperplane          every root :math:`\tilde a^{(j)}` of a relevant neuron has :math:`z_j(\tilde a^{(j)}) = 0`
root_in_domain              every root lies in the layer's domain
root_in_linear_region:layer no other neuron of layer l changes sign strictly between :math:`a_{l-1}` and the root
root_in_linear_region:upper the affine piece of :math:`f_c` as a function of :math:`a_{l-1}` is the same at the
                            input and at the root (P1; ``root_in_linear_region`` is this scope)
root_in_linear_region:      no other neuron of the whole upper network (layers l..L) changes sign strictly: the
network                     root stays in the input's closed activation region (stricter than ``upper``)
equals_gradient_x_input     :math:`R^0 = \nabla f_c(x) \odot x` where no relevant neuron's normaliser vanishes
                            (C2: the claim for LRP-0 on bias-free nets and for LRP-0 with ``bias="zennit"``)
continuity                  :math:`\lim_{s \to 0^+} R^0(x + s d) = R^0(x)` for every coordinate ray :math:`d = \pm e_i`
                            that stays in the domain (exact one-sided germs, :mod:`~dtd_formal.testing.germ`; a
                            ray whose piece cannot be decided is skipped and counted, never a verdict). Meaningful
                            where the explanation should not jump (kinks, vanishing normalisers are found)
backend_agreement           the rule's one definition (``redistribute``, ``root_step``) gives the same result in
                            Fractions and in Z3 terms (exactly), and in float64 numpy and torch float64 (within
                            1e-9 relative, on dyadic data); torch is skipped (with the reason) when
                            :mod:`dtd_formal.torch` cannot be imported
=========================== ======================================================================================

A property evaluation returns an :class:`Outcome`: ``holds``, ``vacuous`` (its precondition never applied, e.g.
:math:`f_c(x) = 0`; such examples are counted as degenerate), and the exact ``values`` that show why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from ..dtd import candidate_neurons, gradient_times_input, lrp, roots
from ..errors import InputError
from ..exact import to_float
from ..network import Network
from ..regions import root_regions
from ..rules.base import Rule
from ..rules.domains import Domain, NonNegative, Unbounded
from ..rules.ops import EXACT, FLOAT64

FLOAT_RTOL = 1e-9


@dataclass
class Outcome:
    """Result of one exact property evaluation."""

    holds: bool
    vacuous: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class Property:
    """A named property: ``evaluate(rule, net, x, output, domain) -> Outcome``; ``applies(rule)`` gives a reason
    when the property does not apply to the rule (None when it does)."""

    name: str
    statement: str
    evaluate_fn: Callable[[Rule, Network, np.ndarray, int, Domain], Outcome]
    needs_root: bool = False
    solver: bool = False  #: a Z3 encoding decides it on a small given network (dtd_formal.testing.solver)

    def applies(self, rule: Rule) -> str | None:
        if self.needs_root and not rule.has_root:
            return f"{rule.spec()} is not a root-point rule (no search direction, so no roots)"
        return None

    def evaluate(self, rule: Rule, net: Network, x: Any, output: int = 0, domain: Domain | None = None) -> Outcome:
        x = net.as_input(x)
        try:
            return self.evaluate_fn(rule, net, x, output, rule.domain if domain is None else domain)
        except Exception as exc:  # noqa: BLE001 - a rule that crashes on a valid case fails the property there
            return Outcome(False, False, {"error": f"{type(exc).__name__}: {exc}"},
                           f"the rule raised {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------------- helpers
def is_first_layer_rule(rule: Rule) -> bool:
    """A rule whose domain is not the non-negative orthant (ZBox's box, WSquare's R^n) is a first-layer rule."""
    return not isinstance(rule.domain, NonNegative)


def checked_layers(rule: Rule, net: Network) -> list[int]:
    """Layers whose redistribution is checked: all, or [1] for a first-layer rule."""
    return [1] if is_first_layer_rule(rule) else list(range(1, net.n_layers + 1))


def layer_domain(layer: int, domain: Domain) -> Domain:
    """Domain of the input of ``layer``: the check's domain for layer 1, a >= 0 above (ReLU outputs)."""
    return domain if layer == 1 else NonNegative()


def relevant_neurons(net: Network, z: np.ndarray, layer: int, output: int) -> list[int]:
    """Neurons of ``layer`` that carry relevance (see module docstring)."""
    return candidate_neurons(net, z, layer, output)[0]


def _vec(v: Any) -> list[str]:
    return [str(e) for e in np.ravel(np.asarray(v, dtype=object))]


# ---------------------------------------------------------------------------------------------------- predicates
def _conservation(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
    rel = lrp(net, x, rule, output=output)
    vacuous = True
    for l in checked_layers(rule, net):
        c = rel.conservation[l - 1]
        if any(v != 0 for v in rel.per_layer[l]):
            vacuous = False
        if c.absorbed != 0:
            return Outcome(False, False, {
                "layer": l, "upper_total": c.upper_total, "lower_total": c.lower_total, "absorbed": c.absorbed,
                "dropped_neurons": c.dropped_neurons, "relu_dropped": c.relu_dropped, "R_upper": _vec(rel.per_layer[l]),
                "R_lower": _vec(rel.per_layer[l - 1]),
            }, f"layer {l}: sum R^{l-1} = {c.lower_total} but sum R^{l} = {c.upper_total} "
               f"(absorbed {c.absorbed}; dropped neurons {c.dropped_neurons}; "
               f"given to inactive neurons {c.relu_dropped})")
    return Outcome(True, vacuous)


def _positivity(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
    rel = lrp(net, x, rule, output=output)
    vacuous = True
    for l in checked_layers(rule, net):
        upper, lower = rel.per_layer[l], rel.per_layer[l - 1]
        if not all(v >= 0 for v in upper) or all(v == 0 for v in upper):
            continue
        vacuous = False
        neg = [i for i, v in enumerate(lower) if v < 0]
        if neg:
            return Outcome(False, False, {
                "layer": l, "R_upper": _vec(upper), "R_lower": _vec(lower), "negative_entries": neg,
            }, f"layer {l}: R^{l} >= 0 but R^{l-1}_{neg[0]} = {lower[neg[0]]} < 0")
    return Outcome(True, vacuous)


def _root_on_hyperplane(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
    vacuous = True
    for l in checked_layers(rule, net):
        rts = roots(net, x, rule, layer=l, output=output)
        W, b = net.weight(l), net.bias(l)
        for j, p in rts.points.items():
            vacuous = False
            zr = W[j].dot(p) + b[j]
            if zr != 0:
                return Outcome(False, False, {
                    "layer": l, "neuron": j, "root": _vec(p), "z_at_root": zr, "step": rts.steps[j],
                    "layer_input": _vec(rts.layer_input),
                }, f"layer {l} neuron {j}: z_j(root) = {zr} != 0")
    return Outcome(True, vacuous)


def _root_in_domain(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
    vacuous = True
    for l in checked_layers(rule, net):
        rts = roots(net, x, rule, layer=l, output=output)
        dom = layer_domain(l, domain)
        for j, p in rts.points.items():
            vacuous = False
            if not dom.contains(p):
                return Outcome(False, False, {
                    "layer": l, "neuron": j, "root": _vec(p), "domain": dom.describe(), "step": rts.steps[j],
                    "layer_input": _vec(rts.layer_input),
                }, f"layer {l} neuron {j}: root {[str(v) for v in p]} is outside {dom.describe()}")
    return Outcome(True, vacuous)


def _root_region(scope: str) -> Callable[[Rule, Network, np.ndarray, int, Domain], Outcome]:
    """scope "layer": layer l's pattern; "upper": the affine map of f_c; "network": the pattern of layers l..L."""

    def evaluate(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
        rep = root_regions(net, x, rule, scope="layer" if scope == "layer" else "upper", output=output,
                           layers=checked_layers(rule, net))
        if not rep.records:
            return Outcome(True, True)
        for r in rep.records:
            bad = r.leaves_affine_map if scope == "upper" else r.leaves_pattern
            if bad:
                what = (f"the affine piece of f_{output} changes (flipped {r.flipped})" if scope == "upper"
                        else f"neurons change sign: {r.flipped}")
                return Outcome(False, False, {
                    "layer": r.layer, "neuron": r.neuron, "root": _vec(r.root), "flipped": r.flipped,
                    "leaves_pattern": r.leaves_pattern, "leaves_affine_map": r.leaves_affine_map, "step": r.step,
                }, f"layer {r.layer} neuron {r.neuron}: root leaves the input's region ({what})")
        return Outcome(True, False)

    return evaluate


def _normalisers_vanish(
    rule: Rule, net: Network, acts: list[Any], zs: list[Any], output: int
) -> list[tuple[int, int]] | None:
    """(layer, neuron) of relevant neurons whose normaliser is 0; None when the rule has no single normaliser."""
    out: list[tuple[int, int]] = []
    for l in range(1, net.n_layers + 1):
        keep = relevant_neurons(net, zs[l - 1], l, output)
        if not keep:
            continue
        try:
            n = rule.normaliser(EXACT, acts[l - 1], net.weight(l), net.bias(l))
        except Exception:  # noqa: BLE001 - a rule without a single normaliser
            return None
        out.extend((l, j) for j in keep if n[j] == 0)
    return out


def _equals_gxi(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
    acts, zs = net.activations(x), net.preactivations(x)
    if acts[-1][output] == 0:
        return Outcome(True, True, message="f_c(x) = 0: its normaliser vanishes")
    vanish = _normalisers_vanish(rule, net, acts, zs, output)
    if vanish:
        return Outcome(True, True, message=f"normalisers vanish at {vanish}")
    rel = lrp(net, x, rule, output=output).input
    gxi = gradient_times_input(net, x, output)
    diff = [i for i in range(len(x)) if rel[i] != gxi[i]]
    if diff:
        return Outcome(False, False, {
            "R_input": _vec(rel), "gradient_x_input": _vec(gxi), "differs_at": diff,
        }, f"R^0_{diff[0]} = {rel[diff[0]]} but (grad f_{output} * x)_{diff[0]} = {gxi[diff[0]]}")
    return Outcome(True, False)


def _is_dyadic(net: Network, x: np.ndarray) -> bool:
    """Whether every number of the case is exactly a float64 with a small dyadic denominator (<= 2^20)."""
    vals = list(np.ravel(x)) + [v for W in net.weights for v in np.ravel(W)] + [v for b in net.biases for v in b]
    return all((v.denominator & (v.denominator - 1)) == 0 and v.denominator <= 2**20 and abs(v.numerator) < 2**40
               for v in vals)


_TORCH: list[Any] = []


def torch_ops() -> tuple[Any, str]:
    """(torch float64 ops namespace or None, what happened): :class:`dtd_formal.torch.ops.TorchOps` when the torch
    backend is importable, else None and the reason it is skipped."""
    if not _TORCH:
        try:
            import torch

            from ..torch.ops import TorchOps

            _TORCH.append((TorchOps(torch.float64), "compared (dtd_formal.torch.ops.TorchOps, float64)"))
        except ImportError as exc:
            _TORCH.append((None, f"skipped: the torch backend is not available ({exc})"))
    return _TORCH[0]


def _float_check(name: str, l: int, got: Any, exact: np.ndarray, scale: float) -> Outcome | None:
    f = np.asarray(got, dtype=np.float64).ravel()
    err = max((abs(float(ev) - fv) for ev, fv in zip(exact, f)), default=0.0)
    if f.shape != exact.shape or not np.all(np.isfinite(f)) or err > FLOAT_RTOL * scale:
        return Outcome(False, False, {"layer": l, "backend": name, "exact": _vec(exact), name: [float(v) for v in f],
                                      "max_error": err},
                       f"layer {l}: {name} gives {list(f)}, Fractions give {[float(v) for v in exact]} "
                       f"(error {err:.3g} > {FLOAT_RTOL} x {scale:.3g})")
    return None


def _backend_agreement(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
    r"""Layer by layer, on the exact layer input :math:`a_{l-1}` and upper relevance :math:`R^l`:
    ``rule.redistribute`` (and ``root_step`` for root rules) in Fractions = in Z3 terms, exactly; float64 numpy and
    torch float64 within :data:`FLOAT_RTOL` x (1 + sum |R^l| + sum |R^{l-1}|) when every number of the case is
    dyadic (then float64 represents the data and every mask is decided alike)."""
    from ..smt.ops import Z3, from_z3

    rel = lrp(net, x, rule, output=output)
    acts = net.activations(x)
    dyadic = _is_dyadic(net, x)
    t_ops, t_status = torch_ops() if dyadic else (None, "skipped: non-dyadic data")
    values: dict[str, Any] = {
        "float64": "compared" if dyadic else "skipped: non-dyadic data (float64 rounding at exact cancellations "
                                             "is expected)",
        "torch": t_status,
    }
    vacuous = all(v == 0 for v in rel.per_layer[-1])
    for l in checked_layers(rule, net):
        a, W, b, R = acts[l - 1], net.weight(l), net.bias(l), rel.per_layer[l]
        exact = np.asarray(rule.redistribute(EXACT, a, W, b, R), dtype=object)
        try:
            zr = from_z3(rule.redistribute(Z3, Z3.lift(a), Z3.lift(W), Z3.lift(b), Z3.lift(R)))
        except Exception as exc:  # noqa: BLE001 - a body that bypasses ops fails here
            return Outcome(False, False, {"layer": l, "backend": "z3", "error": f"{type(exc).__name__}: {exc}"},
                           f"layer {l}: the rule body does not run on Z3 terms ({type(exc).__name__}: {exc}); "
                           "use only the ops namespace")
        if any(p != q for p, q in zip(zr, exact)):
            return Outcome(False, False, {"layer": l, "backend": "z3", "exact": _vec(exact), "z3": _vec(zr)},
                           f"layer {l}: Z3 terms give {[str(v) for v in zr]}, Fractions give "
                           f"{[str(v) for v in exact]}")
        if rule.has_root:
            te, Ve, _ = rule.root_step(EXACT, a, W, b)
            try:
                tz, Vz, _ = rule.root_step(Z3, Z3.lift(a), Z3.lift(W), Z3.lift(b))
                tz, Vz = from_z3(tz), from_z3(Vz)
            except Exception as exc:  # noqa: BLE001
                return Outcome(False, False, {"layer": l, "backend": "z3", "error": f"{type(exc).__name__}: {exc}"},
                               f"layer {l}: root_step does not run on Z3 terms ({exc})")
            if not (np.array_equal(tz, te) and np.array_equal(Vz, Ve)):
                return Outcome(False, False, {"layer": l, "backend": "z3", "exact_t": _vec(te), "z3_t": _vec(tz)},
                               f"layer {l}: Z3 root steps {[str(v) for v in tz]} differ from exact "
                               f"{[str(v) for v in te]}")
        if not dyadic:
            continue
        scale = 1.0 + float(sum(abs(v) for v in R)) + float(sum(abs(v) for v in exact))
        fa, fW, fb, fR = (to_float(v) for v in (a, W, b, R))
        try:
            got = rule.redistribute(FLOAT64, fa, fW, fb, fR)
        except Exception as exc:  # noqa: BLE001
            return Outcome(False, False, {"layer": l, "backend": "float64", "error": f"{type(exc).__name__}: {exc}"},
                           f"layer {l}: the rule body does not run in float64 ({exc})")
        bad = _float_check("float64", l, got, exact, scale)
        if bad:
            return bad
        if t_ops is not None:
            import torch

            ta, tW, tb, tR = (torch.as_tensor(v, dtype=torch.float64) for v in (fa, fW, fb, fR))
            try:
                got_t = rule.redistribute(t_ops, ta, tW, tb, tR).detach().cpu().numpy()
            except Exception as exc:  # noqa: BLE001
                return Outcome(False, False, {"layer": l, "backend": "torch", "error": f"{type(exc).__name__}: {exc}"},
                               f"layer {l}: the rule body does not run on torch tensors ({exc})")
            bad = _float_check("torch", l, got_t, exact, scale)
            if bad:
                return bad
    return Outcome(True, vacuous, values)


def _germ_relevance(rule: Rule, net: Network, x: np.ndarray, d: list[int], output: int) -> list[Any]:
    r""":math:`R^0(x + s d)` as germs at :math:`s \to 0^+` (the rule's body on :class:`~.germ.Germ` arrays with the
    exact ops, forward pass and ReLU gate as in :func:`dtd_formal.dtd.lrp`)."""
    from .germ import Germ

    a = np.empty(len(x), dtype=object)
    for i in range(len(x)):
        a[i] = Germ.affine(x[i], d[i])
    acts = [a]
    for l in range(1, net.n_layers + 1):
        z = net.weight(l).dot(a) + net.bias(l)
        if net.has_relu(l):
            z = np.array([v if v > 0 else Fraction(0) for v in z] + [None], dtype=object)[:-1]
        a = z
        acts.append(a)
    R = np.empty(len(acts[-1]), dtype=object)
    R[:] = [Fraction(0)] * len(R)
    R[output] = acts[-1][output]
    for l in range(net.n_layers, 0, -1):
        R = np.asarray(rule.redistribute(EXACT, acts[l - 1], net.weight(l), net.bias(l), R), dtype=object)
        if l > 1 and net.has_relu(l - 1):
            R = np.array([r if v > 0 else Fraction(0) for r, v in zip(R, acts[l - 1])] + [None], dtype=object)[:-1]
    return list(R)


def _rays(x: np.ndarray, domain: Domain) -> list[list[int]]:
    r"""Coordinate directions :math:`\pm e_i` that stay in the domain for small s > 0."""
    n = len(x)
    lo, hi = domain.bounds(n) if not isinstance(domain, Unbounded) else ([None] * n, [None] * n)
    rays = []
    for i in range(n):
        for sgn in (1, -1):
            at_top = sgn == 1 and hi[i] is not None and x[i] >= hi[i]
            at_bottom = sgn == -1 and lo[i] is not None and x[i] <= lo[i]
            if at_top or at_bottom:
                continue
            d = [0] * n
            d[i] = sgn
            rays.append(d)
    return rays


def _continuity(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
    from .germ import Undecided

    R0 = lrp(net, x, rule, output=output).input
    undecided = 0
    for d in _rays(x, domain):
        try:
            germs = _germ_relevance(rule, net, x, d, output)
            limits = [g.limit() if not isinstance(g, Fraction) else g for g in germs]
        except (Undecided, ZeroDivisionError):
            undecided += 1
            continue
        for i, (lim, val) in enumerate(zip(limits, R0)):
            if lim is None or lim != val:
                shown = "infinite" if lim is None else str(lim)
                return Outcome(False, False, {
                    "direction": d, "input_index": i, "value_at_x": val, "limit": shown, "R_input": _vec(R0),
                }, f"R^0_{i} jumps at x along {d}: R^0_{i}(x) = {val} but lim_(s->0+) R^0_{i}(x + s d) = {shown}")
    return Outcome(True, undecided > 0 and undecided == len(_rays(x, domain)),
                   {"undecided_rays": undecided} if undecided else {})


# ---------------------------------------------------------------------------------------------------- catalogue
CATALOGUE: dict[str, Property] = {
    p.name: p
    for p in [
        Property("conservation", "sum_i R^{l-1}_i = sum_j R^l_j at every checked layer", _conservation, solver=True),
        Property("positivity", "R^l >= 0 implies R^{l-1} >= 0 at every checked layer", _positivity, solver=True),
        Property("root_on_hyperplane", "z_j(root_j) = 0 for every relevant neuron's root", _root_on_hyperplane,
                 needs_root=True, solver=True),
        Property("root_in_domain", "every root lies in its layer's domain", _root_in_domain, needs_root=True,
                 solver=True),
        Property("root_in_linear_region:layer", "no other neuron of layer l changes sign between input and root",
                 _root_region("layer"), needs_root=True),
        Property("root_in_linear_region:upper",
                 "the affine piece of f_c (as a function of a_{l-1}) is the same at the input and at the root",
                 _root_region("upper"), needs_root=True),
        Property("root_in_linear_region:network",
                 "no other neuron of layers l..L changes sign between input and root (closed activation region)",
                 _root_region("network"), needs_root=True),
        Property("equals_gradient_x_input",
                 "R^0 = grad f_c(x) * x wherever no relevant neuron's normaliser vanishes", _equals_gxi, solver=True),
        Property("continuity",
                 "R^0 is continuous at x along every coordinate ray +-e_i that stays in the domain", _continuity),
        Property("backend_agreement",
                 "Fractions = Z3 terms exactly; float64 and torch float64 within 1e-9 relative (dyadic data)",
                 _backend_agreement),
    ]
}
ALIASES = {"root_in_linear_region": "root_in_linear_region:upper"}

#: what check_rule runs when no properties are named
DEFAULT_PROPERTIES = [
    "conservation", "positivity", "root_on_hyperplane", "root_in_domain", "root_in_linear_region:upper",
    "equals_gradient_x_input", "continuity", "backend_agreement",
]


def get_property(name: str | Property) -> Property:
    """The catalogue entry for ``name`` (aliases allowed); :class:`InputError` for an unknown name."""
    if isinstance(name, Property):
        return name
    key = ALIASES.get(name.strip(), name.strip())
    if key not in CATALOGUE:
        known = ", ".join(sorted(set(CATALOGUE) | set(ALIASES)))
        raise InputError(f"unknown property {name!r}; known: {known}")
    return CATALOGUE[key]


def evaluate_property(name: str | Property, rule: Rule, net: Network, x: Any, output: int = 0,
                      domain: Domain | None = None) -> Outcome:
    """Evaluate one catalogue property exactly on one case (the replay entry point)."""
    return get_property(name).evaluate(rule, net, x, output, domain)


__all__ = [
    "Outcome", "Property", "CATALOGUE", "ALIASES", "DEFAULT_PROPERTIES", "get_property", "evaluate_property",
    "checked_layers", "layer_domain", "relevant_neurons", "is_first_layer_rule", "torch_ops",
]

r"""The property catalogue: every property of a rule, written once over the ops namespace.

A property is a list of *checks* on a :class:`dtd_formal.walk.Trace` (one rule, one network, one input, one ops
namespace): each check names where it applies (layer, neuron), the condition under which it fails and the values
that show it. In exact arithmetic the conditions are Python booleans and the first failing check is the
counterexample; over Z3 terms the same code yields formulas, and the disjunction of the failure conditions is the
Z3 encoding that :func:`dtd_formal.smt.violations.find_violation` and :func:`dtd_formal.testing.check_rule`'s
solver decide. There is no second copy of any property.

Notation (docs/theory.md): layers 1..L, :math:`a_0 = x`, :math:`z_l = W_l a_{l-1} + b_l`, explained output c,
:math:`R^L = f_c(x) e_c`, :math:`R^{l-1}` = the rule's redistribution with the ReLU gate (:mod:`dtd_formal.walk`).
The *checked layers* are all layers for a rule whose domain is the non-negative orthant (hidden-layer inputs are
ReLU outputs) and layer 1 only for a first-layer rule (a :class:`~dtd_formal.rules.domains.Box` or
:class:`~dtd_formal.rules.domains.Unbounded` domain: ZBox, WSquare). A *relevant* neuron is an active hidden
neuron or, in layer L, the explained output (:func:`dtd_formal.walk.relevant_neurons`). Roots of layer 1 must lie
in the *root domain* (default: the rule's domain), deeper roots in :math:`a \ge 0`.

============================= ======================================================================================
name                          fails at x when (for some checked layer l, relevant neuron j)
============================= ======================================================================================
conservation                  :math:`\sum_i R^{l-1}_i \ne \sum_j R^l_j`
positivity                    :math:`R^l \ge 0`, :math:`R^l \ne 0` and some :math:`R^{l-1}_i < 0`
root-on-hyperplane            :math:`w_j \cdot v_j \ne 0` and :math:`z_j(\tilde a^{(j)}) \ne 0`
root-in-domain                :math:`w_j \cdot v_j \ne 0` and :math:`\tilde a^{(j)}` outside the layer's domain
equals-gradient-x-input       :math:`f_c(x) \ne 0`, no relevant normaliser vanishes, and
                              :math:`R^0 \ne \nabla f_c(x) \odot x` (C2; rules with a single normaliser)
root-in-linear-region:layer   another neuron of layer l changes sign strictly between :math:`a_{l-1}` and the root
root-in-linear-region:upper   the affine piece of :math:`f_c` (a function of :math:`a_{l-1}`) differs at the root
root-in-linear-region:network another neuron of layers l..L changes sign strictly (the closed activation region)
continuity                    :math:`\lim_{s \to 0^+} R^0(x + s d) \ne R^0(x)` along a coordinate ray in the domain
backend-agreement             the rule's body gives different results in Fractions and Z3 terms (exactly), or in
                              float64 numpy / torch beyond 1e-9 relative (dyadic data)
============================= ======================================================================================

The first five have Z3 encodings (:attr:`Property.encodable`); the region properties are decided over whole
domains by :func:`dtd_formal.smt.root_exit.find_root_exit`, continuity and backend agreement are exact checks at a
point. Names are kebab-case; the snake_case spelling (``root_in_domain``) is accepted everywhere.

A rule whose method raises (or returns inexact numbers in exact arithmetic) is not a counterexample: the evaluation
reports ``Outcome.error`` (the :class:`~dtd_formal.walk.RuleEvaluationError` message), and callers answer "error".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable

import numpy as np

from .errors import InputError
from .exact import fast_to_fraction, to_fast, to_float
from .network import Network
from .rules.base import Rule
from .rules.domains import Domain, NonNegative, Unbounded
from .rules.ops import EXACT, FAST_EXACT, FLOAT64
from .walk import RuleEvaluationError, Trace, call_rule

FLOAT_RTOL = 1e-9


# ---------------------------------------------------------------------------------------------------- results
@dataclass
class Outcome:
    """Result of one exact property evaluation.

    ``holds``: no check failed; ``vacuous``: the property's precondition never applied (counted as degenerate);
    ``values``: the exact quantities that show a failure; ``error``: the rule raised (then ``holds`` is False and
    the outcome is not a counterexample).
    """

    holds: bool
    vacuous: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    error: str = ""


@dataclass
class Check:
    """One item of a property on a trace: it fails when ``fails`` holds (a bool, or a Z3 Boolean)."""

    fails: Any
    layer: int | None = None
    neuron: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    message: Callable[[dict[str, Any]], str] | None = None


@dataclass
class Context:
    """What a property evaluation needs besides the trace: the checked layers and the domain of layer-1 roots."""

    layers: list[int]
    root_domain: Domain

    def layer_domain(self, layer: int) -> Domain:
        """Domain of the input of ``layer``: the root domain for layer 1, a >= 0 above (ReLU outputs)."""
        return self.root_domain if layer == 1 else NonNegative()


# ---------------------------------------------------------------------------------------------------- helpers
def rule_domain(rule: Rule) -> Domain:
    """The rule's ``domain``, with a failure of the rule's code reported as a :class:`RuleEvaluationError`."""
    try:
        dom = rule.domain
    except Exception as exc:  # noqa: BLE001 - the user's property body failed
        raise RuleEvaluationError(rule.spec(), "domain", None, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(dom, Domain):
        raise RuleEvaluationError(rule.spec(), "domain", None, f"returned {type(dom).__name__}, not a Domain")
    return dom


def is_first_layer_rule(rule: Rule) -> bool:
    """A rule whose domain is not the non-negative orthant (ZBox's box, WSquare's R^n) is a first-layer rule."""
    return not isinstance(rule_domain(rule), NonNegative)


def checked_layers(rule: Rule, net: Network) -> list[int]:
    """Layers whose redistribution is checked: all, or [1] for a first-layer rule."""
    return [1] if is_first_layer_rule(rule) else list(range(1, net.n_layers + 1))


def has_single_normaliser(rule: Rule) -> bool:
    """Whether the rule defines one normaliser per neuron (AlphaBeta has two parts and none)."""
    one = np.array([Fraction(1)], dtype=object)
    try:
        rule.normaliser(EXACT, one, one.reshape(1, 1), np.array([Fraction(0)], dtype=object))
    except NotImplementedError:
        return False
    except Exception:  # noqa: BLE001 - any other failure shows up, named, when the property is evaluated
        return True
    return True


def _show(v: Any) -> Any:
    """Exact numbers (gmpy2 or Fraction, arrays of them) as Fractions / lists of strings for reports."""
    if isinstance(v, np.ndarray):
        return [str(fast_to_fraction(e)) for e in v.ravel()]
    if isinstance(v, (list, tuple)):
        return [_show(e) for e in v]
    if hasattr(v, "numerator") and not isinstance(v, bool):
        return fast_to_fraction(v)
    return v


# ---------------------------------------------------------------------------------------------------- the checks
def _conservation(tr: Trace, ctx: Context) -> list[Check]:
    ops, R = tr.ops, tr.relevance
    steps = {st.layer: st for st in tr.steps}
    out = []
    for l in ctx.layers:
        upper, lower = ops.sum(R[l]), ops.sum(R[l - 1])
        values = {"upper_total": upper, "lower_total": lower, "absorbed": upper - lower, "R_upper": R[l],
                  "R_lower": R[l - 1], "relu_dropped": ops.sum(steps[l].lower_raw) - lower}
        if getattr(ops, "exact_results", False):  # which neurons dropped their relevance (exact bookkeeping)
            lops, a, W, b = tr.layer_view(l)
            values["dropped_neurons"] = [int(j) for j in call_rule(tr.rule_at(l), "dropped_neurons", lops, a, W, b,
                                                                   R[l], layer=l)]
        out.append(Check(upper != lower, l, None, values,
                         lambda v, l=l: f"layer {l}: sum R^{l - 1} = {v['lower_total']} but sum R^{l} = "
                                        f"{v['upper_total']} (absorbed {v['absorbed']}; dropped neurons "
                                        f"{v.get('dropped_neurons', [])}; given to inactive neurons "
                                        f"{v['relu_dropped']})"))
    return out


def _positivity(tr: Trace, ctx: Context) -> list[Check]:
    ops, R = tr.ops, tr.relevance
    out = []
    for l in ctx.layers:
        fails = ops.and_(ops.all_true(R[l] >= ops.zero), ops.any_true(R[l] != ops.zero),
                         ops.any_true(R[l - 1] < ops.zero))
        out.append(Check(fails, l, None, {"R_upper": R[l], "R_lower": R[l - 1]},
                         lambda v, l=l: f"layer {l}: R^{l} >= 0 but R^{l - 1} = {_show(v['R_lower'])} has a negative "
                                        "entry"))
    return out


def _root_checks(tr: Trace, ctx: Context, what: str) -> list[Check]:
    ops = tr.ops
    out = []
    for l in ctx.layers:
        rs = tr.roots(l)
        for j, relevant in tr.relevant(l):
            root = rs.points[j]
            base = {"root": root, "step": rs.t[j], "layer_input": tr.acts[l - 1]}
            if what == "hyperplane":
                z_root = tr.preactivation_at(l, j, root)
                fails = ops.and_(relevant, rs.den[j] != ops.zero, z_root != ops.zero)
                out.append(Check(fails, l, j, {**base, "z_at_root": z_root},
                                 lambda v, l=l, j=j: f"layer {l} neuron {j}: z_j(root) = {_show(v['z_at_root'])} != 0"))
            else:
                dom = ctx.layer_domain(l)
                fails = ops.and_(relevant, rs.den[j] != ops.zero, ops.not_(dom.member(ops, root)))
                out.append(Check(fails, l, j, {**base, "domain": dom.describe()},
                                 lambda v, l=l, j=j: f"layer {l} neuron {j}: root {_show(v['root'])} is outside "
                                                     f"{v['domain']}"))
    return out


def _equals_gxi(tr: Trace, ctx: Context) -> list[Check]:
    ops = tr.ops
    f_c = tr.acts[-1][tr.output]
    pre = [f_c != ops.zero]
    for l in range(1, tr.n_layers + 1):
        n = tr.normaliser(l)
        pre.extend(ops.implies(relevant, n[j] != ops.zero) for j, relevant in tr.relevant(l))
    R0, g, x = tr.relevance[0], tr.gradient, tr.x
    gxi = g * x
    fails = ops.and_(*pre, ops.any_true(R0 != gxi))
    return [Check(fails, None, None, {"R_input": R0, "gradient_x_input": gxi, "precondition": ops.and_(*pre)},
                  lambda v: f"R^0 = {_show(v['R_input'])} but grad f_{tr.output} * x = "
                            f"{_show(v['gradient_x_input'])}")]


# ---------------------------------------------------------------------------------------------------- property
@dataclass(frozen=True)
class Property:
    """A named property.

    ``checks(trace, context)`` is the one definition over ops (None for the exact-only properties, which give
    ``exact(rule, net, x, output, root_domain) -> Outcome``); ``vacuous(trace, context)`` tells, in exact
    arithmetic, when the precondition never applied.
    """

    name: str
    statement: str
    checks: Callable[[Trace, Context], list[Check]] | None = None
    exact: Callable[[Rule, Network, np.ndarray, int, Domain], Outcome] | None = None
    vacuous: Callable[[Trace, Context], bool] | None = None
    needs_root: bool = False
    needs_normaliser: bool = False

    @property
    def encodable(self) -> bool:
        """Whether the property has a Z3 encoding (its checks are written over ops)."""
        return self.checks is not None

    @property
    def snake_name(self) -> str:
        return self.name.replace("-", "_")

    def applies(self, rule: Rule) -> str | None:
        """Why the property does not apply to ``rule`` (None when it does)."""
        if self.needs_root and not rule.has_root:
            return f"{rule.spec()} is not a root-point rule (no search direction, so no roots)"
        if self.needs_normaliser and not has_single_normaliser(rule):
            return f"{rule.spec()} has no single normaliser per neuron (the property is stated for such rules)"
        return None

    def context(self, rule: Rule, net: Network, root_domain: Domain | None = None) -> Context:
        return Context(checked_layers(rule, net), rule_domain(rule) if root_domain is None else root_domain)

    def evaluate(self, rule: Rule, net: Network, x: Any, output: int = 0, domain: Domain | None = None) -> Outcome:
        """Exact evaluation at one input; ``domain`` is the domain of layer-1 roots (default: the rule's)."""
        reason = self.applies(rule)
        if reason:
            raise InputError(f"{self.name}: {reason}")
        graph = getattr(net, "is_graph", False)
        if graph and self.exact is not None:
            require_dense(net, f"property {self.name}")
        net.check_output(output)
        xa = net.as_input(x)
        try:
            dom = rule_domain(rule) if domain is None else domain
            if self.exact is not None:
                return self.exact(rule, net, xa, output, dom)
            if graph:  # the same checks on the operator graph's walk (:mod:`dtd_formal.graph.trace`)
                from .graph.trace import GraphTrace

                tr: Any = GraphTrace(FAST_EXACT, net, to_fast(xa), rule, output)
            else:
                tr = Trace(FAST_EXACT, net.fast_layers, net.relu_flags, to_fast(xa), rule, output)
            ctx = self.context(rule, net, dom)
            for check in self.checks(tr, ctx):  # type: ignore[misc]
                if check.fails:
                    values = {k: _show(v) for k, v in check.values.items()}
                    values.update({k: v for k, v in (("layer", check.layer), ("neuron", check.neuron)) if v is not None})
                    return Outcome(False, False, values, check.message(values) if check.message else self.name)
            return Outcome(True, bool(self.vacuous(tr, ctx)) if self.vacuous else False)
        except RuleEvaluationError as exc:
            return Outcome(False, False, {"error": str(exc)}, str(exc), error=str(exc))

    def violation(self, trace: Trace, ctx: Context) -> Any:
        """The disjunction of the checks' failure conditions (a Z3 formula on a Z3 trace)."""
        if self.checks is None:
            raise InputError(f"{self.name} has no Z3 encoding (it is an exact check at a point)")
        return trace.ops.or_(*[c.fails for c in self.checks(trace, ctx)])


def require_dense(net: Any, what: str) -> None:
    """Refuse an operator graph where only dense networks are read (named, never approximated)."""
    if getattr(net, "is_graph", False):
        raise InputError(f"{what} reads dense networks; on convolutional or residual graphs the catalogue's "
                         "encodable properties (conservation, positivity, root-on-hyperplane, root-in-domain, "
                         "equals-gradient-x-input) are evaluated exactly, and the region properties are "
                         "root_regions / find_root_exit")


# ---------------------------------------------------------------------------------------------------- vacuity
def _all_upper_zero(tr: Trace, ctx: Context) -> bool:
    return all(all(v == 0 for v in tr.relevance[l]) for l in ctx.layers)


def _no_nonnegative_upper(tr: Trace, ctx: Context) -> bool:
    R = tr.relevance
    return not any(all(v >= 0 for v in R[l]) and any(v != 0 for v in R[l]) for l in ctx.layers)


def _no_roots(tr: Trace, ctx: Context) -> bool:
    return not any(bool(active) and tr.roots(l).den[j] != 0 for l in ctx.layers for j, active in tr.relevant(l))


def _gxi_precondition_fails(tr: Trace, ctx: Context) -> bool:
    return not bool(_equals_gxi(tr, ctx)[0].values["precondition"])


# ---------------------------------------------------------------------------------------------------- exact-only
def _root_region(scope: str) -> Callable[[Rule, Network, np.ndarray, int, Domain], Outcome]:
    """scope "layer": layer l's pattern; "upper": the affine map of f_c; "network": the pattern of layers l..L."""

    def evaluate(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
        from .regions import root_regions

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
                    "layer": r.layer, "neuron": r.neuron, "root": _show(r.root), "flipped": r.flipped,
                    "leaves_pattern": r.leaves_pattern, "leaves_affine_map": r.leaves_affine_map, "step": r.step,
                }, f"layer {r.layer} neuron {r.neuron}: root leaves the input's region ({what})")
        return Outcome(True, False)

    return evaluate


def _rays(x: np.ndarray, domain: Domain) -> list[list[int]]:
    r"""Coordinate directions :math:`\pm e_i` that stay in the domain for small s > 0."""
    n = len(x)
    lo, hi = domain.bounds(n) if not isinstance(domain, Unbounded) else ([None] * n, [None] * n)
    rays = []
    for i in range(n):
        for sgn in (1, -1):
            if (sgn == 1 and hi[i] is not None and x[i] >= hi[i]) or (sgn == -1 and lo[i] is not None and x[i] <= lo[i]):
                continue
            d = [0] * n
            d[i] = sgn
            rays.append(d)
    return rays


def _continuity(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
    r""":math:`R^0(x + s d)` as one-sided germs at :math:`s \to 0^+` (:mod:`dtd_formal.testing.germ`): the walk's
    forward and backward passes run unchanged on arrays of germs with the exact ops."""
    from .testing.germ import GERM_OPS, Germ, Undecided

    R0 = Trace(EXACT, net.arrays("fraction"), net.relu_flags, x, rule, output).relevance[0]
    undecided = 0
    rays = _rays(x, domain)
    for d in rays:
        a = np.empty(len(x), dtype=object)
        for i in range(len(x)):
            a[i] = Germ.affine(x[i], d[i])
        try:
            germs = Trace(GERM_OPS, net.arrays("fraction"), net.relu_flags, a, rule, output).relevance[0]
            limits = [g.limit() if isinstance(g, Germ) else Fraction(g) for g in germs]
        except (Undecided, ZeroDivisionError):
            undecided += 1
            continue
        except RuleEvaluationError as exc:
            if isinstance(exc.__cause__, (Undecided, ZeroDivisionError)):
                undecided += 1
                continue
            raise
        for i, (lim, val) in enumerate(zip(limits, R0)):
            if lim is None or lim != val:
                shown = "infinite" if lim is None else str(lim)
                return Outcome(False, False, {
                    "direction": d, "input_index": i, "value_at_x": val, "limit": shown, "R_input": _show(R0),
                }, f"R^0_{i} jumps at x along {d}: R^0_{i}(x) = {val} but lim_(s->0+) R^0_{i}(x + s d) = {shown}")
    return Outcome(True, undecided > 0 and undecided == len(rays), {"undecided_rays": undecided} if undecided else {})


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

            from .torch.ops import TorchOps

            _TORCH.append((TorchOps(torch.float64), "compared (dtd_formal.torch.ops.TorchOps, float64)"))
        except ImportError as exc:
            _TORCH.append((None, f"skipped: the torch backend is not available ({exc})"))
    return _TORCH[0]


def _float_check(name: str, l: int, got: Any, exact: np.ndarray, scale: float) -> Outcome | None:
    f = np.asarray(got, dtype=np.float64).ravel()
    err = max((abs(float(ev) - fv) for ev, fv in zip(exact, f)), default=0.0)
    if f.shape != exact.shape or not np.all(np.isfinite(f)) or err > FLOAT_RTOL * scale:
        return Outcome(False, False, {"layer": l, "backend": name, "exact": _show(exact),
                                      name: [float(v) for v in f], "max_error": err},
                       f"layer {l}: {name} gives {list(f)}, Fractions give {[float(v) for v in exact]} "
                       f"(error {err:.3g} > {FLOAT_RTOL} x {scale:.3g})")
    return None


def _backend_failure(l: int, backend: str, what: str, exc: Exception) -> Outcome:
    return Outcome(False, False, {"layer": l, "backend": backend, "error": f"{type(exc).__name__}: {exc}"},
                   f"layer {l}: {what} does not run on {backend} ({type(exc).__name__}: {exc}); use only the ops "
                   "namespace")


def _backend_agreement(rule: Rule, net: Network, x: np.ndarray, output: int, domain: Domain) -> Outcome:
    r"""Layer by layer, on the exact layer input :math:`a_{l-1}` and upper relevance :math:`R^l`:
    ``rule.redistribute`` (and ``root_step`` for root rules) in Fractions = in Z3 terms, exactly; float64 numpy and
    torch float64 within :data:`FLOAT_RTOL` x (1 + sum |R^l| + sum |R^{l-1}|) when every number of the case is
    dyadic (then float64 represents the data and every mask is decided alike). A body that does not run on a
    backend fails this property (that is what it checks); a body that fails in exact arithmetic is an error."""
    from .smt.ops import Z3, from_z3

    tr = Trace(EXACT, net.arrays("fraction"), net.relu_flags, x, rule, output)
    dyadic = _is_dyadic(net, x)
    t_ops, t_status = torch_ops() if dyadic else (None, "skipped: non-dyadic data")
    values: dict[str, Any] = {
        "float64": "compared" if dyadic else "skipped: non-dyadic data (float64 rounding at exact cancellations "
                                             "is expected)",
        "torch": t_status,
    }
    vacuous = all(v == 0 for v in tr.relevance[-1])
    for l in checked_layers(rule, net):
        a, (W, b), R = tr.acts[l - 1], tr.layers[l - 1], tr.relevance[l]
        exact = np.asarray(call_rule(rule, "redistribute", EXACT, a, W, b, R, layer=l), dtype=object)
        try:
            zr = from_z3(rule.redistribute(Z3, Z3.lift(a), Z3.lift(W), Z3.lift(b), Z3.lift(R)))
        except Exception as exc:  # noqa: BLE001 - a body that bypasses ops fails here
            return _backend_failure(l, "z3", "the rule body", exc)
        if any(p != q for p, q in zip(np.ravel(zr), exact)):
            return Outcome(False, False, {"layer": l, "backend": "z3", "exact": _show(exact), "z3": _show(zr)},
                           f"layer {l}: Z3 terms give {[str(v) for v in np.ravel(zr)]}, Fractions give "
                           f"{[str(v) for v in exact]}")
        if rule.has_root:
            te = tr.roots(l)
            try:
                tz, Vz, _ = rule.root_step(Z3, Z3.lift(a), Z3.lift(W), Z3.lift(b))
                tz, Vz = from_z3(tz), from_z3(Vz)
            except Exception as exc:  # noqa: BLE001
                return _backend_failure(l, "z3", "root_step", exc)
            if not (np.array_equal(tz, te.t) and np.array_equal(Vz, te.V)):
                return Outcome(False, False, {"layer": l, "backend": "z3", "exact_t": _show(te.t), "z3_t": _show(tz)},
                               f"layer {l}: Z3 root steps {[str(v) for v in np.ravel(tz)]} differ from exact "
                               f"{[str(v) for v in te.t]}")
        if not dyadic:
            continue
        scale = 1.0 + float(sum(abs(v) for v in R)) + float(sum(abs(v) for v in exact))
        fa, fW, fb, fR = (to_float(v) for v in (a, W, b, R))
        try:
            got = rule.redistribute(FLOAT64, fa, fW, fb, fR)
        except Exception as exc:  # noqa: BLE001
            return _backend_failure(l, "float64", "the rule body", exc)
        bad = _float_check("float64", l, got, exact, scale)
        if bad:
            return bad
        if t_ops is not None:
            import torch

            ta, tW, tb, tR = (torch.as_tensor(v, dtype=torch.float64) for v in (fa, fW, fb, fR))
            try:
                got_t = rule.redistribute(t_ops, ta, tW, tb, tR).detach().cpu().numpy()
            except Exception as exc:  # noqa: BLE001
                return _backend_failure(l, "torch", "the rule body", exc)
            bad = _float_check("torch", l, got_t, exact, scale)
            if bad:
                return bad
    return Outcome(True, vacuous, values)


# ---------------------------------------------------------------------------------------------------- catalogue
CATALOGUE: dict[str, Property] = {
    p.name: p
    for p in [
        Property("conservation", "sum_i R^{l-1}_i = sum_j R^l_j at every checked layer", _conservation,
                 vacuous=_all_upper_zero),
        Property("positivity", "R^l >= 0 implies R^{l-1} >= 0 at every checked layer", _positivity,
                 vacuous=_no_nonnegative_upper),
        Property("root-on-hyperplane", "z_j(root_j) = 0 for every relevant neuron's root",
                 lambda tr, ctx: _root_checks(tr, ctx, "hyperplane"), vacuous=_no_roots, needs_root=True),
        Property("root-in-domain", "every root lies in its layer's domain",
                 lambda tr, ctx: _root_checks(tr, ctx, "domain"), vacuous=_no_roots, needs_root=True),
        Property("equals-gradient-x-input", "R^0 = grad f_c(x) * x wherever no relevant neuron's normaliser vanishes",
                 _equals_gxi, vacuous=_gxi_precondition_fails, needs_normaliser=True),
        Property("root-in-linear-region:layer", "no other neuron of layer l changes sign between input and root",
                 exact=_root_region("layer"), needs_root=True),
        Property("root-in-linear-region:upper",
                 "the affine piece of f_c (as a function of a_{l-1}) is the same at the input and at the root",
                 exact=_root_region("upper"), needs_root=True),
        Property("root-in-linear-region:network",
                 "no other neuron of layers l..L changes sign between input and root (closed activation region)",
                 exact=_root_region("network"), needs_root=True),
        Property("continuity",
                 "R^0 is continuous at x along every coordinate ray +-e_i that stays in the domain",
                 exact=_continuity),
        Property("backend-agreement",
                 "Fractions = Z3 terms exactly; float64 and torch float64 within 1e-9 relative (dyadic data)",
                 exact=_backend_agreement),
    ]
}
ALIASES = {"root-in-linear-region": "root-in-linear-region:upper"}

#: what check_rule runs when no properties are named
DEFAULT_PROPERTIES = [
    "conservation", "positivity", "root-on-hyperplane", "root-in-domain", "root-in-linear-region:upper",
    "equals-gradient-x-input", "continuity", "backend-agreement",
]


def canonical_name(name: str) -> str:
    """The kebab-case catalogue key of a property name (snake_case and aliases accepted)."""
    key = name.strip().lower().replace("_", "-")
    return ALIASES.get(key, key)


def get_property(name: str | Property) -> Property:
    """The catalogue entry for ``name`` (snake_case spellings and aliases allowed); :class:`InputError` else."""
    if isinstance(name, Property):
        return name
    key = canonical_name(str(name))
    if key not in CATALOGUE:
        raise InputError(f"unknown property {name!r}; known: {', '.join(sorted(CATALOGUE))}")
    return CATALOGUE[key]


def evaluate_property(name: str | Property, rule: Rule, net: Network, x: Any, output: int = 0,
                      domain: Domain | None = None) -> Outcome:
    """Evaluate one catalogue property exactly on one case (the replay entry point)."""
    return get_property(name).evaluate(rule, net, x, output, domain)


def property_names(encodable_only: bool = False) -> list[str]:
    """Catalogue names (kebab-case), optionally only those with a Z3 encoding."""
    return [n for n, p in CATALOGUE.items() if p.encodable or not encodable_only]


def iter_properties(names: Iterable[str | Property] | None = None) -> list[Property]:
    """The catalogue entries for ``names`` (default: :data:`DEFAULT_PROPERTIES`)."""
    return [get_property(n) for n in (names or DEFAULT_PROPERTIES)]


__all__ = [
    "Outcome", "Check", "Context", "Property", "CATALOGUE", "ALIASES", "DEFAULT_PROPERTIES", "canonical_name",
    "get_property", "evaluate_property", "property_names", "iter_properties", "checked_layers",
    "is_first_layer_rule", "has_single_normaliser", "torch_ops",
]

r"""Taylor, region and root-exit claims: C1, the crossing remainder, P1, C5, and C4 (softplus).

Generic networks here have fully symbolic weights :math:`W_l` (entries ``W{l}_{j}{i}``, real) and biases, and a
fixed activation pattern given by 0/1 diagonal matrices :math:`D_l`; all :math:`2^{\#\text{ReLUs}}` patterns are
enumerated. The *region lemma* turns the ReLU into :math:`D z` on the closed region: for a symbol
:math:`\zeta \ge 0`, :math:`\max(0, \zeta) = \zeta`; for :math:`\zeta \le 0`, :math:`\max(0, \zeta) = 0`
(checked by SymPy's assumption system and recorded). On P(s) therefore

.. math::  f(x) = W_L D_{L-1}(\cdots D_1 (W_1 x + b_1) \cdots) + b_L,

a polynomial of degree 1 in x, for x and :math:`\tilde x` alike (both in P(s); P(s) is convex, so the segment is
in P(s) too). C1 is the identity :math:`f(x) - f(\tilde x) - \nabla f(\tilde x) \cdot (x - \tilde x) = 0`
(gradient by SymPy differentiation), together with :math:`\nabla f = W_L D_{L-1} \cdots D_1 W_1`.
The general case: depth and width only add more affine layers of the same form; the identity uses nothing but
"affine on P(s)", which holds for every depth by the same composition.

P1 (valid roots are bounded by the upper network), generic part: with locally constant roots, the relevance of
layer l as a function of :math:`a_{l-1}` is built by Taylor steps at constant roots through every layer above:
:math:`R^{m-1}_i = \sum_j g^{(m)}_{ji} (a_{m-1,i} - \tilde a^{(j)}_i)` with :math:`g^{(m)}_j` the gradient of
:math:`R^m_j` on the root's piece; on each activation region of the upper network (all of layers l..L fixed) every
:math:`R^l_j(a_{l-1})` is affine (zero Hessian), so the first-order expansion at any point of that region is exact.
The witness part shows the check is not vacuous: a z+ root that keeps layer l's own pattern but flips an upper
neuron changes the piece of :math:`f_c` and leaves a non-zero remainder (:mod:`dtd_formal.symbolic.witnesses`).

C4: :math:`\mathrm{softplus}(z) = \log(1 + e^z) > 0` for all real z (so :math:`c\,\mathrm{softplus}` has no root
unless c = 0), its second derivative :math:`e^z / (1 + e^z)^2 > 0`, so the second-order Taylor term never
vanishes for :math:`z \ne z_0`.
"""

from __future__ import annotations

import itertools
import time
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import sympy as sp

from ..network import Network
from ..verdict import Proved, Unknown, Verdict
from .certificate import Evidence
from .ops import assert_exact
from .rule_claims import conclude
from .translate import evaluate, input_symbols, symbolic_gradient, to_sympy
from .witnesses import fracs, search_root_exit, small_net, strs


# ------------------------------------------------------------------------------------------------ generic networks
def generic_network(sizes: Sequence[int]) -> list[tuple[sp.Matrix, sp.Matrix]]:
    """Symbolic layers [(W_l, b_l)] for layer sizes [n_0, ..., n_L] (real symbols)."""
    layers = []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        W = sp.Matrix(n_out, n_in, lambda j, i: sp.Symbol(f"W{l}_{j}{i}", real=True))
        b = sp.Matrix(n_out, 1, lambda j, _: sp.Symbol(f"b{l}_{j}", real=True))
        layers.append((W, b))
    return layers


def record_region_lemma(ev: Evidence) -> None:
    """The ReLU on a closed region: max(0, zeta) = zeta for zeta >= 0 and = 0 for zeta <= 0 (SymPy assumptions)."""
    zp, zn = sp.Symbol("zeta", nonnegative=True), sp.Symbol("zeta", nonpositive=True)
    ev.identity("region lemma: max(0, zeta) = zeta for zeta >= 0", sp.Max(0, zp, evaluate=False) - zp)
    ev.identity("region lemma: max(0, zeta) = 0 for zeta <= 0", sp.Max(0, zn, evaluate=False))


def forward_on_pattern(layers: list[tuple[sp.Matrix, sp.Matrix]], masks: Sequence[Sequence[int]],
                       x: sp.Matrix) -> sp.Matrix:
    """f(x) on the closed region of ``masks`` (one 0/1 list per hidden layer): a_l = D_l z_l by the region lemma."""
    a = x
    for l, (W, b) in enumerate(layers):
        z = W * a + b
        a = sp.diag(*masks[l]) * z if l < len(masks) else z
    return a


def split_masks(bits: Sequence[int], widths: Sequence[int]) -> list[list[int]]:
    out, pos = [], 0
    for w in widths:
        out.append(list(bits[pos:pos + w]))
        pos += w
    return out


# ------------------------------------------------------------------------------------------------ C1
def _region_checks(net: Network, step: Fraction, lo: int, hi: int) -> tuple[list[dict[str, Any]], int]:
    """Regions of ``net`` met on the rational grid {lo..hi} * step (2-D inputs), with two exact points each."""
    grid = [Fraction(k) * step for k in range(lo, hi + 1)]
    by_pattern: dict[bytes, list[list[Fraction]]] = {}
    for x0 in grid:
        for x1 in grid:
            pat = net.pattern([x0, x1])
            if any(np.any(p == 0) for p in pat):
                continue
            key = b"".join(np.asarray(p, dtype=np.int8).tobytes() for p in pat)
            by_pattern.setdefault(key, []).append([x0, x1])
    regions = []
    for key, pts in by_pattern.items():
        x, xt = pts[-1], pts[0]
        regions.append({"pattern": [[int(v) for v in p] for p in net.pattern(x)], "x": strs(x), "x_tilde": strs(xt)})
    return regions, len(grid) ** 2


def check_region_taylor(net: Network, regions: list[dict[str, Any]], with_sympy: bool = True) -> bool:
    """In each listed region: f(x) = f(x~) + g.(x - x~) exactly, g from affine_map = SymPy gradient of to_sympy."""
    xs = input_symbols(net.input_size)
    glob = to_sympy(net, output=0, symbols=xs) if with_sympy and net.n_relus <= 8 else None
    for r in regions:
        pattern = [np.array(p, dtype=np.int8) for p in r["pattern"]]
        x, xt = fracs(r["x"]), fracs(r["x_tilde"])
        if [list(p) for p in net.pattern(x)] != r["pattern"] or [list(p) for p in net.pattern(xt)] != r["pattern"]:
            return False
        g, c = net.affine_map(pattern, 0)
        fx, fxt = net.forward(x)[0], net.forward(xt)[0]
        if fx != fxt + g.dot(x - xt) or fx != g.dot(x) + c:
            return False
        if with_sympy:
            sg = symbolic_gradient(net, pattern, 0, xs)
            if [Fraction(int(v.p), int(v.q)) for v in sg] != list(g):
                return False
            if glob is not None and evaluate(glob, x, xs) != sp.Rational(fx.numerator, fx.denominator):
                return False
    return True


def claim_taylor_exact_in_region(fast: bool = False) -> Verdict:
    """C1, generic part (all patterns of a symbolic net) and per-network part (regions of a concrete net)."""
    sizes = (2, 2, 1) if fast else (2, 3, 2, 1)
    widths = sizes[1:-1]
    ev = Evidence()
    record_region_lemma(ev)
    layers = generic_network(sizes)
    x = sp.Matrix(input_symbols(sizes[0]))
    xt = sp.Matrix(input_symbols(sizes[0], "xt"))
    for bits in itertools.product((0, 1), repeat=sum(widths)):
        masks = split_masks(bits, widths)
        f, ft = forward_on_pattern(layers, masks, x)[0], forward_on_pattern(layers, masks, xt)[0]
        grad = [sp.diff(ft, v) for v in xt]
        ev.identity(f"Taylor at x~ on pattern {masks}", f - ft - sum(g * (xi - ti) for g, xi, ti in zip(grad, x, xt)))
        prod = layers[-1][0]
        for l in range(len(widths) - 1, -1, -1):
            prod = prod * sp.diag(*masks[l]) * layers[l][0]
        for i, v in enumerate(xt):
            ev.identity(f"gradient = W_L D ... D_1 W_1 on pattern {masks}, component {i}", grad[i] - prod[0, i])
    # per-network variant
    t0 = time.perf_counter()
    net = small_net(2, (2, 4, 4, 1))
    regions, n_points = _region_checks(net, Fraction(1, 4) if not fast else Fraction(1, 2), -8 if not fast else -4,
                                       8 if not fast else 4)
    ok = check_region_taylor(net, regions)
    ev.witness("region_taylor", network=net.to_json(), regions=regions, grid_points=n_points)
    ev.notes.append(f"concrete net {net!r}: {len(regions)} regions met on a grid of {n_points} rational points, "
                    "Taylor exact in each")
    ev.timings["concrete net"] = round(time.perf_counter() - t0, 4)
    statement = (f"for a ReLU net (generic symbolic weights, sizes {sizes}, every activation pattern) the first-order "
                 "expansion at a point x~ of the same closed region reproduces f(x) exactly; checked also in "
                 f"{len(regions)} regions of a concrete {net!r}")
    if not ok:
        return Unknown(statement, "the per-network region check failed")
    return conclude(statement, "SymPy: region lemma + polynomial identity per pattern (expand == 0); exact rational "
                               "region checks", ev, sizes=list(sizes), regions=len(regions))


def replay_region_taylor(data: dict[str, Any]) -> bool:
    net = Network.from_json(data["network"], "certificate network")
    return check_region_taylor(net, data["regions"], with_sympy=False) and len(data["regions"]) > 0


# ------------------------------------------------------------------------------------------------ crossing
def crossing_witness(net: Network, x: Any, xt: Any) -> dict[str, Any] | None:
    """Exact remainder f(x) - f(x~) - g(x~).(x - x~) when [x~, x] crosses a kink (x~ interior to its region)."""
    x, xt = net.as_input(x), net.as_input(xt)
    p_x, p_t = net.pattern(x), net.pattern(xt)
    if any(np.any(p == 0) for p in p_t):
        return None
    crossed = [(l, int(j)) for l, a, b in zip(net.relu_layers, p_x, p_t) for j in np.flatnonzero(a * b < 0)]
    if not crossed:
        return None
    g = net.gradient(xt, 0)
    fx, ft = net.forward(x)[0], net.forward(xt)[0]
    remainder = fx - ft - g.dot(x - xt)
    if remainder == 0:
        return None
    xs = input_symbols(net.input_size)
    glob = to_sympy(net, output=0, symbols=xs)
    if evaluate(glob, x, xs) != sp.Rational(fx.numerator, fx.denominator) or \
            evaluate(glob, xt, xs) != sp.Rational(ft.numerator, ft.denominator):
        return None
    return {"network": net.to_json(), "x": strs(x), "x_tilde": strs(xt), "f_x": strs([fx])[0],
            "f_x_tilde": strs([ft])[0], "gradient_at_x_tilde": strs(g), "crossed": [list(c) for c in crossed],
            "remainder": strs([remainder])[0]}


def claim_taylor_crossing_remainder(fast: bool = False) -> Verdict:
    """An explicit net and a segment from a root x~ (f(x~) = 0) crossing a kink, with non-zero exact remainder."""
    ev = Evidence()
    found = None
    for seed in range(50):
        net = small_net(seed, (2, 3, 1))
        grid = [Fraction(k, 2) for k in range(-4, 5)]
        pts = [[a, b] for a in grid for b in grid]
        roots = [p for p in pts if net.forward(p)[0] == 0 and not any(np.any(q == 0) for q in net.pattern(p))]
        for xt in roots:
            for x in pts:
                if net.forward(x)[0] > 0:
                    found = crossing_witness(net, x, xt)
                    if found:
                        found["seed"] = seed
                        break
            if found:
                break
        if found:
            break
    statement = ("there is a ReLU net, a root x~ (f(x~) = 0) and an input x with f(x) > 0 whose segment [x~, x] "
                 "crosses a kink, where f(x) - f(x~) - grad f(x~).(x - x~) != 0 (exact)")
    if found is None:
        return Unknown(statement, "no crossing witness found in the seeded search")
    ev.witness("crossing_remainder", **found)
    return Proved(statement, "explicit witness, exact rational arithmetic, cross-checked with the SymPy global form",
                  ev.to_certificate(seeds=[found["seed"]], remainder=found["remainder"]))


def replay_crossing(data: dict[str, Any]) -> bool:
    net = Network.from_json(data["network"], "certificate network")
    fresh = crossing_witness(net, fracs(data["x"]), fracs(data["x_tilde"]))
    return fresh is not None and fresh["remainder"] == data["remainder"] and fresh["f_x_tilde"] == "0"


# ------------------------------------------------------------------------------------------------ P1
def claim_upper_network_bounds_valid_roots(fast: bool = False) -> Verdict:
    """P1: relevance functions with constant roots are affine on upper regions; a witness that the check bites."""
    sizes = (2, 2, 1) if fast else (2, 3, 2, 1)  # layers l..L as a function of a_{l-1}
    widths = sizes[1:-1]
    ev = Evidence()
    record_region_lemma(ev)
    layers = generic_network(sizes)
    a = sp.Matrix(input_symbols(sizes[0], "a"))
    at = sp.Matrix(input_symbols(sizes[0], "at"))
    L = len(layers)
    for bits in itertools.product((0, 1), repeat=sum(widths)):
        masks = split_masks(bits, widths)

        def relevance(point: sp.Matrix) -> list[sp.Expr]:
            # activations of every layer on the region, then Taylor steps at constant roots from the top down
            acts = [point]
            for l, (W, b) in enumerate(layers[:-1]):
                acts.append(sp.diag(*masks[l]) * (W * acts[-1] + b))
            W_L, b_L = layers[-1]
            # R^L (explained output) as a function of a_{L-1}; its gradient at any root is W_L[0] (affine)
            grad = [W_L[0, i] for i in range(W_L.shape[1])]
            R = [grad[i] * (acts[L - 1][i] - sp.Symbol(f"r{L}_{i}", real=True)) for i in range(W_L.shape[1])]
            for m in range(L - 1, 1, -1):  # step through layer m (ReLU) down to a_{m-2}
                W, _ = layers[m - 1]
                new = [sp.Integer(0)] * W.shape[1]
                for j in range(W.shape[0]):
                    g_j = [grad[j] * masks[m - 1][j] * W[j, i] for i in range(W.shape[1])]
                    for i in range(W.shape[1]):
                        new[i] += g_j[i] * (acts[m - 1][i] - sp.Symbol(f"r{m}_{j}{i}", real=True))
                grad = [sum(grad[j] * masks[m - 1][j] * W[j, i] for j in range(W.shape[0])) for i in range(W.shape[1])]
                R = new
            # R: relevance of the neurons of layer l (= first layer here) as functions of a_{l-1} via acts[1]
            return R

        R_a, R_t = relevance(a), relevance(at)
        for j, (Ra, Rt) in enumerate(zip(R_a, R_t)):
            hess = [sp.diff(Ra, u, v) for u in a for v in a]
            for h in hess:
                ev.identity(f"pattern {masks}: Hessian of R^l_{j} in a_(l-1) vanishes", h)
            grad_t = [sp.diff(Rt, v) for v in at]
            ev.identity(f"pattern {masks}: expansion of R^l_{j} at a~ in the same upper region is exact",
                        Ra - Rt - sum(g * (ai - ti) for g, ai, ti in zip(grad_t, a, at)))
    t0 = time.perf_counter()
    witness = search_root_exit(range(40), (3, 4, 4, 1), require_layer_pattern_kept=True)
    statement = (f"with locally constant roots, the relevance of layer l as a function of a_(l-1) is affine on every "
                 f"activation region of the upper network (generic weights, sizes {sizes}, all patterns), so a root in "
                 "the input's upper region gives an exact expansion; and the check is not vacuous: on an explicit net a "
                 "z+ root that keeps layer l's pattern but flips an upper neuron changes the piece of f_c and leaves a "
                 "non-zero remainder")
    if witness is None:
        return Unknown(statement, "no upper-region exit witness found in the seeded search")
    ev.witness("root_exit", **witness)
    ev.notes.append(f"witness search (seed {witness['seed']})")
    ev.timings["witness search"] = round(time.perf_counter() - t0, 4)
    return conclude(statement, "SymPy: Taylor steps at constant symbolic roots per upper pattern (Hessian 0, residual "
                               "0); exact witness re-verified in rationals", ev, sizes=list(sizes), seed=witness["seed"])


# ------------------------------------------------------------------------------------------------ C5
def claim_train_free_roots_unconstrained(fast: bool = False) -> Verdict:
    """C5: an explicit z+ root (in the domain a >= 0) that leaves the upper region and changes the piece of f_c."""
    ev = Evidence()
    witness = search_root_exit(range(20), (3, 3, 3, 1))
    statement = ("there is a ReLU net and an input x >= 0 with f_0(x) > 0 where the train-free z+ root of a layer-1 "
                 "neuron (z_j(root) = 0, root >= 0) leaves the upper activation region and the piece of f_0 as a "
                 "function of a_0 changes, with a non-zero first-order remainder (exact)")
    if witness is None:
        return Unknown(statement, "no witness found in the seeded search")
    ev.witness("root_exit", **witness)
    return Proved(statement, "explicit witness found by root_regions, re-verified independently in exact rationals",
                  ev.to_certificate(seeds=[witness["seed"]], remainder=witness["remainder"]))


# ------------------------------------------------------------------------------------------------ C4
def check_fact(ev: Evidence, case: str, expr: sp.Expr) -> bool:
    """Record a positivity fact decided by SymPy's assumption system (replayed the same way)."""
    assert_exact(expr)
    holds = bool(expr.is_positive)
    ev.witnesses.append({"kind": "positive", "case": case, "srepr": sp.srepr(expr), "expression": str(expr),
                         "holds": holds})
    return holds


def claim_softplus_has_no_root(fast: bool = False) -> Verdict:
    """C4: softplus(z) > 0 for real z; its second derivative is positive, so the 2nd-order term never vanishes."""
    z, z0 = sp.Symbol("z", real=True), sp.Symbol("z0", real=True)
    ev = Evidence()
    softplus = sp.log(1 + sp.exp(z))
    ok = check_fact(ev, "exp(z) > 0", sp.exp(z))
    ok &= check_fact(ev, "1 + exp(z) - 1 > 0, so log(1 + exp(z)) > log(1) = 0", 1 + sp.exp(z) - 1)
    ok &= check_fact(ev, "softplus(z) > 0", softplus)
    d1, d2 = sp.diff(softplus, z), sp.diff(softplus, z, 2)
    ev.identity("softplus' = sigmoid", d1 - 1 / (1 + sp.exp(-z)))
    ev.identity("softplus'' = exp(z) / (1 + exp(z))^2", d2 - sp.exp(z) / (1 + sp.exp(z)) ** 2)
    ok &= check_fact(ev, "softplus''(z0) > 0", sp.exp(z0) / (1 + sp.exp(z0)) ** 2)
    dz = sp.Symbol("dz", nonzero=True, real=True)
    ok &= check_fact(ev, "second-order term softplus''(z0)/2 * dz^2 > 0 for dz != 0",
                     sp.exp(z0) / (1 + sp.exp(z0)) ** 2 / 2 * dz ** 2)
    statement = ("softplus(z) = log(1 + exp(z)) > 0 for every real z, so c*softplus(z) has no root for c != 0; "
                 "softplus'' = exp(z)/(1+exp(z))^2 > 0, so the second-order Taylor term never vanishes (z != z0)")
    if not ok:
        return Unknown(statement, "SymPy's assumption system did not confirm a positivity fact")
    return conclude(statement, "SymPy assumption system (positivity) and derivative identities (simplify == 0)", ev)


def replay_positive(data: dict[str, Any]) -> bool:
    from .certificate import parse_srepr

    return bool(parse_srepr(data["srepr"]).is_positive)


__all__ = [
    "generic_network", "forward_on_pattern", "claim_taylor_exact_in_region", "claim_taylor_crossing_remainder",
    "claim_upper_network_bounds_valid_roots", "claim_train_free_roots_unconstrained", "claim_softplus_has_no_root",
    "replay_region_taylor", "replay_crossing", "replay_positive", "check_region_taylor",
    "crossing_witness",
]

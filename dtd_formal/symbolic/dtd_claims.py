r"""DTD-versus-gradient claims: C2 (constant roots give gradient x input), LRP-0 = gradient x input, C3.

C2, the induction over layers
-----------------------------
Hypothesis at layer m (relevance of :math:`a_m`, locally constant roots above):
:math:`R^m_j = u_j a_{m,j} - k_j` with :math:`u = \nabla_{a_m} f_c` and constants k. Base: :math:`R^L = f_c`,
u = e_c, k = 0. On the closed region (pattern :math:`D = \mathrm{diag}(d)`, :math:`d_j \in \{0, 1\}`),
:math:`R^m_j(a_{m-1}) = u_j d_j (W_j a_{m-1} + b_j) - k_j`. The Taylor step at constant roots :math:`r^{(j)}` in
the same region uses :math:`g_j = \nabla R^m_j(r^{(j)})`:

.. math::  R^{m-1}_i = \sum_j g_{ji} (a_{m-1,i} - r^{(j)}_i), \qquad
           g_j = u_j d_j W_j,\quad u' = W^\top D u = \nabla_{a_{m-1}} f_c,\quad k'_i = \sum_j g_{ji} r^{(j)}_i .

So the hypothesis holds at m-1 with u', k' (lemma L2), u' is the chain rule (L3), g and R^{m-1} do not depend
on the upper constants k (L1, L5: upper roots vanish under differentiation), and coinciding roots r give
:math:`R^{m-1} = u' \odot (a - r)` (L4). Unrolled to m = 1: :math:`R^0_i = \partial_i f_c(x)\, x_i - \sum_j
g^{(1)}_{ji} r^{(j)}_i` (only layer-1 roots enter); roots 0 give gradient x input. The lemma is checked with a
generic matrix W (``n_out x n_in`` real symbols), generic a, b, u, k, roots, for **every** 0/1 pattern d; the
general width follows because every identity is a sum over j of per-neuron terms of the same form.
The composed statement is checked on explicit nets with :func:`dtd_formal.dtd.exact_dtd`.

LRP-0 = gradient x input
------------------------
For ``Epsilon(epsilon=0, bias="zennit")`` (normaliser :math:`z_j`, bias included) the same induction, with
:math:`R^m_j = u_j d_j z_j` (no constant), gives from the rule's own ``redistribute``:
:math:`R^{m-1}_i = \sum_j a_i w_{ji} u_j d_j z_j / z_j = a_i (W^\top D u)_i` where every active :math:`z_j \ne 0`;
so :math:`R^0 = \nabla f \odot x`. With ``bias="dtd"`` (normaliser :math:`\sum_i a_i w_{ji}`) each layer conserves
instead, and differs from gradient x input when biases are non-zero (explicit witness).

C3 (input-dependent roots give any explanation)
-----------------------------------------------
On an affine piece :math:`R_j(a) = g \cdot a + c`, for any split e with :math:`\sum_i e_i = R_j(a)` the root
:math:`\tilde a_i = a_i - e_i / g_i` (:math:`g_i \ne 0`) satisfies :math:`R_j(\tilde a) = 0` and yields
:math:`g_i (a_i - \tilde a_i) = e_i`. On an explicit net, two valid root policies (every expansion conserving:
value 0 at the root, remainder 0) give different input relevances with the same output.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import sympy as sp

from ..dtd import ExactDTDResult, constant_roots, exact_dtd, gradient_times_input, lrp, rule_roots
from ..network import Network
from ..rules import LRP0, Epsilon, Gamma, Rule, WSquare, ZPlus
from ..rules.parse import parse_rule
from ..verdict import Unknown, Verdict
from .certificate import Evidence
from .ops import SympyOps
from .rule_claims import conclude
from .witnesses import fracs, small_net, strs


def _sym_vec(prefix: str, n: int) -> list[sp.Symbol]:
    return [sp.Symbol(f"{prefix}{i}", real=True) for i in range(n)]


# ------------------------------------------------------------------------------------------------ C2
def check_constant_roots_lemma(n_in: int, n_out: int, ev: Evidence) -> None:
    """Record lemmas L1-L5 (module docstring) for every 0/1 pattern of width n_out."""
    W = [[sp.Symbol(f"w{j}{i}", real=True) for i in range(n_in)] for j in range(n_out)]
    b, a = _sym_vec("b", n_out), _sym_vec("a", n_in)
    u, k = _sym_vec("u", n_out), _sym_vec("k", n_out)
    r = [[sp.Symbol(f"r{j}{i}", real=True) for i in range(n_in)] for j in range(n_out)]
    rc = _sym_vec("rc", n_in)
    for d in itertools.product((0, 1), repeat=n_out):
        def R_upper(j: int, point: Sequence[sp.Expr]) -> sp.Expr:
            return u[j] * d[j] * (sum(W[j][i] * point[i] for i in range(n_in)) + b[j]) - k[j]

        def step(roots: Sequence[Sequence[sp.Expr]]) -> tuple[list[sp.Expr], list[list[sp.Expr]]]:
            grads = []
            for j in range(n_out):
                at_root = {a[i]: roots[j][i] for i in range(n_in)}
                grads.append([sp.diff(R_upper(j, a), a[i]).xreplace(at_root) for i in range(n_in)])
            R_low = [sum(grads[j][i] * (a[i] - roots[j][i]) for j in range(n_out)) for i in range(n_in)]
            return R_low, grads

        R_low, grads = step(r)
        u_low = [sum(W[j][i] * d[j] * u[j] for j in range(n_out)) for i in range(n_in)]
        for j in range(n_out):
            for i in range(n_in):
                ev.identity(f"L1 d={d}: g_{j}{i} = u_j d_j w_ji", grads[j][i] - u[j] * d[j] * W[j][i])
        for i in range(n_in):
            k_low = sum(grads[j][i] * r[j][i] for j in range(n_out))
            ev.identity(f"L2 d={d}: R^(m-1)_{i} = u'_i a_i - k'_i", R_low[i] - (u_low[i] * a[i] - k_low))
            f_up = sum(u[j] * d[j] * (sum(W[j][q] * a[q] for q in range(n_in)) + b[j]) for j in range(n_out))
            ev.identity(f"L3 d={d}: u'_{i} = d/da_i (u . D z) (chain rule)", u_low[i] - sp.diff(f_up, a[i]))
            for j in range(n_out):
                ev.identity(f"L5 d={d}: dR^(m-1)_{i}/dk_{j} = 0", sp.diff(R_low[i], k[j]))
        R_same, _ = step([rc] * n_out)
        for i in range(n_in):
            ev.identity(f"L4 d={d}: coinciding roots give u'_{i} (a_{i} - r_{i})", R_same[i] - u_low[i] * (a[i] - rc[i]))


def _hypothesis_holds(net: Network, x: Any, result: Any) -> bool:
    """Every expansion's one-sided slope equals the input's own phase (roots' segments stay in the region)."""
    acts = net.activations(x)
    for e in result.expansions:
        if not net.has_relu(e.layer):
            continue
        z = net.weight(e.layer)[e.neuron].dot(acts[e.layer - 1]) + net.bias(e.layer)[e.neuron]
        mid = (e.root + acts[e.layer - 1]) / 2
        zm = net.weight(e.layer)[e.neuron].dot(mid) + net.bias(e.layer)[e.neuron]
        if (z > 0) != (zm > 0):
            return False
    return True


def _distinct_constant_roots(acts: list[np.ndarray]) -> Any:
    """Root policy: neuron j of layer l gets the constant point a_(l-1)(x) * (j + 1) / (j + 3) (fixed per input)."""

    def policy(layer: int, neuron: int, a: np.ndarray, net: Network) -> np.ndarray:
        return acts[layer - 1] * Fraction(neuron + 1, neuron + 3)

    return policy


def check_constant_roots_on_nets(fast: bool) -> dict[str, Any]:
    """Composed C2 on explicit nets: roots 0 (bias-free) = grad x input; general constant roots: the k formula."""
    counts = {"bias_free_inputs": 0, "general_inputs": 0, "coinciding_inputs": 0, "nets": []}
    n_inputs = 4 if fast else 10
    for seed in range(2 if fast else 4):
        for bias in (False, True):
            net = small_net(100 + seed, (3, 4, 3, 2), final_relu=bool(seed % 2), bias=bias)
            counts["nets"].append(net.to_json())
            rng = np.random.default_rng(seed)
            for _ in range(n_inputs):
                x = np.array([Fraction(int(v), 4) for v in rng.integers(-8, 9, 3)], dtype=object)
                grad = net.gradient(x, 0)
                if not bias:
                    res = exact_dtd(net, x, constant_roots(0))
                    if not np.array_equal(res.input, gradient_times_input(net, x)):
                        raise AssertionError(f"bias-free net seed {seed}: exact_dtd(roots 0) != grad x input at {x}")
                    counts["bias_free_inputs"] += 1
                # constant roots: a per-layer constant point (the input's layer activations scaled by 1/2)
                acts = net.activations(x)
                pts = {l: acts[l - 1] / 2 for l in range(1, net.n_layers + 1)}
                res = exact_dtd(net, x, constant_roots(pts))
                if not _hypothesis_holds(net, x, res):
                    continue
                layer1 = [e for e in res.expansions if e.layer == 1]
                if not layer1:
                    continue
                u0 = sum((e.gradient for e in layer1), np.array([Fraction(0)] * 3, dtype=object))
                if not np.array_equal(u0, grad):
                    raise AssertionError("sum of layer-1 gradients differs from grad f")
                k0 = sum((e.gradient * e.root for e in layer1), np.array([Fraction(0)] * 3, dtype=object))
                if not np.array_equal(res.input, grad * x - k0):
                    raise AssertionError(f"R^0 != grad f * x - k at {x}")
                # coinciding layer-1 roots: R^0 = grad f (.) (x - x~)
                if not np.array_equal(res.input, grad * (x - pts[1])):
                    raise AssertionError("coinciding roots: R^0 != grad f (x - x~)")
                counts["coinciding_inputs"] += 1
                # distinct constant roots per neuron: R^0 = grad f (.) x - sum_j g_j (.) x~^(j)
                res = exact_dtd(net, x, _distinct_constant_roots(acts))
                if not _hypothesis_holds(net, x, res):
                    continue
                layer1 = [e for e in res.expansions if e.layer == 1]
                if len({tuple(e.root) for e in layer1}) < 2:
                    continue
                k0 = sum((e.gradient * e.root for e in layer1), np.array([Fraction(0)] * 3, dtype=object))
                if not np.array_equal(res.input, grad * x - k0):
                    raise AssertionError(f"distinct roots: R^0 != grad f * x - k at {x}")
                counts["general_inputs"] += 1
    return counts


def claim_constant_roots_gradient_x_input(fast: bool = False) -> Verdict:
    """C2: the per-layer lemma for every pattern, and the composed statement on explicit nets with exact_dtd."""
    n_in, n_out = (2, 2) if fast else (3, 3)
    ev = Evidence()
    check_constant_roots_lemma(n_in, n_out, ev)
    statement = ("with locally constant in-region roots, R^0_i = grad_i f(x) x_i - sum_j [dR^1_j/dx_i] x~^(j)_i "
                 "(only layer-1 roots enter); coinciding roots x~ give grad f (.) (x - x~); roots 0 give gradient x "
                 f"input (induction lemma: generic {n_out}x{n_in} layer, every 0/1 pattern; composed statement "
                 "checked exactly with exact_dtd on explicit nets)")
    try:
        counts = check_constant_roots_on_nets(fast)
    except AssertionError as exc:
        return Unknown(statement, f"explicit-net check failed: {exc}")
    if counts["general_inputs"] == 0 or counts["bias_free_inputs"] == 0:
        return Unknown(statement, "no explicit input satisfied the hypothesis")
    ev.witness("constant_roots_nets", fast=fast, bias_free_inputs=counts["bias_free_inputs"],
               general_inputs=counts["general_inputs"], coinciding_inputs=counts["coinciding_inputs"])
    ev.notes.append(f"explicit nets: {counts['bias_free_inputs']} bias-free inputs (roots 0 = grad x input), "
                    f"{counts['coinciding_inputs']} inputs with coinciding constant layer roots in region "
                    f"(R^0 = grad f (x - x~)), {counts['general_inputs']} with distinct constant roots per neuron "
                    "(R^0 = grad f x - k)")
    return conclude(statement, "SymPy induction lemma per layer step (generic matrices, all patterns); exact_dtd on "
                               "explicit nets", ev, n_in=n_in, n_out=n_out)


def replay_constant_roots_nets(data: dict[str, Any]) -> bool:
    counts = check_constant_roots_on_nets(bool(data.get("fast", False)))
    return (counts["bias_free_inputs"] == data["bias_free_inputs"] and counts["general_inputs"] == data["general_inputs"]
            and counts["coinciding_inputs"] == data.get("coinciding_inputs", counts["coinciding_inputs"]))


# ------------------------------------------------------------------------------------------------ LRP-0
def check_lrp0_lemma(rule: Rule, n_in: int, n_out: int, ev: Evidence) -> None:
    """Per pattern d: rule.redistribute(a, W, b, u (.) D z) = a (.) W^T D u (rule's own body, SymPy ops)."""
    W = np.array([[sp.Symbol(f"w{j}{i}", real=True) for i in range(n_in)] for j in range(n_out)], dtype=object)
    b = np.array(_sym_vec("b", n_out), dtype=object)
    a = np.array(_sym_vec("a", n_in), dtype=object)
    u = _sym_vec("u", n_out)
    for d in itertools.product((0, 1), repeat=n_out):
        ops = SympyOps()
        z = W.dot(a) + b
        R = np.array([u[j] * d[j] * z[j] for j in range(n_out)], dtype=object)
        R_low = rule.redistribute(ops, a, W, b, R)
        for i in range(n_in):
            expected = a[i] * sum(W[j, i] * d[j] * u[j] for j in range(n_out))
            ev.identity(f"{rule!r} d={d}: R^(m-1)_{i} = a_i (W^T D u)_i", R_low[i] - expected, ops.conditions)


def check_dtd_conservation_layer(n_in: int, n_out: int, ev: Evidence) -> None:
    """LRP0 (bias='dtd') conserves per layer: sum R^(m-1) = sum R^m for arbitrary R^m (generic W)."""
    W = np.array([[sp.Symbol(f"w{j}{i}", real=True) for i in range(n_in)] for j in range(n_out)], dtype=object)
    b = np.array(_sym_vec("b", n_out), dtype=object)
    a = np.array(_sym_vec("a", n_in), dtype=object)
    R = np.array(_sym_vec("R", n_out), dtype=object)
    ops = SympyOps()
    R_low = LRP0().redistribute(ops, a, W, b, R)
    ev.identity("LRP0(bias='dtd') layer conservation", ops.sum(R_low) - ops.sum(R), ops.conditions)


def lrp0_witness(seeds: Sequence[int] = range(400, 440)) -> dict[str, Any] | None:
    """Explicit net with biases where LRP0 (dtd) conserves but differs from grad x input (zennit form equals it)."""
    for seed in seeds:
        net = small_net(seed, (3, 3, 1))
        rng = np.random.default_rng(seed)
        for _ in range(10):
            x = np.array([Fraction(int(v), 4) for v in rng.integers(0, 9, 3)], dtype=object)
            data = _lrp0_compare(net, x)
            if data is not None:
                data["seed"] = seed
                return data
    return None


def _lrp0_compare(net: Network, x: Any) -> dict[str, Any] | None:
    fx = net.forward(x)[0]
    if fx == 0:
        return None
    dtd_rel = lrp(net, x, LRP0())
    zen = lrp(net, x, Epsilon(epsilon=0, bias="zennit"))
    gxi = gradient_times_input(net, x)
    if any(c.dropped_neurons for c in dtd_rel.conservation + zen.conservation):
        return None
    if not all(c.conserved for c in dtd_rel.conservation) or sum(dtd_rel.input) != fx:
        return None
    if not np.array_equal(zen.input, gxi) or np.array_equal(dtd_rel.input, gxi):
        return None
    return {"network": net.to_json(), "x": strs(x), "f": strs([fx])[0], "lrp0_dtd": strs(dtd_rel.input),
            "lrp0_zennit": strs(zen.input), "gradient_x_input": strs(gxi)}


def check_lrp0_on_nets(fast: bool) -> int:
    """Epsilon(0, bias='zennit') == grad x input on explicit nets (inputs with no vanishing denominator)."""
    rule = Epsilon(epsilon=0, bias="zennit")
    count = 0
    for seed in range(2 if fast else 5):
        net = small_net(200 + seed, (3, 4, 3, 2), final_relu=bool(seed % 2))
        rng = np.random.default_rng(seed)
        for _ in range(5 if fast else 10):
            x = np.array([Fraction(int(v), 4) for v in rng.integers(-8, 9, 3)], dtype=object)
            rel = lrp(net, x, rule)
            if any(c.dropped_neurons for c in rel.conservation):
                continue
            if not np.array_equal(rel.input, gradient_times_input(net, x)):
                raise AssertionError(f"LRP0 (zennit) != grad x input on net seed {200 + seed} at {strs(x)}")
            count += 1
    return count


def claim_lrp0_equals_gradient_x_input(fast: bool = False) -> Verdict:
    """Epsilon(0, bias='zennit') = grad x input where no denominator vanishes; bias='dtd' conserves instead."""
    n_in, n_out = (2, 2) if fast else (3, 3)
    ev = Evidence()
    check_lrp0_lemma(Epsilon(epsilon=0, bias="zennit"), n_in, n_out, ev)
    check_dtd_conservation_layer(n_in, n_out, ev)
    statement = ("Epsilon(epsilon=0, bias='zennit') (biases in the denominators) equals gradient x input at every "
                 "input where no denominator vanishes (induction lemma from the rule's own body, generic "
                 f"{n_out}x{n_in} layer, every pattern; explicit nets); with bias='dtd' each layer conserves instead "
                 "and, with non-zero biases, differs from gradient x input (explicit witness)")
    try:
        n_checked = check_lrp0_on_nets(fast)
    except AssertionError as exc:
        return Unknown(statement, str(exc))
    witness = lrp0_witness()
    if witness is None or n_checked == 0:
        return Unknown(statement, "no explicit witness / no checkable input found")
    ev.witness("lrp0_bias_conventions", **witness)
    ev.notes.append(f"LRP0 (zennit) == grad x input on {n_checked} explicit inputs")
    return conclude(statement, "SymPy induction lemma over Epsilon.redistribute; exact lrp on explicit nets", ev,
                    n_in=n_in, n_out=n_out, explicit_inputs=n_checked)


def replay_lrp0_witness(data: dict[str, Any]) -> bool:
    net = Network.from_json(data["network"], "certificate network")
    fresh = _lrp0_compare(net, fracs(data["x"]))
    return fresh is not None and all(fresh[k] == data[k] for k in ("lrp0_dtd", "lrp0_zennit", "gradient_x_input"))


# ------------------------------------------------------------------------------------------------ C3
def explanation_pair(net: Network, x: Any, rule_a: Rule, rule_b: Rule,
                     results: dict[Rule, ExactDTDResult] | None = None) -> dict[str, Any] | None:
    """Both root policies valid (every expansion: value 0 at the root, remainder 0) and different R^0.

    ``results`` keeps ``exact_dtd(net, x, rule_roots(rule))`` per rule for this (net, x), so that a search over
    pairs of rules derives each rule's decomposition once.
    """
    results = {} if results is None else results
    for rule in (rule_a, rule_b):
        if rule not in results:
            results[rule] = exact_dtd(net, x, rule_roots(rule))
    ra, rb = results[rule_a], results[rule_b]
    if not (ra.conserved and rb.conserved and ra.expansions and rb.expansions):
        return None
    if np.array_equal(ra.input, rb.input):
        return None
    fx = net.forward(x)[0]
    if sum(ra.input) != fx or sum(rb.input) != fx or fx == 0:
        return None
    return {"network": net.to_json(), "x": strs(x), "f": strs([fx])[0], "rule_a": rule_a.spec(),
            "rule_b": rule_b.spec(), "relevance_a": strs(ra.input), "relevance_b": strs(rb.input)}


def claim_input_dependent_roots_any_explanation(fast: bool = False) -> Verdict:
    """C3: the root a - e/g realises any split e on the affine piece; two valid policies differ on an explicit net."""
    n = 2 if fast else 3
    ev = Evidence()
    g, a, e = _sym_vec("g", n), _sym_vec("a", n), _sym_vec("e", n - 1)
    c = sp.Symbol("c", real=True)
    R_at_a = sum(gi * ai for gi, ai in zip(g, a)) + c
    split = e + [R_at_a - sum(e)]  # sum(split) = R_j(a)
    root = [ai - ei / gi for ai, ei, gi in zip(a, split, g)]
    conds = [f"g{i} != 0" for i in range(n)]
    ev.identity("root condition R_j(root) = 0 on the affine piece",
                sum(gi * ri for gi, ri in zip(g, root)) + c, conds)
    for i in range(n):
        ev.identity(f"realised relevance g_{i} (a_{i} - root_{i}) = e_{i}", g[i] * (a[i] - root[i]) - split[i], conds)
    statement = ("for any split e with sum e = R_j(a) (g_i != 0 where e_i != 0) the root a - e/g satisfies the root "
                 f"condition on the affine piece and realises e (symbolic, n = {n}); on an explicit net two valid root "
                 "policies (every Taylor step exact) give different input relevances with the same output")
    found = None
    rules = [ZPlus(), WSquare(), LRP0(), Gamma(1.0)]
    for seed in range(30):
        net = small_net(300 + seed, (3, 3, 1))
        rng = np.random.default_rng(seed)
        for _ in range(5):
            x = np.array([Fraction(int(v), 4) for v in rng.integers(0, 9, 3)], dtype=object)
            results: dict[Rule, ExactDTDResult] = {}
            for ra, rb in itertools.combinations(rules, 2):
                found = explanation_pair(net, x, ra, rb, results)
                if found:
                    break
            if found:
                break
        if found:
            break
    if found is None:
        return Unknown(statement, "no pair of valid, different root policies found in the seeded search")
    ev.witness("two_valid_policies", **found)
    return conclude(statement, "SymPy identities (cancel == 0); exact_dtd with two rule root policies on an explicit net",
                    ev, n=n)


def replay_two_policies(data: dict[str, Any]) -> bool:
    net = Network.from_json(data["network"], "certificate network")
    fresh = explanation_pair(net, fracs(data["x"]), parse_rule(data["rule_a"]), parse_rule(data["rule_b"]))
    return fresh is not None and fresh["relevance_a"] == data["relevance_a"] and fresh["relevance_b"] == data["relevance_b"]


__all__ = [
    "check_constant_roots_lemma", "check_constant_roots_on_nets", "claim_constant_roots_gradient_x_input",
    "check_lrp0_lemma", "claim_lrp0_equals_gradient_x_input", "claim_input_dependent_roots_any_explanation",
    "replay_constant_roots_nets", "replay_lrp0_witness", "replay_two_policies",
]

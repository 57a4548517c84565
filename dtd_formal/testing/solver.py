r"""Deciding a property on one small given network with Z3, for every input of the domain.

The rule's own definition runs on Z3 terms (:class:`dtd_formal.smt.ops.Z3Ops`) over a symbolic input
:math:`x` (``x_i`` real variables constrained to the domain): the forward pass uses
:math:`a_l = \mathrm{If}(z_l > 0, z_l, 0)`, the relevance :math:`R^{l-1} = \mathrm{rule.redistribute}(Z3, a_{l-1},
W_l, b_l, R^l)` followed by :func:`dtd_formal.dtd.lrp`'s ReLU gate
(:math:`R^{l-1}_i = 0` where :math:`a_{l-1,i} = 0`, below hidden ReLU layers). The solver is asked for an input
violating the property:

- conservation: :math:`\exists x \in D, l:\ \sum R^{l-1} \ne \sum R^l`;
- positivity: :math:`\exists x, l:\ R^l \ge 0 \wedge \exists i\ R^{l-1}_i < 0`;
- root_on_hyperplane / root_in_domain: :math:`\exists x, l, j` relevant with :math:`w_j \cdot v_j \ne 0` and
  :math:`z_j(\tilde a^{(j)}) \ne 0` / :math:`\tilde a^{(j)} \notin D_l`;
- equals_gradient_x_input: :math:`\exists x` with :math:`f_c(x) \ne 0`, no relevant normaliser 0, and
  :math:`R^0 \ne \nabla f_c(x) \odot x` (masks :math:`\mathrm{If}(z > 0, 1, 0)`: relu'(0) = 0).

``unsat`` is a proof for that network (:class:`~dtd_formal.verdict.Proved`, method "z3"); ``sat`` gives a witness
that is replayed in Fractions before it becomes a :class:`~dtd_formal.verdict.Refuted`; a timeout, an irrational
witness or a witness that does not replay is :class:`~dtd_formal.verdict.Unknown`, never a pass.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import z3

from ..network import Network
from ..rules.base import Rule
from ..rules.domains import Domain
from ..smt.ops import Z3, Z3Array, domain_formula
from ..verdict import Proved, Refuted, Unknown, Verdict
from .properties import checked_layers, get_property, layer_domain

SOLVABLE = ("conservation", "positivity", "root_on_hyperplane", "root_in_domain", "equals_gradient_x_input")


def _symbolic(rule: Rule, net: Network, output: int) -> dict[str, Any]:
    """Symbolic forward pass and relevance of the rule on ``net`` (Z3 terms)."""
    x = np.empty(net.input_size, dtype=object)
    for i in range(net.input_size):
        x[i] = z3.Real(f"x{i}")
    x = x.view(Z3Array)
    acts, zs = [x], []
    a = x
    for l in range(1, net.n_layers + 1):
        z = Z3.matmul(Z3.lift(net.weight(l)), a) + Z3.lift(net.bias(l))
        zs.append(z)
        a = Z3.pos(z) if net.has_relu(l) else z
        acts.append(a)
    R = Z3.zeros_like(acts[-1])
    R[output] = acts[-1][output]
    per_layer: list[Any] = [None] * (net.n_layers + 1)
    per_layer[-1] = R
    for l in range(net.n_layers, 0, -1):
        R = rule.redistribute(Z3, acts[l - 1], Z3.lift(net.weight(l)), Z3.lift(net.bias(l)), R)
        if l > 1 and net.has_relu(l - 1):  # the ReLU gate of dtd.lrp: inactive neurons pass nothing on
            R = Z3.where(acts[l - 1] > 0, R, Z3.zero)
        per_layer[l - 1] = R
    return {"x": x, "acts": acts, "zs": zs, "R": per_layer}


def _relevant(net: Network, z: Any, layer: int, output: int) -> list[tuple[int, z3.BoolRef]]:
    """(neuron, condition under which it is relevant) of ``layer``."""
    out = []
    for j in range(len(z)):
        if layer == net.n_layers and j != output:
            continue
        cond = z[j] > 0 if net.has_relu(layer) else z3.BoolVal(True)
        out.append((j, cond))
    return out


def violation(prop: str, rule: Rule, net: Network, output: int, domain: Domain,
              positive_output: bool = True) -> tuple[z3.BoolRef, Any]:
    r"""(formula over the input variables that holds iff the property fails at x, the input variables).

    ``positive_output`` restricts x to :math:`f_c(x) \ge 0` (DTD explains a positive output; the strategies'
    default ``output_sign="positive"``)."""
    s = _symbolic(rule, net, output)
    x, acts, zs, R = s["x"], s["acts"], s["zs"], s["R"]
    layers = checked_layers(rule, net)
    bad: list[Any] = []
    if prop == "conservation":
        bad = [Z3.sum(R[l - 1]) != Z3.sum(R[l]) for l in layers]
    elif prop == "positivity":
        for l in layers:
            up = z3.And([v >= 0 for v in np.ravel(R[l])])
            bad.append(z3.And(up, z3.Or([v < 0 for v in np.ravel(R[l - 1])])))
    elif prop in ("root_on_hyperplane", "root_in_domain"):
        for l in layers:
            W, b = Z3.lift(net.weight(l)), Z3.lift(net.bias(l))
            t, V, den = rule.root_step(Z3, acts[l - 1], W, b)
            for j, cond in _relevant(net, zs[l - 1], l, output):
                root = acts[l - 1] - V[j] * t[j]
                if prop == "root_on_hyperplane":
                    fails = Z3.sum(W[j] * root) + b[j] != 0
                else:
                    fails = z3.Not(domain_formula(root, layer_domain(l, domain)))
                bad.append(z3.And(cond, den[j] != 0, fails))
    elif prop == "equals_gradient_x_input":
        g = Z3.zeros_like(acts[-1])
        g[output] = Z3.one[()]
        for l in range(net.n_layers, 0, -1):
            if net.has_relu(l):
                g = g * Z3.positive_mask(zs[l - 1])
            g = Z3.matmul(Z3.transpose(Z3.lift(net.weight(l))), g)
        pre = [acts[-1][output] != 0]
        for l in range(1, net.n_layers + 1):
            n = rule.normaliser(Z3, acts[l - 1], Z3.lift(net.weight(l)), Z3.lift(net.bias(l)))
            pre.extend(z3.Implies(cond, n[j] != 0) for j, cond in _relevant(net, zs[l - 1], l, output))
        bad = [z3.And(z3.And(pre), z3.Or([R[0][i] != g[i] * x[i] for i in range(len(x))]))]
    else:
        raise ValueError(f"no Z3 encoding for {prop!r}")
    sign = acts[-1][output] >= 0 if positive_output else z3.BoolVal(True)
    return z3.And(domain_formula(x, domain), sign, z3.Or(bad)), x


def decide(prop: str, rule: Rule, net: Network, output: int = 0, domain: Domain | None = None,
           timeout_ms: int = 2000, positive_output: bool = True) -> Verdict:
    """Decide ``prop`` on ``net`` for all inputs in ``domain`` (default: the rule's) with Z3 (module docstring)."""
    domain = rule.domain if domain is None else domain
    statement = (f"{prop} holds for {rule.spec()} on {net!r} for every input with {domain.describe()}"
                 + (f" and f_{output}(x) >= 0" if positive_output else ""))
    try:
        formula, x = violation(prop, rule, net, output, domain, positive_output)
    except Exception as exc:  # noqa: BLE001 - rule bodies that do not run on Z3 terms, unencodable domains
        return Unknown(statement, f"no Z3 encoding: {type(exc).__name__}: {exc}")
    solver = z3.Solver()
    solver.set("timeout", int(timeout_ms))
    solver.add(formula)
    result = solver.check()
    if result == z3.unsat:
        return Proved(statement, "z3 (unsat of the negation)",
                      {"network": net.to_json(), "z3": z3.get_version_string()})
    if result == z3.unknown:
        return Unknown(statement, f"z3: {solver.reason_unknown()} (timeout {timeout_ms} ms)")
    model = solver.model()
    witness = []
    for v in x:
        val = model.eval(v, model_completion=True)
        if not z3.is_rational_value(val):
            return Unknown(statement, f"z3 witness is not rational ({val}); cannot replay exactly")
        witness.append(Fraction(val.numerator_as_long(), val.denominator_as_long()))
    xw = np.empty(len(witness), dtype=object)
    xw[:] = witness
    outcome = get_property(prop).evaluate(rule, net, xw, output, domain)
    if outcome.holds:
        return Unknown(statement, f"z3 witness {[str(v) for v in witness]} does not replay in Fractions")
    return Refuted(statement, {"network": net, "input": xw, "output": output, "values": outcome.values,
                               "message": outcome.message}, method="z3 witness, replayed in Fractions")


__all__ = ["SOLVABLE", "decide", "violation"]

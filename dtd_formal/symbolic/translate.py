r"""Networks as exact SymPy expressions: the global piecewise-linear form and the per-region affine form.

Global form (:func:`to_sympy` without a pattern): with input symbols :math:`x_0..x_{n-1}`,

.. math::  a_0 = x,\quad z_l = W_l a_{l-1} + b_l,\quad a_l = \mathrm{Max}(0, z_l)\ (\text{ReLU layers}),

every ``Max`` built with ``evaluate=False`` (no Piecewise folding, no case splitting), so the expression is a DAG
of size O(number of weights). It is refused beyond :data:`MAX_GLOBAL_RELUS` ReLUs (docs/theory.md section 4: global
Piecewise forms explode beyond about 8 ReLUs) with a :class:`~dtd_formal.errors.BudgetError` that offers the
per-region form.

Rules (:func:`rule_expressions`): a rule's direction, step, root point and redistribution as SymPy expressions in
symbolic inputs, weights and biases, produced by the rule's own body (nothing re-typed).

Per-region form (:func:`to_sympy` with a pattern s): on the closed region P(s) the network is affine,
:math:`f_c(x) = g(s) \cdot x + c(s)` (from :meth:`Network.affine_map`, exact Rationals), for any network size.
:func:`symbolic_gradient` differentiates it; :func:`evaluate` substitutes an exact point (agrees with
:meth:`Network.forward`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import sympy as sp

from ..errors import BudgetError, InputError
from ..network import Network, Pattern
from ..rules.base import Rule
from .ops import SympyOps, assert_exact, to_rational, to_sympy_array

#: the largest number of ReLUs for which :func:`to_sympy` builds a global (nested Max) expression
MAX_GLOBAL_RELUS = 8


def input_symbols(n: int, prefix: str = "x") -> list[sp.Symbol]:
    """Real input symbols ``x0 .. x{n-1}``."""
    return [sp.Symbol(f"{prefix}{i}", real=True) for i in range(n)]


def to_sympy(
    net: Network,
    pattern: Pattern | None = None,
    output: int | None = None,
    symbols: Sequence[sp.Symbol] | None = None,
    max_relus: int = MAX_GLOBAL_RELUS,
) -> Any:
    """The network as exact SymPy expression(s) in the input symbols.

    Parameters
    ----------
    net : Network
    pattern : list of arrays, optional
        None: the global piecewise-linear expression (nested unevaluated ``Max``). A pattern: the affine
        expression :math:`g(s) \\cdot x + c(s)` valid on the closed region P(s).
    output : int, optional
        One output coordinate (an expression); None gives a list with one expression per output.
    symbols : sequence of Symbols, optional
        Input symbols (default :func:`input_symbols`).
    max_relus : int
        Budget for the global form.

    Raises
    ------
    BudgetError
        Global form requested for a network with more than ``max_relus`` ReLUs.
    """
    xs = list(symbols) if symbols is not None else input_symbols(net.input_size)
    if len(xs) != net.input_size:
        raise InputError(f"to_sympy: {len(xs)} symbols for a network with {net.input_size} inputs")
    outputs = range(net.output_size) if output is None else [output]
    if output is not None:
        net.check_output(output)
    if pattern is not None:
        exprs = []
        for c in outputs:
            g, c0 = net.affine_map(pattern, c)
            exprs.append(sp.Add(*[to_rational(gi) * xi for gi, xi in zip(g, xs)]) + to_rational(c0))
    else:
        if net.n_relus > max_relus:
            raise BudgetError(
                f"global symbolic expression refused: the network has {net.n_relus} ReLUs, over the budget of "
                f"{max_relus} ReLUs for a global Max/Piecewise form (docs/theory.md section 4); use the per-region form "
                "net.to_sympy(pattern) (the affine map on one closed activation region) instead"
            )
        a: list[sp.Expr] = list(xs)
        for l in range(1, net.n_layers + 1):
            W, b = to_sympy_array(net.weight(l)), to_sympy_array(net.bias(l))
            z = [sp.Add(*[W[j, i] * a[i] for i in range(len(a)) if W[j, i] != 0]) + b[j] for j in range(W.shape[0])]
            a = [sp.Max(sp.Integer(0), zj, evaluate=False) for zj in z] if net.has_relu(l) else z
        exprs = [a[c] for c in outputs]
    assert_exact(*exprs)
    return exprs[0] if output is not None else exprs


def graph_to_sympy(net: Any, pattern: dict[int, Any] | None = None, output: int | None = None,
                   symbols: Sequence[sp.Symbol] | None = None, max_units: int = MAX_GLOBAL_RELUS) -> Any:
    """An operator graph (:class:`dtd_formal.graph.GraphNetwork`) as exact SymPy expression(s).

    The graph's own evaluation runs on SymPy terms (:class:`dtd_formal.symbolic.ops.SympyOps`: ReLUs and max
    pools become ``Piecewise`` terms), so there is no second copy of any operator. ``pattern`` (as
    :meth:`GraphNetwork.pattern` gives it: ReLU signs, max-pool winner sets) fixes the piece: the affine
    expression valid on that closed region (ReLUs pass where the sign is +1, each pool takes its first winner).
    Without a pattern the global form is refused above ``max_units`` ReLU neurons plus max-pool windows.
    """
    from .ops import SympyOps

    xs = list(symbols) if symbols is not None else input_symbols(net.input_size)
    if len(xs) != net.input_size:
        raise InputError(f"to_sympy: {len(xs)} symbols for a network with {net.input_size} inputs")
    if output is not None:
        net.check_output(output)
    choices = None
    if pattern is not None:
        choices = {}
        for k, node in enumerate(net.nodes):
            if node.kind in ("relu", "maxpool") and k not in pattern:
                raise InputError(f"to_sympy: the pattern has no entry for node {k} ({node.kind} {node.name!r})")
            if node.kind == "relu":
                choices[k] = np.asarray(pattern[k]) > 0
            elif node.kind == "maxpool":
                choices[k] = [min(w) for w in pattern[k]]
    else:
        units = sum(n.n_out for n in net.nodes if n.kind in ("relu", "maxpool"))
        if units > max_units:
            raise BudgetError(f"global symbolic expression refused: the graph has {units} ReLU neurons and max-pool "
                              f"windows, over the budget of {max_units}; use to_sympy(pattern) (the affine map on "
                              "one closed region) instead")
    vals = net.evaluate(SympyOps(), np.array(xs, dtype=object), choices=choices)
    out = [sp.sympify(v) for v in vals[net.output]]
    exprs = out if output is None else [out[output]]
    assert_exact(*exprs)
    return exprs[0] if output is not None else exprs


def evaluate(expr: sp.Expr, x: Any, symbols: Sequence[sp.Symbol]) -> sp.Expr:
    """Exact value of ``expr`` at the point x (Rationals substituted, nested Max evaluated bottom-up)."""
    values = {s: to_rational(v) for s, v in zip(symbols, np.ravel(np.asarray(x, dtype=object)))}
    out = expr.xreplace(values).doit()
    assert_exact(out)
    return out


def lambdify_exact(net: Network, output: int = 0, max_relus: int = MAX_GLOBAL_RELUS) -> Any:
    """``sympy.lambdify`` of the global form with SymPy as the numeric module: exact on Rational arguments.

    ``fn = lambdify_exact(net); fn(*[Rational(...), ...])`` equals :meth:`Network.forward` exactly.
    """
    from sympy.printing.pycode import SymPyPrinter

    class _ExactPrinter(SymPyPrinter):  # lambdify would print 1/3 as a float division
        def _print_Rational(self, expr: sp.Rational) -> str:
            return f"Rational({expr.p}, {expr.q})"

        def _print_Half(self, expr: sp.Rational) -> str:
            return "Rational(1, 2)"

    xs = input_symbols(net.input_size)
    expr = to_sympy(net, output=output, symbols=xs, max_relus=max_relus)
    fn = sp.lambdify(xs, expr, modules=[{"Max": sp.Max, "Rational": sp.Rational}, "sympy"], printer=_ExactPrinter)

    def exact(*args: Any) -> sp.Expr:
        out = sp.sympify(fn(*[to_rational(v) for v in args]))
        assert_exact(out)
        return out

    return exact


def symbolic_gradient(net: Network, pattern: Pattern, output: int = 0,
                      symbols: Sequence[sp.Symbol] | None = None) -> list[sp.Expr]:
    """The gradient of :math:`f_c` on the closed region of ``pattern``, by SymPy differentiation of the affine form."""
    xs = list(symbols) if symbols is not None else input_symbols(net.input_size)
    expr = to_sympy(net, pattern, output=output, symbols=xs)
    return [sp.diff(expr, xi) for xi in xs]


def rule_expressions(rule: Rule, a: Any, W: Any, b: Any, R: Any | None = None,
                     ops: SympyOps | None = None) -> dict[str, Any]:
    r"""A rule's quantities as exact SymPy expressions, generated by running its own body with the SymPy ops.

    Parameters are numpy object arrays of symbols / numbers: a (n_in,), W (n_out, n_in), b (n_out,), R (n_out,).
    Returns ``direction`` V, ``normaliser`` n, ``redistribution`` :math:`R^{in}` (when R is given) and, for
    root-point rules, ``step`` :math:`t = z / (w \cdot v)`, ``root`` :math:`a - t_j v_j` (one row per neuron) and
    ``denominator`` :math:`w \cdot v`; ``conditions`` lists the side conditions (non-zero denominators) they hold
    under. Use sign-declared weight symbols (:func:`~dtd_formal.symbolic.ops.sign_pattern_symbols`) to get
    concrete masks.
    """
    ops = ops or SympyOps()
    a, W, b = to_sympy_array(a), to_sympy_array(W), to_sympy_array(b)
    out: dict[str, Any] = {"normaliser": rule.normaliser(ops, a, W, b)}
    if rule.has_root:
        t, V, den = rule.root_step(ops, a, W, b)
        out.update(direction=V, step=t, denominator=den,
                   root=np.array([a - t[j] * V[j] for j in range(W.shape[0])], dtype=object))
    if R is not None:
        out["redistribution"] = rule.redistribute(ops, a, W, b, to_sympy_array(R))
    out["conditions"] = list(ops.conditions)
    assert_exact(*[v for k, v in out.items() if k != "conditions"])
    return out


def pattern_affine_maps(net: Network, pattern: Pattern) -> list[tuple[sp.Matrix, sp.Matrix]]:
    """Per layer l: (A_l, c_l) as SymPy matrices with :math:`z_l = A_l x + c_l` on P(s) (exact)."""
    return [(sp.Matrix(to_sympy_array(A)), sp.Matrix(to_sympy_array(c))) for A, c in net.local_affine(pattern)]


__all__ = ["MAX_GLOBAL_RELUS", "input_symbols", "to_sympy", "evaluate", "lambdify_exact", "symbolic_gradient", "pattern_affine_maps",
           "rule_expressions"]

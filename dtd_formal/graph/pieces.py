r"""The affine pieces of an operator graph: one activation pattern's affine maps, its closed region, and the
sub-graph above a layer (the graph versions of :meth:`Network.affine_map`, ``local_affine``, ``region``, ``upper``).

A pattern (as :meth:`GraphNetwork.pattern` gives it) fixes every ReLU (sign +1 passes, -1 and 0 give 0) and every
max pool (the first winner of each window). With those choices the graph is affine, and every node value is
:math:`v_k(x) = A_k x + c_k`: ``c_k`` is the value at x = 0 and column i of ``A_k`` the value at the unit vector
:math:`e_i` minus ``c_k`` (n_in + 1 exact evaluations of the graph's own forward pass with fixed choices). The closed
region of the pattern is

.. math::  P(s) = \{x :\ s_j z_j(x) \ge 0 \text{ for every ReLU input } z_j\ (s_j = 0: z_j = 0),\quad
           v_{w^*}(x) \ge v_m(x) \text{ for every max-pool window and position } m\}

returned as exact (A, b) with :math:`P(s) = \{x : A x \le b\}`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import InputError
from ..network import sign_rows
from ..rules.ops import EXACT
from .network import GraphNetwork, backward_gradient


def choices_of(net: GraphNetwork, pattern: dict[int, Any]) -> dict[int, Any]:
    """Fixed choices of a pattern: ReLU pass masks (sign > 0) and each window's first winner."""
    out: dict[int, Any] = {}
    for k, node in enumerate(net.nodes):
        if node.kind not in ("relu", "maxpool"):
            continue
        if k not in pattern:
            raise InputError(f"the pattern has no entry for node {k} ({node.kind} {node.name!r})")
        if node.kind == "relu":
            s = np.asarray(pattern[k])
            if s.shape != (node.n_out,):
                raise InputError(f"pattern entry of node {k} ({node.name!r}) has shape {s.shape}, need ({node.n_out},)")
            out[k] = s > 0
        else:
            wins = list(pattern[k])
            if len(wins) != node.n_out or not all(wins):
                raise InputError(f"pattern entry of node {k} ({node.name!r}) needs a non-empty winner set per window")
            out[k] = [min(w) for w in wins]
    return out


def piece_maps(net: GraphNetwork, pattern: dict[int, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(A_k, c_k) of every node value on the pattern's piece (module docstring), exact Fractions."""
    ch = choices_of(net, pattern)
    n = net.input_size
    zero = np.array([Fraction(0)] * n, dtype=object)
    base = net.evaluate(EXACT, zero, choices=ch)
    cols: list[list[np.ndarray]] = [[] for _ in net.nodes]
    for i in range(n):
        e = zero.copy()
        e[i] = Fraction(1)
        vals = net.evaluate(EXACT, e, choices=ch)
        for k, v in enumerate(vals):
            cols[k].append(np.asarray(v, dtype=object) - base[k])
    return [(np.array(c, dtype=object).T.reshape(len(base[k]), n), np.asarray(base[k], dtype=object))
            for k, c in enumerate(cols)]


def graph_affine_map(net: GraphNetwork, pattern: dict[int, Any], output: int = 0) -> tuple[np.ndarray, Fraction]:
    """(g, c) with :math:`f_c(x) = g \\cdot x + c` on the pattern's closed region (one backward pass)."""
    net.check_output(output)
    ch = choices_of(net, pattern)
    zero = np.array([Fraction(0)] * net.input_size, dtype=object)
    vals = net.evaluate(EXACT, zero, choices=ch)
    g = backward_gradient(net, EXACT, vals, output, masks=ch)
    return np.asarray(g, dtype=object), Fraction(vals[net.output][output])


def graph_region(net: GraphNetwork, pattern: dict[int, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The closed region of ``pattern`` as exact (A, b), :math:`\\{x : A x \\le b\\}` (module docstring); rows:
    ReLU inputs in graph order (s = +1: -z <= 0, s = -1: z <= 0, s = 0: both), then max-pool windows."""
    maps = piece_maps(net, pattern)
    ch = choices_of(net, pattern)
    rows: list[np.ndarray] = []
    rhs: list[Fraction] = []
    for k, node in enumerate(net.nodes):
        if node.kind == "relu":
            A, c = maps[node.inputs[0]]
            sign_rows(A, c, pattern[k], rows, rhs)
        elif node.kind == "maxpool":
            A, c = maps[node.inputs[0]]
            for w, m_star in enumerate(ch[k]):
                win = node.idx[w]  # type: ignore[attr-defined]
                top = int(win[m_star])
                for m, i in enumerate(win):
                    if int(i) != top:  # v_i - v_top <= 0
                        rows.append(A[int(i)] - A[top])
                        rhs.append(c[top] - c[int(i)])
    if not rows:
        return np.zeros((0, net.input_size), dtype=object), np.zeros(0, dtype=object)
    return np.array(rows, dtype=object), np.array(rhs, dtype=object)


def graph_upper(net: GraphNetwork, layer: int) -> GraphNetwork:
    """The sub-graph above layer l: its input is layer l's input node, its layer 1 is layer l. Refused when
    another branch reaches over that cut (a residual skip from below layer l)."""
    from .explain import downstream
    from .operators import Input

    import copy

    info = net.layer(layer)
    start = info.input_node
    live = downstream(net, start)
    if net.output not in live:
        raise InputError(f"layer {layer}: the output does not depend on its input")
    keep = [k for k in range(len(net.nodes)) if k in live]
    for k in keep:
        outside = [i for i in net.nodes[k].inputs if i not in live]
        if k != start and outside:
            raise InputError(f"layer {layer}: node {net.nodes[k].name!r} also reads {net.nodes[outside[0]].name!r} "
                             "from below the layer (a skip connection), so the graph has no sub-graph above it")
    new_id = {k: r for r, k in enumerate(keep)}
    nodes = []
    for k in keep:
        node = net.nodes[k]
        if k == start:
            nodes.append(Input(node.name, [], node.shape))
            continue
        clone = copy.copy(node)
        clone.__dict__.pop("converted", None)
        clone.inputs = [new_id[i] for i in node.inputs]
        nodes.append(clone)
    return GraphNetwork(nodes, new_id[net.output], metadata={"upper_of": layer})


__all__ = ["choices_of", "piece_maps", "graph_affine_map", "graph_region", "graph_upper"]

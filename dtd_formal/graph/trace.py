r"""One walk on an operator graph with the interface of :class:`dtd_formal.walk.Trace`, so that the property
catalogue (:mod:`dtd_formal.properties`) evaluates its checks on convolutional and residual networks from the same
definitions.

What a property reads, on a graph:

- ``acts[l - 1]`` the input of layer l (the whole tensor, flat), ``acts[-1]`` the network output;
- ``relevance[l]`` the relevance of layer l's output (``relevance[0]``: of the input), ``steps`` the layers' steps
  (the rule's raw redistribution is ``lower_raw``), from :func:`dtd_formal.graph.explain.graph_relevance`;
- ``layer_view(l)``: the (ops, a, W, b) a rule method is called with (patch form and :class:`PatchOps` on conv
  layers); ``preactivation_at(l, j, point)``: :math:`z_j` at a point of layer l's input space;
- ``relevant(l)``, ``roots(l)`` (the points in the whole input space of the layer: the layer input with the
  neuron's receptive field moved), ``normaliser(l)``, ``gradient``.

Over Z3 terms (:class:`dtd_formal.smt.ops.Z3Ops`) the same walk is the graph's Z3 encoding
(:func:`dtd_formal.smt.violations.graph_violation_query`): ``hook`` is :meth:`GraphNetwork.evaluate`'s forward hook
(named node values, ReLU phases fixed by interval bounds), and max pools are first pinned to one winner per window
(:meth:`GraphNetwork.with_winners`, an arg-max case split) since their winner-take-all backward pass reads exact
values.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from ..rules.base import Rule
from ..rules.composites import Composite, rule_for_layer
from ..walk import RootStep, call_rule
from .network import GraphNetwork, backward_gradient


class GraphTrace:
    """The walk of ``rule`` on the graph ``net`` at x in one ops namespace (module docstring); lazy.

    Parameters
    ----------
    ops : ops namespace (exact, float64, Z3)
    net : the graph
    x : the input (flat, numbers of ``ops``)
    rule : the rule or composite explaining every layer
    output : explained output c
    hook : optional forward hook ``hook(node, value) -> value`` of :meth:`GraphNetwork.evaluate` (the Z3 encoding
        names every node's value there and encodes ReLU phases)
    """

    def __init__(self, ops: Any, net: GraphNetwork, x: Any, rule: Rule | Composite, output: int,
                 hook: Any = None) -> None:
        self.ops, self.net, self.x, self.rule, self.output = ops, net, x, rule, output
        self.n_layers = net.n_layers
        self.vals = net.evaluate(ops, x, hook=hook)
        self.acts = [self.vals[info.input_node] for info in net.layers] + [self.vals[net.output]]
        self._roots: dict[tuple[int, str], RootStep] = {}
        self._normalisers: dict[int, Any] = {}

    @cached_property
    def _backward(self) -> tuple[list[Any], list[Any]]:
        from .explain import graph_relevance

        return graph_relevance(self.ops, self.net, self.vals, self.rule, self.output)

    @property
    def steps(self) -> list[Any]:
        return self._backward[1]

    @cached_property
    def relevance(self) -> list[Any]:
        R = self._backward[0]
        return [R[0]] + [R[info.node] for info in self.net.layers]

    def rule_at(self, layer: int) -> Rule:
        from .explain import _kind

        return rule_for_layer(self.rule, layer, self.n_layers, _kind(self.net, layer))

    def layer_view(self, layer: int) -> tuple[Any, Any, Any, Any]:
        from .explain import layer_view

        return layer_view(self.net, self.ops, layer, self.vals)

    def relevant(self, layer: int) -> list[tuple[int, Any]]:
        info = self.net.layer(layer)
        z = self.vals[info.node]
        if self.net.output in (info.node, info.relu_node):
            return [(self.output, z[self.output] > 0 if info.relu_node is not None else True)]
        return [(j, z[j] > 0 if info.relu_node is not None else True) for j in range(len(z))]

    def roots(self, layer: int, definition: str = "true") -> RootStep:
        from .explain import graph_layer_roots

        key = (layer, definition)
        if key not in self._roots:
            n = self.net.nodes[self.net.layer(layer).node].n_out
            R = self.relevance[layer] if definition == "paper-code" else None
            lr = graph_layer_roots(self.net, self.ops, self.vals, layer, self.rule_at(layer), list(range(n)), R,
                                   definition)
            points = np.array([lr.point(k) for k in range(n)], dtype=object)
            self._roots[key] = RootStep(lr.t, lr.V, lr.den, points)
        return self._roots[key]

    def preactivation_at(self, layer: int, j: int, point: Any) -> Any:
        node = self.net.nodes[self.net.layer(layer).node]
        ops = self.ops
        if node.kind == "conv":
            Wg, b = node.arrays(ops)  # type: ignore[attr-defined]
            ids = node.idx[j]  # type: ignore[attr-defined]
            valid = ids >= 0
            return ops.sum(Wg[j][valid] * np.asarray(point, dtype=object)[ids[valid]]) + b[j]
        W, b = node.arrays(ops)  # type: ignore[attr-defined]
        return ops.sum(W[j] * point) + b[j]

    def normaliser(self, layer: int) -> Any:
        if layer not in self._normalisers:
            lops, a, W, b = self.layer_view(layer)
            n = self.net.nodes[self.net.layer(layer).node].n_out
            self._normalisers[layer] = call_rule(self.rule_at(layer), "normaliser", lops, a, W, b, layer=layer,
                                                 shapes=[(n,)])
        return self._normalisers[layer]

    @cached_property
    def gradient(self) -> Any:
        return backward_gradient(self.net, self.ops, self.vals, self.output)


__all__ = ["GraphTrace"]

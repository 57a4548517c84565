"""The dense unrolled twin of an operator graph (tests only): an independent reference for graph engines."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from dtd_formal.graph import GraphNetwork
from dtd_formal.network import Network
from dtd_formal.rules.ops import EXACT


def unrolled_twin(net: GraphNetwork) -> Network:
    """The dense network of a graph whose layers are affine operators with a ReLU (and index maps between them),
    built from the graph's forward pass on unit vectors (:math:`W e_i = z(e_i) - z(0)`), exactly."""
    weights, biases = [], []
    for info in net.layers:
        node = net.nodes[info.node]
        zero = np.array([Fraction(0)] * net.nodes[info.input_node].n_out, dtype=object)
        b = node.forward(EXACT, [zero])
        cols = []
        for i in range(len(zero)):
            e = zero.copy()
            e[i] = Fraction(1)
            cols.append(node.forward(EXACT, [e]) - b)
        weights.append(np.array(cols, dtype=object).T)
        biases.append(b)
    return Network(weights, biases)

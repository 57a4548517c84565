"""Small hand-made operator graphs shared by the graph tests (values derived by hand in the tests that use them)."""

from __future__ import annotations

from fractions import Fraction

from dtd_formal.graph import GraphBuilder, GraphNetwork


def pool_net() -> GraphNetwork:
    """z0 = 2 x0, z1 = -x0 + x1 + 1/2, relu, max over the two, y = the max."""
    g = GraphBuilder((2,))
    h = g.relu(g.dense(g.input, [[2, 0], [-1, 1]], [0, Fraction(1, 2)]))
    p = g.maxpool(g.reshape(h, (1, 2)), (2,), name="pool")
    return g.network(g.dense(g.flatten(p), [[1]], [0]))

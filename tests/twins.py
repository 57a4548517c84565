"""Slow textbook twins shared by the tests: plain-loop forward pass and back-propagation in Fractions.

They read a Network's weights but use none of its methods, so they are independent references."""

from __future__ import annotations

from fractions import Fraction as F

from dtd_formal.network import Network


def twin_forward(net: Network, x) -> tuple[list[list[F]], list[list[F]]]:  # type: ignore[no-untyped-def]
    """(pre-activations z_1..z_L, activations a_0..a_L), each a list of Fractions, by loops."""
    a = [F(v) for v in x]
    acts, zs = [a], []
    for l in range(1, net.n_layers + 1):
        W, b = net.weight(l), net.bias(l)
        z = [sum((F(W[j][i]) * a[i] for i in range(len(a))), F(b[j])) for j in range(W.shape[0])]
        zs.append(z)
        a = [max(v, F(0)) for v in z] if net.has_relu(l) else z
        acts.append(a)
    return zs, acts


def twin_gradient(net: Network, x, c: int = 0) -> list[F]:  # type: ignore[no-untyped-def]
    """Back-propagation of f_c in loops, relu'(0) = 0."""
    zs, _ = twin_forward(net, x)
    g = [F(int(k == c)) for k in range(net.output_size)]
    for l in range(net.n_layers, 0, -1):
        if net.has_relu(l):
            g = [g[j] if zs[l - 1][j] > 0 else F(0) for j in range(len(g))]
        W = net.weight(l)
        g = [sum((g[j] * F(W[j][i]) for j in range(W.shape[0])), F(0)) for i in range(W.shape[1])]
    return g

"""The exact convolution through integers over common denominators (Conv._integer_forward) against a textbook sum
of rational products over the patch form, on non-dyadic kernels and inputs, and its fall-back."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import dtd_formal.graph.operators as operators
from dtd_formal.graph import GraphBuilder
from dtd_formal.rules.ops import EXACT, FAST_EXACT


def _conv():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    g = GraphBuilder((2, 4, 5))
    kernel = [[[[Fraction(int(n), int(d)) for n, d in zip(row, dens)] for row, dens in zip(plane, plane_d)]
               for plane, plane_d in zip(ch, ch_d)]
              for ch, ch_d in zip(rng.integers(-9, 10, (3, 2, 2, 3)), rng.integers(1, 12, (3, 2, 2, 3)))]
    bias = [Fraction(1, 3), Fraction(-2, 7), Fraction(5, 11)]
    node = g.conv(g.input, kernel, bias, strides=[1, 2], pads=[1, 1, 0, 1])
    net = g.network(g.flatten(node))
    return net, net.nodes[node]


def _textbook(node, a: list[Fraction]) -> list[Fraction]:  # type: ignore[no-untyped-def]
    return [sum((node.weights[j, m] * a[int(node.idx[j, m])] for m in range(node.idx.shape[1])
                 if node.idx[j, m] >= 0), Fraction(0)) + node.b[j] for j in range(node.idx.shape[0])]


@pytest.mark.parametrize("ops", [EXACT, FAST_EXACT], ids=["Fraction", "gmpy2"])
def test_integer_forward_equals_the_rational_patch_sums(ops) -> None:  # type: ignore[no-untyped-def]
    net, node = _conv()
    rng = np.random.default_rng(6)
    a = [Fraction(int(n), int(d)) for n, d in zip(rng.integers(-20, 21, net.input_size),
                                                   rng.integers(1, 30, net.input_size))]
    arr = np.array(a if ops is EXACT else [ops.rational(v.numerator, v.denominator) for v in a], dtype=object)
    got = node._integer_forward(ops, arr, operators.converted(node, ops, ("b",))[0])
    assert got is not None  # small denominators: the integer path ran
    assert [Fraction(int(v.numerator), int(v.denominator)) for v in got] == _textbook(node, a)
    if ops is EXACT:  # Fractions built of Python ints (a gmpy2 integer inside a Fraction breaks SymPy and JSON)
        assert all(type(v) is Fraction and type(v.numerator) is int and type(v.denominator) is int for v in got)
    assert list(node.forward(ops, [arr])) == list(got)


def test_large_denominators_fall_back_to_the_rational_path(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    net, node = _conv()
    a = np.array([Fraction(1, 3 ** (k + 1)) for k in range(net.input_size)], dtype=object)
    monkeypatch.setattr(operators, "INTEGER_FORWARD_BITS", 16)  # the input's lcm 3^40 has 64 bits
    assert node._integer_forward(EXACT, a, node.b) is None
    assert list(node.forward(EXACT, [a])) == _textbook(node, list(a))

"""Residues modulo a prime (dtd_formal.graph.modular) and the sparse patch matrices of conv / average-pool operators
used for them: each residue checked against its defining congruence, each sparse product against a textbook loop
over the patch form in Python integers."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from dtd_formal.graph import GraphBuilder
from dtd_formal.graph.modular import MOD, NotInvertible
from dtd_formal.graph.network import backward_gradient
from dtd_formal.graph.operators import patch_matrix, transposed_patch_matrix
from dtd_formal.rules.ops import EXACT as EXACT_OPS

P = MOD.p


def test_lift_satisfies_the_congruence_for_every_entry() -> None:
    rng = np.random.default_rng(3)
    values = [Fraction(int(n), int(d)) for n, d in zip(rng.integers(-10**12, 10**12, 200), rng.integers(1, 10**6, 200))]
    values += [Fraction(-7, 3), Fraction(5, 2**70), Fraction(2**90 + 1, 9), Fraction(0)]
    res = MOD.lift(np.array(values, dtype=object).reshape(4, -1)).ravel()
    assert res.dtype == np.int64 and res.shape == (len(values),)
    for r, v in zip(res.tolist(), values):
        assert 0 <= r < P and (r * v.denominator - v.numerator) % P == 0, v


def test_lift_refuses_a_denominator_divisible_by_the_prime() -> None:
    with pytest.raises(NotInvertible, match=str(P)):
        MOD.lift(np.array([Fraction(1, 2), Fraction(3, 2 * P)], dtype=object))


def _conv_net():  # type: ignore[no-untyped-def]
    """Strided, padded, grouped conv, then an average pool with padding (count_include_pad off: weights 1/count)."""
    rng = np.random.default_rng(0)
    g = GraphBuilder((4, 5, 6))
    kernel = [[[[Fraction(int(v), 7) for v in row] for row in plane] for plane in ch]
              for ch in rng.integers(-9, 10, (6, 2, 3, 2))]
    c = g.conv(g.input, kernel, [Fraction(int(v), 5) for v in rng.integers(-4, 5, 6)], strides=[2, 1],
               pads=[1, 0, 1, 1], groups=2)
    a = g.avgpool(c, [2, 2], strides=[1, 2], pads=[0, 1, 1, 0])
    return g.network(g.flatten(a))


def _textbook_forward(node, a: list[int]) -> list[int]:  # type: ignore[no-untyped-def]
    """z_j = sum_m C_jm a[idx_jm] (+ b_j), residues of the exact patch weights, Python ints, mod p at the end."""
    C, b = node.arrays(MOD)
    out = []
    for j in range(node.idx.shape[0]):
        s = sum(int(C[j, m]) * a[int(node.idx[j, m])] for m in range(node.idx.shape[1]) if node.idx[j, m] >= 0)
        out.append((s + (int(b[j]) if b is not None else 0)) % P)
    return out


def _textbook_transposed(node, g: list[int], n_in: int) -> list[int]:  # type: ignore[no-untyped-def]
    C, _ = node.arrays(MOD)
    out = [0] * n_in
    for j in range(node.idx.shape[0]):
        for m in range(node.idx.shape[1]):
            if node.idx[j, m] >= 0:
                out[int(node.idx[j, m])] += int(C[j, m]) * g[j]
    return [v % P for v in out]


def test_sparse_patch_products_equal_the_patch_sums_in_residues() -> None:
    net = _conv_net()
    rng = np.random.default_rng(1)
    checked = 0
    for node in net.nodes:
        if node.kind not in ("conv", "avgpool"):
            continue
        n_in = int(np.prod(net.nodes[node.inputs[0]].shape))
        a = rng.integers(0, P, n_in).astype(np.int64)
        g = rng.integers(0, P, node.idx.shape[0]).astype(np.int64)
        got = np.mod(node.forward(MOD, [a]), P)
        assert got.tolist() == _textbook_forward(node, a.tolist()), node.name
        back = np.mod(transposed_patch_matrix(node, MOD, n_in) @ g, P)
        assert back.tolist() == _textbook_transposed(node, g.tolist(), n_in), node.name
        assert patch_matrix(node, MOD, n_in).nnz == int((node.idx >= 0).sum())  # no entry dropped or merged
        checked += 1
    assert checked == 2


def test_residue_gradient_is_the_residue_of_the_exact_gradient() -> None:
    """The backward pass in residues (sparse transposed patches) against the exact gradient lifted afterwards."""
    from dtd_formal.rules.ops import FAST_EXACT

    net = _conv_net()
    x = np.array([Fraction(int(v), 3) for v in np.random.default_rng(2).integers(-5, 6, net.input_size)],
                 dtype=object)
    exact_vals = net.evaluate(FAST_EXACT, x)
    exact = backward_gradient(net, FAST_EXACT, exact_vals, output=4)
    mod_vals = [MOD.lift(v) for v in exact_vals]
    residues = backward_gradient(net, MOD, mod_vals, output=4, hook=lambda k, v: MOD.reduce(v))
    assert np.mod(residues, P).tolist() == MOD.lift(exact).tolist()
    assert any(v != 0 for v in exact)  # a gradient that is not identically zero


def test_each_prime_has_its_own_cached_residues() -> None:
    """The operators cache converted arrays per ops name: a second prime must not reuse the first one's residues."""
    from dtd_formal.graph.modular import ModOps

    net = _conv_net()
    conv = next(n for n in net.nodes if n.kind == "conv")
    n_in = int(np.prod(net.nodes[conv.inputs[0]].shape))
    a = np.arange(1, n_in + 1, dtype=np.int64)
    for ops in (MOD, ModOps(1_000_003), MOD):
        got = np.mod(conv.forward(ops, [a]), ops.p)
        exact = conv.forward(EXACT_OPS, [np.array([Fraction(int(v)) for v in a], dtype=object)])
        assert got.tolist() == ModOps(ops.p).lift(exact).tolist(), ops.p

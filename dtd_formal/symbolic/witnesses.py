r"""Explicit small networks and exactly re-verified witnesses for the existence claims.

- :func:`small_net`: a seeded network with weights k/4 (k integer in [-4, 4]): exact, small denominators.
- :func:`verify_root_exit`: the independent exact check of a root-exit witness. For neuron j of layer l with
  layer input :math:`a = a_{l-1}`, z+ direction :math:`v_i = a_i [w_i > 0]` (written out here, not taken from the
  rule code), :math:`t = z_j / (w_j \cdot v)`, root :math:`\tilde a = a - t v`, it checks in SymPy Rationals:
  :math:`z_j(\tilde a) = 0`; the root is in the domain a >= 0; the signs of the upper network (layers l..L, j held
  active) strictly flip for some other neuron; the affine pieces :math:`F = g \cdot a + c` of :math:`f_c` (as a
  function of :math:`a_{l-1}`, j active) at the input and at the root differ; and the first-order expansion from
  the root's piece misses the value at the input:

  .. math::  r = F(a) - F(\tilde a) - g_{\tilde a} \cdot (a - \tilde a) \ne 0 .
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import sympy as sp

from ..network import Network
from .ops import to_rational


def small_net(seed: int, sizes: Sequence[int], final_relu: bool = False, bias: bool = True) -> Network:
    """Seeded network with weights and biases k/4, k in [-4, 4] (biases 0 when ``bias`` is False)."""
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        weights.append([[Fraction(int(v), 4) for v in row] for row in rng.integers(-4, 5, (n_out, n_in))])
        biases.append([Fraction(int(v), 4) if bias else Fraction(0) for v in rng.integers(-4, 5, n_out)])
    return Network(weights, biases, final_relu=final_relu, metadata={"seed": seed, "generator": "small_net"})


def strs(values: Any) -> list[str]:
    """Exact values as "num/den" strings."""
    return [str(Fraction(v) if not isinstance(v, sp.Basic) else Fraction(int(v.p), int(v.q)))
            for v in np.ravel(np.asarray(values, dtype=object))]


def fracs(values: Sequence[str]) -> np.ndarray:
    return np.array([Fraction(v) for v in values], dtype=object)


def _upper_pass(net: Network, layer: int, point: list[sp.Rational], neuron: int) -> tuple[list[list[int]], sp.Rational]:
    """Signs of z_m (m = layer..L) at ``point`` with ``neuron`` of ``layer`` held linear, and the outputs."""
    a = list(point)
    signs = []
    for m in range(layer, net.n_layers + 1):
        W, b = net.weight(m), net.bias(m)
        z = [sp.Add(*[to_rational(W[r, i]) * a[i] for i in range(len(a))]) + to_rational(b[r]) for r in range(W.shape[0])]
        signs.append([int(sp.sign(v)) for v in z])
        if net.has_relu(m):
            a = [v if (v > 0 or (m == layer and r == neuron)) else sp.Integer(0) for r, v in enumerate(z)]
        else:
            a = z
    return signs, a  # type: ignore[return-value]


def _resolve(own: list[int], other: list[int]) -> list[int]:
    out = [o if o != 0 else t for o, t in zip(own, other)]
    return [-1 if v == 0 else v for v in out]


def verify_root_exit(net: Network, x: Any, layer: int, neuron: int, output: int = 0,
                     require_layer_pattern_kept: bool = False) -> dict[str, Any] | None:
    """Exact, independent check of a z+ root-exit witness (module docstring); the witness data, or None."""
    a = [to_rational(v) for v in net.activations(x)[layer - 1]]
    w = [to_rational(v) for v in net.weight(layer)[neuron]]
    b = to_rational(net.bias(layer)[neuron])
    z = sp.Add(*[wi * ai for wi, ai in zip(w, a)]) + b
    if not z > 0:
        return None
    v = [ai if wi > 0 else sp.Integer(0) for wi, ai in zip(w, a)]
    den = sp.Add(*[wi * vi for wi, vi in zip(w, v)])
    if den == 0:
        return None
    t = z / den
    root = [ai - t * vi for ai, vi in zip(a, v)]
    own = sp.Add(*[wi * ri for wi, ri in zip(w, root)]) + b
    if own != 0 or any(r < 0 for r in root):
        return None
    s_in, f_in = _upper_pass(net, layer, a, neuron)
    s_rt, f_rt = _upper_pass(net, layer, root, neuron)
    flipped = [(layer + k, r) for k in range(len(s_in)) for r in range(len(s_in[k]))
               if s_in[k][r] * s_rt[k][r] < 0 and not (k == 0 and r == neuron)]
    if not flipped:
        return None
    layer_kept = not any(m == layer for m, _ in flipped)
    if require_layer_pattern_kept and not layer_kept:
        return None
    upper = net.upper(layer)
    relu_k = [k for k in range(len(s_in)) if net.has_relu(layer + k)]
    p_in = [np.array(_resolve(s_in[k], s_rt[k]), dtype=np.int8) for k in relu_k]
    p_rt = [np.array(_resolve(s_rt[k], s_in[k]), dtype=np.int8) for k in relu_k]
    if relu_k and relu_k[0] == 0:
        p_in[0][neuron] = p_rt[0][neuron] = 1
    g_in, c_in = upper.affine_map(p_in, output)
    g_rt, c_rt = upper.affine_map(p_rt, output)
    g_in, g_rt = [to_rational(v) for v in g_in], [to_rational(v) for v in g_rt]
    c_in, c_rt = to_rational(c_in), to_rational(c_rt)
    F_in = sp.Add(*[g * ai for g, ai in zip(g_in, a)]) + c_in
    F_rt = sp.Add(*[g * ri for g, ri in zip(g_rt, root)]) + c_rt
    # the pieces must reproduce the forced forward values (independent pass above)
    if F_in != f_in[output] or F_rt != f_rt[output]:
        return None
    if g_in == g_rt and c_in == c_rt:
        return None
    remainder = F_in - F_rt - sp.Add(*[g * (ai - ri) for g, ai, ri in zip(g_rt, a, root)])
    if remainder == 0:
        return None
    return {
        "network": net.to_json(), "input": strs(net.as_input(x)), "layer": layer, "neuron": neuron, "output": output,
        "layer_input": strs(a), "step": strs([t])[0], "root": strs(root), "flipped": [list(p) for p in flipped],
        "layer_pattern_kept": layer_kept, "gradient_at_input_piece": strs(g_in), "offset_at_input_piece": strs([c_in])[0],
        "gradient_at_root_piece": strs(g_rt), "offset_at_root_piece": strs([c_rt])[0],
        "relevance_function_at_input": strs([F_in])[0], "relevance_function_at_root": strs([F_rt])[0],
        "remainder": strs([remainder])[0],
    }


def search_root_exit(seeds: Sequence[int], sizes: Sequence[int], n_inputs: int = 8, final_relu: bool = False,
                     require_layer_pattern_kept: bool = False, layers: Sequence[int] = (1,)) -> dict[str, Any] | None:
    """Seeded search over small nets and non-negative inputs k/4 for a verified z+ root-exit witness."""
    from ..regions import root_regions
    from ..rules import ZPlus

    for seed in seeds:
        net = small_net(seed, sizes, final_relu=final_relu)
        rng = np.random.default_rng(1000 + seed)
        xs = [[Fraction(int(v), 4) for v in rng.integers(0, 9, sizes[0])] for _ in range(n_inputs)]
        report = root_regions(net, xs, ZPlus(), scope="upper", layers=list(layers))
        for rec in report.records:
            if not (rec.leaves_affine_map and rec.root_in_domain):
                continue
            if not net.forward(xs[rec.input_index])[0] > 0:  # explain a positive output
                continue
            data = verify_root_exit(net, xs[rec.input_index], rec.layer, rec.neuron,
                                    require_layer_pattern_kept=require_layer_pattern_kept)
            if data is not None and strs(rec.root) == data["root"]:
                data["seed"] = seed
                return data
    return None


def replay_root_exit(data: dict[str, Any]) -> bool:
    """Re-verify a stored root-exit witness exactly and compare every stored value."""
    net = Network.from_json(data["network"], "certificate network")
    fresh = verify_root_exit(net, fracs(data["input"]), int(data["layer"]), int(data["neuron"]), int(data["output"]),
                             require_layer_pattern_kept=bool(data.get("layer_pattern_kept", False)))
    if fresh is None:
        return False
    keys = ("root", "step", "flipped", "gradient_at_input_piece", "gradient_at_root_piece", "remainder")
    return all(fresh[k] == data[k] for k in keys)


__all__ = ["small_net", "strs", "fracs", "verify_root_exit", "search_root_exit", "replay_root_exit"]

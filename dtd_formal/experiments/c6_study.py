r"""The C6 study (docs/theory.md, C6): how many train-free DTD roots leave the input's region on the paper's MLP.

For each rule (LRP-0 line, z+, gamma = 1, w^2), each layer l and each root definition ("true":
:math:`z_j(\tilde a) = 0`; "paper-code": :math:`t = R_j / (w_j \cdot v_j)`), the exact fractions of roots that

- leave the input's activation pattern, scope "layer" (layer l only) and "upper" (layers l..L),
- change the affine map of :math:`f_c` as a function of :math:`a_{l-1}`,
- change the output: :math:`f_c` computed from the root differs from :math:`f_c(x)`,
- lie in the rule's domain,

all decided exactly by :func:`dtd_formal.root_regions`. Beside them, the paper code's own test is replicated: it
calls a root "in the same region" when the float32 gradients of :math:`f_c` with respect to the layer input at
the input and at the root are equal up to ``numpy.allclose`` tolerances; the study reports how often that float
test disagrees with the exact affine-map verdict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from ..exact import to_float
from ..examples import STUDY_SEED, PaperInit, paper_inputs, paper_mlp
from ..network import Network
from ..rules.ops import FAST_EXACT
from ..walk import forward
from ..exact import to_fast
from ..certified import UNIT_ROUNDOFF, certified_float_forward
from ..regions import root_regions
from ..rules import LRP0, Gamma, Rule, WSquare, ZPlus

STUDY_RULES: dict[str, Rule] = {"lrp0": LRP0(), "zplus": ZPlus(), "gamma:1": Gamma(1), "wsquare": WSquare()}


@dataclass
class StudyCell:
    """Exact counts for one (rule, definition, layer)."""

    rule: str
    definition: str
    layer: int
    roots: int
    leaves_pattern_layer: int
    leaves_pattern_upper: int
    leaves_affine_map: int
    output_changed: int
    root_in_domain: int
    float_test_says_left: int  #: paper code's float32 gradient test says "left the region"
    float_test_disagrees: int  #: ... and the exact affine-map verdict says otherwise (or vice versa)

    def fractions(self) -> dict[str, Fraction | None]:
        keys = ("leaves_pattern_layer", "leaves_pattern_upper", "leaves_affine_map", "output_changed",
                "root_in_domain", "float_test_says_left", "float_test_disagrees")
        return {k: (Fraction(getattr(self, k), self.roots) if self.roots else None) for k in keys}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "definition": self.definition, "layer": self.layer,
                               "roots": self.roots}
        for k, v in self.fractions().items():
            out[k] = None if v is None else {"exact": f"{v.numerator}/{v.denominator}", "float": float(v),
                                             "count": getattr(self, k)}
        return out


def _upper_grad_float32(net: Network, layer: int, points: np.ndarray, output: int) -> np.ndarray:
    """Gradient of f_c w.r.t. the layer input, in float32 as the paper's code computes it (relu'(0) = 0)."""
    a = np.asarray(points, dtype=np.float32)
    masks = []
    layers = [(to_float(net.weight(m)).astype(np.float32), to_float(net.bias(m)).astype(np.float32))
              for m in range(layer, net.n_layers + 1)]
    for k, (W, b) in enumerate(layers):
        z = a @ W.T + b
        if net.has_relu(layer + k):
            masks.append(z > 0)
            a = np.where(z > 0, z, np.float32(0))
        else:
            masks.append(np.ones_like(z, dtype=bool))
    g = np.zeros((len(a), layers[-1][0].shape[0]), dtype=np.float32)
    g[:, output] = 1
    for k in range(len(layers) - 1, -1, -1):
        g = (g * masks[k]) @ layers[k][0]
    return g


def _output_changed(net: Network, layer: int, points: np.ndarray, f_x: list[Any], output: int) -> np.ndarray:
    """Exactly decide f_output(root) != f_output(x) for each row of exact ``points`` (roots in layer ``layer``'s
    input space): a certified float forward decides where the bound separates the values, exact arithmetic
    (gmpy2) elsewhere."""
    cf = certified_float_forward(net, layer, points)
    z, err = cf.z[-1][:, output], cf.err[-1][:, output]
    out, out_err = (np.maximum(z, 0.0), err) if net.final_relu else (z, err)
    fx = np.array([float(v) for v in f_x])  # f_x exact (gmpy2 or Fraction)
    separated = ~cf.uncertain & (np.abs(out - fx) > out_err + 4 * UNIT_ROUNDOFF * np.abs(fx) + 2.0**-1070)
    changed = separated.copy()
    for r in np.flatnonzero(~separated):
        out_exact = forward(FAST_EXACT, net.fast_layers, net.relu_flags, points[r], start=layer)[0][-1]
        changed[r] = out_exact[output] != f_x[r]
    return changed


def c6_study(
    n_inputs: int = 1000,
    seed: int = STUDY_SEED,
    init: PaperInit = "paper-text",
    rules: dict[str, Rule] | None = None,
    definitions: Sequence[str] = ("true", "paper-code"),
    output: int = 0,
    input_seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the study; returns a JSON-ready dict with exact fractions (as "num/den") and their floats."""
    rules = rules or STUDY_RULES
    t0 = time.perf_counter()
    net = paper_mlp(seed, init)
    xs = paper_inputs(net, n_inputs, seed=input_seed, output=output)
    cells: list[StudyCell] = []
    exact_runs = [forward(FAST_EXACT, net.fast_layers, net.relu_flags, to_fast(x))[0] for x in xs]
    f_x = [acts[-1][output] for acts in exact_runs]
    acts_float = {l: np.array([[float(v) for v in acts[l - 1]] for acts in exact_runs]) for l in range(1, net.n_layers + 1)}
    for name, rule in rules.items():
        for definition in definitions:
            rep = root_regions(net, xs, rule, scope="upper", output=output, definition=definition, progress=progress)
            for l in range(1, net.n_layers + 1):
                recs = [r for r in rep.records if r.layer == l]
                cell = StudyCell(name, definition, l, len(recs),
                                 sum(any(f[0] == l for f in r.flipped) for r in recs),
                                 sum(r.leaves_pattern for r in recs), sum(r.leaves_affine_map for r in recs),
                                 0, sum(r.root_in_domain for r in recs), 0, 0)
                if recs:
                    cell.output_changed = int(_output_changed(
                        net, l, np.array([r.root_value for r in recs]), [f_x[r.input_index] for r in recs], output
                    ).sum())
                    g_in = _upper_grad_float32(net, l, acts_float[l][[r.input_index for r in recs]], output)
                    roots_float = np.array([[float(v) for v in r.root_value] for r in recs])
                    g_rt = _upper_grad_float32(net, l, roots_float, output)
                    float_left = np.array([not np.allclose(a, b) for a, b in zip(g_in, g_rt)])
                    exact_left = np.array([r.leaves_affine_map for r in recs])
                    cell.float_test_says_left = int(float_left.sum())
                    cell.float_test_disagrees = int((float_left != exact_left).sum())
                cells.append(cell)
    return {
        "network": {"seed": seed, "init": init, "sizes": net.layer_sizes, "relus": net.n_relus,
                    "final_relu": net.final_relu},
        "inputs": {"n": n_inputs, "seed": input_seed, "distribution": "|N(0, I)|", "condition": f"f_{output} > 0.1"},
        "output": output,
        "float_test": "numpy.allclose(grad_float32(input), grad_float32(root)) (rtol=1e-5, atol=1e-8)",
        "cells": [c.to_json() for c in cells],
        "seconds": round(time.perf_counter() - t0, 3),
    }

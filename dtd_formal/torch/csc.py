r"""Cosine similarity convergence (CSC, Sixt, Granz & Landgraf, "When Explanations Lie", ICML 2020).

From layer l, back-propagate k random relevance vectors :math:`R^{(1)}, \dots, R^{(k)}` (i.i.d. entries, |N(0, 1)|
by default, N(0, 1) with ``positive=False``) through the lower layers with a rule, at one input. If the rule
ignores the upper relevance, the k explanations converge: their pairwise cosine similarity approaches 1. Per
lower layer m < l (layer outputs, then the input as layer 0) the report gives the median over pairs i < j of
:math:`|\cos(R^{(i)}_m, R^{(j)}_m)|` and the same statistic for k random vectors of that layer's size drawn from the
same distribution (the baseline: what unrelated vectors give).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..rules.base import Rule
from ..rules.composites import Composite
from .lrp import modified_gradients


@dataclass
class CSCRow:
    layer: int  #: lower layer m (0 = the input)
    median_abs_cos: float
    baseline: float
    size: int


@dataclass
class CSCReport:
    start_layer: int
    k: int
    rows: list[CSCRow]

    def to_json(self) -> dict[str, Any]:
        return {"start_layer": self.start_layer, "k": self.k, "rows": [vars(r) for r in self.rows]}


def median_abs_cos(V: torch.Tensor) -> float:
    """Median over pairs i < j of |cos(V_i, V_j)| (rows of V flattened); NaN-free (zero rows count as 0)."""
    V = V.reshape(V.shape[0], -1).double()
    norms = V.norm(dim=1, keepdim=True)
    U = torch.where(norms > 0, V / torch.where(norms > 0, norms, torch.ones_like(norms)), torch.zeros_like(V))
    C = (U @ U.T).abs()
    i, j = torch.triu_indices(len(V), len(V), offset=1, device=V.device)
    return float(C[i, j].median())


def csc(
    model: nn.Module,
    x: torch.Tensor,
    rule_or_composite: Rule | Composite,
    layer: int,
    k: int = 32,
    seed: int = 0,
    positive: bool = True,
    norm: str | None = None,
) -> CSCReport:
    """CSC of ``rule_or_composite`` from ``layer`` at the single input ``x`` (shape (1, ...) or without batch)."""
    if k < 2:
        raise InputError(f"csc needs k >= 2 random vectors, got {k}")
    gen = torch.Generator().manual_seed(seed)
    xb = x.detach()
    if xb.shape[0] != 1:
        xb = xb.unsqueeze(0)
    xk = xb.expand(k, *xb.shape[1:]).clone().requires_grad_(True)
    with modified_gradients(model, rule_or_composite, norm, record=True) as state:
        if not 1 <= layer <= state.plan.n_layers:
            raise InputError(f"layer {layer} does not exist: layers are numbered 1..{state.plan.n_layers}")
        model(xk)
        z = state.outputs[layer]

        def draw(shape: tuple[int, ...]) -> torch.Tensor:
            r = torch.randn(shape, generator=gen, dtype=torch.float64)
            return (r.abs() if positive else r).to(dtype=z.dtype, device=z.device)

        R0 = draw(tuple(z.shape))
        (Rx,) = torch.autograd.grad(z, xk, R0)
    rows = []
    lower = {m: state.relevances[m] for m in range(1, layer)}
    lower[0] = Rx
    for m in sorted(lower, reverse=True):
        R = lower[m]
        size = R[0].numel()
        rows.append(CSCRow(m, median_abs_cos(R), median_abs_cos(draw((k, size))), size))
    return CSCReport(layer, k, rows)


__all__ = ["CSCReport", "CSCRow", "csc", "median_abs_cos"]

r"""The rules' ops namespace for a layer in patch form: the same rule bodies on convolutions.

A rule is written for a dense layer: ``a`` (n_in,), ``W`` (n_out, n_in), ``ops.matmul(W, a)``,
``ops.sum(C, axis=1)`` and ``ops.matmul(ops.transpose(C), s)``. For a convolution in patch form
(:class:`dtd_formal.graph.operators.Conv`) the layer passes instead the gathered input ``a_g`` (n_out, k), the patch
weights ``W_g`` (n_out, k) and the bias, and :class:`PatchOps` gives the structured meaning of the few operations
that see the layer's geometry:

- elementwise operations, masks, ``where``, ``sum(., axis=1)``: unchanged (row j of a gathered array is neuron j's
  receptive field, so a contribution matrix C (n_out, k) holds exactly the non-zero entries of its dense twin);
- ``matmul(W_g, a_g)``: the row-wise dot product :math:`\sum_m W_{jm} a_{jm}` (= :math:`w_j \cdot a`);
- ``matmul(transpose(C), s)``: the transposed convolution, a scatter-add :math:`R_i = \sum_{(j,m):
  \mathrm{idx}_{jm} = i} C_{jm} s_j`;
- ``ones_like(W_g)``: 1 on the receptive field and 0 at the padding (the Flat rule's uniform weights live on the
  receptive field, as in zennit; padding positions carry weight 0 and input 0, so every other term vanishes there);
- ``const(p)`` of a per-input parameter (length n_in, ZBox's bounds): gathered into patches (0 at padding).

Everything else is the base namespace's (exact rationals, float64, Z3 terms), so exactness checks and Z3 encodings
carry over unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .operators import gather_rows, scatter_dot


class _Transposed:
    """``ops.transpose(C)`` of a patch-shaped C: only meaningful as the left operand of ``matmul``."""

    def __init__(self, C: Any) -> None:
        self.C = C

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(reversed(np.shape(self.C)))


class PatchOps:
    """The ops of ``base`` with the structured operations of one patch-form layer (module docstring).

    Parameters
    ----------
    base : the ops namespace of the numbers (exact, float64, Z3)
    idx : (n_out, k) flat input positions of each receptive field (-1 = padding)
    n_in : the layer's input size
    """

    def __init__(self, base: Any, idx: np.ndarray, n_in: int) -> None:
        self.base, self.idx, self.n_in = base, idx, n_in
        self.name = getattr(base, "name", "")
        self.exact_results = getattr(base, "exact_results", False)
        self._valid = idx >= 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def _patch_shaped(self, x: Any) -> bool:
        return tuple(np.shape(x)) == self.idx.shape

    def matmul(self, A: Any, B: Any) -> Any:
        if isinstance(A, _Transposed):
            return scatter_dot(self.base, A.C, B, self.idx, self.n_in)
        if self._patch_shaped(A) and self._patch_shaped(B):
            return self.base.sum(A * B, axis=1)
        return self.base.matmul(A, B)

    def transpose(self, A: Any) -> Any:
        return _Transposed(A) if self._patch_shaped(A) else self.base.transpose(A)

    def ones_like(self, x: Any) -> Any:
        if self._patch_shaped(x):
            return self.base.where(self._valid, self.base.ones_like(x), self.base.zeros_like(x))
        return self.base.ones_like(x)

    def const(self, value: Any) -> Any:
        c = self.base.const(value)
        if np.ndim(c) == 1 and np.shape(c)[0] == self.n_in:
            return gather_rows(self.base, c, self.idx)
        return c


__all__ = ["PatchOps"]

r"""Certified float64 forward passes: float values with rigorous error bounds, so that exact arithmetic is needed
only where the bound cannot decide a sign.

:func:`certified_float_forward` pushes exact points through layers l..L in float64 and carries, per value, a bound
on its distance to the exact value. The bound covers the rounding of the exact point, of the exact weights and
biases to float64, of every product and sum, and of the bound's own float evaluation; it stays valid under
underflow (an absolute term per operation for subnormal results) and overflow (a non-finite value or bound makes
the row uncertain). Callers recompute uncertain rows exactly (:mod:`dtd_formal.regions`,
:mod:`dtd_formal.experiments.c6_study`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network

#: unit roundoff of float64 (relative error of one rounding to nearest, normal range)
UNIT_ROUNDOFF = 2.0**-53
#: the smallest positive subnormal float64: an upper bound on the absolute error of one rounding in the subnormal
#: range (half of it would do; the whole spacing keeps the bound's own arithmetic safe)
SUBNORMAL_ERROR = 2.0**-1074


@dataclass
class CertifiedForward:
    """Float64 pre-activations of layers layer..L at exact points, each with a rigorous error bound.

    ``z[k]`` and ``err[k]`` (rows = points) belong to layer ``layer + k``: the exact value lies in
    ``[z - err, z + err]``. ``uncertain[r]`` marks rows where some ReLU sign (other than a forced neuron's) is
    not decided by the bound, or some value or bound is not finite; for those rows the later layers' values are
    not covered by the bound.
    """

    z: list[np.ndarray]
    err: list[np.ndarray]
    uncertain: np.ndarray


def certified_float_forward(
    net: Network, layer: int, points: np.ndarray, forced: np.ndarray | None = None
) -> CertifiedForward:
    r"""Push exact points (rows; gmpy2 or Fraction) through layers layer..L in float64 with rigorous error bounds.

    With :math:`u = 2^{-53}`, :math:`\eta = 2^{-1074}` and :math:`\gamma_k = k u / (1 - k u)`:

    - start: :math:`e_0 = 4u|\hat r| + 2^{-1070}` (rounding of the exact point to float, even by truncation, also
      in the subnormal range);
    - layer m with n inputs:

      .. math:: |z - \hat z| \le 2\,\big[(1+2u)|\hat W| e + (\gamma_{n+2} + u)(|\hat W||\hat a| + |\hat b|)
                + \eta\,(\textstyle\sum_i (|\hat a_i| + e_i) + 1) + (2n + 2)\,\eta\big]

      The first two terms cover, in the normal range, the rounding of the exact weights and biases to float
      (:math:`|W - \hat W| \le u|\hat W|`) and of the dot product; the third the absolute error of rounding a
      subnormal weight or bias (at most :math:`\eta` each, against inputs of size :math:`|\hat a| + e`); the
      fourth one absolute :math:`\eta` per multiplication and addition whose result underflows; the factor 2 the
      bound's own float evaluation. relu does not increase the error.

    A ReLU whose sign is certain (:math:`|\hat z| > e`, both finite) is applied as in exact arithmetic. Neuron
    ``forced[r]`` of ``layer`` (if given) is kept linear (a = z) and its sign is not required to be certain. A
    non-finite value or bound (overflow) makes its row uncertain.
    """
    u, eta = UNIT_ROUNDOFF, SUBNORMAL_ERROR
    fnet = net.to_float()
    k = len(points)
    rows = np.arange(k)
    a = np.array([float(v) for v in points.ravel()], dtype=np.float64).reshape(points.shape)
    e = 4 * u * np.abs(a) + 2.0**-1070
    zs, errs = [], []
    uncertain = ~np.isfinite(a).all(axis=1) if a.ndim == 2 else np.zeros(k, dtype=bool)
    for m in range(layer, net.n_layers + 1):
        W, b = fnet.weights[m - 1], fnet.biases[m - 1]
        Wabs = np.abs(W)
        n = W.shape[1]
        gamma = (n + 2) * u / (1 - (n + 2) * u)
        with np.errstate(over="ignore", invalid="ignore"):
            z = a @ W.T + b
            err = 2.0 * ((1 + 2 * u) * (e @ Wabs.T) + (gamma + u) * (np.abs(a) @ Wabs.T + np.abs(b))
                         + eta * ((np.abs(a) + e).sum(axis=1, keepdims=True) + 1) + (2 * n + 2) * eta)
        finite = np.isfinite(z) & np.isfinite(err)
        uncertain |= ~finite.all(axis=1)
        zs.append(z)
        errs.append(err)
        if net.has_relu(m):
            unsure = ~(np.abs(z) > err)  # NaN compares False: unsure
            keep = z > 0
            if m == layer and forced is not None:
                unsure[rows, forced] = False
                keep[rows, forced] = True
            uncertain |= unsure.any(axis=1)
            a = np.where(keep, z, 0.0)
            e = np.where(keep, err, 0.0)
        else:
            a, e = z, err
    return CertifiedForward(zs, errs, uncertain)


__all__ = ["CertifiedForward", "certified_float_forward", "UNIT_ROUNDOFF", "SUBNORMAL_ERROR"]

r"""Certified float64 arithmetic: float values with rigorous error bounds, so that exact arithmetic is needed only
where the bound cannot decide a sign.

Every value :math:`\hat x` (a float64 array) travels with a bound :math:`e \ge 0` (an array of the same shape) such
that the exact value x satisfies :math:`|x - \hat x| \le e`. The operations below compute a new pair from old ones;
each bound covers the rounding of the operation itself (relative :math:`u = 2^{-53}` in the normal range, an
absolute :math:`\eta = 2^{-1074}` when a product or quotient underflows) and the float evaluation of the bound (a
factor 2 and a few absolute :math:`\eta`). A non-finite value or bound (overflow) decides nothing: every test of a
sign against a bound is false for it, so callers fall back to exact arithmetic there.

- :func:`float_with_error`: exact rationals rounded to float64 (:math:`e = 4u|\hat x| + 2^{-1070}`, 0 where the
  conversion is exact);
- :func:`bounded_sum`, :func:`bounded_product`, :func:`bounded_quotient`: elementwise :math:`x + y`, :math:`xy`,
  :math:`x / y`;
- :func:`bounded_affine`, :func:`bounded_rowdot`: :math:`W a + b` (rows of a batch) and row-wise dot products with
  the exact weights of a network (rounded to float by :meth:`Network.to_float`);
- :func:`certified_forward_from` / :func:`certified_float_forward`: points (float with bounds, or exact) pushed
  through layers l..L, ReLU applied where its sign is certain.

Callers recompute undecided rows exactly (:mod:`dtd_formal.regions`, :mod:`dtd_formal.experiments.c6_study`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .exact import FAST_RATIONAL, to_float
from .network import Network

#: unit roundoff of float64 (relative error of one rounding to nearest, normal range)
UNIT_ROUNDOFF = 2.0**-53
#: the smallest positive subnormal float64: an upper bound on the absolute error of one rounding in the subnormal
#: range (half of it would do; the whole spacing keeps the bound's own arithmetic safe)
SUBNORMAL_ERROR = 2.0**-1074
#: absolute term added to a bound that is not structurally zero: covers the underflow of the operation and of the
#: bound's own few float operations (16 spacings of the subnormal range)
_ABSOLUTE = 16 * SUBNORMAL_ERROR
#: OpenBLAS runs a matrix product of at most 4 * 65536 multiply-adds on one thread (:func:`_matmul`)
_ONE_THREAD_PRODUCT = 4 * 65536


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


def float_with_error(values: np.ndarray, check_exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact rationals (object array of Fractions or gmpy2 rationals) rounded to float64, with a bound.

    :math:`e = 4u|\hat x| + 2^{-1070}` covers the rounding even by truncation and in the subnormal range; e = 0
    where x is exactly 0 and, with ``check_exact`` (one exact comparison per entry: for small coefficient arrays),
    wherever :math:`\hat x = x`. A rational beyond the float range becomes +-inf (undecided downstream).

    Returns
    -------
    (x_hat, e) : float64 arrays of the shape of ``values``
    """
    flat = values.ravel().tolist()
    out = _floats(flat)
    err = 4 * UNIT_ROUNDOFF * np.abs(out) + 2.0**-1070
    if check_exact:
        exact = np.array([bool(np.isfinite(f)) and FAST_RATIONAL(f) == v for f, v in zip(out.tolist(), flat)],
                         dtype=bool)
    else:  # only the entries that are 0.0 in float (an exact zero, or an underflowed tiny value)
        exact = np.zeros(len(flat), dtype=bool)
        for k in np.flatnonzero(out == 0).tolist():
            exact[k] = flat[k] == 0
    err[exact] = 0.0
    return out.reshape(values.shape), err.reshape(values.shape)


def _floats(flat: list) -> np.ndarray:
    """float64 of exact rationals. Fractions are divided as ``float(Fraction)`` does (numerator / denominator,
    correctly rounded), read from their slots directly (the public properties cost three Python calls per
    entry); other rationals, and values beyond the float range, go through :func:`dtd_formal.exact.to_float`."""
    try:
        return np.array([v._numerator / v._denominator for v in flat], dtype=np.float64)
    except (AttributeError, OverflowError):
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
        return to_float(arr)


def bounded_sum(x: np.ndarray, ex: np.ndarray, y: np.ndarray, ey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`s = x + y` with :math:`|s - \hat s| \le 2(e_x + e_y + 2u|\hat s|) + 16\eta`.

    Float addition has no underflow error and :math:`|\hat x + \hat y - \hat s| \le 2u|\hat s|`. The absolute term
    is dropped where the bound is structurally zero (:math:`e_x = e_y = 0` and :math:`\hat s = 0`: then
    :math:`\hat x + \hat y = 0` exactly, as a float sum of nonzero value never rounds to 0).
    """
    u = UNIT_ROUNDOFF
    with np.errstate(over="ignore", invalid="ignore"):
        s = x + y
        nonzero = (ex > 0) | (ey > 0) | (s != 0)
        err = 2.0 * (ex + ey + 2 * u * np.abs(s)) + np.where(nonzero, _ABSOLUTE, 0.0)
    return s, err


def bounded_product(x: np.ndarray, ex: np.ndarray, y: np.ndarray, ey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`p = xy` with :math:`|p - \hat p| \le 2(|\hat x| e_y + |\hat y| e_x + e_x e_y + 2u|\hat p|) + 16\eta`.

    The first three terms bound :math:`|xy - \hat x\hat y|`, the fourth the rounding of the product (plus
    :math:`\eta` for its underflow, inside the absolute term). The absolute term is dropped where an operand is
    exactly zero (:math:`\hat x = 0, e_x = 0` or :math:`\hat y = 0, e_y = 0`): the product is then exactly 0.
    """
    u = UNIT_ROUNDOFF
    with np.errstate(over="ignore", invalid="ignore"):
        p = x * y
        nonzero = ((x != 0) | (ex > 0)) & ((y != 0) | (ey > 0))
        err = 2.0 * (np.abs(x) * ey + np.abs(y) * ex + ex * ey + 2 * u * np.abs(p)) + np.where(nonzero, _ABSOLUTE, 0.0)
    return p, err


def bounded_quotient(x: np.ndarray, ex: np.ndarray, y: np.ndarray, ey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`q = x / y` where :math:`|\hat y| > e_y` (elsewhere the bound is +inf: undecided).

    .. math:: |q - \hat q| \le 2\Big[\frac{e_x + (2|\hat q| + 2\eta)\, e_y}{|\hat y| - e_y} + 2u|\hat q|\Big] + 16\eta

    from :math:`q - \hat x/\hat y = \big((x - \hat x) + (\hat x/\hat y)(\hat y - y)\big)/y`,
    :math:`|y| \ge |\hat y| - e_y` and :math:`|\hat x/\hat y| \le 2|\hat q| + 2\eta`.
    """
    u, eta = UNIT_ROUNDOFF, SUBNORMAL_ERROR
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        decided = np.abs(y) > ey
        q = np.where(decided, x / np.where(decided, y, 1.0), 0.0)
        margin = np.where(decided, np.abs(y) - ey, 1.0)
        err = 2.0 * ((ex + (2 * np.abs(q) + 2 * eta) * ey) / margin + 2 * u * np.abs(q)) + _ABSOLUTE
        err = np.where(decided, err, np.inf)
    return q, err


def _matmul(a: np.ndarray, B: np.ndarray) -> np.ndarray:
    """a @ B in blocks of rows small enough that BLAS runs each block on one thread (OpenBLAS: at most
    :data:`_ONE_THREAD_PRODUCT` multiply-adds): on the tall thin products here its threads cost far more than the
    arithmetic, the more so on a loaded machine. A matrix B too large for blocks of 64 rows goes to BLAS whole."""
    rows = _ONE_THREAD_PRODUCT // max(1, B.size)
    if rows < 64 or a.shape[0] <= rows:
        return a @ B
    out = np.empty((a.shape[0], B.shape[1]))
    for start in range(0, a.shape[0], rows):
        np.matmul(a[start : start + rows], B, out=out[start : start + rows])
    return out


def bounded_affine(a: np.ndarray, e: np.ndarray, W: np.ndarray, b: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    r"""Rows :math:`z = W a + b` of a batch, where W and b are exact weights rounded to nearest float (W, b given
    as those floats) and the rows a carry bounds e. With n the inner dimension and
    :math:`\gamma_k = k u / (1 - k u)`:

    .. math:: |z - \hat z| \le 2\,\big[(1+2u)|\hat W| e + (\gamma_{n+2} + u)(|\hat W||\hat a| + |\hat b|)
              + \eta\,(\textstyle\sum_i (|\hat a_i| + e_i) + 1) + (2n + 2)\,\eta\big]

    The first two terms cover, in the normal range, the rounding of the exact weights and biases to float
    (:math:`|W - \hat W| \le u|\hat W|`) and of the dot product (any summation order, fused or not); the third the
    absolute error of rounding a subnormal weight or bias (at most :math:`\eta` each, against inputs of size
    :math:`|\hat a| + e`); the fourth one absolute :math:`\eta` per multiplication and addition whose result
    underflows; the factor 2 the bound's own float evaluation. ``W.T`` of a layer gives the row-vector product
    :math:`g W` (a pull-back) with the same bound.
    """
    u, eta = UNIT_ROUNDOFF, SUBNORMAL_ERROR
    n = W.shape[1]
    gamma = (n + 2) * u / (1 - (n + 2) * u)
    with np.errstate(over="ignore", invalid="ignore"):
        z = _matmul(a, W.T)
        abs_a = np.abs(a)
        main = _matmul((1 + 2 * u) * e + (gamma + u) * abs_a, np.abs(W).T)  # the first two terms in one product
        if b is not None:
            z = z + b
            main = main + (gamma + u) * np.abs(b)
        err = 2.0 * (main + eta * ((abs_a + e).sum(axis=1, keepdims=True) + 1) + (2 * n + 2) * eta)
    return z, np.where(np.isfinite(z), err, np.inf)


def bounded_rowdot(W: np.ndarray, v: np.ndarray, ev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Row-wise dot products :math:`d_r = w_r \cdot v_r` of float-rounded exact weight rows :math:`w_r` with
    bounded rows :math:`v_r`: the bound of :func:`bounded_affine` (no bias), row by row."""
    u, eta = UNIT_ROUNDOFF, SUBNORMAL_ERROR
    n = W.shape[1]
    gamma = (n + 2) * u / (1 - (n + 2) * u)
    with np.errstate(over="ignore", invalid="ignore"):
        d = (W * v).sum(axis=1)
        abs_v = np.abs(v)
        err = 2.0 * ((np.abs(W) * ((1 + 2 * u) * ev + (gamma + u) * abs_v)).sum(axis=1)
                     + eta * ((abs_v + ev).sum(axis=1) + 1) + (2 * n + 2) * eta)
    return d, np.where(np.isfinite(d), err, np.inf)


def certified_forward_from(
    net: Network, layer: int, a: np.ndarray, e: np.ndarray, forced: np.ndarray | None = None
) -> CertifiedForward:
    r"""Push float points (rows) with bounds e on their distance to exact points through layers layer..L.

    Each layer is :func:`bounded_affine`; a ReLU whose sign is certain (:math:`|\hat z| > e`, both finite) is
    applied as in exact arithmetic (relu does not increase the error). Neuron ``forced[r]`` of ``layer`` (if
    given) is kept linear (a = z) and its sign is not required to be certain. A non-finite value or bound
    (overflow) makes its row uncertain.
    """
    fnet = net.to_float()
    k = len(a)
    rows = np.arange(k)
    zs, errs = [], []
    uncertain = ~(np.isfinite(a).all(axis=1) & np.isfinite(e).all(axis=1))
    for m in range(layer, net.n_layers + 1):
        z, err = bounded_affine(a, e, fnet.weights[m - 1], fnet.biases[m - 1])
        uncertain |= ~np.isfinite(err).all(axis=1)  # the bound is +inf where z is not finite
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


def certified_float_forward(
    net: Network, layer: int, points: np.ndarray, forced: np.ndarray | None = None
) -> CertifiedForward:
    r"""Push exact points (rows; gmpy2 or Fraction) through layers layer..L in float64 with rigorous error bounds.

    The points are rounded by :func:`float_with_error` (:math:`e_0 = 4u|\hat r| + 2^{-1070}`, 0 at exact
    zeros), then pushed by :func:`certified_forward_from` (its bound per layer, :func:`bounded_affine`).
    """
    a, e = float_with_error(np.asarray(points, dtype=object))
    return certified_forward_from(net, layer, a, e, forced)


__all__ = ["CertifiedForward", "certified_float_forward", "certified_forward_from", "float_with_error",
           "bounded_sum", "bounded_product", "bounded_quotient", "bounded_affine", "bounded_rowdot",
           "UNIT_ROUNDOFF", "SUBNORMAL_ERROR"]

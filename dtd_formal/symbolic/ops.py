r"""The SymPy implementation of the rules' ``ops`` namespace (mirrors :class:`dtd_formal.rules.ops.ExactOps`).

A rule is written once over ``ops`` (:mod:`dtd_formal.rules.ops`); running the same body with :data:`SYMPY` on
numpy object arrays of SymPy expressions yields the rule's redistribution and root point as exact symbolic
expressions in symbolic weights, inputs and biases. Nothing of a rule is re-typed here.

Signs and masks (the kink convention)
-------------------------------------
The masks :math:`[w > 0]`, :math:`[w < 0]` and :math:`w^\pm` are decided from SymPy's assumptions: a weight
declared ``positive``/``negative``/zero (see :func:`sign_pattern_symbols`) gives a concrete 0/1 mask, so a generic
proof is carried out *per sign pattern* of the weights (all :math:`3^n` patterns over {+, -, 0}, which covers every
real weight vector). A sign SymPy cannot decide falls back to ``Heaviside(w, 0)`` (note the second argument:
:math:`H(0) = 0`, the package's convention :math:`[0 > 0] = 0`, not SymPy's default :math:`H(0) = 1/2`) and
``Max(w, 0)`` / ``Min(w, 0)``.

Stabiliser and division
-----------------------
- ``stabilise(z, eps)`` = :math:`z + \varepsilon\,\mathrm{sign}_0(z)` with :math:`\mathrm{sign}_0(0) = +1`. When the
  sign of z is undecided, the branch is fixed by :attr:`SympyOps.stabilise_branch` (+1: :math:`z \ge 0`, -1:
  :math:`z < 0`) and the case assumption is recorded in :attr:`SympyOps.conditions`; with no branch set a
  ``Piecewise`` is returned.
- ``safe_divide(n, d)`` = n / d. A denominator that is identically 0 gives 0 (as in the exact engine); otherwise
  the quotient is formed and ``d != 0`` is recorded in :attr:`SympyOps.conditions` (a generic proof holds where
  no denominator vanishes, which is exactly where the exact engine divides).

Exactness: :meth:`SympyOps.const` converts floats with ``sympy.Rational(float)`` (exact; never via decimal text)
and :func:`assert_exact` rejects any ``Float`` in an expression a proof relies on.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Iterable

import numpy as np
import sympy as sp
from sympy.printing.repr import ReprPrinter
from sympy.printing.str import StrPrinter

from ..errors import InputError


class InexactExpressionError(AssertionError):
    """A SymPy ``Float`` (rounded number) appeared in an expression that an exact proof relies on."""


def to_rational(value: Any) -> sp.Expr:
    """One number exactly as a SymPy ``Rational``; SymPy expressions pass through (checked for Floats).

    ``float`` uses ``sympy.Rational(float)``, which is the float's exact dyadic value (0.1 becomes
    3602879701896397/36028797018963968); a ``Fraction`` keeps numerator and denominator.
    """
    if isinstance(value, sp.Basic):
        assert_exact(value)
        return value  # type: ignore[return-value]
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"expected a number, got the boolean {value!r}")
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if not np.isfinite(f):
            raise InputError(f"{f!r} is not a finite number")
        return sp.Rational(f)
    if isinstance(value, str):
        fr = Fraction(value.strip())
        return sp.Rational(fr.numerator, fr.denominator)
    raise InputError(f"cannot convert {type(value).__name__} exactly to a SymPy rational")


def to_sympy_array(values: Any) -> np.ndarray:
    """An array-like of numbers / expressions as a numpy object array of exact SymPy expressions."""
    arr = np.asarray(values, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    for idx, v in np.ndenumerate(arr):
        out[idx] = to_rational(v)
    return out


def assert_exact(*exprs: Any) -> None:
    """Raise :class:`InexactExpressionError` if any (array of) expression contains a SymPy ``Float``."""
    for e in exprs:
        if isinstance(e, np.ndarray):
            assert_exact(*e.ravel().tolist())
        elif isinstance(e, (list, tuple)):
            assert_exact(*e)
        elif isinstance(e, sp.Basic):
            if e.has(sp.Float):
                raise InexactExpressionError(f"Float in an exact expression: {e}")
        elif isinstance(e, float):
            raise InexactExpressionError(f"Python float {e!r} in an exact expression")


# ---------------------------------------------------------------------------------------------------- printing
#: subexpression texts a memoising printer keeps before it starts afresh
PRINT_MEMO_SIZE = 200_000


class _MemoPrinting:
    """Printer mixin: the text of every SymPy subexpression printed is remembered (by class and structural
    equality) and reused. The proofs print thousands of residuals that share their sums, normalisers and symbols;
    a printer's text for an expression depends on the expression alone (printing settings are fixed; only
    ``Float`` text reads the nesting level, and floats are printed afresh), so the text is the printer's own."""

    _memo: dict[tuple[type, sp.Basic], str]

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if kwargs or not isinstance(expr, sp.Basic) or isinstance(expr, sp.Float):
            return super()._print(expr, **kwargs)  # type: ignore[misc]
        key = (type(expr), expr)
        text = self._memo.get(key)
        if text is None:
            if len(self._memo) >= PRINT_MEMO_SIZE:
                self._memo.clear()
            text = self._memo[key] = super()._print(expr)  # type: ignore[misc]
        return text


class _MemoStrPrinter(_MemoPrinting, StrPrinter):
    def __init__(self) -> None:
        super().__init__()
        self._memo = {}


class _MemoReprPrinter(_MemoPrinting, ReprPrinter):
    def __init__(self) -> None:
        super().__init__()
        self._memo = {}


_STR_PRINTER = _MemoStrPrinter()
_REPR_PRINTER = _MemoReprPrinter()


def expr_str(expr: Any) -> str:
    """``str(expr)`` (SymPy's default ``sstr``), the same text, with the subexpressions' texts remembered."""
    return _STR_PRINTER.doprint(sp.sympify(expr))


def expr_srepr(expr: Any) -> str:
    """``sympy.srepr(expr)``, the same text, with the subexpressions' texts remembered."""
    return _REPR_PRINTER.doprint(sp.sympify(expr))


def sign_pattern_symbols(prefix: str, signs: Iterable[int]) -> np.ndarray:
    """Symbols with a declared sign, one per entry of ``signs``: +1 positive, -1 negative, 0 the number 0.

    ``sign_pattern_symbols("w", (1, -1, 0))`` is ``[w0 (positive), w1 (negative), 0]``.
    """
    out = []
    for i, s in enumerate(signs):
        if s > 0:
            out.append(sp.Symbol(f"{prefix}{i}", positive=True))
        elif s < 0:
            out.append(sp.Symbol(f"{prefix}{i}", negative=True))
        else:
            out.append(sp.Integer(0))
    return np.array(out, dtype=object)


_INFINITIES = (sp.S.ComplexInfinity, sp.S.Infinity, sp.S.NegativeInfinity, sp.S.NaN)


def _exact_zero(v: Any) -> bool:
    """Whether v is the exact number 0 (SymPy's or an int)."""
    return v is sp.S.Zero or (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v == 0)


def _has_exact_zero(arr: np.ndarray) -> bool:
    return any(_exact_zero(v) for v in arr.ravel())


def _finite_form(v: Any) -> bool:
    """No infinity or NaN in v's expression tree (then 0 * v is 0 in SymPy)."""
    return not (isinstance(v, sp.Basic) and v.has(*_INFINITIES))


def _map(fn: Any, x: Any) -> np.ndarray:
    arr = np.asarray(x, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    for idx, v in np.ndenumerate(arr):
        out[idx] = fn(sp.sympify(v))
    return out


class SympyOps:
    """SymPy backend: numpy object arrays of exact SymPy expressions (one instance per proof, it records conditions).

    Attributes
    ----------
    conditions : list of str
        Side conditions the expressions were built under (``d != 0`` for each division, the stabiliser branch).
    stabilise_branch : {None, +1, -1}
        Which case of :math:`\\mathrm{sign}_0(z)` to take when SymPy cannot decide the sign of z.
    """

    name = "sympy"
    zero = sp.Integer(0)
    one = sp.Integer(1)

    def __init__(self, stabilise_branch: int | None = None) -> None:
        self.conditions: list[str] = []
        self.stabilise_branch = stabilise_branch

    def _note(self, text: str) -> None:
        if text not in self.conditions:
            self.conditions.append(text)

    # ---------------------------------------------------------------- constants
    @staticmethod
    def const(value: Any) -> Any:
        """A rule parameter exactly (floats via ``Rational(float)``; symbols pass through)."""
        if isinstance(value, (np.ndarray, list, tuple)):
            return to_sympy_array(value)
        return to_rational(value)

    # ---------------------------------------------------------------- masks
    @staticmethod
    def _positive_mask1(w: sp.Expr) -> sp.Expr:
        if w.is_positive:
            return sp.Integer(1)
        if w.is_nonpositive:
            return sp.Integer(0)
        return sp.Heaviside(w, 0)  # H(0) = 0: the package's [w > 0]

    @classmethod
    def positive_mask(cls, w: Any) -> np.ndarray:
        return _map(cls._positive_mask1, w)

    @classmethod
    def negative_mask(cls, w: Any) -> np.ndarray:
        return _map(lambda v: cls._positive_mask1(-v), w)

    @staticmethod
    def _pos1(w: sp.Expr) -> sp.Expr:
        if w.is_nonnegative:
            return w
        if w.is_nonpositive:
            return sp.Integer(0)
        return sp.Max(w, 0)

    @classmethod
    def pos(cls, w: Any) -> np.ndarray:
        return _map(cls._pos1, w)

    @classmethod
    def neg(cls, w: Any) -> np.ndarray:
        return _map(lambda v: -cls._pos1(-v), w)

    # ---------------------------------------------------------------- structure
    def where(self, cond: Any, x: Any, y: Any) -> np.ndarray:
        c, xb, yb = np.broadcast_arrays(np.asarray(cond, dtype=object), np.asarray(x, dtype=object),
                                        np.asarray(y, dtype=object))
        out = np.empty(c.shape, dtype=object)
        for idx in np.ndindex(c.shape):
            ci = sp.sympify(c[idx])
            if ci is sp.true:
                out[idx] = xb[idx]
            elif ci is sp.false:
                out[idx] = yb[idx]
            else:
                out[idx] = sp.Piecewise((xb[idx], ci), (yb[idx], True))
        return out

    @staticmethod
    def maximum(x: Any, y: Any) -> np.ndarray:
        """Elementwise max(x, y) as SymPy ``Max`` terms (max pools of the operator graph)."""
        xb, yb = np.broadcast_arrays(np.asarray(x, dtype=object), np.asarray(y, dtype=object))
        out = np.empty(xb.shape, dtype=object)
        out.ravel()[:] = [sp.Max(u, v) for u, v in zip(xb.ravel(), yb.ravel())]
        return out

    @staticmethod
    def matmul(A: Any, B: Any) -> Any:
        r"""The product :math:`(AB)_{ik} = \sum_j A_{ij} B_{jk}` with numpy's shapes (1-D operands are vectors).

        The same expressions as numpy's ``dot`` (the products added in order), except that a product with an
        exact 0 factor is left out: SymPy's ``0 * x`` asks whether x is finite (for x = R / n a costly query on
        the sum n) and is 0 unless x is known to be infinite, so such a product is formed (as SymPy forms it,
        0 * zoo = nan) only where the other factor contains an infinity or NaN.
        """
        A, B = np.asarray(A, dtype=object), np.asarray(B, dtype=object)
        if A.ndim not in (1, 2) or B.ndim not in (1, 2) or not (_has_exact_zero(A) or _has_exact_zero(B)):
            return A.dot(B)
        A2 = A.reshape(1, -1) if A.ndim == 1 else A
        B2 = B.reshape(-1, 1) if B.ndim == 1 else B
        out = np.empty((A2.shape[0], B2.shape[1]), dtype=object)
        for i in range(A2.shape[0]):
            for k in range(B2.shape[1]):
                total: Any = None
                for x, y in zip(A2[i], B2[:, k]):
                    if (_exact_zero(x) and _finite_form(y)) or (_exact_zero(y) and _finite_form(x)):
                        continue
                    total = x * y if total is None else total + x * y
                out[i, k] = sp.S.Zero if total is None else total
        if A.ndim == 1 and B.ndim == 1:
            return out[0, 0]
        return out[0] if A.ndim == 1 else out[:, 0] if B.ndim == 1 else out

    @classmethod
    def sum(cls, x: Any, axis: int | None = None) -> Any:
        x = np.asarray(x, dtype=object)
        if axis is None:
            return sp.Add(*x.ravel().tolist()) if x.size else cls.zero
        moved = np.moveaxis(x, axis, -1)
        out = np.empty(moved.shape[:-1], dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = sp.Add(*moved[idx].tolist()) if moved.shape[-1] else cls.zero
        return out

    @staticmethod
    def transpose(A: Any) -> np.ndarray:
        return np.asarray(A, dtype=object).T

    @classmethod
    def ones_like(cls, x: Any) -> np.ndarray:
        out = np.empty(np.shape(x), dtype=object)
        out.fill(cls.one)
        return out

    @classmethod
    def zeros_like(cls, x: Any) -> np.ndarray:
        out = np.empty(np.shape(x), dtype=object)
        out.fill(cls.zero)
        return out

    # ---------------------------------------------------------------- stabiliser, division
    def stabilise(self, z: Any, eps: Any) -> np.ndarray:
        eps = sp.sympify(eps)

        def one(v: sp.Expr) -> sp.Expr:
            if v.is_nonnegative:
                return v + eps
            if v.is_negative:
                return v - eps
            if self.stabilise_branch == 1:
                self._note(f"{expr_str(v)} >= 0")
                return v + eps
            if self.stabilise_branch == -1:
                self._note(f"{expr_str(v)} < 0")
                return v - eps
            return sp.Piecewise((v + eps, v >= 0), (v - eps, True))

        return _map(one, z)

    def safe_divide(self, n: Any, d: Any) -> np.ndarray:
        n, d = np.broadcast_arrays(np.asarray(n, dtype=object), np.asarray(d, dtype=object))
        out = np.empty(n.shape, dtype=object)
        for idx in np.ndindex(n.shape):
            di = sp.sympify(d[idx])
            if di == 0:
                out[idx] = self.zero
            else:
                if di.is_zero is None:
                    self._note(f"{expr_str(di)} != 0")
                out[idx] = sp.sympify(n[idx]) / di
        return out

    @staticmethod
    def is_zero(x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=object)
        return np.array([sp.sympify(v) == 0 for v in arr.ravel()], dtype=bool).reshape(arr.shape)


#: a shared instance for quick use (its ``conditions`` accumulate: make a fresh ``SympyOps()`` per proof)
SYMPY = SympyOps()

__all__ = ["SympyOps", "SYMPY", "to_rational", "to_sympy_array", "assert_exact", "sign_pattern_symbols",
           "InexactExpressionError", "expr_str", "expr_srepr"]

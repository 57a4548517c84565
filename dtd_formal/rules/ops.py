r"""The small arithmetic namespace a rule is written over, and its exact and float64 implementations.

A rule body uses only these operations, so the same definition runs on every backend (exact Fractions here,
float64 here, SymPy, Z3 and torch in their backends):

- arithmetic on arrays (``+ - * /`` with numpy-style broadcasting),
- ``positive_mask(w)`` = :math:`[w > 0]` (1/0), ``negative_mask(w)`` = :math:`[w < 0]`,
- ``pos(w)`` = :math:`\max(w, 0)`, ``neg(w)`` = :math:`\min(w, 0)`,
- ``where(cond, x, y)``, ``matmul(A, B)``, ``sum(x, axis)``, ``transpose(A)``,
- ``const(v)``: a rule parameter (gamma, epsilon, box bounds) as a backend number (exact for floats),
- ``ones_like(x)``, ``zeros_like(x)``,
- ``stabilise(z, eps)`` = :math:`z + \varepsilon\,\mathrm{sign}_0(z)` with :math:`\mathrm{sign}_0(0) = +1` (zennit's),
- ``safe_divide(n, d)`` = n / d where d != 0, else 0 (relevance with a zero normaliser is dropped and reported);
- logic for properties (:mod:`dtd_formal.properties`): ``all_true(x)`` / ``any_true(x)`` over an array of
  conditions, ``and_(*c)``, ``or_(*c)``, ``not_(c)``, ``implies(p, q)`` (Python booleans here, Z3 Booleans in
  :class:`dtd_formal.smt.ops.Z3Ops`).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from ..exact import FAST_RATIONAL, exact_sum, to_fraction, to_fraction_array


class _BooleanLogic:
    """Logic of properties on Python booleans (exact and float64 backends)."""

    true = True
    false = False

    @staticmethod
    def all_true(x: Any) -> bool:
        return bool(np.all(np.asarray(x, dtype=bool)))

    @staticmethod
    def any_true(x: Any) -> bool:
        return bool(np.any(np.asarray(x, dtype=bool)))

    @staticmethod
    def and_(*conditions: Any) -> bool:
        return all(bool(c) for c in conditions)

    @staticmethod
    def or_(*conditions: Any) -> bool:
        return any(bool(c) for c in conditions)

    @staticmethod
    def not_(condition: Any) -> bool:
        return not bool(condition)

    @staticmethod
    def implies(p: Any, q: Any) -> bool:
        return (not bool(p)) or bool(q)


class ExactOps(_BooleanLogic):
    """Exact backend: numpy object arrays of rationals.

    ``ExactOps()`` uses :class:`fractions.Fraction` (the public exact type); ``ExactOps(FAST_RATIONAL)`` uses
    gmpy2's ``mpq`` when installed (the same exact values, about ten times faster), for internal hot paths.
    """

    #: results of rule methods in this namespace must be exact rationals (checked by :mod:`dtd_formal.walk`)
    exact_results = True

    def __init__(self, rational: Any = Fraction) -> None:
        self.rational = rational
        self.name = "exact" if rational is Fraction else f"exact-{rational.__name__}"
        self.zero = rational(0)
        self.one = rational(1)

    def const(self, value: Any) -> Any:
        if isinstance(value, (np.ndarray, list, tuple)):
            arr = to_fraction_array(value, "rule parameter")
            return arr if self.rational is Fraction else np.vectorize(self.rational, otypes=[object])(arr)
        return self.rational(to_fraction(value, "rule parameter"))

    @staticmethod
    def positive_mask(w: Any) -> np.ndarray:
        return (np.asarray(w, dtype=object) > 0).astype(int).astype(object)

    @staticmethod
    def negative_mask(w: Any) -> np.ndarray:
        return (np.asarray(w, dtype=object) < 0).astype(int).astype(object)

    def pos(self, w: Any) -> np.ndarray:
        w = np.asarray(w, dtype=object)
        return np.where(w > 0, w, self.zero).astype(object)

    def neg(self, w: Any) -> np.ndarray:
        w = np.asarray(w, dtype=object)
        return np.where(w < 0, w, self.zero).astype(object)

    @staticmethod
    def where(cond: Any, x: Any, y: Any) -> np.ndarray:
        return np.where(np.asarray(cond, dtype=bool), x, y).astype(object)

    @staticmethod
    def matmul(A: Any, B: Any) -> np.ndarray:
        return np.asarray(A, dtype=object).dot(np.asarray(B, dtype=object))

    def sum(self, x: Any, axis: int | None = None) -> Any:
        x = np.asarray(x, dtype=object)
        if axis is None:
            return exact_sum(x.ravel().tolist(), self.zero)
        return np.sum(x, axis=axis, initial=self.zero).astype(object)

    @staticmethod
    def transpose(A: Any) -> np.ndarray:
        return np.asarray(A, dtype=object).T

    def ones_like(self, x: Any) -> np.ndarray:
        out = np.empty(np.shape(x), dtype=object)
        out.fill(self.one)
        return out

    def zeros_like(self, x: Any) -> np.ndarray:
        out = np.empty(np.shape(x), dtype=object)
        out.fill(self.zero)
        return out

    @staticmethod
    def stabilise(z: Any, eps: Any) -> np.ndarray:
        z = np.asarray(z, dtype=object)
        return (z + np.where(z >= 0, eps, -eps)).astype(object)

    def safe_divide(self, n: Any, d: Any) -> np.ndarray:
        n, d = np.broadcast_arrays(np.asarray(n, dtype=object), np.asarray(d, dtype=object))
        out = np.empty(n.shape, dtype=object)
        out[...] = [a / b if b != 0 else self.zero for a, b in zip(n.ravel(), d.ravel())] if n.size else []
        return out.reshape(n.shape)

    @staticmethod
    def is_zero(x: Any) -> np.ndarray:
        return np.asarray(np.asarray(x, dtype=object) == 0, dtype=bool)


class FloatOps(_BooleanLogic):
    """float64 backend (numpy): the same rule bodies, rounded arithmetic, for large batches."""

    name = "float64"
    zero = 0.0
    one = 1.0

    @staticmethod
    def const(value: Any) -> Any:
        if isinstance(value, (np.ndarray, list, tuple)):
            return np.asarray([float(v) for v in np.ravel(np.asarray(value, dtype=object))]).reshape(np.shape(value))
        return float(value)

    @staticmethod
    def positive_mask(w: Any) -> np.ndarray:
        return (np.asarray(w) > 0).astype(np.float64)

    @staticmethod
    def negative_mask(w: Any) -> np.ndarray:
        return (np.asarray(w) < 0).astype(np.float64)

    @staticmethod
    def pos(w: Any) -> np.ndarray:
        return np.maximum(w, 0.0)

    @staticmethod
    def neg(w: Any) -> np.ndarray:
        return np.minimum(w, 0.0)

    @staticmethod
    def where(cond: Any, x: Any, y: Any) -> np.ndarray:
        return np.where(cond, x, y)

    @staticmethod
    def matmul(A: Any, B: Any) -> np.ndarray:
        return np.asarray(A) @ np.asarray(B)

    @staticmethod
    def sum(x: Any, axis: int | None = None) -> Any:
        return np.sum(x, axis=axis)

    @staticmethod
    def transpose(A: Any) -> np.ndarray:
        return np.asarray(A).T

    @staticmethod
    def ones_like(x: Any) -> np.ndarray:
        return np.ones(np.shape(x))

    @staticmethod
    def zeros_like(x: Any) -> np.ndarray:
        return np.zeros(np.shape(x))

    @staticmethod
    def stabilise(z: Any, eps: Any) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        return z + np.where(z >= 0, eps, -eps)

    @staticmethod
    def safe_divide(n: Any, d: Any) -> np.ndarray:
        n, d = np.broadcast_arrays(np.asarray(n, dtype=np.float64), np.asarray(d, dtype=np.float64))
        out = np.zeros(n.shape)
        np.divide(n, d, out=out, where=d != 0)
        return out

    @staticmethod
    def is_zero(x: Any) -> np.ndarray:
        return np.asarray(x) == 0


EXACT = ExactOps()
#: exact ops over the fastest available rational type (gmpy2.mpq, else Fraction)
FAST_EXACT = ExactOps(FAST_RATIONAL)
FLOAT64 = FloatOps()

r"""The rules' ``ops`` namespace over Z3 real terms: the same rule body, as formulas a solver can reason about.

Mirrors :class:`dtd_formal.rules.ops.ExactOps` operation by operation, with every data-dependent choice written as
a Z3 ``If`` so that the result stays a term when the inputs are variables:

- numbers: exact rationals ``z3.Q(num, den)`` from :class:`fractions.Fraction` (floats via ``Fraction(float)``,
  never through decimal text);
- ``positive_mask(w)`` = :math:`\mathrm{If}(w > 0, 1, 0)`, ``negative_mask(w)`` = :math:`\mathrm{If}(w < 0, 1, 0)`,
- ``pos(w)`` = :math:`\mathrm{If}(w > 0, w, 0)`, ``neg(w)`` = :math:`\mathrm{If}(w < 0, w, 0)`,
- ``where(c, x, y)`` = :math:`\mathrm{If}(c, x, y)` entrywise (numpy broadcasting),
- ``stabilise(z, eps)`` = :math:`z + \mathrm{If}(z \ge 0, \varepsilon, -\varepsilon)` (zennit's sign(0) = +1),
- ``safe_divide(n, d)`` = :math:`\mathrm{If}(d = 0, 0, n / d)`,
- ``matmul``, ``sum``, ``transpose``, ``ones_like``, ``zeros_like`` as in the exact backend.

Arrays are :class:`Z3Array`, a numpy object array whose comparisons (``z > 0``) return arrays of Z3 Boolean terms
instead of asking Python for a truth value, so rule bodies such as zennit's Gamma (``ops.where(z > 0, ...)``)
run unchanged. :func:`from_z3` turns a term that simplifies to a rational value back into an exact
:class:`Fraction`; a term that does not (it still depends on a variable) is an error there.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import z3

from ..errors import InputError
from ..exact import to_fraction


# ---------------------------------------------------------------------------------------------------- conversion
def to_z3(value: Any) -> z3.ArithRef:
    """One number as an exact Z3 real: Fractions, ints, floats (exactly, via ``Fraction(float)``), Z3 terms as is."""
    if isinstance(value, z3.ExprRef):
        if isinstance(value, z3.ArithRef) and value.is_int():
            return z3.ToReal(value)
        return value
    q = to_fraction(value, "Z3 constant")
    return z3.Q(q.numerator, q.denominator)


def domain_formula(point: Any, domain: Any) -> z3.BoolRef:
    """A rule's input domain (:mod:`dtd_formal.rules.domains`) as a Z3 formula over a point's coordinates."""
    from ..rules.domains import Box, NonNegative, Unbounded

    p = [to_z3(v) for v in np.ravel(np.asarray(point, dtype=object))]
    if isinstance(domain, Unbounded):
        return z3.BoolVal(True)
    if isinstance(domain, NonNegative):
        return z3.And([v >= 0 for v in p])
    if isinstance(domain, Box):
        lo, hi = domain.bounds(len(p))
        return z3.And([z3.And(v >= to_z3(l), v <= to_z3(h)) for v, l, h in zip(p, lo, hi)])
    raise NotImplementedError(f"no Z3 encoding of the domain {domain.describe()}")


def _elementwise(fn: Any, *arrays: Any) -> "Z3Array":
    """Apply ``fn`` entrywise with numpy broadcasting; the result is a :class:`Z3Array`."""
    arrs = np.broadcast_arrays(*[_object_array(a) for a in arrays])
    flat = [fn(*vals) for vals in zip(*[a.ravel().tolist() for a in arrs])]
    out = np.empty(len(flat), dtype=object)
    for i, v in enumerate(flat):
        out[i] = v
    return out.reshape(arrs[0].shape).view(Z3Array)


def _object_array(a: Any) -> np.ndarray:
    """``a`` as a plain object ndarray; a single term becomes a 0-d array (numpy must not iterate it)."""
    if isinstance(a, np.ndarray):
        return np.asarray(a, dtype=object)
    if isinstance(a, (list, tuple)):
        out = np.empty(len(a), dtype=object)
        for i, v in enumerate(a):
            out[i] = v
        return out if not any(isinstance(v, (list, tuple, np.ndarray)) for v in a) else np.array(
            [_object_array(v) for v in a], dtype=object
        )
    out = np.empty((), dtype=object)
    out[()] = a
    return out


def to_z3_array(values: Any) -> "Z3Array":
    """An array of numbers (exact, float, int) or terms as a :class:`Z3Array` of exact Z3 reals."""
    return _elementwise(to_z3, values)


def is_value(term: Any) -> bool:
    """Whether ``term`` simplifies to a rational constant."""
    t = z3.simplify(to_z3(term))
    return bool(z3.is_rational_value(t) or z3.is_int_value(t))


def z3_value_to_fraction(term: Any) -> Fraction:
    """The exact rational a variable-free term simplifies to (raises :class:`InputError` otherwise)."""
    t = z3.simplify(to_z3(term))
    if z3.is_rational_value(t) or z3.is_int_value(t):
        return Fraction(t.numerator_as_long(), t.denominator_as_long()) if z3.is_rational_value(t) else Fraction(
            t.as_long()
        )
    raise InputError(f"Z3 term does not simplify to a rational constant: {t}")


def from_z3(values: Any) -> np.ndarray | Fraction:
    """A term or array of variable-free terms as exact Fractions (object array for arrays)."""
    if isinstance(values, z3.ExprRef):
        return z3_value_to_fraction(values)
    arr = _object_array(values)
    flat = [z3_value_to_fraction(v) for v in arr.ravel().tolist()]
    out = np.empty(len(flat), dtype=object)
    for i, v in enumerate(flat):
        out[i] = v
    return out.reshape(arr.shape)


# ---------------------------------------------------------------------------------------------------- arrays
def _cmp(op: str) -> Any:
    def entry(x: Any, y: Any) -> z3.BoolRef:
        x, y = to_z3(x), to_z3(y)
        if op == ">":
            return x > y
        if op == ">=":
            return x >= y
        if op == "<":
            return x < y
        if op == "<=":
            return x <= y
        if op == "==":
            return x == y
        return x != y

    def method(self: "Z3Array", other: Any) -> "Z3Array":
        return _elementwise(entry, self, other)

    return method


def _exact_operand(other: Any) -> Any:
    """A Python/numpy float operand as its exact Z3 rational (``Fraction(float)``): Z3's own coercion would read
    the float's decimal text (0.1 as 1/10), a different number than the exact backend's."""
    if isinstance(other, (float, np.floating)):
        return _scalar(to_z3(other))
    if isinstance(other, np.ndarray) and other.dtype.kind == "f":
        return to_z3_array(other)
    return other


def _arith(name: str) -> Any:
    def method(self: "Z3Array", other: Any) -> Any:
        return getattr(np.ndarray, name)(self, _exact_operand(other))

    return method


class Z3Array(np.ndarray):
    """numpy object array of Z3 terms whose comparisons give arrays of Z3 Boolean terms (never Python bools);
    float operands of its arithmetic are converted exactly (:func:`_exact_operand`)."""

    __add__ = _arith("__add__")
    __radd__ = _arith("__radd__")
    __sub__ = _arith("__sub__")
    __rsub__ = _arith("__rsub__")
    __mul__ = _arith("__mul__")
    __rmul__ = _arith("__rmul__")
    __truediv__ = _arith("__truediv__")
    __rtruediv__ = _arith("__rtruediv__")

    __gt__ = _cmp(">")
    __ge__ = _cmp(">=")
    __lt__ = _cmp("<")
    __le__ = _cmp("<=")
    __eq__ = _cmp("==")  # type: ignore[assignment]
    __ne__ = _cmp("!=")  # type: ignore[assignment]
    __hash__ = None  # type: ignore[assignment]

    def __and__(self, other: Any) -> "Z3Array":  # type: ignore[override]
        return _elementwise(lambda p, q: z3.And(p, q), self, other)

    def __or__(self, other: Any) -> "Z3Array":  # type: ignore[override]
        return _elementwise(lambda p, q: z3.Or(p, q), self, other)

    def __invert__(self) -> "Z3Array":  # type: ignore[override]
        return _elementwise(lambda p: z3.Not(p), self)


def _as_z3array(x: Any) -> Z3Array:
    if isinstance(x, Z3Array):
        return x
    return to_z3_array(x)


def _bool(c: Any) -> z3.BoolRef:
    if isinstance(c, z3.BoolRef):
        return c
    if isinstance(c, (bool, np.bool_)):
        return z3.BoolVal(bool(c))
    if isinstance(c, z3.ArithRef):
        return c != 0
    return z3.BoolVal(bool(to_fraction(c, "condition") != 0))


# ---------------------------------------------------------------------------------------------------- the ops
_ZERO = z3.RealVal(0)
_ONE = z3.RealVal(1)


def _scalar(term: z3.ArithRef) -> Z3Array:
    """A single term as a 0-d :class:`Z3Array`: ``scalar * array`` then broadcasts through numpy (a bare Z3 term
    on the left of ``*`` would try to convert the array itself)."""
    out = np.empty((), dtype=object)
    out[()] = term
    return out.view(Z3Array)


class Z3Ops:
    """Z3 backend of the rules' ``ops`` namespace (module docstring); values are :class:`Z3Array` of reals.

    Scalars (``zero``, ``one``, ``const(gamma)``) are 0-d :class:`Z3Array` so that they broadcast like numbers.
    """

    name = "z3"
    zero = _scalar(_ZERO)
    one = _scalar(_ONE)

    @staticmethod
    def const(value: Any) -> Z3Array:
        """A rule parameter as an exact Z3 real (arrays entrywise; a scalar as a 0-d array)."""
        return to_z3_array(value)

    @staticmethod
    def lift(values: Any) -> Z3Array:
        """Any numeric array (Fractions, floats, terms) as a :class:`Z3Array`."""
        return to_z3_array(values)

    @staticmethod
    def positive_mask(w: Any) -> Z3Array:
        return _elementwise(lambda v: z3.If(to_z3(v) > 0, _ONE, _ZERO), w)

    @staticmethod
    def negative_mask(w: Any) -> Z3Array:
        return _elementwise(lambda v: z3.If(to_z3(v) < 0, _ONE, _ZERO), w)

    @staticmethod
    def pos(w: Any) -> Z3Array:
        return _elementwise(lambda v: z3.If(to_z3(v) > 0, to_z3(v), _ZERO), w)

    @staticmethod
    def neg(w: Any) -> Z3Array:
        return _elementwise(lambda v: z3.If(to_z3(v) < 0, to_z3(v), _ZERO), w)

    @staticmethod
    def where(cond: Any, x: Any, y: Any) -> Z3Array:
        return _elementwise(lambda c, p, q: z3.If(_bool(c), to_z3(p), to_z3(q)), cond, x, y)

    @staticmethod
    def matmul(A: Any, B: Any) -> Any:
        out = np.asarray(_as_z3array(A), dtype=object).dot(np.asarray(_as_z3array(B), dtype=object))
        return out.view(Z3Array) if isinstance(out, np.ndarray) else out

    @staticmethod
    def sum(x: Any, axis: int | None = None) -> Any:
        arr = np.asarray(_as_z3array(x), dtype=object)
        if axis is None:
            terms = arr.ravel().tolist()
            return z3.Sum(terms) if terms else _ZERO
        return np.sum(arr, axis=axis, initial=_ZERO).astype(object).view(Z3Array)

    @staticmethod
    def transpose(A: Any) -> Z3Array:
        return _as_z3array(A).T

    @staticmethod
    def ones_like(x: Any) -> Z3Array:
        out = np.empty(np.shape(x), dtype=object)
        out.fill(_ONE)
        return out.view(Z3Array)

    @staticmethod
    def zeros_like(x: Any) -> Z3Array:
        out = np.empty(np.shape(x), dtype=object)
        out.fill(_ZERO)
        return out.view(Z3Array)

    @staticmethod
    def stabilise(z: Any, eps: Any) -> Z3Array:
        return _elementwise(lambda v, e: to_z3(v) + z3.If(to_z3(v) >= 0, to_z3(e), -to_z3(e)), z, eps)

    @staticmethod
    def safe_divide(n: Any, d: Any) -> Z3Array:
        return _elementwise(lambda p, q: z3.If(to_z3(q) == 0, _ZERO, to_z3(p) / to_z3(q)), n, d)

    @staticmethod
    def is_zero(x: Any) -> Z3Array:
        """Entrywise Boolean terms ``x == 0`` (a solver decides them; :func:`from_z3` does not apply)."""
        return _elementwise(lambda v: to_z3(v) == 0, x)

    # ---------------------------------------------------------------- logic (properties)
    true = z3.BoolVal(True)
    false = z3.BoolVal(False)

    @staticmethod
    def all_true(x: Any) -> z3.BoolRef:
        return z3.And([_bool(c) for c in np.ravel(np.asarray(x, dtype=object)).tolist()])

    @staticmethod
    def any_true(x: Any) -> z3.BoolRef:
        return z3.Or([_bool(c) for c in np.ravel(np.asarray(x, dtype=object)).tolist()])

    @staticmethod
    def and_(*conditions: Any) -> z3.BoolRef:
        return z3.And([_bool(c) for c in conditions])

    @staticmethod
    def or_(*conditions: Any) -> z3.BoolRef:
        return z3.Or([_bool(c) for c in conditions])

    @staticmethod
    def not_(condition: Any) -> z3.BoolRef:
        return z3.Not(_bool(condition))

    @staticmethod
    def implies(p: Any, q: Any) -> z3.BoolRef:
        return z3.Implies(_bool(p), _bool(q))


Z3 = Z3Ops()

__all__ = ["Z3", "Z3Ops", "Z3Array", "to_z3", "to_z3_array", "from_z3", "is_value", "z3_value_to_fraction"]

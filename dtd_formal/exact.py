"""Exact numbers: conversion of user values to rationals, and back to floats.

Floats are dyadic rationals, so every finite float converts *exactly*: ``Fraction(0.1)`` is
``3602879701896397/36028797018963968``, not ``1/10``. Strings are parsed as the rational they spell
(``"0.1"`` is 1/10, ``"1/3"`` is 1/3), because a user who types a decimal means that decimal.

All exact arrays in dtd_formal are numpy object arrays whose entries are :class:`fractions.Fraction`.
This module is the numeric foundation; it imports nothing else of the package but :mod:`dtd_formal.errors`.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from numbers import Rational
from typing import Any

import numpy as np

from .errors import InputError

ExactArray = np.ndarray  # object array of Fraction

#: bounds on numbers read from text or given as integers/rationals (a number beyond them is refused, named): at most
#: this many digits in a numeric text, a decimal exponent of at most this magnitude, and numerators/denominators of
#: at most this many bits (about 10^10000). Generous for any network, small enough that parsing cannot hang.
MAX_DIGITS = 10_000
MAX_EXPONENT = 4_000
MAX_BITS = 33_300
_EXPONENT = re.compile(r"[eE]\s*([+-]?\d+)")

try:  # gmpy2's mpq: the same exact rationals, implemented in C (about 10x faster than Fraction)
    from gmpy2 import divexact as _divexact
    from gmpy2 import lcm as _lcm
    from gmpy2 import mpq as FAST_RATIONAL
except ImportError:  # pragma: no cover - gmpy2 is a dependency, Fraction keeps everything exact without it
    FAST_RATIONAL, _lcm = Fraction, math.lcm
    _divexact = int.__floordiv__


def to_fraction(value: Any, name: str = "value") -> Fraction:
    """Convert one scalar exactly to a :class:`Fraction`.

    Parameters
    ----------
    value : int, Fraction, float, numpy scalar, str ("3", "-1/3", "0.25") or 0-d tensor
    name : str
        What the value is, for the error message.

    Raises
    ------
    InputError
        For NaN, infinity, booleans, or anything that is not a number.
    """
    if isinstance(value, Fraction):
        return _bounded(value, name)
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}: expected a number, got the boolean {value!r}")
    if isinstance(value, (int, np.integer)):
        return _bounded(Fraction(int(value)), name)
    if isinstance(value, Rational):
        return _bounded(Fraction(value.numerator, value.denominator), name)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if not math.isfinite(f):
            raise InputError(f"{name}: {f!r} is not a finite number")
        return Fraction(f)
    if isinstance(value, str):
        return parse_rational(value, name)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # torch / numpy 0-d
        return to_fraction(value.item(), name)
    raise InputError(f"{name}: expected a number, got {type(value).__name__}")


def _bounded(q: Fraction, name: str) -> Fraction:
    """``q`` if its numerator and denominator have at most :data:`MAX_BITS` bits, else :class:`InputError`."""
    if q.numerator.bit_length() > MAX_BITS or q.denominator.bit_length() > MAX_BITS:
        raise InputError(f"{name}: the number has more than {MAX_BITS} bits (about 10^10000) in its numerator or "
                         "denominator; larger numbers are refused")
    return q


def parse_rational(text: str, name: str = "value") -> Fraction:
    """The rational a text spells ("3", "-1/3", "0.25", "1e-3"), exactly; a text with more than
    :data:`MAX_DIGITS` digits or a decimal exponent beyond :data:`MAX_EXPONENT` is refused (it could not be a
    network's number, and Fraction would build a gigantic integer for it)."""
    stripped = text.strip()
    digits = sum(ch.isdigit() for ch in stripped)
    if digits > MAX_DIGITS or len(stripped) > MAX_DIGITS + 64:
        raise InputError(f"{name}: {stripped[:40]!r}... has {digits} digits; at most {MAX_DIGITS} are read")
    for m in _EXPONENT.finditer(stripped):
        if abs(int(m.group(1))) > MAX_EXPONENT:
            raise InputError(f"{name}: {stripped[:40]!r} has the exponent {m.group(1)}; at most {MAX_EXPONENT} in "
                             "magnitude is read")
    try:
        return _bounded(Fraction(stripped), name)
    except (ValueError, ZeroDivisionError) as exc:
        raise InputError(f"{name}: cannot read {text!r} as a rational number ({exc})") from None


def _as_numpy(value: Any) -> Any:
    """Turn torch tensors into float64 numpy arrays (exact for float16/32/64), leave everything else."""
    mod = type(value).__module__
    if mod.startswith("torch"):
        t = value.detach().cpu()
        if t.is_floating_point():
            t = t.double()
        return t.numpy()
    return value


def to_fraction_array(values: Any, name: str = "array") -> ExactArray:
    """Convert a scalar, (nested) list, numpy array or torch tensor exactly to an object array of Fractions.

    The shape is preserved; ``np.asarray`` semantics decide it. A float64 array of shape (n,) becomes an
    object array of shape (n,) whose entries equal the floats exactly.
    """
    values = _as_numpy(values)
    if isinstance(values, np.ndarray) and values.dtype != object:
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            bad = np.argwhere(~np.isfinite(values))[0]
            raise InputError(f"{name}: entry {tuple(int(i) for i in bad)} is {float(values[tuple(bad)])!r}, not finite")
        if values.dtype.kind not in "fiub":
            raise InputError(f"{name}: unsupported dtype {values.dtype}")
        if values.dtype.kind == "b":
            raise InputError(f"{name}: boolean array is not a number array")
        flat = [Fraction(v) for v in values.ravel().tolist()]
    else:
        arr = np.asarray(values, dtype=object)
        flat = [to_fraction(v, name) for v in arr.ravel().tolist()]
        values = arr
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(np.shape(values))


def _float(v: Any) -> float:
    """One exact number rounded to the nearest float64; beyond the float range, +-inf (as IEEE rounding does)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def to_float(values: Any) -> np.ndarray:
    """Float64 view of an exact array (or anything array-like): each entry rounded to nearest (+-inf beyond the
    float range; the certified float paths treat a non-finite value as undecided and fall back to exact)."""
    values = _as_numpy(values)
    arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if arr.dtype == object:
        return np.array([_float(v) for v in arr.ravel()], dtype=np.float64).reshape(arr.shape)
    return arr.astype(np.float64)


def fraction_to_str(value: Fraction) -> str:
    """JSON form of a rational: "num/den", or "num" for integers."""
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def array_to_json(values: ExactArray) -> Any:
    """Nested lists of "num/den" strings (exact, replayable)."""
    arr = np.asarray(values, dtype=object)
    if arr.ndim == 0:
        return fraction_to_str(arr.item())
    return [array_to_json(v) for v in arr]


def array_from_json(values: Any, name: str = "array") -> ExactArray:
    """Inverse of :func:`array_to_json`; accepts strings "n/d", ints and floats (floats converted exactly)."""
    return to_fraction_array(values, name)


def zeros(shape: int | tuple[int, ...]) -> ExactArray:
    """Exact zero array of the given shape."""
    out = np.empty(shape, dtype=object)
    out.fill(Fraction(0))
    return out


def sign(values: ExactArray) -> np.ndarray:
    """Integer sign (+1, 0, -1) of each exact entry, as an int8 array."""
    arr = np.asarray(values, dtype=object)
    return np.array([(v > 0) - (v < 0) for v in arr.ravel()], dtype=np.int8).reshape(arr.shape)


def common_denominator(values: ExactArray) -> tuple[np.ndarray, int]:
    """Write an exact array as integer numerators over one common denominator.

    Returns ``(N, d)`` with N an object array of Python ints and d > 0 an int such that ``values == N / d``
    entrywise; d is the least common multiple of the entries' denominators (a power of two for float data).
    """
    arr = np.asarray(values, dtype=object)
    flat = [v if isinstance(v, Rational) else Fraction(v) for v in arr.ravel().tolist()]  # Fraction, int, mpq
    d = math.lcm(*{int(v.denominator) for v in flat}) if flat else 1
    nums = np.empty(len(flat), dtype=object)
    nums[:] = [int(v.numerator) * (d // int(v.denominator)) for v in flat]
    return nums.reshape(arr.shape), d


def to_fast(values: ExactArray) -> np.ndarray:
    """Exact array of Fractions -> object array of :data:`FAST_RATIONAL` (same values) for internal hot paths."""
    arr = np.asarray(values, dtype=object)
    if FAST_RATIONAL is Fraction:
        return arr
    out = np.empty(arr.shape, dtype=object)
    out.ravel()[:] = [FAST_RATIONAL(v.numerator, v.denominator) for v in arr.ravel()]
    return out


def from_fast(values: np.ndarray) -> ExactArray:
    """Inverse of :func:`to_fast`: back to the public exact type (Fraction)."""
    arr = np.asarray(values, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    out.ravel()[:] = [fast_to_fraction(v) for v in arr.ravel()]
    return out


def fast_to_fraction(value: Any) -> Fraction:
    """One FAST_RATIONAL (or int/Fraction) -> Fraction (already in lowest terms: no gcd is recomputed)."""
    return _coprime_fraction(int(value.numerator), int(value.denominator))


def _coprime_fraction(num: int, den: int) -> Fraction:
    """Fraction(num, den) for coprime num, den > 0 without the gcd (gcds of 50k-bit numbers cost milliseconds)."""
    if _FROM_COPRIME is not None:
        return _FROM_COPRIME(num, den)
    return Fraction(num, den, _normalize=False)  # type: ignore[call-arg]


_FROM_COPRIME = getattr(Fraction, "_from_coprime_ints", None)  # Python >= 3.12


def divide_exactly(a: Any, b: Any) -> Any:
    """a / b for integers where b divides a (gmpy2's exact division when installed: faster than //)."""
    return _divexact(a, b)


def integer_lcm(values: list[Any]) -> Any:
    """Least common multiple of positive integers (gmpy2's when installed)."""
    out: Any = 1
    for v in values:
        out = _lcm(out, v)
    return out


def exact_sum(values: Any, zero: Any = 0) -> Any:
    r"""The exact sum of rationals by pairwise (balanced tree) summation.

    Adding n rationals one after the other re-reduces an ever larger denominator n times; pairing neighbours
    level by level keeps the operands of each addition small until the last levels, which turns the sum of
    3072 relevances with 50k-bit denominators from seconds into milliseconds. The value is the same.
    """
    items = list(np.asarray(values, dtype=object).ravel()) if not isinstance(values, list) else list(values)
    if not items:
        return zero
    while len(items) > 1:
        paired = [items[i] + items[i + 1] for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            paired.append(items[-1])
        items = paired
    return items[0] + zero

r"""One-sided germs at :math:`s \to 0^+`: exact truncated Laurent series, for the ``continuity`` property.

Along a ray :math:`x + s d` every quantity a rule computes is, for all small enough :math:`s > 0`, one rational
function of s. A :class:`Germ` stores its Laurent expansion :math:`s^{lo} (c_0 + c_1 s + \dots + c_{p-1} s^{p-1}
+ O(s^p))` with exact rational coefficients (:data:`dtd_formal.exact.FAST_RATIONAL`: gmpy2's ``mpq`` when
installed, else Fraction; limits are handed out as Fractions), so

- comparisons decide the sign *for all small s > 0* (the sign of the leading non-zero coefficient), which is how
  the piece (ReLU phases, masks, stabiliser signs) is chosen, exactly;
- the one-sided limit is :math:`c_0` when :math:`lo = 0`, 0 when :math:`lo > 0`, and infinite when :math:`lo < 0`.

A germ also carries ``deg``: an upper bound on its degree when it is known to be a polynomial in s (inputs are
affine, sums and products of polynomials stay polynomials; a division by a non-constant makes it None). A series
whose known coefficients all vanish is exactly zero when it is a polynomial of degree below the precision;
otherwise the decision is refused with :class:`Undecided` (the caller reports the case as undecided, never as a
verdict). Germs work with numpy object arrays and with :class:`dtd_formal.rules.ops.ExactOps` unchanged, since
comparisons return Python booleans.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ..exact import FAST_RATIONAL, fast_to_fraction
from ..rules.ops import ExactOps

PRECISION = 6


class Undecided(ArithmeticError):
    """A sign decision on a series that vanishes to the working precision (not known to be exactly zero)."""


_ZERO = FAST_RATIONAL(0)


def _coef(v: Any) -> Any:
    """One exact coefficient as :data:`~dtd_formal.exact.FAST_RATIONAL` (ints, Fractions, mpq; floats exactly)."""
    if isinstance(v, FAST_RATIONAL):
        return v
    if isinstance(v, Fraction):
        return FAST_RATIONAL(v.numerator, v.denominator)
    if isinstance(v, int):
        return FAST_RATIONAL(v)
    if isinstance(v, float):
        exact = Fraction(v)
        return FAST_RATIONAL(exact.numerator, exact.denominator)
    raise TypeError(f"cannot combine a germ with {type(v).__name__}")


class Germ:
    """:math:`s^{lo} \\sum_k c_k s^k + O(s^{lo + len(c)})`; ``deg`` bounds the degree of a polynomial germ."""

    __slots__ = ("lo", "c", "deg")

    def __init__(self, lo: int, c: list[Any], deg: int | None) -> None:
        # normalise: strip leading zeros (each costs one order of relative precision)
        k = 0
        while k < len(c) and c[k] == 0:
            k += 1
        self.lo, self.c, self.deg = lo + k, list(c[k:]), deg

    # ------------------------------------------------------------------ construction
    @classmethod
    def const(cls, v: Any, precision: int = PRECISION) -> "Germ":
        return cls(0, [_coef(v)] + [_ZERO] * (precision - 1), 0)

    @classmethod
    def affine(cls, v: Any, slope: Any, precision: int = PRECISION) -> "Germ":
        """:math:`v + \\text{slope}\\, s`."""
        return cls(0, [_coef(v), _coef(slope)] + [_ZERO] * (precision - 2), 1)

    @property
    def prec(self) -> int:
        """Absolute precision: orders below this are known."""
        return self.lo + len(self.c)

    def exactly_zero(self) -> bool:
        """True when the germ is exactly 0; raises :class:`Undecided` when that cannot be decided."""
        if self.c:
            return False
        if self.deg is not None and self.deg < self.prec:
            return True
        raise Undecided("a series vanishes to the working precision; cannot decide whether it is exactly zero")

    def sign(self) -> int:
        """Sign for all sufficiently small s > 0."""
        if self.exactly_zero():
            return 0
        return 1 if self.c[0] > 0 else -1

    def limit(self) -> Fraction | None:
        """:math:`\\lim_{s \\to 0^+}`; None when it is infinite (the value a Fraction)."""
        if not self.c:
            if self.prec > 0:  # O(s^prec) with prec >= 1: the limit is 0 whether or not the germ is exactly 0
                return Fraction(0)
            raise Undecided("a series vanishes to a non-positive precision; its limit is unknown")
        if self.lo > 0:
            return Fraction(0)
        if self.lo < 0:
            return None
        return fast_to_fraction(self.c[0])

    # ------------------------------------------------------------------ arithmetic
    @staticmethod
    def _lift(v: Any, like: "Germ") -> "Germ":
        return v if isinstance(v, Germ) else Germ.const(v, max(len(like.c), 2) + max(like.lo, 0))

    def __add__(self, other: Any) -> "Germ":
        o = self._lift(other, self)
        if not self.c and not o.c:
            prec = min(self.prec, o.prec)
            return Germ(prec, [], _deg_add(self.deg, o.deg))
        lo = min(self.lo, o.lo)
        prec = min(self.prec, o.prec)
        c = [_ZERO] * max(prec - lo, 0)
        for g in (self, o):
            for k, v in enumerate(g.c):
                if g.lo + k < prec:
                    c[g.lo + k - lo] += v
        return Germ(lo, c, _deg_add(self.deg, o.deg))

    __radd__ = __add__

    def __neg__(self) -> "Germ":
        return Germ(self.lo, [-v for v in self.c], self.deg)

    def __sub__(self, other: Any) -> "Germ":
        return self + (-self._lift(other, self))

    def __rsub__(self, other: Any) -> "Germ":
        return self._lift(other, self) + (-self)

    def __mul__(self, other: Any) -> "Germ":
        o = self._lift(other, self)
        deg = None if self.deg is None or o.deg is None else self.deg + o.deg
        for g in (self, o):
            if not g.c and g.deg is not None and g.deg < g.prec:  # an exact zero factor: the product is exactly 0
                return Germ(max(self.prec, o.prec, PRECISION), [], 0)
        if not self.c or not o.c:
            # a zero-to-precision factor: the product is known to the smaller absolute precision it allows
            lo = (self.prec + (o.lo if o.c else o.prec)) if not self.c else (o.prec + self.lo)
            return Germ(lo, [], deg)
        n = min(len(self.c), len(o.c))
        p, q = self.c, o.c
        c = [sum([p[i] * q[k - i] for i in range(k + 1)], _ZERO) for k in range(n)]
        return Germ(self.lo + o.lo, c, deg)

    __rmul__ = __mul__

    def inverse(self) -> "Germ":
        if not self.c:
            if self.exactly_zero():
                raise ZeroDivisionError("germ division by exact zero")
        n = len(self.c)
        inv = [_ZERO] * n
        inv[0] = 1 / self.c[0]
        for k in range(1, n):
            inv[k] = -sum([self.c[i] * inv[k - i] for i in range(1, k + 1)], _ZERO) / self.c[0]
        deg = self.deg if self.deg == 0 else None
        return Germ(-self.lo, inv, deg)

    def __truediv__(self, other: Any) -> "Germ":
        return self * self._lift(other, self).inverse()

    def __rtruediv__(self, other: Any) -> "Germ":
        return self._lift(other, self) * self.inverse()

    # ------------------------------------------------------------------ comparisons (for all small s > 0)
    def _cmp(self, other: Any) -> int:
        return (self - other).sign()

    def __gt__(self, other: Any) -> bool:
        return self._cmp(other) > 0

    def __ge__(self, other: Any) -> bool:
        return self._cmp(other) >= 0

    def __lt__(self, other: Any) -> bool:
        return self._cmp(other) < 0

    def __le__(self, other: Any) -> bool:
        return self._cmp(other) <= 0

    def __eq__(self, other: Any) -> bool:  # type: ignore[override]
        return self._cmp(other) == 0

    def __ne__(self, other: Any) -> bool:  # type: ignore[override]
        return self._cmp(other) != 0

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        terms = " + ".join(f"({v})s^{self.lo + k}" for k, v in enumerate(self.c[:4]))
        return f"Germ({terms or '0'} + O(s^{self.prec}))"


def _deg_add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else max(a, b)




class GermOps(ExactOps):
    """The exact ops over arrays of :class:`Germ` (and exact rationals): the rule bodies and the walk run
    unchanged; the walk's check that results are exact rationals does not apply (germs are exact series).
    Its constants are :data:`~dtd_formal.exact.FAST_RATIONAL`, as the germs' coefficients are."""

    exact_results = False


GERM_OPS = GermOps(FAST_RATIONAL)

__all__ = ["Germ", "Undecided", "PRECISION", "GermOps", "GERM_OPS"]

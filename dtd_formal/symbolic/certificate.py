r"""Evidence collected by a proof, certificates on disk, and their exact replay.

A proof records two kinds of evidence in an :class:`Evidence`:

- *identities*: a residual expression that must simplify to exactly 0: for a rational function, r is the zero
  element of the rational-function field QQ(symbols), decided by writing r = N / D with integer polynomials N, D
  (SymPy's sparse polynomial rings, :func:`rational_numerator`) and testing N = 0; for expressions outside that
  form, the field conversion of SymPy, or the numerator of ``sympy.together(r)`` expands to the zero polynomial
  (so r = 0 wherever its denominators are non-zero); else ``sympy.cancel(sympy.expand(r)) == 0``, falling back to
  ``sympy.simplify`` for Max/Piecewise/exp/log. Each is stored as readable text (``str``), as exact ``srepr`` text (which
  keeps every symbol's sign assumptions and every Rational), with the case it covers, the side conditions it was
  derived under (non-vanishing denominators, stabiliser branch) and what it simplified to.
- *witnesses*: explicit exact data (networks as exact JSON, inputs, roots as "num/den" strings) that a claim's
  own checker re-verifies in rational arithmetic.

Replay parses stored ``srepr`` text with a recursive-descent parser (:func:`parse_srepr`: only SymPy constructor
names of an allow-list, integers and quoted symbol names; nothing is evaluated as code) and re-simplifies it.
When an identity does not simplify to 0, :func:`find_counterexample` substitutes seeded small rationals that
respect the symbols' declared signs and returns an assignment at which the residual is an exact non-zero
rational (denominators non-zero), so a wrong statement is refuted with a replayable counterexample.
"""

from __future__ import annotations

import functools
import json
import random
import re
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import sympy as sp
from sympy.polys.rings import PolyRing

from ..errors import InputError
from .ops import assert_exact, expr_srepr, expr_str

CERTIFICATE_FORMAT = "dtd_formal.certificate/1"

#: names allowed in stored srepr text (SymPy constructors only)
_ALLOWED_NAMES = frozenset({
    "Symbol", "Dummy", "Integer", "Rational", "Add", "Mul", "Pow", "Max", "Min", "Piecewise", "Heaviside", "exp",
    "log", "Abs", "sign", "ExprCondPair", "StrictGreaterThan", "GreaterThan", "StrictLessThan", "LessThan",
    "Equality", "Unequality", "And", "Or", "Not", "true", "false", "True", "False", "Half", "One", "Zero",
    "NegativeOne", "Infinity", "NegativeInfinity", "oo", "BooleanTrue", "BooleanFalse",
    "real", "positive", "negative", "nonnegative", "nonpositive", "integer", "zero", "nonzero", "finite",
    "extended_real", "commutative",
})


class NotRationalFunction(ValueError):
    """The expression is not built from symbols and rationals by +, * and integer powers (or divides by 0)."""


def rational_numerator(expr: sp.Expr) -> Any:
    r"""The numerator N of ``expr`` = N / D, N and D in :math:`\mathbb{Z}[x_1, \dots, x_k]` (the free symbols).

    Built bottom-up without any gcd: a rational p/q is (p, q), a symbol x is (x, 1), and

    .. math::  \frac{n_1}{d_1} + \frac{n_2}{d_2} = \frac{n_1 d_2 + n_2 d_1}{d_1 d_2}
               \ \left(= \frac{n_1 + n_2}{d}\ \text{when}\ d_1 = d_2 = d\right),\qquad
               \frac{n_1}{d_1} \cdot \frac{n_2}{d_2} = \frac{n_1 n_2}{d_1 d_2},\qquad
               \Big(\frac{n}{d}\Big)^{k} = \frac{n^k}{d^k},\quad \Big(\frac{n}{d}\Big)^{-k} = \frac{d^k}{n^k}\ (n \ne 0).

    Every D is a product of non-zero polynomials, so ``expr`` is the zero element of the field
    :math:`\mathbb{Q}(x_1, \dots, x_k)` exactly when N is the zero polynomial: the same decision as SymPy's
    ``QQ.frac_field(...).from_sympy(expr) == 0``, without the multivariate gcds that reduce every intermediate
    fraction there.

    Raises
    ------
    NotRationalFunction
        For any other node (functions, non-integer powers, numbers other than rationals, non-commutative
        symbols) and for a power :math:`(n/d)^{-k}` whose base is the zero polynomial.
    """
    gens = sorted(expr.free_symbols, key=sp.default_sort_key)
    ring = _integer_ring(tuple(gens))
    index = {g: ring.gens[i] for i, g in enumerate(gens)}

    def nd(e: sp.Expr) -> tuple[Any, Any]:
        if e.is_Rational:
            return ring(int(e.p)), ring(int(e.q))
        if e.is_Symbol and e.is_commutative:
            return index[e], ring.one
        if e.is_Add:
            num, den = ring.zero, ring.one
            for arg in e.args:
                n, d = nd(arg)
                if d == den:
                    num = num + n
                else:
                    num, den = num * d + n * den, den * d
            return num, den
        if e.is_Mul:
            num, den = ring.one, ring.one
            for arg in e.args:
                n, d = nd(arg)
                num, den = num * n, den * d
            return num, den
        if e.is_Pow and e.exp.is_Integer:
            n, d = nd(e.base)
            k = int(e.exp)
            if k >= 0:
                return n**k, d**k
            if n == 0:
                raise NotRationalFunction(f"division by a zero polynomial in {e}")
            return d**-k, n**-k
        raise NotRationalFunction(f"{type(e).__name__} is not a field operation on symbols and rationals")

    return nd(expr)[0]


@functools.lru_cache(maxsize=256)
def _integer_ring(gens: tuple[sp.Symbol, ...]) -> Any:
    """The sparse polynomial ring ZZ[gens] (built once per tuple of symbols)."""
    return PolyRing(gens, sp.ZZ) if gens else PolyRing((sp.Dummy("x"),), sp.ZZ)


def simplify_to_zero(expr: sp.Expr) -> tuple[bool, str, sp.Expr]:
    """Whether ``expr`` simplifies to exactly 0: (holds, method used, simplified expression)."""
    assert_exact(expr)
    if expr == 0:
        return True, "literal 0", sp.Integer(0)
    if not expr.has(sp.Piecewise, sp.Max, sp.Min, sp.Heaviside, sp.exp, sp.log):
        try:
            numerator = rational_numerator(expr)
        except NotRationalFunction:
            numerator = None
        if numerator is not None:
            if numerator == 0:
                return True, "zero in QQ(symbols)", sp.Integer(0)
            return False, "cancel(expand)", sp.cancel(sp.expand(expr))  # a non-zero rational function
        # not a field expression of symbols (or a division by a zero polynomial): SymPy's own field conversion
        # (numerator and denominator as polynomials, reduced by their gcd), then together / expand
        gens = sorted(expr.free_symbols, key=lambda v: v.name)
        try:
            field = sp.QQ.frac_field(*gens) if gens else None
            if field is not None and field.from_sympy(expr) == field.zero:
                return True, "zero in QQ(symbols)", sp.Integer(0)
        except (sp.polys.polyerrors.PolificationFailed, sp.polys.polyerrors.CoercionFailed, ValueError):
            pass
        numerator, _ = sp.fraction(sp.together(expr))
        if sp.expand(numerator) == 0:
            return True, "together; expand(numerator)", sp.Integer(0)
    s = sp.cancel(sp.expand(expr))
    if s == 0:
        return True, "cancel(expand)", s
    if expr.has(sp.Piecewise, sp.Max, sp.Min, sp.Heaviside, sp.exp, sp.log):
        s2 = sp.simplify(expr)
        if s2 == 0:
            return True, "simplify", s2
    return False, "cancel(expand)", s


@dataclass
class Evidence:
    """What a proof established, in a form that can be written to JSON and replayed."""

    identities: list[dict[str, Any]] = field(default_factory=list)
    witnesses: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  #: seconds of named parts (not re-derived by replay)
    started: float = field(default_factory=time.perf_counter)
    store_text: bool = True

    def identity(self, case: str, residual: sp.Expr, conditions: list[str] | tuple[str, ...] = ()) -> bool:
        """Record that ``residual`` (for ``case``) simplifies to 0; returns whether it does."""
        residual = sp.sympify(residual)
        holds, method, simplified = simplify_to_zero(residual)
        self.identities.append({
            "case": case,
            "residual": expr_str(residual) if self.store_text else "",
            "srepr": expr_srepr(residual),
            "simplify": method,
            "simplified": expr_str(simplified),
            "conditions": list(conditions),
            "holds": holds,
        })
        return holds

    def witness(self, kind: str, **data: Any) -> None:
        """Record an explicit, exactly checked witness (``kind`` names the claim's checker)."""
        self.witnesses.append({"kind": kind, **data})

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.identities if not r["holds"]]

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def to_certificate(self, **extra: Any) -> dict[str, Any]:
        return {"identities": self.identities, "witnesses": self.witnesses, "notes": self.notes,
                "n_identities": len(self.identities), "seconds": round(self.seconds(), 4), "timings": self.timings,
                **extra}


# ------------------------------------------------------------------------------------------------ safe parsing
#: maximal nesting of constructor calls in stored expression text
MAX_DEPTH = 400

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<int>\d+)|(?P<str>'[A-Za-z_][A-Za-z0-9_]*'|"
                    r"\"[A-Za-z_][A-Za-z0-9_]*\")|(?P<op>[(),=-]))")


def _constructors() -> dict[str, Any]:
    """Allowed names -> the SymPy object they build (classes are called on their parsed arguments)."""
    from sympy.functions.elementary.piecewise import ExprCondPair

    out: dict[str, Any] = {name: getattr(sp, name) for name in _ALLOWED_NAMES if hasattr(sp, name)}
    out["ExprCondPair"] = ExprCondPair
    out.update({"Half": sp.S.Half, "One": sp.S.One, "Zero": sp.S.Zero, "NegativeOne": sp.S.NegativeOne,
                "Infinity": sp.S.Infinity, "NegativeInfinity": sp.S.NegativeInfinity, "oo": sp.oo,
                "true": sp.true, "false": sp.false, "BooleanTrue": sp.true, "BooleanFalse": sp.false})
    return out


_ASSUMPTIONS = frozenset({"real", "positive", "negative", "nonnegative", "nonpositive", "integer", "zero", "nonzero",
                          "finite", "extended_real", "commutative"})
_CONSTANTS = frozenset({"Half", "One", "Zero", "NegativeOne", "Infinity", "NegativeInfinity", "oo", "true", "false",
                        "BooleanTrue", "BooleanFalse"})


class _SreprParser:
    """Recursive descent over srepr tokens: ``expr := int | -int | Const | Name '(' [arg (',' arg)*] ')'``,
    ``arg := expr | 'name' | key '=' (True|False)``; a quoted identifier only as the first argument of
    Symbol/Dummy. Builds the expression by calling the allowed constructors; nothing is evaluated as code."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None:
                raise InputError(f"expression text has an unexpected character {text[pos:].strip()[:1]!r}"
                                 " (exact SymPy constructors, integers and symbol names only)")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.k = 0
        self.ctors = _constructors()

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.k] if self.k < len(self.tokens) else ("end", "")

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok[0] != kind or (value is not None and tok[1] != value):
            raise InputError(f"expression text: expected {value or kind}, found {tok[1] or 'the end'!r}")
        self.k += 1
        return tok[1]

    def parse(self) -> Any:
        expr = self.expr(0)
        if self.k != len(self.tokens):
            raise InputError(f"expression text: unexpected {self.peek()[1]!r} after the expression")
        return expr

    def expr(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise InputError(f"expression text nests deeper than {MAX_DEPTH} calls")
        kind, value = self.peek()
        if kind == "op" and value == "-":
            self.k += 1
            return sp.Integer(-int(self.take("int")))
        if kind == "int":
            self.k += 1
            return sp.Integer(int(value))
        if kind != "name":
            raise InputError(f"expression text: expected a constructor or an integer, found {value or 'the end'!r}")
        if value not in _ALLOWED_NAMES or value in _ASSUMPTIONS:
            raise InputError(f"expression text uses the name {value!r}, which is not an allowed SymPy constructor")
        self.k += 1
        if value in _CONSTANTS and self.peek() != ("op", "("):
            return self.ctors[value]
        self.take("op", "(")
        args: list[Any] = []
        kwargs: dict[str, bool] = {}
        while self.peek() != ("op", ")"):
            if args or kwargs:
                self.take("op", ",")
            k2, v2 = self.peek()
            if k2 == "str":
                if value not in ("Symbol", "Dummy") or args or kwargs:
                    raise InputError(f"expression text contains the string {v2!r} outside a symbol name")
                self.k += 1
                args.append(v2[1:-1])
            elif k2 == "name" and self.k + 1 < len(self.tokens) and self.tokens[self.k + 1] == ("op", "="):
                if v2 not in _ASSUMPTIONS or value not in ("Symbol", "Dummy"):
                    raise InputError(f"expression text: keyword {v2!r} is not a symbol assumption")
                self.k += 2
                flag = self.take("name")
                if flag not in ("True", "False"):
                    raise InputError(f"expression text: assumption {v2} must be True or False, got {flag!r}")
                kwargs[v2] = flag == "True"
            else:
                args.append(self.expr(depth + 1))
        self.take("op", ")")
        if value in ("Symbol", "Dummy") and (len(args) != 1 or not isinstance(args[0], str)):
            raise InputError(f"expression text: {value} needs exactly one quoted name")
        if value not in ("Symbol", "Dummy") and kwargs:
            raise InputError(f"expression text: {value} takes no keyword arguments")
        if value in ("Integer", "Rational") and not all(isinstance(a, sp.Integer) for a in args):
            raise InputError(f"expression text: {value} takes integers only")
        try:
            return self.ctors[value](*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a constructor refusing its arguments is a malformed expression
            raise InputError(f"cannot rebuild {value} from its text ({type(exc).__name__}: {exc})") from None


def parse_srepr(text: str) -> sp.Expr:
    """Parse stored ``srepr`` text exactly with a parser (:class:`_SreprParser`), accepting only SymPy
    constructors of an allow-list, integers and symbol names; no text is evaluated as code.

    Raises
    ------
    InputError
        Text with a float literal, an unknown name, attribute access, operators other than the call syntax, strings
        outside a symbol's name, nesting beyond :data:`MAX_DEPTH`, or any other malformed text.
    """
    if not isinstance(text, str):
        raise InputError("expression text must be a string")
    expr = _SreprParser(text).parse()
    if not isinstance(expr, sp.Basic):
        raise InputError("expression text does not describe a SymPy expression")
    return expr


def replay_identity(record: dict[str, Any]) -> bool:
    """Re-simplify one stored identity exactly; True when the residual is exactly 0."""
    if not isinstance(record, dict) or "srepr" not in record:
        raise InputError("identity record without 'srepr' text")
    expr = parse_srepr(record["srepr"])
    return simplify_to_zero(expr)[0]


# ------------------------------------------------------------------------------------------------ counterexamples
def _sample(symbol: sp.Symbol, rng: random.Random) -> sp.Rational:
    v = sp.Rational(rng.randint(1, 9), rng.randint(1, 4))
    if symbol.is_negative:
        return -v
    if symbol.is_positive:
        return v
    if symbol.is_nonnegative:
        return v if rng.random() < 0.9 else sp.Integer(0)
    if symbol.is_nonpositive:
        return -v if rng.random() < 0.9 else sp.Integer(0)
    return v if rng.random() < 0.5 else -v


def find_counterexample(residual: sp.Expr, seed: int = 0, tries: int = 200) -> dict[str, str] | None:
    """Seeded search for an exact assignment (respecting declared signs) where ``residual`` is a non-zero rational.

    Returns {symbol name: "num/den"} plus the value under the key ``"residual"``, or None.
    """
    rng = random.Random(seed)
    syms = sorted(residual.free_symbols, key=lambda s: s.name)
    for _ in range(tries):
        vals = {s: _sample(s, rng) for s in syms}
        try:
            v = residual.xreplace(vals)
            if not v.is_Rational:
                v = sp.cancel(v)
        except (ZeroDivisionError, TypeError):
            continue
        if v.is_Rational and v != 0:
            out = {s.name: str(Fraction(int(val.p), int(val.q))) for s, val in vals.items()}
            out["residual"] = str(Fraction(int(v.p), int(v.q)))
            return out
    return None


# ------------------------------------------------------------------------------------------------ files
def write_certificate(path: str | Path, claim: str, verdict_json: dict[str, Any], seconds: float,
                      **extra: Any) -> Path:
    """Write ``verdict_json`` (from ``Verdict.to_json()``) with the claim name, format tag and ``extra`` fields."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": CERTIFICATE_FORMAT, "claim": claim, "seconds": round(seconds, 4), **extra, **verdict_json}
    path.write_text(json.dumps(data, indent=1))
    return path


def read_certificate(path: str | Path) -> dict[str, Any]:
    """Read and validate a certificate file; :class:`InputError` for a missing or malformed file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != CERTIFICATE_FORMAT:
        raise InputError(f"{path}: not a dtd_formal certificate (expected \"format\": \"{CERTIFICATE_FORMAT}\")")
    if "claim" not in data or "status" not in data:
        raise InputError(f"{path}: certificate without \"claim\" or \"status\"")
    return data


__all__ = ["CERTIFICATE_FORMAT", "Evidence", "simplify_to_zero", "rational_numerator", "NotRationalFunction",
           "parse_srepr", "replay_identity", "find_counterexample", "write_certificate", "read_certificate"]

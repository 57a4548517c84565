"""Rule strings for the CLI: ``lrp0``, ``epsilon:1e-6``, ``gamma:0.25``, ``zplus``, ``alphabeta:2,1``,
``zbox:LOW,HIGH``, ``wsquare``, ``flat``; a suffix ``@zennit`` selects ``bias="zennit"``.

Numbers are read exactly as the decimal or fraction they spell (``gamma:1/4`` is 1/4).
"""

from __future__ import annotations

from fractions import Fraction

from ..errors import InputError
from .base import Rule
from .catalogue import CATALOGUE, AlphaBeta, Epsilon, Gamma, ZBox

_EXPECTED_ARGS = {"epsilon": (0, 1), "gamma": (0, 1), "alphabeta": (0, 2), "zbox": (2, 2)}


def _number(text: str, spec: str) -> Fraction:
    try:
        return Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise InputError(f"rule {spec!r}: {text!r} is not a number") from None


def parse_rule(spec: str, bias: str | None = None) -> Rule:
    """Build a rule from its CLI string; ``bias`` (if given) overrides an ``@`` suffix."""
    text = spec.strip()
    convention = "dtd"
    if "@" in text:
        text, convention = text.split("@", 1)
    convention = bias or convention
    name, _, args_text = text.partition(":")
    name = name.strip().lower().replace("-", "").replace("_", "")
    aliases = {"z": "lrp0", "zb": "zbox", "w2": "wsquare", "alpha1beta0": "zplus", "zplus": "zplus"}
    name = aliases.get(name, name)
    if name not in CATALOGUE:
        raise InputError(f"unknown rule {spec!r}; known: {', '.join(sorted(CATALOGUE))}")
    args = [_number(a, spec) for a in args_text.split(",")] if args_text.strip() else []
    lo, hi = _EXPECTED_ARGS.get(name, (0, 0))
    if not lo <= len(args) <= hi:
        raise InputError(f"rule {spec!r}: {name} takes {lo}..{hi} parameters, got {len(args)}")
    if convention not in ("dtd", "zennit"):
        raise InputError(f"rule {spec!r}: bias convention must be dtd or zennit, got {convention!r}")
    cls = CATALOGUE[name]
    if cls is Epsilon:
        return Epsilon(*args, bias=convention)  # type: ignore[arg-type]
    if cls is Gamma:
        return Gamma(*args, bias=convention)  # type: ignore[arg-type]
    if cls is AlphaBeta:
        return AlphaBeta(*args, bias=convention)  # type: ignore[arg-type]
    if cls is ZBox:
        return ZBox(args[0], args[1], bias=convention)
    return cls(bias=convention)  # type: ignore[call-arg]

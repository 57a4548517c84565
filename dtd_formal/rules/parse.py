"""Rule strings for the CLI: ``lrp0``, ``epsilon:1e-6``, ``gamma:0.25``, ``zplus``, ``alphabeta:2,1``,
``zbox:LOW,HIGH``, ``wsquare``, ``flat``; a suffix ``@zennit`` selects ``bias="zennit"``.

Composite strings name a zennit preset (``epsilon-plus``, ``epsilon-alpha2-beta1``, ``epsilon-plus-flat``,
``epsilon-alpha2-beta1-flat``, ``epsilon-gamma-box:LOW,HIGH``; also written ``EpsilonPlusFlat`` or with
underscores), optionally with named parameters (``epsilon-gamma-box:low=-3,high=3,gamma=1/4``) and the same
``@zennit`` suffix. :func:`parse_explainer` accepts either kind of string.

Numbers are read exactly as the decimal or fraction they spell (``gamma:1/4`` is 1/4).
"""

from __future__ import annotations

from fractions import Fraction

from ..errors import InputError
from .base import Rule
from .composites import Composite
from .catalogue import CATALOGUE, AlphaBeta, Epsilon, Gamma, ZBox

_EXPECTED_ARGS = {"epsilon": (0, 1), "gamma": (0, 1), "alphabeta": (0, 2), "zbox": (2, 2)}


def _number(text: str, spec: str) -> Fraction:
    from ..exact import parse_rational

    try:
        return parse_rational(text, f"rule {spec!r}")
    except InputError as exc:
        raise InputError(f"rule {spec!r}: {text!r} is not a number ({exc})") from None


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


def _preset_key(name: str) -> str:
    """``EpsilonPlusFlat`` / ``epsilon-plus-flat`` / ``epsilon_plus_flat`` -> ``epsilon_plus_flat``."""
    import re

    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return snake.lower().replace("-", "_")


def parse_composite(spec: str, bias: str | None = None, canonizers: list | None = None) -> Composite:
    """Build a zennit preset from its string (module docstring); ``bias`` (if given) overrides an ``@`` suffix."""
    from .composites import PRESETS

    text = spec.strip()
    convention = "dtd"
    if "@" in text:
        text, convention = text.split("@", 1)
    convention = bias or convention
    if convention not in ("dtd", "zennit"):
        raise InputError(f"composite {spec!r}: bias convention must be dtd or zennit, got {convention!r}")
    name, _, args_text = text.partition(":")
    key = _preset_key(name)
    if key not in PRESETS:
        known = ", ".join(k.replace("_", "-") for k in sorted(PRESETS))
        raise InputError(f"unknown composite {spec!r}; known: {known}")
    positional: list[Fraction] = []
    named: dict[str, Fraction] = {}
    for part in (p.strip() for p in args_text.split(",") if p.strip()):
        if "=" in part:
            k, _, v = part.partition("=")
            named[k.strip().lower()] = _number(v.strip(), spec)
        elif named:
            raise InputError(f"composite {spec!r}: positional parameter {part!r} after a named one")
        else:
            positional.append(_number(part, spec))
    cls = PRESETS[key]
    try:
        return cls(*positional, **named, bias=convention, canonizers=canonizers)  # type: ignore[arg-type,misc]
    except TypeError as exc:
        import inspect

        params = [p for p in inspect.signature(cls).parameters if p not in ("bias", "canonizers")]
        raise InputError(f"composite {spec!r}: {exc}; {cls.__name__} takes {', '.join(params)}") from None


def parse_explainer(spec: str, bias: str | None = None) -> Rule | Composite:
    """A rule string or a composite string (module docstring), whichever ``spec`` is."""
    from .composites import PRESETS

    if _preset_key(spec.split("@", 1)[0].partition(":")[0]) in PRESETS:
        return parse_composite(spec, bias)
    return parse_rule(spec, bias)


def _exact_params(rule: Rule) -> list[Fraction] | None:
    """The rule's parameters as exact rationals, or None when one is not a scalar number."""
    from ..exact import to_fraction

    out = []
    for v in rule.params().values():
        if isinstance(v, (list, tuple)) or getattr(v, "ndim", 0):
            return None
        try:
            out.append(to_fraction(v, "rule parameter"))
        except InputError:
            return None
    return out


def _same_rule(a: Rule, b: Rule) -> bool:
    """Exactly the same rule: the same class, bias convention, exact parameters and stabiliser."""
    from ..exact import to_fraction

    pa, pb = _exact_params(a), _exact_params(b)
    return (type(a) is type(b) and a.bias == b.bias and pa is not None and pa == pb
            and to_fraction(a.stabilizer) == to_fraction(b.stabilizer))


def rule_reference(rule: Rule) -> str:
    """How a verdict or counterexample file names a rule.

    A catalogue rule is named by an exact spec string that :func:`parse_rule` turns back into exactly this rule
    (parameters as "num/den" where a float is not the decimal it prints as: ``Epsilon(1e-6)`` is
    ``epsilon:4722366482869645/4722366482869645213696``). Any other rule — a subclass, a user rule, a catalogue rule
    with a non-default stabiliser or per-input box — is named ``python:<module>:<class>[<spec>]``: a file never
    makes dtd_formal import it; the user passes it explicitly (``--rule module:Class`` or a Rule object).
    """
    cls = type(rule)
    if CATALOGUE.get(rule.name) is cls:
        params = _exact_params(rule)
        if params is not None:
            text = rule.name + (":" + ",".join(str(p) for p in params) if params else "")
            text += "@zennit" if rule.bias == "zennit" else ""
            try:
                if _same_rule(parse_rule(text), rule):
                    return text
            except InputError:
                pass
    return f"python:{cls.__module__}:{cls.__qualname__}[{rule.spec()}]"


def resolve_rule(reference: str, given: Rule | None = None, source: str = "file") -> Rule:
    """The rule a file names by ``reference`` (:func:`rule_reference`), without importing anything.

    ``given`` is the caller's own rule (``--rule module:Class``); it must be the rule the file names. A catalogue
    reference is parsed; a ``python:`` reference without ``given`` is refused (:class:`InputError`).
    """
    if not isinstance(reference, str):
        raise InputError(f"{source}: the rule must be named by a string, got {reference!r}")
    if given is not None:
        if rule_reference(given) != reference:
            raise InputError(f"{source}: the file is about the rule {reference!r}, the rule given is "
                             f"{rule_reference(given)!r}")
        return given
    if reference.startswith("python:"):
        raise InputError(f"{source}: the file names the user rule {reference!r}; files never import code: pass the "
                         "rule explicitly (--rule module:Class on the command line, or a Rule object in Python)")
    rule = parse_rule(reference)
    if rule_reference(rule) != reference:
        raise InputError(f"{source}: {reference!r} is not an exact catalogue rule reference "
                         f"(it reads as {rule_reference(rule)!r})")
    return rule

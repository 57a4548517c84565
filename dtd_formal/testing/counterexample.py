"""Counterexamples of rule properties: exact replay, JSON, and a ready-to-paste pytest regression test.

A :class:`Counterexample` holds (rule, network, input, explained output, domain) and the exact values that show
the violation. :meth:`Counterexample.replay` re-evaluates the property in Fractions;
:meth:`Counterexample.to_pytest` writes a standalone test module that asserts the property holds there (it fails
while the rule has the bug and passes once it is fixed); :meth:`Counterexample.to_json` writes rationals as
"num/den" strings and :meth:`Counterexample.from_json` reads them back.
"""

from __future__ import annotations

import importlib
import json
import pprint
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import array_to_json, fraction_to_str, to_fraction_array
from ..network import Network
from ..rules.base import Rule
from ..rules.domains import Box, Domain, NonNegative, Unbounded
from ..verdict import to_jsonable
from .properties import Outcome, evaluate_property

FORMAT = "dtd_formal.counterexample/1"


# ---------------------------------------------------------------------------------------------------- domains
def domain_to_json(domain: Domain) -> dict[str, Any]:
    """JSON form of a domain (exact bounds)."""
    if isinstance(domain, Box):
        return {"kind": "box", "low": array_to_json(domain.low), "high": array_to_json(domain.high)}
    if isinstance(domain, Unbounded):
        return {"kind": "unbounded"}
    if isinstance(domain, NonNegative):
        return {"kind": "nonnegative"}
    raise InputError(f"cannot write the custom domain {domain.describe()} as JSON")


def domain_from_json(data: dict[str, Any]) -> Domain:
    """Inverse of :func:`domain_to_json`."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "box":
        return Box(to_fraction_array(data["low"], "box low"), to_fraction_array(data["high"], "box high"))
    if kind == "unbounded":
        return Unbounded()
    if kind == "nonnegative":
        return NonNegative()
    raise InputError(f"unknown domain {data!r}")


# ---------------------------------------------------------------------------------------------------- rules
def rule_to_json(rule: Rule) -> dict[str, Any]:
    """Class path, parameters (exact), bias convention and the rule's own repr/spec."""
    cls = type(rule)
    return {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "spec": rule.spec(),
        "repr": repr(rule),
        "bias": rule.bias,
        "params": {k: (fraction_to_str(v) if isinstance(v, Fraction) else to_jsonable(v))
                   for k, v in rule.params().items()},
    }


def rule_from_json(data: dict[str, Any]) -> Rule:
    """Rebuild a rule: import its class and call it with its parameters (and ``bias`` unless it is "dtd")."""
    path = data.get("class", "")
    module, _, qualname = path.partition(":")
    if not module or "<locals>" in qualname:
        raise InputError(f"rule class {path!r} cannot be imported; pass the rule explicitly")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"rule class {path!r} cannot be imported ({exc}); pass the rule explicitly") from None

    def number(v: Any) -> Any:
        if isinstance(v, str) and re.fullmatch(r"-?\d+(/\d+)?", v):
            return Fraction(v)
        return v

    kwargs = {k: number(v) for k, v in data.get("params", {}).items()}
    if data.get("bias", "dtd") != "dtd":
        kwargs["bias"] = data["bias"]
    try:
        return obj(**kwargs)
    except TypeError as exc:
        raise InputError(f"cannot rebuild {path}({kwargs}): {exc}; pass the rule explicitly") from None


def rule_source(rule: Rule) -> tuple[list[str], str] | None:
    """(import lines, constructor expression) that rebuild ``rule`` in a fresh module, or None when the class is
    not importable (defined in ``__main__`` or inside a function)."""
    cls = type(rule)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return None
    top = cls.__qualname__.split(".")[0]
    prefix = cls.__qualname__.rsplit(".", 1)[0] + "." if "." in cls.__qualname__ else ""
    return [f"from {cls.__module__} import {top}"], prefix + repr(rule)


# ---------------------------------------------------------------------------------------------------- counterexample
@dataclass
class Counterexample:
    """A violation of one property by one rule on one exact case (see module docstring)."""

    property: str
    rule: Rule
    network: Network
    input: np.ndarray
    output: int
    domain: Domain
    values: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    found_by: str = "hypothesis (shrunk)"
    seed: int | None = None

    def replay(self) -> Outcome:
        """Re-evaluate the property exactly (Fractions) on the stored case."""
        return evaluate_property(self.property, self.rule, self.network, self.input, self.output, self.domain)

    def reproduces(self) -> bool:
        """Whether the exact replay still shows the violation."""
        return not self.replay().holds

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "property": self.property,
            "rule": rule_to_json(self.rule),
            "network": self.network.to_json(),
            "input": array_to_json(self.input),
            "output": self.output,
            "domain": domain_to_json(self.domain),
            "values": to_jsonable(self.values),
            "message": self.message,
            "found_by": self.found_by,
            "seed": self.seed,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any], rule: Rule | None = None, source: str = "JSON") -> "Counterexample":
        """Read a counterexample back (the rule is rebuilt from its class path unless given)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{source}: not a dtd_formal counterexample (expected \"format\": \"{FORMAT}\")")
        net = Network.from_json(data["network"], source=source)
        return cls(
            property=data["property"],
            rule=rule if rule is not None else rule_from_json(data["rule"]),
            network=net,
            input=net.as_input(data["input"], f"{source}: input"),
            output=int(data.get("output", 0)),
            domain=domain_from_json(data["domain"]),
            values=data.get("values", {}),
            message=data.get("message", ""),
            found_by=data.get("found_by", ""),
            seed=data.get("seed"),
        )

    # ------------------------------------------------------------------ pytest
    def to_pytest(self, rule_expr: str | None = None, imports: list[str] | None = None,
                  test_name: str | None = None) -> str:
        """A standalone pytest module asserting that the property holds on this case.

        Parameters
        ----------
        rule_expr : str, optional
            Python expression that builds the rule (default: its ``repr``, imported from its class's module).
        imports : list of str, optional
            Import lines that make ``rule_expr`` valid (default: the rule class's module).
        test_name : str, optional
            Name of the test function.
        """
        if rule_expr is None:
            src = rule_source(self.rule)
            if src is None:
                raise InputError(
                    f"{type(self.rule).__qualname__} is defined in __main__ or inside a function, so an exported test "
                    "cannot import it; pass rule_expr= and imports="
                )
            imports, rule_expr = src if imports is None else (imports, src[1])
        imports = imports or []
        name = test_name or "test_{}_{}_regression".format(
            re.sub(r"\W+", "_", type(self.rule).__name__.lower()), re.sub(r"\W+", "_", self.property)
        )
        net_literal = pprint.pformat(self.network.to_json(), indent=1, width=110, compact=True)
        lines = [
            f'"""Regression test exported by dtd_formal.testing: {self.rule.spec()} violates {self.property}.',
            "",
            f"{self.message}",
            f"Found by {self.found_by}" + (f", seed {self.seed}" if self.seed is not None else "") + ".",
            "The test fails while the rule has this bug and passes once it is fixed.",
            '"""',
            "",
            "from fractions import Fraction  # noqa: F401 (rule parameters may be Fractions)",
            "",
            "from dtd_formal.network import Network",
            "from dtd_formal.testing.counterexample import domain_from_json",
            "from dtd_formal.testing.properties import evaluate_property",
            *imports,
            "",
            f"NETWORK = {net_literal}",
            f"INPUT = {array_to_json(self.input)!r}",
            f"DOMAIN = {domain_to_json(self.domain)!r}",
            "",
            "",
            f"def {name}() -> None:",
            f"    rule = {rule_expr}",
            "    net = Network.from_json(NETWORK)",
            f"    outcome = evaluate_property({self.property!r}, rule, net, INPUT, output={self.output}, "
            "domain=domain_from_json(DOMAIN))",
            "    assert outcome.holds, outcome.message",
            "",
        ]
        return "\n".join(lines)

    def describe(self) -> str:
        """A short readable account: the case and the violation."""
        ws = []
        for l, (W, b) in enumerate(zip(self.network.weights, self.network.biases), start=1):
            ws.append(f"    W{l} = {[[str(v) for v in row] for row in W]}, b{l} = {[str(v) for v in b]}")
        return "\n".join([
            f"  {self.property}: {self.message}",
            f"  network {'-'.join(str(n) for n in self.network.layer_sizes)} (final_relu={self.network.final_relu}):",
            *ws,
            f"  input x = {[str(v) for v in self.input]}, explained output {self.output}, "
            f"domain {self.domain.describe()}",
            f"  found by {self.found_by}; replays exactly: {self.reproduces()}",
        ])


__all__ = ["Counterexample", "domain_to_json", "domain_from_json", "rule_to_json", "rule_from_json", "rule_source"]

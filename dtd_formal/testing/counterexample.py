"""Counterexamples of rule properties: exact replay, JSON, and a ready-to-paste pytest regression test.

A :class:`Counterexample` holds (rule, network, input, explained output, domain) and the exact values that show
the violation. :meth:`Counterexample.replay` re-evaluates the property in Fractions;
:meth:`Counterexample.to_pytest` writes a standalone test module that asserts the property holds there (it fails
while the rule has the bug and passes once it is fixed); :meth:`Counterexample.to_json` writes rationals as
"num/den" strings and :meth:`Counterexample.from_json` reads them back.
"""

from __future__ import annotations

import json
import pprint
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import array_to_json, to_fraction_array
from ..network import Network
from ..rules.base import Rule
from ..rules.domains import Box, Domain, NonNegative, Unbounded
from ..rules.parse import resolve_rule, rule_reference
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
    """How a file names the rule: its :func:`~dtd_formal.rules.parse.rule_reference` (an exact catalogue spec, or
    ``python:module:Class[spec]`` for a user rule, which is never imported from the file), plus its repr for
    people."""
    return {"reference": rule_reference(rule), "spec": rule.spec(), "repr": repr(rule)}


def rule_from_json(data: Any, rule: Rule | None = None, source: str = "JSON") -> Rule:
    """The rule a file names (:func:`~dtd_formal.rules.parse.resolve_rule`): a catalogue reference is parsed; a user
    rule must be passed as ``rule`` (it must be the rule the file names). Nothing is imported."""
    if not isinstance(data, dict) or not isinstance(data.get("reference"), str):
        raise InputError(f"{source}: \"rule\" must be an object with a \"reference\" string")
    return resolve_rule(data["reference"], rule, source)


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

    def check(self) -> list[str]:
        """Every mismatch between the stored case and its exact re-evaluation (empty: confirmed). The property must
        fail (not hold, and not crash) with exactly the stored values and message."""
        if not self.domain.contains(self.input):
            return [f"input: not in the domain {self.domain.describe()} the case was drawn from"]
        outcome = self.replay()
        if outcome.error:
            return [f"the rule raised during the replay: {outcome.error}"]
        if outcome.holds:
            return ["the property holds at the stored input: the violation does not reproduce"]
        bad = []
        if to_jsonable(self.values) != to_jsonable(outcome.values):
            keys = sorted(k for k in set(self.values) | set(outcome.values)
                          if to_jsonable(self.values.get(k)) != to_jsonable(outcome.values.get(k)))
            bad.append(f"values {keys}: stored ones differ from the re-derived ones")
        if self.message != outcome.message:
            bad.append("message: differs from the re-derived one")
        return bad

    def reproduces(self) -> bool:
        """Whether the exact replay shows the violation with the stored values."""
        return not self.check()

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "property": self.property,
            "rule": rule_to_json(self.rule),
            "network": self.network.to_json(),
            "network_digest": self.network.digest(),
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
        """Read a counterexample back; the rule is resolved from its reference without importing anything (a user
        rule must be given as ``rule``). Wrong types or missing fields: :class:`InputError`."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{source}: not a dtd_formal counterexample (expected \"format\": \"{FORMAT}\")")
        for key, kind in (("property", str), ("network", dict), ("input", list), ("output", int), ("domain", dict),
                          ("values", dict), ("message", str)):
            if key not in data or not isinstance(data[key], kind) or isinstance(data[key], bool):
                raise InputError(f"{source}: field {key!r} missing or not {kind.__name__}")
        from ..properties import get_property

        from ..io import network_from_json

        net = network_from_json(data["network"], source=source)
        if data.get("network_digest") != net.digest():
            raise InputError(f"{source}: the embedded network's digest {net.digest()} is not the file's "
                             f"network_digest {data.get('network_digest')!r}")
        seed = data.get("seed")
        return cls(
            property=get_property(data["property"]).name,
            rule=rule_from_json(data.get("rule"), rule, source),
            network=net,
            input=net.as_input(data["input"], f"{source}: input"),
            output=data["output"],
            domain=domain_from_json(data["domain"]),
            values=data["values"],
            message=data["message"],
            found_by=str(data.get("found_by", "")),
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
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
            "from dtd_formal.io import network_from_json",
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
            "    net = network_from_json(NETWORK)",
            f"    outcome = evaluate_property({self.property!r}, rule, net, INPUT, output={self.output}, "
            "domain=domain_from_json(DOMAIN))",
            "    assert outcome.holds, outcome.message",
            "",
        ]
        return "\n".join(lines)

    def describe(self) -> str:
        """A short readable account: the case and the violation."""
        ws = []
        if getattr(self.network, "is_graph", False):
            import json

            head = f"  network {self.network!r}:"
            ws = [f"    {json.dumps(n, separators=(',', ':'))}" for n in self.network.to_json()["nodes"][1:]]
        else:
            head = (f"  network {'-'.join(str(n) for n in self.network.layer_sizes)} "
                    f"(final_relu={self.network.final_relu}):")
            for l, (W, b) in enumerate(zip(self.network.weights, self.network.biases), start=1):
                ws.append(f"    W{l} = {[[str(v) for v in row] for row in W]}, b{l} = {[str(v) for v in b]}")
        return "\n".join([
            f"  {self.property}: {self.message}",
            head,
            *ws,
            f"  input x = {[str(v) for v in self.input]}, explained output {self.output}, "
            f"domain {self.domain.describe()}",
            f"  found by {self.found_by}; replays exactly: {self.reproduces()}",
        ])


__all__ = ["Counterexample", "domain_to_json", "domain_from_json", "rule_to_json", "rule_from_json", "rule_source"]

r"""Counterexamples of the search engines, replayed in exact arithmetic by code independent of any encoding.

A root-exit counterexample is an input x (exact rationals) of the network such that, with :math:`a = a_{l-1}(x)`,
neuron j of layer l carries relevance, its train-free root :math:`\tilde a = a - t v_j(a)`,
:math:`t = z_j(a) / (w_j \cdot v_j(a))`, exists, and some OTHER neuron m of the scope has strictly opposite signs
at a and at the root (``variant="pattern"``), or the exact affine maps of the two closest patterns differ
(``variant="affine_map"``). :meth:`RootExitCounterexample.replay` recomputes the root with :func:`dtd_formal.roots`,
the flipped neurons with a plain Fraction forward pass, the verdict with the core's exact
:func:`dtd_formal.root_regions` and, on small nets, with :func:`dtd_formal.regions.classify_root_reference` (the slow
textbook twin); nothing of the Z3/LP encodings is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import array_to_json, fraction_to_str, to_fraction_array
from ..network import Network
from ..rules.base import Rule


def _sign(v: Fraction) -> int:
    return (v > 0) - (v < 0)


def root_patterns(net: Network, a: np.ndarray, root: np.ndarray, layer: int, neuron: int) -> tuple[list[list[int]], list[list[int]]]:
    """Sign patterns of the ReLU layers layer..L at the layer input ``a`` and at ``root`` (Fraction forward).

    At the root, neuron ``neuron`` of ``layer`` passes its pre-activation linearly (the region semantics of
    :mod:`dtd_formal.regions`); at a it is active anyway. Returns (before, after), one list per ReLU layer.
    """
    out: list[list[list[int]]] = []
    for point, forced in ((a, False), (root, True)):
        pats: list[list[int]] = []
        h = np.asarray(point, dtype=object)
        for m in range(layer, net.n_layers + 1):
            z = net.weight(m).dot(h) + net.bias(m)
            if net.has_relu(m):
                s = [_sign(v) for v in z]
                pats.append(s)
                keep = [v > 0 for v in z]
                if forced and m == layer:
                    keep[neuron] = True
                h = np.array([v if k else Fraction(0) for v, k in zip(z, keep)], dtype=object)
            else:
                h = z
        out.append(pats)
    return out[0], out[1]


def flipped_neurons(before: list[list[int]], after: list[list[int]], net: Network, layer: int, neuron: int,
                    scope: str) -> list[tuple[int, int]]:
    """(layer, neuron) pairs of the scope with strictly opposite signs before and after; neuron j excluded."""
    relu = [m for m in range(layer, net.n_layers + 1) if net.has_relu(m)]
    flips = []
    for m, sb, sa in zip(relu, before, after):
        if scope == "layer" and m != layer:
            continue
        for n, (u, v) in enumerate(zip(sb, sa)):
            if m == layer and n == neuron:
                continue
            if u * v < 0:
                flips.append((m, n))
    return flips


@dataclass
class RootExitCounterexample:
    """An exact input whose root of (layer, neuron) leaves the region (see module docstring)."""

    input: np.ndarray
    layer: int
    neuron: int
    root: np.ndarray
    step: Fraction
    rule: str
    scope: str = "upper"
    variant: str = "pattern"
    output: int = 0
    patterns_before: list[list[int]] = field(default_factory=list)
    patterns_after: list[list[int]] = field(default_factory=list)
    flipped: list[tuple[int, int]] = field(default_factory=list)
    leaves_pattern: bool = True
    leaves_affine_map: bool = False
    found_by: str = ""
    model: str | None = None  #: where the network came from (file path), if known
    definition: str = "true"  #: root definition: "true" (t = z_j / w_j.v_j) or "paper-code" (t = R_j / w_j.v_j)

    kind = "root_exit"

    @classmethod
    def build(cls, net: Network, rule: Rule, x: Any, layer: int, neuron: int, scope: str = "upper",
              variant: str = "pattern", output: int = 0, found_by: str = "", definition: str = "true"
              ) -> "RootExitCounterexample | None":
        """Compute everything from the exact input x; None if x is not a counterexample (checked exactly by the
        core's exact :func:`dtd_formal.root_regions`, then re-checked by :meth:`replay`)."""
        from ..regions import root_regions

        x = to_fraction_array(x, "counterexample input")
        if x.shape != (net.input_size,):
            return None
        recs = [r for r in root_regions(net, x.reshape(1, -1), rule, scope=scope, output=output, layers=layer,
                                        definition=definition).records if r.neuron == neuron]
        if not recs:
            return None
        rec = recs[0]
        if not (rec.leaves_pattern if variant == "pattern" else rec.leaves_affine_map):
            return None
        a = net.activations(x)[layer - 1]
        root = np.asarray(rec.root, dtype=object)
        before, after = root_patterns(net, a, root, layer, neuron)
        flips = flipped_neurons(before, after, net, layer, neuron, scope)
        cex = cls(x, layer, neuron, root, Fraction(rec.step), rule.spec(), scope, variant, output, before, after, flips,
                  bool(rec.leaves_pattern), bool(rec.leaves_affine_map), found_by, net.metadata.get("source"),
                  definition)
        return cex if cex.replay(net, rule) else None

    def replay(self, net: Network, rule: Rule | None = None, reference: bool | None = None) -> bool:
        """Re-check in exact arithmetic, independently of every search encoding: the root and step by
        :func:`dtd_formal.roots` (Fractions, same root definition), :math:`z_j(\\tilde a) = 0` for true roots, the
        flipped neurons by a plain Fraction forward pass (:func:`root_patterns`), and the region verdict by the
        core's :func:`dtd_formal.root_regions`; with ``reference`` (default: nets with at most 64 ReLUs) also by the slow textbook twin
        :func:`dtd_formal.regions.classify_root_reference`."""
        from ..dtd import roots
        from ..regions import classify_root_reference, root_regions
        from ..rules.parse import parse_rule

        rule = rule if rule is not None else parse_rule(self.rule)
        x = to_fraction_array(self.input, "counterexample input")
        r = roots(net, x, rule, layer=self.layer, output=self.output, definition=self.definition)
        if self.neuron not in r.points:
            return False
        root = r.points[self.neuron]
        if not all(u == v for u, v in zip(root, self.root)) or r.steps[self.neuron] != self.step:
            return False
        if self.definition == "true" and net.weight(self.layer)[self.neuron].dot(root) + net.bias(self.layer)[self.neuron] != 0:
            return False
        before, after = root_patterns(net, r.layer_input, root, self.layer, self.neuron)
        flips = flipped_neurons(before, after, net, self.layer, self.neuron, self.scope)
        if self.variant == "pattern" and not flips:
            return False
        if flips != [tuple(f) for f in self.flipped]:
            return False
        rec = [q for q in root_regions(net, x.reshape(1, -1), rule, scope=self.scope, output=self.output,
                                       layers=self.layer, definition=self.definition).records
               if q.neuron == self.neuron]
        if not rec or sorted(map(tuple, rec[0].flipped)) != sorted(flips):
            return False
        if self.variant == "affine_map" and not rec[0].leaves_affine_map:
            return False
        if reference if reference is not None else net.n_relus <= 64:
            leaves, leaves_map = classify_root_reference(net, x, self.layer, self.neuron, root, self.output, self.scope)
            if not (leaves if self.variant == "pattern" else leaves_map) or leaves != bool(flips):
                return False
        return True

    def to_json(self, net: Network | None = None) -> dict[str, Any]:
        """JSON form (exact rationals as strings); with ``net`` the network is embedded, so that
        ``dtd-formal replay FILE`` can re-check the file on its own (else it uses ``model``, the source path)."""
        out = {
            "kind": self.kind,
            "rule": self.rule,
            "layer": self.layer,
            "neuron": self.neuron,
            "output": self.output,
            "scope": self.scope,
            "variant": self.variant,
            "input": array_to_json(self.input),
            "root": array_to_json(self.root),
            "step": fraction_to_str(self.step),
            "patterns_before": self.patterns_before,
            "patterns_after": self.patterns_after,
            "flipped": [list(f) for f in self.flipped],
            "leaves_pattern": self.leaves_pattern,
            "leaves_affine_map": self.leaves_affine_map,
            "found_by": self.found_by,
            "model": self.model,
            "definition": self.definition,
        }
        if net is not None:
            out["network"] = net.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RootExitCounterexample":
        from ..exact import array_from_json

        try:
            return cls(array_from_json(data["input"], "input"), int(data["layer"]), int(data["neuron"]),
                       array_from_json(data["root"], "root"), Fraction(data["step"]), data["rule"], data["scope"],
                       data["variant"], int(data["output"]), data["patterns_before"], data["patterns_after"],
                       [tuple(f) for f in data["flipped"]], data["leaves_pattern"], data["leaves_affine_map"],
                       data.get("found_by", ""), data.get("model"), data.get("definition", "true"))
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"counterexample JSON: {exc}") from None

    def to_pytest(self, net: Network, name: str | None = None) -> str:
        """A ready-to-paste pytest regression test: rebuilds the network and input exactly and asserts the exit."""
        name = name or f"test_root_exit_layer{self.layer}_neuron{self.neuron}"
        net_json = json.dumps(net.to_json())
        x = json.dumps(array_to_json(self.input))
        attr = "leaves_pattern" if self.variant == "pattern" else "leaves_affine_map"
        return (
            "import json\n"
            "from fractions import Fraction\n\n"
            "import dtd_formal as dtd\n"
            "from dtd_formal.regions import classify_root_reference\n"
            "from dtd_formal.rules.parse import parse_rule\n\n\n"
            f"def {name}() -> None:\n"
            f"    net = dtd.Network.from_json(json.loads({net_json!r}))\n"
            f"    x = [Fraction(v) for v in json.loads({x!r})]\n"
            f"    rule = parse_rule({self.rule!r})\n"
            f"    r = dtd.roots(net, x, rule, layer={self.layer}, output={self.output}, definition={self.definition!r})\n"
            f"    root = r.points[{self.neuron}]\n"
            f"    assert r.steps[{self.neuron}] == Fraction({fraction_to_str(self.step)!r})\n"
            f"    leaves, leaves_map = classify_root_reference(net, x, {self.layer}, {self.neuron}, root, "
            f"output={self.output}, scope={self.scope!r})\n"
            f"    assert {'leaves' if attr == 'leaves_pattern' else 'leaves_map'}\n"
            f"    rec = [q for q in dtd.root_regions(net, [x], rule, scope={self.scope!r}, output={self.output}, "
            f"layers={self.layer}, definition={self.definition!r}).records if q.neuron == {self.neuron}][0]\n"
            f"    assert rec.{attr}\n"
            f"    assert sorted(map(tuple, rec.flipped)) == {sorted(map(tuple, self.flipped))!r}\n"
        )


@dataclass
class ViolationCounterexample:
    """An exact input where a rule property fails; ``values`` records the exact quantities compared."""

    input: np.ndarray
    property: str
    rule: str
    output: int = 0
    layer: int | None = None
    neuron: int | None = None
    root: np.ndarray | None = None
    values: dict[str, Any] = field(default_factory=dict)
    found_by: str = ""

    kind = "violation"

    def replay(self, net: Network, rule: Rule | None = None) -> bool:
        """Recompute the property exactly at ``input`` (see :func:`dtd_formal.smt.violations.property_holds`)."""
        from ..rules.parse import parse_rule
        from .violations import property_holds

        rule = rule if rule is not None else parse_rule(self.rule)
        holds, _ = property_holds(net, rule, self.property, to_fraction_array(self.input), self.output)
        return not holds

    def to_json(self, net: Network | None = None) -> dict[str, Any]:
        """JSON form; with ``net`` the network is embedded (for ``dtd-formal replay FILE``)."""
        from ..verdict import to_jsonable

        out = {"kind": self.kind, "property": self.property, "rule": self.rule, "output": self.output,
               "layer": self.layer, "neuron": self.neuron, "input": array_to_json(self.input),
               "root": None if self.root is None else array_to_json(self.root),
               "values": to_jsonable(self.values), "found_by": self.found_by}
        if net is not None:
            out["network"] = net.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ViolationCounterexample":
        from ..exact import array_from_json

        try:
            return cls(array_from_json(data["input"], "input"), str(data["property"]), str(data["rule"]),
                       int(data.get("output", 0)), data.get("layer"), data.get("neuron"),
                       None if data.get("root") is None else array_from_json(data["root"], "root"),
                       dict(data.get("values") or {}), str(data.get("found_by", "")))
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"violation JSON: {exc}") from None

    def to_pytest(self, net: Network, name: str | None = None) -> str:
        name = name or f"test_{self.property.replace('-', '_')}_violation"
        net_json = json.dumps(net.to_json())
        x = json.dumps(array_to_json(self.input))
        return (
            "import json\n"
            "from fractions import Fraction\n\n"
            "import dtd_formal as dtd\n"
            "from dtd_formal.rules.parse import parse_rule\n"
            "from dtd_formal.smt.violations import property_holds\n\n\n"
            f"def {name}() -> None:\n"
            f"    net = dtd.Network.from_json(json.loads({net_json!r}))\n"
            f"    x = [Fraction(v) for v in json.loads({x!r})]\n"
            f"    holds, values = property_holds(net, parse_rule({self.rule!r}), {self.property!r}, x, {self.output})\n"
            "    assert not holds, values\n"
        )


__all__ = ["RootExitCounterexample", "ViolationCounterexample", "root_patterns", "flipped_neurons"]

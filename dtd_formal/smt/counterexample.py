r"""Counterexamples of the search engines: self-describing, and re-derived in exact arithmetic by code independent of
any encoding.

A counterexample carries its :class:`~dtd_formal.verdict.Question` (network digest, rule spec, what was asked, the
input box) and the exact witness with every value derived from it. :meth:`RootExitCounterexample.check` /
:meth:`ViolationCounterexample.check` recompute all of it from network + rule + question + input and list every
field that differs (an empty list confirms the file); nothing stored is trusted:

- root exit: the input lies in the box exactly; the root and step come from :func:`dtd_formal.roots` (the rule's
  own ``root_step``, the same root definition: the root is what the rule says it is); the sign patterns
  before/after and the flipped neurons come from a plain exact forward pass (:func:`root_patterns`); the verdict
  from the core's exact :func:`dtd_formal.root_regions` and, on small nets, the slow textbook twin
  :func:`dtd_formal.regions.classify_root_reference`;
- violation: the input lies in the box; the catalogue property (:mod:`dtd_formal.properties`) fails there, and the
  values it reports equal the stored ones.

JSON: :meth:`to_json` (optionally embedding the network) and :meth:`from_json` (strict types: a malformed file is
an :class:`~dtd_formal.errors.InputError`). The rule of a file is named by its catalogue spec string only; a user
rule is passed explicitly by the caller, never imported from a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import array_to_json, fraction_to_str, to_fraction, to_fraction_array
from ..network import Network
from ..rules.base import Rule
from ..rules.parse import rule_reference
from ..verdict import Question, to_jsonable
from .problem import box_of, network_digest


def _sign(v: Fraction) -> int:
    return (v > 0) - (v < 0)


def root_patterns(net: Network, a: np.ndarray, root: np.ndarray, layer: int, neuron: int) -> tuple[list[list[int]], list[list[int]]]:
    """Sign patterns of the ReLU layers layer..L at the layer input ``a`` and at ``root`` (the walk's
    :func:`~dtd_formal.walk.forward` in exact rational arithmetic, over gmpy2's ``mpq`` where installed: the same
    exact values as Fractions, computed about ten times faster).

    At the root, neuron ``neuron`` of ``layer`` passes its pre-activation linearly (the region semantics of
    :mod:`dtd_formal.regions`); at a it is active anyway. Returns (before, after), one list per ReLU layer.
    """
    from ..exact import to_fast
    from ..rules.ops import FAST_EXACT
    from ..walk import forward

    out: list[list[list[int]]] = []
    for point, linear in ((a, None), (root, neuron)):
        _, zs = forward(FAST_EXACT, net.fast_layers, net.relu_flags, to_fast(np.asarray(point, dtype=object)), layer,
                        linear)
        out.append([[_sign(v) for v in z] for m, z in zip(range(layer, net.n_layers + 1), zs) if net.has_relu(m)])
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


def in_box(x: np.ndarray, question: Question, n: int) -> bool:
    """Whether the exact input x lies in the question's box (and has the network's input size)."""
    low, high = box_of(question, n)
    return x.shape == (n,) and all(lo <= v <= hi for v, lo, hi in zip(x, low, high))


def _check_question(question: Question, net: Network, rule: Rule) -> list[str]:
    out = []
    digest = network_digest(net)
    if question.network != digest:
        out.append(f"network: the file is about {question.network}, the network given is {digest}")
    if question.rule != rule_reference(rule):
        out.append(f"rule: the file names {question.rule!r}, the rule given is {rule_reference(rule)!r}")
    return out


# ---------------------------------------------------------------------------------------------------- strict JSON
def _field(data: dict[str, Any], key: str, kind: type | tuple[type, ...], source: str) -> Any:
    if key not in data:
        raise InputError(f"{source}: missing field {key!r}")
    value = data[key]
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise InputError(f"{source}: field {key!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise InputError(f"{source}: field {key!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _int_lists(value: Any, key: str, source: str) -> list[list[int]]:
    if not isinstance(value, list) or not all(isinstance(r, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                                                         for v in r) for r in value):
        raise InputError(f"{source}: field {key!r} must be a list of lists of integers")
    return value


def question_from_json(data: Any, kind: str, source: str) -> Question:
    """Strict reading of a :class:`~dtd_formal.verdict.Question` of the given kind."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: \"question\" must be an object")
    if data.get("kind") != kind:
        raise InputError(f"{source}: question kind must be {kind!r}, got {data.get('kind')!r}")
    network = _field(data, "network", str, source)
    rule = _field(data, "rule", str, source)
    if kind == "root-exit":
        spec = {"layer": int, "neuron": int, "scope": str, "variant": str, "definition": str, "output": int,
                "low": list, "high": list}
    else:
        spec = {"property": str, "output": int, "low": list, "high": list}
    params = {k: _field(data, k, t, source) for k, t in spec.items()}
    extra = set(data) - set(spec) - {"kind", "network", "rule"}
    if extra:
        raise InputError(f"{source}: unknown question fields {sorted(extra)}")
    for k in ("low", "high"):
        params[k] = [fraction_to_str(to_fraction(v, f"{source}: question {k}")) if isinstance(v, str) else
                     _bad(source, k) for v in params[k]]
    return Question(kind, network, rule, params)


def _bad(source: str, key: str) -> Any:
    raise InputError(f"{source}: question field {key!r} must hold \"num/den\" strings")


# ---------------------------------------------------------------------------------------------------- shared
def _param(name: str, kind: type) -> Any:
    """A read-only attribute holding the question's parameter ``name``."""
    return property(lambda self: kind(self.question.params[name]), doc=f"The question's {name}.")


class _Rederived:
    """What both counterexample kinds share: :meth:`build` derives from the input and confirms with the
    independent :meth:`check`; :meth:`replay` is :meth:`check` finding nothing."""

    @classmethod
    def derive(cls, question: Question, net: Network, rule: Rule, x: Any, found_by: str = "") -> tuple[Any, str]:
        raise NotImplementedError  # pragma: no cover - interface

    def check(self, net: Network, rule: Rule) -> list[str]:
        raise NotImplementedError  # pragma: no cover - interface

    @classmethod
    def build(cls, question: Question, net: Network, rule: Rule, x: Any, found_by: str = "") -> Any:
        """:meth:`derive`, then confirmed by :meth:`check`; None if x is not a counterexample of the question."""
        cex, _ = cls.derive(question, net, rule, x, found_by)
        return cex if cex is not None and not cex.check(net, rule) else None

    def replay(self, net: Network, rule: Rule) -> bool:
        """Whether :meth:`check` confirms the counterexample."""
        return not self.check(net, rule)

    output = _param("output", int)

    @property
    def rule(self) -> str:
        """The rule's reference (:func:`dtd_formal.rules.parse.rule_reference`)."""
        return self.question.rule  # type: ignore[attr-defined]


def _network_loader(net: Network, digest: str, network_file: str | None) -> str:
    """The lines of an exported test that load the network: from ``network_file`` (digest checked) or inlined."""
    if network_file is not None:
        return f"    net = dtd.load({network_file!r})\n    assert net.digest() == {digest!r}\n"
    return f"    net = dtd.Network.from_json(json.loads({json.dumps(net.to_json())!r}))\n"


# ---------------------------------------------------------------------------------------------------- root exit
@dataclass
class RootExitCounterexample(_Rederived):
    """An exact input whose root of (layer, neuron) leaves the region (see module docstring)."""

    question: Question
    input: np.ndarray
    root: np.ndarray
    step: Fraction
    patterns_before: list[list[int]] = field(default_factory=list)
    patterns_after: list[list[int]] = field(default_factory=list)
    flipped: list[tuple[int, int]] = field(default_factory=list)
    leaves_pattern: bool = True
    leaves_affine_map: bool = False
    found_by: str = ""

    kind = "root_exit"

    # ------------------------------------------------------------------ the question's parameters
    layer = _param("layer", int)
    neuron = _param("neuron", int)
    scope = _param("scope", str)
    variant = _param("variant", str)
    definition = _param("definition", str)

    # ------------------------------------------------------------------ build / check
    @classmethod
    def derive(cls, question: Question, net: Network, rule: Rule, x: Any, found_by: str = ""
               ) -> tuple["RootExitCounterexample | None", str]:
        """Everything a counterexample records, computed from the exact input x alone; (None, why) when x is not a
        counterexample of the question (outside the box, no root, no exit)."""
        from ..dtd import roots
        from ..regions import root_regions

        try:
            xa = to_fraction_array(x, "counterexample input")
        except InputError as exc:
            return None, str(exc)
        if not in_box(xa, question, net.input_size):
            return None, "the input is not in the question's box"
        q = question.params
        layer, neuron = int(q["layer"]), int(q["neuron"])
        r = roots(net, xa, rule, layer=layer, output=int(q["output"]), definition=str(q["definition"]))
        if neuron not in r.points:
            return None, f"neuron {neuron} has no root at this input ({r.skipped.get(neuron, 'not relevant')})"
        root, step = r.points[neuron], r.steps[neuron]
        before, after = root_patterns(net, r.layer_input, root, layer, neuron)
        flips = flipped_neurons(before, after, net, layer, neuron, str(q["scope"]))
        recs = [rec for rec in root_regions(net, xa.reshape(1, -1), rule, scope=str(q["scope"]), output=int(q["output"]),
                                            layers=layer, definition=str(q["definition"])).records
                if rec.neuron == neuron]
        leaves_map = bool(recs and recs[0].leaves_affine_map)
        cex = cls(question, xa, np.asarray(root, dtype=object), Fraction(step), before, after, flips, bool(flips),
                  leaves_map, found_by)
        holds = cex.leaves_pattern if q["variant"] == "pattern" else cex.leaves_affine_map
        return (cex, "") if holds else (None, "the root does not leave the region")

    def check(self, net: Network, rule: Rule, reference: bool | None = None) -> list[str]:
        """Every mismatch between this counterexample and its exact re-derivation from network + rule + question
        + input (empty: confirmed). ``reference`` (default: nets with at most 64 ReLUs and 64 inputs) also asks
        the slow textbook twin :func:`dtd_formal.regions.classify_root_reference` (its cost grows with the input
        size: 40-50 s per call on the 784-input MNIST MLP, where the exact re-derivation takes a fraction of a
        second)."""
        from ..regions import classify_root_reference

        bad = _check_question(self.question, net, rule)
        if bad:
            return bad
        fresh, why = type(self).derive(self.question, net, rule, self.input, self.found_by)
        if fresh is None:
            return [f"input: {why}"]
        bad.extend(self.mismatches(fresh))
        if reference if reference is not None else net.n_relus <= 64 and net.weight(1).shape[1] <= 64:
            leaves, leaves_map = classify_root_reference(net, self.input, self.layer, self.neuron, fresh.root,
                                                         self.output, self.scope)
            if not (leaves if self.variant == "pattern" else leaves_map) or leaves != bool(fresh.flipped):
                bad.append("the textbook region twin does not confirm the exit")
        return bad

    def mismatches(self, fresh: "RootExitCounterexample") -> list[str]:
        """Every recorded field (root, step, patterns, flipped units, verdicts) that differs from ``fresh``."""
        bad = []
        for name in ("root", "step", "patterns_before", "patterns_after", "flipped", "leaves_pattern",
                     "leaves_affine_map"):
            mine, theirs = getattr(self, name), getattr(fresh, name)
            same = (len(mine) == len(theirs) and all(u == v for u, v in zip(mine, theirs))) if name == "root" else \
                ([tuple(f) for f in mine] == [tuple(f) for f in theirs] if name == "flipped" else mine == theirs)
            if not same:
                bad.append(f"{name}: stored {_fmt(mine)}, re-derived {_fmt(theirs)}")
        return bad

    # ------------------------------------------------------------------ JSON
    def to_json(self, net: Network | None = None) -> dict[str, Any]:
        """JSON form (exact rationals as strings); with ``net`` the network is embedded, so that
        ``dtd-formal replay FILE`` re-checks the file on its own."""
        out = {
            "kind": self.kind,
            "question": self.question.to_json(),
            "input": array_to_json(self.input),
            "root": array_to_json(self.root),
            "step": fraction_to_str(self.step),
            "patterns_before": self.patterns_before,
            "patterns_after": self.patterns_after,
            "flipped": [list(f) for f in self.flipped],
            "leaves_pattern": self.leaves_pattern,
            "leaves_affine_map": self.leaves_affine_map,
            "found_by": self.found_by,
        }
        if net is not None:
            out["network"] = net.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any, source: str = "counterexample") -> "RootExitCounterexample":
        """Strict inverse of :meth:`to_json` (wrong types or missing fields: :class:`InputError`)."""
        if not isinstance(data, dict) or data.get("kind") != cls.kind:
            raise InputError(f"{source}: not a root-exit counterexample")
        q = question_from_json(data.get("question"), "root-exit", source)
        flipped = _int_lists(_field(data, "flipped", list, source), "flipped", source)
        if not all(len(f) == 2 for f in flipped):
            raise InputError(f"{source}: field 'flipped' must hold (layer, neuron) pairs")
        return cls(q, to_fraction_array(_field(data, "input", list, source), f"{source}: input"),
                   to_fraction_array(_field(data, "root", list, source), f"{source}: root"),
                   to_fraction(_field(data, "step", str, source), f"{source}: step"),
                   _int_lists(_field(data, "patterns_before", list, source), "patterns_before", source),
                   _int_lists(_field(data, "patterns_after", list, source), "patterns_after", source),
                   [(int(a), int(b)) for a, b in flipped],
                   _field(data, "leaves_pattern", bool, source), _field(data, "leaves_affine_map", bool, source),
                   str(data.get("found_by", "")))

    def to_pytest(self, net: Network, name: str | None = None, network_file: str | None = None) -> str:
        """A ready-to-paste pytest regression test: loads the network (from ``network_file``, checked against the
        digest, or inlined), rebuilds the input exactly and asserts the exit with the core's own functions."""
        name = name or f"test_root_exit_layer{self.layer}_neuron{self.neuron}"
        x = json.dumps(array_to_json(self.input))
        attr = "leaves_pattern" if self.variant == "pattern" else "leaves_affine_map"
        load = _network_loader(net, self.question.network, network_file)
        return (
            "import json\n"
            "from fractions import Fraction\n\n"
            "import dtd_formal as dtd\n"
            "from dtd_formal.regions import classify_root_reference\n"
            "from dtd_formal.rules.parse import parse_rule\n\n\n"
            f"def {name}() -> None:\n"
            f"{load}"
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


def _fmt(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return "[" + ", ".join(str(e) for e in v.ravel()[:6]) + (", ..." if v.size > 6 else "") + "]"
    text = str(v)
    return text if len(text) < 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------------------- violation
@dataclass
class ViolationCounterexample(_Rederived):
    """An exact input of the question's box where the rule breaks the question's property; ``values`` are the
    exact quantities the property's failing check reports (:mod:`dtd_formal.properties`)."""

    question: Question
    input: np.ndarray
    values: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    found_by: str = ""

    kind = "violation"

    property_name = _param("property", str)

    @classmethod
    def derive(cls, question: Question, net: Network, rule: Rule, x: Any, found_by: str = ""
               ) -> tuple["ViolationCounterexample | None", str]:
        """The counterexample at the exact input x, or (None, why) when the property holds there."""
        from ..properties import get_property

        try:
            xa = to_fraction_array(x, "counterexample input")
        except InputError as exc:
            return None, str(exc)
        if not in_box(xa, question, net.input_size):
            return None, "the input is not in the question's box"
        outcome = get_property(question.params["property"]).evaluate(rule, net, xa, int(question.params["output"]))
        if outcome.error:
            return None, f"the rule raised: {outcome.error}"
        if outcome.holds:
            return None, "the property holds at the input"
        return cls(question, xa, to_jsonable(outcome.values), outcome.message, found_by), ""

    def check(self, net: Network, rule: Rule) -> list[str]:
        """Every mismatch with the exact re-derivation (empty: confirmed)."""
        bad = _check_question(self.question, net, rule)
        if bad:
            return bad
        fresh, why = type(self).derive(self.question, net, rule, self.input, self.found_by)
        if fresh is None:
            return [f"input: {why}"]
        if to_jsonable(self.values) != fresh.values:
            keys = sorted(k for k in set(fresh.values) | set(self.values)
                          if to_jsonable(self.values.get(k)) != fresh.values.get(k))
            bad.append(f"values: stored {keys} differ from the re-derived ones")
        if self.message != fresh.message:
            bad.append("message: differs from the re-derived one")
        return bad

    def to_json(self, net: Network | None = None) -> dict[str, Any]:
        out = {"kind": self.kind, "question": self.question.to_json(), "input": array_to_json(self.input),
               "values": to_jsonable(self.values), "message": self.message, "found_by": self.found_by}
        if net is not None:
            out["network"] = net.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any, source: str = "counterexample") -> "ViolationCounterexample":
        if not isinstance(data, dict) or data.get("kind") != cls.kind:
            raise InputError(f"{source}: not a violation counterexample")
        q = question_from_json(data.get("question"), "violation", source)
        return cls(q, to_fraction_array(_field(data, "input", list, source), f"{source}: input"),
                   dict(_field(data, "values", dict, source)), str(_field(data, "message", str, source)),
                   str(data.get("found_by", "")))

    def to_pytest(self, net: Network, name: str | None = None, network_file: str | None = None) -> str:
        name = name or f"test_{self.property_name.replace('-', '_').replace(':', '_')}_violation"
        x = json.dumps(array_to_json(self.input))
        load = _network_loader(net, self.question.network, network_file)
        return (
            "import json\n"
            "from fractions import Fraction\n\n"
            "import dtd_formal as dtd\n"
            "from dtd_formal.properties import evaluate_property\n"
            "from dtd_formal.rules.parse import parse_rule\n\n\n"
            f"def {name}() -> None:\n"
            f"{load}"
            f"    x = [Fraction(v) for v in json.loads({x!r})]\n"
            f"    outcome = evaluate_property({self.property_name!r}, parse_rule({self.rule!r}), net, x, {self.output})\n"
            "    assert not outcome.holds, outcome.message\n"
        )


__all__ = ["RootExitCounterexample", "ViolationCounterexample", "root_patterns", "flipped_neurons", "in_box",
           "question_from_json"]

"""Verdicts: Proved(statement, method, certificate) / Refuted(counterexample) / Unknown(reason).

A Proved never rests on float arithmetic alone; a Refuted always carries a counterexample that was replayed in
exact arithmetic; a timeout or budget is Unknown, never a guess. JSON writes rationals as "num/den" strings.

A verdict of the search engines is self-describing: its :class:`Question` names the network (the sha256 digest of
its canonical exact JSON, :meth:`dtd_formal.network.Network.digest`), the rule (its catalogue spec string), and
what was asked (layer, neuron, scope, variant, root definition, explained output and input box; or the property);
the statement is derived from the question, never stored on its own. ``dtd-formal replay`` re-derives the verdict
from network + rule + question + evidence (:mod:`dtd_formal.replay`).
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .exact import array_to_json, fraction_to_str


def to_jsonable(value: Any) -> Any:
    """Recursively convert Fractions, exact arrays, numpy values and dataclass-like objects to JSON values."""
    if isinstance(value, Fraction):
        return fraction_to_str(value)
    if isinstance(value, np.ndarray):
        return array_to_json(value) if value.dtype == object else value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "to_json"):
        return value.to_json()
    return value


def environment() -> dict[str, str]:
    """Versions recorded with every certificate."""
    import sympy

    from . import __version__

    info = {"dtd_formal": __version__, "python": platform.python_version(), "sympy": sympy.__version__,
            "numpy": np.__version__}
    try:
        import z3

        info["z3"] = z3.get_version_string()
    except ImportError:  # pragma: no cover - z3 is a dependency
        pass
    return info


VERDICT_FORMAT = "dtd_formal.verdict/2"

#: question kinds and the statement each one makes (formatted with the question's fields)
_STATEMENTS = {
    "root-exit": ("no input x with {low} <= x <= {high} has a {rule}{kind} root of layer {layer} neuron {neuron} "
                  "that {what} (scope {scope}, output {output}) on network {network}"),
    "violation": ("{rule} satisfies {property} for every input x with {low} <= x <= {high} (output {output}) "
                  "on network {network}"),
}


@dataclass(frozen=True)
class Question:
    """What a verdict is about: ``kind`` ("root-exit" or "violation"), the network digest, the rule's spec string
    and the kind's parameters (JSON values; rationals as "num/den" strings)."""

    kind: str
    network: str
    rule: str
    params: dict[str, Any]

    def statement(self) -> str:
        """The statement the verdict proves or refutes, derived from the question alone."""
        p = dict(self.params)
        fmt = {k: (" ".join(str(v) for v in p[k]) if isinstance(p.get(k), list) else p.get(k)) for k in p}
        fmt["low"] = "[" + ", ".join(p.get("low", [])) + "]"
        fmt["high"] = "[" + ", ".join(p.get("high", [])) + "]"
        fmt["kind"] = "" if p.get("definition", "true") == "true" else " paper-code"
        fmt["what"] = "leaves the linear region" if p.get("variant") == "pattern" else "changes the affine map"
        return _STATEMENTS[self.kind].format(rule=self.rule, network=self.network, **{**p, **fmt})

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "network": self.network, "rule": self.rule, **to_jsonable(self.params)}


@dataclass
class Verdict:
    """Base class; ``status`` is one of "proved", "refuted", "unknown". ``question`` (if set) makes the verdict
    self-describing; ``network`` (if set) is embedded in the JSON so that the file replays on its own."""

    status: ClassVar[str] = "unknown"

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _frame(self, body: dict[str, Any]) -> dict[str, Any]:
        """The common JSON frame: format tag, status, question, body, embedded network, environment."""
        q = getattr(self, "question", None)
        out: dict[str, Any] = {"status": self.status}
        if q is not None:
            out = {"format": VERDICT_FORMAT, **out, "question": q.to_json()}
        out.update(body)
        net = getattr(self, "network", None)
        if net is not None:
            out["network"] = net.to_json()
        out["environment"] = environment()
        return out

    def attach(self, question: "Question | None", network: Any = None) -> "Verdict":
        """Set the question (and the network to embed) and return the verdict."""
        self.question = question  # type: ignore[attr-defined]
        if network is not None:
            self.network = network  # type: ignore[attr-defined]
        return self

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    def __bool__(self) -> bool:
        return self.status == "proved"


@dataclass
class Proved(Verdict):
    """The statement holds; ``certificate`` holds what an exact re-check needs."""

    statement: str
    method: str
    certificate: dict[str, Any] = field(default_factory=dict)
    question: Question | None = None
    network: Any = None
    status: ClassVar[str] = "proved"

    def to_json(self) -> dict[str, Any]:
        return self._frame({"statement": self.statement, "method": self.method,
                            "certificate": to_jsonable(self.certificate)})


@dataclass
class Refuted(Verdict):
    """The statement fails; ``counterexample`` was replayed exactly."""

    statement: str
    counterexample: Any
    method: str = ""
    question: Question | None = None
    network: Any = None
    status: ClassVar[str] = "refuted"

    def to_json(self) -> dict[str, Any]:
        return self._frame({"statement": self.statement, "method": self.method,
                            "counterexample": to_jsonable(self.counterexample)})


@dataclass
class Unknown(Verdict):
    """No definite answer (timeout, budget, solver gave up); ``reason`` says which."""

    statement: str
    reason: str
    question: Question | None = None
    network: Any = None
    status: ClassVar[str] = "unknown"

    def to_json(self) -> dict[str, Any]:
        return self._frame({"statement": self.statement, "reason": self.reason})

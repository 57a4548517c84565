"""Verdicts: Proved(statement, method, certificate) / Refuted(counterexample) / Unknown(reason).

A Proved never rests on float arithmetic alone; a Refuted always carries a counterexample that was replayed in
exact arithmetic; a timeout or budget is Unknown, never a guess. JSON writes rationals as "num/den" strings.
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


@dataclass
class Verdict:
    """Base class; ``status`` is one of "proved", "refuted", "unknown"."""

    status: ClassVar[str] = "unknown"

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

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
    status: ClassVar[str] = "proved"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "statement": self.statement, "method": self.method,
                "certificate": to_jsonable(self.certificate), "environment": environment()}


@dataclass
class Refuted(Verdict):
    """The statement fails; ``counterexample`` was replayed exactly."""

    statement: str
    counterexample: Any
    method: str = ""
    status: ClassVar[str] = "refuted"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "statement": self.statement, "method": self.method,
                "counterexample": to_jsonable(self.counterexample), "environment": environment()}


@dataclass
class Unknown(Verdict):
    """No definite answer (timeout, budget, solver gave up); ``reason`` says which."""

    statement: str
    reason: str
    status: ClassVar[str] = "unknown"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "statement": self.statement, "reason": self.reason,
                "environment": environment()}

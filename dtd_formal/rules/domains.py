"""Input domains in which a rule's roots must stay.

- :class:`NonNegative`: the orthant a >= 0 (hidden-layer inputs are ReLU outputs); the default.
- :class:`Box`: l <= a <= h entrywise (ZBox's pixel box); bounds are scalars or per-input arrays.
- :class:`Unbounded`: all of R^n (WSquare; valid as a first-layer rule).

Membership is written once over the ops namespace (:meth:`Domain.member`: a Python boolean in exact arithmetic, a
Z3 formula for terms); :meth:`Domain.contains` is its exact form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import to_fraction_array


class Domain:
    """A set of layer inputs; ``contains`` is exact."""

    def member(self, ops: Any, a: Any) -> Any:  # pragma: no cover - interface
        """Whether the point a lies in the domain, in the logic of ``ops`` (exact: bool; Z3: a formula)."""
        raise NotImplementedError

    def contains(self, a: Any) -> bool:
        """Exact membership (:meth:`member` in exact arithmetic)."""
        from .ops import EXACT

        return bool(self.member(EXACT, np.asarray(a, dtype=object)))

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact (low, high) arrays of length n; entries may be None for an open side."""
        raise NotImplementedError  # pragma: no cover

    def describe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class NonNegative(Domain):
    """The non-negative orthant a >= 0."""

    def member(self, ops: Any, a: Any) -> Any:
        return ops.all_true(a >= ops.zero)

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return to_fraction_array(np.zeros(n)), np.array([None] * n, dtype=object)

    def describe(self) -> str:
        return "a >= 0"


@dataclass(frozen=True)
class Unbounded(Domain):
    """All of R^n."""

    def member(self, ops: Any, a: Any) -> Any:
        return ops.true

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return np.array([None] * n, dtype=object), np.array([None] * n, dtype=object)

    def describe(self) -> str:
        return "unbounded"


class Box(Domain):
    """The box low <= a <= high (exact bounds; scalars broadcast)."""

    def __init__(self, low: Any, high: Any) -> None:
        self.low = to_fraction_array(low, "box low")
        self.high = to_fraction_array(high, "box high")
        if np.any(np.broadcast_to(self.low, np.broadcast(self.low, self.high).shape) > self.high):
            raise InputError(f"box: low {low} exceeds high {high}")

    def member(self, ops: Any, a: Any) -> Any:
        n = np.shape(a)[-1] if np.ndim(a) else 1
        low, high = self.bounds(n)
        return ops.and_(ops.all_true(a >= ops.const(low)), ops.all_true(a <= ops.const(high)))

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return np.broadcast_to(self.low, (n,)).copy(), np.broadcast_to(self.high, (n,)).copy()

    def describe(self) -> str:
        def show(v: np.ndarray) -> str:
            return str(v.item()) if v.ndim == 0 else "[" + ",".join(str(x) for x in v) + "]"

        return f"{show(self.low)} <= a <= {show(self.high)}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Box) and np.array_equal(self.low, other.low) and np.array_equal(self.high, other.high)

    def __repr__(self) -> str:
        return f"Box({self.describe()})"

"""Input domains in which a rule's roots must stay.

- :class:`NonNegative`: the orthant a >= 0 (hidden-layer inputs are ReLU outputs); the default.
- :class:`Box`: l <= a <= h entrywise (ZBox's pixel box); bounds are scalars or per-input arrays.
- :class:`Unbounded`: all of R^n (WSquare; valid as a first-layer rule).

Membership is decided exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import to_fraction_array


class Domain:
    """A set of layer inputs; ``contains`` is exact."""

    def contains(self, a: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact (low, high) arrays of length n; entries may be None for an open side."""
        raise NotImplementedError  # pragma: no cover

    def describe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class NonNegative(Domain):
    """The non-negative orthant a >= 0."""

    def contains(self, a: Any) -> bool:
        return bool(all(v >= 0 for v in np.ravel(np.asarray(a, dtype=object))))

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return to_fraction_array(np.zeros(n)), np.array([None] * n, dtype=object)

    def describe(self) -> str:
        return "a >= 0"


@dataclass(frozen=True)
class Unbounded(Domain):
    """All of R^n."""

    def contains(self, a: Any) -> bool:
        return True

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

    def contains(self, a: Any) -> bool:
        a = np.asarray(a, dtype=object)
        return bool(np.all(a >= self.low) and np.all(a <= self.high))

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

r"""The :class:`Rule` base class: one definition per rule, every backend.

Train-free DTD models the upper relevance as :math:`R_j = c_j a_j` and searches a root on the line
:math:`a - t v_j`; a rule is its search direction :math:`v_j` (:meth:`Rule.direction`, row j of V). With
:math:`z_j = w_j \cdot a + b_j` everything else follows mechanically:

.. math::

    t_j = \frac{z_j}{w_j \cdot v_j}, \qquad \tilde a^{(j)} = a - t_j v_j, \qquad
    R_{i \leftarrow j} = \frac{w_{ij} v_{ij}}{n_j} R_j

with two normalisers (docs/theory.md, "Two normalisers"):

- ``bias="dtd"`` (default): :math:`n_j = w_j \cdot v_j`; conserves exactly, no stabiliser, and a neuron with
  :math:`n_j = 0` drops its relevance (reported by the engine).
- ``bias="zennit"``: :math:`n_j = \mathrm{stab}(\sum_i c_{ij} + b'_j)` with the rule's modified bias
  :math:`b'_j` and zennit's stabiliser (``z + eps * sign(z)``, sign(0) = +1), reproducing zennit's defaults.

The root uses the true definition :math:`t_j = z_j / (w_j \cdot v_j)` in both conventions. A rule that is not a
root-point rule (Epsilon with eps != 0, AlphaBeta, Flat) overrides :meth:`Rule.redistribute` or
:meth:`Rule.contributions` and has ``has_root = False``.

Rule bodies use only the ``ops`` namespace (:mod:`dtd_formal.rules.ops`), with shapes a (n_in,), W (n_out, n_in),
b (n_out,), R (n_out,); broadcasting makes one body serve a whole layer.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, ClassVar, Literal

from ..errors import InputError
from ..exact import to_fraction
from .domains import Domain, NonNegative

BiasConvention = Literal["dtd", "zennit"]
ZENNIT_STABILIZER = 1e-6


class Rule:
    """Base class of all relevance rules.

    Parameters
    ----------
    bias : {"dtd", "zennit"}
        Normaliser convention (module docstring).
    stabilizer : float
        zennit's stabiliser, used only with ``bias="zennit"`` (converted exactly from the float).
    """

    name: ClassVar[str] = "rule"
    #: whether the rule is a root-point rule (defines ``direction``)
    has_root: ClassVar[bool] = True

    def __init__(self, bias: BiasConvention = "dtd", stabilizer: float = ZENNIT_STABILIZER) -> None:
        if bias not in ("dtd", "zennit"):
            raise InputError(f"{type(self).__name__}: bias must be 'dtd' or 'zennit', got {bias!r}")
        self.bias: BiasConvention = bias
        self.stabilizer = stabilizer
        to_fraction(stabilizer, f"{type(self).__name__} stabilizer")  # validate

    # ------------------------------------------------------------------ what a rule defines
    @property
    def domain(self) -> Domain:
        """Where the rule's roots must stay (default: the non-negative orthant)."""
        return NonNegative()

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        """Search directions V (n_out, n_in); row j is v_j. Root-point rules override this."""
        raise NotImplementedError(f"{type(self).__name__} is not a root-point rule (no search direction)")

    def contributions(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        r"""The matrix C with :math:`R_{i \leftarrow j} = C_{ji} R_j / n_j`; default :math:`C = W \odot V`."""
        return W * self.direction(ops, a, W, b)

    def zennit_contributions(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        """Contributions under ``bias="zennit"`` (default: the same as :meth:`contributions`)."""
        return self.contributions(ops, a, W, b)

    def zennit_bias(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        """The modified bias b' that zennit adds to the normaliser (default: the plain bias)."""
        return b

    # ------------------------------------------------------------------ mechanics
    def normaliser(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        r"""n_j: :math:`\sum_i C_{ji}` (dtd) or :math:`\mathrm{stab}(\sum_i C_{ji} + b'_j)` (zennit)."""
        if self.bias == "dtd":
            return ops.sum(self.contributions(ops, a, W, b), axis=1)
        total = ops.sum(self.zennit_contributions(ops, a, W, b), axis=1) + self.zennit_bias(ops, a, W, b)
        return ops.stabilise(total, ops.const(self.stabilizer))

    def redistribute(self, ops: Any, a: Any, W: Any, b: Any, R: Any) -> Any:
        r"""Lower relevance :math:`R^{in}_i = \sum_j C_{ji} R_j / n_j` (zero normalisers drop R_j)."""
        C = self.contributions(ops, a, W, b) if self.bias == "dtd" else self.zennit_contributions(ops, a, W, b)
        return ops.matmul(ops.transpose(C), ops.safe_divide(R, self.normaliser(ops, a, W, b)))

    def dropped_neurons(self, ops: Any, a: Any, W: Any, b: Any, R: Any) -> list[int]:
        """Neurons whose relevance (or part of it) is dropped because their normaliser is zero."""
        return zero_where_relevant(ops, R, self.normaliser(ops, a, W, b))

    def root_step(self, ops: Any, a: Any, W: Any, b: Any, R: Any = None, definition: str = "true") -> tuple[Any, Any, Any]:
        r"""(t, V, den): step sizes, directions and :math:`w_j \cdot v_j`; the roots are :math:`a - t_j v_j`.

        ``definition="true"``: :math:`t_j = z_j / (w_j \cdot v_j)` (then :math:`z_j(\tilde a) = 0`);
        ``definition="paper-code"``: :math:`t_j = R_j / (w_j \cdot v_j)` as in the authors' code (a root only
        when :math:`R_j = z_j`). Entries with a zero denominator get t = 0; callers skip them via ``den``.
        """
        if not self.has_root:
            raise InputError(f"{self.spec()} is not a root-point rule: it has no root points")
        V = self.direction(ops, a, W, b)
        den = ops.sum(W * V, axis=1)
        if definition == "true":
            numer = ops.matmul(W, a) + b
        elif definition == "paper-code":
            if R is None:
                raise InputError("definition='paper-code' needs the upper relevance R")
            numer = R
        else:
            raise InputError(f"root definition must be 'true' or 'paper-code', got {definition!r}")
        return ops.safe_divide(numer, den), V, den

    # ------------------------------------------------------------------ naming
    def params(self) -> dict[str, Any]:
        """The rule's own parameters (for spec strings and reports)."""
        return {}

    def spec(self) -> str:
        """CLI form, e.g. ``gamma:0.25`` or ``zplus``; ``@zennit`` marks the zennit convention."""
        vals = ",".join(_fmt(v) for v in self.params().values())
        text = self.name + (f":{vals}" if vals else "")
        return text + ("@zennit" if self.bias == "zennit" else "")

    def __repr__(self) -> str:
        args = [f"{k}={v!r}" for k, v in self.params().items()]
        if self.bias != "dtd":
            args.append(f"bias={self.bias!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and repr(self) == repr(other) and self.stabilizer == other.stabilizer  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(repr(self))


def zero_where_relevant(ops: Any, R: Any, *normalisers: Any) -> list[int]:
    """Indices j with R_j != 0 and some normaliser n_j = 0."""
    import numpy as np

    zero = np.zeros(np.shape(R), dtype=bool)
    for n in normalisers:
        zero |= np.asarray(ops.is_zero(n), dtype=bool)
    return [int(j) for j in np.flatnonzero(zero & ~np.asarray(ops.is_zero(R), dtype=bool))]


def _fmt(value: Any) -> str:
    if isinstance(value, Fraction):
        return str(value)
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return "[" + ";".join(_fmt(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)

"""Z3 backend: the rules' ``ops`` namespace over Z3 real terms (:mod:`dtd_formal.smt.ops`).

Kept minimal here; the counterexample engine (root-exit search, property-violation search, exact-certified LP)
grows this package. Every number enters Z3 exactly (``z3.Q(num, den)`` from a :class:`fractions.Fraction`).
"""

from .ops import Z3, Z3Array, Z3Ops, from_z3, is_value, to_z3, to_z3_array, z3_value_to_fraction

__all__ = ["Z3", "Z3Array", "Z3Ops", "from_z3", "is_value", "to_z3", "to_z3_array", "z3_value_to_fraction"]

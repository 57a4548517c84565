r"""Deciding a property on one small given network with Z3, for every input of the domain.

The property is the catalogue's (:mod:`dtd_formal.properties`) and the query is the one
:func:`dtd_formal.smt.violations.violation_query` builds from it: the walk over Z3 terms with the rule's own methods
over :class:`~dtd_formal.smt.ops.Z3Ops`, inputs constrained to the domain (and, with ``positive_output``, to
:math:`f_c(x) \ge 0`: DTD explains a positive output, the strategies' default), layer-1 roots checked against the
same domain. ``unsat`` is a proof for that network (:class:`~dtd_formal.verdict.Proved`, method "z3") once the Z3
encoding agrees with exact arithmetic at probe points (:func:`dtd_formal.smt.violations.encoding_disagreement`);
``sat`` gives a witness that is replayed in Fractions before it becomes a :class:`~dtd_formal.verdict.Refuted`; a
timeout, an irrational witness or a witness that does not replay is :class:`~dtd_formal.verdict.Unknown`, never a
pass.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..network import Network
from ..properties import get_property
from ..rules.base import Rule
from ..rules.domains import Box, Domain, NonNegative
from ..verdict import Proved, Refuted, Unknown, Verdict

#: the catalogue properties with a Z3 encoding
SOLVABLE = ("conservation", "positivity", "root-on-hyperplane", "root-in-domain", "equals-gradient-x-input")


def _probes(net: Network, domain: Domain) -> list[np.ndarray]:
    """Exact probe inputs inside the domain: a few small rationals per coordinate."""
    n = net.input_size
    if isinstance(domain, Box):
        low, high = domain.bounds(n)
        return [low, high, (low + high) / 2, (3 * low + high) / 4]
    base = [Fraction(1, 2), Fraction(2), Fraction(1, 3)] if isinstance(domain, NonNegative) else \
        [Fraction(1, 2), Fraction(-2), Fraction(1, 3)]
    return [np.array([base[(i + k) % 3] * (k + 1) for i in range(n)], dtype=object) for k in range(3)]


def decide(prop: str, rule: Rule, net: Network, output: int = 0, domain: Domain | None = None,
           timeout_ms: int = 2000, positive_output: bool = True) -> Verdict:
    """Decide ``prop`` on ``net`` for all inputs in ``domain`` (default: the rule's) with Z3 (module docstring)."""
    from ..smt.violations import decide_property, encoding_disagreement

    p = get_property(prop)
    domain = rule.domain if domain is None else domain
    statement = (f"{p.name} holds for {rule.spec()} on {net!r} for every input with {domain.describe()}"
                 + (f" and f_{output}(x) >= 0" if positive_output else ""))
    st, x, why = decide_property(p, rule, net, output, domain, timeout_ms / 1000, domain, positive_output)
    if st == "unknown":
        return Unknown(statement, why if why.startswith("no Z3 encoding") else f"{why} (timeout {timeout_ms} ms)")
    if st == "unsat":
        for probe in _probes(net, domain):
            bad = encoding_disagreement(p, rule, net, probe, output, domain)
            if bad:
                return Unknown(statement, f"no Z3 encoding to trust: at x = {[str(v) for v in probe]}: {bad}")
        return Proved(statement, "z3 (unsat of the negation)", {"network": net.to_json()})
    xw = np.empty(len(x or []), dtype=object)
    xw[:] = x
    if not domain.contains(xw):
        return Unknown(statement, f"z3 witness {[str(v) for v in xw]} is outside the domain")
    outcome = p.evaluate(rule, net, xw, output, domain)
    if outcome.error:
        return Unknown(statement, f"the rule raised at the z3 witness: {outcome.error}")
    if outcome.holds:
        return Unknown(statement, f"z3 witness {[str(v) for v in xw]} does not replay in Fractions")
    return Refuted(statement, {"network": net, "input": xw, "output": output, "values": outcome.values,
                               "message": outcome.message}, method="z3 witness, replayed in Fractions")


__all__ = ["SOLVABLE", "decide"]

"""Property-based testing of relevance rules: hypothesis strategies, the property catalogue, ``check_rule``.

    from dtd_formal.testing import check_rule
    report = check_rule(MyRule(), ["conservation", "positivity"], max_examples=200, seed=0)
    print(report.table()); report.counterexample.to_pytest()

- :mod:`~dtd_formal.testing.strategies`: exact small ReLU networks built around inputs in a domain, kink steering
- :mod:`~dtd_formal.testing.properties`: the named predicates, each evaluated exactly
- :mod:`~dtd_formal.testing.germ`: one-sided series at s -> 0+ (the ``continuity`` property)
- :mod:`~dtd_formal.testing.solver`: Z3 decides a property on a few small networks, for every input
- :mod:`~dtd_formal.testing.check`: :func:`check_rule` and its report
- :mod:`~dtd_formal.testing.counterexample`: exact replay, JSON, pytest regression-test export
- :mod:`~dtd_formal.testing.plugin`: the pytest plugin (fixture ``check_rule``, profiles ci/dev/thorough)

Names are loaded lazily, so that the pytest plugin (imported in every pytest run) does not import Z3.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "check_rule": "check", "RuleReport": "check", "PropertyReport": "check", "STATUSES": "check",
    "solver_network": "check", "Counterexample": "counterexample", "CATALOGUE": "properties",
    "DEFAULT_PROPERTIES": "properties", "Outcome": "properties", "Property": "properties",
    "evaluate_property": "properties", "get_property": "properties", "Case": "strategies",
    "NetworkSpec": "strategies", "cases": "strategies", "inputs": "strategies",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_EXPORTS)

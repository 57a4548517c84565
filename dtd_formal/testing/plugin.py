"""pytest plugin (entry point ``dtd_formal`` under ``pytest11``): check rules from a test suite.

    def test_my_rule(check_rule):
        check_rule(MyRule(), ["conservation", "positivity"])

The fixture ``check_rule`` runs :func:`dtd_formal.testing.check_rule` and fails the test with a readable message
and the shrunk counterexample when a property is refuted (a property left "unknown" by the solver gives a warning,
not a failure). It returns the :class:`~dtd_formal.testing.RuleReport`.

The marker ``@pytest.mark.check_rule(max_examples=..., seed=..., bias=..., ...)`` sets defaults for the fixture.
Hypothesis profiles registered here (select with ``--hypothesis-profile NAME`` or ``HYPOTHESIS_PROFILE``; a
project's own conftest may re-register them):

- ``ci``: derandomized, 40 examples, no deadline (the fixture's default number of examples follows the profile);
- ``dev``: 100 examples;
- ``thorough``: 2000 examples.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable

import pytest
from hypothesis import HealthCheck, settings

if TYPE_CHECKING:  # the plugin loads in every pytest run: import the checker (z3, ...) only when used
    from .check import RuleReport

settings.register_profile(
    "ci", max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers", "check_rule(**kwargs): default keyword arguments for the dtd_formal check_rule fixture"
    )


@pytest.fixture
def check_rule(request: Any) -> Callable[..., "RuleReport"]:
    """Check a rule's properties; fail the test with the counterexample when one is refuted."""
    from .check import check_rule as _check_rule

    marker = request.node.get_closest_marker("check_rule")
    defaults = dict(marker.kwargs) if marker else {}

    def run(rule: Any, properties: Any = None, **kwargs: Any) -> "RuleReport":
        report = _check_rule(rule, properties, **{**defaults, **kwargs})
        if report.refuted:
            pytest.fail(report.failure_message() + "\n\n" + report.table(counterexamples=False), pytrace=False)
        for p in report.unknown:
            warnings.warn(f"{rule.spec()}: {p.name} is unknown ({p.reason})", stacklevel=2)
        return report

    return run

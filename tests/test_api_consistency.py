"""Small consistency fixes found by the documentation pass: each test fails on the code before the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

import dtd_formal as dtd
from dtd_formal.errors import InputError
from dtd_formal.experiments.reproduce import Context, run_steps

from graph_nets import pool_net


def test_exact_dtd_refuses_an_operator_graph_by_name() -> None:
    net = pool_net()
    with pytest.raises(InputError, match="exact_dtd takes a dense Network"):
        dtd.exact_dtd(net, [0.5] * net.input_size, "true")


def test_documented_searches_are_in_the_public_names() -> None:
    assert {"find_root_exit", "find_violation"} <= set(dtd.__all__)


def test_a_step_whose_own_module_fails_to_import_fails_the_run_instead_of_being_skipped(tmp_path: Path) -> None:
    def broken(ctx):  # type: ignore[no-untyped-def]
        import dtd_formal.no_such_module  # noqa: F401

    def optional(ctx):  # type: ignore[no-untyped-def]
        import no_such_third_party_backend  # noqa: F401

    ctx = Context(tmp_path, quick=True, seed=5, n_inputs=1, budgets={}, progress=False)
    results = run_steps(ctx, [("broken", "a step", broken), ("optional", "another", optional)])
    assert [r.status for r in results] == ["failed", "skipped"]
    assert results[0].failures and "no_such_module" in results[0].failures[0]

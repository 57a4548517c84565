"""check_rule on convolutional operator graphs (``NetworkSpec(kind="conv")``): correct rules keep their properties,
seeded bugs lose one, and a bug that only a patch-shaped layer exposes is caught there and not on dense nets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dtd_formal.rules import WSquare, ZBox, ZPlus
from dtd_formal.testing import NetworkSpec, check_rule
from dtd_formal.testing.counterexample import Counterexample

from mutants import WSquareCubed, ZBoxSwappedBounds, ZPlusMissingMask, ZPlusNoNormalisation, ZPlusWrongRootSign

PROPS = ["conservation", "positivity", "root-on-hyperplane", "root-in-domain"]
CONV = NetworkSpec(kind="conv", bias="nonpositive")


class ZPlusNumpyTranspose(ZPlus):
    """Redistributes with numpy's transpose instead of ops.transpose: right on dense layers (C is n_out x n_in),
    wrong on a convolution's patches (C is n_out x k; the transposed convolution is ops.matmul(ops.transpose(C), s))."""

    def redistribute(self, ops: Any, a: Any, W: Any, b: Any, R: Any) -> Any:
        C = self.contributions(ops, a, W, b)
        s = ops.safe_divide(R, self.normaliser(ops, a, W, b))
        return np.asarray(C, dtype=object).T.dot(np.asarray(s, dtype=object))


@pytest.mark.parametrize("rule", [ZPlus(), WSquare(), ZBox(-1, 1)], ids=lambda r: r.spec())
def test_correct_rules_keep_their_properties_on_conv_graphs(rule: Any) -> None:
    rep = check_rule(rule, PROPS, max_examples=30, networks=CONV)
    statuses = {p.name: p.status for p in rep.properties}
    assert set(statuses.values()) <= {"passed", "not applicable"}, statuses
    assert all(p.examples >= 30 for p in rep.properties if p.status == "passed")


@pytest.mark.parametrize("mutant", [ZPlusMissingMask(), ZPlusNoNormalisation(), ZPlusWrongRootSign(), WSquareCubed(),
                                    ZBoxSwappedBounds(-1, 1)], ids=lambda r: type(r).__name__)
def test_seeded_bugs_are_caught_on_conv_graphs_with_replaying_counterexamples(mutant: Any) -> None:
    rep = check_rule(mutant, PROPS, max_examples=60, networks=CONV)
    refuted = [p for p in rep.properties if p.status == "refuted"]
    assert refuted, [(p.name, p.status) for p in rep.properties]
    for p in refuted:
        cex = p.counterexample
        assert getattr(cex.network, "is_graph", False)
        assert cex.check() == []
        back = Counterexample.from_json(cex.to_json(), rule=mutant)
        assert back.check() == []


def test_a_patch_only_bug_is_caught_on_conv_graphs_and_not_on_dense_nets() -> None:
    dense = check_rule(ZPlusNumpyTranspose(), ["conservation"], max_examples=30, bias="nonpositive", solver=False)
    assert dense.properties[0].status == "passed"
    conv = check_rule(ZPlusNumpyTranspose(), ["conservation"], max_examples=30, networks=CONV)
    assert conv.properties[0].status == "error" and "redistribute" in conv.properties[0].reason

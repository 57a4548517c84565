"""Rule-property violations: hand-derived violations are found and replay exactly; true properties never refuted."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

import dtd_formal as dtd
from dtd_formal.errors import InputError
from dtd_formal.rules import LRP0, ZPlus
from dtd_formal.smt.violations import property_holds

NET_POS_BIAS = dtd.Network([[[1, -1], [1, 1]], [[1, 1]]], [[F(1, 2), F(-1, 4)], [0]])
NET_NEG_BIAS = dtd.Network([[[1, -1], [1, 1]], [[1, 1]]], [[F(-1, 2), F(-1, 4)], [0]])
NET_NO_BIAS = dtd.Network([[[1, -1], [1, 2]], [[1, -1]]], [[0, 0], [0]])


def test_hand_derived_conservation_violation() -> None:
    # at x = 0 neuron 0 has z = 1/2 > 0 but sum_i x_i w+_i0 = 0: its relevance has nowhere to go
    holds, values = property_holds(NET_POS_BIAS, ZPlus(), "conservation", [0, 0])
    assert not holds and values["f_c"] == F(1, 2) and values["sum_R0"] == 0
    v = dtd.find_violation(NET_POS_BIAS, ZPlus(), "conservation", domain=(0, 1), timeout=10)
    assert v.status == "refuted" and v.counterexample.replay(NET_POS_BIAS)
    src = v.counterexample.to_pytest(NET_POS_BIAS, "test_generated")
    ns: dict = {}
    exec(compile(src, "<generated>", "exec"), ns)
    ns["test_generated"]()


def test_conservation_holds_for_zplus_with_non_positive_biases() -> None:
    v = dtd.find_violation(NET_NEG_BIAS, ZPlus(), "conservation", domain=(0, 1), timeout=10)
    assert v.status in ("proved", "unknown")


def test_root_in_domain_violation_with_positive_bias() -> None:
    # z+ root of neuron 0 at x = (1, 0): t = (1 + 1/2) / 1 = 3/2 > 1, so the root coordinate 1 - 3/2 < 0
    holds, values = property_holds(NET_POS_BIAS, ZPlus(), "root-in-domain", [1, 0])
    assert not holds and values["root"][0] == F(-1, 2)
    v = dtd.find_violation(NET_POS_BIAS, ZPlus(), "root-in-domain", domain=(0, 1), timeout=10)
    assert v.status == "refuted" and v.counterexample.replay(NET_POS_BIAS)
    assert dtd.find_violation(NET_NEG_BIAS, ZPlus(), "root-in-domain", domain=(0, 1), timeout=3).status != "refuted"


def test_gradient_x_input_equivalence() -> None:
    # LRP-0 with the bias in the normaliser (zennit) equals gradient x input on ReLU nets; the dtd normaliser
    # (without the bias) does not once a hidden bias is non-zero
    for net in (NET_NO_BIAS, NET_NEG_BIAS):
        v = dtd.find_violation(net, LRP0(bias="zennit"), "equals-gradient-x-input", domain=(0, 1), timeout=3)
        assert v.status != "refuted"
    v = dtd.find_violation(NET_NEG_BIAS, LRP0(), "equals-gradient-x-input", domain=(0, 1), timeout=5)
    assert v.status == "refuted" and v.counterexample.replay(NET_NEG_BIAS)


def test_positivity() -> None:
    v = dtd.find_violation(NET_NO_BIAS, LRP0(), "positivity", domain=(0, 1), timeout=5)
    assert v.status == "refuted" and v.counterexample.replay(NET_NO_BIAS)
    v = dtd.find_violation(NET_NEG_BIAS, ZPlus(), "positivity", domain=(0, 1), timeout=5)
    assert v.status in ("proved", "unknown")


def test_unknown_property_is_an_input_error() -> None:
    with pytest.raises(InputError):
        dtd.find_violation(NET_NO_BIAS, ZPlus(), "monotonicity", domain=(0, 1))

"""Rule-property violations: hand-derived violations are found and replay exactly; true properties never refuted."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

import dtd_formal as dtd
from dtd_formal.errors import InputError
from dtd_formal.properties import evaluate_property, get_property
from dtd_formal.rules import LRP0, AlphaBeta, Box, ZPlus


def property_holds(net, rule, prop, x):  # type: ignore[no-untyped-def]
    out = evaluate_property(prop, rule, net, x)
    return out.holds, out.values

NET_POS_BIAS = dtd.Network([[[1, -1], [1, 1]], [[1, 1]]], [[F(1, 2), F(-1, 4)], [0]])
NET_NEG_BIAS = dtd.Network([[[1, -1], [1, 1]], [[1, 1]]], [[F(-1, 2), F(-1, 4)], [0]])
NET_NO_BIAS = dtd.Network([[[1, -1], [1, 2]], [[1, -1]]], [[0, 0], [0]])
#: one hidden neuron z = x0 - x1: LRP-0 gives R^1 = relu(x0 - x1) >= 0 and R^0 = (x0, -x1), negative for x1 > 0 (hand)
NET_SIGNED = dtd.Network([[[1, -1]], [[1]]], [[0], [0]])


def test_hand_derived_conservation_violation() -> None:
    # at x = 0 neuron 0 has z = 1/2 > 0 but sum_i x_i w+_i0 = 0: its relevance has nowhere to go
    holds, values = property_holds(NET_POS_BIAS, ZPlus(), "conservation", [0, 0])
    assert not holds and values["layer"] == 1 and values["upper_total"] == F(1, 2) and values["lower_total"] == 0
    v = dtd.find_violation(NET_POS_BIAS, ZPlus(), "conservation", domain=(0, 1), timeout=10)
    assert v.status == "refuted" and v.counterexample.replay(NET_POS_BIAS, ZPlus())
    src = v.counterexample.to_pytest(NET_POS_BIAS, "test_generated")
    ns: dict = {}
    exec(compile(src, "<generated>", "exec"), ns)
    ns["test_generated"]()


def test_conservation_holds_for_zplus_with_non_positive_biases() -> None:
    v = dtd.find_violation(NET_NEG_BIAS, ZPlus(), "conservation", domain=(0, 1), timeout=10)
    assert v.status == "proved"


def test_root_in_domain_violation_with_positive_bias() -> None:
    # z+ root of neuron 0 at x = (1, 0): t = (1 + 1/2) / 1 = 3/2 > 1, so the root coordinate 1 - 3/2 < 0
    holds, values = property_holds(NET_POS_BIAS, ZPlus(), "root-in-domain", [1, 0])
    assert not holds and values["root"][0] == "-1/2"
    v = dtd.find_violation(NET_POS_BIAS, ZPlus(), "root-in-domain", domain=(0, 1), timeout=10)
    assert v.status == "refuted" and v.counterexample.replay(NET_POS_BIAS, ZPlus())
    # with b <= 0 the z+ step is t = 1 + b / (x . w+) <= 1, so the root x (1 - t) [w > 0] stays >= 0: proved
    v = dtd.find_violation(NET_NEG_BIAS, ZPlus(), "root-in-domain", domain=(0, 1), timeout=20)
    assert v.status == "proved"
    assert dtd.find_violation(NET_DEEP, ZPlus(), "root-in-domain", domain=(0, 1), timeout=20).status == "refuted"


NET_DEEP = dtd.Network(
    [[[1, -1, 2], [1, 1, -1], [F(1, 2), -1, 1]], [[1, -1, 1], [2, 1, -1]], [[1, -1]]],
    [[F(-1, 2), F(1, 4), 0], [F(1, 3), -1], [F(1, 5)]],
)


def test_gradient_x_input_equivalence() -> None:
    # LRP-0 with the bias in the normaliser (zennit) equals gradient x input on ReLU nets (docs/theory.md C2: a_i w_i / z
    # * z = a_i w_i, by induction through active neurons): Z3 proves it for every input of the box
    for net in (NET_NO_BIAS, NET_NEG_BIAS, NET_POS_BIAS, NET_DEEP):
        # a generous budget (about 1 s is used on an idle machine): a loaded CI machine must not turn it Unknown
        v = dtd.find_violation(net, LRP0(bias="zennit"), "equals-gradient-x-input", domain=(0, 1), timeout=120)
        assert v.status == "proved", (net, getattr(v, "reason", v))
    # LRP-0 with the DTD normaliser (without the bias) equals it on bias-free nets only
    v = dtd.find_violation(NET_NO_BIAS, LRP0(), "equals-gradient-x-input", domain=(-1, 1), timeout=20)
    assert v.status == "proved"
    v = dtd.find_violation(NET_NEG_BIAS, LRP0(), "equals-gradient-x-input", domain=(0, 1), timeout=5)
    assert v.status == "refuted" and v.counterexample.replay(NET_NEG_BIAS, LRP0())
    # hand-derived: at x = (1, 0) z = (1/2, 3/4), R^1 = (1/2, 3/4); both neurons see contributions (1, 0) with
    # dtd normaliser 1, so R0_0 = 1/2 + 3/4 = 5/4, while gradient x input is (1 + 1) * 1 = 2
    holds, values = property_holds(NET_NEG_BIAS, LRP0(), "equals-gradient-x-input", [1, 0])
    assert not holds and values["R_input"][0] == "5/4" and values["gradient_x_input"][0] == "2"


def test_z3_finds_violations_that_replay() -> None:
    """The Z3 path alone (no sampling): its models are replayed exactly; the encodings are not vacuous."""
    from dtd_formal.smt.violations import decide_property

    box = Box(0, 1)
    for net, rule, prop in ((NET_NEG_BIAS, LRP0(), "equals-gradient-x-input"),
                            (NET_POS_BIAS, ZPlus(), "root-in-domain"),
                            (NET_POS_BIAS, ZPlus(), "conservation"),
                            (NET_SIGNED, LRP0(), "positivity")):
        st, x, _ = decide_property(get_property(prop), rule, net, 0, box, 20)
        assert st == "sat", (prop, st)
        assert all(0 <= v <= 1 for v in x)
        holds, _ = property_holds(net, rule, prop, x)
        assert not holds, (prop, x)
    # and unsat where the property holds
    assert decide_property(get_property("root-in-domain"), ZPlus(), NET_NEG_BIAS, 0, box, 20)[0] == "unsat"


def test_positivity() -> None:
    v = dtd.find_violation(NET_SIGNED, LRP0(), "positivity", domain=(0, 1), timeout=5)
    assert v.status == "refuted" and v.counterexample.replay(NET_SIGNED, LRP0())
    x0, x1 = v.counterexample.input
    assert x0 > x1 > 0  # the hand-derived region of violations
    # on NET_NO_BIAS, R^1 = (a0, -a1) is >= 0 only where neuron 1 is off, i.e. x = 0 in the box: no violation
    assert dtd.find_violation(NET_NO_BIAS, LRP0(), "positivity", domain=(0, 1), timeout=5).status == "proved"
    v = dtd.find_violation(NET_NEG_BIAS, ZPlus(), "positivity", domain=(0, 1), timeout=5)
    assert v.status in ("proved", "unknown")


def test_unknown_or_inapplicable_property_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown property"):
        dtd.find_violation(NET_NO_BIAS, ZPlus(), "monotonicity", domain=(0, 1))
    # AlphaBeta has no single normaliser: the property is not stated for it (an error, not a traceback)
    with pytest.raises(InputError, match="no single normaliser"):
        dtd.find_violation(NET_NO_BIAS, AlphaBeta(), "equals-gradient-x-input", domain=(0, 1))
    with pytest.raises(InputError, match="no Z3 encoding"):
        dtd.find_violation(NET_NO_BIAS, ZPlus(), "root-in-linear-region:upper", domain=(0, 1))
    # snake_case spellings are accepted
    assert dtd.find_violation(NET_NEG_BIAS, ZPlus(), "root_in_domain", domain=(0, 1), timeout=20).status == "proved"

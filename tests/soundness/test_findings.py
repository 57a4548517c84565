"""Regression tests for the findings of the soundness issue (each failed on the code before it; see also
tests/test_input_hardening.py for the input findings of item 6 and tests/test_certificate_tamper.py for claims)."""

from __future__ import annotations

import json
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.cli import main
from dtd_formal.errors import InputError
from dtd_formal.replay import replay_data
from dtd_formal.rules import ZPlus
from dtd_formal.smt.counterexample import RootExitCounterexample
from dtd_formal.smt.problem import RootExitProblem, parse_box

from mutants import ZPlusWrongRootSign


class ZPlusTripleStep(ZPlus):
    """root_step three times the true step: roots overshoot below 0."""

    def root_step(self, ops, a, W, b, R=None, definition="true"):  # type: ignore[no-untyped-def]
        t, V, den = super().root_step(ops, a, W, b, R, definition)
        return t * ops.const(3), V, den


NEG_BIAS = dtd.Network([[[1, -1], [1, 1]], [[1, 1]]], [[F(-1, 2), F(-1, 4)], [0]])
EXIT_NET = dtd.Network([[[1, 1], [1, 0]], [[1, 1]]], [[F(-1, 2), F(-1, 2)], [0]])


# ---------------------------------------------------------------------------------------------------- finding 1
def test_finding1_a_root_step_override_is_never_proved_away() -> None:
    net = dtd.Network([[[1], [-1]], [[1, 1]]], [[F(-1, 2), 1], [0]])
    rule = ZPlusWrongRootSign()
    for engines in (("falsify", "relax", "lp", "slice", "z3"), ("z3",), ("relax",)):
        assert dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=(0, 1), timeout=3,
                                  engines=engines).status != "proved"
    # find_violation reads the same root_step: the stock z+ roots stay in a >= 0 (b <= 0), triple steps do not
    assert dtd.find_violation(NEG_BIAS, ZPlus(), "root-in-domain", domain=(0, 1), timeout=10).status == "proved"
    v = dtd.find_violation(NEG_BIAS, ZPlusTripleStep(), "root-in-domain", domain=(0, 1), timeout=10)
    assert v.status == "refuted" and v.counterexample.check(NEG_BIAS, ZPlusTripleStep()) == []


# ---------------------------------------------------------------------------------------------------- finding 2
def test_finding2_one_catalogue_one_walk() -> None:
    import dtd_formal.properties as catalogue
    import dtd_formal.smt.violations as violations
    import dtd_formal.testing.properties as testing_properties

    assert testing_properties.CATALOGUE is catalogue.CATALOGUE
    assert not hasattr(violations, "PROPERTIES") and not hasattr(violations, "_z3_lrp")
    # both spellings name the one property, in find_violation and in check_rule
    assert catalogue.get_property("root_in_domain") is catalogue.get_property("root-in-domain")
    from dtd_formal.testing import check_rule

    rep = check_rule(ZPlusTripleStep(), ["root_in_domain"], max_examples=20, bias="nonpositive")
    assert rep["root-in-domain"].status == "refuted"


# ---------------------------------------------------------------------------------------------------- finding 3
def test_finding3_replay_never_runs_code_named_in_a_file(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    net = dtd.Network([[[1]], [[1]]], [[F(1, 2)], [0]])
    # a property counterexample whose rule names a callable: the old format imported and called it
    crafted = {
        "format": "dtd_formal.counterexample/1", "property": "conservation",
        "rule": {"class": "os:system", "params": {"command": f"touch {marker}"}, "reference": "python:os:system[x]"},
        "network": net.to_json(), "input": ["1"], "output": 0, "domain": {"kind": "nonnegative"},
        "values": {}, "message": "",
    }
    (tmp_path / "crafted.json").write_text(json.dumps(crafted))
    assert main(["replay", str(tmp_path / "crafted.json")]) == 2
    assert not marker.exists()
    crafted["rule"] = {"reference": f"__import__('os').system('touch {marker}')"}
    (tmp_path / "crafted2.json").write_text(json.dumps(crafted))
    assert main(["replay", str(tmp_path / "crafted2.json")]) == 2
    assert not marker.exists()
    # and a certificate's expression text is parsed, not evaluated
    from dtd_formal.symbolic.certificate import parse_srepr

    with pytest.raises(InputError):
        parse_srepr(f"__import__('os').system('touch {marker}')")
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------- finding 4
def test_finding4_witnesses_are_clamped_and_checked_in_the_exact_box() -> None:
    """float(1/10) > 1/10: a float point at the upper bound rounds outside the exact box [0, 1/10]."""
    assert F(float(F(1, 10))) > F(1, 10)
    net = dtd.Network([[[1], [1]], [[1, 1]]], [[0, F(-1, 20)], [0]])
    P = RootExitProblem(net, ZPlus(), 1, 0, *parse_box((0, F(1, 10)), 1))
    question = P.question()
    outside = np.array([F(float(F(1, 10)))], dtype=object)
    # a counterexample outside the box is never built, whatever the rest says
    assert RootExitCounterexample.derive(question, net, ZPlus(), outside)[1] == "the input is not in the question's box"
    from dtd_formal.smt.falsify import confirm

    cex = confirm(P, np.array([0.1]), "test")  # the float candidate is clamped exactly into the box
    assert cex is None or (cex.input[0] <= F(1, 10) and cex.check(net, ZPlus()) == [])
    v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, F(1, 10)), timeout=5)
    if v.status == "refuted":
        assert 0 <= v.counterexample.input[0] <= F(1, 10)
    # the report of `dtd-formal counterexample --json` carries the network and each verdict its box
    data = v.attach(v.question, net).to_json()
    assert data["question"]["high"] == ["1/10"] and data["network"]["layers"]


def test_finding4_lp_gets_at_most_the_time_left() -> None:
    import inspect

    from dtd_formal.smt import lp

    src = inspect.getsource(lp._lp_slice_point)
    assert '"time_limit": 2.0' not in src and "time_limit" in inspect.signature(lp._lp_slice_point).parameters


# ---------------------------------------------------------------------------------------------------- finding 5
def _verdict(net: dtd.Network, rule: object, **kw: object) -> dict:
    v = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=(0, 1), timeout=10, **kw)
    return json.loads(json.dumps(v.attach(v.question, net).to_json()))


def test_finding5_forged_and_rebound_proofs_are_rejected() -> None:
    safe = dtd.Network([[[1], [1]], [[1, 1]]], [[F(-1, 4), F(1, 2)], [0]])
    proof = _verdict(safe, ZPlus(), engines=("relax",))
    assert proof["status"] == "proved" and replay_data(proof).ok
    # the same proof pasted onto a network with an exit: bound to the digest, rejected
    moved = dict(proof, network=EXIT_NET.to_json())
    assert not replay_data(moved).ok
    # a forged "proved" for the exit net (question, statement and tree made up): the tree does not re-derive
    refuted = _verdict(EXIT_NET, ZPlus())
    assert refuted["status"] == "refuted"
    forged = {k: v for k, v in refuted.items() if k not in ("counterexample", "method")}
    forged.update(status="proved", method="interval/McCormick relaxation",
                  certificate={"split_tree": [-1], "boxes": 1, "t_splits": 0, "branch": "both"})
    rep = replay_data(forged)
    assert not rep.ok and "interval test does not settle" in rep.problems[0]
    # a trivial proof with a made-up reason
    forged["certificate"] = {"reason": "no other ReLU neuron in the scope"}
    assert not replay_data(forged).ok
    # a Z3 proof is re-run, not trusted
    forged["certificate"] = {"solver": "z3", "logic": "QF_NRA"}
    rep = replay_data(forged, timeout=10)
    assert not rep.ok and "not unsat" in rep.problems[0]


def test_finding5_every_stored_value_of_a_counterexample_is_re_derived() -> None:
    data = _verdict(EXIT_NET, ZPlus())
    assert replay_data(data).ok
    for path, value in ((("patterns_before",), [[1, -1]]), (("patterns_after",), [[1, 1]]),
                        (("flipped",), [[1, 0]]), (("step",), "1/2"), (("leaves_affine_map",), False)):
        edited = json.loads(json.dumps(data))
        edited["counterexample"][path[0]] = value
        rep = replay_data(edited)
        assert not rep.ok and rep.problems[0].startswith(path[0]), (path, rep.problems)


def test_finding5_a_crash_during_replay_is_never_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _verdict(EXIT_NET, ZPlus())
    import dtd_formal.smt.counterexample as cex_mod

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("crash inside the re-derivation")

    monkeypatch.setattr(cex_mod, "root_patterns", boom)
    rep = replay_data(data)
    assert not rep.ok and rep.problems[0].startswith("error:")

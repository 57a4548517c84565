"""dtd_formal.testing: strategies, property catalogue, Z3 ops, check_rule verdicts, mutants, export, plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from fractions import Fraction as F

import numpy as np
import pytest
import z3
from hypothesis import given, settings

from dtd_formal.dtd import lrp
from dtd_formal.errors import InputError
from dtd_formal.exact import to_fraction_array
from dtd_formal.network import Network
from dtd_formal.rules import EXACT, LRP0, AlphaBeta, Box, Epsilon, Flat, Gamma, WSquare, ZBox, ZPlus
from dtd_formal.smt.ops import Z3, from_z3
from dtd_formal.testing import Counterexample, NetworkSpec, cases, check_rule, evaluate_property
from dtd_formal.testing import solver as solver_mod
from dtd_formal.testing.strategies import gammas

from mutants import MUTANTS, PROPERTIES, ZPlusFloatLiteral

N = 40  # examples per property: enough for these verdicts, keeps the file fast


def statuses(report):
    return {p.name: p.status for p in report.properties}


# ---------------------------------------------------------------------------------------------------- strategies
@settings(max_examples=60)
@given(cases(NetworkSpec(bias="nonpositive", n_layers=(2, 2))))
def test_cases_respect_bias_constraint_domain_and_positive_output(case):
    assert all(v <= 0 for b in case.network.biases for v in b)
    assert all(v >= 0 for v in case.x) and any(v != 0 for v in case.x)
    f = case.network.forward(case.x)[case.output]
    assert f >= 0 and case.stats.output_value == f
    zs = case.network.preactivations(case.x)
    assert case.stats.kinks == sum(1 for v in zs[0] if v == 0)


@settings(max_examples=40)
@given(cases(NetworkSpec(kinks="toward", n_layers=(2, 2), bias="any")))
def test_kink_steering_puts_a_hidden_neuron_exactly_on_its_kink(case):
    zs = case.network.preactivations(case.x)
    assert any(v == 0 for v in zs[0])


@settings(max_examples=40)
@given(cases(NetworkSpec(n_layers=(2, 2)), ZBox(F(-1, 2), 1).domain))
def test_box_inputs_stay_in_the_box(case):
    assert all(F(-1, 2) <= v <= 1 for v in case.x)


@settings(max_examples=30)
@given(cases(NetworkSpec(bias="nonpositive", n_layers=(2, 2))), gammas())
def test_gamma_conserves_for_every_drawn_gamma_on_nonpositive_biases(case, gamma):
    # dtd normaliser sum a (w + gamma w+) >= z - b >= z > 0 for an active neuron: nothing is dropped
    assert evaluate_property("conservation", Gamma(gamma), case.network, case.x).holds


# ---------------------------------------------------------------------------------------------------- Z3 ops
@pytest.mark.parametrize("rule", [LRP0(), ZPlus(), Gamma(0.25), Gamma(0.25, bias="zennit"), AlphaBeta(),
                                  AlphaBeta(bias="zennit"), ZBox(-1, 1), WSquare(bias="zennit"), Flat(), Epsilon(),
                                  Epsilon(bias="zennit"), ZPlus(bias="zennit")])
def test_z3_ops_agree_exactly_with_fractions(rule):
    rng = np.random.default_rng(3)
    for _ in range(3):
        a = to_fraction_array([F(int(k), 4) for k in rng.integers(-4, 5, 3)])
        W = to_fraction_array([[F(int(k), 3) for k in row] for row in rng.integers(-3, 4, (2, 3))])
        b = to_fraction_array([F(int(k), 2) for k in rng.integers(-2, 3, 2)])
        R = to_fraction_array([F(1), F(-2, 3)])
        exact = rule.redistribute(EXACT, a, W, b, R)
        terms = rule.redistribute(Z3, Z3.lift(a), Z3.lift(W), Z3.lift(b), Z3.lift(R))
        assert list(from_z3(terms)) == list(exact)


def test_z3_constants_are_exact_floats_not_decimal_text():
    assert from_z3(Z3.const(0.1)) == F(0.1) != F(1, 10)
    x = z3.Real("x")
    s = z3.Solver()
    s.add(Z3.positive_mask(np.array([x], dtype=object))[0] == 1, x < 0)  # If(x > 0, 1, 0) = 1 forces x > 0
    assert s.check() == z3.unsat


# ---------------------------------------------------------------------------------------------------- properties
def test_hand_derived_epsilon_and_lrp0_zennit_cases():
    # 1-1-1 net, x = 1: z1 = 1 - 1/2 = 1/2, f = 1/2 (W2 = 1, b2 = 0).
    net = Network([[[1]], [[1]]], [[F(-1, 2)], [0]])
    # LRP0 with the bias in the normaliser (zennit) at layer 1: R^0 = x w / z1 * R^1 = 1 * 1 / (1/2) * 1/2 = 1,
    # so it absorbs -1/2 (sum R^0 = 1 > sum R^1 = 1/2) and equals grad x input = 1 * 1.
    out = evaluate_property("conservation", LRP0(bias="zennit"), net, [1])
    assert not out.holds and out.values["absorbed"] == F(-1, 2)
    assert evaluate_property("equals-gradient-x-input", LRP0(bias="zennit"), net, [1]).holds
    # DTD LRP0 normalises by x w = 1: R^0 = 1/2, conserves, and differs from grad x input = 1.
    assert evaluate_property("conservation", LRP0(), net, [1]).holds
    bad = evaluate_property("equals-gradient-x-input", LRP0(), net, [1])
    assert not bad.holds and bad.values["R_input"] == ["1/2"] and bad.values["gradient_x_input"] == ["1"]
    # z+ root of layer 1: t = z / (x w+) = 1/2, root = 1 - 1/2 = 1/2 >= 0, on the hyperplane z1(1/2) = 0
    assert evaluate_property("root-in-domain", ZPlus(), net, [1]).holds
    # with b1 = +1/2 the z+ root is 1 - 3/2 = -1/2: outside a >= 0
    net2 = Network([[[1]], [[1]]], [[F(1, 2)], [0]])
    out = evaluate_property("root-in-domain", ZPlus(), net2, [1])
    assert not out.holds and out.values["root"] == ["-1/2"]


def test_germs_decide_one_sided_limits_exactly():
    from dtd_formal.testing.germ import Germ

    s = Germ.affine(0, 1)
    assert ((s * s + s) / s).limit() == 1  # (s^2 + s) / s -> 1
    assert ((1 + s) / s).limit() is None  # diverges
    assert (s - s).exactly_zero() and (Germ.affine(F(1, 3), -1) > F(1, 3)) is False
    assert ((s * 0) / (s + 1)).limit() == 0 and (F(2) / (s + 1)).limit() == 2


def test_continuity_hand_derived_epsilon_jump():
    # W1 = [1, -1], b1 = 1, W2 = 1, x = (1, 1): sum a w = 0 but z1 = 1 (active through its bias). Epsilon's
    # normaliser is 0 + eps at x (sign(0) = +1) and -s - eps along -e_1: R^0_0 jumps from 1/eps to -1/eps.
    net = Network([[[1, -1]], [[1]]], [[1], [0]])
    out = evaluate_property("continuity", Epsilon(1e-6), net, [1, 1])
    assert not out.holds and out.values["direction"] == [-1, 0]
    eps = F(1e-6)
    r1 = 1 / (1 + eps)  # layer 2 (Epsilon too): R^1 = a1 w2 / (a1 w2 + eps) * f = 1 / (1 + eps)
    assert out.values["value_at_x"] == r1 / eps and out.values["limit"] == str(-r1 / eps)
    # z+ with a positive bias: W1 = [1, 0], b1 = 1, x = (0, 1): x w+ = 0 drops the neuron's relevance 1 at x, while
    # along +e_1 the neuron's share is s / s * 1 = 1 for every s > 0
    out = evaluate_property("continuity", ZPlus(), Network([[[1, 0]], [[1]]], [[1], [0]]), [0, 1])
    assert not out.holds and out.values["value_at_x"] == 0 and out.values["limit"] == "1"
    assert evaluate_property("continuity", LRP0(), Network([[[1, 1]], [[1]]], [[0], [0]]), [1, 2]).holds


# ------------------------------------------------------------------------------ verdicts of docs/theory.md's claims
def test_zplus_verdicts():
    rep = statuses(check_rule(ZPlus(), max_examples=N, bias="nonpositive"))
    for name in ("conservation", "positivity", "root-on-hyperplane", "root-in-domain", "backend-agreement"):
        assert rep[name] in ("proved", "passed"), (name, rep[name])
    assert rep["root-in-linear-region:upper"] == "refuted"  # C5
    assert rep["equals-gradient-x-input"] == "refuted"
    assert rep["continuity"] == "passed"  # b <= 0: a neuron's relevance vanishes with its positive inputs
    any_bias = statuses(check_rule(ZPlus(), ["root-in-domain"], max_examples=N, bias="any"))
    assert any_bias["root-in-domain"] == "refuted"  # needs sum a w^- + b <= 0 (continuity with b > 0: see above)


def test_epsilon_does_not_conserve_and_lrp0_equals_gradient_x_input():
    assert statuses(check_rule(Epsilon(1e-6), ["conservation"], max_examples=N))["conservation"] == "refuted"
    rep = statuses(check_rule(LRP0(), ["conservation", "equals-gradient-x-input", "positivity",
                                       "root-in-linear-region:upper"], max_examples=N, bias="zero"))
    assert rep["conservation"] in ("proved", "passed")
    assert rep["equals-gradient-x-input"] in ("proved", "passed")
    assert rep["root-in-linear-region:upper"] == "passed"  # root 0 lies on every hyperplane of a bias-free net
    assert rep["positivity"] == "refuted"
    z = statuses(check_rule(LRP0(bias="zennit"), ["equals-gradient-x-input", "conservation"], max_examples=N))
    assert z["equals-gradient-x-input"] in ("proved", "passed") and z["conservation"] == "refuted"


def test_other_catalogue_rules():
    ab = statuses(check_rule(AlphaBeta(2, 1), ["positivity", "backend-agreement", "root-in-domain"], max_examples=N))
    assert ab == {"positivity": "refuted", "backend-agreement": "passed", "root-in-domain": "not applicable"}
    fl = statuses(check_rule(Flat(), ["conservation", "positivity"], max_examples=N))
    assert set(fl.values()) <= {"proved", "passed"}
    ws = check_rule(WSquare(), ["conservation", "positivity", "root-in-domain"], max_examples=60)
    assert ws["positivity"].status in ("proved", "passed") and ws["root-in-domain"].status in ("proved", "passed")
    # w^2 loses the relevance of an active neuron whose weights are all 0 (sum w^2 = 0): found and shown
    assert ws["conservation"].status == "refuted"
    assert ws["conservation"].counterexample.values["dropped_neurons"]
    zb = statuses(check_rule(ZBox(-1, 1), ["positivity", "root-in-domain", "conservation"], max_examples=N,
                             bias="nonpositive"))
    assert set(zb.values()) <= {"proved", "passed"}
    g = statuses(check_rule(Gamma(0.25), ["conservation", "positivity"], max_examples=N, bias="nonpositive"))
    assert g["conservation"] in ("proved", "passed") and g["positivity"] == "refuted"


def test_layer_scope_region_and_box_domain():
    # z+ root of neuron 0 (w = (1, 0), b = -1/2, x = (1, 1)): t = (1/2) / 1, root = (1/2, 1); neuron 1
    # (w = (1, -1/2), b = -1/4) has z = 1/4 at x and 1/2 - 1/2 - 1/4 = -1/4 at the root: a flip in layer 1.
    net = Network([[[1, 0], [1, F(-1, 2)]], [[1, 1]]], [[F(-1, 2), F(-1, 4)], [0]])
    out = evaluate_property("root-in-linear-region:layer", ZPlus(), net, [1, 1])
    assert not out.holds and out.values["neuron"] == 0 and (1, 1) in out.values["flipped"]
    assert out.values["root"] == ["1/2", "1"]
    lrp0 = statuses(check_rule(LRP0(), ["root-in-linear-region:layer"], max_examples=N, bias="zero"))
    assert lrp0["root-in-linear-region:layer"] == "passed"
    box = check_rule(ZPlus(), ["root-in-domain"], max_examples=N, bias="nonpositive", domain=Box(0, 1))
    assert box["root-in-domain"].status in ("proved", "passed") and "0 <= a <= 1" in box["root-in-domain"].solver


# ---------------------------------------------------------------------------------------------------- wording
def test_examples_only_results_are_held_on_n_examples_never_proved():
    rep = check_rule(LRP0(), ["positivity", "continuity"], max_examples=20, solver=False)
    for p in rep.properties:
        assert p.status == "passed" and not p.proof  # the machine-readable status is unchanged
        assert p.summary == p.label == f"held on {p.examples} examples" and p.examples == 20
        assert p.to_json()["summary"] == p.summary and p.to_json()["proof"] is False
    table = rep.table()
    rows = [line for line in table.splitlines() if line.startswith(("positivity ", "continuity "))]
    assert len(rows) == 2 and all("  held on 20 examples  " in r for r in rows)
    assert "proved" not in table and "proved" not in json.dumps(rep.to_json())
    assert rep.summary == "PASSED: held on 20 examples (no counterexample; not a proof): positivity, continuity"
    assert rep.to_json()["summary"] == rep.summary and table.splitlines()[-1] == rep.summary


def test_z3_proofs_keep_proved_and_unknowns_say_what_held():
    rep = check_rule(ZPlus(), ["positivity"], max_examples=10, bias="nonpositive")
    p = rep["positivity"]
    assert p.status == p.label == "proved" and p.proof
    assert p.summary == f"{p.solver}; held on 10 examples" and p.solver.startswith("z3 proved it on nets")
    assert rep.summary == "PASSED: proved by z3 (every input, on the solver nets): positivity"
    one = check_rule(LRP0(), ["positivity"], max_examples=1, solver=False)["positivity"]
    assert one.summary == "held on 1 example"


def test_unknown_reason_says_held_on_n_examples(monkeypatch):
    monkeypatch.setattr(z3.Solver, "check", lambda self, *a: z3.unknown)
    p = check_rule(ZPlus(), ["positivity"], max_examples=8, bias="nonpositive")["positivity"]
    assert p.status == "unknown" and p.reason.startswith("held on 8 examples; solver unknown on ")
    assert p.summary == f"unknown: {p.reason}" and not p.proof


# ---------------------------------------------------------------------------------------------------- mutants
def test_every_mutant_is_caught_with_a_replaying_counterexample():
    for correct, kwargs in {type(c): (c, k) for _, c, k in MUTANTS}.values():
        assert check_rule(correct, PROPERTIES, max_examples=10, **kwargs).passed, correct  # the unmutated rule
    caught = []
    for mutant, _, kwargs in MUTANTS:
        rep = check_rule(mutant, PROPERTIES, max_examples=100, fail_fast=True, **kwargs)
        if isinstance(mutant, ZPlusFloatLiteral):
            # a float literal is a bug in the rule's code, not a mathematical counterexample: "error", named
            assert rep.errors and not rep.refuted and "inexact value" in rep.errors[0].reason, rep.table()
            caught.append(type(mutant).__name__)
        elif rep.refuted:
            assert rep.counterexample is not None and rep.counterexample.reproduces(), type(mutant).__name__
            caught.append(type(mutant).__name__)
    rate = len(caught) / len(MUTANTS)
    assert len(MUTANTS) >= 6 and rate == 1.0, f"catch rate {rate:.0%}: caught {caught}"


# ---------------------------------------------------------------------------------------------------- counterexamples
def test_counterexample_is_shrunk_replays_exports_and_roundtrips(tmp_path):
    from mutants import ZPlusNoNormalisation

    rep = check_rule(ZPlusNoNormalisation(), ["conservation"], max_examples=N, bias="nonpositive")
    cex = rep.counterexample
    assert rep["conservation"].status == "refuted" and cex is rep["conservation"].counterexample
    assert cex.network.n_layers <= 2 and max(cex.network.layer_sizes) <= 2  # shrunk
    out = cex.replay()
    assert not out.holds and out.values == cex.values
    # independent replay through dtd.lrp: the totals differ
    rel = lrp(cex.network, cex.input, ZPlusNoNormalisation())
    assert any(c.absorbed != 0 for c in rel.conservation)
    # JSON round trip: a user rule is never imported from the file; it is passed explicitly
    path = tmp_path / "cex.json"
    cex.save(path)
    with pytest.raises(InputError, match="never import code"):
        Counterexample.from_json(json.loads(path.read_text()))
    back = Counterexample.from_json(json.loads(path.read_text()), rule=ZPlusNoNormalisation())
    assert back.network == cex.network and list(back.input) == list(cex.input) and back.reproduces()
    with pytest.raises(InputError, match="the rule given is"):  # a different rule than the one the file names
        Counterexample.from_json(json.loads(path.read_text()), rule=ZPlus())
    # the exported regression test runs standalone and fails while the bug is present
    text = cex.to_pytest()
    ns: dict = {}
    exec(compile(text, "exported_test.py", "exec"), ns)
    test_fn = next(v for k, v in ns.items() if k.startswith("test_"))
    with pytest.raises(AssertionError, match="sum R"):
        test_fn()
    # ... and passes for the fixed rule on the same case
    fixed = text.replace("ZPlusNoNormalisation()", "ZPlus()").replace(
        "from mutants import ZPlusNoNormalisation", "from dtd_formal.rules import ZPlus")
    ns2: dict = {}
    exec(compile(fixed, "fixed_test.py", "exec"), ns2)
    next(v for k, v in ns2.items() if k.startswith("test_"))()


def test_solver_timeout_is_unknown_never_a_pass(monkeypatch):
    monkeypatch.setattr(z3.Solver, "check", lambda self, *a: z3.unknown)
    monkeypatch.setattr(z3.Solver, "reason_unknown", lambda self: "timeout")
    rep = check_rule(ZPlus(), ["positivity"], max_examples=5, bias="nonpositive")
    assert rep["positivity"].status == "unknown" and not rep.passed and "timeout" in rep["positivity"].reason


def test_solver_refutation_is_replayed_exactly():
    net = Network([[[1]], [[1]]], [[F(1, 2)], [0]])  # z+ root -1/2 for x = 1 (see the hand-derived test)
    v = solver_mod.decide("root-in-domain", ZPlus(), net)
    assert v.status == "refuted"
    assert not evaluate_property("root-in-domain", ZPlus(), net, v.counterexample["input"]).holds
    assert solver_mod.decide("root-in-domain", ZPlus(), Network([[[1]], [[1]]], [[F(-1, 2)], [0]])).status == "proved"


# ---------------------------------------------------------------------------------------------------- plugin
def test_pytest_plugin_fixture_fails_with_counterexample(tmp_path):
    (tmp_path / "test_user_rule.py").write_text(textwrap.dedent("""
        from dtd_formal.rules import ZPlus

        class Broken(ZPlus):
            def normaliser(self, ops, a, W, b):
                return ops.sum(self.contributions(ops, a, W, b), axis=1) + b

        def test_good(check_rule):
            check_rule(ZPlus(), ["conservation", "positivity"], max_examples=10, bias="nonpositive")

        def test_broken(check_rule):
            check_rule(Broken(), ["conservation"], max_examples=10, bias="nonpositive")
    """))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "1 failed, 1 passed" in res.stdout, res.stdout + res.stderr
    assert "violates conservation" in res.stdout and "input x =" in res.stdout


def test_network_scope_is_the_closed_activation_region_of_layers_l_to_L():
    """Hand case: 1-1-1-1 net, x = 1: the z+ root of layer-1 neuron 0 is 0, which turns layer-2 neuron 0
    (z = 2 a - 1) from active (+1) to inactive (-1); the output weight is 0, so the affine map of f_0 does not
    change. So "network" (pattern of layers 1..3) is refuted while "upper" (affine map of f_0) holds."""
    from dtd_formal.regions import classify_root_reference

    net = Network([[[1]], [[2]], [[0]]], [[0], [-1], [1]])
    x = to_fraction_array([1])
    network_scope = evaluate_property("root-in-linear-region:network", ZPlus(), net, x, 0)
    upper_scope = evaluate_property("root-in-linear-region:upper", ZPlus(), net, x, 0)
    assert not network_scope.holds and upper_scope.holds
    assert classify_root_reference(net, x, 1, 0, [F(0)], 0, "upper") == (True, False)

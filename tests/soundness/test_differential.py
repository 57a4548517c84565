"""Differential soundness suite: every engine, on rules that override each Rule method, answers right or Unknown.

Ground truth is exact and independent of the engines: on small nets (1-2 inputs) a dense exact grid of the box is
evaluated with the rule's own definition (its roots from ``dtd.roots``) and the slow textbook region twin
(``classify_root_reference``, which enumerates closed regions and tests A x <= b in Fractions), or the catalogue
property in Fractions. A Proved is wrong when a grid point violates the statement; a Refuted is wrong when its
counterexample does not re-derive independently (input in the box, the rule's root, the twin's verdict). Every
answer is checked; an Unknown is always acceptable.
"""

from __future__ import annotations

import itertools
from fractions import Fraction as F

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.properties import evaluate_property, get_property
from dtd_formal.regions import classify_root_reference
from dtd_formal.rules import LRP0, ZPlus
from dtd_formal.smt.root_exit import DEFAULT_ENGINES

from mutants import SOUNDNESS_MUTANTS

MUTANTS = [(method, m) for method, ms in SOUNDNESS_MUTANTS.items() for m in ms]
ENGINE_SETS = [(e,) for e in DEFAULT_ENGINES] + [DEFAULT_ENGINES]


def issue_net() -> dtd.Network:
    """The net of the soundness issue: W1 = [[1], [-1]], b1 = [-1/2, 1], W2 = [[1, 1]], b2 = [0]."""
    return dtd.Network([[[1], [-1]], [[1, 1]]], [[F(-1, 2), 1], [0]])


def small_net(seed: int, n_in: int) -> dtd.Network:
    """n_in-2-2-1 with weights k/4 and biases k/8 (seeded), small enough for exact region enumeration."""
    rng = np.random.default_rng(seed)
    sizes = [n_in, 2, 2, 1]
    Ws = [[[F(int(v), 4) for v in row] for row in rng.integers(-4, 5, (o, i))] for i, o in zip(sizes, sizes[1:])]
    bs = [[F(int(v), 8) for v in rng.integers(-5, 3, o)] for o in sizes[1:]]
    return dtd.Network(Ws, bs)


NETS = {"issue": issue_net, "r1": lambda: small_net(11, 1), "r2": lambda: small_net(5, 2)}


def grid(n: int, k: int) -> list[np.ndarray]:
    """Exact points i/k of [0, 1]^n."""
    return [np.array([F(i, k) for i in idx], dtype=object) for idx in itertools.product(range(k + 1), repeat=n)]


def exits_at(net: dtd.Network, rule: object, x: np.ndarray, layer: int, neuron: int, scope: str, variant: str,
             definition: str) -> bool:
    """Ground truth at one exact input: does the rule's root of (layer, neuron) leave (textbook twin)?"""
    try:
        r = dtd.roots(net, x, rule, layer=layer, definition=definition)
    except dtd.InputError:
        return False
    if neuron not in r.points:
        return False
    leaves, leaves_map = classify_root_reference(net, x, layer, neuron, r.points[neuron], 0, scope)
    return leaves if variant == "pattern" else leaves_map


def assert_root_exit_sound(v: object, net: dtd.Network, rule: object, layer: int, neuron: int, scope: str,
                           variant: str, definition: str, points: list[np.ndarray]) -> None:
    if v.status == "proved":
        bad = [x for x in points if exits_at(net, rule, x, layer, neuron, scope, variant, definition)]
        assert not bad, f"wrong Proved: the root exits at x = {[str(u) for u in bad[0]]} ({v.method})"
    elif v.status == "refuted":
        c = v.counterexample
        assert all(0 <= u <= 1 for u in c.input), "counterexample outside the box"
        assert exits_at(net, rule, c.input, layer, neuron, scope, variant, definition), "wrong Refuted"
        assert c.check(net, rule) == []


@pytest.mark.parametrize("method,rule", MUTANTS, ids=[f"{m}-{type(r).__name__}" for m, r in MUTANTS])
def test_root_exit_engines_are_right_or_unknown_on_mutants(method: str, rule: object) -> None:
    if not rule.has_root:
        pytest.skip("not a root rule")
    for name, make in NETS.items():
        net = make()
        points = grid(net.input_size, 48 if net.input_size == 1 else 12)
        for engines in ENGINE_SETS:
            v = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=(0, 1), timeout=1.5, engines=engines)
            assert_root_exit_sound(v, net, rule, 1, 0, "upper", "pattern", "true", points)


@pytest.mark.parametrize("variant,scope,definition", [("affine_map", "upper", "true"), ("pattern", "layer", "true"),
                                                      ("pattern", "upper", "paper-code")])
@pytest.mark.parametrize("rule", [ZPlus(), SOUNDNESS_MUTANTS["root_step"][0], SOUNDNESS_MUTANTS["redistribute"][0],
                                  SOUNDNESS_MUTANTS["direction"][2]], ids=lambda r: type(r).__name__)
def test_root_exit_variants_scopes_and_definitions(variant: str, scope: str, definition: str, rule: object) -> None:
    for name in ("issue", "r2"):
        net = NETS[name]()
        points = grid(net.input_size, 48 if net.input_size == 1 else 12)
        for engines in (("falsify",), ("z3",), DEFAULT_ENGINES):
            v = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=(0, 1), timeout=1.5, engines=engines,
                                   variant=variant, scope=scope, definition=definition)
            assert_root_exit_sound(v, net, rule, 1, 0, scope, variant, definition, points)


def test_the_issue_example_is_refuted_not_proved() -> None:
    """Finding 1 of the soundness issue: ZPlusWrongRootSign on the issue's net. root_regions reports the root at
    x = 9/10 leaving the pattern; every engine (and the default pipeline) must refute or say Unknown."""
    net, rule = issue_net(), SOUNDNESS_MUTANTS["root_step"][0]
    assert dtd.root_regions(net, [F(9, 10)], rule, scope="upper", layers=1).summary[1]["leaves_pattern"] == 1
    for engines in ENGINE_SETS:
        v = dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=(0, 1), timeout=3, engines=engines)
        assert v.status != "proved", engines
    assert dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=(0, 1), timeout=5).status == "refuted"
    assert dtd.find_root_exit(net, rule, layer=1, neuron=0, domain=(0, 1), timeout=5, engines=("z3",)).status == "refuted"


def test_a_rule_that_lies_to_z3_gets_no_z3_verdict() -> None:
    """ZPlusLiesToZ3 is stock z+ on Z3 terms and half-step z+ in exact arithmetic: Z3's unsat about the stock rule
    must not become a Proved about the exact one (the guard compares root_step on both backends first)."""
    rule = SOUNDNESS_MUTANTS["root_step"][2]
    safe = dtd.Network([[[1], [1]], [[1, 1]]], [[F(-1, 4), F(1, 2)], [0]])  # no z+ exit by hand; half steps differ
    v = dtd.find_root_exit(safe, rule, layer=1, neuron=0, domain=(0, 1), timeout=3, engines=("z3",))
    assert v.status == "unknown" and "differs from exact arithmetic" in v.reason


PROPERTY_NAMES = ["conservation", "positivity", "root-on-hyperplane", "root-in-domain", "equals-gradient-x-input"]


@pytest.mark.parametrize("method,rule", MUTANTS, ids=[f"{m}-{type(r).__name__}" for m, r in MUTANTS])
def test_find_violation_is_right_or_unknown_on_mutants(method: str, rule: object) -> None:
    for name in ("issue", "r2"):
        net = NETS[name]()
        points = grid(net.input_size, 32 if net.input_size == 1 else 8)
        for prop in PROPERTY_NAMES:
            p = get_property(prop)
            if p.applies(rule):
                continue
            v = dtd.find_violation(net, rule, prop, domain=(0, 1), timeout=2)
            if v.status == "proved":
                bad = [x for x in points if not evaluate_property(prop, rule, net, x).holds]
                assert not bad, f"wrong Proved of {prop}: fails at x = {[str(u) for u in bad[0]]}"
            elif v.status == "refuted":
                c = v.counterexample
                assert all(0 <= u <= 1 for u in c.input)
                out = evaluate_property(prop, rule, net, c.input)
                assert not out.holds and not out.error and c.check(net, rule) == []


def test_find_violation_z3_guard_on_a_rule_that_lies_to_z3() -> None:
    """A z+ body that differs on Z3 terms: root-in-domain's Z3 answer must not be trusted."""
    rule = SOUNDNESS_MUTANTS["root_step"][2]
    net = dtd.Network([[[1]], [[1]]], [[F(-1, 2)], [0]])  # stock z+ roots stay >= 0; half steps too: both hold
    v = dtd.find_violation(net, rule, "root-on-hyperplane", domain=(0, 1), timeout=5)
    # exact half steps are off the hyperplane: sampling refutes; Z3 (stock) would have said unsat
    assert v.status == "refuted" and v.counterexample.check(net, rule) == []


def test_catalogue_rules_keep_their_proofs() -> None:
    """The guards do not cost the stock rules their proofs (relaxation and Z3 still prove the safe cases)."""
    safe = dtd.Network([[[1], [1]], [[1, 1]]], [[F(-1, 4), F(1, 2)], [0]])
    for engines in (("relax",), ("z3",), DEFAULT_ENGINES):
        assert dtd.find_root_exit(safe, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=5,
                                  engines=engines).status == "proved", engines
    assert dtd.find_violation(NETS["r2"](), LRP0(bias="zennit"), "equals-gradient-x-input", domain=(0, 1),
                              timeout=10).status == "proved"

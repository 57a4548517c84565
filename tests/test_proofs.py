"""Tests of the claim proofs, the runner, the `prove` / `replay` commands, and that the prover can fail."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.cli import main
from dtd_formal.network import Network
from dtd_formal.regions import classify_root_reference
from dtd_formal.rules import LRP0, Epsilon, ZPlus
from dtd_formal.rules.ops import EXACT
from dtd_formal.symbolic.certificate import write_certificate
from dtd_formal.symbolic.dtd_claims import check_lrp0_lemma
from dtd_formal.symbolic.registry import CLAIMS, prove, replay_certificate, run_claim
from dtd_formal.symbolic.rule_claims import (
    check_conservation,
    check_roots_on_hyperplane,
    check_zplus_alpha1_beta0,
    symbolic_rules,
)
from dtd_formal.symbolic.certificate import Evidence
from dtd_formal.symbolic.taylor_claims import crossing_witness
from dtd_formal.symbolic.witnesses import fracs, verify_root_exit
from dtd_formal.verdict import Proved, Refuted

EXPECTED = {
    "rule_roots_on_hyperplane", "rule_conservation", "zplus_is_alpha1_beta0", "gamma_limits",
    "taylor_exact_in_region", "taylor_crossing_remainder", "upper_network_bounds_valid_roots",
    "train_free_roots_unconstrained", "constant_roots_gradient_x_input", "lrp0_equals_gradient_x_input",
    "input_dependent_roots_any_explanation", "softplus_has_no_root",
}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every claim run once in fast mode, certificates written."""
    out = tmp_path_factory.mktemp("certs")
    return {name: run_claim(name, out=out, fast=True) for name in CLAIMS}


def test_registry_has_the_stable_names() -> None:
    assert set(CLAIMS) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_claim_is_proved_with_exact_evidence(certificates: dict[str, Any], name: str) -> None:
    r = certificates[name]
    assert r.status == "proved", getattr(r.verdict, "reason", r.verdict)
    data = json.loads(Path(r.certificate).read_text())
    cert = data["certificate"]
    assert cert["identities"] or cert["witnesses"]
    assert all(rec["holds"] and rec["simplified"] == "0" for rec in cert["identities"])
    assert "Float(" not in json.dumps(cert)
    assert data["environment"]["sympy"] and data["environment"]["dtd_formal"]
    assert replay_certificate(r.certificate).ok


# ------------------------------------------------------------------------------------------------ the prover can fail
class MisNormalisedZPlus(ZPlus):
    """Wrong on purpose: z+ contributions normalised by sum a w (LRP-0's) instead of sum a w+."""

    def normaliser(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.sum(W * a, axis=1)


class NoMaskZPlus(ZPlus):
    """Wrong on purpose: the direction forgets the mask [w > 0] (this is LRP-0, not z+)."""

    def direction(self, ops: Any, a: Any, W: Any, b: Any) -> Any:
        return ops.ones_like(W) * a


class WrongStepZPlus(ZPlus):
    """Wrong on purpose: t = z / sum(v) (the weight is missing from the denominator)."""

    def root_step(self, ops: Any, a: Any, W: Any, b: Any, R: Any = None, definition: str = "true") -> Any:
        V = self.direction(ops, a, W, b)
        den = ops.sum(V, axis=1)
        return ops.safe_divide(ops.matmul(W, a) + b, den), V, den


def _exact_neuron(values: dict[str, str], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.array([Fraction(values.get(f"a{i}", "0")) for i in range(n)], dtype=object)
    W = np.array([[Fraction(values.get(f"w{i}", "0")) for i in range(n)]], dtype=object)
    b = np.array([Fraction(values.get("b", "0"))], dtype=object)
    return a, W, b


def test_misnormalised_rule_is_refuted_with_an_exact_counterexample() -> None:
    v = check_conservation([MisNormalisedZPlus()], n_in=3)
    assert isinstance(v, Refuted)
    vals = v.counterexample["values"]
    a, W, b = _exact_neuron(vals, 3)
    R = Fraction(vals["R"])
    # replay independently with the exact backend: relevance is not conserved at these values
    R_in = MisNormalisedZPlus().redistribute(EXACT, a, W, b, np.array([R], dtype=object))
    assert sum(R_in) != R
    assert sum(R_in) - R == Fraction(vals["residual"])


def test_wrong_root_step_is_refuted() -> None:
    v = check_roots_on_hyperplane([WrongStepZPlus()], n_in=3)
    assert isinstance(v, Refuted)
    a, W, b = _exact_neuron(v.counterexample["values"], 3)
    t, V, den = WrongStepZPlus().root_step(EXACT, a, W, b)
    root = a - t[0] * V[0]
    assert W[0].dot(root) + b[0] != 0


def test_missing_mask_is_not_zplus() -> None:
    assert not check_zplus_alpha1_beta0(n_in=2, zplus=NoMaskZPlus())
    assert check_zplus_alpha1_beta0(n_in=2)


def test_dtd_bias_lrp0_is_not_gradient_x_input_lemma() -> None:
    ev = Evidence()
    check_lrp0_lemma(LRP0(), 2, 2, ev)  # bias="dtd": normaliser without the bias
    assert ev.failed()
    ev = Evidence()
    check_lrp0_lemma(Epsilon(epsilon=0, bias="zennit"), 2, 2, ev)
    assert not ev.failed()


def test_correct_rules_pass_the_generic_checkers() -> None:
    assert isinstance(check_conservation(symbolic_rules(2), n_in=2), Proved)
    assert isinstance(check_roots_on_hyperplane(symbolic_rules(2), n_in=2), Proved)


# ------------------------------------------------------------------------------------------------ witnesses
def test_root_exit_witness_agrees_with_the_textbook_twin(certificates: dict[str, Any]) -> None:
    for name in ("train_free_roots_unconstrained", "upper_network_bounds_valid_roots"):
        w = certificates[name].verdict.certificate["witnesses"][-1]
        net = Network.from_json(w["network"])
        root = fracs(w["root"])
        leaves_pattern, leaves_map = classify_root_reference(net, fracs(w["input"]), w["layer"], w["neuron"], root)
        assert leaves_pattern and leaves_map
        assert all(v >= 0 for v in root)
        if name == "upper_network_bounds_valid_roots":
            assert w["layer_pattern_kept"]
            lp, _ = classify_root_reference(net, fracs(w["input"]), w["layer"], w["neuron"], root, scope="layer")
            assert not lp  # layer-only check says "stays": only the upper network reveals the exit


def test_crossing_witness_hand_derived() -> None:
    # f(x) = relu(x): from x~ = -1 (f = 0, gradient 0) to x = 1: remainder f(1) - 0 - 0 = 1
    net = Network([[[1]], [[1]]], [[0], [0]])
    w = crossing_witness(net, [1], [-1])
    assert w is not None and w["remainder"] == "1"
    assert crossing_witness(net, [2], [1]) is None  # same region: no crossing


def test_verify_root_exit_rejects_a_root_that_stays() -> None:
    # single hidden layer, linear output: nothing above layer 1 can flip
    net = Network([[[1, 1], [1, -1]], [[1, 1]]], [[0, 0], [0]])
    assert verify_root_exit(net, [1, 2], 1, 0) is None


# ------------------------------------------------------------------------------------------------ API and CLI
def test_dtd_prove_api() -> None:
    assert dtd.prove("softplus_has_no_root").status == "proved"
    with pytest.raises(dtd.InputError, match="known claims"):
        prove("no_such_claim")


def test_cli_prove_json_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["prove", "gamma_limits", "taylor_crossing_remainder", "--fast", "--json", "--out", str(tmp_path)])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["claim"] for r in rows] == ["gamma_limits", "taylor_crossing_remainder"]
    assert set(rows[0]) == {"claim", "statement", "status", "method", "seconds", "certificate"}
    assert all(r["status"] == "proved" for r in rows)
    cert = Path(rows[0]["certificate"])
    assert main(["replay", str(cert)]) == 0
    assert "checks" in capsys.readouterr().out
    # tamper: a residual that is not 0
    data = json.loads(cert.read_text())
    data["certificate"]["identities"][-1]["srepr"] = "Add(Symbol('R', real=True), Integer(1))"
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(data))
    assert main(["replay", str(bad)]) == 1
    # tamper a witness: the stored remainder no longer matches
    wit = json.loads(Path(rows[1]["certificate"]).read_text())
    wit["certificate"]["witnesses"][0]["remainder"] = "12345"
    bad2 = tmp_path / "tampered2.json"
    bad2.write_text(json.dumps(wit))
    assert main(["replay", str(bad2)]) == 1


def test_cli_prove_table_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "softplus_has_no_root", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "softplus_has_no_root" in out and "proved" in out and "method:" in out
    assert main(["prove", "not_a_claim"]) == 2
    assert "rule_conservation" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("{not json")
    assert main(["replay", str(tmp_path / "junk.json")]) == 2
    assert main(["replay", str(tmp_path / "missing.json")]) == 2
    data = json.loads((tmp_path / "softplus_has_no_root.json").read_text())
    data["certificate"]["identities"][0]["srepr"] = "Float('0.5', precision=53)"
    (tmp_path / "float.json").write_text(json.dumps(data))
    assert main(["replay", str(tmp_path / "float.json")]) == 2


def test_refuted_certificate_replays_only_as_its_claim_re_derives(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from dtd_formal.symbolic import registry

    v = check_conservation([MisNormalisedZPlus()], n_in=2)
    assert isinstance(v, Refuted)
    path = write_certificate(tmp_path / "refuted.json", "rule_conservation", v.to_json(), 0.0)
    # the registered claim is proved: a refutation filed under its name does not re-derive
    rep = replay_certificate(path)
    assert not rep.ok and "status" in rep.failures[0]
    # with the failing claim registered, the refutation re-derives, and its residual is non-zero at its values
    bad = registry.Claim("rule_conservation", "wrong on purpose",
                         lambda fast: check_conservation([MisNormalisedZPlus()], n_in=2))
    monkeypatch.setitem(registry.CLAIMS, "rule_conservation", bad)
    rep = replay_certificate(path)
    assert rep.status == "refuted" and rep.ok, rep.failures


def test_failed_claim_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dtd_formal.symbolic import registry

    bad = registry.Claim("rule_conservation", "wrong on purpose",
                         lambda fast: check_conservation([MisNormalisedZPlus()], n_in=2))
    monkeypatch.setitem(registry.CLAIMS, "rule_conservation", bad)
    assert main(["prove", "rule_conservation", "--out", str(tmp_path)]) == 1
    data = json.loads((tmp_path / "rule_conservation.json").read_text())
    assert data["status"] == "refuted" and data["counterexample"]["values"]


def test_replay_re_derives_and_catches_a_certificate_with_checks_left_out(tmp_path: Path) -> None:
    r = run_claim("zplus_is_alpha1_beta0", out=tmp_path, fast=True)
    assert main(["replay", r.certificate]) == 0
    data = json.loads(Path(r.certificate).read_text())
    data["certificate"]["identities"] = data["certificate"]["identities"][:1]
    thin = tmp_path / "thin.json"
    thin.write_text(json.dumps(data))
    assert main(["replay", str(thin)]) == 1  # what is stored still simplifies, but it is not what the proof shows
    # a residual replaced by the literal 0 is not trusted: the re-derived residual differs
    g = run_claim("rule_roots_on_hyperplane", out=tmp_path, fast=True)
    data = json.loads(Path(g.certificate).read_text())
    k = next(i for i, rec in enumerate(data["certificate"]["identities"]) if rec["srepr"] != "Integer(0)")
    data["certificate"]["identities"][k]["srepr"] = "Integer(0)"
    (tmp_path / "zero.json").write_text(json.dumps(data))
    assert main(["replay", str(tmp_path / "zero.json")]) == 1
    # a certificate filed under another claim's name is re-derived as that claim, and rejected
    data = json.loads(Path(r.certificate).read_text())
    data["claim"] = "gamma_limits"
    (tmp_path / "renamed.json").write_text(json.dumps(data))
    assert main(["replay", str(tmp_path / "renamed.json")]) == 1
    # timings and versions are not re-derived
    data = json.loads(Path(r.certificate).read_text())
    data["seconds"], data["environment"]["sympy"] = 12345.0, "0.0"
    (tmp_path / "timing.json").write_text(json.dumps(data))
    assert main(["replay", str(tmp_path / "timing.json")]) == 0

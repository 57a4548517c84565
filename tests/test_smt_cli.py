"""``dtd-formal counterexample``: output, JSON, exit codes (0 definite, 3 unknowns left, 2 bad input)."""

from __future__ import annotations

import json
from fractions import Fraction as F

import dtd_formal as dtd
from dtd_formal.cli import main
from dtd_formal.verdict import Unknown


def _save(tmp_path) -> str:  # type: ignore[no-untyped-def]
    net = dtd.Network([[[1, 1], [1, 0]], [[1, 1]]], [[F(-1, 2), F(-1, 2)], [0]])
    path = tmp_path / "net.json"
    net.save(path)
    return str(path)


def test_cli_text_and_json(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    model = _save(tmp_path)
    tests = tmp_path / "regress.py"
    rc = main(["counterexample", model, "--rule", "zplus", "--layer", "1", "--domain", "0:1", "--timeout", "10",
               "--no-progress", "--save-tests", str(tests)])
    out = capsys.readouterr().out
    assert rc == 0 and "neuron   0: refuted" in out and "summary: 1 refuted" in out
    ns: dict = {}
    exec(compile(tests.read_text(), str(tests), "exec"), ns)
    ns["test_root_exit_layer1_neuron0"]()
    rc = main(["counterexample", model, "--layer", "1", "--neuron", "0", "--domain", "0:1/2", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0 and data["neurons"]["0"]["status"] == "proved" and data["counts"]["proved"] == 1


def test_cli_exit_codes(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    model = _save(tmp_path)
    assert main(["counterexample", model, "--domain", "1:0"]) == 2
    assert main(["counterexample", model, "--domain", "0:1", "--layer", "7"]) == 2
    assert main(["counterexample", model]) == 2  # no domain recorded in a JSON network
    import dtd_formal.smt.root_exit as re_mod

    monkeypatch.setattr(re_mod, "solve_problem", lambda P, *a, **k: Unknown(P.statement(), "forced for the test"))
    assert main(["counterexample", model, "--domain", "0:1", "--no-progress"]) == 3
    assert "unknown (forced for the test)" in capsys.readouterr().out


def test_replay_counterexample_files(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`dtd-formal replay FILE` on verdicts and counterexamples: 0 when every stored value re-derives exactly, 1 when
    one does not (named), 2 when the file is malformed or the network is missing."""
    import numpy as np

    from dtd_formal.rules import ZPlus
    from dtd_formal.testing.counterexample import Counterexample

    net = dtd.Network([[[1, 1], [1, 0]], [[1, 1]]], [[F(-1, 2), F(-1, 2)], [0]])
    v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10)
    assert v.status == "refuted"
    good = tmp_path / "root_exit.json"
    good.write_text(json.dumps(v.counterexample.to_json(net)))
    assert main(["replay", str(good)]) == 0
    assert "root-exit (refuted): checks" in capsys.readouterr().out
    data = v.counterexample.to_json(net)
    data["input"] = ["1/8", "1/8"]  # neuron 1 inactive there: no exit
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert main(["replay", str(bad)]) == 1
    assert "DOES NOT CHECK" in capsys.readouterr().out
    # the whole self-describing verdict, network embedded
    (tmp_path / "verdict.json").write_text(json.dumps(v.attach(v.question, net).to_json()))
    assert main(["replay", str(tmp_path / "verdict.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checks"] is True
    # without the network: a path named in a file is never opened; the user passes --model (digest checked)
    model = tmp_path / "net.json"
    net.save(model)
    (tmp_path / "no_net.json").write_text(json.dumps(v.counterexample.to_json()))
    assert main(["replay", str(tmp_path / "no_net.json")]) == 2
    assert main(["replay", str(tmp_path / "no_net.json"), "--model", str(model)]) == 0
    other = tmp_path / "other.json"
    dtd.Network([[[1, 1], [1, 0]], [[1, 2]]], [[F(-1, 2), F(-1, 2)], [0]]).save(other)
    assert main(["replay", str(tmp_path / "no_net.json"), "--model", str(other)]) == 1  # another network's digest
    capsys.readouterr()
    # the whole --json report of `dtd-formal counterexample` (network embedded once)
    assert main(["counterexample", str(model), "--domain", "0:1", "--timeout", "5", "--json"]) == 0
    (tmp_path / "report.json").write_text(capsys.readouterr().out)
    assert main(["replay", str(tmp_path / "report.json")]) == 0
    assert "2 of 2 per-neuron verdicts re-derived" in capsys.readouterr().out
    broken = v.counterexample.to_json(net)
    del broken["input"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert main(["replay", str(tmp_path / "broken.json")]) == 2
    # rule-property violations (find_violation) ...
    pos = dtd.Network([[[1, -1], [1, 1]], [[1, 1]]], [[F(1, 2), F(-1, 4)], [0]])
    w = dtd.find_violation(pos, ZPlus(), "conservation", domain=(0, 1), timeout=10)
    assert w.status == "refuted"
    (tmp_path / "violation.json").write_text(json.dumps(w.attach(w.question, pos).to_json()))
    assert main(["replay", str(tmp_path / "violation.json")]) == 0
    # ... and the testing package's format: z+ drops the relevance of neuron 0 at x = 0 (z = 1/2, x . w+ = 0)
    cex = Counterexample("conservation", ZPlus(), pos, np.array([F(0), F(0)], dtype=object), 0, dtd.rules.NonNegative())
    out = cex.replay()
    assert not out.holds
    cex.values, cex.message = out.values, out.message
    cex.save(tmp_path / "testing.json")
    assert main(["replay", str(tmp_path / "testing.json")]) == 0
    cex.input = np.array([F(1), F(1)], dtype=object)  # x . w+ = 2 > 0: conserved there
    cex.save(tmp_path / "testing_bad.json")
    assert main(["replay", str(tmp_path / "testing_bad.json")]) == 1

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

"""``dtd-formal check-rule``: table, JSON, exit codes 0/1/2/3, module:Class and catalogue strings, export."""

from __future__ import annotations

import json
import re
import sys
import textwrap

import pytest
import z3

from dtd_formal.cli import main

RULE_MODULE = textwrap.dedent('''
    from dtd_formal.rules import Rule, ZPlus

    class FlatPositives(Rule):
        """z+ that spreads each neuron's relevance evenly over its positive-weight inputs (ignores a)."""
        name = "flat_positives"
        def direction(self, ops, a, W, b):
            return ops.positive_mask(W) * ops.ones_like(W)

    class ZPlusNoNorm(ZPlus):
        def redistribute(self, ops, a, W, b, R):
            return ops.matmul(ops.transpose(self.contributions(ops, a, W, b)), R)

    NOT_A_RULE = 3
''')


@pytest.fixture
def rule_module(tmp_path, monkeypatch):
    (tmp_path / "my_rules.py").write_text(RULE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield "my_rules"
    sys.modules.pop("my_rules", None)


def test_catalogue_rule_passes_with_table(capsys):
    rc = main(["check-rule", "zplus", "--bias", "nonpositive", "--max-examples", "15",
               "--properties", "conservation", "positivity", "root_in_domain"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "conservation" in out and "proved" in out and "PASSED" in out
    # Z3 decided these: "proved" is an exact verdict, and the verdict line says by what
    assert "PASSED: proved by z3 (every input, on the solver nets): conservation, positivity, root-in-domain" in out


def _rows(out: str) -> dict[str, list[str]]:
    """The table's rows by property name, split on the runs of spaces between columns."""
    lines = out.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("property "))
    rows = {}
    for line in lines[start + 2:]:
        if not line or line.startswith(("counterexample", "PASSED", "REFUTED", "UNKNOWN", "ERROR")):
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells
    return rows


def test_hypothesis_only_results_say_held_on_n_examples_not_proved(capsys):
    """No solver: no property is proved; the table and the verdict line say what happened (no counterexample on N
    generated examples), and the JSON keeps status "passed" with "proof": false and the same summary."""
    args = ["check-rule", "zplus", "--bias", "nonpositive", "--max-examples", "15", "--no-solver",
            "--properties", "conservation", "positivity"]
    assert main(args) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert set(rows) == {"conservation", "positivity"}
    for cells in rows.values():
        assert cells[1] == f"held on {cells[2]} examples" and cells[2] == "15", cells
    assert "proved" not in out
    assert out.rstrip().splitlines()[-1] == ("PASSED: held on 15 examples (no counterexample; not a proof): "
                                              "conservation, positivity")
    assert main(args + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for p in data["properties"]:
        assert p["status"] == "passed" and p["proof"] is False and p["summary"] == "held on 15 examples"
    assert data["summary"] == out.rstrip().splitlines()[-1] and "proved" not in json.dumps(data["summary"])


def test_z3_proof_and_example_evidence_are_told_apart_in_json(capsys):
    rc = main(["check-rule", "zplus", "--bias", "nonpositive", "--max-examples", "12", "--json",
               "--properties", "positivity", "continuity"])
    data = json.loads(capsys.readouterr().out)
    assert rc == 0
    by = {p["name"]: p for p in data["properties"]}
    assert by["positivity"]["status"] == "proved" and by["positivity"]["proof"] is True
    assert by["positivity"]["summary"].startswith("z3 proved it on nets ")
    assert by["positivity"]["summary"].endswith("; held on 12 examples")
    assert by["continuity"]["status"] == "passed" and by["continuity"]["proof"] is False
    assert by["continuity"]["summary"] == "held on 12 examples"
    assert data["summary"] == ("PASSED: proved by z3 (every input, on the solver nets): positivity; held on 12 "
                               "examples (no counterexample; not a proof): continuity")


def test_help_documents_the_statuses_and_the_wording_change(capsys):
    assert main(["check-rule", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert 'held on N examples no counterexample among the N generated examples and no proof' in text
    assert '"status": "passed", "proof": false' in text and 'JSON "status" values are unchanged' in text
    assert "proved exact: Z3 proved the property for every input" in text


def test_refuted_property_exits_1_and_exports(rule_module, capsys, tmp_path):
    rc = main(["check-rule", f"{rule_module}:ZPlusNoNorm", "--bias", "nonpositive", "--max-examples", "15",
               "--properties", "conservation", "--export", str(tmp_path / "cex")])
    out = capsys.readouterr().out
    assert rc == 1 and "refuted" in out and "input x =" in out and "REFUTED: conservation" in out
    data = json.loads((tmp_path / "cex" / "conservation.json").read_text())
    assert data["format"] == "dtd_formal.counterexample/1"
    assert data["rule"]["reference"] == "python:my_rules:ZPlusNoNorm[zplus]"  # named, never imported from the file
    # replay needs the user rule passed explicitly; a file never makes dtd-formal import code
    assert main(["replay", str(tmp_path / "cex" / "conservation.json")]) == 2
    assert "never import" in capsys.readouterr().err  # "never import(s) code named in a file"
    assert main(["replay", str(tmp_path / "cex" / "conservation.json"), "--rule", f"{rule_module}:ZPlusNoNorm"]) == 0
    assert main(["replay", str(tmp_path / "cex" / "conservation.json"), "--rule", "zplus"]) == 2
    text = (tmp_path / "cex" / "test_conservation_regression.py").read_text()
    ns: dict = {}
    exec(compile(text, "regression.py", "exec"), ns)
    with pytest.raises(AssertionError):
        next(v for k, v in ns.items() if k.startswith("test_"))()


def test_json_output_is_machine_readable(rule_module, capsys):
    rc = main(["check-rule", f"{rule_module}:FlatPositives", "--max-examples", "10", "--json",
               "--properties", "conservation", "positivity", "root_on_hyperplane"])
    data = json.loads(capsys.readouterr().out)
    assert data["rule"]["spec"] == "flat_positives"
    st = {p["name"]: p["status"] for p in data["properties"]}
    # v = [w > 0]: contributions w+ >= 0, normaliser sum w+ -> positive; a neuron with no positive weight drops
    assert st["positivity"] in ("proved", "passed") and st["root-on-hyperplane"] in ("proved", "passed")
    assert rc == (1 if "refuted" in st.values() else 0)


@pytest.mark.parametrize("arg, msg", [("nosuch_module_xyz:Rule", "cannot import module"),
                                      ("my_rules:NOT_A_RULE", "not a dtd_formal.rules.Rule"),
                                      ("my_rules:Missing", "has no attribute"),
                                      ("gamma:x", "not a number")])
def test_bad_input_exits_2(rule_module, capsys, arg, msg):
    assert main(["check-rule", arg, "--max-examples", "5"]) == 2
    assert msg in capsys.readouterr().err


def test_unknown_property_name_exits_2(capsys):
    assert main(["check-rule", "zplus", "--properties", "conservashun"]) == 2
    assert "unknown property" in capsys.readouterr().err


def test_solver_unknown_exits_3(capsys, monkeypatch):
    monkeypatch.setattr(z3.Solver, "check", lambda self, *a: z3.unknown)
    rc = main(["check-rule", "zplus", "--bias", "nonpositive", "--max-examples", "5", "--properties", "positivity"])
    assert rc == 3 and "unknown" in capsys.readouterr().out


def test_domain_option_and_catalogue_rule_with_parameters(capsys):
    rc = main(["check-rule", "zbox:-1,1", "--domain=-1:1", "--bias", "nonpositive", "--max-examples", "10",
               "--properties", "positivity", "root_in_domain"])
    out = capsys.readouterr().out
    assert rc == 0 and "-1 <= a <= 1" in out, out
    assert main(["check-rule", "zplus", "--domain", "1:0"]) == 2


def test_rule_code_that_raises_is_an_error_not_a_refutation(rule_module, capsys, tmp_path):
    """A rule whose body crashes (a float literal mixed into exact arithmetic) is reported as "error" with exit 2,
    naming the method and the input; "refuted" is kept for mathematical counterexamples."""
    (tmp_path / "float_rule.py").write_text(
        "from dtd_formal.rules import ZPlus\n\n"
        "class FloatLiteral(ZPlus):\n"
        "    def direction(self, ops, a, W, b):\n"
        "        return ops.positive_mask(W) * a * (ops.one + 0.1)\n")
    rc = main(["check-rule", "float_rule:FloatLiteral", "--bias", "nonpositive", "--max-examples", "10",
               "--properties", "conservation"])
    out = capsys.readouterr().out
    assert rc == 2, out
    assert "error" in out and "redistribute" in out and "inexact value" in out and "input x =" in out
    assert "REFUTED" not in out
    sys.modules.pop("float_rule", None)

"""``dtd-formal replay`` of files about a user rule (not a catalogue spec): without ``--rule`` the error names the
exact ``--rule module:Class`` to pass; with it, a module file in the current directory is imported without
PYTHONPATH. The verdicts come from ``dtd-formal counterexample --rule module:Class --json`` on a tiny net; every
command runs in a subprocess with cwd = the folder of the rule module, with ``python -P`` (the interpreter does not
put the current directory on sys.path itself) and without PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction as F
from pathlib import Path

import pytest

import dtd_formal as dtd

RULES = "from dtd_formal.rules import ZPlus\n\n\nclass ReplayZPlus(ZPlus):\n    \"\"\"z+ under another name.\"\"\"\n"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-P", "-m", "dtd_formal", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the rule module, a tiny 2-2-1 net and the JSON report of a counterexample run with the rule
    (neuron 0: refuted; neuron 1: proved), plus neuron 0's verdict alone (``verdict.json``, no embedded network)."""
    root = tmp_path_factory.mktemp("user_rule")
    (root / "replay_user_rules.py").write_text(RULES)
    dtd.Network([[[1, 1], [1, 0]], [[1, 1]]], [[F(-1, 2), F(-1, 2)], [0]]).save(root / "tiny.json")
    proc = cli("counterexample", "tiny.json", "--rule", "replay_user_rules:ReplayZPlus", "--neuron", "0",
               "--domain", "0:1", "--timeout", "20", "--no-progress", "--json", cwd=root)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["rule"] == "python:replay_user_rules:ReplayZPlus[zplus]"
    assert report["neurons"]["0"]["status"] == "refuted"
    (root / "report.json").write_text(proc.stdout)
    (root / "verdict.json").write_text(json.dumps(report["neurons"]["0"]))
    return root


def test_replay_without_rule_names_the_option(work: Path) -> None:
    proc = cli("replay", "report.json", cwd=work)
    assert proc.returncode == 2
    assert "report.json" in proc.stderr and "python:replay_user_rules:ReplayZPlus[zplus]" in proc.stderr
    assert "--rule replay_user_rules:ReplayZPlus" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_replay_of_one_verdict_without_rule_names_the_option(work: Path) -> None:
    proc = cli("replay", "verdict.json", "--model", "tiny.json", cwd=work)
    assert proc.returncode == 2
    assert "verdict.json" in proc.stderr and "--rule replay_user_rules:ReplayZPlus" in proc.stderr


def test_replay_with_rule_imports_it_from_the_current_directory(work: Path) -> None:
    proc = cli("replay", "report.json", "--rule", "replay_user_rules:ReplayZPlus", cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checks" in proc.stdout and "DOES NOT CHECK" not in proc.stdout
    proc = cli("replay", "verdict.json", "--model", "tiny.json", "--rule", "replay_user_rules:ReplayZPlus", "--json",
               cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["checks"] is True


def test_replay_with_another_rule_is_refused(work: Path) -> None:
    proc = cli("replay", "report.json", "--rule", "zplus", cwd=work)
    assert proc.returncode == 2
    assert "python:replay_user_rules:ReplayZPlus[zplus]" in proc.stderr and "'zplus'" in proc.stderr


def test_replay_from_another_directory_says_where_it_looked(work: Path, tmp_path: Path) -> None:
    proc = cli("replay", str(work / "report.json"), "--rule", "replay_user_rules:ReplayZPlus", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--rule replay_user_rules:ReplayZPlus" in proc.stderr and "cannot import module" in proc.stderr
    assert str(tmp_path) in proc.stderr  # the directory it looked in


def test_user_rule_hint_for_a_script_class() -> None:
    from dtd_formal.replay import user_rule_hint

    text = user_rule_hint("python:__main__:Mine[zplus]", "f.json")
    assert text.startswith("f.json: ") and "cannot be imported" in text and "--rule module:Class" in text

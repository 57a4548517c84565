"""``dtd-formal counterexample --save-tests FILE``: the written pytest module does not inline the network (it was
11.6 MB per file on a conv net); the network is written once beside it (FILE's stem + ``.network.json``), found
next to the test module (the two can be moved together), loaded once and checked against its digest, and a
tampered or missing network file is refused with an error naming it. The written tests are run by pytest in a
subprocess, from another directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.cli import main


def wide_net(extra: int = 600) -> dtd.Network:
    """2-(2 + extra)-1: the 2-2-1 net whose neuron 0 has a z+ root leaving its region on [0, 1]^2, plus ``extra``
    seeded neurons that make the network file large."""
    rng = np.random.default_rng(0)
    W1 = [[1, 1], [1, 0]] + [[F(int(a), 7), F(int(b), 7)] for a, b in rng.integers(-20, 20, size=(extra, 2))]
    b1 = [F(-1, 2), F(-1, 2)] + [F(int(c), 11) for c in rng.integers(-20, 20, size=extra)]
    W2 = [[1, 1] + [F(int(c), 13) for c in rng.integers(-5, 5, size=extra)]]
    return dtd.Network([W1, W2], [b1, [0]])


def _pytest(test_file: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(test_file)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, dtd.Network]:
    """The folder where `counterexample --save-tests` wrote test_regress.py (and its network), and the network."""
    root = tmp_path / "save_tests"
    root.mkdir()
    net = wide_net()
    net.save(root / "wide.json")
    out = root / "written"
    out.mkdir()
    rc = main(["counterexample", str(root / "wide.json"), "--neuron", "0", "--domain", "0:1", "--timeout", "30",
               "--no-progress", "--save-tests", str(out / "test_regress.py")])
    assert rc == 0
    return out, net


def _move(saved_dir: Path, dest: Path) -> Path:
    """Move the written test module and its network together to ``dest``; the path of the moved module."""
    dest.mkdir()
    for name in ("test_regress.py", "test_regress.network.json"):
        shutil.move(saved_dir / name, dest / name)
    return dest / "test_regress.py"


def test_the_network_is_written_once_beside_the_tests(saved: tuple[Path, dtd.Network]) -> None:
    out, net = saved
    test_file, net_file = out / "test_regress.py", out / "test_regress.network.json"
    text = test_file.read_text()
    assert "def test_root_exit_layer1_neuron0" in text
    assert dtd.load(net_file).digest() == net.digest()
    assert net.digest() in text  # referenced by digest
    assert test_file.stat().st_size < 8000 < net_file.stat().st_size / 4  # no network inside the tests
    rows = net.to_json()["layers"][0]["weight"][2:5]  # three of the extra neurons' weights
    assert json.loads(net_file.read_text())["layers"][0]["weight"][2:5] == rows
    assert json.dumps(rows)[1:-1] not in text and json.dumps(rows[0]) not in text
    assert "Network.from_json" not in text and "GraphNetwork.from_json" not in text


def test_the_written_tests_pass_under_pytest_after_a_move(saved: tuple[Path, dtd.Network], tmp_path: Path) -> None:
    moved = _move(saved[0], tmp_path / "moved")  # the two files moved together, run from elsewhere
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = _pytest(moved, elsewhere)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_a_tampered_network_file_is_refused_by_digest(saved: tuple[Path, dtd.Network], tmp_path: Path) -> None:
    test_file = _move(saved[0], tmp_path / "tampered")
    net_file = test_file.with_name("test_regress.network.json")
    net = saved[1]
    W2 = net.weight(2).copy()
    W2[0, 0] = F(2)  # a different network, still a valid file
    dtd.Network([net.weight(1), W2], [net.bias(1), net.bias(2)]).save(net_file)
    proc = _pytest(test_file, tmp_path)
    assert proc.returncode == 1
    assert "digest mismatch" in proc.stdout and str(net_file) in proc.stdout.replace("\n", "")
    assert "network file was changed or replaced" in proc.stdout


def test_a_missing_network_file_is_named(saved: tuple[Path, dtd.Network], tmp_path: Path) -> None:
    test_file = _move(saved[0], tmp_path / "missing")
    test_file.with_name("test_regress.network.json").unlink()
    proc = _pytest(test_file, tmp_path)
    assert proc.returncode == 1
    assert "the network of these tests is missing" in proc.stdout and "test_regress.network.json" in proc.stdout


def test_a_user_rule_is_imported_by_the_written_tests(tmp_path: Path) -> None:
    (tmp_path / "save_tests_rules.py").write_text(
        "from dtd_formal.rules import ZPlus\n\n\nclass MyZPlus(ZPlus):\n    pass\n")
    wide_net(0).save(tmp_path / "net.json")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-P", "-m", "dtd_formal", "counterexample", "net.json", "--rule",
                           "save_tests_rules:MyZPlus", "--neuron", "0", "--domain", "0:1", "--timeout", "20",
                           "--no-progress", "--save-tests",
                           "test_user_rule.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "test_user_rule.py").read_text()
    assert "from save_tests_rules import MyZPlus" in text and "rule = MyZPlus()" in text
    assert "parse_rule('python:" not in text
    run = _pytest(tmp_path / "test_user_rule.py", tmp_path)
    assert run.returncode == 0 and "passed" in run.stdout, run.stdout + run.stderr

"""The input box of VNN-LIB property files: exact decimals, the accepted forms, and refusals naming the line."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from dtd_formal.errors import InputError
from dtd_formal.io.vnnlib import read_vnnlib_box

HEADER = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.vnnlib"
    path.write_text(HEADER + body)
    return path


def test_box_is_read_exactly_in_every_accepted_form(tmp_path: Path) -> None:
    body = ("; comment\n(assert (<= X_0 0.1))\n(assert (>= X_0 -2.5e-1))\n"
            "(assert (and (<= 0 X_1) (>= 1/3 X_1)))\n(assert (<= Y_0 Y_1))\n(assert (or (<= Y_0 0) (>= Y_1 3)))\n")
    low, high, info = read_vnnlib_box(_write(tmp_path, body), 2)
    assert list(low) == [Fraction(-1, 4), 0] and list(high) == [Fraction(1, 10), Fraction(1, 3)]
    assert info == {"inputs": 2, "outputs": 2, "output_constraints": 2}


@pytest.mark.parametrize("body, message", [
    ("(assert (<= X_0 1))\n(assert (>= X_0 0))\n(assert (<= X_1 1))\n", r"X_1 has no lower bound"),
    ("(assert (or (<= X_0 1) (>= X_0 2)))\n", r"p\.vnnlib:5: only bounds on single inputs"),
    ("(assert (<= X_0 X_1))\n", r"between two inputs"),
    ("(assert (<= X_0 Y_1))\n", r"mixing inputs and outputs"),
    ("(assert (< X_0 1))\n", r"only bounds on single inputs"),
    ("(assert (<= X_0 1))\n(assert (<= X_0 2))\n", r"two different upper bounds"),
    ("(assert (<= X_0 0))\n(assert (>= X_0 1))\n(assert (<= X_1 1))\n(assert (>= X_1 0))\n", r"above its upper"),
    ("(assert (<= X_0 1)\n", r"unbalanced"),
    ("(check-sat)\n", r"unsupported command 'check-sat'"),
    ("(assert (<= X_0 abc))\n", r"bound"),
])
def test_bad_properties_are_refused_by_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_vnnlib_box(_write(tmp_path, body), 2)


def test_input_count_must_match_the_network(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="declares 2 inputs, the network has 3"):
        read_vnnlib_box(_write(tmp_path, "(assert (<= X_0 1))\n"), 3)


def test_counterexample_cli_reads_the_vnnlib_box(tmp_path: Path, shared_data: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from dtd_formal.cli import main

    path = _write(tmp_path, "(assert (<= X_0 1/2))\n(assert (>= X_0 0))\n(assert (<= X_1 1))\n(assert (>= X_1 1/4))\n")
    rc = main(["counterexample", str(shared_data / "fc_2-2-3.onnx"), "--domain", str(path), "--neuron", "0",
               "--timeout", "20", "--json", "--no-progress"])
    assert rc in (0, 3)
    q = json.loads(capsys.readouterr().out)["neurons"]["0"]["question"]
    assert q["low"] == ["0", "1/4"] and q["high"] == ["1/2", "1"]

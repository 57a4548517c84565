"""``--fold-normalization``: .nnet models read in raw units from the command line, with the domain printed."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

import dtd_formal as dtd
from dtd_formal.cli import main
from dtd_formal.io.nnet import load_nnet
from dtd_formal.rules.parse import parse_rule


def test_roots_cli_folds_nnet_normalisation(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_data / "ACASXU_experimental_v2a_1_1.nnet"
    raw = "1000,0.1,-0.2,300,400"
    assert main(["roots", str(path), "--fold-normalization", "--input", raw, "--layer", "1", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    folded = load_nnet(path, fold_normalization=True)
    x = [Fraction(v) for v in raw.split(",")]
    want = dtd.root_regions(folded, x, parse_rule("zplus"), layers=1)
    assert [r["neuron"] for r in got["records"]] == [r.neuron for r in want.records]
    assert [r["root"] for r in got["records"]][:3] == [[str(v) for v in r.root] for r in want.records][:3]
    # without the flag the same numbers are normalised inputs: a different question with different roots
    assert main(["roots", str(path), "--input", raw, "--layer", "1", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert [r["root"] for r in plain["records"]] != [r["root"] for r in got["records"]]
    assert main(["roots", str(path), "--fold-normalization", "--input", raw, "--layer", "1", "--neuron", "0"]) == 0
    assert "input domain (raw units): [0, -3141593/1000000" in capsys.readouterr().out
    assert main(["roots", str(shared_data / "fc_2-2-3.onnx"), "--fold-normalization", "--input", "1,1"]) == 2

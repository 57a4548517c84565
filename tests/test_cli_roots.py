"""The ``dtd-formal roots`` and ``dtd-formal example`` commands, and the paper's example network
(dtd_formal.examples.paper_mlp) against an independent construction with torch/numpy written here.

The hand net used below (see tests/test_regions.py for the derivation):
W1 = [[1, 1], [1, -1]], b1 = (-1, 0), W2 = [[1, -1]], b2 = (1/2), final ReLU.
At x = (1/2, 1/3): z1 = (-1/6, 1/6) (neuron 0 inactive), a1 = (0, 1/6), z2 = 1/3.
z+ roots: neuron (1, 1): w = (1, -1), v = (1/2, 0), w.v = 1/2, t = (1/6)/(1/2) = 1/3, root (1/3, 1/3);
layer 2: v = a1 [w > 0] = (0, 0): zero denominator.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.cli import main
from dtd_formal.network import Network
from dtd_formal.rules import ZPlus, parse_rule


@pytest.fixture
def net_file(tmp_path: Path) -> Path:
    net = Network([[[1, 1], [1, -1]], [[1, -1]]], [[-1, 0], [F(1, 2)]], final_relu=True)
    path = tmp_path / "net.json"
    net.save(path)
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_roots_prints_the_table(capsys, net_file: Path) -> None:
    code, out, err = run_cli(capsys, "roots", str(net_file), "--input", "1/2,1/3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"model {net_file}: Network(2-2-1, final_relu=True); rule zplus; scope upper")
    assert "leaves pattern" in lines[1] and "flipped" in lines[1]
    # one record: input 0, layer 1, neuron 1, t = 1/3, stays, in domain
    assert lines[2].split() == ["0", "1", "1", "0.3333", "False", "False", "True"]
    assert "root = [0.333333, 0.333333]" in lines[3]
    assert "layer 1: 1 roots; leave pattern 0 (0.000)" in out
    assert "layer 2: no roots ({'zero denominator': 1})" in out


def test_roots_json_is_exact_and_equals_the_api(capsys, net_file: Path) -> None:
    code, out, _ = run_cli(capsys, "roots", str(net_file), "--input", "1/2,1/3", "--json", "--rule", "wsquare")
    assert code == 0
    data = json.loads(out)
    assert data["rule"] == "wsquare" and data["model"] == str(net_file) and data["arithmetic"] == "exact"
    net = dtd.load(str(net_file))
    x = [F(1, 2), F(1, 3)]
    for rec in data["records"]:
        assert all(isinstance(s, str) for s in rec["root"])
        expected = dtd.roots(net, x, parse_rule("wsquare"), layer=rec["layer"])[rec["neuron"]]
        assert [F(s) for s in rec["root"]] == [F(v) for v in expected]
        assert F(rec["own_preactivation"]) == 0
    # w^2 at x: neuron (1, 1): v = w = (1, -1), t = (1/6)/2 = 1/12, root (1/2 - 1/12, 1/3 + 1/12) = (5/12, 5/12)
    assert data["records"][0]["root"] == ["5/12", "5/12"] and data["records"][0]["step"] == "1/12"
    # layer 2: a1 = (0, 1/6), v = w = (1, -1), w.v = 2, t = (1/3)/2 = 1/6, root (-1/6, 1/3)
    assert data["records"][1]["root"] == ["-1/6", "1/3"]
    assert data["summary"]["1"]["leaves_pattern"] == "0"


def test_roots_options_reach_the_api(capsys, net_file: Path) -> None:
    code, out, _ = run_cli(
        capsys, "roots", str(net_file), "--input", "2,1", "--rule", "wsquare", "--scope", "layer", "--layer", "1",
        "--definition", "paper-code", "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["scope"] == "layer" and data["definition"] == "paper-code" and data["layers"] == [1]
    assert {r["layer"] for r in data["records"]} == {1}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rule", "bogus"], "unknown rule 'bogus'"),
        (["--rule", "gamma:x"], "'x' is not a number"),
        (["--rule", "flat"], "flat is not a root-point rule"),
        (["--input", "1,2,3"], "--input: expected 2 values, got shape (3,)"),
        (["--input", "1,abc"], "'abc'"),
        (["--layer", "5"], "layer 5 does not exist"),
        (["--output", "1"], "output 1 does not exist"),
    ],
)
def test_roots_bad_input_exits_2_with_one_line(capsys, net_file: Path, argv, message) -> None:
    args = ["roots", str(net_file)] + (["--input", "1/2,1/3"] if "--input" not in argv else []) + argv
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("dtd-formal roots: error: ")
    assert message in err


def test_roots_missing_files_exit_2(capsys, tmp_path: Path, net_file: Path) -> None:
    missing = tmp_path / "nope.json"
    code, _, err = run_cli(capsys, "roots", str(missing), "--input", "1,2")
    assert code == 2 and err.strip() == f"dtd-formal roots: error: {missing}: no such file"
    code, _, err = run_cli(capsys, "roots", str(net_file), "--inputs", str(tmp_path / "xs.json"))
    assert code == 2 and "xs.json: no such file" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    code, _, err = run_cli(capsys, "roots", str(bad), "--input", "1,2")
    assert code == 2 and "bad.json: not a dtd_formal network" in err and err.count("\n") == 1


def test_usage_errors_exit_2(capsys, net_file: Path) -> None:
    assert main(["roots", str(net_file)]) == 2  # neither --input nor --inputs (usage errors are return codes)
    assert "--input" in capsys.readouterr().err
    assert main(["roots", str(net_file), "--input", "1,2", "--scope", "everything"]) == 2
    assert "everything" in capsys.readouterr().err


def test_exit_codes_through_the_interpreter(net_file: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "dtd_formal", "roots", str(net_file), "--input", "1/2,1/3"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "summary" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "dtd_formal", "roots", str(net_file), "--input", "1"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "dtd-formal roots: error: --input: expected 2 values, got shape (1,)"
    ]


def test_example_then_roots_on_its_inputs(capsys, tmp_path: Path) -> None:
    net_path, xs_path = tmp_path / "mlp.json", tmp_path / "xs.json"
    code, out, err = run_cli(capsys, "example", "paper-mlp", "--out", str(net_path), "--inputs", "3", str(xs_path))
    assert code == 0, err
    assert "Network(10-10-10-2, final_relu=True)" in out
    net = dtd.load(str(net_path))
    assert net.layer_sizes == [10, 10, 10, 2] and net.n_relus == 22
    xs = [[F(v) for v in row] for row in json.loads(xs_path.read_text())["inputs"]]
    assert len(xs) == 3 and all(len(x) == 10 for x in xs)
    # study inputs: x >= 0 and f_0(x) > 0.1, decided exactly
    for x in xs:
        assert all(v >= 0 for v in x)
        assert net.forward(x)[0] > F(1, 10)
    code, out, err = run_cli(capsys, "roots", str(net_path), "--inputs", str(xs_path), "--json", "--rule", "zplus")
    assert code == 0, err
    data = json.loads(out)
    assert data["n_inputs"] == 3
    # every root in the report equals the API's exact root
    for rec in data["records"][:40]:
        expected = dtd.roots(net, xs[rec["input_index"]], ZPlus(), layer=rec["layer"])[rec["neuron"]]
        assert [F(s) for s in rec["root"]] == [F(v) for v in expected]
    # the summary's fractions are the exact counts
    for l in (1, 2, 3):
        recs = [r for r in data["records"] if r["layer"] == l]
        s = data["summary"][str(l)]
        assert s["roots"] == len(recs)
        if recs:
            assert F(s["leaves_pattern"]) == F(sum(r["leaves_pattern"] for r in recs), len(recs))
    # the table form also runs on a file of several inputs
    code, out, _ = run_cli(capsys, "roots", str(net_path), "--inputs", str(xs_path), "--no-progress")
    assert code == 0 and "summary (exact fractions of roots):" in out


def test_inputs_from_csv_and_npy(capsys, tmp_path: Path, net_file: Path) -> None:
    csv = tmp_path / "xs.csv"
    csv.write_text("1/2,1/3\n2,1\n")
    npy = tmp_path / "xs.npy"
    np.save(npy, np.array([[0.5, 1 / 3], [2.0, 1.0]]))
    code, out, _ = run_cli(capsys, "roots", str(net_file), "--inputs", str(csv), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["n_inputs"] == 2 and data["records"][0]["root"] == ["1/3", "1/3"]
    code, out, _ = run_cli(capsys, "roots", str(net_file), "--inputs", str(npy), "--json")
    assert code == 0
    # the float 1/3 is converted exactly, so the root is not 1/3 but a dyadic-derived rational
    root = [F(s) for s in json.loads(out)["records"][0]["root"]]
    assert root != [F(1, 3), F(1, 3)] and abs(float(root[0]) - 1 / 3) < 1e-12


# ---------------------------------------------------------------------------------------------- paper MLP
def _independent_paper_mlp(seed: int) -> tuple[list, list, list, list, list]:
    """torch's default Linear init (seeded), then the two readings in numpy float32 arithmetic."""
    import torch

    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        lins = [torch.nn.Linear(10, 10), torch.nn.Linear(10, 10), torch.nn.Linear(10, 2)]
    finally:
        torch.random.set_rng_state(state)
    raw = [(lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy()) for lin in lins]
    c14 = np.float32(1.4)
    text_w = [np.where(w > 0, w * c14, w).astype(np.float32) for w, _ in raw]
    text_b = [(-np.abs(b)).astype(np.float32) for _, b in raw]
    code_w = []
    for w, _ in raw:
        for _ in range(3):  # 1.4 applied at three module levels, rounded to float32 each time
            w = np.where(w > 0, w * c14, w).astype(np.float32)
        code_w.append(w)
    code_b = [np.minimum(b, np.float32(0)) for _, b in raw]
    return raw, text_w, text_b, code_w, code_b


def _exact(values: np.ndarray) -> list[F]:
    return [F(float(v)) for v in np.ravel(values)]


@pytest.mark.parametrize("seed", [0, 5])
def test_paper_mlp_matches_an_independent_construction(seed: int) -> None:
    from dtd_formal.examples import paper_mlp

    raw, text_w, text_b, code_w, code_b = _independent_paper_mlp(seed)
    text, code = paper_mlp(seed, "paper-text"), paper_mlp(seed, "paper-code")
    for net in (text, code):
        assert net.layer_sizes == [10, 10, 10, 2] and net.final_relu and net.n_relus == 22
    for k in range(3):
        assert [F(v) for v in text.weights[k].ravel()] == _exact(text_w[k])
        assert [F(v) for v in text.biases[k]] == _exact(text_b[k])
        assert [F(v) for v in code.weights[k].ravel()] == _exact(code_w[k])
        assert [F(v) for v in code.biases[k]] == _exact(code_b[k])
        w = raw[k][0].astype(np.float64)
        pos = w > 0
        # paper-text: positive weights x1.4, negative ones untouched; paper-code: x1.4^3 = 2.744 (float32 rounding)
        tw = np.array(_exact(text_w[k]), dtype=float).reshape(w.shape)
        cw = np.array(_exact(code_w[k]), dtype=float).reshape(w.shape)
        np.testing.assert_allclose(tw[pos] / w[pos], 1.4, rtol=1e-6)
        np.testing.assert_allclose(cw[pos] / w[pos], 2.744, rtol=1e-6)
        np.testing.assert_allclose(cw[pos] / tw[pos], 1.96, rtol=1e-6)
        assert np.array_equal(cw[~pos], w[~pos]) and np.array_equal(tw[~pos], w[~pos])
    # paper-text: every bias <= 0 (= -|b|, none exactly 0 for a continuous init); paper-code: min(b, 0)
    assert all(v < 0 for b in text.biases for v in b)
    zero = sum(v == 0 for b in code.biases for v in b)
    assert all(v <= 0 for b in code.biases for v in b)
    assert 5 <= zero <= 17, zero  # about half of the 22 biases (8 for seed 0, 10 for seed 5)
    # deterministic, and the global torch RNG state is left as it was
    import torch

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    paper_mlp(seed)
    assert torch.rand(1) == before
    assert paper_mlp(seed, "paper-code") == code

"""Command-line rough edges (issue 14): negative option values, neuron lists on dense networks, a closed pipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dtd_formal.cli import join_negative_values, main


def test_negative_values_are_joined_to_their_option() -> None:
    assert join_negative_values(["counterexample", "m", "--domain", "-1:1", "--neuron", "-3"]) == [
        "counterexample", "m", "--domain=-1:1", "--neuron", "-3"]
    assert join_negative_values(["regions", "--extent", "-2:2,-2:2", "--input", "-.5,1"]) == [
        "regions", "--extent=-2:2,-2:2", "--input=-.5,1"]


def test_domain_with_a_leading_minus(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["counterexample", str(shared_data / "fc_2-2-3.onnx"), "--domain", "-1:1", "--neuron", "0,1",
               "--timeout", "10", "--json", "--no-progress"])
    assert rc in (0, 3)
    out = json.loads(capsys.readouterr().out)
    assert sorted(out["neurons"]) == ["0", "1"]  # a comma list is two neurons on a dense network
    assert out["neurons"]["0"]["question"]["low"] == ["-1", "-1"]


def test_extent_with_a_leading_minus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["regions", "example:toy-2d", "--plot", str(tmp_path / "r.png"), "--extent", "-2:2,-1:1",
               "--input", "-0.5,0.25", "--json"])
    assert rc == 0 and (tmp_path / "r.png").exists()
    assert json.loads(capsys.readouterr().out)["records"] is not None


def test_a_closed_pipe_ends_quietly(shared_data: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dtd_formal", "roots", str(shared_data / "cnn_max_mninst3.onnx"),
                             "--input", ",".join(["0.5"] * 784), "--layer", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"{"
    proc.stdout.close()  # the reader goes away, as `| head -1` does
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err and proc.returncode == 0


def test_licence_file_matches_the_package_metadata() -> None:
    root = Path(__file__).resolve().parents[1]
    assert (root / "LICENSE").read_text().startswith("MIT License")
    assert 'license = {text = "MIT"}' in (root / "pyproject.toml").read_text()


def test_dtd_functions_take_a_torch_module_and_route_to_the_torch_backend() -> None:
    torch = pytest.importorskip("torch")
    import dtd_formal as dtd
    from dtd_formal.rules.parse import parse_rule

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8, 2)).double().eval()
    with torch.no_grad():  # active conv neurons, so that there are roots to compare
        model[0].weight.abs_()
        model[0].bias.fill_(0.1)
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    rule = parse_rule("zplus")
    assert torch.equal(dtd.lrp(model, x, rule, output=0), dtd.torch.lrp(model, x, rule, output=0))
    got = dtd.root_regions(model, x, rule, layers=1, output=0)
    want = dtd.torch.root_regions(model, x, rule, layers=1, output=0)
    key = lambda r: (r.input_index, r.neuron, r.leaves_pattern, r.leaves_affine_map)  # noqa: E731
    assert [key(r) for r in got.records] == [key(r) for r in want.records] and got.records
    assert len(dtd.roots(model, x, rule, layer=1, output=0).neurons) > 0
    with pytest.raises(dtd.InputError, match="torch tensor"):
        dtd.lrp(model, x.numpy(), rule)

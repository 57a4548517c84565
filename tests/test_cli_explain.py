"""``dtd-formal explain`` (issue 14, "a heatmap in one call"): relevance of an ONNX model, PNGs, explain.json."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import dtd_formal
import dtd_formal.torch as dtorch
from dtd_formal.cli import main
from dtd_formal.rules.parse import parse_explainer
from dtd_formal.torch.heatmap import heatmap

SAMPLE = (2, 6, 6)


@pytest.fixture(scope="module")
def conv_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module | None, tuple[int, ...]]:
    """A tiny conv net exported to ONNX (dynamic batch); the shared conv_mp1.onnx where export fails here."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(3 * 4 * 4, 4)).eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny_conv.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.rand(1, *SAMPLE),), str(path), input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, dynamo=False)
        return path, model, SAMPLE
    except Exception:  # noqa: BLE001 - no exporter here: use the shared small conv net
        shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "conv_mp1.onnx"
        if not shared.is_file():
            pytest.skip("torch.onnx.export failed and ../shared/data/conv_mp1.onnx is absent")
        return shared, None, (3, 8, 8)


def inputs(tmp_path: Path, shape: tuple[int, ...], name: str = "x.npy", seed: int = 0) -> tuple[Path, np.ndarray]:
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)
    p = tmp_path / name
    np.save(p, x)
    return p, x


def reference(path: Path, x: np.ndarray, spec: str, output: Any = None) -> np.ndarray:
    return dtorch.lrp(dtorch.from_onnx(path), torch.tensor(x), parse_explainer(spec), output=output).numpy()


def test_relevance_pngs_and_json_match_the_torch_backend(conv_onnx: Any, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path, model, sample = conv_onnx
    xfile, x = inputs(tmp_path, (5, *sample))
    out = tmp_path / "out"
    rc = main(["explain", str(path), "--inputs", str(xfile), "--rule", "gamma:0.25", "--batch-size", "2",
               "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    printed = json.loads(captured.out)
    R = np.load(out / "relevance.npy")
    assert R.shape == x.shape and R.dtype == np.float32
    want = reference(path, x, "gamma:0.25")  # one batch of 5; the command ran batches of 2, 2, 1
    np.testing.assert_allclose(R, want, rtol=1e-5, atol=1e-7)
    assert not np.allclose(R, reference(path, x, "zplus"), rtol=1e-3, atol=1e-5)  # the rule was the one asked for
    if model is not None:  # the ONNX round trip computes the original module's relevance
        np.testing.assert_allclose(R, dtorch.lrp(model, torch.tensor(x), parse_explainer("gamma:0.25")).numpy(),
                                   rtol=1e-4, atol=1e-6)

    report = json.loads((out / "explain.json").read_text())
    assert printed == report
    with torch.no_grad():
        y = dtorch.from_onnx(path)(torch.tensor(x)).numpy()
    assert report["model"] == str(path) and report["inputs"] == str(xfile)
    assert report["explainer"] == {"spec": "gamma:0.25", "repr": repr(parse_explainer("gamma:0.25"))}
    assert report["target_option"] == "argmax" and report["targets"] == [int(c) for c in y.argmax(axis=1)]
    # the command ran batches of 2, 2, 1 and this forward one of 5: float32 convolutions may sum in another order
    # per batch size, so outputs agree to float32 rounding of the largest term, not of each (small) output
    scale = 1e-6 * float(np.abs(y).max())
    np.testing.assert_allclose(report["outputs"], y, rtol=1e-6, atol=scale)
    np.testing.assert_allclose(report["explained_outputs"], y[np.arange(5), y.argmax(axis=1)], rtol=1e-6, atol=scale)
    np.testing.assert_allclose(report["relevance_sums"], R.reshape(5, -1).sum(axis=1, dtype=np.float64), rtol=1e-6)
    assert report["version"] == dtd_formal.__version__ and report["batched"] is True
    assert report["input_shape"] == list(sample) and report["dtype"] == "float32"

    names = [f"heatmap_{i:03d}.png" for i in range(5)]
    assert sorted(p.name for p in out.glob("*.png")) == names
    assert report["files"] == {"relevance": str(out / "relevance.npy"),
                               "heatmaps": [str(out / n) for n in names], "report": str(out / "explain.json")}
    for i, n in enumerate(names):
        img = np.asarray(Image.open(out / n))
        assert img.shape == (*sample[1:], 3) and img.dtype == np.uint8
        np.testing.assert_array_equal(img, heatmap(R[i]))  # channels summed, normalised per input


def test_one_unbatched_input_with_a_target_and_a_composite(conv_onnx: Any, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path, _, sample = conv_onnx
    xfile, x = inputs(tmp_path, sample, seed=3)
    spec = "epsilon-gamma-box:low=-3,high=3"
    rc = main(["explain", str(path), "--inputs", str(xfile), "--composite", spec, "--target", "1",
               "--out", str(tmp_path / "o"), "--cmap", "hot", "--level", "2"])
    text = capsys.readouterr().out
    assert rc == 0
    R = np.load(tmp_path / "o" / "relevance.npy")
    assert R.shape == sample  # shaped like the file: no batch axis
    np.testing.assert_allclose(R, reference(path, x[None], spec, output=1)[0], rtol=1e-5, atol=1e-7)
    report = json.loads((tmp_path / "o" / "explain.json").read_text())
    assert report["targets"] == [1] and report["target_option"] == 1 and report["batched"] is False
    assert report["explainer"]["repr"].startswith("EpsilonGammaBox(")
    assert [p.name for p in (tmp_path / "o").glob("*.png")] == ["heatmap_000.png"]
    img = np.asarray(Image.open(tmp_path / "o" / "heatmap_000.png"))
    np.testing.assert_array_equal(img, heatmap(R, cmap="hot", level=2.0))
    # the human summary: the explainer, one row per input, the files
    assert spec in text and "EpsilonGammaBox" in text and "wrote" in text and "heatmap_000.png" in text
    row = next(line.split() for line in text.splitlines() if line.split()[:2] == ["0", "1"])
    assert float(row[3]) == pytest.approx(report["relevance_sums"][0], rel=1e-5)


def test_wrong_input_shape_names_the_expected_shape(conv_onnx: Any, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path, _, sample = conv_onnx
    wrong = (4, sample[0] + 1, *sample[1:])
    xfile, _ = inputs(tmp_path, wrong, name="wrong.npy")
    out = tmp_path / "never"
    rc = main(["explain", str(path), "--inputs", str(xfile), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    expected = ", ".join(map(str, sample))
    assert f"{xfile}: inputs of shape {wrong} do not fit the model" in err
    assert f"(N, {expected})" in err and f"one input ({expected})" in err
    assert f"Conv2d({sample[0]}, " in err and f"takes {sample[0]} input channel(s)" in err  # from the first layer
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("case, message", [
    ("rule", "unknown rule 'nosuch'"),
    ("composite", "unknown composite 'nosuch-preset'"),
    ("inputs", "missing.npy: no such file"),
    ("model", "missing.onnx: no such file"),
    ("not-onnx", "MODEL must be an .onnx file"),
    ("target", "--target 9 out of range: the model has"),
    ("csv", "inputs must be a .npy file"),
    ("nan", "NaN or infinite"),
    ("cmap", "unknown colour map 'nosuch-map'"),
    ("level", "--level must be a finite number >= 0, got nan"),
    ("out-file", "exists and is not a folder"),
])
def test_bad_input_exits_2_with_a_clear_message(conv_onnx: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                case: str, message: str) -> None:
    path, _, sample = conv_onnx
    xfile, x = inputs(tmp_path, (2, *sample))
    argv = ["explain", str(path), "--inputs", str(xfile), "--out", str(tmp_path / "o")]
    if case == "rule":
        argv += ["--rule", "nosuch"]
    elif case == "composite":
        argv += ["--composite", "nosuch-preset"]
    elif case == "inputs":
        argv[3] = str(tmp_path / "missing.npy")
    elif case == "model":
        argv[1] = str(tmp_path / "missing.onnx")
    elif case == "not-onnx":
        argv[1] = str(xfile)
    elif case == "target":
        argv += ["--target", "9"]
    elif case == "csv":
        (tmp_path / "x.csv").write_text("1,2\n")
        argv[3] = str(tmp_path / "x.csv")
    elif case == "nan":
        x[0].flat[0] = np.nan
        np.save(xfile, x)
    elif case == "cmap":
        argv += ["--cmap", "nosuch-map"]
    elif case == "level":
        argv += ["--level", "nan"]
    elif case == "out-file":
        (tmp_path / "o").write_text("")
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_channel_last_input_is_drawn_as_an_image(shared_data: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """cnn_max_mninst3.onnx reads NHWC (28, 28, 1) inputs and transposes them to NCHW first."""
    path = shared_data / "cnn_max_mninst3.onnx"
    xfile = tmp_path / "m.npy"
    x = np.random.default_rng(0).uniform(0, 1, (28, 28, 1)).astype(np.float32)
    np.save(xfile, x)
    rc = main(["explain", str(path), "--inputs", str(xfile), "--rule", "epsilon:1e-6", "--out", str(tmp_path / "o"),
               "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["heatmap"]["channel_last"] is True
    R = np.load(tmp_path / "o" / "relevance.npy")
    assert R.shape == (28, 28, 1)
    np.testing.assert_allclose(R, reference(path, x[None], "epsilon:1e-6")[0], rtol=1e-5, atol=1e-7)
    img = np.asarray(Image.open(tmp_path / "o" / "heatmap_000.png"))
    assert img.shape == (28, 28, 3)
    np.testing.assert_array_equal(img, heatmap(R[:, :, 0]))

"""`dtd-formal reproduce --quick` end to end (into a temporary folder), and the C6 study's exact fractions against
an independent recomputation with the slow textbook twin."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.cli import main
from dtd_formal.experiments.c6_study import c6_study
from dtd_formal.regions import classify_root_reference

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VERDICTS = {"proved", "refuted", "unknown"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("reproduce")
    code = main(["reproduce", "--quick", "--out", str(out), "--no-progress", "--inputs", "30"])
    return code, out


def _fractions(obj):  # type: ignore[no-untyped-def]
    """Every {"exact": "n/d", "float": f} pair inside a JSON object."""
    if isinstance(obj, dict):
        if set(obj) >= {"exact", "float"}:
            yield obj
        for v in obj.values():
            yield from _fractions(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _fractions(v)


def test_quick_run_writes_report_results_and_figures(quick_run: tuple[int, Path]) -> None:
    code, out = quick_run
    assert code in (0, 3), "a claim or step that should hold failed"
    results = json.loads((out / "results.json").read_text())
    assert {"quick", "seed", "n_inputs", "steps"} <= set(results)
    assert results["quick"] is True and results["n_inputs"] == 30
    steps = results["steps"]
    assert set(steps) == {"claims", "c6_study", "root_exit_search", "demos", "in_region_roots", "figures_2d", "csc"}
    for step in steps.values():
        assert step["status"] == "done", step
    claims = steps["claims"]["data"]
    assert len(claims) == 12 and all(c["status"] == "proved" for c in claims)
    for c in claims:
        assert (out / c["certificate"]).is_file()
    search = steps["root_exit_search"]["data"]
    assert sum(search["counts"].values()) == 10 and search["control"]["no_exit_network"]["refuted"] == 0
    for row in search["neurons"]:
        assert row["status"] in VERDICTS
        if row["status"] == "refuted":
            assert (out / row["counterexample"]).is_file()
            assert main(["replay", str(out / row["counterexample"])]) == 0  # re-checked exactly
    for rows in steps["csc"]["data"].values():
        for r in rows["rows"]:
            assert 0 <= r["median_abs_cos"] <= 1 + 1e-12 and 0 <= r["baseline"] <= 1 + 1e-12
    fracs = list(_fractions(steps["c6_study"]["data"]))
    assert fracs
    for f in fracs:
        value = Fraction(f["exact"])
        assert 0 <= value <= 1 and abs(float(value) - f["float"]) < 1e-12
    for text in json.dumps(results).split('"status": "')[1:]:
        status = text.split('"', 1)[0]
        assert status in VERDICTS | {"done", "skipped", "failed"}
    report = (out / "report.md").read_text()
    figures = list((out / "figures").glob("*.png"))
    assert len(figures) >= 3
    for fig in figures:
        assert fig.read_bytes()[:8] == PNG_MAGIC
        assert f"figures/{fig.name}" in report
    import matplotlib.image

    img = matplotlib.image.imread(figures[0])
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def test_c6_fractions_match_an_independent_recomputation() -> None:
    res = c6_study(n_inputs=4, rules={"zplus": dtd.rules.ZPlus()}, definitions=("true",))
    net = dtd.examples.paper_mlp(res["network"]["seed"], "paper-text")
    xs = dtd.examples.paper_inputs(net, 4, seed=0)
    for cell in res["cells"]:
        l = cell["layer"]
        leaves = maps = layer_only = 0
        n = 0
        for x in xs:
            for j, root in dtd.roots(net, x, dtd.rules.ZPlus(), layer=l).items():
                n += 1
                up, mp = classify_root_reference(net, x, l, j, root, 0, "upper")
                lay, _ = classify_root_reference(net, x, l, j, root, 0, "layer")
                leaves += up
                maps += mp
                layer_only += lay
        assert cell["roots"] == n
        if n:
            assert Fraction(cell["leaves_pattern_upper"]["exact"]) == Fraction(leaves, n)
            assert Fraction(cell["leaves_affine_map"]["exact"]) == Fraction(maps, n)
            assert Fraction(cell["leaves_pattern_layer"]["exact"]) == Fraction(layer_only, n)


def test_output_changed_is_exact() -> None:
    """The certified-float decision of f(root) != f(x) agrees with a plain Fraction forward."""
    from dtd_formal.experiments.c6_study import _output_changed
    from dtd_formal.exact import to_fast

    net = dtd.examples.paper_mlp(5, "paper-text")
    xs = dtd.examples.paper_inputs(net, 3, seed=2)
    for x in xs:
        for l in (1, 2, 3):
            rts = dtd.roots(net, x, dtd.rules.ZPlus(), layer=l, definition="paper-code")
            if not rts:
                continue
            pts = np.array([to_fast(p) for p in rts.values()])
            # one duplicated input point: its output is unchanged by construction
            a = net.activations(x)[l - 1]
            pts = np.vstack([pts, to_fast(a)[None, :]])
            f_x = [net.forward(x)[0]] * len(pts)
            got = _output_changed(net, l, pts, f_x, 0)
            upper = net.upper(l)
            want = [upper.forward(p)[0] != f_x[0] for p in list(rts.values()) + [a]]
            assert list(got) == want
            assert not got[-1]


def test_every_certificate_and_counterexample_replays_and_a_one_digit_edit_is_rejected(
        quick_run: tuple[int, Path], tmp_path: Path) -> None:
    """The done-criterion of the soundness issue: every file `reproduce` writes under certificates/ and
    counterexamples/ is confirmed by `dtd-formal replay`, and rejected after a one-digit edit of a field replay reads
    (the claim, the question, the counterexample, the proof)."""
    import re

    _, out = quick_run
    files = sorted((out / "certificates").glob("*.json")) + sorted((out / "counterexamples").glob("*.json"))
    assert any("root_exit_control" in f.name for f in files) and any(f.parent.name == "counterexamples" for f in files)
    for f in files:
        assert main(["replay", str(f)]) == 0, f.name
        text = f.read_text()
        data = json.loads(text)
        key = "question" if "question" in data else "certificate"
        start = text.index(f'"{key}"')
        digit = next(m for m in re.finditer(r"\d", text[start:]))
        p = start + digit.start()
        edited = tmp_path / f.name
        edited.write_text(text[:p] + str((int(text[p]) + 1) % 10) + text[p + 1:])
        assert main(["replay", str(edited)]) in (1, 2), f"{f.name}: an edit at {p} was accepted"

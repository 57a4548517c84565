"""`dtd-formal reproduce --quick` end to end (into a temporary folder), and the C6 study's exact fractions against
an independent recomputation with the slow textbook twin."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shlex
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.cli import main
from dtd_formal.examples import STUDY_SEED
from dtd_formal.experiments.c6_study import c6_study
from dtd_formal.experiments.reproduce import (INPUT_SEEDS, VERSION_PACKAGES, Invocation, StepResult, reproduce,
                                              table_cell)
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


# ---------------------------------------------------------------------------------------------------- issue 14
REPO = Path(__file__).resolve().parents[1]


def _table_rows(report: str, header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header line starts with ``header``, split on unescaped pipes."""
    lines = report.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_report_tables_are_not_truncated(quick_run: tuple[int, Path]) -> None:
    """Every claim's method and every root-exit row's flipped neurons appear whole in report.md (the method column
    was cut at 90 characters and the flipped list at 8 entries)."""
    _, out = quick_run
    results = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    claims = results["steps"]["claims"]["data"]
    assert any(len(c["method"]) > 90 for c in claims)  # the case the old [:90] cut
    rows = {r[0].strip("`"): r for r in _table_rows(report, "| claim | theory |")}
    assert set(rows) == {c["claim"] for c in claims}
    for c in claims:
        assert len(rows[c["claim"]]) == 6 and rows[c["claim"]][3] == c["method"]
    neurons = results["steps"]["root_exit_search"]["data"]["neurons"]
    table = {int(r[0]): r for r in _table_rows(report, "| neuron | verdict |")}
    for row in neurons:
        if row["status"] != "refuted":
            continue
        stored = json.loads((out / row["counterexample"]).read_text())["counterexample"]["flipped"]
        assert row["flipped"] == stored  # results.json keeps the whole list
        assert table[row["neuron"]][3] == str(stored)  # and so does the report


def test_table_cell_keeps_the_whole_text() -> None:
    text = "a | b\nc " + "x" * 200
    cell = table_cell(text)
    assert "\n" not in cell and cell.replace("\\|", "|") == text.replace("\n", " ")
    assert len(re.split(r"(?<!\\)\|", f"| {cell} | 2 |")) == 4  # two cells: the pipe does not split the column


def test_results_and_report_record_versions_seeds_command_and_step_times(quick_run: tuple[int, Path]) -> None:
    _, out = quick_run
    results = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    versions = results["versions"]
    for dist, _ in VERSION_PACKAGES:
        want = importlib.metadata.version(dist)
        assert versions[dist] == want and f"{dist} {want}" in report
    assert results["seed"] == STUDY_SEED and results["seeds"] == {"network": STUDY_SEED, **INPUT_SEEDS}
    assert f"network {STUDY_SEED}" in report and f"c6_inputs {INPUT_SEEDS['c6_inputs']}" in report
    # called as dtd_formal.cli.main([...]) from pytest: the call and its arguments, not pytest's sys.argv
    inv = results["invocation"]
    assert inv["via"] == "python" and inv["arguments"]["inputs"] == 30 and inv["arguments"]["quick"] is True
    assert inv["call"].startswith("dtd_formal.cli.main([") and "'--inputs', '30'" in inv["call"]
    assert shlex.split(inv["command"]) == ["dtd-formal", "reproduce", "--quick", "--out", str(out), "--inputs", "30",
                                           "--seed", str(STUDY_SEED)]
    assert results["command"] == inv["command"] and inv["command"] in report and inv["call"] in report
    timings = results["timings"]
    assert timings["steps"] == {name: step["seconds"] for name, step in results["steps"].items()}
    assert timings["total_seconds"] >= sum(timings["steps"].values()) - 1e-3
    step_rows = {r[0]: r for r in _table_rows(report, "| step | status | seconds |")}
    for step in results["steps"].values():
        assert step_rows[step["title"]][2] == f"{step['seconds']:.3f}"
        assert f"{step['name']} {step['seconds']:.3f} s" in report
    assert step_rows["total (wall time)"][2] == f"{timings['total_seconds']:.3f}"


def test_command_line_invocation_records_sys_argv() -> None:
    argv = ["/usr/bin/dtd-formal", "reproduce", "--quick", "--out", "my out"]
    inv = Invocation.from_command_line({"out": "my out", "quick": True, "inputs": None, "seed": 7}, argv=argv)
    assert inv.via == "command line" and inv.argv == argv and inv.call == ""
    assert inv.command == "dtd-formal reproduce --quick --out 'my out'"
    assert "sys.argv: `/usr/bin/dtd-formal reproduce --quick --out 'my out'`" in inv.describe()


def test_python_api_records_its_arguments(tmp_path: Path) -> None:
    def long_step(ctx):  # type: ignore[no-untyped-def]
        return StepResult("long", "A step with a long cell", "done", data={"seed": ctx.seed},
                          report_md="| k | v |\n|---|---|\n| a | " + "y" * 150 + " |")

    run = reproduce(out=tmp_path / "o", quick=True, n_inputs=3, seed=11, progress=False,
                    steps=[("long", "A step with a long cell", long_step)])
    data = run.payload()
    assert run.exit_code == 0 and data["seed"] == 11 and data["n_inputs"] == 3
    inv = data["invocation"]
    assert inv["via"] == "python"
    assert inv["arguments"] == {"out": str(tmp_path / "o"), "quick": True, "n_inputs": 3, "seed": 11,
                                "progress": False, "steps": ["long"]}
    assert inv["call"].startswith("dtd_formal.experiments.reproduce.reproduce(") and "seed=11" in inv["call"]
    assert shlex.split(inv["command"])[-2:] == ["--seed", "11"]
    report = run.report.read_text()
    assert inv["call"] in report and "y" * 150 in report
    assert set(data["timings"]["steps"]) == {"long"} and data["timings"]["total_seconds"] == round(run.seconds, 3)


def test_readme_and_help_state_the_same_quick_time_and_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    from dtd_formal.commands.reproduce import QUICK_TIME

    readme = (REPO / "README.md").read_text()
    assert main(["reproduce", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert QUICK_TIME in help_text and QUICK_TIME in " ".join(readme.split())
    assert "about a minute" not in readme and "about 2 minutes" not in help_text
    one_liner = readme.split("<!-- main-command -->")[1].split("<!-- /main-command -->")[0]
    assert f"--seed {STUDY_SEED}" in one_liner  # the seed the text names, stated in the command itself
    intro = readme.split("## Two commands")[1].split("<!-- main-command -->")[0]
    assert f"seed {STUDY_SEED}" in intro and f"paper_mlp({STUDY_SEED}" in readme

"""Finding 6 of the soundness issue: bad input is an InputError (CLI exit 2) naming the value, before any work;
nothing is silently read as something else."""

from __future__ import annotations

import json
import math
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.cli import main
from dtd_formal.errors import InputError
from dtd_formal.exact import MAX_BITS, to_float, to_fraction
from dtd_formal.rules import ZPlus


def _net_json(**changes: object) -> dict:
    data = dtd.Network([[[1, -1]], [[1]]], [[F(-1, 2)], [0]]).to_json()
    data.update(changes)
    return data


def _write(tmp_path: Path, data: object, name: str = "net.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_json_booleans_and_objects_are_strict(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"net\.json.*final_relu.*JSON boolean"):
        dtd.load(_write(tmp_path, _net_json(final_relu="false")))
    with pytest.raises(InputError, match="metadata"):
        dtd.load(_write(tmp_path, _net_json(metadata="a string")))
    with pytest.raises(InputError, match="metadata must be a dict"):
        dtd.Network([[[1]]], [[0]], metadata="a string")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="final_relu must be True or False"):
        dtd.Network([[[1]]], [[0]], final_relu="no")  # type: ignore[arg-type]
    bad_layer = _net_json()
    bad_layer["layers"][0]["weight"] = "1,2"
    with pytest.raises(InputError, match="layer 1"):
        dtd.load(_write(tmp_path, bad_layer))
    assert dtd.load(_write(tmp_path, _net_json(final_relu=True))).final_relu is True


def test_numbers_are_bounded_and_named(tmp_path: Path) -> None:
    data = _net_json()
    data["layers"][0]["bias"] = ["1e99999999"]  # Fraction would build a 10^99999999 integer: a hang
    with pytest.raises(InputError, match="exponent 99999999"):
        dtd.load(_write(tmp_path, data))
    data["layers"][0]["bias"] = ["1" * 20000]
    with pytest.raises(InputError, match="digits"):
        dtd.load(_write(tmp_path, data))
    with pytest.raises(InputError, match="bits"):
        to_fraction(2 ** (MAX_BITS + 1))
    assert to_fraction("1e-3") == F(1, 1000) and to_fraction(" 3/7 ") == F(3, 7)
    with pytest.raises(InputError, match="is not a number"):
        dtd.rules.parse_rule("gamma:1e99999")


def test_a_huge_integer_weight_stays_exact_and_overflows_floats_to_inf() -> None:
    """10^400 is an exact rational but beyond float64: the float view is inf (no OverflowError), the certified
    filter falls back to exact arithmetic, and the exact verdicts equal the textbook twin's."""
    big = 10**400
    net = dtd.Network([[[1], [big]], [[1, 1]]], [[F(-1, 2), -big], [0]])
    assert math.isinf(to_float(np.array([F(big)], dtype=object))[0])
    x = [F(3, 4)]
    rep = dtd.root_regions(net, x, ZPlus(), layers=1)
    from dtd_formal.regions import classify_root_reference

    for r in rep.records:
        assert (r.leaves_pattern, r.leaves_affine_map) == classify_root_reference(net, x, 1, r.neuron, r.root)


def test_timeouts_must_be_positive_and_finite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _write(tmp_path, _net_json())
    for bad in ("nan", "0", "-1", "inf"):
        assert main(["counterexample", model, "--domain", "0:1", "--timeout", bad]) == 2
        assert bad in capsys.readouterr().err
    assert main(["check-rule", "zplus", "--solver-timeout", "0"]) == 2
    net = dtd.load(model)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="timeout"):
            dtd.find_root_exit(net, ZPlus(), layer=1, domain=(0, 1), timeout=bad)
        with pytest.raises(InputError, match="timeout"):
            dtd.find_violation(net, ZPlus(), "conservation", domain=(0, 1), timeout=bad)


def test_cli_errors_name_the_value_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    model = _write(tmp_path, _net_json())
    for text in ("", ","):
        assert main(["roots", model, "--input", text, "--rule", "zplus"]) == 2
        assert "--input" in capsys.readouterr().err
    assert main(["roots", "example:paper-mlp:abc", "--input", "1", "--rule", "zplus"]) == 2
    assert "'abc'" in capsys.readouterr().err
    assert main(["roots", "example:paper-mlp:5:bogus", "--input", "1", "--rule", "zplus"]) == 2
    assert "bogus" in capsys.readouterr().err
    # --save-tests into a missing folder: refused before the search starts (the search would raise here)
    import dtd_formal.smt.root_exit as root_exit

    def no_search(*a: object, **k: object) -> None:
        raise AssertionError("the search started")

    monkeypatch.setattr(root_exit, "find_root_exit", no_search)
    assert main(["counterexample", model, "--domain", "0:1", "--save-tests", str(tmp_path / "missing" / "t.py")]) == 2
    assert "does not exist" in capsys.readouterr().err

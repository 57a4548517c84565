"""Tamper fuzz: a single-digit edit anywhere in a saved verdict, report or counterexample is rejected by replay,
unless it falls in a field replay does not read (listed in ``dtd_formal.replay.UNCHECKED_VERDICT_FIELDS`` and
below), where the replay must still confirm the file."""

from __future__ import annotations

import json
import random
import re
from fractions import Fraction as F
from typing import Any, Iterator

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.commands.counterexample import report_json
from dtd_formal.errors import InputError
from dtd_formal.replay import UNCHECKED_VERDICT_FIELDS, replay_data
from dtd_formal.rules import LRP0, ZPlus
from dtd_formal.testing.counterexample import Counterexample

#: fields not read by replay, per format: provenance for people (UNCHECKED_VERDICT_FIELDS for verdicts; the
#: summary's "model" path of a report; the seed, found_by and human repr of a property counterexample)
NOT_READ = set(UNCHECKED_VERDICT_FIELDS) | {"model", "seed", "repr", "spec"}

EXIT_NET = dtd.Network([[[1, 1], [1, 0]], [[1, 1]]], [[F(-1, 2), F(-1, 2)], [0]])
SAFE_NET = dtd.Network([[[1], [1]], [[1, 1]]], [[F(-1, 4), F(1, 2)], [0]])
NEG_BIAS = dtd.Network([[[1, -1], [1, 1]], [[1, 1]]], [[F(-1, 2), F(-1, 4)], [0]])
POS_BIAS = dtd.Network([[[1, -1], [1, 1]], [[1, 1]]], [[F(1, 2), F(-1, 4)], [0]])


def _files() -> dict[str, dict[str, Any]]:
    def verdict(v: Any, net: dtd.Network) -> dict[str, Any]:
        return json.loads(json.dumps(v.attach(v.question, net).to_json()))

    out = {
        "refuted root exit": verdict(dtd.find_root_exit(EXIT_NET, ZPlus(), layer=1, neuron=0, domain=(0, 1),
                                                        timeout=10), EXIT_NET),
        "relaxation proof": verdict(dtd.find_root_exit(SAFE_NET, ZPlus(), layer=1, neuron=0, domain=(0, 1),
                                                       timeout=10, engines=("relax",)), SAFE_NET),
        "z3 proof": verdict(dtd.find_root_exit(SAFE_NET, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=10,
                                               engines=("z3",)), SAFE_NET),
        "refuted violation": verdict(dtd.find_violation(POS_BIAS, ZPlus(), "conservation", domain=(0, 1),
                                                        timeout=10), POS_BIAS),
        "proved violation": verdict(dtd.find_violation(NEG_BIAS, LRP0(bias="zennit"), "equals-gradient-x-input",
                                                       domain=(0, 1), timeout=10), NEG_BIAS),
    }
    per = dtd.find_root_exit(EXIT_NET, ZPlus(), layer=1, domain=(0, 1), timeout=10).per_neuron
    out["report"] = json.loads(json.dumps(report_json(EXIT_NET, per, {
        "model": "net.json", "rule": "zplus", "layer": 1, "scope": "upper", "variant": "pattern",
        "definition": "true", "counts": {s: sum(v.status == s for v in per.values()) for s in
                                         ("refuted", "proved", "unknown")}})))
    cex = Counterexample("conservation", ZPlus(), POS_BIAS, np.array([F(0), F(1, 3)], dtype=object), 0,
                         dtd.rules.NonNegative())
    o = cex.replay()
    cex.values, cex.message = o.values, o.message
    out["property counterexample"] = json.loads(json.dumps(cex.to_json()))
    assert {k: v["status"] for k, v in out.items() if "status" in v} == {
        "refuted root exit": "refuted", "relaxation proof": "proved", "z3 proof": "proved",
        "refuted violation": "refuted", "proved violation": "proved"}
    return out


FILES = _files()


def _leaves(obj: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, value) of every number or string leaf that contains a digit (bools excluded)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    elif not isinstance(obj, bool) and isinstance(obj, (int, float, str)) and re.search(r"\d", str(obj)):
        yield path, obj


def _edit(data: Any, path: tuple, rng: random.Random) -> Any:
    """A copy of ``data`` with one digit of the leaf at ``path`` changed to another digit (type kept)."""
    out = json.loads(json.dumps(data))
    node = out
    for k in path[:-1]:
        node = node[k]
    value = node[path[-1]]
    text = str(value) if not isinstance(value, str) else value
    digits = [m.start() for m in re.finditer(r"\d", text)]
    p = rng.choice(digits)
    text = text[:p] + str((int(text[p]) + 1 + rng.randrange(8)) % 10) + text[p + 1:]
    if isinstance(value, str):
        node[path[-1]] = text
    else:
        try:
            node[path[-1]] = type(value)(text)
        except ValueError:
            return None
    return out


def _replays(data: Any) -> bool:
    try:
        return replay_data(data, timeout=20).ok
    except InputError:
        return False


@pytest.mark.parametrize("name", list(FILES))
def test_unedited_files_replay(name: str) -> None:
    assert _replays(FILES[name]), name


@pytest.mark.parametrize("name", list(FILES))
def test_single_digit_edits_are_rejected(name: str) -> None:
    data = FILES[name]
    leaves = list(_leaves(data))
    rng = random.Random(name)
    # every field name at least once, then a seeded sample spread over the file
    chosen: dict[Any, tuple] = {}
    for path, _ in leaves:
        chosen.setdefault(next((k for k in reversed(path) if isinstance(k, str)), ""), path)
    sample = list(chosen.values()) + [p for p, _ in rng.sample(leaves, min(30, len(leaves)))]
    not_read = set()
    for path in sample:
        edited = _edit(data, path, rng)
        if edited is None:
            continue
        unread = [k for k in path if k in NOT_READ]
        if unread:
            not_read.add(unread[0])
            assert _replays(edited), f"{name}: an edit of the unread field {path} changed the verdict"
            continue
        assert not _replays(edited), f"{name}: the edit of {path} was accepted"
    assert not_read <= NOT_READ


CLAIMS = ["zplus_is_alpha1_beta0", "taylor_crossing_remainder", "softplus_has_no_root", "train_free_roots_unconstrained",
          "lrp0_equals_gradient_x_input"]


@pytest.mark.parametrize("claim", CLAIMS)
def test_single_digit_edits_of_claim_certificates_are_rejected(claim: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Claim certificates are re-derived by re-running the proof: every edit outside the timings and versions
    (``symbolic.registry.UNCHECKED_FIELDS``) is rejected."""
    from dtd_formal.replay import replay_file
    from dtd_formal.symbolic.registry import UNCHECKED_FIELDS, run_claim

    path = run_claim(claim, out=tmp_path, fast=True).certificate
    data = json.loads(open(path).read())
    assert replay_file(path).ok
    leaves = list(_leaves(data))
    rng = random.Random(claim)
    chosen: dict[Any, tuple] = {}
    for p, _ in leaves:
        chosen.setdefault(next((k for k in reversed(p) if isinstance(k, str)), ""), p)
    sample = list(chosen.values()) + [p for p, _ in rng.sample(leaves, min(12, len(leaves)))]
    for p in sample:
        edited = _edit(data, p, rng)
        if edited is None:
            continue
        target = tmp_path / "edited.json"
        target.write_text(json.dumps(edited))
        try:
            ok = replay_file(target).ok
        except InputError:
            ok = False
        if any(k in UNCHECKED_FIELDS for k in p):
            assert ok, f"{claim}: an edit of the unread field {p} changed the verdict"
        else:
            assert not ok, f"{claim}: the edit of {p} was accepted"

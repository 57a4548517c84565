"""Root-exit search on ACAS Xu and on the paper MLP's paper-code roots (issue 15, item 3).

    python benchmarks/bench_root_exit_acas.py layer2       # ACAS Xu 1_1, z+, layer 2, all 50 neurons, .nnet box
    python benchmarks/bench_root_exit_acas.py paper-code   # paper MLP (seed 5, paper-text), layer 1, paper-code roots
    python benchmarks/bench_root_exit_acas.py all-layers   # ACAS Xu 1_1, z+, layers 1..6 (300 neurons), time per layer
    python benchmarks/bench_root_exit_acas.py layer2 --profile   # also cProfile the slowest query (stderr)

Options: ``--timeout S`` (seconds per neuron, default 10, as in ``bench_root_exit.py acas``), ``--layers 1,2``
(all-layers only), ``--per-neuron`` (one JSON line per neuron; Unknowns are always printed).

Every query is ``dtd.find_root_exit(net, ZPlus(), layer=l, neuron=j, domain=box, timeout=S)`` (the function behind
``dtd-formal counterexample``), one neuron at a time in this process. ACAS Xu is
``../shared/data/ACASXU_experimental_v2a_1_1.onnx`` on the input box recorded in the .nnet header (normalised
units), the same setting as ``bench_root_exit.py acas``.

For each Unknown the verdict's reason is printed whole and split by engine (the pipeline's notes:
"falsify: ..." (the best the search reached), "relax: ...", "lp: ...", "slice: ..." or "lp/slice: ...",
"z3: ..."). The
benchmark also times each engine per query by wrapping the engine functions in its own process (the package is
unchanged): falsify (``smt.falsify.falsify``), relax (``smt.relax.prove_by_relaxation``), lp
(``smt.lp.lp_slice_search`` and the float samples it starts from), slice (``smt.encode.solve_root_exit`` with t
fixed), z3 (``root_exit._z3_engine``: body-agreement probe + whole-net query) and replay (exact re-derivation of a
counterexample, ``RootExitCounterexample.build`` / ``check``). One run per figure.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import dtd_formal as dtd
from profiling import print_profile
import dtd_formal.smt.counterexample as _cexmod
import dtd_formal.smt.encode as _encode
import dtd_formal.smt.falsify as _falsify
import dtd_formal.smt.lp as _lp
import dtd_formal.smt.relax as _relax
import dtd_formal.smt.root_exit as _root_exit
from dtd_formal.rules import ZPlus

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
COMMAND = "python benchmarks/bench_root_exit_acas.py " + " ".join(sys.argv[1:])

# ------------------------------------------------------------------ per-engine timers (this process only)
ENGINE_S: dict[str, float] = {}
_ACTIVE: list[str] = []


def _timed(key: str, fn: Any) -> Any:
    def wrapper(*a: Any, **k: Any) -> Any:
        # solve_root_exit is the slice engine, except inside the z3 engine; nested timers count once
        name = "z3" if key == "slice" and "z3" in _ACTIVE else key
        outer = name not in _ACTIVE
        _ACTIVE.append(name)
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            _ACTIVE.pop()
            if outer:
                ENGINE_S[name] = ENGINE_S.get(name, 0.0) + time.perf_counter() - t0
    return wrapper


_falsify.falsify = _timed("falsify", _falsify.falsify)
_relax.prove_by_relaxation = _timed("relax", _relax.prove_by_relaxation)
_lp.lp_slice_search = _timed("lp", _lp.lp_slice_search)
_root_exit._best_points = _timed("lp", _root_exit._best_points)
_encode.solve_root_exit = _timed("slice", _encode.solve_root_exit)
_root_exit._z3_engine = _timed("z3", _root_exit._z3_engine)
_C = _cexmod.RootExitCounterexample
_C.check = _timed("replay", _C.check)  # type: ignore[method-assign]
_C.build = classmethod(_timed("replay", _C.build.__func__))  # type: ignore[method-assign]

_NOTE = re.compile(r"; (?=(?:falsify|relax|lp|slice|z3)[ :/])")  # the engines' notes, joined with "; "


def engine_notes(reason: str) -> dict[str, str]:
    """The Unknown's reason split into {engine: note} (the pipeline joins its engines' notes with '; ')."""
    out: dict[str, str] = {}
    for part in _NOTE.split(reason):
        m = re.match(r"([a-z0-9/]+)( stepped aside| maps)?:\s*(.*)", part, re.S)
        key, note = (m.group(1) + (m.group(2) or ""), m.group(3)) if m else ("?", part)
        out[key] = note
    return out


def solve_layer(net: dtd.Network, layer: int, box: Any, timeout: float, per_neuron: bool, tag: str,
                **kwargs: Any) -> dict[str, Any]:
    n = net.weight(layer).shape[0]
    counts = {"proved": 0, "refuted": 0, "unknown": 0}
    methods: dict[str, int] = {}
    engines_total: dict[str, float] = {}
    times = []
    unknown_engines: dict[str, int] = {}
    t_layer = time.perf_counter()
    for j in range(n):
        ENGINE_S.clear()
        t0 = time.perf_counter()
        v = dtd.find_root_exit(net, ZPlus(), layer=layer, neuron=j, domain=box, timeout=timeout, **kwargs)
        dt = time.perf_counter() - t0
        times.append(dt)
        counts[v.status] += 1
        method = getattr(v, "method", "") or v.status
        methods[method] = methods.get(method, 0) + 1
        for k, s in ENGINE_S.items():
            engines_total[k] = engines_total.get(k, 0.0) + s
        row: dict[str, Any] = {"bench": tag, "layer": layer, "neuron": j, "status": v.status, "method": method,
                               "seconds": round(dt, 2), "engine_s": {k: round(s, 2) for k, s in ENGINE_S.items()}}
        if v.status == "unknown":
            notes = engine_notes(v.reason)
            row["reason"] = v.reason
            row["by_engine"] = notes
            for k in notes:
                unknown_engines[k] = unknown_engines.get(k, 0) + 1
        if per_neuron or v.status == "unknown":
            print(json.dumps(row), flush=True)
        SLOWEST.append((dt, tag, net, layer, j, box, timeout, kwargs))
    total = time.perf_counter() - t_layer
    out = {"bench": tag, "layer": layer, "neurons": n, **counts, "seconds": round(total, 1),
           "max_neuron_s": round(max(times), 2), "over_timeout": sum(t > timeout for t in times),
           "timeout_s": timeout, "methods": methods,
           "engine_s": {k: round(s, 1) for k, s in sorted(engines_total.items())}}
    if unknown_engines:
        out["unknown_notes_by_engine"] = unknown_engines
    print(json.dumps(out), flush=True)
    return out


SLOWEST: list[tuple] = []


def acas() -> tuple[dtd.Network, tuple]:
    path = SHARED / "ACASXU_experimental_v2a_1_1.onnx"
    net = dtd.load(str(path))
    box = tuple(dtd.load(str(path.with_suffix(".nnet"))).metadata["input_domain"])
    return net, box


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=("layer2", "paper-code", "all-layers"))
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per neuron (default 10)")
    ap.add_argument("--layers", default="1,2,3,4,5,6", help="all-layers: the layers to run")
    ap.add_argument("--per-neuron", action="store_true", help="one JSON line per neuron")
    ap.add_argument("--profile", action="store_true", help="cProfile the slowest query (stderr)")
    args = ap.parse_args()
    print(json.dumps({"command": COMMAND}), flush=True)
    t0 = time.perf_counter()
    if args.which == "layer2":
        net, box = acas()
        solve_layer(net, 2, box, args.timeout, args.per_neuron, "acas layer 2")
    elif args.which == "paper-code":
        net = dtd.examples.paper_mlp(dtd.examples.STUDY_SEED, "paper-text")
        solve_layer(net, 1, (0, 1), args.timeout, args.per_neuron, "paper MLP paper-code", definition="paper-code")
    else:
        net, box = acas()
        rows = [solve_layer(net, l, box, args.timeout, args.per_neuron, f"acas layer {l}")
                for l in (int(s) for s in args.layers.split(","))]
        tot = {k: sum(r[k] for r in rows) for k in ("neurons", "proved", "refuted", "unknown")}
        print(json.dumps({"bench": "acas all layers", **tot, "seconds": round(sum(r["seconds"] for r in rows), 1),
                          "per_layer_s": {r["layer"]: r["seconds"] for r in rows}}), flush=True)
    print(json.dumps({"total_s": round(time.perf_counter() - t0, 1)}), flush=True)
    if args.profile and SLOWEST:
        dt, tag, net, layer, j, box, timeout, kwargs = max(SLOWEST, key=lambda s: s[0])
        pr = cProfile.Profile()
        t1 = time.perf_counter()
        pr.enable()
        v = dtd.find_root_exit(net, ZPlus(), layer=layer, neuron=j, domain=box, timeout=timeout, **kwargs)
        pr.disable()
        print(json.dumps({"profile": tag, "layer": layer, "neuron": j, "status": v.status,
                          "seconds": round(time.perf_counter() - t1, 2), "first_run_s": round(dt, 2)}), flush=True)
        print_profile(pr, 40, 25)


if __name__ == "__main__":
    main()

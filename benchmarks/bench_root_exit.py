"""Benchmarks of the counterexample engine (figures for BENCHMARKS.md).

    python benchmarks/bench_root_exit.py paper      # paper MLP, z+, [0,1]^10, all layer-1 neurons (pipeline)
    python benchmarks/bench_root_exit.py baseline   # the same with the naive Z3 encoding (t free), 60 s per neuron
    python benchmarks/bench_root_exit.py lp         # region-fixed exact LP, 32-256-256-1 (feasible + infeasible)
    python benchmarks/bench_root_exit.py safe       # proof of absence on the constructed 4-4-3-1 safe net
    python benchmarks/bench_root_exit.py acas       # ACAS Xu, z+, layer 2, all 50 neurons over the input box
    python benchmarks/bench_root_exit.py tbranch    # relaxation proofs: branching on t + box versus box only
    python benchmarks/bench_root_exit.py paper-code # paper MLP, layer 1, with the paper-code root step
    python benchmarks/bench_root_exit.py paper-map  # paper MLP, layer 1, variant "affine_map"

Each prints one line per item and a total; timings are wall-clock seconds on this machine.
"""

from __future__ import annotations

import sys
import time
from fractions import Fraction as F
from pathlib import Path
from typing import Any

import numpy as np
import z3

import dtd_formal as dtd
from dtd_formal.rules import ZPlus
from dtd_formal.smt.encode import root_exit_solver
from dtd_formal.smt.lp import certified_region_lp
from dtd_formal.smt.problem import RootExitProblem, parse_box

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def timed_search(net: dtd.Network, layer: int, **kwargs: Any) -> tuple[Any, dict[str, int], float]:
    """``find_root_exit`` with z+ on one layer: (verdict, neuron count per status, seconds)."""
    t0 = time.perf_counter()
    v = dtd.find_root_exit(net, ZPlus(), layer=layer, **kwargs)
    total = time.perf_counter() - t0
    counts = {s: sum(w.status == s for w in v.per_neuron.values()) for s in ("refuted", "proved", "unknown")}
    return v, counts, total


def paper() -> None:
    net = dtd.examples.paper_mlp(dtd.examples.STUDY_SEED, "paper-text")
    v, counts, total = timed_search(net, 1, domain=(0, 1), timeout=30)
    for j, w in v.per_neuron.items():
        print(f"neuron {j}: {w.status} ({getattr(w, 'method', '') or getattr(w, 'reason', '')})")
    print(f"paper MLP layer 1 (pipeline): {counts}, total {total:.2f} s")


def baseline(per_neuron: float = 60.0) -> None:
    net = dtd.examples.paper_mlp(dtd.examples.STUDY_SEED, "paper-text")
    low, high = parse_box((0, 1), net.input_size)
    total = 0.0
    counts = {"sat": 0, "unsat": 0, "unknown": 0}
    for j in range(net.weight(1).shape[0]):
        P = RootExitProblem(net, ZPlus(), 1, j, low, high)
        s, *_ = root_exit_solver(P, use_bounds=False)
        s.set("timeout", int(per_neuron * 1000))
        t0 = time.perf_counter()
        r = s.check()
        dt = time.perf_counter() - t0
        total += dt
        key = "sat" if r == z3.sat else "unsat" if r == z3.unsat else "unknown"
        counts[key] += 1
        print(f"neuron {j}: naive z3 {key} in {dt:.1f} s", flush=True)
    print(f"paper MLP layer 1 (naive Z3, t free, {per_neuron:.0f} s per neuron): {counts}, total {total:.1f} s")


def _random_net(seed: int = 0) -> dtd.Network:
    rng = np.random.default_rng(seed)
    sizes = (32, 256, 256, 1)
    Ws = [(rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [(rng.standard_normal(o) * 0.1).astype(np.float32) for o in sizes[1:]]
    return dtd.Network(Ws, bs)


def lp() -> None:
    net = _random_net()
    x0 = np.random.default_rng(1).random(32)
    pat = net.pattern(x0)
    net.integer_layers, net.fast_layers, net.to_float()  # warm the caches (built once per network)
    out = sum(net.layer_sizes[:-1])
    for label, extra in (("feasible (closed region of x0)", None),
                         ("infeasible (region and f >= f(x0) + 10)", [({out: F(-1)}, -(net.forward(x0)[0] + 10), "<=")])):
        t0 = time.perf_counter()
        res = certified_region_lp(net, pat, 0, 1, extra=extra)
        dt = time.perf_counter() - t0
        print(f"LP 32-256-256-1 ({net.n_relus} ReLUs), {label}: {res.status} ({res.certificate.get('method', res.reason)}) "
              f"in {dt:.3f} s")


def safe() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_smt_root_exit import mixed_safe_net, safe_net  # the constructed nets of the test-suite

    for name, net in (("4-4-3-1 safe net", safe_net()), ("4-2-2-1 mixed-sign safe net", mixed_safe_net())):
        for engines in (("relax",), ("z3",)):
            t0 = time.perf_counter()
            v = dtd.find_root_exit(net, ZPlus(), layer=1, domain=(0, 1), timeout=60, engines=engines)
            print(f"{name}, engine {engines[0]}: {v.status} for all layer-1 neurons in {time.perf_counter() - t0:.2f} s")


def tbranch() -> None:
    """Branching on t versus input-box branching alone: nodes and time of the relaxation proof (exact, re-checked)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_smt_root_exit import _random_net, _wedge_problem

    from dtd_formal.smt.relax import check_certificate, prove_by_relaxation

    problems = [(f"wedge net, {n} inputs (neuron 0)", _wedge_problem(n)) for n in (2, 4, 6, 8)]
    for seed, j in ((3, 1), (3, 2), (6, 1), (6, 2)):
        net = _random_net(seed, (3, 3, 2, 1))
        problems.append((f"random 3-3-2-1 net (seed {seed}), neuron {j}",
                         RootExitProblem(net, ZPlus(), 1, j, *parse_box((0, 1), 3))))
    for name, P in problems:
        for use_lp in (False, True):
            row = []
            for branch in ("box", "both"):
                t0 = time.perf_counter()
                r = prove_by_relaxation(P, time.monotonic() + 60, use_lp=use_lp, branch=branch)
                dt = time.perf_counter() - t0
                ok = r.status == "proved" and check_certificate(P, r.tree, branch)
                row.append(f"{branch}: {r.status}{' (re-checked)' if ok else ''}, {r.boxes} nodes "
                           f"({r.t_splits} t-splits), {dt:.3f} s")
            print(f"{name}, {'interval + LP' if use_lp else 'interval only'}: " + "; ".join(row))


def paper_code(per_neuron: float = 10.0) -> None:
    """Paper MLP, z+, [0,1]^10, layer 1, with the authors' root step t = R_j / (w_j . v_j)."""
    net = dtd.examples.paper_mlp(dtd.examples.STUDY_SEED, "paper-text")
    _, counts, total = timed_search(net, 1, domain=(0, 1), timeout=per_neuron, definition="paper-code")
    print(f"paper MLP layer 1, paper-code roots ({per_neuron:.0f} s per neuron): {counts}, total {total:.2f} s")


def paper_map(per_neuron: float = 10.0) -> None:
    """Paper MLP, z+, [0,1]^10, layer 1, variant "affine_map" (the exact affine map of f_0 changes)."""
    net = dtd.examples.paper_mlp(dtd.examples.STUDY_SEED, "paper-text")
    _, counts, total = timed_search(net, 1, domain=(0, 1), timeout=per_neuron, variant="affine_map")
    print(f"paper MLP layer 1, affine_map variant ({per_neuron:.0f} s per neuron): {counts}, total {total:.2f} s")


def acas(per_neuron: float = 10.0) -> None:
    path = SHARED / "ACASXU_experimental_v2a_1_1.onnx"
    net = dtd.load(str(path))
    box = dtd.load(str(path.with_suffix(".nnet"))).metadata["input_domain"]
    v, counts, total = timed_search(net, 2, domain=tuple(box), timeout=per_neuron, progress=True)
    methods: dict[str, int] = {}
    for w in v.per_neuron.values():
        key = getattr(w, "method", "") or "unknown"
        methods[key] = methods.get(key, 0) + 1
    print(f"ACAS Xu layer 2 (z+, {per_neuron:.0f} s per neuron): {counts}, by method {methods}, total {total:.1f} s")


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    jobs = {"paper": paper, "baseline": baseline, "lp": lp, "safe": safe, "acas": acas, "tbranch": tbranch,
            "paper-code": paper_code, "paper-map": paper_map}
    for name in ([which] if which != "all" else ["lp", "safe", "paper"]):
        jobs[name]()

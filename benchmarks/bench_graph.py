"""Exact engine on the shared conv nets (issue 13): z+ relevance of one CIFAR input, root regions of layer-1
roots (certified float pass with exact fall-back, and the exact-only path for comparison), and find_root_exit on
one conv neuron of conv_mp1 over a small box; ``--violations``: find_violation's Z3 decision on small conv graphs.

    python benchmarks/bench_graph.py [--data ../shared/data] [--roots 200] [--quick] [--memory] [--violations]
    python benchmarks/bench_graph.py --relevance-only --repeats 3

Prints one JSON object per measurement (seconds, roots/s, verdict counts).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse  # noqa: F401 - imported once per process; timed runs measure the work, not imports

import dtd_formal as dtd
from dtd_formal.rules.parse import parse_rule


def _input(net, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.random.default_rng(seed).uniform(0, 1, net.input_size).astype(np.float32).astype(np.float64)


def bench_relevance(data: Path) -> None:
    net = dtd.load(data / "cifar_deep_kw.onnx")
    x = _input(net, 0)
    t0, c0 = time.perf_counter(), time.process_time()
    rel = dtd.lrp(net, x, parse_rule("zplus"))
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    bits = max(int(v.denominator).bit_length() for v in rel.input)
    t1 = time.perf_counter()
    totals = rel.conservation
    dt_totals = time.perf_counter() - t1
    reductions = _timed_reductions(net, x)
    print(json.dumps({"bench": "cifar exact z+ relevance", "seconds": round(dt, 2),
                      "cpu_seconds": round(cpu, 2), "load_average": os.getloadavg()[0],
                      "largest input-relevance denominator (bits)": bits,
                      "conservation totals, first access (s)": round(dt_totals, 2),
                      "layer-1 relevance absorbed (bias), exact, as float": float(totals[0].absorbed),
                      **reductions}))


def _timed_reductions(net, x: np.ndarray) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """A second run of the same relevance with the exact conv sums' reductions timed: each output of a transposed
    convolution is built once as a canonical rational from its integer sum over its least common denominator
    (``ops.rational(total, L * D)`` inside ``dtd_formal.graph.operators._exact_scatter_dot``: one gcd of two
    ~40k-bit integers), the part of the relevance that any canonical exact answer pays. The wrappers time those
    calls only (rationals built elsewhere, e.g. by the forward pass, are not counted)."""
    import dtd_formal.graph.operators as operators
    from dtd_formal.rules.ops import FAST_EXACT

    build, scatter = FAST_EXACT.rational, operators._exact_scatter_dot
    spent = {"calls": 0, "seconds": 0.0, "inside": False}

    def timed(*args):  # type: ignore[no-untyped-def]
        if not spent["inside"]:
            return build(*args)
        t = time.perf_counter()
        out = build(*args)
        spent["seconds"] += time.perf_counter() - t
        spent["calls"] += 1
        return out

    def scatter_marked(*args):  # type: ignore[no-untyped-def]
        spent["inside"] = True
        try:
            return scatter(*args)
        finally:
            spent["inside"] = False

    FAST_EXACT.rational, operators._exact_scatter_dot = timed, scatter_marked
    try:
        t0 = time.perf_counter()
        dtd.lrp(net, x, parse_rule("zplus"))
        total = time.perf_counter() - t0
    finally:
        FAST_EXACT.rational, operators._exact_scatter_dot = build, scatter
    return {"second run (s)": round(total, 2), "canonical reductions of conv sums": spent["calls"],
            "their seconds": round(spent["seconds"], 2)}


def bench_regions(data: Path, name: str, n_roots: int, exact_too: bool) -> None:
    import dtd_formal.graph.explain as graph_explain

    net = dtd.load(data / name)
    x = _input(net, 1)
    rule = parse_rule("zplus")
    z1 = net.layer_values(net.values(x), 1)[1]
    active = [j for j in range(len(z1)) if z1[j] > 0][:n_roots or None]  # 0: every relevant root
    t0 = time.perf_counter()
    rep = dtd.root_regions(net, x, rule, layers=1, neurons=active)
    dt = time.perf_counter() - t0
    out = {"bench": f"{name} layer-1 root regions", "roots": len(rep.records), "seconds": round(dt, 2),
           "roots/s": round(len(rep.records) / dt, 1),
           "leave pattern": sum(r.leaves_pattern for r in rep.records),
           "leave affine map": sum(r.leaves_affine_map for r in rep.records)}
    if exact_too:
        original = graph_explain.certified_graph_forward

        def never(*a, **k):  # type: ignore[no-untyped-def]
            c = original(*a, **k)
            c.uncertain[:] = True
            return c

        graph_explain.certified_graph_forward = never
        try:
            t0 = time.perf_counter()
            rep2 = dtd.root_regions(net, x, rule, layers=1, neurons=active)
            dt2 = time.perf_counter() - t0
        finally:
            graph_explain.certified_graph_forward = original
        same = [(r.neuron, r.leaves_pattern, r.leaves_affine_map) for r in rep.records] == [
            (r.neuron, r.leaves_pattern, r.leaves_affine_map) for r in rep2.records]
        out.update({"exact-only seconds": round(dt2, 2), "exact-only roots/s": round(len(rep2.records) / dt2, 1),
                    "same verdicts": same})
    print(json.dumps(out))


def bench_root_exit(data: Path) -> None:
    net = dtd.load(data / "conv_mp1.onnx")
    x = _input(net, 2)
    rule = parse_rule("zplus")
    z1 = net.layer_values(net.values(x), 1)[1]
    j = next(j for j in range(len(z1)) if z1[j] > 0)
    box = (np.maximum(x - 0.01, 0.0), np.minimum(x + 0.01, 1.0))
    t0 = time.perf_counter()
    verdict = dtd.find_root_exit(net, rule, layer=1, neuron=j, domain=box, timeout=60)
    dt = time.perf_counter() - t0
    print(json.dumps({"bench": "conv_mp1 find_root_exit, one conv neuron, box radius 0.01",
                      "neuron": list(net.neuron_coords(1, j)), "status": verdict.status, "seconds": round(dt, 2),
                      "reason": getattr(verdict, "reason", None)}))


def bench_violations(timeout: float = 20.0) -> None:
    """``find_violation`` on small conv graphs built from torch (seed 0, float32 weights read exactly), box [0, 1]:
    the Z3 decision on the graph walk after sampling (issue 13)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    nets = {
        "Conv2d(1,2,2) on 1x3x3, ReLU, Linear(8,2)":
            (nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)), (1, 3, 3)),
        "Conv2d(1,3,2), ReLU, Conv2d(3,3,2), ReLU, Linear(12,2) on 1x4x4":
            (nn.Sequential(nn.Conv2d(1, 3, 2), nn.ReLU(), nn.Conv2d(3, 3, 2), nn.ReLU(), nn.Flatten(),
                           nn.Linear(12, 2)), (1, 4, 4)),
    }
    for name, (model, shape) in nets.items():
        net = dtd.Network.from_torch(model, input_shape=shape)
        for rule, prop in (("wsquare", "conservation"), ("zplus", "conservation"), ("epsilon:0.1", "positivity")):
            t0 = time.perf_counter()
            v = dtd.find_violation(net, parse_rule(rule), prop, domain=(0, 1), timeout=timeout)
            print(json.dumps({"bench": "find_violation on a conv graph", "net": name, "rule": rule, "property": prop,
                              "status": v.status, "seconds": round(time.perf_counter() - t0, 2),
                              "how": getattr(v, "method", "") or v.reason}), flush=True)


def bench_memory(data: Path) -> None:
    """Traced Python memory of the CIFAR graph: after loading, and with its per-backend caches after root regions."""
    import pickle
    import tracemalloc

    tracemalloc.start()
    net = dtd.load(data / "cifar_deep_kw.onnx")
    loaded, load_peak = tracemalloc.get_traced_memory()
    x = _input(net, 1)
    dtd.root_regions(net, x, parse_rule("zplus"), layers=1, neurons=range(0, 2048, 20))
    cached, cache_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"bench": "cifar graph memory (tracemalloc)", "loaded MB": round(loaded / 1e6, 1),
                      "load peak MB": round(load_peak / 1e6, 1), "with caches MB": round(cached / 1e6, 1),
                      "peak MB": round(cache_peak / 1e6, 1), "pickled MB": round(len(pickle.dumps(net)) / 1e6, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--roots", type=int, default=200, help="layer-1 roots per net (0: all relevant ones)")
    ap.add_argument("--quick", action="store_true", help="skip the exact-only comparison runs")
    ap.add_argument("--memory", action="store_true", help="only the memory measurement")
    ap.add_argument("--violations", action="store_true", help="only find_violation on small conv graphs")
    ap.add_argument("--relevance-only", action="store_true", help="only the CIFAR relevance, --repeats times")
    ap.add_argument("--repeats", type=int, default=1, help="--relevance-only: runs (one JSON line each)")
    args = ap.parse_args()
    data = Path(args.data)
    if args.memory:
        bench_memory(data)
        return
    if args.violations:
        bench_violations()
        return
    for _ in range(args.repeats if args.relevance_only else 1):
        bench_relevance(data)
    if args.relevance_only:
        return
    for name in ("cifar_deep_kw.onnx", "cnn_max_mninst3.onnx", "conv_mp1.onnx"):
        bench_regions(data, name, args.roots, not args.quick)
    bench_root_exit(data)


if __name__ == "__main__":
    main()

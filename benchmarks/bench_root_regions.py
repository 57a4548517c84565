"""Benchmark: exact root-region classification of the paper's MLP (docs/theory.md, C6).

22 ReLUs (10-10-10-2, final ReLU, init "paper-text", seed STUDY_SEED), inputs x = |N(0, I)| with f_0(x) > 0.1,
every layer-1 z+ root, scope "upper". Times ``dtd.root_regions`` (the batched certified float pass with exact
fallback) against the per-input path in the same run (``regions._dense_root_regions(..., batched=False)``: gmpy2
roots per input, certified float filter, exact fallback), the repeats interleaved, and reports the median and the
best wall-clock time of each, their median CPU time (this process only: what a run costs when other processes
share the cores), the share of roots that needed exact arithmetic (:class:`dtd_formal.regions.ExactShare`) and
the load average. Checks that both paths give the same verdicts on every root and the same exact records (roots,
steps, own pre-activations) on a sample, and that the verdicts equal a plain-Fraction implementation (roots with
``dtd.roots``, each root pushed through the upper network in Fractions) on a subset; exits non-zero otherwise.

Run:  python benchmarks/bench_root_regions.py [--inputs 1000] [--baseline-inputs 100] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import asdict
from fractions import Fraction

import numpy as np

import dtd_formal as dtd
from dtd_formal import regions
from dtd_formal.examples import STUDY_SEED, paper_inputs, paper_mlp


def plain_fraction_flags(net: dtd.Network, x: np.ndarray, rule: dtd.rules.Rule) -> list[tuple[int, bool]]:
    """(neuron, leaves_pattern) for every layer-1 root, with Fractions only (scope upper, neuron j linear)."""
    out = []
    zs_in = net.preactivations(x)
    rts = dtd.roots(net, x, rule, layer=1)
    for j, root in rts.items():
        a = root
        flipped = False
        for m in range(1, net.n_layers + 1):
            z = net.weight(m).dot(a) + net.bias(m)
            for n, (zi, zr) in enumerate(zip(zs_in[m - 1], z)):
                if (m, n) != (1, j) and net.has_relu(m) and zi * zr < 0:
                    flipped = True
            keep = [zr > 0 or (m == 1 and n == j) for n, zr in enumerate(z)]
            a = np.array([zr if k else Fraction(0) for zr, k in zip(z, keep)], dtype=object)
        out.append((j, flipped))
    return out


def timing(times: list[float], cpu: list[float], n_roots: int) -> dict[str, object]:
    """Median and best of repeated runs, in wall-clock seconds and roots per second (the headline is the median),
    and the median CPU time of this process (what the run costs when other processes share the cores)."""
    med = statistics.median(times)
    return {"seconds_all": [round(t, 4) for t in times], "seconds_median": round(med, 4),
            "seconds_best": round(min(times), 4), "roots_per_second": round(n_roots / med),
            "roots_per_second_best": round(n_roots / min(times)), "ms_per_root": round(1000 * med / n_roots, 4),
            "cpu_seconds_median": round(statistics.median(cpu), 4),
            "roots_per_cpu_second": round(n_roots / statistics.median(cpu))}


def verdicts(report: regions.RootRegionReport) -> list[tuple[object, ...]]:
    return [(r.input_index, r.layer, r.neuron, r.leaves_pattern, r.leaves_affine_map, tuple(r.flipped),
             r.root_in_domain) for r in report.records]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=1000)
    ap.add_argument("--baseline-inputs", type=int, default=100, help="inputs of the plain-Fraction check")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json-sample", type=int, default=500, help="records whose exact JSON both paths must share")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    net = paper_mlp(STUDY_SEED, "paper-text")
    xs = paper_inputs(net, args.inputs, seed=0)
    rule = dtd.rules.ZPlus()
    load_before = os.getloadavg()
    fast_times, slow_times, fast_cpu, slow_cpu = [], [], [], []
    for _ in range(args.repeat):  # interleaved, so that both paths see the same machine load
        t0, c0 = time.perf_counter(), time.process_time()
        report = dtd.root_regions(net, xs, rule, scope="upper", layers=1)
        fast_times.append(time.perf_counter() - t0)
        fast_cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        slow, _ = regions._dense_root_regions(net, xs, rule, scope="upper", layers=1, batched=False)
        slow_times.append(time.perf_counter() - t0)
        slow_cpu.append(time.process_time() - c0)
    load_after = os.getloadavg()
    n_roots = len(report.records)
    _, share = regions._dense_root_regions(net, xs, rule, scope="upper", layers=1)
    assert share is not None
    same_verdicts = verdicts(report) == verdicts(slow) and report.skipped == slow.skipped
    sample = np.random.default_rng(0).choice(n_roots, size=min(args.json_sample, n_roots), replace=False)
    same_records = all(report.records[k].to_json() == slow.records[k].to_json() for k in sample.tolist())

    sub = xs[: args.baseline_inputs]
    t0 = time.perf_counter()
    plain = [plain_fraction_flags(net, x, rule) for x in sub]
    t_plain = time.perf_counter() - t0
    n_plain = sum(len(p) for p in plain)
    fast_sub = dtd.root_regions(net, sub, rule, scope="upper", layers=1)
    agree_plain = [(r.neuron, r.leaves_pattern) for r in fast_sub.records] == [f for p in plain for f in p]

    fast_t, slow_t = timing(fast_times, fast_cpu, n_roots), timing(slow_times, slow_cpu, n_roots)
    result = {
        "network": repr(net), "rule": rule.spec(), "scope": "upper", "inputs": args.inputs, "roots": n_roots,
        "repeat": args.repeat, "roots_per_second": fast_t["roots_per_second"], "batched": fast_t,
        "per_input_baseline": slow_t,
        "speedup_vs_per_input": round(statistics.median(slow_times) / statistics.median(fast_times), 1),
        "exact_share": {**asdict(share), "fraction": round(share.fraction, 5)},
        "leaves_pattern": str(report.summary[1]["leaves_pattern"]),
        "leaves_affine_map": str(report.summary[1]["leaves_affine_map"]),
        "baseline_plain_fraction": {"inputs": len(sub), "roots": n_plain, "seconds": round(t_plain, 3),
                                    "ms_per_root": round(1000 * t_plain / n_plain, 3)},
        "verdicts_agree_with_per_input": same_verdicts,
        "records_agree_with_per_input_on_sample": {"records": len(sample), "agree": same_records},
        "verdicts_agree_with_plain_fraction": agree_plain,
        "load_average_1_5_15": {"before": [round(v, 2) for v in load_before],
                                "after": [round(v, 2) for v in load_after]},
        "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    if not (same_verdicts and same_records and agree_plain):
        raise SystemExit("batched, per-input and plain-Fraction verdicts differ")


if __name__ == "__main__":
    main()

"""Benchmark: exact root-region classification of the paper's MLP (docs/theory.md, C6).

22 ReLUs (10-10-10-2, final ReLU, init "paper-text", seed STUDY_SEED), inputs x = |N(0, I)| with f_0(x) > 0.1,
every layer-1 z+ root, scope "upper". Compares ``dtd.root_regions`` (gmpy2 rationals + certified float filter with
exact fallback) against a plain-Fraction implementation (roots with ``dtd.roots``, each root pushed through the
upper network in Fractions) on a subset, checks that both give the same verdicts, and prints roots per second.

Run:  python benchmarks/bench_root_regions.py [--inputs 1000] [--baseline-inputs 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from fractions import Fraction

import numpy as np

import dtd_formal as dtd
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=1000)
    ap.add_argument("--baseline-inputs", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    net = paper_mlp(STUDY_SEED, "paper-text")
    xs = paper_inputs(net, args.inputs, seed=0)
    rule = dtd.rules.ZPlus()
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        report = dtd.root_regions(net, xs, rule, scope="upper", layers=1)
        times.append(time.perf_counter() - t0)
    n_roots = len(report.records)
    best = min(times)

    sub = xs[: args.baseline_inputs]
    t0 = time.perf_counter()
    plain = [plain_fraction_flags(net, x, rule) for x in sub]
    t_plain = time.perf_counter() - t0
    n_plain = sum(len(p) for p in plain)
    fast = dtd.root_regions(net, sub, rule, scope="upper", layers=1)
    fast_flags = [(r.neuron, r.leaves_pattern) for r in fast.records]
    agree = fast_flags == [f for p in plain for f in p]

    result = {
        "network": repr(net), "rule": rule.spec(), "scope": "upper", "inputs": args.inputs, "roots": n_roots,
        "seconds_best": round(best, 3), "seconds_all": [round(t, 3) for t in times],
        "roots_per_second": round(n_roots / best), "ms_per_root": round(1000 * best / n_roots, 4),
        "leaves_pattern": str(report.summary[1]["leaves_pattern"]),
        "leaves_affine_map": str(report.summary[1]["leaves_affine_map"]),
        "baseline_plain_fraction": {"inputs": len(sub), "roots": n_plain, "seconds": round(t_plain, 3),
                                    "ms_per_root": round(1000 * t_plain / n_plain, 3)},
        "speedup_vs_plain_fraction": round((t_plain / n_plain) / (best / n_roots), 1),
        "verdicts_agree_with_plain_fraction": agree, "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    if not agree:
        raise SystemExit("fast and plain-Fraction verdicts differ")


if __name__ == "__main__":
    main()

"""Throughput of dtd_formal.testing's hypothesis strategies: useful (non-degenerate) exact cases per second.

    python benchmarks/bench_strategies.py [--examples 2000] [--layers 2] [--seed 0]

Draws cases with hypothesis (``@given``, generation phase only, no database) for exact 2-layer ReLU networks
(input 1..3, hidden width 1..3, output 1..2) and counts degenerate cases (f_c(x) = 0 or a dead hidden layer) and
the exact zeros met on purpose (kinks z = 0, zero inputs, zero weights). For comparison it draws the same shapes
as raw float arrays (hypothesis ``arrays`` of floats in [-4, 4], inputs in [0, 4]) converted exactly. A third line
times ``check_rule(ZPlus(), ["conservation"])`` end to end (generation + exact evaluation, solver off).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dtd_formal.network import Network
from dtd_formal.rules import ZPlus
from dtd_formal.testing import NetworkSpec, cases, check_rule
from dtd_formal.testing.strategies import case_stats

SETTINGS = dict(database=None, deadline=None, phases=(Phase.generate,), suppress_health_check=list(HealthCheck))


def run_strategy(strategy: Any, n: int, seed: int, classify: Any) -> dict[str, Any]:
    counts = {"examples": 0, "degenerate": 0, "kinks": 0, "zero_inputs": 0, "zero_weights": 0}

    @hseed(seed)
    @settings(max_examples=n, **SETTINGS)
    @given(strategy)
    def body(case: Any) -> None:
        stats = classify(case)
        counts["examples"] += 1
        counts["degenerate"] += int(stats.degenerate)
        counts["kinks"] += int(stats.kinks > 0)
        counts["zero_inputs"] += int(stats.zero_inputs > 0)
        counts["zero_weights"] += int(stats.zero_weights > 0)

    t0, c0 = time.perf_counter(), time.process_time()
    body()
    counts["seconds"] = time.perf_counter() - t0
    counts["cpu_seconds"] = time.process_time() - c0
    counts["useful_per_s"] = (counts["examples"] - counts["degenerate"]) / counts["seconds"]
    counts["useful_per_cpu_s"] = (counts["examples"] - counts["degenerate"]) / counts["cpu_seconds"]
    return counts


@st.composite
def raw_float_cases(draw: Any, layers: int) -> tuple[Network, np.ndarray]:
    sizes = [draw(st.integers(1, 3)) for _ in range(layers)] + [draw(st.integers(1, 2))]
    floats = st.floats(-4, 4, allow_nan=False, allow_infinity=False)
    Ws = [draw(arrays(np.float64, (sizes[l + 1], sizes[l]), elements=floats)) for l in range(layers)]
    bs = [draw(arrays(np.float64, (sizes[l + 1],), elements=floats)) for l in range(layers)]
    x = draw(arrays(np.float64, (sizes[0],), elements=st.floats(0, 4, allow_nan=False)))
    return Network(Ws, bs), x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = NetworkSpec(n_layers=(args.layers, args.layers))

    def show(name: str, c: dict[str, Any]) -> None:
        n = c["examples"]
        print(f"{name:<30} {n:>5} examples, {c['seconds']:6.2f} s wall / {c['cpu_seconds']:6.2f} s CPU: "
              f"{c['degenerate'] / n:5.1%} degenerate, {c['useful_per_s']:5.0f} useful/s wall, "
              f"{c['useful_per_cpu_s']:5.0f} useful/CPU-s; kinks {c['kinks'] / n:.0%}, "
              f"zero inputs {c['zero_inputs'] / n:.0%}, "
              f"zero weights {c['zero_weights'] / n:.0%}")

    show(f"cases() L={args.layers}, bias any", run_strategy(cases(spec), args.examples, args.seed, lambda c: c.stats))
    spec_np = NetworkSpec(n_layers=(args.layers, args.layers), bias="nonpositive")
    show(f"cases() L={args.layers}, bias <= 0", run_strategy(cases(spec_np), args.examples, args.seed,
                                                               lambda c: c.stats))
    show(f"raw float arrays L={args.layers}", run_strategy(raw_float_cases(args.layers), args.examples, args.seed,
                                                           lambda c: case_stats(c[0], c[0].as_input(c[1]), 0)))
    n = max(args.examples // 4, 1)
    t0, c0 = time.perf_counter(), time.process_time()
    rep = check_rule(ZPlus(), ["conservation"], max_examples=n, seed=args.seed, networks=spec_np, solver=False)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    p = rep.properties[0]
    print(f"check_rule(ZPlus, conservation) L={args.layers}: {p.examples} cases ({p.degenerate} degenerate) in "
          f"{dt:.2f} s wall / {dc:.2f} s CPU = {(p.examples - p.degenerate) / dt:.0f} useful/s wall, "
          f"{(p.examples - p.degenerate) / dc:.0f} useful/CPU-s, evaluated exactly ({p.status})")
    print("(the machine is shared: wall-clock figures drop with its load; CPU-seconds are this process's own)")


if __name__ == "__main__":
    main()

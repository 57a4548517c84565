"""Throughput of dtd_formal.testing's hypothesis strategies and of check_rule: useful (non-degenerate) exact cases per second.

    python benchmarks/bench_strategies.py [--examples 2000] [--layers 2] [--seed 0] [--repeats 3]
                                          [--properties conservation,continuity | all]

Draws cases with hypothesis (``@given``, generation phase only, no database) for exact 2-layer ReLU networks
(input 1..3, hidden width 1..3, output 1..2) and counts degenerate cases (f_c(x) = 0 or a dead hidden layer) and
the exact zeros met on purpose (kinks z = 0, zero inputs, zero weights). For comparison it draws the same shapes
as raw float arrays (hypothesis ``arrays`` of floats in [-4, 4], inputs in [0, 4]) converted exactly. Then it times
``check_rule(ZPlus(), [property])`` end to end (generation + exact evaluation, solver off, ``examples / 4`` cases,
networks with b <= 0) for each property named (default: conservation; ``all``: check_rule's default list).

Every line is the median of ``--repeats`` runs (wall-clock and this process's CPU time, each run's figure listed);
the load average of the machine is printed before and after, since wall-clock figures drop with its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any, Callable

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dtd_formal.network import Network
from dtd_formal.rules import ZPlus
from dtd_formal.testing import DEFAULT_PROPERTIES, NetworkSpec, cases, check_rule
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
    return counts


def run_check_rule(prop: str, n: int, seed: int, spec: NetworkSpec) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    rep = check_rule(ZPlus(), [prop], max_examples=n, seed=seed, networks=spec, solver=False)
    p = rep.properties[0]
    return {"examples": p.examples, "degenerate": p.degenerate, "status": p.status, **p.zeros,
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}


def repeated(run: Callable[[], dict[str, Any]], repeats: int) -> dict[str, Any]:
    """The counts of the last run and the median wall / CPU seconds over ``repeats`` runs (each run listed)."""
    runs = [run() for _ in range(repeats)]
    out = dict(runs[-1])
    useful = out["examples"] - out["degenerate"]
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["cpu_seconds"] = statistics.median(r["cpu_seconds"] for r in runs)
    out["useful_per_s"] = useful / out["seconds"]
    out["useful_per_cpu_s"] = useful / out["cpu_seconds"]
    out["runs_useful_per_s"] = [round(useful / r["seconds"]) for r in runs]
    return out


@st.composite
def raw_float_cases(draw: Any, layers: int) -> tuple[Network, np.ndarray]:
    sizes = [draw(st.integers(1, 3)) for _ in range(layers)] + [draw(st.integers(1, 2))]
    floats = st.floats(-4, 4, allow_nan=False, allow_infinity=False)
    Ws = [draw(arrays(np.float64, (sizes[l + 1], sizes[l]), elements=floats)) for l in range(layers)]
    bs = [draw(arrays(np.float64, (sizes[l + 1],), elements=floats)) for l in range(layers)]
    x = draw(arrays(np.float64, (sizes[0],), elements=st.floats(0, 4, allow_nan=False)))
    return Network(Ws, bs), x


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="runs per line; the figures are their medians")
    ap.add_argument("--properties", default="conservation",
                    help="comma-separated properties timed with check_rule, or 'all' (check_rule's default list)")
    args = ap.parse_args()
    spec = NetworkSpec(n_layers=(args.layers, args.layers))
    props = list(DEFAULT_PROPERTIES) if args.properties == "all" else args.properties.split(",")
    print(f"before: {load()}; median of {args.repeats} runs per line")

    def show(name: str, c: dict[str, Any]) -> None:
        n = c["examples"]
        print(f"{name:<30} {n:>5} examples, {c['seconds']:6.2f} s wall / {c['cpu_seconds']:6.2f} s CPU: "
              f"{c['degenerate'] / n:5.1%} degenerate, {c['useful_per_s']:5.0f} useful/s wall "
              f"(runs {c['runs_useful_per_s']}), {c['useful_per_cpu_s']:5.0f} useful/CPU-s; kinks "
              f"{c['kinks'] / n:.0%}, zero inputs {c['zero_inputs'] / n:.0%}, zero weights {c['zero_weights'] / n:.0%}"
              + (f"; {c['status']}" if "status" in c else ""))

    show(f"cases() L={args.layers}, bias any",
         repeated(lambda: run_strategy(cases(spec), args.examples, args.seed, lambda c: c.stats), args.repeats))
    spec_np = NetworkSpec(n_layers=(args.layers, args.layers), bias="nonpositive")
    show(f"cases() L={args.layers}, bias <= 0",
         repeated(lambda: run_strategy(cases(spec_np), args.examples, args.seed, lambda c: c.stats), args.repeats))
    show(f"raw float arrays L={args.layers}",
         repeated(lambda: run_strategy(raw_float_cases(args.layers), args.examples, args.seed,
                                       lambda c: case_stats(c[0], c[0].as_input(c[1]), 0)), args.repeats))
    n = max(args.examples // 4, 1)
    for prop in props:
        show(f"check_rule(ZPlus, {prop}) L={args.layers}",
             repeated(lambda: run_check_rule(prop, n, args.seed, spec_np), args.repeats))
    print(f"after: {load()} (wall-clock figures drop with the load; CPU-seconds are this process's own)")


if __name__ == "__main__":
    main()

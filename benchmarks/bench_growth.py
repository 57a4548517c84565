"""Root-exit growth (issue 15, item 6): how the cost of ``find_root_exit`` grows with the unstable ReLUs of the box.

    python benchmarks/bench_growth.py                       # random nets + MNIST MLP, 10 s per neuron
    python benchmarks/bench_growth.py --widths 4,8 --depths 2 --inputs 2 --no-mnist   # a quick subset
    python benchmarks/bench_growth.py --profile             # also cProfile the slowest pipeline query (stderr)

Networks: seeded random ReLU MLPs n_in - (width x depth) - 1 (weights N(0, 1/fan_in) and biases N(0, 0.1^2),
rounded to float32 and read exactly; linear output 0 explained) on the box [0, 1]^n_in, for every
(inputs, width, depth) of the grid; and the MNIST MLP ``../shared/data/mnist2x10.onnx`` (784-10-10-10) on boxes
of growing radius around one input (the data folder holds no MNIST images, so the input is synthetic and seeded:
a 28x28 image with about 19 % of its pixels lit, explained at its top class).

Unstable ReLUs: the hidden neurons whose exact interval bounds over the box (``dtd_formal.smt.bounds.
interval_bounds``, the bounds the Z3 encoding uses to fix stable neurons) have lower < 0 < upper.

Engines, per layer-1 neuron, each under its own per-query timeout:

- ``pipeline``: ``dtd.find_root_exit(net, ZPlus(), layer=1, neuron=j, ...)``, the function behind
  ``dtd-formal counterexample`` (falsify, relaxation, LP, t-slices, Z3 when the net has <= 40 ReLUs);
- ``z3-naive``: the whole-net nonlinear Z3 query with t free and no interval bounds
  (``smt.encode.root_exit_solver(P, use_bounds=False)``, the baseline of ``bench_root_exit.py baseline``);
- ``z3-bounds``: the same query with the interval bounds fixing stable neurons (``smt.encode.solve_root_exit``, the
  encoding of the pipeline's ``z3`` engine, here without the pipeline's 40-ReLU limit).

The Z3 rows run on the first ``--z3-neurons`` layer-1 neurons (default 4) that the pipeline did not prove
trivially (a neuron with no root at all, e.g. no positive weight for z+), to bound the time; the pipeline row gives
its own time and verdicts on that subset beside its totals. A Z3 "sat" counts as Refuted only when its model
replays exactly (``RootExitCounterexample.build``), "unsat" as Proved. Both Z3 rows include building the encoding,
which Z3's own timeout does not cover.

The pipeline row also reports ``exact_replay_s``: the seconds spent re-deriving counterexamples exactly
(``RootExitCounterexample.build`` / ``check``; the benchmark wraps them with timers in its own process, the package is
unchanged), and ``textbook_twin_s``, the part of it in ``regions.classify_root_reference``.

Prints one JSON line per (network, engine): net, inputs, width, depth, relus, unstable, unstable_per_layer,
engine, neurons, proved / refuted / unknown, seconds (total), median_s / max_s per neuron, methods (the pipeline's
per-neuron method or "unknown"). One run per row (not repeated: the per-query timeouts dominate).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import z3

import dtd_formal as dtd
from profiling import print_profile
from dtd_formal.rules import ZPlus
from dtd_formal.smt.bounds import interval_bounds
from dtd_formal.smt.counterexample import RootExitCounterexample
from dtd_formal.smt.encode import root_exit_solver, solve_root_exit
from dtd_formal.smt.problem import RootExitProblem, parse_box

import dtd_formal.regions as _regions
import dtd_formal.smt.counterexample as _cexmod
import dtd_formal.smt.lp  # noqa: F401  (imports scipy.optimize: outside the timings)
import dtd_formal.smt.mccormick  # noqa: F401

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
COMMAND = "python benchmarks/bench_growth.py " + " ".join(sys.argv[1:])

# Instrumentation (this process only, the package is unchanged): seconds spent re-deriving counterexamples
# exactly (RootExitCounterexample.build / derive / check, outermost calls) and, inside that, in the textbook
# region twin (regions.classify_root_reference) that check() asks on nets with <= 64 ReLUs.
TIMERS = {"replay": 0.0, "twin": 0.0}
_DEPTH = {"replay": 0, "twin": 0}


def _timed(key: str, fn: Any) -> Any:
    def wrapper(*a: Any, **k: Any) -> Any:
        _DEPTH[key] += 1
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            _DEPTH[key] -= 1
            if _DEPTH[key] == 0:
                TIMERS[key] += time.perf_counter() - t0
    return wrapper


_C = _cexmod.RootExitCounterexample
_C.check = _timed("replay", _C.check)  # type: ignore[method-assign]
_C.build = classmethod(_timed("replay", _C.build.__func__))  # type: ignore[method-assign]
_C.derive = classmethod(_timed("replay", _C.derive.__func__))  # type: ignore[method-assign]
_regions.classify_root_reference = _timed("twin", _regions.classify_root_reference)


def random_mlp(n_in: int, width: int, depth: int, seed: int) -> dtd.Network:
    """n_in - width^depth - 1, ReLU hidden layers, linear output; float32 weights read exactly."""
    rng = np.random.default_rng([seed, n_in, width, depth])
    sizes = [n_in] + [width] * depth + [1]
    Ws = [(rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [(rng.standard_normal(o) * 0.1).astype(np.float32) for o in sizes[1:]]
    return dtd.Network(Ws, bs)


def unstable_relus(net: dtd.Network, low: Any, high: Any) -> list[int]:
    """Per ReLU layer: neurons with interval lower < 0 < upper over the box."""
    B = interval_bounds(net, low, high)
    out = []
    for k, (lo, hi) in enumerate(B.z, start=1):
        if net.has_relu(k):
            out.append(int(sum(1 for a, b in zip(lo, hi) if a < 0 < b)))
    return out


def _count(statuses: list[str]) -> dict[str, int]:
    return {s: statuses.count(s) for s in ("proved", "refuted", "unknown")}


def run_pipeline(net: dtd.Network, low: Any, high: Any, timeout: float, output: int, neurons: list[int]
                 ) -> tuple[list[str], list[float], dict[str, int], list[str]]:
    statuses, times, methods, reasons = [], [], {}, []
    TIMERS.update(replay=0.0, twin=0.0)
    per: list[str] = []
    for j in neurons:
        t0 = time.perf_counter()
        v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=j, domain=(low, high), timeout=timeout, output=output)
        times.append(time.perf_counter() - t0)
        statuses.append(v.status)
        key = getattr(v, "method", "") or v.status
        methods[key] = methods.get(key, 0) + 1
        per.append(key)
        reasons.append(getattr(v, "reason", ""))
    METHODS.append(per)
    return statuses, times, methods, reasons


def run_z3(net: dtd.Network, low: Any, high: Any, timeout: float, output: int, neurons: list[int], bounds: bool
           ) -> tuple[list[str], list[float]]:
    statuses, times = [], []
    rule = ZPlus()
    for j in neurons:
        P = RootExitProblem(net, rule, 1, j, low, high, output=output)
        t0 = time.perf_counter()
        if bounds:
            st, x = solve_root_exit(P, timeout)
        else:
            s, xs, *_ = root_exit_solver(P, use_bounds=False)
            s.set("timeout", int(timeout * 1000))
            r = s.check()
            st, x = ("sat", None) if r == z3.sat else ("unsat", None) if r == z3.unsat else ("unknown", None)
            if st == "sat":
                from dtd_formal.smt.encode import model_value

                m = s.model()
                x = [model_value(m, v) for v in xs]
        if st == "sat":
            cex = RootExitCounterexample.build(P.question(), net, rule, x, "z3")
            status = "refuted" if cex is not None else "unknown"
        else:
            status = "proved" if st == "unsat" else "unknown"
        times.append(time.perf_counter() - t0)
        statuses.append(status)
    return statuses, times


def bench_net(name: str, net: dtd.Network, low: Any, high: Any, args: argparse.Namespace, output: int = 0,
              extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    unstable = unstable_relus(net, low, high)
    base = {"net": name, **(extra or {}), "relus": net.n_relus, "unstable": sum(unstable),
            "unstable_per_layer": unstable, "timeout_s": args.timeout}
    rows = []
    n1 = net.weight(1).shape[0]
    neurons = list(range(n1))
    statuses, times, methods, reasons = run_pipeline(net, low, high, args.timeout, output, neurons)
    row = {**base, "engine": "pipeline", "neurons": len(neurons), **_count(statuses),
           "seconds": round(sum(times), 2), "median_s": round(float(np.median(times)), 3),
           "max_s": round(max(times), 2), "over_timeout": sum(t > args.timeout for t in times),
           "exact_replay_s": round(TIMERS["replay"], 2), "textbook_twin_s": round(TIMERS["twin"], 2),
           "methods": methods}
    # the Z3 rows take the first k neurons that are not trivially proved (no root at all, etc.)
    nontrivial = [j for j, m in zip(neurons, METHODS[-1]) if m != "trivial"]
    z3_neurons = nontrivial[: args.z3_neurons]
    row["z3_subset"] = z3_neurons
    row["seconds_z3_subset"] = round(sum(times[neurons.index(j)] for j in z3_neurons), 2)
    row["statuses_z3_subset"] = _count([statuses[neurons.index(j)] for j in z3_neurons])
    if any(s == "unknown" for s in statuses):
        row["unknown_reasons"] = {str(j): r for j, s, r in zip(neurons, statuses, reasons) if s == "unknown"}
    rows.append(row)
    print(json.dumps(row), flush=True)
    slow = max(range(len(times)), key=times.__getitem__)
    SLOWEST.append((times[slow], name, net, low, high, neurons[slow], output, args.timeout))
    for engine, bounds in (("z3-naive", False), ("z3-bounds", True)):
        if engine not in args.z3:
            continue
        if not z3_neurons:
            continue
        sts, tms = run_z3(net, low, high, args.z3_timeout, output, z3_neurons, bounds)
        row = {**base, "engine": engine, "timeout_s": args.z3_timeout, "neurons": len(z3_neurons), **_count(sts),
               "seconds": round(sum(tms), 2), "median_s": round(float(np.median(tms)), 3), "max_s": round(max(tms), 2),
               "over_timeout": sum(t > args.z3_timeout for t in tms)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


SLOWEST: list[tuple] = []
METHODS: list[list[str]] = []


def mnist_input(net: dtd.Network, seed: int) -> tuple[np.ndarray, int]:
    """A synthetic seeded 28x28 'digit': a few random strokes of lit pixels, values in [0, 1] (float32)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((28, 28), dtype=np.float32)
    for _ in range(4):
        y, x = rng.integers(6, 22, size=2)
        dy, dx = rng.integers(-1, 2, size=2)
        for _ in range(12):
            img[max(0, y - 1):y + 2, max(0, x - 1):x + 2] = np.maximum(img[max(0, y - 1):y + 2, max(0, x - 1):x + 2],
                                                                      rng.uniform(0.6, 1.0))
            y, x = int(np.clip(y + dy + rng.integers(-1, 2), 2, 25)), int(np.clip(x + dx + rng.integers(-1, 2), 2, 25))
    x = img.ravel().astype(np.float64)
    out = net.to_float().forward(x[None, :])[0]
    return x, int(np.argmax(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="4,8,16,32")
    ap.add_argument("--depths", default="2,3")
    ap.add_argument("--inputs", default="2,5", help="input sizes of the random nets (grid; '' for none)")
    ap.add_argument("--seeds", default="0", help="network seeds (grid)")
    ap.add_argument("--timeout", type=float, default=10.0, help="pipeline seconds per neuron")
    ap.add_argument("--z3-timeout", type=float, default=10.0, help="Z3 seconds per neuron")
    ap.add_argument("--z3-neurons", type=int, default=4, help="layer-1 neurons the Z3 rows run on")
    ap.add_argument("--z3", default="z3-naive,z3-bounds", help="Z3 rows to run (comma list, '' for none)")
    ap.add_argument("--mnist-radii", default="0.002,0.01,0.05", help="L-inf radii of the MNIST boxes ('' skips)")
    ap.add_argument("--no-mnist", action="store_true")
    ap.add_argument("--profile", action="store_true", help="cProfile the slowest pipeline query (top 25 on stderr)")
    args = ap.parse_args()
    args.z3 = [e for e in args.z3.split(",") if e]
    print(json.dumps({"command": COMMAND, "z3": z3.get_version_string()}), flush=True)
    t_all = time.perf_counter()
    def ints(text: str) -> list[int]:  # a comma list; '' for none (e.g. --inputs '' for the MNIST rows only)
        return [int(s) for s in text.split(",") if s.strip()]

    for seed in ints(args.seeds):
        for n_in in ints(args.inputs):
            for depth in ints(args.depths):
                for width in ints(args.widths):
                    net = random_mlp(n_in, width, depth, seed)
                    low, high = parse_box((0, 1), n_in)
                    bench_net(f"random-{n_in}-{width}x{depth}-s{seed}", net, low, high, args,
                              extra={"inputs": n_in, "width": width, "depth": depth, "seed": seed})
    if not args.no_mnist and args.mnist_radii:
        path = SHARED / "mnist2x10.onnx"
        net = dtd.load(str(path))
        x, cls = mnist_input(net, 0)
        for r in [float(s) for s in args.mnist_radii.split(",")]:
            low = np.maximum(x - r, 0.0)
            high = np.minimum(x + r, 1.0)
            low, high = parse_box((low, high), net.input_size)
            bench_net(f"mnist2x10 r={r}", net, low, high, args, output=cls,
                      extra={"inputs": net.input_size, "width": 10, "depth": 2, "radius": r, "class": cls})
    print(json.dumps({"total_s": round(time.perf_counter() - t_all, 1)}), flush=True)
    if args.profile and SLOWEST:
        t, name, net, low, high, j, output, timeout = max(SLOWEST, key=lambda s: s[0])
        pr = cProfile.Profile()
        t0 = time.perf_counter()
        pr.enable()
        v = dtd.find_root_exit(net, ZPlus(), layer=1, neuron=j, domain=(low, high), timeout=timeout, output=output)
        pr.disable()
        print(json.dumps({"profile": name, "neuron": j, "status": v.status, "seconds": round(time.perf_counter() - t0, 2),
                          "first_run_s": round(t, 2), "reason": getattr(v, "reason", ""),
                          "method": getattr(v, "method", "")}), flush=True)
        print_profile(pr, 30, 20)


if __name__ == "__main__":
    main()

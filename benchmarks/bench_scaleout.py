"""Scale-out of root-exit search (issue 15, item 4): serial, local process pool, dask.distributed LocalCluster.

    python benchmarks/bench_scaleout.py --quick     # 2 neurons of each of the six hidden layers (about a minute)
    python benchmarks/bench_scaleout.py             # all 300 hidden neurons of ACAS Xu 1_1, 2 s per neuron
    python benchmarks/bench_scaleout.py --layers 5,6 --neurons 10 --timeout 2 --executors serial,dask2

ACAS Xu 1_1 (``../shared/data/ACASXU_experimental_v2a_1_1.nnet``, weights on normalised inputs) over the input box
its .nnet header records, z+ rule, scope "upper", the true root step, every default engine. For each hidden layer
the public ``dtd.find_root_exit(net, ZPlus(), layer=l, neuron=..., executor=E)`` is called (the API the CLI's
``dtd-formal counterexample --executor`` uses; it fans out one task per neuron), with E:

- ``serial``: ``executor=None`` (in this process, in order);
- ``local``: ``executor="local"``, the default process pool (one pool per call, i.e. per layer, as the CLI does);
- ``local-pool``: one ``ProcessPoolExecutor`` object reused for all layers (isolates the pool start-up);
- ``dask1`` / ``dask2``: a ``distributed.Client`` on a ``LocalCluster(n_workers=1|2, processes=True,
  threads_per_worker=1)`` (the cluster is started, and each worker has run the warm-up below, before timing);
- ``NAME-unshared`` (``local-unshared``, ``dask2-unshared``, ...): the same with the executor's sharing of common
  task arguments switched off (``executor._shared_positions`` patched to share nothing), i.e. one pickled
  network per task and per-task caches: the behaviour before issue 15, kept for A/B figures;
- ``NAME-memtrim`` (``dask1-memtrim``, ...): the dask workers keep Dask's default ``MALLOC_TRIM_THRESHOLD_=65536``
  (set by its nanny); without the suffix they run with glibc's default, as the serial process does (that
  setting doubles the falsifier's numpy time: docs/architecture.md, "Scale-out on Dask"). Suffixes combine.

Every run starts from a freshly loaded network (no run inherits the caches an earlier one built on the caller's
network: the per-layer stock forms verified in the caller, the integer and float views, Z3 terms), after a warm-up
on a throwaway network that pays the process's first-call costs (the engines' imports, SymPy, a first falsifier
search) before the first timed run, in this process and on every dask worker alike.

Per run: wall time (and per layer), speed-up against serial, verdict counts. Overhead per task: the wall time of
N trivially small tasks through each executor divided by N, for (i) ``abs(1)`` (the executor's own cost) and (ii)
a no-op-sized root-exit query, ``_solve_task`` on ACAS Xu's output neuron (layer 7: proved "trivially" in ~30 ms
in this process; the task still ships the network, ~0.2-0.7 MB pickled, and the rule). Verdicts (status and
method per (layer, neuron), and each counterexample's exact input) are compared with the serial run.

Output: one JSON line per measurement, then a summary line. Exit status: 0 = every executor gave the serial
verdicts; 1 = a definite verdict differs (refuted vs proved: a bug); 3 = only timeout-dependent differences (a
neuron Unknown on one side, its budget spent on a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import dtd_formal as dtd
from dtd_formal.rules import ZPlus
from dtd_formal.smt import executor as executor_module
from dtd_formal.smt.executor import map_tasks
from dtd_formal.smt.problem import parse_box
from dtd_formal.smt.root_exit import DEFAULT_ENGINES, _solve_task

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NNET = SHARED / "ACASXU_experimental_v2a_1_1.nnet"
COMMAND = "python benchmarks/bench_scaleout.py " + " ".join(sys.argv[1:])
MALLOC_TRIM = os.environ.get("MALLOC_TRIM_THRESHOLD_")  # as this process started (see the dask runs)


def emit(**row: Any) -> None:
    print(json.dumps({"bench": "scaleout", **row}), flush=True)


def load() -> tuple[dtd.Network, tuple[Any, Any]]:
    net = dtd.load(str(NNET))
    return net, tuple(net.metadata["input_domain"])


def verdict_rows(per_layer: dict[int, Any]) -> dict[tuple[int, int], tuple[str, str, Any]]:
    """(layer, neuron) -> (status, method or reason kind, exact counterexample input as strings or None)."""
    rows = {}
    for layer, v in per_layer.items():
        for j, w in v.per_neuron.items():
            cex = getattr(w, "counterexample", None)
            x = None if cex is None else tuple(str(u) for u in cex.input)
            rows[(layer, j)] = (w.status, getattr(w, "method", None) or "", x)
    return rows


def search(net: dtd.Network, box: Any, layers: list[int], neurons: int | None, timeout: float,
           executor: Any) -> tuple[dict[int, Any], list[float], float]:
    per_layer, times = {}, []
    t_all = time.perf_counter()
    for layer in layers:
        n_l = net.weight(layer).shape[0]
        which = list(range(n_l if neurons is None else min(neurons, n_l)))
        t0 = time.perf_counter()
        per_layer[layer] = dtd.find_root_exit(net, ZPlus(), layer=layer, neuron=which, domain=box, timeout=timeout,
                                              executor=executor)
        times.append(round(time.perf_counter() - t0, 3))
    return per_layer, times, time.perf_counter() - t_all


def counts(rows: dict[tuple[int, int], tuple[str, str, Any]]) -> dict[str, int]:
    return {s: sum(r[0] == s for r in rows.values()) for s in ("refuted", "proved", "unknown")}


def compare(serial: dict, other: dict) -> dict[str, Any]:
    conflicts, timeout_dependent, other_method, other_cex = [], [], 0, 0
    for key, (s, m, x) in serial.items():
        s2, m2, x2 = other[key]
        if s != s2:
            (timeout_dependent if "unknown" in (s, s2) else conflicts).append([*key, s, s2])
        else:
            other_method += m != m2
            other_cex += x != x2
    return {"identical_status": not conflicts and not timeout_dependent, "conflicts": conflicts,
            "timeout_dependent": timeout_dependent, "same_status_other_method": other_method,
            "same_status_other_counterexample": other_cex}


def overhead(executor: Any, name: str, trivial_task: tuple, n_tasks: int) -> None:
    for label, fn, task in (("abs(1)", abs, 1), ("trivial root-exit query (ACAS Xu layer 7)", _solve_task, trivial_task)):
        t0 = time.perf_counter()
        out = map_tasks(fn, [task] * n_tasks, executor)
        wall = time.perf_counter() - t0
        if fn is _solve_task:
            assert all(v.status == "proved" for v in out), [v.status for v in out]
        emit(kind="overhead", executor=name, task=label, tasks=n_tasks, wall_s=round(wall, 4),
             per_task_ms=round(1000 * wall / n_tasks, 3))


@contextmanager
def sharing(enabled: bool) -> Any:
    """Switch the executor's sharing of common task arguments off for an ``-unshared`` run (benchmark only)."""
    original = executor_module._shared_positions
    if not enabled:
        executor_module._shared_positions = lambda tasks: []  # type: ignore[assignment]
    try:
        yield
    finally:
        executor_module._shared_positions = original  # type: ignore[assignment]


def warm_up(timeout: float) -> None:
    """Pay a process's first-call costs before any timed run, on a throwaway network: the engines' imports, SymPy's
    first stock-form verification (~0.5 s), the falsifier's first search (layer 1 neuron 0, refuted in ~0.3 s).
    Run in this process (so that they do not land on the first executor, serial) and on every dask worker."""
    _import_engines()
    net, box = load()
    low, high = parse_box(box, net.input_size)
    for layer in (1, net.n_layers):  # a falsifier search, and the trivial output-layer query
        _solve_task((net, ZPlus(), layer, 0, low, high, "upper", "pattern", 0, timeout, tuple(DEFAULT_ENGINES), 0,
                     "true", "both"))


def _import_engines() -> None:
    """The modules the engines import on first use (the falsifier, the relaxation, HiGHS LPs, Z3)."""
    import dtd_formal.smt.counterexample  # noqa: F401
    import dtd_formal.smt.encode  # noqa: F401
    import dtd_formal.smt.falsify  # noqa: F401
    import dtd_formal.smt.lp  # noqa: F401
    import dtd_formal.smt.relax  # noqa: F401
    import dtd_formal.smt.root_exit  # noqa: F401


def _import_package(timeout: float) -> str | None:  # run on every dask worker before timing
    warm_up(timeout)
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 neurons per layer, 20 overhead tasks (about a minute)")
    ap.add_argument("--layers", default="1,2,3,4,5,6", help="hidden layers (default all six: 1,2,3,4,5,6)")
    ap.add_argument("--neurons", type=int, default=None, help="first K neurons of each layer (default all 50)")
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds per neuron (default 2)")
    ap.add_argument("--executors", default="serial,local,local-pool,dask1,dask2")
    ap.add_argument("--overhead-tasks", type=int, default=40, help="trivially small tasks per overhead measurement")
    args = ap.parse_args()
    if args.quick:
        args.neurons = args.neurons or 2
        args.overhead_tasks = min(args.overhead_tasks, 20)
    layers = [int(s) for s in args.layers.split(",")]
    names = args.executors.split(",")
    if "serial" not in names:
        names.insert(0, "serial")
    t0 = time.perf_counter()
    warm_up(args.timeout)
    warm_s = round(time.perf_counter() - t0, 3)
    emit(kind="config", command=COMMAND, network=NNET.name, layers=layers, neurons_per_layer=args.neurons or 50,
         timeout_s=args.timeout, executors=names, cpus=os.cpu_count(), python=platform.python_version(),
         load_average=[round(u, 2) for u in os.getloadavg()], warm_up_s=warm_s)
    rows: dict[str, dict] = {}
    walls: dict[str, float] = {}
    for name in names:
        cluster = client = pool = None
        base, suffixes = name, set()
        while base.rsplit("-", 1)[-1] in ("unshared", "memtrim") and "-" in base:
            base, suffix = base.rsplit("-", 1)
            suffixes.add(suffix)
        unshared = "unshared" in suffixes
        # a fresh network per executor: the caches a run builds on the caller's network (the stock forms that
        # find_root_exit verifies in the caller, the integer and float views, Z3 terms) would otherwise serve
        # every later run (inherited by the forked local pool, shipped to dask workers) but not the serial one
        net, box = load()
        low, high = parse_box(box, net.input_size)
        trivial = (net, ZPlus(), net.n_layers, 0, low, high, "upper", "pattern", 0, args.timeout,
                   tuple(DEFAULT_ENGINES), 0, "true", "both")
        try:
            if base == "serial":
                executor: Any = None
            elif base == "local":
                executor = "local"
            elif base == "local-pool":
                pool = executor = ProcessPoolExecutor(max_workers=os.cpu_count() or 1)
            elif base.startswith("dask"):
                import dask
                from distributed import Client, LocalCluster

                t0 = time.perf_counter()
                # Dask's nanny starts each worker with MALLOC_TRIM_THRESHOLD_=65536 (pre-spawn-environ), which
                # also switches off glibc's dynamic mmap threshold: every numpy temporary over 128 KiB is then a
                # fresh mmap that page-faults in, and the falsifier's float batches take twice as long. The
                # workers here run with glibc's default, as the serial process does; "-memtrim" keeps Dask's.
                unset = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
                environ = {} if "memtrim" in suffixes else unset
                # the nanny also writes its pre-spawn environment into this process's os.environ, which later
                # workers inherit: put back what this process started with
                os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
                os.environ.update({} if MALLOC_TRIM is None else {"MALLOC_TRIM_THRESHOLD_": MALLOC_TRIM})
                with dask.config.set(environ):
                    cluster = LocalCluster(n_workers=int(base[4:] or 1), processes=True, threads_per_worker=1,
                                           dashboard_address=None)
                client = executor = Client(cluster)
                trim = set(client.run(_import_package, args.timeout).values())
                emit(kind="startup", executor=name, seconds=round(time.perf_counter() - t0, 3),
                     what="LocalCluster + Client + the warm-up (imports, first queries) on every worker",
                     worker_malloc_trim_threshold=sorted(trim, key=str))
            else:
                raise SystemExit(f"unknown executor {name!r}")
            with sharing(not unshared):
                per_layer, times, wall = search(net, box, layers, args.neurons, args.timeout, executor)
            rows[name], walls[name] = verdict_rows(per_layer), wall
            row: dict[str, Any] = {"kind": "run", "executor": name, "wall_s": round(wall, 3), "per_layer_s": times,
                                   "counts": counts(rows[name]), "load_average": [round(u, 2) for u in os.getloadavg()]}
            if name != "serial":
                row["speedup_vs_serial"] = round(walls["serial"] / wall, 3)
                row["verdicts_vs_serial"] = compare(rows["serial"], rows[name])
            emit(**row)
            with sharing(not unshared):
                overhead(executor, name, trivial, args.overhead_tasks)
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
            if pool is not None:
                pool.shutdown()
    checks = {n: compare(rows["serial"], rows[n]) for n in rows if n != "serial"}
    conflict = any(c["conflicts"] for c in checks.values())
    timing = any(c["timeout_dependent"] for c in checks.values())
    emit(kind="summary", tasks=len(rows["serial"]), wall_s={n: round(w, 3) for n, w in walls.items()},
         speedup_vs_serial={n: round(walls["serial"] / w, 3) for n, w in walls.items()},
         verdicts_identical=not conflict and not timing, conflicts=conflict, timeout_dependent_differences=timing)
    return 1 if conflict else 3 if timing else 0


if __name__ == "__main__":
    sys.exit(main())

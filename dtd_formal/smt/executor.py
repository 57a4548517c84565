"""Fan-out of independent per-neuron / per-region queries through a :class:`concurrent.futures.Executor`.

``executor`` may be None (run in this process, in order), ``"local"`` (a process pool with one worker per CPU),
``"dask://HOST:PORT"`` (a running dask.distributed scheduler: the scale-out path), a ``distributed.Client``, or any
object with ``submit(fn, arg) -> future``. Results come back in task order; a progress bar counts finished tasks.
Tasks must be picklable top-level functions with picklable arguments (networks and rules are).

Shared arguments are shipped once per worker, not once per task. When every task is a tuple and a position holds
the very same object in all of them (the network, the rule, the box of a root-exit fan-out), the pool that
``"local"`` starts receives those objects once per worker process (its initializer), and on dask they are
scattered once (``client.scatter(..., broadcast=True)``) and the tasks name them by future. Each worker then runs
its tasks on one copy, as the serial path runs all tasks on the caller's objects, so per-network caches built by a
task (the verified stock form of a layer, the integer views) serve that worker's later tasks instead of being
rebuilt per task. An ``Executor`` object passed in (its workers are not ours to initialise) gets one pickled
argument tuple per task, as before.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures import as_completed as cf_as_completed
from typing import Any, Callable, Sequence

from ..errors import InputError

#: worker-side store of the shared task arguments of the current process pool (see _install_shared)
_SHARED: tuple[Any, ...] = ()

_SCALARS = (int, float, complex, str, bytes, bool, type(None))


class _Shared:
    """Placeholder for the i-th shared argument in a task tuple sent to a process-pool worker."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _shared_positions(tasks: Sequence[Any]) -> list[int]:
    """Positions holding one and the same non-scalar object in every task (tuples of equal length, >= 2 tasks)."""
    if len(tasks) < 2 or not all(type(t) is tuple for t in tasks) or len({len(t) for t in tasks}) != 1:
        return []
    first = tasks[0]
    return [i for i, v in enumerate(first)
            if not isinstance(v, _SCALARS) and all(t[i] is v for t in tasks[1:])]


def _install_shared(values: tuple[Any, ...]) -> None:
    """Process-pool initializer: keep the shared arguments for this worker's tasks."""
    global _SHARED
    _SHARED = values


def _call_shared(packed: tuple[Callable[[Any], Any], tuple[Any, ...]]) -> Any:
    """Run ``fn(task)`` in a pool worker with the placeholders replaced by this worker's shared arguments."""
    fn, task = packed
    return fn(tuple(_SHARED[v.index] if isinstance(v, _Shared) else v for v in task))


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="task")


def map_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], executor: Any = None, progress: bool = False,
              desc: str = "tasks") -> list[Any]:
    """``[fn(t) for t in tasks]`` through the chosen executor (module docstring), in task order."""
    bar = _progress(len(tasks), progress, desc)
    try:
        if executor is None or executor == "serial":
            out = []
            for t in tasks:
                out.append(fn(t))
                if bar is not None:
                    bar.update(1)
            return out
        if isinstance(executor, str):
            if executor == "local":
                workers = max(1, min(len(tasks), os.cpu_count() or 1))
                positions = _shared_positions(tasks)
                if not positions:
                    with ProcessPoolExecutor(max_workers=workers) as pool:
                        return _run(pool, fn, tasks, bar, cf_as_completed)
                where = {p: k for k, p in enumerate(positions)}
                shared = tuple(tasks[0][p] for p in positions)
                packed = [(fn, tuple(_Shared(where[i]) if i in where else v for i, v in enumerate(t))) for t in tasks]
                with ProcessPoolExecutor(max_workers=workers, initializer=_install_shared,
                                         initargs=(shared,)) as pool:
                    return _run(pool, _call_shared, packed, bar, cf_as_completed)
            if executor.startswith("dask://"):
                try:
                    from distributed import Client
                except ImportError as exc:  # pragma: no cover - dask[distributed] is installed
                    raise InputError(f"--executor {executor}: dask.distributed is not installed ({exc})") from None
                address = "tcp://" + executor[len("dask://"):]
                try:
                    client = Client(address, timeout="10s")
                except OSError as exc:
                    raise InputError(f"--executor {executor}: cannot reach the dask scheduler ({exc})") from None
                try:
                    return _run_dask(client, fn, tasks, bar)
                finally:
                    client.close()
            raise InputError(f"executor must be 'local', 'serial' or 'dask://HOST:PORT', got {executor!r}")
        if hasattr(executor, "submit"):
            if not isinstance(executor, Executor):
                try:
                    from distributed import Client

                    if isinstance(executor, Client):
                        return _run_dask(executor, fn, tasks, bar)
                except ImportError:  # pragma: no cover
                    pass
            return _run(executor, fn, tasks, bar, cf_as_completed)
        raise InputError(f"executor: expected None, 'local', 'dask://HOST:PORT' or an Executor, got {executor!r}")
    finally:
        if bar is not None:
            bar.close()


def _run(pool: Any, fn: Callable[[Any], Any], tasks: Sequence[Any], bar: Any, completed: Callable[[Any], Any]) -> list[Any]:
    futures = [pool.submit(fn, t) for t in tasks]
    index = {id(f): i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(tasks)
    for f in completed(futures):
        results[index[id(f)]] = f.result()
        if bar is not None:
            bar.update(1)
    return results


def _run_dask(client: Any, fn: Callable[[Any], Any], tasks: Sequence[Any], bar: Any) -> list[Any]:
    """dask.distributed: one future per task (``pure=False``: equal tasks are still run), gathered in order; the
    shared arguments (module docstring) are scattered to every worker once and passed by future."""
    positions = _shared_positions(tasks)
    scattered: list[Any] = []
    if positions:
        scattered = client.scatter([tasks[0][p] for p in positions], broadcast=True, hash=False)
        where = dict(zip(positions, scattered))
        tasks = [tuple(where.get(i, v) for i, v in enumerate(t)) for t in tasks]
    try:
        futures = [client.submit(fn, t, pure=False) for t in tasks]
        results = []
        for f in futures:
            results.append(f.result())
            if bar is not None:
                bar.update(1)
        return results
    finally:
        if scattered:
            client.cancel(scattered)


__all__ = ["map_tasks"]

"""Fan-out of independent per-neuron / per-region queries through a :class:`concurrent.futures.Executor`.

``executor`` may be None (run in this process, in order), ``"local"`` (a process pool with one worker per CPU),
``"dask://HOST:PORT"`` (a running dask.distributed scheduler: the scale-out path), a ``distributed.Client``, or any
object with ``submit(fn, arg) -> future``. Results come back in task order; a progress bar counts finished tasks.
Tasks must be picklable top-level functions with picklable arguments (networks and rules are).
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures import as_completed as cf_as_completed
from typing import Any, Callable, Sequence

from ..errors import InputError


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
                with ProcessPoolExecutor(max_workers=workers) as pool:
                    return _run(pool, fn, tasks, bar, cf_as_completed)
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
    """dask.distributed: one future per task (``pure=False``: equal tasks are still run), gathered in order."""
    futures = [client.submit(fn, t, pure=False) for t in tasks]
    results = []
    for f in futures:
        results.append(f.result())
        if bar is not None:
            bar.update(1)
    return results


__all__ = ["map_tasks"]

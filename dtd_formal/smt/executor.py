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

A shared object also carries the caches the caller has already built on it. Pickling drops the caches an object's
``__getstate__`` leaves out (a :class:`~dtd_formal.network.Network` drops its Z3 terms, its verified stock forms
and its split weights, since some of them cannot be pickled); ``find_root_exit`` verifies the layer's stock form
in the caller (0.04-0.6 s of SymPy per ACAS Xu layer) before it fans out, so a worker that received the plain
pickle verified it again, once per layer and worker. Shared arguments are therefore shipped in a :class:`_Carry`:
the object's own pickle plus each left-out ``__dict__`` entry that pickles on its own (entry by entry for a dict
cache; the others, Z3 terms, are rebuilt on the worker as before), put back on the worker's copy. The ``"local"``
pool forks (nothing is pickled, the caches are inherited); where it spawns, the same carrier is used.

On a ``distributed.Client`` passed in, a shared object's copy is also kept on the workers across calls
(:class:`_Kept`): a whole network is one call per layer, and the serial path runs every layer on the caller's one
object, whose caches (the digest, the integer, gmpy2 and float views, Z3 terms) serve all of them. A later call
with the same object reuses the kept copy while the object pickles to the same state (sha256 of its own pickle,
so a changed network, rule or box is shipped again); the caches the caller built on it since (the next layer's
stock form) travel in a small :class:`_Patch` merged into each worker's copy. A kept copy is released when the
caller's object is garbage-collected (or by :func:`release_kept`); a ``"dask://"`` address opens and closes its
own client per call, and releases everything with it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import uuid
import weakref
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


class _Carry:
    """A shared task argument in transit, with the caches its ``__getstate__`` leaves out (module docstring).

    ``extra`` is what the caller ships (:func:`_left_out_delta`); a worker's copy, unpickled, is a ``_Carry``
    again whose ``extra`` is taken afresh from the copy if it is pickled on (a dask worker replicating it to
    another worker ships the caches it holds then). :func:`_unwrap` takes the object out on the worker."""

    __slots__ = ("obj", "extra")

    def __init__(self, obj: Any, extra: dict[str, Any] | None = None) -> None:
        self.obj, self.extra = obj, extra

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _Carry._rebuild, (self.obj, _left_out_delta(self.obj, {}) if self.extra is None else self.extra)

    @staticmethod
    def _rebuild(obj: Any, extra: dict[str, Any]) -> "_Carry":
        _merge_left_out(obj, extra)
        return _Carry(obj)


class _Patch:
    """The caches the caller built on a kept shared object (:class:`_Kept`) since it was shipped; merged once into
    each worker's copy by the first task there that names it."""

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra
        self._into: set[int] = set()
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _Patch, (self.extra,)

    def merge_into(self, obj: Any) -> None:
        with self._lock:
            if id(obj) not in self._into:
                _merge_left_out(obj, self.extra)
                self._into.add(id(obj))


def _left_out_names(obj: Any) -> list[str]:
    """The ``__dict__`` entries of ``obj`` that its ``__getstate__`` leaves out of its pickle (its caches)."""
    d = getattr(obj, "__dict__", None)
    if not d or getattr(type(obj), "__getstate__", None) is getattr(object, "__getstate__", None):
        return []
    try:
        state = obj.__getstate__()
    except Exception:  # noqa: BLE001 - no state to compare with: the object's pickle travels alone
        return []
    if not isinstance(state, dict):
        return []
    return [name for name, value in list(d.items()) if name not in state and value is not None]


def _dumps(value: Any) -> bytes | None:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - unpicklable caches (Z3 terms, keys naming local classes) stay behind
        return None


def _left_out_delta(obj: Any, shipped: dict[str, Any]) -> dict[str, Any]:
    """The left-out caches of ``obj`` not in ``shipped`` (updated), each pickled on its own: a dict cache entry by
    entry (``name -> ("dict", [pickled (key, value)])``), any other value whole (``name -> ("value", pickle)``).
    What does not pickle (Z3 terms) stays behind and is rebuilt where it is needed."""
    extra: dict[str, Any] = {}
    d = vars(obj) if hasattr(obj, "__dict__") else {}
    for name in _left_out_names(obj):
        value = d[name]
        if type(value) is dict:
            done = shipped.setdefault(name, set())
            if not isinstance(done, set):
                done = shipped[name] = set()
            blobs = []
            for k, v in list(value.items()):
                if k not in done:
                    done.add(k)
                    blob = _dumps((k, v))
                    if blob is not None:
                        blobs.append(blob)
            if blobs:
                extra[name] = ("dict", blobs)
        elif shipped.get(name) != ("id", id(value)):
            shipped[name] = ("id", id(value))
            blob = _dumps(value)
            if blob is not None:
                extra[name] = ("value", blob)
    return extra


def _loads(blob: bytes) -> tuple[bool, Any]:
    try:
        return True, pickle.loads(blob)
    except Exception:  # noqa: BLE001 - e.g. a cache key naming a class of the client's __main__: rebuilt here
        return False, None


def _merge_left_out(obj: Any, extra: dict[str, Any]) -> None:
    """Put shipped caches on a worker's copy: a missing (or None) cache is set, a dict cache gains the entries it
    lacks; what the worker built itself is kept, and an entry that does not unpickle here is left out."""
    d = getattr(obj, "__dict__", None)
    if d is None:
        return
    for name, (kind, payload) in extra.items():
        if kind == "dict":
            cur = d.get(name)
            if type(cur) is not dict:
                if cur is not None:
                    continue
                cur = {}
            for blob in payload:
                ok, kv = _loads(blob)
                if ok:
                    cur.setdefault(*kv)
            if cur and d.get(name) is None:
                d[name] = cur
        elif d.get(name) is None:
            ok, value = _loads(payload)
            if ok:
                d[name] = value


def _unwrap(value: Any) -> Any:
    return value.obj if isinstance(value, _Carry) else value


def _call_unwrapped(fn: Callable[[Any], Any], task: tuple[Any, ...], patches: tuple[tuple[int, Any], ...] = ()) -> Any:
    """Run ``fn(task)`` on a dask worker with the carried shared arguments taken out of their :class:`_Carry`,
    after merging this call's :class:`_Patch` objects into them."""
    for position, patch in patches:
        patch.merge_into(_unwrap(task[position]))
    return fn(tuple(_unwrap(v) for v in task))


class _Kept:
    """Client side: one shared object scattered (in a :class:`_Carry`) to a client's workers and kept there across
    calls while the caller's object lives and pickles to the same state (module docstring)."""

    __slots__ = ("client", "obj", "state", "future", "shipped", "__weakref__")

    def __init__(self, client: Any, obj: Any, state: bytes, future: Any, shipped: dict[str, Any]) -> None:
        self.client = weakref.ref(client)
        self.obj = weakref.ref(obj)
        self.state, self.future, self.shipped = state, future, shipped


#: (id(client), id(object)) -> its kept copy on that client's workers; an entry goes when the object is collected
_KEPT: dict[tuple[int, int], _Kept] = {}


def _state_digest(obj: Any) -> bytes | None:
    """sha256 of the object's own pickle (its ``__getstate__``: the caches left out), or None if it does not
    pickle with the standard pickler (it then travels per call, as dask serialises it)."""
    blob = _dumps(obj)
    return None if blob is None else hashlib.sha256(blob).digest()


def _forget(key: tuple[int, int]) -> None:
    _KEPT.pop(key, None)


def release_kept(client: Any = None) -> int:
    """Drop the shared objects kept on ``client``'s workers (all clients if None); returns how many. They are
    released by dask once no task needs them; they would otherwise go when the caller's objects are collected."""
    keys = [k for k, e in _KEPT.items() if client is None or e.client() is client]
    for k in keys:
        _KEPT.pop(k, None)
    return len(keys)


def _ship(client: Any, objs: list[Any], keep: bool) -> tuple[list[Any], list[Any], list[Any]]:
    """Scatter the shared objects of one call to every worker of ``client`` (one ``scatter``): returns (a future
    per object, a future of a :class:`_Patch` or None per object, the futures to release after the call). With
    ``keep`` a copy already kept from an earlier call is reused while its object pickles to the same state, and the
    caches the caller built on it since then travel in its patch; a new copy is kept for later calls."""
    futures: list[Any] = [None] * len(objs)
    patches: list[Any] = [None] * len(objs)
    send: list[tuple[str, int, Any]] = []  # ("copy" | "patch", index, what to scatter)
    fresh: dict[int, tuple[bytes | None, dict[str, Any]]] = {}
    for i, obj in enumerate(objs):
        state = _state_digest(obj) if keep else None
        entry = _KEPT.get((id(client), id(obj))) if state is not None else None
        if (entry is not None and entry.obj() is obj and entry.client() is client and entry.state == state
                and getattr(entry.future, "status", None) == "finished"):
            futures[i] = entry.future
            delta = _left_out_delta(obj, entry.shipped)
            if delta:
                send.append(("patch", i, _Patch(delta)))
        else:
            shipped: dict[str, Any] = {}
            fresh[i] = (state, shipped)
            send.append(("copy", i, _Carry(obj, _left_out_delta(obj, shipped))))
    release: list[Any] = []
    if send:
        scattered = client.scatter([what for _, _, what in send], broadcast=True, hash=False)
        for (kind, i, _), future in zip(send, scattered):
            if kind == "patch":
                patches[i] = future
                release.append(future)
                continue
            futures[i] = future
            state, shipped = fresh[i]
            key = (id(client), id(objs[i]))
            _KEPT.pop(key, None)
            if state is None:
                release.append(future)
                continue
            try:
                weakref.finalize(objs[i], _forget, key)
            except TypeError:  # not weak-referenceable: when it goes cannot be told, so it is not kept
                release.append(future)
                continue
            _KEPT[key] = _Kept(client, objs[i], state, future, shipped)
    return futures, patches, release


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
    _SHARED = tuple(_unwrap(v) for v in values)


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
                shared = tuple(_Carry(tasks[0][p]) for p in positions)
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
                    return _run_dask(client, fn, tasks, bar, keep=False)  # the client closes: nothing to keep
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


def _run_dask(client: Any, fn: Callable[[Any], Any], tasks: Sequence[Any], bar: Any, keep: bool = True) -> list[Any]:
    """dask.distributed: one future per task (``pure=False``: equal tasks are still run), gathered in order; the
    shared arguments (module docstring) are scattered to every worker once, with the caches the caller has built
    on them (:class:`_Carry`), and passed by future; with ``keep`` they stay there for later calls (:func:`_ship`)."""
    positions = _shared_positions(tasks)
    release: list[Any] = []
    try:
        if positions:
            futures, patches, release = _ship(client, [tasks[0][p] for p in positions], keep)
            where = dict(zip(positions, futures))
            merge = tuple((p, patch) for p, patch in zip(positions, patches) if patch is not None)
            name = getattr(fn, "__name__", "task")
            running = [client.submit(_call_unwrapped, fn, tuple(where.get(i, v) for i, v in enumerate(t)), merge,
                                     pure=False, key=f"{name}-{uuid.uuid4().hex}") for t in tasks]
        else:
            running = [client.submit(fn, t, pure=False) for t in tasks]
        results = []
        for f in running:
            results.append(f.result())
            if bar is not None:
                bar.update(1)
        return results
    finally:
        if release:
            client.cancel(release)


__all__ = ["map_tasks", "release_kept"]

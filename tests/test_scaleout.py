"""Scale-out (issue 15, item 4): root-exit search over every layer of a small network through a dask.distributed
LocalCluster (a Client object, and its scheduler address) and the local process pool gives the serial verdicts;
the executor ships arguments shared by all tasks once per worker. No timings are asserted."""

from __future__ import annotations

import gc
import os
import time
from fractions import Fraction as F
from typing import Any

import pytest

import dtd_formal as dtd
from dtd_formal.rules import ZPlus
from dtd_formal.smt.executor import _shared_positions, map_tasks

#: per-neuron budget. The engines split it by fractions (the relaxation gets 60% before Z3), so the Z3 proof of
#: layer-1 neuron 1 comes after ~70% of it whatever the value; Z3 then needs milliseconds on this 7-ReLU net, and
#: the falsifier's counterexamples come from its first seeded batch, so the verdicts do not depend on the machine
TIMEOUT = 5.0


def _net() -> dtd.Network:
    """2-3-2-1 with a mix of answers: layer 1 refuted (falsifier) and proved (Z3), layer 2 proved (relaxation) and
    refuted, the output layer trivially proved."""
    return dtd.Network([[[1, 1], [1, 0], [0, 1]], [[1, -1, 1], [0, 1, 1]], [[1, 1]]],
                       [[F(-1, 2), F(-1, 2), F(-1, 4)], [F(-1, 4), 0], [0]])


def _all_layers(net: dtd.Network, executor: Any) -> dict[tuple[int, int], tuple[str, tuple[str, ...] | None]]:
    """(layer, neuron) -> (status, exact counterexample input) for every layer, through ``executor``."""
    out = {}
    for layer in range(1, net.n_layers + 1):
        v = dtd.find_root_exit(net, ZPlus(), layer=layer, domain=(0, 1), timeout=TIMEOUT, executor=executor)
        for j, w in v.per_neuron.items():
            cex = getattr(w, "counterexample", None)
            out[(layer, j)] = (w.status, None if cex is None else tuple(str(u) for u in cex.input))
    return out


@pytest.fixture(scope="module")
def serial() -> dict:
    return _all_layers(_net(), None)


def test_serial_reference_is_mixed(serial: dict) -> None:
    statuses = {s for s, _ in serial.values()}
    assert statuses == {"refuted", "proved"}  # both kinds of answer cross the executor; no unknowns


def test_dask_local_cluster_matches_serial(serial: dict) -> None:
    distributed = pytest.importorskip("distributed")
    net = _net()
    # worker processes, not threads: Z3's global context is not thread-safe (see test_smt_executor)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  protocol="tcp") as cluster, distributed.Client(cluster) as client:
        assert _all_layers(net, client) == serial
        host_port = cluster.scheduler_address.split("://", 1)[1]
        assert _all_layers(net, "dask://" + host_port) == serial
        _wait_released(client, left=1)  # the network stays on the worker for later calls, nothing else ...
        del net
        gc.collect()
        _wait_released(client)  # ... and goes when the caller's network does


def _wait_released(client: Any, left: int = 0, seconds: float = 10.0) -> None:
    """Wait until ``left`` keys are held on the cluster (releases travel asynchronously)."""
    deadline = time.monotonic() + seconds
    while len(client.who_has()) > left and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(client.who_has()) == left


def test_local_pool_matches_serial(serial: dict) -> None:
    net = _net()
    assert _all_layers(net, None) == serial  # the caller's network now holds every cache (Z3 terms included) ...
    assert _all_layers(net, "local") == serial  # ... which the forked pool workers inherit and use


class _Box:
    def __init__(self) -> None:
        self.cache: dict[str, bool] = {}


def _probe(task: tuple) -> tuple[int, bool, int]:
    """(worker pid, whether this task built the box's cache, task index)."""
    box, k = task
    first = "built" not in box.cache
    box.cache["built"] = True
    return os.getpid(), first, k


def test_shared_positions() -> None:
    box = _Box()
    assert _shared_positions([(box, 1, "x"), (box, 2, "x")]) == [0]  # scalars and strings are not shipped apart
    assert _shared_positions([(box, 1)]) == []  # one task: nothing to share
    assert _shared_positions([(_Box(), 1), (_Box(), 2)]) == []  # equal type is not the same object
    assert _shared_positions([3, 4]) == [] and _shared_positions([(box,), (box, 1)]) == []


def test_shared_argument_is_one_copy_per_worker() -> None:
    distributed = pytest.importorskip("distributed")
    box = _Box()
    tasks = [(box, k) for k in range(6)]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  protocol="tcp") as cluster, distributed.Client(cluster) as client:
        res = map_tasks(_probe, tasks, client)
    assert [k for _, _, k in res] == list(range(6))  # task order kept
    assert sum(first for _, first, _ in res) == 1  # one worker, one copy: the cache built once serves the rest
    assert box.cache == {}  # the caller's object is not the worker's copy


class _Cached:
    """Like a Network: its pickle (``__getstate__``) leaves the underscore caches out."""

    def __init__(self) -> None:
        self.data = 1

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


def _seen(task: tuple) -> tuple[str, list[str], int]:
    """(worker address, the caches the worker's copy arrived with, task index)."""
    from distributed import get_worker

    obj, k = task
    return get_worker().address, sorted(a for a in vars(obj) if a.startswith("_")), k


def _stock_forms_arrived(task: tuple) -> bool:
    net, _ = task
    return bool(net.__dict__.get("_stock_forms"))


class _Gone:
    """A cache entry whose class the receiving process lacks (a rule class of the client's ``__main__``)."""


def test_carry_keeps_left_out_caches_through_two_pickles(monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle
    import sys
    import threading

    from dtd_formal.smt.executor import _Carry, _unwrap

    obj = _Cached()
    obj._kept, obj._lock = {"built": True}, threading.Lock()  # the lock cannot be pickled: it stays behind
    assert sorted(vars(pickle.loads(pickle.dumps(obj)))) == ["data"]  # the plain pickle drops every cache
    twice = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(_Carry(obj)))))  # scatter, then replicate
    copy = _unwrap(twice)
    assert copy is not obj and sorted(vars(copy)) == ["_kept", "data"] and copy._kept == {"built": True}
    obj._kept[_Gone] = "form"  # an entry (and a whole cache) that cannot be unpickled where it arrives ...
    obj._gone = _Gone()
    blob = pickle.dumps(_Carry(obj))
    monkeypatch.delattr(sys.modules[__name__], "_Gone")
    copy = _unwrap(pickle.loads(blob))  # ... is left out there (rebuilt on use), the rest arrives
    assert sorted(vars(copy)) == ["_kept", "data"] and copy._kept == {"built": True}


def test_dask_workers_get_the_callers_caches() -> None:
    """The caches built in the caller (the network's verified stock forms, which its pickle leaves out) reach
    every worker's copy, the one the scheduler replicates to the second worker included: without them each worker
    verified each layer's stock form again (0.04-0.6 s of SymPy per ACAS Xu layer, about as long as a task)."""
    distributed = pytest.importorskip("distributed")
    obj = _Cached()
    obj._kept, obj._lock = [1, 2], __import__("threading").Lock()
    net = _net()
    dtd.find_root_exit(net, ZPlus(), layer=1, neuron=0, domain=(0, 1), timeout=TIMEOUT)  # verifies layer 1
    assert net.__dict__.get("_stock_forms")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  protocol="tcp") as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        res = map_tasks(_seen, [(obj, k) for k in range(8)], client)
        assert map_tasks(_stock_forms_arrived, [(net, k) for k in range(4)], client) == [True] * 4
    assert [k for _, _, k in res] == list(range(8))
    assert all(caches == ["_kept"] for _, caches, _ in res), res  # the unpicklable lock stayed behind


def _touch(task: tuple) -> tuple[int, dict, Any]:
    """(the copy's state, its _kept cache after this task added the worker's entry, its _other cache)."""
    obj, _ = task
    obj.__dict__.setdefault("_kept", {})["worker"] = True
    return obj.data, dict(obj._kept), obj.__dict__.get("_other")


def test_shared_copy_is_kept_across_calls_on_a_client() -> None:
    """find_root_exit fans out one call per layer with the same network: the worker's copy (and the caches its
    tasks built: the network's digest and views, Z3 terms) is kept for the next call instead of shipped and
    rebuilt per call (0.2-0.4 s per ACAS Xu layer and worker); a changed object is shipped again; the caches the
    caller added since are merged into the kept copy; the copy goes when the caller's object does."""
    from dtd_formal.smt.executor import release_kept

    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  protocol="tcp") as cluster, distributed.Client(cluster) as client:
        box = _Box()
        first = [f for _, f, _ in map_tasks(_probe, [(box, k) for k in range(3)], client)]
        again = [f for _, f, _ in map_tasks(_probe, [(box, k) for k in range(3)], client)]
        assert sum(first) == 1 and sum(again) == 0  # the second call ran on the first call's copy
        box.label = "changed"  # part of the pickled state: the kept copy is stale, a new one is shipped
        assert sum(f for _, f, _ in map_tasks(_probe, [(box, k) for k in range(3)], client)) == 1
        assert release_kept(client) >= 1
        assert sum(f for _, f, _ in map_tasks(_probe, [(box, k) for k in range(3)], client)) == 1
        del box
        gc.collect()
        _wait_released(client)

        obj = _Cached()
        assert {s for s, _, _ in map_tasks(_touch, [(obj, k) for k in range(2)], client)} == {1}
        obj._kept, obj._other = {"caller": True}, [1]  # caches the caller built after the copy was shipped
        res = map_tasks(_touch, [(obj, k) for k in range(2)], client)
        assert all(kept == {"worker": True, "caller": True} and other == [1] for _, kept, other in res), res
        obj.data = 2
        assert [s for s, _, _ in map_tasks(_touch, [(obj, k) for k in range(2)], client)] == [2, 2]
        del obj
        gc.collect()
        _wait_released(client)

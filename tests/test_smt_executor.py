"""Fan-out: serial, local process pool and a dask.distributed LocalCluster give the same verdicts."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

import dtd_formal as dtd
from dtd_formal.errors import InputError
from dtd_formal.rules import ZPlus
from dtd_formal.smt.executor import map_tasks


def _net() -> dtd.Network:
    # neurons 0 and 1 of layer 1: exit for neuron 0 (hand-derived in test_smt_root_exit.exit_net), a third neuron
    # reading only x1 with an always-active layer above
    return dtd.Network([[[1, 1], [1, 0], [0, 1]], [[1, 1, 1]]], [[F(-1, 2), F(-1, 2), F(-1, 4)], [0]])


def _square(v: int) -> int:
    return v * v


def test_map_tasks_orders_results() -> None:
    assert map_tasks(_square, [3, 1, 2]) == [9, 1, 4]
    assert map_tasks(_square, [3, 1, 2], "local") == [9, 1, 4]
    with pytest.raises(InputError):
        map_tasks(_square, [1], "cluster-please")


def _statuses(v) -> dict:  # type: ignore[no-untyped-def]
    return {j: w.status for j, w in v.per_neuron.items()}


def test_local_pool_and_dask_match_serial() -> None:
    distributed = pytest.importorskip("distributed")
    net = _net()
    serial = dtd.find_root_exit(net, ZPlus(), layer=1, domain=(0, 1), timeout=4)
    local = dtd.find_root_exit(net, ZPlus(), layer=1, domain=(0, 1), timeout=4, executor="local")
    assert _statuses(serial) == _statuses(local)
    assert serial.status == "refuted" and _statuses(serial)[0] == "refuted"
    # a worker process, not a thread: Z3's global context is not thread-safe, and a threaded in-process worker
    # raced the main thread's garbage collection of Z3 objects (a segfault in Z3_solver_dec_ref, seen once in CI)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, protocol="tcp", dashboard_address=None) as cluster:
        address = cluster.scheduler_address  # tcp://HOST:PORT
        via_dask = dtd.find_root_exit(net, ZPlus(), layer=1, domain=(0, 1), timeout=4,
                                      executor="dask://" + address.split("://", 1)[1])
        assert _statuses(via_dask) == _statuses(serial)
        assert via_dask.per_neuron[0].counterexample.replay(net, ZPlus())

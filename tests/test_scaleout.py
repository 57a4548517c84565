"""Scale-out (issue 15, item 4): root-exit search over every layer of a small network through a dask.distributed
LocalCluster (a Client object, and its scheduler address) and the local process pool gives the serial verdicts;
the executor ships arguments shared by all tasks once per worker. No timings are asserted."""

from __future__ import annotations

import os
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
        assert not client.who_has()  # the scattered shared arguments were released


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

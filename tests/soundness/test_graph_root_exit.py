"""find_root_exit on operator graphs with mutant rules (one per Rule method an engine reads) and catalogue rules:
every answer must be right or Unknown. Refuted: the counterexample replays exactly. Proved: an exact grid of the
box holds no input whose root leaves the region (the region verdict of root_regions, exact-only path)."""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import dtd_formal as dtd
from dtd_formal.errors import InputError
from dtd_formal.graph import GraphBuilder
from dtd_formal.rules.parse import parse_rule

from graph_nets import pool_net as _pool_net
from mutants import SOUNDNESS_MUTANTS

F = Fraction


def _conv_net() -> Any:
    g = GraphBuilder((1, 3))
    h = g.relu(g.conv(g.input, [[[1, F(1, 2)]], [[F(1, 4), 1]]], [F(-1, 8), F(1, 8)]))
    h = g.maxpool(h, (2,))
    return g.network(g.dense(g.relu(g.dense(g.flatten(h), [[1, -1], [1, 1]], [0, F(-1, 4)])), [[1, 1]], [0]))


NETS = {"pool": _pool_net, "conv": _conv_net}
BOXES = {"pool": [([F(99, 100)] * 2, [F(101, 100)] * 2), ([F(1, 2), 0], [1, F(1, 4)])],
         "conv": [([F(1, 2)] * 3, [F(3, 5)] * 3), ([F(9, 10), 0, F(1, 10)], [1, F(1, 10), F(2, 10)])]}
RULES = [parse_rule(s) for s in ("zplus", "wsquare", "gamma:0.25", "zbox:-1,2")] + [
    m for ms in SOUNDNESS_MUTANTS.values() for m in ms]


def _grid(low: list[Any], high: list[Any], k: int = 5) -> list[list[Fraction]]:
    axes = [[F(a) + (F(b) - F(a)) * F(i, k) for i in range(k + 1)] for a, b in zip(low, high)]
    return [list(p) for p in itertools.product(*axes)]


@pytest.mark.parametrize("net_name", sorted(NETS))
@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{type(r).__name__}-{r.spec()}")
def test_graph_root_exit_is_right_or_unknown(net_name: str, rule: Any) -> None:
    net = NETS[net_name]()
    import dtd_formal.graph.explain as graph_explain

    for box in BOXES[net_name]:
        for j in range(net.nodes[net.layer(1).node].n_out):
            try:
                v = dtd.find_root_exit(net, rule, layer=1, neuron=j, domain=box, timeout=1.5)
            except InputError:
                continue  # a rule the engine cannot evaluate is an error, named (never a verdict)
            if v.status == "refuted":
                assert v.counterexample.replay(net, rule)
            elif v.status == "proved":
                original = graph_explain.certified_graph_forward

                def exact_only(*a: Any, **k: Any) -> Any:
                    c = original(*a, **k)
                    c.uncertain[:] = True
                    return c

                graph_explain.certified_graph_forward = exact_only
                try:
                    for x in _grid(*box):
                        rep = dtd.root_regions(net, x, rule, layers=1, neurons=[j])
                        assert not any(r.leaves_pattern for r in rep.records), (v.method, x)
                finally:
                    graph_explain.certified_graph_forward = original

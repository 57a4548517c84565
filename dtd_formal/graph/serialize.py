"""The package's exact JSON form of a network graph (``"format": "dtd_formal.graph/1"``).

Each node is written by what defines it, not by its derived patch arrays: a conv by its kernel, bias and geometry;
a pool by its window; an index map by its permutation; constants as "num/den" strings. Reading rebuilds the
graph with :class:`~dtd_formal.graph.build.GraphBuilder`, so the patch form is always re-derived, never trusted.
A conv whose bias varies over positions (a folded input normalisation) stores the per-neuron bias.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import array_from_json, array_to_json
from .network import GRAPH_FORMAT, GraphNetwork
from .operators import size


def _node_json(node: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"op": node.kind, "name": node.name, "inputs": list(node.inputs)}
    if node.kind == "input":
        out["shape"] = list(node.shape)
    elif node.kind == "dense":
        out.update(weight=array_to_json(node.W), bias=array_to_json(node.b))
    elif node.kind == "conv":
        n_pos = size(node.shape[1:])
        per_channel = all(node.b[c * n_pos:(c + 1) * n_pos].tolist() == [node.b[c * n_pos]] * n_pos
                          for c in range(node.shape[0]))
        bias = array_to_json(node.b[::n_pos]) if per_channel else {"per_neuron": array_to_json(node.b)}
        out.update(kernel=array_to_json(node.kernel), bias=bias, strides=list(node.strides), pads=list(node.pads),
                   dilations=list(node.dilations), groups=node.groups)
    elif node.kind in ("maxpool", "avgpool"):
        out.update(window=dict(node.window))  # recorded by the builder
    elif node.kind == "scale":
        out.update(d=array_to_json(node.d), c=array_to_json(node.c))
    elif node.kind == "gather":
        out.update(shape=list(node.shape), perm=[int(v) for v in node.perm])
    elif node.kind == "concat":
        out.update(shape=list(node.shape), parts=[[int(v) for v in p] for p in node.parts])
    return out


def graph_to_json(net: GraphNetwork) -> dict[str, Any]:
    from ..network import _jsonable

    return {"format": GRAPH_FORMAT, "output": net.output, "nodes": [_node_json(n) for n in net.nodes],
            "metadata": _jsonable(net.metadata)}


def graph_from_json(data: Any, source: str = "JSON") -> GraphNetwork:
    """Inverse of :func:`graph_to_json` (strict types; errors name the source and the node)."""
    from .build import GraphBuilder

    if not isinstance(data, dict) or data.get("format") != GRAPH_FORMAT:
        raise InputError(f"{source}: not a dtd_formal network graph (expected \"format\": \"{GRAPH_FORMAT}\")")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes or not isinstance(nodes[0], dict) or nodes[0].get("op") != "input":
        raise InputError(f"{source}: \"nodes\" must be a list starting with the input node")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InputError(f"{source}: \"metadata\" must be an object")
    try:
        g = GraphBuilder(nodes[0]["shape"], str(nodes[0].get("name", "input")))
        for k, nd in enumerate(nodes[1:], start=1):
            if not isinstance(nd, dict) or not isinstance(nd.get("inputs"), list):
                raise InputError(f"node {k}: expected an object with \"inputs\"")
            ins = [int(i) for i in nd["inputs"]]
            if any(not 0 <= i < k for i in ins):
                raise InputError(f"node {k}: inputs {ins} must come before it")
            name, op = str(nd.get("name", "")), nd.get("op")
            if op == "dense":
                g.dense(ins[0], array_from_json(nd["weight"]), array_from_json(nd["bias"]), name)
            elif op == "conv":
                bias = nd["bias"]
                per_neuron = isinstance(bias, dict)
                b = array_from_json(bias["per_neuron"] if per_neuron else bias)
                node = g.conv(ins[0], array_from_json(nd["kernel"]), None if per_neuron else b, nd["strides"],
                              nd["pads"], nd["dilations"], int(nd["groups"]), name)
                if per_neuron:
                    if b.shape != (g.nodes[node].n_out,):
                        raise InputError(f"node {k}: per-neuron bias of shape {b.shape}")
                    g.nodes[node].b = b
            elif op == "relu":
                g.relu(ins[0], name)
            elif op == "maxpool":
                w = nd["window"]
                g.maxpool(ins[0], w["kernel"], w["strides"], w["pads"], name)
            elif op == "avgpool":
                w = nd["window"]
                g.avgpool(ins[0], w["kernel"], w["strides"], w["pads"], bool(w.get("count_include_pad", False)), name)
            elif op == "add":
                g.add(ins[0], ins[1], name)
            elif op == "scale":
                g.scale(ins[0], array_from_json(nd["d"]).reshape(g.shape(ins[0])),
                        array_from_json(nd["c"]).reshape(g.shape(ins[0])), name)
            elif op == "gather":
                perm = np.asarray(nd["perm"], dtype=np.int64)
                shape = tuple(int(s) for s in nd["shape"])
                n_in = size(g.shape(ins[0]))
                if perm.shape != (size(shape),) or (perm.size and (perm.min() < 0 or perm.max() >= n_in)):
                    raise InputError(f"node {k}: permutation does not fit the shapes")
                from .operators import Gather

                g._add(Gather(name, ins, shape, perm))
            elif op == "concat":
                from .operators import Concat

                parts = [np.asarray(p, dtype=np.int64) for p in nd["parts"]]
                shape = tuple(int(s) for s in nd["shape"])
                if sorted(np.concatenate(parts).tolist()) != list(range(size(shape))):
                    raise InputError(f"node {k}: concatenation parts do not cover the output")
                g._add(Concat(name, ins, shape, parts))
            else:
                raise InputError(f"node {k}: unknown operator {op!r}")
        output = data.get("output", len(nodes) - 1)
        if not isinstance(output, int) or isinstance(output, bool) or not 0 <= output < len(nodes):
            raise InputError(f"\"output\" must be a node index, got {output!r}")
        return g.network(output, metadata)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{source}: malformed node ({type(exc).__name__}: {exc})") from None


__all__ = ["graph_to_json", "graph_from_json"]

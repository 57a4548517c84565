r"""The network as a graph of exact piecewise-linear operators (:mod:`dtd_formal.graph.operators`).

A :class:`GraphNetwork` holds its operators in topological order (node 0 is the input), the output node, and its
*layers*: the affine operators (dense or conv) numbered 1..L in graph order, each with the ReLU that directly
follows it (when its only reader is a ReLU). "Layer l" for a rule is such an operator with its ReLU; a neuron of a
conv layer is (channel, y, x), flat index ``c * H * W + y * W + x``.

Values are flat arrays (C-order). Evaluation (:meth:`GraphNetwork.evaluate`) runs every operator's forward over an
ops namespace; ``override`` replaces the value of one node (the root of a layer's input: every node downstream is
recomputed, every other node keeps its value, so a residual branch that skips the layer stays at its input value),
and ``linear`` keeps one neuron of a ReLU node linear (the root semantics: neuron j is held on its input phase).

The activation pattern has one entry per ReLU node (signs of its input, +1/0/-1) and one per MaxPool node (per
window, the set of positions that attain the maximum). Two points lie in one closed region iff no ReLU input has
strictly opposite signs and every max-pool window has a common winner.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..exact import array_to_json, sign, to_fraction_array
from ..rules.ops import EXACT, FAST_EXACT, FLOAT64
from .operators import (LAYER_KINDS, Conv, Dense, Input, MaxPool, Operator, Relu, is_residue_vector, scatter_dot,
                        size, transposed_patch_matrix)

GRAPH_FORMAT = "dtd_formal.graph/1"


@dataclass
class LayerInfo:
    """Layer l of a graph: its node, the node it reads (its input a_{l-1}), its ReLU node (or None)."""

    layer: int
    node: int
    input_node: int
    relu_node: int | None


class GraphNetwork:
    """A network graph (module docstring). ``dtd.lrp``, ``dtd.roots`` and ``dtd.root_regions`` accept it.

    Parameters
    ----------
    nodes : operators in topological order; ``nodes[0]`` is the :class:`Input`
    output : the id of the output node (default: the last)
    metadata : free-form information (source file, input layout, natural input domain)
    """

    is_graph = True

    def __init__(self, nodes: Sequence[Operator], output: int | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        if not nodes or not isinstance(nodes[0], Input):
            raise InputError("a network graph starts with its input node")
        self.nodes = list(nodes)
        self.output = len(self.nodes) - 1 if output is None else output
        self.metadata: dict[str, Any] = dict(metadata or {})
        for k, node in enumerate(self.nodes):
            if any(not 0 <= i < k for i in node.inputs):
                raise InputError(f"node {node.name!r} reads a node that does not come before it")
        self.readers: list[list[int]] = [[] for _ in self.nodes]
        for k, node in enumerate(self.nodes):
            for i in node.inputs:
                self.readers[i].append(k)
        self.layers: list[LayerInfo] = []
        for k, node in enumerate(self.nodes):
            if node.kind in LAYER_KINDS:
                readers = self.readers[k]
                relu = readers[0] if len(readers) == 1 and self.nodes[readers[0]].kind == "relu" else None
                self.layers.append(LayerInfo(len(self.layers) + 1, k, node.inputs[0], relu))

    # ------------------------------------------------------------------ shape
    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.nodes[0].shape

    @property
    def input_size(self) -> int:
        return self.nodes[0].n_out

    @property
    def output_size(self) -> int:
        return self.nodes[self.output].n_out

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def relu_nodes(self) -> list[int]:
        return [k for k, n in enumerate(self.nodes) if n.kind == "relu"]

    @property
    def n_relus(self) -> int:
        return sum(self.nodes[k].n_out for k in self.relu_nodes)

    def layer(self, l: int) -> LayerInfo:
        """Layer l (1-based)."""
        self.check_layer(l)
        return self.layers[l - 1]

    def check_layer(self, layer: int) -> None:
        if not isinstance(layer, (int, np.integer)) or not 1 <= layer <= self.n_layers:
            raise InputError(f"layer {layer!r} does not exist: layers are numbered 1..{self.n_layers}")

    def check_output(self, output: int) -> None:
        if not isinstance(output, (int, np.integer)) or not 0 <= output < self.output_size:
            raise InputError(f"output {output!r} does not exist: the network has outputs 0..{self.output_size - 1}")

    def has_relu(self, layer: int) -> bool:
        return self.layer(layer).relu_node is not None

    def neuron_index(self, layer: int, neuron: int | Sequence[int]) -> int:
        """The flat index of a neuron given as an int or as (channel, y, x) (conv layers)."""
        shape = self.nodes[self.layer(layer).node].shape
        if isinstance(neuron, (int, np.integer)):
            j = int(neuron)
        else:
            coords = [int(c) for c in neuron]
            if len(coords) != len(shape) or any(not 0 <= c < s for c, s in zip(coords, shape)):
                raise InputError(f"layer {layer}: neuron {tuple(coords)} is outside its shape {shape}")
            j = int(np.ravel_multi_index(coords, shape))
        if not 0 <= j < size(shape):
            raise InputError(f"layer {layer} has neurons 0..{size(shape) - 1} (shape {shape}), got {neuron!r}")
        return j

    def neuron_coords(self, layer: int, j: int) -> tuple[int, ...]:
        return tuple(int(c) for c in np.unravel_index(j, self.nodes[self.layer(layer).node].shape))

    def __repr__(self) -> str:
        kinds = "-".join(f"{n.kind}{list(n.shape)}" for n in self.nodes[1:] if n.kind in LAYER_KINDS + ("maxpool",))
        return f"GraphNetwork(input {list(self.input_shape)}, {kinds})"

    # ------------------------------------------------------------------ inputs
    def as_input(self, x: Any, name: str = "input") -> np.ndarray:
        arr = to_fraction_array(x, name)
        if arr.size != self.input_size or (arr.ndim > 1 and arr.shape != self.input_shape):
            raise InputError(f"{name}: expected {self.input_size} values (shape {self.input_shape}), got shape "
                             f"{arr.shape}")
        return arr.reshape(-1)

    def as_batch(self, xs: Any, name: str = "inputs") -> np.ndarray:
        arr = to_fraction_array(xs, name)
        if arr.size == self.input_size and arr.ndim <= len(self.input_shape):
            return arr.reshape(1, -1)
        if arr.ndim < 2 or arr[0].size != self.input_size:
            raise InputError(f"{name}: expected rows of {self.input_size} values (shape {self.input_shape}), got "
                             f"shape {arr.shape}")
        return arr.reshape(arr.shape[0], -1)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, ops: Any, x: Any, base: list[Any] | None = None, override: tuple[int, Any] | None = None,
                 linear: tuple[int, int] | None = None, hook: Any = None,
                 choices: dict[int, Any] | None = None) -> list[Any]:
        """Values of every node at input x (flat arrays in the numbers of ``ops``).

        ``override`` = (node, value) replaces that node's value; with ``base`` (the values of a previous
        evaluation) only the nodes downstream of the overridden one are recomputed. ``linear`` = (relu node,
        neuron) passes that neuron's input unchanged. ``choices`` fixes the piece: {relu node: 0/1 pass mask,
        maxpool node: winning window position per window} (the affine map of one pattern). ``hook(node_id,
        value) -> value`` may replace each computed value (the Z3 encoding names its variables there).
        """
        vals: list[Any] = [None] * len(self.nodes)
        dirty = np.zeros(len(self.nodes), dtype=bool)
        for k, node in enumerate(self.nodes):
            if override is not None and k == override[0]:
                vals[k] = override[1]
                dirty[k] = True
                continue
            if base is not None and override is not None and not any(dirty[i] for i in node.inputs):
                vals[k] = base[k]
                continue
            dirty[k] = base is not None and override is not None
            if k == 0:
                v = x
            elif choices is not None and k in choices:
                v = _fixed_choice(ops, node, vals[node.inputs[0]], choices[k])
            else:
                v = node.forward(ops, [vals[i] for i in node.inputs])
                if linear is not None and k == linear[0]:
                    v = v.copy()
                    v[linear[1]] = vals[node.inputs[0]][linear[1]]
            vals[k] = hook(k, v) if hook is not None else v
        return vals

    def values(self, x: Any) -> list[np.ndarray]:
        """Exact values of every node at x (Fractions)."""
        return self.evaluate(EXACT, self.as_input(x))

    def forward(self, x: Any) -> np.ndarray:
        return self.values(x)[self.output]

    def layer_values(self, vals: list[Any], layer: int) -> tuple[Any, Any]:
        """(a_{l-1}, z_l) of layer l from node values."""
        info = self.layer(layer)
        return vals[info.input_node], vals[info.node]

    def pattern(self, x: Any) -> dict[int, Any]:
        """Activation pattern at x: {relu node: int8 signs of its input, maxpool node: winner sets per window}."""
        return pattern_of(self, self.values(x))

    def gradient(self, x: Any, output: int = 0) -> np.ndarray:
        """Exact gradient of f_output at x (relu'(0) = 0; a max-pool's gradient goes to its first winner)."""
        self.check_output(output)
        vals = self.values(x)
        return backward_gradient(self, EXACT, vals, output)

    # ------------------------------------------------------------------ affine pieces (:mod:`.pieces`)
    def affine_map(self, pattern: dict[int, Any], output: int = 0) -> tuple[np.ndarray, Fraction]:
        """(g, c) with f_output(x) = g·x + c on the closed region of ``pattern``."""
        from .pieces import graph_affine_map

        return graph_affine_map(self, pattern, output)

    def local_affine(self, pattern: dict[int, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(A_l, c_l)] with z_l(x) = A_l x + c_l on the pattern's region, for the layers l = 1..L."""
        from .pieces import piece_maps

        maps = piece_maps(self, pattern)
        return [maps[info.node] for info in self.layers]

    def region(self, pattern: dict[int, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The closed region of ``pattern`` as exact (A, b): {x : A x <= b} (ReLU signs and max-pool winners)."""
        from .pieces import graph_region

        return graph_region(self, pattern)

    def first_winners(self, vals: list[Any]) -> dict[int, list[int]]:
        """{maxpool node: the window position of each window's first maximum} from exact node values (the winner
        the forward value, the gradient and the winner-take-all relevance of the pool use)."""
        return {k: [min(w) for w in node.winners(vals[node.inputs[0]])]  # type: ignore[attr-defined]
                for k, node in enumerate(self.nodes) if node.kind == "maxpool"}

    def with_winners(self, winners: dict[int, Sequence[int]]) -> "GraphNetwork":
        r"""The graph with each listed max pool pinned to one winner per window: node k becomes the index map
        :math:`y_r = x_{\mathrm{idx}[r, m_r]}` (a :class:`~dtd_formal.graph.operators.Gather`) for the window
        positions :math:`m_r` = ``winners[k][r]``; node ids, layers and every other operator are unchanged.

        On the region where :math:`m_r` is the first maximum of every window r (:math:`x_{m_r} > x_i` for the
        window's earlier positions, :math:`\ge` for the later ones) the pinned graph has the same forward values,
        gradient and relevance as the original: a max pool's value, gradient and winner-take-all relevance are all
        those of its first maximum. This is the arg-max case split of the graph's Z3 encoding
        (:func:`dtd_formal.smt.violations.graph_violation_query`), whose walk then needs no truth value of a term.
        """
        from .operators import Gather

        nodes = list(self.nodes)
        for k, win in winners.items():
            node = nodes[k]
            if node.kind != "maxpool" or len(win) != node.n_out:
                raise InputError(f"node {k} is not a max pool with {len(win)} windows")
            idx = node.idx  # type: ignore[attr-defined]
            perm = np.array([idx[r, int(m)] for r, m in enumerate(win)], dtype=np.int64)
            nodes[k] = Gather(node.name, list(node.inputs), node.shape, perm)
        return GraphNetwork(nodes, self.output, self.metadata)

    def upper(self, layer: int) -> "GraphNetwork":
        """The sub-graph of layers ``layer``..L (refused across a skip connection)."""
        from .pieces import graph_upper

        return graph_upper(self, layer)

    def to_sympy(self, pattern: dict[int, Any] | None = None, output: int | None = None, **kwargs: Any) -> Any:
        """Exact SymPy form: global (budgeted) or the affine form of one pattern
        (:func:`dtd_formal.symbolic.translate.graph_to_sympy`, imported lazily)."""
        from ..symbolic.translate import graph_to_sympy

        return graph_to_sympy(self, pattern, output=output, **kwargs)

    # ------------------------------------------------------------------ identity, JSON
    def to_json(self) -> dict[str, Any]:
        from .serialize import graph_to_json

        return graph_to_json(self)

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "JSON") -> "GraphNetwork":
        from .serialize import graph_from_json

        return graph_from_json(data, source)

    def save(self, path: Any) -> None:
        from pathlib import Path

        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    def digest(self) -> str:
        """``"sha256:<hex>"`` of the canonical exact JSON (metadata excluded)."""
        data = self.to_json()
        data.pop("metadata", None)
        return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["nodes"] = [_uncached(n) for n in self.nodes]
        return state


def _uncached(node: Operator) -> Operator:
    """A copy of an operator without its per-backend caches (Z3 terms do not pickle)."""
    import copy

    out = copy.copy(node)
    out.__dict__.pop("converted", None)
    return out


# ---------------------------------------------------------------------------------------------------- patterns
def pattern_of(net: GraphNetwork, vals: list[Any]) -> dict[int, Any]:
    """{relu node: signs of its input (int8), maxpool node: winner sets} from exact node values."""
    out: dict[int, Any] = {}
    for k, node in enumerate(net.nodes):
        if node.kind == "relu":
            out[k] = sign(np.asarray(vals[node.inputs[0]], dtype=object))
        elif node.kind == "maxpool":
            out[k] = node.winners(vals[node.inputs[0]])  # type: ignore[attr-defined]
    return out


def _fixed_choice(ops: Any, node: Operator, x: Any, choice: Any) -> Any:
    """A ReLU with a fixed pass mask, or a max pool with fixed winners (window positions)."""
    if node.kind == "relu":
        return ops.where(np.asarray(choice, dtype=bool), x, ops.zero)
    cols = np.array([node.idx[r, m] for r, m in enumerate(choice)], dtype=np.int64)  # type: ignore[attr-defined]
    return x[cols]


def backward_gradient(net: GraphNetwork, ops: Any, vals: list[Any], output: int,
                      masks: dict[int, Any] | None = None, stop: int = 0, keep: set[int] | None = None,
                      hook: Any = None) -> Any:
    r"""The gradient of :math:`f_c` with respect to node ``stop`` (default: the input) by one backward pass, or
    (``masks``) of the affine piece with the given choices: {relu node: 0/1 pass mask, maxpool node: winning window
    position per window}. Without masks the choices are read off ``vals``: relu'(0) = 0, the first maximum of each
    window wins. ``keep``: only these nodes pass gradient (the others are held constant: a branch that does not
    depend on ``stop``)."""
    grads: list[Any] = [None] * len(net.nodes)
    g = ops.zeros_like(vals[net.output])
    g[output] = ops.one if not isinstance(ops.one, np.ndarray) else ops.one[()]
    grads[net.output] = g
    for k in range(len(net.nodes) - 1, stop, -1):
        g = grads[k]
        if g is None or (keep is not None and k not in keep):
            continue
        node = net.nodes[k]
        for i, gi in zip(node.inputs, _input_grads(net, ops, k, vals, g, masks)):
            grads[i] = gi if grads[i] is None else grads[i] + gi
            if hook is not None:
                grads[i] = hook(i, grads[i])
    return grads[stop] if grads[stop] is not None else ops.zeros_like(vals[stop])


def _input_grads(net: GraphNetwork, ops: Any, k: int, vals: list[Any], g: Any, masks: dict[int, Any] | None) -> list[Any]:
    """Vector-Jacobian products of node k for its inputs."""
    node = net.nodes[k]
    a = vals[node.inputs[0]]
    if node.kind == "dense":
        W, _ = node.arrays(ops)  # type: ignore[attr-defined]
        return [ops.matmul(ops.transpose(W), g)]
    if node.kind in ("conv", "avgpool"):
        if is_residue_vector(ops, g):  # int64 residues: the transposed sparse patch matrix (the same integers)
            return [transposed_patch_matrix(node, ops, len(a)) @ g]
        Wg, _ = node.arrays(ops)  # type: ignore[attr-defined]
        return [scatter_dot(ops, Wg, g, node.idx, len(a))]  # type: ignore[attr-defined]
    if node.kind == "relu":
        mask = masks[k] if masks is not None and k in masks else a > 0
        return [ops.where(mask, g, ops.zero)]
    if node.kind == "maxpool":
        win = masks[k] if masks is not None and k in masks else [min(w) for w in node.winners(a)]  # type: ignore[attr-defined]

        cols = np.array([node.idx[r, m] for r, m in enumerate(win)], dtype=np.int64)  # type: ignore[attr-defined]
        out = ops.zeros_like(a)
        for r, c in enumerate(cols):
            out[c] = out[c] + g[r]
        return [out]
    if node.kind == "add":
        return [g, g]
    if node.kind == "scale":
        from .operators import converted

        d, _ = converted(node, ops, ("d", "c"))
        return [d * g]
    if node.kind == "gather":
        out = ops.zeros_like(a)
        for pos, src in enumerate(node.perm):  # type: ignore[attr-defined]
            out[src] = out[src] + g[pos]
        return [out]
    if node.kind == "concat":
        return [g[pos] for pos in node.parts]  # type: ignore[attr-defined]
    raise InputError(f"no gradient for operator {node.kind!r} ({node.name})")


__all__ = ["GraphNetwork", "LayerInfo", "pattern_of", "backward_gradient", "GRAPH_FORMAT"]

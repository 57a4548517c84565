r"""LRP, root points and root-region verdicts on network graphs, exactly: the walk of :mod:`dtd_formal.walk` over
every operator of :mod:`dtd_formal.graph.operators`.

Relevance flows from the output back through the graph in reverse topological order (:func:`graph_relevance`):

- the output: :math:`R = f_c(x)\, e_c`;
- a layer (dense, or conv in patch form through :class:`~dtd_formal.graph.patch_ops.PatchOps`): the rule's own
  ``redistribute`` (every call checked by :func:`dtd_formal.walk.call_rule`);
- ReLU: the gate :math:`[z > 0]` (its gradient); MaxPool: winner takes all (the first maximum of each window, its
  gradient); index maps and concatenations: relevance moves with the values;
- AvgPool, a residual Add and an elementwise Scale: proportional,
  :math:`R_i = x_i \sum_j T_{ji} R_j / n_j` with :math:`n = \mathcal{T}(x)` (zennit's ``Norm``; stabilised with
  zennit's epsilon under ``bias="zennit"``), as the torch backend does;
- a node read by several others sums the relevance they send back.

Roots of layer l live in the input space of its input node; a root of a conv neuron differs from the layer input
only on the neuron's receptive field. Region verdicts (:func:`graph_root_regions`) re-evaluate the graph from the
layer's input node with the root in place (neuron j held linear; everything not downstream keeps its value) and
compare the patterns: a ReLU input of the scope with strictly opposite signs, or a max-pool window without a common
winner, leaves the closed region; the affine map of :math:`f_c` as a function of :math:`a_{l-1}` is compared
exactly for the two closest patterns (zeros and ties resolved toward the other point).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from fractions import Fraction
from typing import Any, Iterable

import numpy as np

from ..errors import InputError
from ..exact import fast_to_fraction, from_fast, to_fast, to_float
from ..rules.base import ZENNIT_STABILIZER, Rule
from ..rules.composites import Composite, rule_for_layer
from ..rules.ops import FAST_EXACT
from ..walk import LayerStep, call_rule, scalar, top_relevance
from .certified import certified_graph_forward
from .network import GraphNetwork, backward_gradient
from .operators import gather_rows, scatter_dot
from .patch_ops import PatchOps


# ---------------------------------------------------------------------------------------------------- layer views
def layer_view(net: GraphNetwork, ops: Any, l: int, vals: list[Any]) -> tuple[Any, Any, Any, Any]:
    """(ops, a, W, b) in which a rule evaluates layer l: the dense layer as it is, a conv layer in patch form."""
    info = net.layer(l)
    node = net.nodes[info.node]
    a = vals[info.input_node]
    W, b = node.arrays(ops)  # type: ignore[attr-defined]
    if node.kind == "conv":
        return PatchOps(ops, node.idx, len(a)), gather_rows(ops, a, node.idx), W, b  # type: ignore[attr-defined]
    return ops, a, W, b


def _kind(net: GraphNetwork, l: int) -> str:
    return "conv" if net.nodes[net.layer(l).node].kind == "conv" else "linear"


# ---------------------------------------------------------------------------------------------------- relevance
def _proportional(ops: Any, x: Any, y: Any, R: Any, zennit: bool) -> Any:
    """s = R / n with n = y (stabilised under the zennit convention)."""
    n = ops.stabilise(y, ops.const(ZENNIT_STABILIZER)) if zennit else y
    return ops.safe_divide(R, n)


def graph_relevance(ops: Any, net: GraphNetwork, vals: list[Any], rule_or_composite: Rule | Composite, output: int,
                    top: Any = None, activation: str = "gate") -> tuple[list[Any], list[LayerStep]]:
    """Relevance of every node's output (module docstring) and the step of every layer (L..1); a ReLU gates its
    relevance with ``activation="gate"`` and passes it unchanged with "pass" (:data:`dtd_formal.walk.ACTIVATIONS`)."""
    if activation not in ("gate", "pass"):
        raise ValueError(f"activation must be 'gate' or 'pass', got {activation!r}")
    L = net.n_layers
    layer_of = {info.node: info.layer for info in net.layers}
    rules = {l: rule_for_layer(rule_or_composite, l, L, _kind(net, l)) for l in range(1, L + 1)}
    zennit = any(r.bias == "zennit" for r in rules.values())
    R: list[Any] = [None] * len(net.nodes)
    R[net.output] = top_relevance(ops, vals[net.output], output) if top is None else top
    steps: list[LayerStep] = []
    for k in range(len(net.nodes) - 1, 0, -1):
        Rk = R[k]
        if Rk is None:  # no relevance reached this node: every layer still takes its step (with R = 0)
            Rk = R[k] = ops.zeros_like(vals[k])
        node = net.nodes[k]
        x = vals[node.inputs[0]]
        if k in layer_of:
            l = layer_of[k]
            lops, a, W, b = layer_view(net, ops, l, vals)
            low = call_rule(rules[l], "redistribute", lops, a, W, b, Rk, layer=l, shapes=[np.shape(x)])
            steps.append(LayerStep(l, rules[l], Rk, low, low))
            sends = [low]
        elif node.kind == "relu":
            sends = [ops.where(x > 0, Rk, ops.zero) if activation == "gate" else Rk]
        elif node.kind == "maxpool":
            win = _first_winners(ops, node, x)
            out = ops.zeros_like(x)
            for r, c in enumerate(win):
                out[c] = out[c] + Rk[r]
            sends = [out]
        elif node.kind == "avgpool":
            Wg, _ = node.arrays(ops)  # type: ignore[attr-defined]
            s = _proportional(ops, x, vals[k], Rk, zennit)
            sends = [x * scatter_dot(ops, Wg, s, node.idx, len(x))]  # type: ignore[attr-defined]
        elif node.kind == "add":
            p, q = vals[node.inputs[0]], vals[node.inputs[1]]
            s = _proportional(ops, p, p + q, Rk, zennit)
            sends = [p * s, q * s]
        elif node.kind == "scale":
            from .operators import converted

            d, _ = converted(node, ops, ("d", "c"))
            sends = [x * d * _proportional(ops, x, vals[k], Rk, zennit)]
        elif node.kind == "gather":
            out = ops.zeros_like(x)
            for pos, src in enumerate(node.perm):  # type: ignore[attr-defined]
                out[src] = out[src] + Rk[pos]
            sends = [out]
        elif node.kind == "concat":
            sends = [Rk[pos] for pos in node.parts]  # type: ignore[attr-defined]
        else:  # pragma: no cover - every operator kind is handled above
            raise InputError(f"no relevance rule for operator {node.kind!r} ({node.name})")
        for i, s in zip(node.inputs, sends):
            R[i] = s if R[i] is None else R[i] + s
    for k, v in enumerate(R):
        if v is None:
            R[k] = ops.zeros_like(vals[k])
    return R, steps


def _first_winners(ops: Any, node: Any, x: Any) -> list[int]:
    """Flat input position of the first maximum of each window (exact or float values)."""
    cols = np.asarray(x, dtype=object)[node.idx]
    return [int(ids[int(np.argmax([v == max(row) for v in row]))]) for row, ids in zip(cols, node.idx)]


@dataclass
class GraphRelevance:
    """Result of :func:`graph_lrp`: ``input`` = R^0 (input relevance, flat, exact Fractions), ``per_node`` the
    relevance of every node's output, ``per_layer[l]`` the relevance of layer l's output (l = 1..L; index 0 is
    the input), ``conservation`` the totals per layer (summed exactly on first access: on a convnet the exact
    total of the input relevances alone takes seconds, and most callers never read it)."""

    input: np.ndarray
    per_node: list[np.ndarray]
    per_layer: list[np.ndarray]
    rules: list[Rule]
    output: int
    arithmetic: str = "exact"
    totals: Any = field(default=None, repr=False)  #: () -> the conservation list (called once)

    @cached_property
    def conservation(self) -> list[Any]:
        return self.totals()

    @property
    def total_absorbed(self) -> Any:
        return sum((c.absorbed for c in self.conservation), Fraction(0))


def graph_lrp(net: GraphNetwork, x: Any, rule_or_composite: Rule | Composite, output: int = 0,
              arithmetic: str = "exact", activation: str | None = None) -> GraphRelevance:
    """LRP on a graph (module docstring): exact by default (computed with gmpy2 rationals, returned as
    Fractions), or ``arithmetic="float64"`` (the same rule bodies in floats); ``activation`` as in
    :func:`dtd_formal.lrp` (default: "pass" under the zennit bias convention, else "gate")."""
    from ..dtd import LayerConservation
    from ..exact import to_float
    from ..rules.ops import FLOAT64
    from ..walk import resolve_activation

    net.check_output(output)
    if not net.layers:
        raise InputError("the network graph has no dense or conv layer to explain")
    L = net.n_layers
    activation = resolve_activation(
        activation, [rule_for_layer(rule_or_composite, l, L, _kind(net, l)) for l in range(1, L + 1)])
    if arithmetic == "exact":
        ops, convert, total = FAST_EXACT, from_fast, fast_to_fraction
        vals = net.evaluate(ops, to_fast(net.as_input(x)))
    elif arithmetic == "float64":
        ops, convert, total = FLOAT64, (lambda v: v), float  # type: ignore[assignment]
        vals = net.evaluate(ops, to_float(net.as_input(x)))
    else:
        raise InputError(f"arithmetic must be 'exact' or 'float64', got {arithmetic!r}")
    R, steps = graph_relevance(ops, net, vals, rule_or_composite, output, activation=activation)
    per_node = [convert(v) for v in R]
    per_layer = [per_node[0]] + [per_node[info.node] for info in net.layers]
    ordered = sorted(steps, key=lambda s: s.layer)
    rules: list[Rule] = [None] * net.n_layers  # type: ignore[list-item]
    for st in ordered:
        rules[st.layer - 1] = st.rule

    def totals() -> list[Any]:
        out = []
        for st in ordered:
            lops, a, W, b = layer_view(net, ops, st.layer, vals)
            dropped = call_rule(st.rule, "dropped_neurons", lops, a, W, b, st.upper, layer=st.layer)
            out.append(LayerConservation(st.layer, total(ops.sum(st.upper)), total(ops.sum(st.lower)),
                                         [int(j) for j in dropped]))
        return out

    return GraphRelevance(per_node[0], per_node, per_layer, rules, output, arithmetic, totals)


# ---------------------------------------------------------------------------------------------------- roots
def graph_candidates(net: GraphNetwork, vals: list[Any], l: int, output: int) -> tuple[list[int], dict[int, str]]:
    """Neurons of layer l that carry relevance (active; in the output layer only the explained output)."""
    info = net.layer(l)
    z = vals[info.node]
    is_output = net.output in (info.node, info.relu_node)
    keep, skipped = [], {}
    for j in range(len(z)):
        if is_output and j != output:
            skipped[j] = "not explained"
        elif info.relu_node is not None and not z[j] > 0:
            skipped[j] = "inactive"
        else:
            keep.append(j)
    return keep, skipped


@dataclass
class LayerRoots:
    """Root points of some neurons of layer l, held sparsely: t, directions V (rows over each neuron's patch, or
    the whole input for dense layers), den, the patch positions ``idx`` (None for dense layers) and the layer
    input ``a``. :meth:`point` materialises one root in the input space of the layer."""

    layer: int
    neurons: list[int]
    t: Any
    V: Any
    den: Any
    idx: np.ndarray | None
    a: Any

    def rounded_points(self, ks: list[int]) -> np.ndarray:
        """``to_float`` of the roots of the listed neurons (rows), converting only their patches (for conv layers;
        the rest of each row is the layer input's own rounding)."""
        if self.idx is None:
            return to_float(np.array([self.point(k) for k in ks]))
        base = to_float(self.a)
        out = np.tile(base, (len(ks), 1))
        for r, k in enumerate(ks):
            valid = self.idx[k] >= 0
            ids = self.idx[k][valid]
            out[r, ids] = to_float(self.a[ids] - self.t[k] * np.asarray(self.V[k], dtype=object)[valid])
        return out

    def point(self, k: int) -> Any:
        """The root of the k-th listed neuron: a - t_k v_k (on its receptive field for conv layers)."""
        if self.idx is None:
            return self.a - self.t[k] * self.V[k]
        p = self.a.copy()
        for m, i in enumerate(self.idx[k]):
            if i >= 0:
                p[i] = p[i] - self.t[k] * self.V[k][m]
        return p


def graph_layer_roots(net: GraphNetwork, ops: Any, vals: list[Any], l: int, rule: Rule, neurons: list[int],
                      R: Any = None, definition: str = "true") -> LayerRoots:
    """The rule's ``root_step`` on the given neurons of layer l (paper-code: R = their upper relevance)."""
    if definition not in ("true", "paper-code"):
        raise InputError(f"root definition must be 'true' or 'paper-code', got {definition!r}")
    info = net.layer(l)
    node = net.nodes[info.node]
    lops, a, W, b = layer_view(net, ops, l, vals)
    sel = np.array(neurons, dtype=np.int64)
    if node.kind == "conv":
        idx = node.idx[sel]  # type: ignore[attr-defined]
        lops = PatchOps(ops, idx, len(vals[info.input_node]))
        a_rows, W_rows = a[sel], W[sel]
    else:
        idx, a_rows, W_rows = None, a, W[sel]
    k = len(sel)
    t, V, den = call_rule(rule, "root_step", lops, a_rows, W_rows, b[sel], R, definition, layer=l,
                          shapes=[(k,), tuple(np.shape(W_rows)), (k,)])
    return LayerRoots(l, list(neurons), t, V, den, idx, vals[info.input_node])


@dataclass
class GraphRoots:
    """Roots of one layer: neuron -> root point (exact Fractions, flat, in the layer's input space), steps,
    ``skipped`` (neuron -> reason)."""

    layer: int
    layer_input: np.ndarray
    points: dict[int, np.ndarray]
    steps: dict[int, Fraction]
    skipped: dict[int, str]
    rule: Rule
    definition: str
    output: int

    def __getitem__(self, j: int) -> np.ndarray:
        return self.points[j]

    def __iter__(self) -> Any:
        return iter(self.points)

    def __len__(self) -> int:
        return len(self.points)


def graph_roots(net: GraphNetwork, x: Any, rule: Rule, layer: int = 1, output: int = 0,
                definition: str = "true", neurons: Iterable[int] | None = None) -> GraphRoots:
    """Exact train-free roots of the relevant neurons of ``layer`` (all of them, or ``neurons``)."""
    net.check_layer(layer)
    net.check_output(output)
    if not rule.has_root:
        raise InputError(f"{rule.spec()} is not a root-point rule: it has no root points")
    vals = net.evaluate(FAST_EXACT, to_fast(net.as_input(x)))
    keep, skipped = graph_candidates(net, vals, layer, output)
    if neurons is not None:
        wanted = {int(j) for j in neurons}
        keep = [j for j in keep if j in wanted]
    R = None
    if definition == "paper-code" and keep:
        Rn, _ = graph_relevance(FAST_EXACT, net, vals, rule, output)
        R = Rn[net.layer(layer).node][np.array(keep)]
    points, steps = {}, {}
    if keep:
        lr = graph_layer_roots(net, FAST_EXACT, vals, layer, rule, keep, R, definition)
        for k, j in enumerate(keep):
            if lr.den[k] == 0:
                skipped[j] = "zero denominator"
                continue
            points[j] = from_fast(lr.point(k))
            steps[j] = fast_to_fraction(lr.t[k])
    a = from_fast(vals[net.layer(layer).input_node])
    return GraphRoots(layer, a, points, steps, dict(sorted(skipped.items())), rule, definition, output)


# ---------------------------------------------------------------------------------------------------- regions
def downstream(net: GraphNetwork, node: int) -> set[int]:
    """Nodes whose value depends on ``node`` (itself included)."""
    out = {node}
    for k in range(node + 1, len(net.nodes)):
        if any(i in out for i in net.nodes[k].inputs):
            out.add(k)
    return out


def _resolve_signs(own: np.ndarray, other: np.ndarray) -> np.ndarray:
    out = np.where(own != 0, own, other)
    return np.where(out == 0, -1, out).astype(np.int8)


def _resolve_winners(own: list[set[int]], other: list[set[int]]) -> list[int]:
    return [min(a & b) if a & b else min(a) for a, b in zip(own, other)]


def _affine_key(net: GraphNetwork, ops: Any, l: int, vals: list[Any], choices: dict[int, Any], output: int,
                keep: set[int]) -> tuple[tuple[Any, ...], Any]:
    """(gradient, offset) of f_c as a function of layer l's input with fixed choices (relu pass masks, max-pool
    winners as window positions) for the nodes in ``keep``, in the numbers of ``ops`` (exact, or residues)."""
    info = net.layer(l)
    masks = {k: (np.asarray(ch > 0, dtype=bool) if net.nodes[k].kind == "relu" else ch) for k, ch in choices.items()}
    hook = (lambda k, v: ops.reduce(v)) if hasattr(ops, "reduce") else None
    shapes = vals.shapes if isinstance(vals, _Residues) else vals  # with every choice fixed, only shapes are read
    g = backward_gradient(net, ops, shapes, output, masks, stop=info.input_node, keep=keep, hook=hook)
    a = vals[info.input_node]
    fixed = net.evaluate(ops, vals[0], base=vals, override=(info.input_node, a), choices=masks, hook=hook)
    offset = fixed[net.output][output] - ops.sum(g * a)
    if hook is not None:
        offset = int(offset) % ops.p
        return ops.reduce(g).tobytes(), offset
    return tuple(g.tolist()), offset  # exact rationals: compared value by value


def _maps_differ(net: GraphNetwork, l: int, vals: list[Any], vals_mod: list[Any] | None, ch_in: dict[int, Any],
                 ch_rt: dict[int, Any], output: int, keep: set[int], cache: dict[Any, Any] | None = None) -> bool:
    """Whether the affine maps of two choices differ, exactly: residues modulo a prime first (different residues
    prove different maps), rationals when the residues agree (:mod:`dtd_formal.graph.modular`). ``cache`` (one
    input's) remembers the keys of choices already seen: the input's own choices recur for every root."""
    from .modular import MOD

    def key(ops: Any, vs: list[Any], choices: dict[int, Any]) -> Any:
        if cache is None:
            return _affine_key(net, ops, l, vs, choices, output, keep)
        name = (ops.name, l, output, tuple((k, np.asarray(v, dtype=np.int64).tobytes())
                                           for k, v in sorted(choices.items())))
        if name not in cache:
            cache[name] = _affine_key(net, ops, l, vs, choices, output, keep)
        return cache[name]

    from .modular import NotInvertible

    try:
        if vals_mod is not None and key(MOD, vals_mod, ch_in) != key(MOD, vals_mod, ch_rt):
            return True
    except NotInvertible:  # a denominator divisible by the prime: exact arithmetic decides alone
        pass
    return key(FAST_EXACT, vals, ch_in) != key(FAST_EXACT, vals, ch_rt)


@dataclass
class GraphRootRecord:
    """Region verdict for one root of a graph layer (fields as :class:`dtd_formal.regions.RootRegionRecord`;
    ``flipped`` lists (layer, neuron) of ReLU flips and ("maxpool", node name, window) of max-pool changes)."""

    input_index: int
    layer: int
    neuron: int
    exact_root: np.ndarray = field(repr=False)  #: the root in the fast exact type (gmpy2); ``root`` as Fractions
    own_preactivation: Fraction
    leaves_pattern: bool
    leaves_affine_map: bool
    flipped: list[tuple[Any, ...]]
    root_in_domain: bool
    step: Fraction

    @cached_property
    def root(self) -> np.ndarray:
        """The root point (flat, Fractions), converted on first access (3072 numbers per root on a CIFAR net)."""
        return from_fast(self.exact_root)

    def to_json(self) -> dict[str, Any]:
        from ..exact import array_to_json, fraction_to_str

        return {"input_index": self.input_index, "layer": self.layer, "neuron": self.neuron,
                "root": array_to_json(self.root), "step": fraction_to_str(self.step),
                "own_preactivation": fraction_to_str(self.own_preactivation), "leaves_pattern": self.leaves_pattern,
                "leaves_affine_map": self.leaves_affine_map, "flipped": [list(f) for f in self.flipped],
                "root_in_domain": self.root_in_domain}


def graph_root_regions(net: GraphNetwork, xs: Any, rule: Rule, scope: str = "upper", output: int = 0,
                       definition: str = "true", layers: int | Iterable[int] | None = None,
                       neurons: Iterable[int] | None = None, progress: bool = False) -> Any:
    """Classify the roots of the chosen layers (and neurons) for one input or a batch (module docstring).

    Returns a :class:`dtd_formal.regions.RootRegionReport` whose records are :class:`GraphRootRecord`.
    """
    from ..regions import RootRegionReport

    if scope not in ("layer", "upper"):
        raise InputError(f"scope must be 'layer' or 'upper', got {scope!r}")
    if not rule.has_root:
        raise InputError(f"{rule.spec()} is not a root-point rule: it has no root points")
    net.check_output(output)
    batch = net.as_batch(xs)
    layer_list = list(range(1, net.n_layers + 1)) if layers is None else (
        [int(layers)] if isinstance(layers, (int, np.integer)) else [int(l) for l in layers])
    for l in layer_list:
        net.check_layer(l)
    records: list[GraphRootRecord] = []
    skipped: dict[int, dict[str, int]] = {l: {} for l in layer_list}
    domain = rule.domain
    iterator: Iterable[int] = range(len(batch))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="root regions", unit="input")
    wanted = None if neurons is None else {int(j) for j in neurons}
    for i in iterator:
        vals = net.evaluate(FAST_EXACT, to_fast(batch[i]))
        vals_mod = _residues(vals)
        base_pattern = _pattern(net, vals)
        keys: dict[Any, Any] = {}  # affine-map keys of choices seen for this input
        relevance = None
        for l in layer_list:
            info = net.layer(l)
            keep, skip = graph_candidates(net, vals, l, output)
            if wanted is not None:
                keep = [j for j in keep if j in wanted]
                skip = {j: why for j, why in skip.items() if j in wanted}
            R = None
            if definition == "paper-code" and keep:
                if relevance is None:
                    relevance = graph_relevance(FAST_EXACT, net, vals, rule, output)[0]
                R = relevance[info.node][np.array(keep)]
            lr = graph_layer_roots(net, FAST_EXACT, vals, l, rule, keep, R, definition) if keep else None
            scope_nodes = downstream(net, info.input_node)
            live = [(k, j) for k, j in enumerate(keep) if lr.den[k] != 0]  # type: ignore[union-attr]
            separable = _separable_bounds(domain, vals[info.input_node]) if live else None
            for k, j in enumerate(keep):
                if lr.den[k] == 0:  # type: ignore[union-attr]
                    skip[j] = "zero denominator"
            for start in range(0, len(live), _CERTIFIED_BATCH):
                chunk = live[start:start + _CERTIFIED_BATCH]
                roots = [lr.point(k) for k, _ in chunk]  # type: ignore[union-attr]
                forced = (info.relu_node, np.array([j for _, j in chunk])) if info.relu_node is not None else None
                cert = certified_graph_forward(net, vals, info.input_node, np.array(roots), forced,
                                               rounded=lr.rounded_points([k for k, _ in chunk]))  # type: ignore[union-attr]
                for r, ((k, j), root) in enumerate(zip(chunk, roots)):
                    if cert.uncertain[r]:  # exact evaluation decides
                        linear = (info.relu_node, j) if info.relu_node is not None else None
                        rvals = net.evaluate(FAST_EXACT, vals[0], base=vals, override=(info.input_node, root),
                                             linear=linear)
                        root_pattern, own = _pattern(net, rvals), rvals[info.node][j]
                    else:
                        root_pattern, own = _certified_pattern(cert, r, base_pattern), own_preactivation(net, l, j, root)
                    moved = ((lr.idx[k][lr.idx[k] >= 0], separable)  # type: ignore[union-attr]
                             if lr.idx is not None and separable is not None else None)
                    records.append(_classify(net, l, j, i, vals, vals_mod, root_pattern, own, base_pattern, root,
                                             lr.t[k], scope, scope_nodes, output, domain, keys,  # type: ignore[union-attr]
                                             moved))
            for reason in skip.values():
                skipped[l][reason] = skipped[l].get(reason, 0) + 1
    return RootRegionReport(records, rule, scope, definition, output, layer_list, len(batch), skipped)  # type: ignore[arg-type]


class _Residues:
    """Node values modulo the prime of :mod:`~dtd_formal.graph.modular`, lifted when first read (a map key reads
    only the start node and the nodes that do not depend on it; the backward pass needs shapes, ``shapes``).
    Reading a value whose denominator is not invertible raises :class:`~dtd_formal.graph.modular.NotInvertible`."""

    def __init__(self, vals: list[Any]) -> None:
        self.vals = vals
        self._lifted: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.vals)

    def __getitem__(self, k: int) -> Any:
        if k not in self._lifted:
            from .modular import MOD

            self._lifted[k] = MOD.lift(self.vals[k])
        return self._lifted[k]

    @cached_property
    def shapes(self) -> list[np.ndarray]:
        return [np.zeros(len(v), dtype=np.int64) for v in self.vals]


def _residues(vals: list[Any]) -> _Residues:
    """The lazily lifted residues of every node value (:class:`_Residues`)."""
    return _Residues(vals)


def _pattern(net: GraphNetwork, vals: list[Any]) -> dict[int, Any]:
    from .network import pattern_of

    return pattern_of(net, vals)


#: roots evaluated together by the certified float pass
_CERTIFIED_BATCH = 128


def _certified_pattern(cert: Any, r: int, base_pattern: dict[int, Any]) -> dict[int, Any]:
    """The exact pattern of row r of a certified evaluation (every sign and winner certain there); nodes the
    evaluation did not recompute (the start node reads an unchanged input) keep the base pattern."""
    out: dict[int, Any] = dict(base_pattern)
    out.update({k: s[r] for k, s in cert.signs.items()})
    for k, win in cert.winners.items():
        sets: list[set[int]] = [set() for _ in range(win.shape[1])]
        for w, m in zip(*np.nonzero(win[r])):
            sets[int(w)].add(int(m))
        out[k] = sets
    return out


def own_preactivation(net: GraphNetwork, l: int, j: int, point: Any) -> Any:
    """z_j of layer l at a point of its input space, exactly (one row of the dense matrix, or one conv patch)."""
    node = net.nodes[net.layer(l).node]
    if node.kind == "conv":
        Wg, b = node.arrays(FAST_EXACT)  # type: ignore[attr-defined]
        ids = node.idx[j]  # type: ignore[attr-defined]
        return FAST_EXACT.sum(np.array([w * point[i] for w, i in zip(Wg[j], ids) if i >= 0] or [FAST_EXACT.zero],
                                       dtype=object)) + b[j]
    W, b = node.arrays(FAST_EXACT)  # type: ignore[attr-defined]
    return FAST_EXACT.sum(W[j] * point) + b[j]


def _classify(net: GraphNetwork, l: int, j: int, i: int, vals: list[Any], vals_mod: list[Any] | None,
              root_pattern: dict[int, Any], own: Any, base_pattern: dict[int, Any], root: Any, t: Any, scope: str,
              scope_nodes: set[int], output: int, domain: Any, cache: dict[Any, Any] | None = None,
              moved: tuple[np.ndarray, Any] | None = None) -> GraphRootRecord:
    """The region verdict of one root; ``moved``: the input coordinates the root changed (a conv patch) and the
    domain's bounds (see :func:`_root_in_domain`)."""
    info = net.layer(l)
    layer_of_relu = {inf.relu_node: inf.layer for inf in net.layers if inf.relu_node is not None}
    flips: list[tuple[Any, ...]] = []
    any_upper = False
    for k, before in base_pattern.items():
        if k not in scope_nodes:
            continue
        after = root_pattern[k]
        node = net.nodes[k]
        if node.kind == "relu":
            opposite = np.asarray(before, dtype=np.int64) * np.asarray(after, dtype=np.int64) < 0
            if k == info.relu_node:
                opposite[j] = False
            hits = [(layer_of_relu.get(k, node.name), int(n)) for n in np.flatnonzero(opposite)]
        else:
            hits = [("maxpool", node.name, r) for r, (b, a) in enumerate(zip(before, after)) if not (b & a)]
        any_upper |= bool(hits)
        if scope == "upper" or k == info.relu_node:
            flips.extend(hits)
    leaves_map = False
    if any_upper:
        keep = scope_nodes
        ch_in, ch_rt = {}, {}
        for k, before in base_pattern.items():
            if k not in keep:
                continue
            after = root_pattern[k]
            if net.nodes[k].kind == "relu":
                bi, ar = _resolve_signs(before, after), _resolve_signs(after, before)
                if k == info.relu_node:
                    bi[j] = ar[j] = 1
                ch_in[k], ch_rt[k] = bi, ar
            else:
                ch_in[k], ch_rt[k] = _resolve_winners(before, after), _resolve_winners(after, before)
        leaves_map = _maps_differ(net, l, vals, vals_mod, ch_in, ch_rt, output, keep, cache)
    return GraphRootRecord(i, l, j, root, fast_to_fraction(own), bool(flips), bool(leaves_map), flips,
                           _root_in_domain(domain, root, moved), fast_to_fraction(t))


def _root_in_domain(domain: Any, root: Any, moved: tuple[np.ndarray, Any] | None) -> bool:
    """``domain.contains(root)``; ``moved`` = (coordinates the root changed, the domain's (low, high) bounds) is
    given only when the layer input itself lies in a coordinate-wise domain (a >= 0, a box, everything): then only
    those coordinates are checked."""
    if moved is None:
        return bool(domain.contains(root))
    ids, (low, high) = moved
    return all((low[i] is None or root[i] >= low[i]) and (high[i] is None or root[i] <= high[i])
               for i in ids.tolist())


def _separable_bounds(domain: Any, a: Any) -> Any:
    """The domain's exact (low, high) when a root's membership can be checked on its moved coordinates alone (a
    catalogue domain that is a product of intervals, and a layer input inside it), else None."""
    from ..rules.domains import Box, NonNegative, Unbounded

    if type(domain) in (Box, NonNegative, Unbounded) and domain.contains(a):
        return domain.bounds(len(a))
    return None


__all__ = ["graph_relevance", "graph_lrp", "GraphRelevance", "graph_roots", "GraphRoots", "graph_root_regions",
           "GraphRootRecord", "graph_candidates", "graph_layer_roots", "LayerRoots", "layer_view", "downstream"]

r"""Region verdicts for root points: does the root of neuron j leave the input's activation region?

For a root :math:`\tilde a^{(j)}` of neuron j of layer l (a point in the input space of layer l), with the layer
input :math:`a = a_{l-1}`:

- ``leaves_pattern``: no closed activation region of the upper network :math:`f_L \circ \dots \circ f_l`
  (``scope="upper"``, layers l..L) or of layer l alone (``scope="layer"``) contains both a and the root, where
  neuron j's own constraint is dropped (its true root lies on its own hyperplane by design) and j is held on its
  input phase (active). Exactly: some other neuron has strictly opposite signs at a and at the root
  (``flipped`` lists those (layer, neuron) pairs; a zero on either side is in both closed half-spaces).
- ``leaves_affine_map``: the piece of :math:`f_c` as a function of :math:`a_{l-1}` differs: the exact affine
  maps (gradient and offset) of the two closest patterns differ, where a zero is resolved to the other point's
  phase (inactive where both are zero) and j is active. Scope-independent (always the upper network).
- ``own_preactivation``: :math:`z_j` at the root (0 for true roots; shows the paper-code overshoot).
- ``root_in_domain``: the root lies in the rule's domain.

The fast path is exact: roots are computed with gmpy2 rationals (the rule's own ``root_step``), then pushed
through the upper network in float64 together with a rigorous error bound (:func:`certified_float_forward`);
every sign the bound cannot decide is recomputed exactly. Affine maps are compared exactly in integer form
(:attr:`Network.integer_layers`), cached per pattern. ``arithmetic="float64"`` computes roots and signs in floats
(for big batches; agrees with the exact path away from hyperplanes) and still compares affine maps exactly.
:func:`classify_root_reference` is the slow textbook twin used by the tests.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable, Literal

import numpy as np

from .dtd import Arithmetic, RootDefinition, arithmetic_ops, candidate_neurons, propagate
from .errors import InputError
from .exact import array_to_json, fast_to_fraction, fraction_to_str, from_fast, to_fast, to_float
from .network import Network
from .rules.base import Rule
from .certified import certified_float_forward
from .walk import forward, root_points

Scope = Literal["layer", "upper"]


@dataclass
class RootRegionRecord:
    """Region verdict for one root (fields as docs/api.md, "Region verdicts", lists them).

    ``root`` is exact (Fractions) for exact runs, float64 for ``arithmetic="float64"``; internally the exact root
    may be held as gmpy2 rationals and is converted to Fractions (the same values) on first access.
    """

    input_index: int
    layer: int
    neuron: int
    root_value: np.ndarray = field(repr=False)
    own_preactivation: Any
    leaves_pattern: bool
    leaves_affine_map: bool
    flipped: list[tuple[int, int]]
    root_in_domain: bool
    step: Any = None

    @property
    def root(self) -> np.ndarray:
        """The root point in the input space of ``layer`` (Fractions, or float64 for float runs)."""
        v = self.root_value
        if v.dtype == object and v.size and not isinstance(v.flat[0], Fraction):
            self.root_value = v = from_fast(v)
        return v

    def to_json(self) -> dict[str, Any]:
        exact = isinstance(self.own_preactivation, Fraction)
        return {
            "input_index": self.input_index,
            "layer": self.layer,
            "neuron": self.neuron,
            "root": array_to_json(self.root) if exact else [float(v) for v in self.root],
            "step": fraction_to_str(self.step) if exact else float(self.step),
            "own_preactivation": fraction_to_str(self.own_preactivation) if exact else float(self.own_preactivation),
            "leaves_pattern": self.leaves_pattern,
            "leaves_affine_map": self.leaves_affine_map,
            "flipped": [list(p) for p in self.flipped],
            "root_in_domain": self.root_in_domain,
        }


@dataclass
class RootRegionReport:
    """All records of a :func:`root_regions` run and per-layer fractions (exact Fractions)."""

    records: list[RootRegionRecord]
    rule: Rule
    scope: str
    definition: str
    output: int
    layers: list[int]
    n_inputs: int
    skipped: dict[int, dict[str, int]] = field(default_factory=dict)  #: layer -> reason -> count
    arithmetic: str = "exact"

    @property
    def summary(self) -> dict[int, dict[str, Any]]:
        """Per layer: number of roots and the exact fractions leaving the pattern / affine map, in the domain."""
        out: dict[int, dict[str, Any]] = {}
        for l in self.layers:
            recs = [r for r in self.records if r.layer == l]
            n = len(recs)

            def frac(attr: str) -> Fraction | None:
                return Fraction(sum(bool(getattr(r, attr)) for r in recs), n) if n else None

            out[l] = {
                "roots": n,
                "leaves_pattern": frac("leaves_pattern"),
                "leaves_affine_map": frac("leaves_affine_map"),
                "root_in_domain": frac("root_in_domain"),
                "skipped": dict(self.skipped.get(l, {})),
            }
        return out

    def to_json(self) -> dict[str, Any]:
        def show(v: Any) -> Any:
            return fraction_to_str(v) if isinstance(v, Fraction) else v

        return {
            "rule": self.rule.spec(),
            "scope": self.scope,
            "definition": self.definition,
            "output": self.output,
            "layers": self.layers,
            "n_inputs": self.n_inputs,
            "arithmetic": self.arithmetic,
            "summary": {str(l): {k: show(v) for k, v in s.items()} for l, s in self.summary.items()},
            "records": [r.to_json() for r in self.records],
        }


# ---------------------------------------------------------------------------------------------------- helpers
def _upper_signs(
    layers: list[tuple[np.ndarray, np.ndarray]], net: Network, layer: int, points: np.ndarray, forced: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Signs of z_m (m = layer..L) at each row of ``points``, neuron ``forced[r]`` of ``layer`` kept linear.

    ``layers`` are (W, b) arrays of one arithmetic (exact rationals, or float64), and so are the points; the code
    is the same for both. Returns (signs per layer as int8 arrays (k, n_m), z_layer of each forced neuron).
    """
    a = points
    rows = np.arange(len(points))
    signs: list[np.ndarray] = []
    own = None
    for m in range(layer, net.n_layers + 1):
        W, b = layers[m - 1]
        z = a.dot(W.T) + b
        s = (z > 0).astype(np.int8) - (z < 0).astype(np.int8)
        signs.append(s)
        if m == layer:
            own = z[rows, forced]
        if net.has_relu(m):
            keep = s > 0
            if m == layer:
                keep[rows, forced] = True
            a = np.where(keep, z, 0 * z)
        else:
            a = z
    return signs, own


def _upper_signs_filtered(net: Network, layer: int, points: np.ndarray, forced: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Exact signs of :func:`_upper_signs` for exact ``points`` via :func:`certified_float_forward`.

    Rows with an uncertain sign in some ReLU layer are recomputed in exact arithmetic, so the result is exact.
    Returns the signs per layer and the exact pre-activation of each forced neuron.
    """
    cf = certified_float_forward(net, layer, points, forced)
    signs = [np.sign(np.nan_to_num(z, nan=0.0)).astype(np.int8) for z in cf.z]  # NaN rows are uncertain anyway
    if cf.uncertain.any():
        idx = np.flatnonzero(cf.uncertain)
        exact_signs, _ = _upper_signs(net.fast_layers, net, layer, points[idx], forced[idx])
        for s, s_exact in zip(signs, exact_signs):
            s[idx] = s_exact
    W_fast, b_fast = net.fast_layers[layer - 1]
    own = (points * W_fast[forced]).sum(axis=1) + b_fast[forced]
    return signs, own


class AffineMapCache:
    """Exact affine map of f_c as a function of a_{layer-1}, per (resolved) pattern of layers layer..L; cached.

    Integer arithmetic: every map over the same layers shares the denominator prod(den_m), so comparing the
    integer numerators of (gradient, offset) decides equality exactly.
    """

    def __init__(self, net: Network, layer: int, output: int) -> None:
        self.net, self.layer, self.output = net, layer, output
        self.sizes = [net.weight(m).shape[0] for m in range(layer, net.n_layers + 1) if net.has_relu(m)]
        self.cache: dict[bytes, tuple[tuple[int, ...], int]] = {}

    def key(self, pattern_row: np.ndarray) -> tuple[tuple[int, ...], int]:
        """Exact (gradient numerators, offset numerator) for one pattern given as a concatenated int8 row."""
        k = pattern_row.tobytes()
        hit = self.cache.get(k)
        if hit is None:
            parts = np.split(np.asarray(pattern_row, dtype=np.int8), np.cumsum(self.sizes)[:-1]) if self.sizes else []
            hit = self.cache[k] = self._compute(list(parts))
        return hit

    def _compute(self, pattern: list[np.ndarray]) -> tuple[tuple[int, ...], int]:
        net, layer = self.net, self.layer
        ilayers = net.integer_layers[layer - 1 :]
        masks = [np.asarray(p) > 0 for p in pattern]  # one per layer layer..L that has a ReLU
        # offset: forward of the bias path with fixed masks (numerator over running denominator)
        c = np.zeros(net.weight(layer).shape[1], dtype=object)
        den = 1
        for idx, il in enumerate(ilayers):
            c = il.weight_num.dot(c) + il.bias_num * den
            den *= il.den
            if idx < len(masks):
                c = np.where(masks[idx], c, 0).astype(object)
        offset = int(c[self.output])
        # gradient: row vector e_c pulled back through masks and integer weights
        g = np.zeros(ilayers[-1].weight_num.shape[0], dtype=object)
        g[self.output] = 1
        for idx in range(len(ilayers) - 1, -1, -1):
            if idx < len(masks):
                g = np.where(masks[idx], g, 0).astype(object)
            g = g.dot(ilayers[idx].weight_num)
        return tuple(int(v) for v in g), offset


def _resolve(own: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Zeros of ``own`` take the other point's phase; zeros on both sides count inactive (-1)."""
    out = np.where(own != 0, own, other)
    return np.where(out == 0, -1, out).astype(np.int8)


# ---------------------------------------------------------------------------------------------------- main API
def root_regions(
    net: Network,
    xs: Any,
    rule: Rule,
    scope: Scope = "upper",
    output: int = 0,
    definition: RootDefinition = "true",
    layers: int | Iterable[int] | None = None,
    arithmetic: Arithmetic = "exact",
    progress: bool = False,
    neurons: Iterable[int] | None = None,
) -> RootRegionReport:
    """Classify the root of every relevant neuron of the chosen layers, for one input (1-D) or a batch (2-D).

    Parameters
    ----------
    net, rule : the network and a root-point rule
    xs : one input or a batch (rows)
    scope : "upper" (layers l..L) or "layer" (layer l only) for ``leaves_pattern`` / ``flipped``
    output : explained output c
    definition : "true" or "paper-code" root (see :func:`dtd_formal.dtd.roots`)
    layers : layer(s) whose neurons' roots are classified (default: all layers 1..L)
    arithmetic : "exact" (default) or "float64": roots and signs in floats (for big batches; records then hold
        float roots; affine maps are still compared exactly, per sign pattern)
    progress : show a progress bar over inputs
    neurons : only these neurons (flat indices) of the chosen layers (default: every relevant one)

    A :class:`dtd_formal.graph.GraphNetwork` (convolutions, pools, residual sums) is classified by
    :func:`dtd_formal.graph.explain.graph_root_regions` (exact).
    """
    from .dtd import is_torch_module

    if is_torch_module(net):  # the torch backend (floats) for a zennit user's model
        from .torch import root_regions as torch_root_regions

        return torch_root_regions(net, xs, rule, layers=layers, neurons=neurons, output=output,
                                  definition=definition, scope=scope)
    if getattr(net, "is_graph", False):
        from .graph.explain import graph_root_regions

        if arithmetic != "exact":
            raise InputError("root_regions on a network graph is exact (arithmetic='exact')")
        return graph_root_regions(net, xs, rule, scope, output, definition, layers, neurons, progress=progress)
    if scope not in ("layer", "upper"):
        raise InputError(f"scope must be 'layer' or 'upper', got {scope!r}")
    if arithmetic not in ("exact", "float64"):
        raise InputError(f"arithmetic must be 'exact' or 'float64', got {arithmetic!r}")
    net.check_output(output)
    batch = net.as_batch(xs)
    if layers is None:
        layer_list = list(range(1, net.n_layers + 1))
    elif isinstance(layers, (int, np.integer)):
        layer_list = [int(layers)]
    else:
        layer_list = [int(l) for l in layers]
    for l in layer_list:
        net.check_layer(l)
    caches = {l: AffineMapCache(net, l, output) for l in layer_list}
    records: list[RootRegionRecord] = []
    skipped: dict[int, dict[str, int]] = {l: {} for l in layer_list}
    iterator: Iterable[int] = range(len(batch))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="root regions", unit="input")
    layers_arr, ops = arithmetic_ops(net, arithmetic)
    to_input, to_scalar = (to_fast, fast_to_fraction) if arithmetic == "exact" else (to_float, float)
    domain = rule.domain
    if not rule.has_root:
        raise InputError(f"{rule.spec()} is not a root-point rule: it has no root points")
    wanted = None if neurons is None else {int(j) for j in neurons}
    for i in iterator:
        acts, zs = forward(ops, layers_arr, net.relu_flags, to_input(batch[i]))
        relevance = None  # per-layer LRP relevance, computed once per input when paper-code roots need it
        for l in layer_list:
            z = zs[l - 1]
            keep, skip = candidate_neurons(net, z, l, output)
            if wanted is not None:
                keep = [j for j in keep if j in wanted]
                skip = {j: why for j, why in skip.items() if j in wanted}
            R = None
            if definition == "paper-code" and keep:
                if relevance is None:
                    relevance = propagate(net, acts, layers_arr, ops, rule, output, "gate")[0]
                R = relevance[l][np.array(keep)]
            neurons_list: list[int] = []
            if keep:
                idx = np.array(keep)
                W, b = layers_arr[l - 1]
                rs = root_points(ops, rule, acts[l - 1], W[idx], b[idx], R, definition, l)
                nonzero = ~np.asarray(ops.is_zero(rs.den))
                for k, j in enumerate(keep):
                    if nonzero[k]:
                        neurons_list.append(j)
                    else:
                        skip[j] = "zero denominator"
                t, points_fast = rs.t[nonzero], rs.points[nonzero]
            for reason in skip.values():
                skipped[l][reason] = skipped[l].get(reason, 0) + 1
            if not neurons_list:
                continue
            neurons = np.array(neurons_list)
            if arithmetic == "exact":
                root_signs, own = _upper_signs_filtered(net, l, points_fast, neurons)
            else:
                root_signs, own = _upper_signs(layers_arr, net, l, points_fast, neurons)
            in_signs = [
                (np.asarray(zs[m - 1]) > 0).astype(np.int8) - (np.asarray(zs[m - 1]) < 0).astype(np.int8)
                for m in range(l, net.n_layers + 1)
            ]
            relu_idx = [m - l for m in range(l, net.n_layers + 1) if net.has_relu(m)]
            rows = np.arange(len(neurons))
            # opposite[k][r, n]: neuron n of layer l+k has strictly opposite signs at the input and at root r
            opposite = {k: (in_signs[k].astype(np.int8)[None, :] * root_signs[k]) < 0 for k in relu_idx}
            if 0 in opposite:
                opposite[0][rows, neurons] = False  # neuron j itself is excluded
            scope_idx = relu_idx if scope == "upper" else [k for k in relu_idx if k == 0]
            any_upper = np.zeros(len(neurons), dtype=bool)
            for k in relu_idx:
                any_upper |= opposite[k].any(axis=1)
            flips: list[list[tuple[int, int]]] = [[] for _ in rows]
            for k in scope_idx:
                for r, n in zip(*np.nonzero(opposite[k])):
                    flips[r].append((l + k, int(n)))
            # closest patterns of input and root (zeros resolved toward the other point), j active
            resolved_in = {k: _resolve(np.broadcast_to(in_signs[k], root_signs[k].shape), root_signs[k]) for k in relu_idx}
            resolved_rt = {k: _resolve(root_signs[k], np.broadcast_to(in_signs[k], root_signs[k].shape)) for k in relu_idx}
            if 0 in resolved_in:
                resolved_in[0][rows, neurons] = 1
                resolved_rt[0][rows, neurons] = 1
            if relu_idx:
                rows_in = np.concatenate([resolved_in[k] for k in relu_idx], axis=1).astype(np.int8)
                rows_rt = np.concatenate([resolved_rt[k] for k in relu_idx], axis=1).astype(np.int8)
            for r, j in enumerate(neurons):
                flipped = flips[r]
                # the affine map can only change if some upper neuron flips
                leaves_map = bool(any_upper[r]) and caches[l].key(rows_in[r]) != caches[l].key(rows_rt[r])
                root = points_fast[r]
                records.append(
                    RootRegionRecord(
                        input_index=i,
                        layer=l,
                        neuron=int(j),
                        root_value=root,
                        own_preactivation=to_scalar(own[r]),
                        leaves_pattern=bool(flipped),
                        leaves_affine_map=bool(leaves_map),
                        flipped=flipped,
                        root_in_domain=domain.contains(root),
                        step=to_scalar(t[r]),
                    )
                )
    return RootRegionReport(records, rule, scope, definition, output, layer_list, len(batch), skipped, arithmetic)


# ---------------------------------------------------------------------------------------------------- textbook twin
def classify_root_reference(
    net: Network, x: Any, layer: int, neuron: int, root: Any, output: int = 0, scope: Scope = "upper"
) -> tuple[bool, bool]:
    """Slow, independent twin of :func:`root_regions` for one root: (leaves_pattern, leaves_affine_map).

    ``leaves_pattern``: enumerate every closed region P(s) of the upper network (or of layer l) that contains the
    layer input (zeros of its pattern split both ways), drop neuron j's rows from ``Network.region`` and test the
    root against ``A root <= b`` in Fractions. ``leaves_affine_map`` compares ``Network.affine_map`` of the
    closest patterns (module docstring) on ``net.upper(layer)``.
    """
    upper = net.upper(layer)
    a = net.activations(x)[layer - 1]
    root = np.asarray(root, dtype=object)
    s_in = upper.pattern(a)
    if scope == "layer":
        sub = Network([upper.weights[0]], [upper.biases[0]], final_relu=True) if upper.has_relu(1) else None
    else:
        sub = upper if upper.relu_layers else None
    s_scope = sub.pattern(a) if sub is not None else []
    leaves = False
    if sub is not None and s_scope:
        choices = [[(v,) if v != 0 else (1, -1) for v in layer_s] for layer_s in s_scope]
        flat_choices = [c for layer_s in choices for c in layer_s]
        found = False
        for combo in itertools.product(*flat_choices):
            pattern, pos = [], 0
            for layer_s in s_scope:
                pattern.append(np.array(combo[pos : pos + len(layer_s)], dtype=np.int8))
                pos += len(layer_s)
            pattern[0][neuron] = 1
            A, b = sub.region(pattern)
            keep = [r for r in range(len(A)) if r != _row_of(pattern, 0, neuron)]
            if all(A[r].dot(root) <= b[r] for r in keep):
                found = True
                break
        leaves = not found
    # affine map of the closest patterns
    s_root = _forced_pattern(upper, root, neuron)
    p_in = [_resolve(si, sr) for si, sr in zip(s_in, s_root)]
    p_rt = [_resolve(sr, si) for si, sr in zip(s_in, s_root)]
    if p_in:
        p_in[0][neuron] = p_rt[0][neuron] = 1
    g1, c1 = upper.affine_map(p_in, output)
    g2, c2 = upper.affine_map(p_rt, output)
    leaves_map = not (np.array_equal(g1, g2) and c1 == c2)
    return leaves, leaves_map


def _row_of(pattern: list[np.ndarray], layer_idx: int, neuron: int) -> int:
    """Row index of neuron's (single, s=+1) constraint in ``Network.region`` ordering."""
    row = 0
    for k, s in enumerate(pattern):
        for n, v in enumerate(s):
            if k == layer_idx and n == neuron:
                return row
            row += 2 if v == 0 else 1
    raise IndexError(neuron)


def _forced_pattern(upper: Network, point: np.ndarray, neuron: int) -> list[np.ndarray]:
    """Pattern of ``upper`` at ``point`` with neuron ``neuron`` of its first layer kept linear (Fraction forward)."""
    a = point
    pats = []
    for m in range(1, upper.n_layers + 1):
        z = upper.weight(m).dot(a) + upper.bias(m)
        s = np.array([(v > 0) - (v < 0) for v in z], dtype=np.int8)
        if upper.has_relu(m):
            pats.append(s)
            keep = s > 0
            if m == 1:
                keep[neuron] = True
            a = np.where(keep, z, Fraction(0)).astype(object)
        else:
            a = z
    return pats


__all__ = ["RootRegionRecord", "RootRegionReport", "root_regions", "classify_root_reference", "certified_float_forward",
           "AffineMapCache"]

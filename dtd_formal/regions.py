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
  phase (inactive where both are zero) and j is active. Scope-independent (always the upper network). The map
  of a pattern is a function of the pattern alone, so equal patterns give equal maps.
- ``own_preactivation``: :math:`z_j` at the root (0 for true roots; shows the paper-code overshoot).
- ``root_in_domain``: the root lies in the rule's domain.

Every verdict of an exact run is exact. Two paths compute them:

- *Batched* (exact runs of true roots for the catalogue rules whose direction is coordinatewise affine in the
  layer input, :math:`v_j = \alpha_j \odot a + \beta_j`: z+, LRP-0, gamma, zB, w²): one certified float64 pass
  (:mod:`dtd_formal.certified`) over all roots of all inputs at once: the layer inputs, the directions (with
  :math:`\alpha_j, \beta_j` taken exactly from the rule's own ``direction``), :math:`w_j \cdot v_j`,
  :math:`t_j = z_j / (w_j \cdot v_j)`, the roots and their forward pass through the upper network, each value
  with a rigorous error bound. A sign, a domain test or a zero denominator is taken from floats only where the
  bound decides it; two affine maps count as different only where their bounded float gradients or offsets
  certainly differ. Everything else is recomputed exactly for that root alone: the rule's exact ``root_step``
  in gmpy2 rationals, exact signs, exact integer affine maps (:class:`AffineMapCache`); an input with an
  undecided sign at the input itself goes through the per-input path whole. Records hold their exact root,
  step, own pre-activation and ``flipped`` list lazily: the rule's exact ``root_step`` runs on first read (per
  input), the list is read off the exact sign matrix.
- *Per input* (every other run): the rule's ``root_step`` on gmpy2 rationals per input, signs from the certified
  float filter with exact fallback (:func:`_upper_signs_filtered`); ``arithmetic="float64"`` computes roots and
  signs in floats (agrees with the exact path away from hyperplanes) and still compares affine maps exactly.

:func:`classify_root_reference` is the slow textbook twin used by the tests.
"""

from __future__ import annotations

import gc
import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable, Iterator, Literal

import numpy as np

from .certified import (bounded_affine, bounded_product, bounded_quotient, bounded_rowdot, bounded_sum,
                        certified_float_forward, certified_forward_from, float_with_error)
from .dtd import Arithmetic, RootDefinition, arithmetic_ops, candidate_neurons, propagate
from .errors import InputError
from .exact import array_to_json, fast_to_fraction, fraction_to_str, from_fast, to_fast, to_float
from .network import Network
from .rules.base import Rule
from .rules.catalogue import LRP0, Epsilon, Gamma, WSquare, ZBox, ZPlus
from .rules.domains import Box, NonNegative, Unbounded
from .rules.ops import FAST_EXACT
from .walk import call_rule, forward, root_points

Scope = Literal["layer", "upper"]

#: rules (exact types) whose ``direction`` is coordinatewise affine in the layer input a, so that
#: :math:`v_j = \alpha_j \odot a + \beta_j` with :math:`\beta_j = v_j(0)`, :math:`\alpha_j = v_j(1) - v_j(0)`
AFFINE_DIRECTION_RULES: tuple[type[Rule], ...] = (ZPlus, LRP0, Epsilon, Gamma, ZBox, WSquare)
#: at most this many root coordinates (roots x layer width) per chunk of inputs of the batched path
_CHUNK_ENTRIES = 1 << 20
_ZERO_DENOMINATOR = "zero denominator"


@dataclass
class RootRegionRecord:
    """Region verdict for one root (fields as docs/api.md, "Region verdicts", lists them).

    ``root`` is exact (Fractions) for exact runs, float64 for ``arithmetic="float64"``; internally the exact root
    may be held as gmpy2 rationals and is converted to Fractions (the same values) on first access. A record of
    the batched exact path computes ``root_value``, ``own_preactivation`` and ``step`` (exactly, with the rule's
    own ``root_step``) and ``flipped`` when first read; the fields stay assignable.
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


class _ExactRoots:
    """Exact roots of one layer's neurons at the inputs of a batch, computed on first use and cached per input.

    For input i the rule's own ``root_step`` runs in gmpy2 rationals on every candidate neuron of row i of
    ``candidates`` at once (:func:`dtd_formal.walk.root_points`, true roots); :meth:`get` returns
    (root, t, den, own pre-activation :math:`w_j \\cdot \\tilde a + b_j`) of one neuron.
    """

    def __init__(self, net: Network, rule: Rule, layer: int, batch: np.ndarray, candidates: np.ndarray) -> None:
        self.net, self.rule, self.layer, self.batch, self.candidates = net, rule, layer, batch, candidates
        self._cache: dict[int, dict[int, tuple[np.ndarray, Any, Any, Any]]] = {}

    def get(self, i: int, j: int) -> tuple[np.ndarray, Any, Any, Any]:
        group = self._cache.get(i)
        if group is None:
            net, l = self.net, self.layer
            x = to_fast(self.batch[i])
            a = x if l == 1 else forward(FAST_EXACT, net.fast_layers, net.relu_flags, x)[0][l - 1]
            idx = np.flatnonzero(self.candidates[i])
            W, b = net.fast_layers[l - 1]
            rs = root_points(FAST_EXACT, self.rule, a, W[idx], b[idx], None, "true", l)
            own = (rs.points * W[idx]).sum(axis=1) + b[idx]
            group = self._cache[i] = {int(n): (rs.points[k], rs.t[k], rs.den[k], own[k]) for k, n in enumerate(idx)}
        return group[j]


class _LazyRows:
    """The lazily computed fields of one layer's records of a batched chunk: the exact root, step and own
    pre-activation (from :class:`_ExactRoots`) and ``flipped`` (from the rows of the opposite-sign matrix)."""

    __slots__ = ("source", "ii", "jj", "opposite", "labels")

    def __init__(self, source: _ExactRoots, ii: np.ndarray, jj: np.ndarray, opposite: np.ndarray,
                 labels: list[tuple[int, int]]) -> None:
        self.source, self.ii, self.jj, self.opposite, self.labels = source, ii, jj, opposite, labels

    def resolve(self, name: str, row: int) -> Any:
        """Field ``name`` of record ``row``."""
        if name == "flipped":
            return [self.labels[c] for c in np.flatnonzero(self.opposite[row]).tolist()]
        point, t, _, own = self.source.get(int(self.ii[row]), int(self.jj[row]))
        return {"root_value": point, "step": fast_to_fraction(t), "own_preactivation": fast_to_fraction(own)}[name]


def _lazy_field(name: str) -> property:
    """A dataclass field of :class:`RootRegionRecord` stored as ``_<name>``; a :class:`_LazyRows` there is
    resolved (for the record's ``_row``) on first read."""
    key = "_" + name

    def get(self: RootRegionRecord) -> Any:
        value = self.__dict__[key]
        if type(value) is _LazyRows:
            value = self.__dict__[key] = value.resolve(name, self.__dict__["_row"])
        return value

    def set(self: RootRegionRecord, value: Any) -> None:
        self.__dict__[key] = value

    return property(get, set)


for _name in ("root_value", "own_preactivation", "flipped", "step"):
    setattr(RootRegionRecord, _name, _lazy_field(_name))


def _lazy_records(lazy: _LazyRows, offset: int, leaves_pattern: np.ndarray, leaves_map: np.ndarray,
                  inside: np.ndarray) -> list[RootRegionRecord]:
    """Records of the batched path (input ``offset + lazy.ii[r]``, neuron ``lazy.jj[r]``) with lazy fields; built
    without ``__init__`` (directly in the storage of :func:`_lazy_field`), which would call four property setters
    per record."""
    new, cls, l = object.__new__, RootRegionRecord, lazy.source.layer
    out = []
    with _gc_paused():
        for r, (i, j, lp, lm, ins) in enumerate(zip(lazy.ii.tolist(), lazy.jj.tolist(), leaves_pattern.tolist(),
                                                     leaves_map.tolist(), inside.tolist())):
            rec = new(cls)
            rec.__dict__ = {"input_index": offset + i, "layer": l, "neuron": j, "_root_value": lazy,
                            "_own_preactivation": lazy, "leaves_pattern": lp, "leaves_affine_map": lm,
                            "_flipped": lazy, "root_in_domain": ins, "_step": lazy, "_row": r}
            out.append(rec)
    return out


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while thousands of records are created: their allocations would trigger
    collections of the older generations, which traverse every live object (the records form no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


# ---------------------------------------------------------------------------------------------------- batched path
@dataclass
class ExactShare:
    """How many roots of a batched run needed exact arithmetic, and why (a root may count under several causes).

    ``exact_roots`` counts the records for which any verdict (or the zero test of :math:`w_j \\cdot v_j`) was
    recomputed exactly; by cause: ``denominators`` (:math:`w_j \\cdot v_j` not certainly nonzero), ``signs``
    (some sign at the root undecided: exact root and forward pass), ``domain`` (the domain test undecided),
    ``affine_maps`` (the two maps not certainly different: compared in integers). ``input_roots`` counts the
    records of inputs that went through the per-input path whole (an undecided sign at the input itself;
    ``inputs`` counts those inputs), ``zero_denominators`` the roots skipped because their exact
    :math:`w_j \\cdot v_j` is 0.
    """

    roots: int = 0
    exact_roots: int = 0
    denominators: int = 0
    signs: int = 0
    domain: int = 0
    affine_maps: int = 0
    inputs: int = 0
    input_roots: int = 0
    zero_denominators: int = 0

    @property
    def fraction(self) -> float:
        """Share of the records that needed any exact arithmetic beyond the lazy exact root fields."""
        return (self.exact_roots + self.input_roots) / self.roots if self.roots else 0.0


def _direction_coefficients(net: Network, rule: Rule, layer: int) -> tuple[np.ndarray, ...]:
    r"""Float coefficients, with bounds, of :math:`v_j = \alpha_j \odot a + \beta_j` for every neuron j of ``layer``.

    :math:`\beta = V(\mathbf 0)` and :math:`\alpha = V(\mathbf 1) - V(\mathbf 0)` are exact: the rule's own
    ``direction`` in gmpy2 rationals (rows = neurons), valid for :data:`AFFINE_DIRECTION_RULES`. Returns
    (alpha, e_alpha, beta, e_beta) from :func:`float_with_error` (0 bound where the float is exact).
    """
    W, b = net.fast_layers[layer - 1]
    n = W.shape[1]
    shape = [tuple(W.shape)]
    zero, one = np.full(n, FAST_EXACT.zero, dtype=object), np.full(n, FAST_EXACT.one, dtype=object)
    beta = np.asarray(call_rule(rule, "direction", FAST_EXACT, zero, W, b, layer=layer, shapes=shape), dtype=object)
    at_one = np.asarray(call_rule(rule, "direction", FAST_EXACT, one, W, b, layer=layer, shapes=shape), dtype=object)
    return (*float_with_error(at_one - beta, check_exact=True), *float_with_error(beta, check_exact=True))


def _domain_verdicts(domain: Any, root: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""(inside, decided) per row for the box :math:`l \le \tilde a \le h` of ``domain.bounds`` (None: open side).

    A side holds certainly where the bounded margin :math:`m = \pm(\tilde a - l)` has :math:`\hat m \ge e_m`, and
    fails certainly where :math:`\hat m < -e_m`; a row is decided when every coordinate holds or one fails.
    """
    n = root.shape[1]
    holds = np.ones(len(root), dtype=bool)
    fails = np.zeros(len(root), dtype=bool)
    for side, sign in zip(domain.bounds(n), (1.0, -1.0)):
        has = np.array([v is not None for v in side], dtype=bool)
        if not has.any():
            continue
        f, ef = float_with_error(np.where(has, side, 0).astype(object), check_exact=True)
        m, em = bounded_sum(sign * root, e, -sign * f, ef)
        with np.errstate(invalid="ignore"):
            holds &= ((m >= em) | ~has).all(axis=1)
            fails |= ((m < -em) & has).any(axis=1)
    return holds, holds | fails


def _bounded_affine_map(net: Network, layer: int, output: int, sizes: list[int], pattern: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Bounded float gradient and offset of :math:`f_c` as an affine function of :math:`a_{l-1}` on a pattern.

    With :math:`D_m = \mathrm{diag}(s_m > 0)` on the ReLU layers (rows of ``pattern``: +-1 per ReLU neuron of
    layers l..L, concatenated; ``sizes`` their widths) and the identity elsewhere:
    :math:`g = e_c^\top D_L W_L \cdots D_l W_l` and the offset :math:`c_L[c]` with :math:`c_{l-1} = 0`,
    :math:`c_m = D_m (W_m c_{m-1} + b_m)`; every product is :func:`bounded_affine`. Returns (g, e_g, offset, e).
    """
    fnet = net.to_float()
    L = net.n_layers
    masks = np.split(pattern > 0, np.cumsum(sizes)[:-1], axis=1) if sizes else []
    mask_of = dict(zip([m for m in range(layer, L + 1) if net.has_relu(m)], masks))
    c = np.zeros((len(pattern), fnet.weights[layer - 1].shape[1]))
    ec = np.zeros_like(c)
    for m in range(layer, L + 1):
        c, ec = bounded_affine(c, ec, fnet.weights[m - 1], fnet.biases[m - 1])
        if m in mask_of:
            c, ec = np.where(mask_of[m], c, 0.0), np.where(mask_of[m], ec, 0.0)
    g = np.zeros((len(pattern), fnet.weights[L - 1].shape[0]))
    g[:, output] = 1.0
    eg = np.zeros_like(g)
    for m in range(L, layer - 1, -1):
        if m in mask_of:
            g, eg = np.where(mask_of[m], g, 0.0), np.where(mask_of[m], eg, 0.0)
        g, eg = bounded_affine(g, eg, fnet.weights[m - 1].T)
    return g, eg, c[:, output], ec[:, output]


def _certainly_apart(x: np.ndarray, ex: np.ndarray, y: np.ndarray, ey: np.ndarray) -> np.ndarray:
    r"""Where the exact values behind (x, ex) and (y, ey) certainly differ: all finite and
    :math:`\mathrm{fl}|\hat x - \hat y| > 2\,\mathrm{fl}(e_x + e_y)`, which implies
    :math:`|\hat x - \hat y| > e_x + e_y` (the subtraction and the sum each round by at most a factor
    :math:`1 \pm u`)."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(ex) & np.isfinite(ey)
        return finite & (np.abs(x - y) > 2.0 * (ex + ey))


def _maps_certainly_differ(net: Network, layer: int, output: int, sizes: list[int], p_a: np.ndarray,
                           p_b: np.ndarray) -> np.ndarray:
    """Rows where the exact affine maps of patterns ``p_a`` and ``p_b`` (int8 rows) certainly differ (some gradient
    entry or the offset, by :func:`_bounded_affine_map`, evaluated once per distinct pattern); the other rows are
    undecided (compared exactly by the caller)."""
    P = np.ascontiguousarray(np.concatenate([p_a, p_b]), dtype=np.int8)
    distinct, inverse = np.unique(P.view(np.dtype((np.void, P.shape[1]))).ravel(), return_inverse=True)
    g, eg, c, ec = _bounded_affine_map(net, layer, output, sizes, distinct.view(np.int8).reshape(len(distinct), -1))
    a, b = inverse[: len(p_a)], inverse[len(p_a) :]
    return _certainly_apart(g[a], eg[a], g[b], eg[b]).any(axis=1) | _certainly_apart(c[a], ec[a], c[b], ec[b])


def _scope_flips(opposite: dict[int, np.ndarray], scope_idx: list[int], layer: int, n_rows: int
                 ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The opposite-sign matrix over the scope's layers (rows = roots, columns = neurons of layers ``layer + k``
    for k in ``scope_idx``, in order) and the (layer, neuron) label of each column."""
    labels = [(layer + k, n) for k in scope_idx for n in range(opposite[k].shape[1])]
    if not scope_idx:
        return np.zeros((n_rows, 0), dtype=bool), labels
    return np.concatenate([opposite[k] for k in scope_idx], axis=1), labels


def _flip_lists(opposite: dict[int, np.ndarray], scope_idx: list[int], layer: int, n_rows: int
                ) -> list[list[tuple[int, int]]]:
    """``flipped`` of every row: the (layer, neuron) pairs with strictly opposite signs, layer by layer."""
    M, labels = _scope_flips(opposite, scope_idx, layer, n_rows)
    flat = [labels[c] for c in np.nonzero(M)[1].tolist()]
    ends = np.cumsum(M.sum(axis=1)).tolist()
    return [flat[s:e] for s, e in zip([0] + ends[:-1], ends)]


def _first_keys(layer: int, width: int, offset: int, masks: dict[str, np.ndarray]) -> list[tuple[int, int, str, int]]:
    """(layer, first key, reason, count) of skipped neurons; key = input * 2 width + position (neuron, or width +
    neuron for zero denominators), the order in which the per-input path meets them."""
    out = []
    for reason, mask in masks.items():
        count = int(mask.sum())
        if count:
            i, j = np.argwhere(mask)[0]
            pos = int(j) + (width if reason == _ZERO_DENOMINATOR else 0)
            out.append((layer, (offset + int(i)) * 2 * width + pos, reason, count))
    return out


def _skip_counts(layers: list[int], entries: list[tuple[int, int, str, int]]) -> dict[int, dict[str, int]]:
    """Per layer: reason -> count, reasons in the order of their first key (as the per-input path inserts them)."""
    out: dict[int, dict[str, int]] = {l: {} for l in layers}
    for l, _, reason, count in sorted(entries, key=lambda e: e[1]):
        out[l][reason] = out[l].get(reason, 0) + count
    return out


def _in_input_order(parts: list[tuple[np.ndarray, int, np.ndarray, list[RootRegionRecord]]]) -> list[RootRegionRecord]:
    """Records of all layers (parts: inputs, layer position, neurons, records) in the per-input path's order: by
    input, then layer (as listed), then neuron."""
    if len(parts) == 1:
        return parts[0][3]
    ii = np.concatenate([p[0] for p in parts])
    lps = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    jj = np.concatenate([p[2] for p in parts])
    flat = [r for p in parts for r in p[3]]
    return [flat[k] for k in np.lexsort((jj, lps, ii)).tolist()]


@dataclass
class _Run:
    """The settings of one dense :func:`root_regions` call, shared by the per-input and the batched path."""

    net: Network
    rule: Rule
    scope: str
    output: int
    definition: str
    layers: list[int]
    wanted: set[int] | None
    arithmetic: str
    caches: dict[int, AffineMapCache]

    @property
    def batchable(self) -> bool:
        """Whether the batched certified path applies (exact true roots of an affine-direction catalogue rule)."""
        # the class exactly (a subclass may override any method), and no method replaced on the instance itself
        own_code = any(callable(v) for v in vars(self.rule).values())
        return (self.arithmetic == "exact" and self.definition == "true" and type(self.rule) in AFFINE_DIRECTION_RULES
                and not own_code and type(self.rule.domain) in (NonNegative, Box, Unbounded))

    def skip_entries(self, index: int, skips: dict[int, dict[int, str]]) -> list[tuple[int, int, str, int]]:
        """:func:`_skip_counts` entries of one input's skipped neurons (per layer: neuron -> reason)."""
        out = []
        for l, skip in skips.items():
            width = self.net.weight(l).shape[0]
            for j, reason in skip.items():
                out.append((l, index * 2 * width + j + (width if reason == _ZERO_DENOMINATOR else 0), reason, 1))
        return out

    def input_records(self, x: np.ndarray, index: int) -> tuple[list[RootRegionRecord], dict[int, dict[int, str]]]:
        """Records of one input (per-input path) and, per layer, its skipped neurons (neuron -> reason)."""
        net = self.net
        layers_arr, ops = arithmetic_ops(net, self.arithmetic)
        exact = self.arithmetic == "exact"
        to_scalar = fast_to_fraction if exact else float
        domain = self.rule.domain
        acts, zs = forward(ops, layers_arr, net.relu_flags, to_fast(x) if exact else to_float(x))
        relevance = None  # per-layer LRP relevance, computed once per input when paper-code roots need it
        records: list[RootRegionRecord] = []
        skips: dict[int, dict[int, str]] = {}
        for l in self.layers:
            z = zs[l - 1]
            keep, skip = candidate_neurons(net, z, l, self.output)
            if self.wanted is not None:
                keep = [j for j in keep if j in self.wanted]
                skip = {j: why for j, why in skip.items() if j in self.wanted}
            skips[l] = skip
            R = None
            if self.definition == "paper-code" and keep:
                if relevance is None:
                    relevance = propagate(net, acts, layers_arr, ops, self.rule, self.output, "gate")[0]
                R = relevance[l][np.array(keep)]
            neurons_list: list[int] = []
            if keep:
                idx = np.array(keep)
                W, b = layers_arr[l - 1]
                rs = root_points(ops, self.rule, acts[l - 1], W[idx], b[idx], R, self.definition, l)
                nonzero = ~np.asarray(ops.is_zero(rs.den))
                for k, j in enumerate(keep):
                    if nonzero[k]:
                        neurons_list.append(j)
                    else:
                        skip[j] = _ZERO_DENOMINATOR
                t, points_fast = rs.t[nonzero], rs.points[nonzero]
            if not neurons_list:
                continue
            neurons = np.array(neurons_list)
            if exact:
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
            scope_idx = relu_idx if self.scope == "upper" else [k for k in relu_idx if k == 0]
            any_upper = np.zeros(len(neurons), dtype=bool)
            for k in relu_idx:
                any_upper |= opposite[k].any(axis=1)
            flips = _flip_lists(opposite, scope_idx, l, len(neurons))
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
                # the affine map can only change if some upper neuron flips
                leaves_map = bool(any_upper[r]) and self.caches[l].key(rows_in[r]) != self.caches[l].key(rows_rt[r])
                root = points_fast[r]
                records.append(RootRegionRecord(
                    input_index=index, layer=l, neuron=int(j), root_value=root, own_preactivation=to_scalar(own[r]),
                    leaves_pattern=bool(flips[r]), leaves_affine_map=bool(leaves_map), flipped=flips[r],
                    root_in_domain=domain.contains(root), step=to_scalar(t[r]),
                ))
        return records, skips

    def batched_chunk(self, batch: np.ndarray, offset: int, coefficients: dict[int, tuple[np.ndarray, ...]],
                      share: ExactShare) -> tuple[list[RootRegionRecord], list[tuple[int, int, str, int]]]:
        """Records (in the per-input path's order) and skip entries of inputs ``offset..`` (rows of ``batch``)."""
        net, L, rule = self.net, self.net.n_layers, self.rule
        domain = rule.domain
        fnet = net.to_float()
        xf, ex = float_with_error(batch)
        cf = certified_forward_from(net, 1, xf, ex)
        fast = ~cf.uncertain
        acts, act_errs, in_signs = [xf], [ex], []
        for m in range(1, L + 1):
            z, err = cf.z[m - 1], cf.err[m - 1]
            in_signs.append((z > 0).astype(np.int8) - (z < 0).astype(np.int8))
            if net.has_relu(m):  # on fast rows every ReLU sign is certain
                acts.append(np.where(z > 0, z, 0.0))
                act_errs.append(np.where(z > 0, err, 0.0))
            else:
                acts.append(z)
                act_errs.append(err)
        entries: list[tuple[int, int, str, int]] = []
        parts: list[tuple[np.ndarray, int, np.ndarray, list[RootRegionRecord]]] = []
        for lp, l in enumerate(self.layers):
            z, ez = cf.z[l - 1], cf.err[l - 1]
            width = z.shape[1]
            neuron_ids = np.arange(width)
            explained = neuron_ids == self.output if l == L else np.ones(width, dtype=bool)
            active = z > 0 if net.has_relu(l) else np.ones(z.shape, dtype=bool)
            wanted_cols = np.ones(width, dtype=bool) if self.wanted is None else np.isin(neuron_ids, list(self.wanted))
            asked = fast[:, None] & wanted_cols[None, :]
            cand = asked & explained[None, :] & active
            ii, jj = np.nonzero(cand)
            source = _ExactRoots(net, rule, l, batch, cand)
            alpha, e_alpha, beta, e_beta = coefficients[l]
            a, ea = acts[l - 1][ii], act_errs[l - 1][ii]
            V, eV = bounded_sum(*bounded_product(alpha[jj], e_alpha[jj], a, ea), beta[jj], e_beta[jj])
            d, ed = bounded_rowdot(fnet.weights[l - 1][jj], V, eV)
            t, et = bounded_quotient(z[ii, jj], ez[ii, jj], d, ed)
            tv, e_tv = bounded_product(t[:, None], et[:, None], V, eV)
            root, e_root = bounded_sum(a, ea, -tv, e_tv)
            den_known = np.abs(d) > ed
            zero_den = np.zeros(len(ii), dtype=bool)
            for r in np.flatnonzero(~den_known).tolist():
                zero_den[r] = source.get(int(ii[r]), int(jj[r]))[2] == 0
            share.denominators += int((~den_known).sum())
            share.zero_denominators += int(zero_den.sum())
            zero_mask = np.zeros_like(cand)
            zero_mask[ii[zero_den], jj[zero_den]] = True
            entries += _first_keys(l, width, offset, {"not explained": asked & ~explained[None, :],
                                                      "inactive": asked & explained[None, :] & ~active,
                                                      _ZERO_DENOMINATOR: zero_mask})
            kept = ~zero_den
            ii, jj, root, e_root, den_known = ii[kept], jj[kept], root[kept], e_root[kept], den_known[kept]
            n_rows = len(ii)
            rows = np.arange(n_rows)
            # domain, then the signs at the roots: floats where the bound decides, exact roots elsewhere
            inside, dom_known = _domain_verdicts(domain, root, e_root)
            for r in np.flatnonzero(~dom_known).tolist():
                inside[r] = domain.contains(source.get(int(ii[r]), int(jj[r]))[0])
            cfr = certified_forward_from(net, l, root, e_root, jj)
            root_signs = [(zr > 0).astype(np.int8) - (zr < 0).astype(np.int8) for zr in cfr.z]
            unsure = np.flatnonzero(cfr.uncertain | ~den_known)
            if unsure.size:
                points = np.array([source.get(int(ii[r]), int(jj[r]))[0] for r in unsure.tolist()], dtype=object)
                exact_signs, _ = _upper_signs(net.fast_layers, net, l, points, jj[unsure])
                for s, s_exact in zip(root_signs, exact_signs):
                    s[unsure] = s_exact
            # verdicts, as the per-input path
            relu_idx = [m - l for m in range(l, L + 1) if net.has_relu(m)]
            opposite = {k: (in_signs[l - 1 + k][ii] * root_signs[k]) < 0 for k in relu_idx}
            if 0 in opposite:
                opposite[0][rows, jj] = False
            any_upper = np.zeros(n_rows, dtype=bool)
            for k in relu_idx:
                any_upper |= opposite[k].any(axis=1)
            scope_idx = relu_idx if self.scope == "upper" else [k for k in relu_idx if k == 0]
            flip_matrix, labels = _scope_flips(opposite, scope_idx, l, n_rows)
            leaves_map = np.zeros(n_rows, dtype=bool)
            map_exact = np.zeros(n_rows, dtype=bool)
            moved = np.flatnonzero(any_upper)
            if moved.size:
                p_in = [_resolve(in_signs[l - 1 + k][ii[moved]], root_signs[k][moved]) for k in relu_idx]
                p_rt = [_resolve(root_signs[k][moved], in_signs[l - 1 + k][ii[moved]]) for k in relu_idx]
                if relu_idx[0] == 0:
                    p_in[0][np.arange(moved.size), jj[moved]] = 1
                    p_rt[0][np.arange(moved.size), jj[moved]] = 1
                rows_in, rows_rt = np.concatenate(p_in, axis=1), np.concatenate(p_rt, axis=1)
                cache = self.caches[l]
                differ = _maps_certainly_differ(net, l, self.output, cache.sizes, rows_in, rows_rt)
                for q in np.flatnonzero(~differ).tolist():
                    differ[q] = cache.key(rows_in[q]) != cache.key(rows_rt[q])
                    map_exact[moved[q]] = True
                leaves_map[moved] = differ
            share.signs += int(unsure.size)
            share.domain += int((~dom_known).sum())
            share.affine_maps += int(map_exact.sum())
            exact_rows = ~den_known | ~dom_known | map_exact
            exact_rows[unsure] = True
            share.exact_roots += int(exact_rows.sum())
            share.roots += n_rows
            lazy = _LazyRows(source, ii, jj, flip_matrix, labels)
            parts.append((ii, lp, jj, _lazy_records(lazy, offset, flip_matrix.any(axis=1), leaves_map, inside)))
        ordered = _in_input_order(parts)
        fallback = np.flatnonzero(~fast).tolist()
        if fallback:  # an undecided sign at the input: the per-input path, merged in input order
            starts = np.searchsorted(np.array([r.input_index for r in ordered], dtype=np.int64),
                                     [offset + i for i in fallback]).tolist()
            merged: list[RootRegionRecord] = []
            prev = 0
            for i, start in zip(fallback, starts):
                recs, skips = self.input_records(batch[i], offset + i)
                merged += ordered[prev:start] + recs
                prev = start
                entries += self.skip_entries(offset + i, skips)
                share.inputs += 1
                share.input_roots += len(recs)
                share.roots += len(recs)
            ordered = merged + ordered[prev:]
        return ordered, entries


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

    Exact runs of true roots for the rules of :data:`AFFINE_DIRECTION_RULES` take the batched certified path
    (module docstring); the verdicts are those of the per-input path. A :class:`dtd_formal.graph.GraphNetwork`
    (convolutions, pools, residual sums) is classified by :func:`dtd_formal.graph.explain.graph_root_regions`
    (exact).
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
    return _dense_root_regions(net, xs, rule, scope, output, definition, layers, arithmetic, progress, neurons)[0]


def _dense_root_regions(
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
    batched: bool = True,
) -> tuple[RootRegionReport, ExactShare | None]:
    """:func:`root_regions` on a dense :class:`Network`; ``batched=False`` forces the per-input path (the
    benchmark's and the tests' baseline). Returns the report and, for the batched path, its :class:`ExactShare`."""
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
    if not rule.has_root:
        raise InputError(f"{rule.spec()} is not a root-point rule: it has no root points")
    run = _Run(net, rule, scope, output, definition, layer_list, None if neurons is None else {int(j) for j in neurons},
               arithmetic, {l: AffineMapCache(net, l, output) for l in layer_list})
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(batch), desc="root regions", unit="input")
    records: list[RootRegionRecord] = []
    entries: list[tuple[int, int, str, int]] = []
    share = None
    if batched and run.batchable:
        share = ExactShare()
        coefficients = {l: _direction_coefficients(net, rule, l) for l in layer_list}
        widest = max(net.weight(l).size for l in layer_list)
        step = max(1, _CHUNK_ENTRIES // widest)
        for lo in range(0, len(batch), step):
            recs, ents = run.batched_chunk(batch[lo : lo + step], lo, coefficients, share)
            records += recs
            entries += ents
            if bar is not None:
                bar.update(len(batch[lo : lo + step]))
    else:
        for i in range(len(batch)):
            recs, skips = run.input_records(batch[i], i)
            records += recs
            entries += run.skip_entries(i, skips)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    report = RootRegionReport(records, rule, scope, definition, output, layer_list, len(batch),
                              _skip_counts(layer_list, entries), arithmetic)
    return report, share


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
           "AffineMapCache", "ExactShare", "AFFINE_DIRECTION_RULES"]

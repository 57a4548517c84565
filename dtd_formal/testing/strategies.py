r"""Hypothesis strategies for exact property tests of relevance rules.

Raw float arrays make poor test data for piecewise-linear questions: most draws are degenerate (a dead layer, an
explained output of 0) and the interesting points, exactly on a kink, are never hit. These strategies build exact
rational networks *around* a chosen input instead:

1. draw the input :math:`x` in the rule's domain (non-negative orthant, a box including its faces, or all of
   :math:`\mathbb{Q}^n`), entries :math:`k/d` with small integers and a controlled denominator d;
2. per layer l, draw :math:`W_l` with entries :math:`k/d_l` (one denominator per layer, from
   :attr:`NetworkSpec.denominators`), compute :math:`u = W_l a_{l-1}` exactly, draw for every neuron its phase
   (active, inactive, or exactly on the kink :math:`z_j = 0`) and a pre-activation :math:`z_j` of that sign,
   and set :math:`b_l = z - u` (subject to the bias sign constraint: ``"any"``, ``"nonpositive"`` (b <= 0),
   ``"nonnegative"`` or ``"zero"``; a phase the constraint makes impossible is replaced by a feasible one);
3. the explained output is steered to :math:`f_c(x) > 0` (DTD explains a positive output), exactly 0 now and then;
   ``output_sign="any"`` draws negative outputs too.

Exact zeros are a feature: inputs on the domain boundary (0, a box face), zero weights, whole zero weight rows
(a neuron driven by its bias alone) and kinks (z = 0) are drawn on purpose, counted per case (:class:`CaseStats`)
and reported by :func:`dtd_formal.testing.check_rule`.
``kinks="toward"`` puts at least one hidden neuron on its kink, ``"away"`` none, ``"mixed"`` lets hypothesis
choose. Shrinking moves towards small integers, denominator 1, active neurons and fewer layers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, Sequence

import numpy as np
from hypothesis import strategies as st

from ..network import Network
from ..rules.domains import Box, Domain, NonNegative, Unbounded

BiasSign = Literal["any", "nonpositive", "nonnegative", "zero"]
KinkMode = Literal["mixed", "toward", "away"]

#: phase codes drawn per neuron; index 0 shrinks first (active is the simplest phase)
ACTIVE, INACTIVE, KINK = 0, 1, 2


@dataclass(frozen=True)
class NetworkSpec:
    """Which networks to draw.

    Parameters
    ----------
    n_layers : (min, max)
        Number of affine layers L (L >= 1; L = 2 is one hidden layer).
    input_size, width, output_size : (min, max)
        Input size, hidden widths, output size.
    numerator : int
        Weight numerators k are drawn from [-numerator, numerator].
    denominators : tuple of int
        Allowed weight denominators (one per layer). Powers of two keep float64 exact; 3 makes non-dyadic values.
    bias : {"any", "nonpositive", "nonnegative", "zero"}
        Sign constraint on every bias.
    final_relu : bool or None
        ReLU after the last layer; None lets hypothesis choose.
    kinks : {"mixed", "toward", "away"}
        Steering of hidden pre-activations onto (or off) their kink z = 0.
    output : int
        The explained output c (must be < output_size minimum).
    output_sign : {"positive", "any"}
        "positive" (default): :math:`f_c(x) > 0` as DTD assumes (an explained output that is "active"), with an
        exact :math:`f_c(x) = 0` now and then (a degenerate case, counted); "any" also draws negative outputs.
    kind : {"dense", "conv"}
        "conv" draws small operator graphs instead (:func:`conv_cases`): a 1-D convolution (1-2 input channels,
        length ``input_size`` + 1, 1-2 output channels, kernel 1-2, zero padding 0-1) with its ReLU, sometimes a
        max pool, then a dense output layer (``numerator``, ``denominators``, ``bias``, ``output``,
        ``output_sign`` apply; the widths do not); the rule then meets
        :class:`~dtd_formal.graph.patch_ops.PatchOps`. The Z3 step of ``check_rule`` decides on dense networks
        only, so conv properties are tested, not proved.
    """

    n_layers: tuple[int, int] = (2, 3)
    input_size: tuple[int, int] = (1, 3)
    width: tuple[int, int] = (1, 3)
    output_size: tuple[int, int] = (1, 2)
    numerator: int = 4
    denominators: tuple[int, ...] = (1, 2, 4, 3)
    bias: BiasSign = "any"
    final_relu: bool | None = False
    kinks: KinkMode = "mixed"
    output: int = 0
    output_sign: Literal["positive", "any"] = "positive"
    kind: Literal["dense", "conv"] = "dense"

    def __post_init__(self) -> None:
        if self.kind not in ("dense", "conv"):
            raise ValueError(f"NetworkSpec.kind: 'dense' or 'conv', got {self.kind!r}")
        for name in ("n_layers", "input_size", "width", "output_size"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise ValueError(f"NetworkSpec.{name}: need 1 <= min <= max, got {(lo, hi)}")
        if self.bias not in ("any", "nonpositive", "nonnegative", "zero"):
            raise ValueError(f"NetworkSpec.bias: unknown constraint {self.bias!r}")
        if self.output_sign not in ("positive", "any"):
            raise ValueError(f"NetworkSpec.output_sign: unknown value {self.output_sign!r}")
        if self.kinks not in ("mixed", "toward", "away"):
            raise ValueError(f"NetworkSpec.kinks: unknown mode {self.kinks!r}")
        if not self.denominators or any(d < 1 for d in self.denominators):
            raise ValueError("NetworkSpec.denominators: need positive integers")
        if not 0 <= self.output < self.output_size[0]:
            raise ValueError(f"NetworkSpec.output {self.output} must be below the smallest output size")

    def small(self) -> "NetworkSpec":
        """The same class restricted to the smallest nets a solver decides quickly (<= 2 inputs, width 2, L <= 2)."""
        return NetworkSpec(
            n_layers=(min(self.n_layers[0], 2), min(self.n_layers[1], 2)),
            input_size=(min(self.input_size[0], 2), min(self.input_size[1], 2)),
            width=(min(self.width[0], 2), min(self.width[1], 2)),
            output_size=(1, 1) if self.output == 0 else self.output_size,
            numerator=self.numerator, denominators=self.denominators, bias=self.bias,
            final_relu=self.final_relu, kinks=self.kinks, output=self.output, output_sign=self.output_sign,
            kind=self.kind,
        )


@dataclass
class CaseStats:
    """Exact zeros and phases in one case (counted, not avoided)."""

    zero_inputs: int = 0  #: input entries exactly on the lower face of the domain (0 for a >= 0, low for a box)
    boundary_inputs: int = 0  #: box entries exactly on the upper face
    zero_weights: int = 0
    kinks: int = 0  #: hidden (ReLU) neurons with z = 0 exactly
    active: int = 0
    inactive: int = 0
    dead_layer: bool = False  #: some ReLU layer has no active neuron
    output_value: Fraction = Fraction(0)  #: f_c(x)

    @property
    def degenerate(self) -> bool:
        """Nothing to explain: f_c(x) = 0 or the relevance dies in a dead layer."""
        return self.output_value == 0 or self.dead_layer


@dataclass
class Case:
    """One test case: an exact network, an input in the domain and the explained output."""

    network: Network
    x: np.ndarray
    output: int = 0
    stats: CaseStats = field(default_factory=CaseStats)

    def __repr__(self) -> str:
        if getattr(self.network, "is_graph", False):
            import json

            return (f"Case(x={[str(v) for v in self.x]}, output={self.output}, graph="
                    f"{json.dumps(self.network.to_json(), separators=(',', ':'))})")
        ws = "; ".join(
            f"W{l}={[[str(v) for v in row] for row in W]} b{l}={[str(v) for v in b]}"
            for l, (W, b) in enumerate(zip(self.network.weights, self.network.biases), start=1)
        )
        return f"Case(x={[str(v) for v in self.x]}, output={self.output}, final_relu={self.network.final_relu}, {ws})"

    def key(self) -> tuple[Any, ...]:
        """A hashable exact identity: equal keys mean the same network, input and explained output.

        Dense networks by every number's (numerator, denominator), the shapes and the final ReLU; graphs by their
        exact text (:meth:`__repr__`).
        """
        if getattr(self.network, "is_graph", False):
            return ("graph", repr(self))
        parts: list[Any] = [self.output, self.network.final_relu, _exact_pairs(self.x)]
        for W, b in zip(self.network.weights, self.network.biases):
            parts += [W.shape, _exact_pairs(W.ravel()), _exact_pairs(b)]
        return tuple(parts)


def _exact_pairs(values: Any) -> tuple[tuple[int, int], ...]:
    """(numerator, denominator) of each exact rational (a Fraction's, in lowest terms)."""
    return tuple((v.numerator, v.denominator) for v in values)


def case_stats(net: Network, x: np.ndarray, output: int, domain: Domain | None = None) -> CaseStats:
    """Count the exact zeros and phases of a case (exact)."""
    stats = CaseStats()
    if isinstance(domain, Box):
        lo, hi = domain.bounds(len(x))
        stats.zero_inputs = int(sum(1 for v, l in zip(x, lo) if v == l))
        stats.boundary_inputs = int(sum(1 for v, h in zip(x, hi) if v == h))
    else:
        stats.zero_inputs = int(sum(1 for v in x if v == 0))
    stats.zero_weights = int(sum(int(np.sum(W == 0)) for W in net.weights))
    zs = net.preactivations(x)
    for l in net.relu_layers:
        z = zs[l - 1]
        act = sum(1 for v in z if v > 0)
        stats.active += act
        stats.inactive += sum(1 for v in z if v < 0)
        stats.kinks += sum(1 for v in z if v == 0)
        if act == 0 and l < net.n_layers:
            stats.dead_layer = True
    stats.output_value = net.forward(x)[output]
    return stats


# ---------------------------------------------------------------------------------------------------- draws
@functools.lru_cache(maxsize=None)
def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    """``st.integers(lo, hi)``, built once per range and unwrapped from hypothesis's lazy wrapper.

    Drawing the unwrapped strategy makes exactly the same choice under the same span label (hypothesis itself
    draws the wrapped strategy of a lazy one), without re-creating the strategy and resolving the wrapper on
    every draw; where a hypothesis version has no wrapper attribute the strategy is drawn as it is.
    """
    strategy = st.integers(lo, hi)
    return getattr(strategy, "wrapped_strategy", strategy)


def _sampled(values: Sequence[Any]) -> st.SearchStrategy[Any]:
    """``st.sampled_from(values)``, built once per sequence of values and unwrapped (as :func:`_integers`)."""
    return _sampled_from(tuple(values))


@functools.lru_cache(maxsize=None)
def _sampled_from(values: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """The cached, unwrapped ``st.sampled_from`` of one tuple (:func:`_sampled`)."""
    strategy = st.sampled_from(values)
    return getattr(strategy, "wrapped_strategy", strategy)


_BOOLEANS = st.booleans()
#: the phase menus of :func:`cases` (index 0, active, is where shrinking goes)
_HIDDEN_PHASES = (ACTIVE, ACTIVE, INACTIVE, KINK)
_AWAY_PHASES = (ACTIVE, ACTIVE, INACTIVE)
_LINEAR_PHASES = (ACTIVE, INACTIVE)
_POSITIVE_OUTPUT_PHASES = (ACTIVE,) * 7 + (KINK,)
_ANY_OUTPUT_PHASES = (ACTIVE,) * 6 + (INACTIVE, KINK)

#: strategies built by :func:`_built`: key -> (the arguments, kept alive so that their ids stay theirs; the strategy)
_BUILT: dict[tuple[Any, ...], tuple[tuple[Any, ...], st.SearchStrategy[Any]]] = {}


def _built(factory: Any, *args: Any) -> st.SearchStrategy[Any]:
    """``factory(*args)`` (a ``@st.composite`` function), built once per factory and argument objects.

    Calling a composite function binds its signature and wraps a new strategy on every call; drawing the one
    built before is the same draw. Arguments are matched by identity (a :class:`~dtd_formal.rules.domains.Box`
    is not hashable); the cache keeps them referenced, so an id cannot pass to another object while it is used.
    """
    key = (factory, *(id(v) for v in args))
    hit = _BUILT.get(key)
    if hit is None:
        if len(_BUILT) >= 1024:
            _BUILT.clear()
        hit = (args, factory(*args))
        _BUILT[key] = hit
    return hit[1]


# ---------------------------------------------------------------------------------------------------- pieces
def rationals(
    numerator: int = 4, denominators: tuple[int, ...] = (1, 2, 4, 3), nonnegative: bool = False
) -> st.SearchStrategy[Fraction]:
    """Rationals k/d with |k| <= numerator and d from ``denominators`` (shrinks to 0, then to denominator 1)."""
    lo = 0 if nonnegative else -numerator
    return st.builds(lambda d, k: Fraction(k, d), st.sampled_from(denominators), st.integers(lo, numerator))


@st.composite
def inputs(
    draw: Any, n: int, domain: Domain | None = None, numerator: int = 4, denominators: tuple[int, ...] = (1, 2, 4, 3)
) -> np.ndarray:
    """One exact input of length n in ``domain`` (default a >= 0).

    NonNegative: :math:`k/d` with :math:`0 \\le k \\le` numerator (zeros included); Box(l, h):
    :math:`l + (h - l) k / m` with :math:`0 \\le k \\le m` (both faces included); Unbounded: signed :math:`k/d`.
    """
    domain = NonNegative() if domain is None else domain
    d = draw(_sampled(denominators))
    if isinstance(domain, Box):
        lo, hi = domain.bounds(n)
        m = max(denominators) * 2
        ks = [draw(_integers(0, m)) for _ in range(n)]
        vals = [lo[i] + (hi[i] - lo[i]) * Fraction(k, m) for i, k in enumerate(ks)]
    elif isinstance(domain, Unbounded):
        signed = _integers(-numerator, numerator)
        vals = [Fraction(draw(signed), d) for _ in range(n)]
    elif isinstance(domain, NonNegative):
        count = _integers(0, numerator)
        vals = [Fraction(draw(count), d) for _ in range(n)]
        if all(v == 0 for v in vals):  # x = 0 explains nothing; zeros stay, but not all of them
            vals[-1] = Fraction(draw(_integers(1, numerator)), d)
    else:
        lo, hi = domain.bounds(n)
        vals = []
        for i in range(n):
            k = Fraction(draw(_integers(0, numerator)), d)
            if lo[i] is not None and hi[i] is not None:
                vals.append(lo[i] + (hi[i] - lo[i]) * min(k, Fraction(1)))
            elif lo[i] is not None:
                vals.append(lo[i] + k)
            elif hi[i] is not None:
                vals.append(hi[i] - k)
            else:
                vals.append(k)
        if not domain.contains(np.array(vals, dtype=object)):  # pragma: no cover - custom domains
            raise ValueError(f"cannot draw inputs in the custom domain {domain.describe()}")
    out = np.empty(n, dtype=object)
    out[:] = vals
    return out


def _bias_for(draw: Any, u: Fraction, phase: int, spec: NetworkSpec, d: int) -> tuple[Fraction, int]:
    """A bias b with z = u + b of the requested phase if the sign constraint allows it; returns (b, phase got)."""
    def mag() -> Fraction:  # a positive magnitude, drawn only where one is needed
        return Fraction(draw(_integers(1, spec.numerator)), d)

    if spec.bias == "zero":
        return Fraction(0), (ACTIVE if u > 0 else INACTIVE if u < 0 else KINK)
    if spec.bias == "any":
        target = mag() if phase == ACTIVE else -mag() if phase == INACTIVE else Fraction(0)
        return target - u, phase
    # b <= 0 (or b >= 0 mirrored): z = u + b <= u
    sgn = 1 if spec.bias == "nonpositive" else -1
    us = sgn * u  # need z' = us - s with s >= 0 in the mirrored problem, then z = sgn * z'
    want = phase if sgn == 1 else {ACTIVE: INACTIVE, INACTIVE: ACTIVE, KINK: KINK}[phase]
    if want == ACTIVE and us > 0:
        zp = Fraction(draw(_integers(1, 4)), 4) * us  # z' in (0, us]
    elif want == KINK and us >= 0:
        zp = Fraction(0)
    else:
        zp = min(us, Fraction(0)) - mag()
    b = sgn * (zp - us)
    z = u + b
    return b, (ACTIVE if z > 0 else INACTIVE if z < 0 else KINK)


def _wrong_side(u: Fraction, bias: BiasSign) -> bool:
    """Whether u's sign keeps a neuron inactive under the bias constraint (b <= 0 or b = 0 need u > 0)."""
    return bias in ("nonpositive", "zero") and u < 0


@st.composite
def conv_cases(draw: Any, spec: NetworkSpec, domain: Domain | None = None) -> Case:
    """A :class:`Case` on a small operator graph (``NetworkSpec.kind == "conv"``): conv (+ ReLU) [+ max pool] ->
    flatten -> dense, weights k/d as for dense cases, the input drawn in ``domain``."""
    from ..graph import GraphBuilder

    c_in = draw(_integers(1, 2))
    length = draw(_integers(spec.input_size[0] + 1, spec.input_size[1] + 1))
    c_out = draw(_integers(1, 2))
    k = draw(_integers(1, min(2, length)))
    pad = draw(_integers(0, 1))
    x = draw(_built(inputs, c_in * length, domain, spec.numerator, spec.denominators))
    d = draw(_sampled(spec.denominators))
    weight = _integers(-spec.numerator, spec.numerator)
    num = lambda: Fraction(draw(weight), d)  # noqa: E731
    def signed(v: Fraction) -> Fraction:  # the spec's bias sign constraint
        return {"any": v, "zero": Fraction(0), "nonpositive": -abs(v), "nonnegative": abs(v)}[spec.bias]

    kernel = np.array([[[num() for _ in range(k)] for _ in range(c_in)] for _ in range(c_out)], dtype=object)
    bias = np.array([signed(num()) for _ in range(c_out)], dtype=object)
    probe = GraphBuilder((c_in, length))
    u = probe.network(probe.conv(probe.input, kernel, None, pads=[pad, pad])).forward(x)  # the conv, no bias
    if not any(v + bias[j // (len(u) // c_out)] > 0 for j, v in enumerate(u)):
        # a dead conv layer explains nothing: switch one neuron on within the bias constraint, as for dense cases
        if max(u) <= 0:
            kernel, u = -kernel, -u
        j = int(np.argmax([float(v) for v in u]))
        c = j // (len(u) // c_out)
        if u[j] > 0 and spec.bias != "zero":
            bias[c] = -u[j] / 2 if spec.bias == "nonpositive" else abs(bias[c])
    g = GraphBuilder((c_in, length))
    h = g.relu(g.conv(g.input, kernel, bias, pads=[pad, pad]))
    if g.shape(h)[1] >= 2 and draw(_BOOLEANS):
        h = g.maxpool(h, (2,))
    flat = g.flatten(h)
    vals = g.network(flat).values(x)
    z, hidden = vals[1], vals[flat]
    n_out = draw(_integers(*spec.output_size))
    W = np.array([[num() for _ in range(len(hidden))] for _ in range(n_out)], dtype=object)
    b = np.array([signed(num()) for _ in range(n_out)], dtype=object)
    y = W[spec.output].dot(hidden) + b[spec.output]
    if spec.output_sign == "positive" and y < 0:  # f_c >= 0 as DTD assumes: flip the row, then fit the bias
        c = spec.output
        if W[c].dot(hidden) < 0:
            W[c] = -W[c]
        wh = W[c].dot(hidden)
        if wh + b[c] < 0:  # the bias alone is negative: its sign constraint decides what is left
            b[c] = -b[c] if spec.bias in ("any", "nonnegative") else (-wh / 2 if spec.bias == "nonpositive" else 0)
        y = wh + b[c]  # f_c = 0 only when nothing else is allowed (a degenerate case, counted)
    net = g.network(g.dense(flat, W, b))
    stats = CaseStats(zero_weights=int(np.sum(kernel == 0)) + int(np.sum(W == 0)), output_value=y,
                      kinks=sum(1 for v in z if v == 0), active=sum(1 for v in z if v > 0),
                      inactive=sum(1 for v in z if v < 0), dead_layer=not any(v > 0 for v in z),
                      zero_inputs=sum(1 for v in x if v == 0))
    return Case(net, x, spec.output, stats)


@st.composite
def cases(draw: Any, spec: NetworkSpec | None = None, domain: Domain | None = None) -> Case:
    """A :class:`Case`: exact network built around an input drawn in ``domain`` (module docstring)."""
    spec = NetworkSpec() if spec is None else spec
    if spec.kind == "conv":
        return draw(_built(conv_cases, spec, domain))
    n_layers = draw(_integers(*spec.n_layers))
    n0 = draw(_integers(*spec.input_size))
    width = _integers(*spec.width)
    sizes = [n0] + [draw(width) for _ in range(n_layers - 1)]
    sizes.append(draw(_integers(*spec.output_size)))
    final_relu = draw(_BOOLEANS) if spec.final_relu is None else spec.final_relu
    x = draw(_built(inputs, n0, domain, spec.numerator, spec.denominators))
    output = spec.output
    denominators = _sampled(spec.denominators)
    weight = _integers(-spec.numerator, spec.numerator)
    output_phases = _sampled(_POSITIVE_OUTPUT_PHASES if spec.output_sign == "positive" else _ANY_OUTPUT_PHASES)
    hidden_phases = _sampled(_AWAY_PHASES if spec.kinks == "away" else _HIDDEN_PHASES)
    linear_phases = _sampled(_LINEAR_PHASES)
    weights, biases = [], []
    a = x
    kink_done = spec.kinks != "toward"
    counts = {"active": 0, "inactive": 0, "kinks": 0}
    dead = False
    for l in range(1, n_layers + 1):
        n_in, n_out = sizes[l - 1], sizes[l]
        d = draw(denominators)
        W = np.empty((n_out, n_in), dtype=object)
        for j in range(n_out):
            for i in range(n_in):
                W[j, i] = Fraction(draw(weight), d)
        zero_row = draw(_integers(0, 3 * n_out))  # 1..n_out: that neuron's weights are all exactly 0
        if 1 <= zero_row <= n_out:
            W[zero_row - 1, :] = Fraction(0)
        u = W.dot(a) if n_in else np.zeros(n_out, dtype=object)
        relu_layer = l < n_layers or final_relu
        b = np.empty(n_out, dtype=object)
        phases = []
        for j in range(n_out):
            if l == n_layers and j == output:
                # the explained output: positive by default (shrinks there), sometimes 0 or negative on purpose
                phase = draw(output_phases)
            elif relu_layer:
                if spec.kinks == "toward" and not kink_done and j == n_out - 1 and l < n_layers:
                    phase = KINK
                else:
                    phase = draw(hidden_phases)
            else:
                phase = draw(linear_phases)
            if spec.bias in ("nonpositive", "zero") and phase == ACTIVE and u[j] == 0 and any(v != 0 for v in a):
                i = next(k for k, v in enumerate(a) if v != 0)  # u = 0 leaves no room for b <= 0: give it a weight
                W[j, i] = Fraction(1 if a[i] > 0 else -1, d)
                u[j] = W[j].dot(a)
            if spec.bias != "any" and phase == ACTIVE and _wrong_side(u[j], spec.bias):
                W[j] = -W[j]  # flip the row so that the constrained bias can still make the neuron active
                u[j] = -u[j]
            b[j], got = _bias_for(draw, u[j], phase, spec, d)
            if l == n_layers and j == output and spec.output_sign == "positive" and got == INACTIVE:
                b[j], got = -u[j], KINK  # constraint allows no f_c > 0 here: f_c = 0 (degenerate), never < 0
            phases.append(got)
        if relu_layer and l < n_layers and ACTIVE not in phases:
            # keep the relevance alive: make the first neuron active when the constraint allows it
            for j in range(n_out):
                if spec.kinks == "toward" and phases[j] == KINK:
                    continue  # the steered kink stays (a width-1 layer is then dead: a degenerate case)
                sgn = -1 if _wrong_side(u[j], spec.bias) else 1
                bj, got = _bias_for(draw, sgn * u[j], ACTIVE, spec, d)
                if got == ACTIVE:
                    W[j], u[j], b[j], phases[j] = sgn * W[j], sgn * u[j], bj, got
                    break
        if spec.kinks == "away" and relu_layer:
            for j in range(n_out):
                if phases[j] == KINK:
                    b[j], phases[j] = _bias_for(draw, u[j], INACTIVE, spec, d)
        if KINK in phases[: n_out] and l < n_layers:
            kink_done = True
        weights.append(W)
        biases.append(b)
        z = u + b
        if relu_layer:
            n_act = sum(1 for v in z if v > 0)
            counts["active"] += n_act
            counts["inactive"] += sum(1 for v in z if v < 0)
            counts["kinks"] += sum(1 for v in z if v == 0)
            dead = dead or (n_act == 0 and l < n_layers)
        a = np.array([v if v > 0 else Fraction(0) for v in z], dtype=object) if relu_layer else z
    net = Network(weights, biases, final_relu=final_relu)
    stats = CaseStats(zero_weights=sum(int(np.sum(W == 0)) for W in weights), output_value=a[output], **counts)
    if isinstance(domain, Box):
        lo, hi = domain.bounds(n0)
        stats.zero_inputs = sum(1 for v, q in zip(x, lo) if v == q)
        stats.boundary_inputs = sum(1 for v, q in zip(x, hi) if v == q)
    else:
        stats.zero_inputs = sum(1 for v in x if v == 0)
    stats.dead_layer = dead
    return Case(net, x, output, stats)


# ---------------------------------------------------------------------------------------------------- rule parameters
def gammas(max_gamma: int = 4) -> st.SearchStrategy[Fraction]:
    """Gamma values k/4 in [0, max_gamma] (0 is LRP-0)."""
    return st.integers(0, 4 * max_gamma).map(lambda k: Fraction(k, 4))


def epsilons() -> st.SearchStrategy[Fraction]:
    """Epsilon values: 0, zennit's default 1e-6 (exactly), and k/8 for k = 1..8."""
    return st.one_of(st.just(Fraction(0)), st.just(Fraction(1e-6)), st.integers(1, 8).map(lambda k: Fraction(k, 8)))


def alpha_betas() -> st.SearchStrategy[tuple[Fraction, Fraction]]:
    """(alpha, beta) with alpha - beta = 1, beta = k/2 for k = 0..6."""
    return st.integers(0, 6).map(lambda k: (Fraction(k, 2) + 1, Fraction(k, 2)))


def boxes() -> st.SearchStrategy[tuple[Fraction, Fraction]]:
    """(low, high) with low <= 0 < high, quarters in [-2, 2]."""
    return st.tuples(st.integers(-8, 0), st.integers(1, 8)).map(lambda p: (Fraction(p[0], 4), Fraction(p[1], 4)))


__all__ = [
    "NetworkSpec", "Case", "CaseStats", "case_stats", "cases", "inputs", "rationals", "gammas", "epsilons",
    "alpha_betas", "boxes", "ACTIVE", "INACTIVE", "KINK",
]

r"""Exact piecewise-linear ReLU networks.

A :class:`Network` with L affine layers computes

.. math::

    a_0 = x,\quad z_l = W_l a_{l-1} + b_l,\quad a_l = \mathrm{relu}(z_l)\ (l < L),\quad
    f(x) = z_L \text{ (or } \mathrm{relu}(z_L) \text{ when ``final_relu``)}

with every weight an exact rational (numpy object arrays of :class:`fractions.Fraction`). Layers are numbered
1..L; layer l maps :math:`a_{l-1}` to :math:`z_l`.

Activation pattern (per ReLU layer): +1 where z > 0, -1 where z < 0, 0 where z = 0 (on the hyperplane).
The closed region of a pattern s is

.. math::  P(s) = \{x : z_l(x) \ge 0 \text{ where } s = +1,\ z_l(x) \le 0 \text{ where } s = -1,\
           z_l(x) = 0 \text{ where } s = 0\}

so ``region(pattern(x))`` always contains x. Kink convention for gradients: relu'(0) = 0 (torch's), i.e. a neuron
with z = 0 counts as inactive in :meth:`Network.gradient`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import InputError
from .exact import ExactArray, array_from_json, array_to_json, common_denominator, sign, to_fast, to_fraction_array
from .rules.ops import EXACT
from .walk import forward

Pattern = list[np.ndarray]  # one int8 array per ReLU layer, entries in {+1, 0, -1}

JSON_FORMAT = "dtd_formal.network/1"


@dataclass(frozen=True)
class IntegerLayer:
    """Layer l as integers over a common denominator: W = weight_num / den, b = bias_num / den (den > 0)."""

    weight_num: np.ndarray
    bias_num: np.ndarray
    den: int


class Network:
    """A ReLU network with exact rational weights.

    Parameters
    ----------
    weights : sequence of 2-D array-likes
        ``weights[l-1]`` is W_l with shape (n_l, n_{l-1}). Floats are converted exactly.
    biases : sequence of 1-D array-likes
        ``biases[l-1]`` is b_l with shape (n_l,).
    final_relu : bool
        Whether a ReLU follows the last layer (then the output is relu(z_L) and the last layer has a pattern).
    metadata : dict, optional
        Free-form information kept with the network (source file, input normalisation, natural input domain).
    """

    def __init__(
        self,
        weights: Sequence[Any],
        biases: Sequence[Any],
        final_relu: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if len(weights) == 0:
            raise InputError("a network needs at least one affine layer")
        if len(weights) != len(biases):
            raise InputError(f"{len(weights)} weight matrices but {len(biases)} bias vectors")
        self.weights: list[ExactArray] = []
        self.biases: list[ExactArray] = []
        for l, (w, b) in enumerate(zip(weights, biases), start=1):
            W = to_fraction_array(w, f"layer {l} weight")
            B = to_fraction_array(b, f"layer {l} bias")
            if W.ndim != 2:
                raise InputError(f"layer {l} weight: expected a 2-D matrix, got shape {W.shape}")
            if B.shape != (W.shape[0],):
                raise InputError(f"layer {l} bias: shape {B.shape} does not match weight shape {W.shape}")
            if self.weights and W.shape[1] != self.weights[-1].shape[0]:
                raise InputError(
                    f"layer {l} weight: expects {W.shape[1]} inputs but layer {l - 1} has {self.weights[-1].shape[0]} outputs"
                )
            self.weights.append(W)
            self.biases.append(B)
        if not isinstance(final_relu, (bool, np.bool_)):
            raise InputError(f"final_relu must be True or False, got {final_relu!r}")
        if metadata is not None and not isinstance(metadata, dict):
            raise InputError(f"metadata must be a dict, got {type(metadata).__name__} {metadata!r:.60}")
        self.final_relu = bool(final_relu)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._integer_layers: list[IntegerLayer] | None = None
        self._fast_layers: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._float_view: FloatNetwork | None = None

    # ------------------------------------------------------------------ shape
    @property
    def n_layers(self) -> int:
        """L, the number of affine layers."""
        return len(self.weights)

    @property
    def input_size(self) -> int:
        return self.weights[0].shape[1]

    @property
    def output_size(self) -> int:
        return self.weights[-1].shape[0]

    @property
    def layer_sizes(self) -> list[int]:
        """[n_0, n_1, ..., n_L]."""
        return [self.input_size] + [W.shape[0] for W in self.weights]

    def has_relu(self, layer: int) -> bool:
        """Whether layer ``layer`` (1-based) is followed by a ReLU."""
        self.check_layer(layer)
        return layer < self.n_layers or self.final_relu

    @property
    def relu_flags(self) -> list[bool]:
        """``relu_flags[l-1]``: whether layer l is followed by a ReLU (the form :mod:`dtd_formal.walk` takes)."""
        return [self.has_relu(l) for l in range(1, self.n_layers + 1)]

    def arrays(self, kind: str = "fraction") -> list[tuple[np.ndarray, np.ndarray]]:
        """(W_l, b_l) of every layer as ``"fraction"`` (the exact public form), ``"fast"`` (gmpy2 rationals, the
        same values) or ``"float64"`` (each entry rounded to the nearest float)."""
        if kind == "fraction":
            return list(zip(self.weights, self.biases))
        if kind == "fast":
            return self.fast_layers
        if kind == "float64":
            fnet = self.to_float()
            return list(zip(fnet.weights, fnet.biases))
        raise InputError(f"arithmetic must be 'fraction', 'fast' or 'float64', got {kind!r}")

    @property
    def relu_layers(self) -> list[int]:
        """The 1-based indices of the layers followed by a ReLU (the ones that have a pattern)."""
        return [l for l in range(1, self.n_layers + 1) if self.has_relu(l)]

    @property
    def n_relus(self) -> int:
        return sum(self.weights[l - 1].shape[0] for l in self.relu_layers)

    def weight(self, layer: int) -> ExactArray:
        """W_l (1-based)."""
        self.check_layer(layer)
        return self.weights[layer - 1]

    def bias(self, layer: int) -> ExactArray:
        """b_l (1-based)."""
        self.check_layer(layer)
        return self.biases[layer - 1]

    def check_layer(self, layer: int) -> None:
        if not isinstance(layer, (int, np.integer)) or not 1 <= layer <= self.n_layers:
            raise InputError(f"layer {layer!r} does not exist: layers are numbered 1..{self.n_layers}")

    def __repr__(self) -> str:
        sizes = "-".join(str(n) for n in self.layer_sizes)
        return f"Network({sizes}, final_relu={self.final_relu})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        return (
            self.final_relu == other.final_relu
            and self.layer_sizes == other.layer_sizes
            and all(np.array_equal(a, b) for a, b in zip(self.weights, other.weights))
            and all(np.array_equal(a, b) for a, b in zip(self.biases, other.biases))
        )

    __hash__ = None  # type: ignore[assignment]

    #: per-network caches of backends that hold objects a process pool cannot pickle (Z3 terms); rebuilt on use
    _UNPICKLED_CACHES = ("_z3_layers", "_stock_forms", "_smt_split_weights")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._UNPICKLED_CACHES}

    # ------------------------------------------------------------------ inputs
    def as_input(self, x: Any, name: str = "input") -> ExactArray:
        """Convert one input exactly and check its length."""
        arr = to_fraction_array(x, name)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1 or arr.shape[0] != self.input_size:
            raise InputError(f"{name}: expected {self.input_size} values, got shape {arr.shape}")
        return arr

    def as_batch(self, xs: Any, name: str = "inputs") -> ExactArray:
        """Convert a batch (2-D: one input per row) or a single input (1-D, becomes one row) exactly."""
        arr = to_fraction_array(xs, name)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.input_size:
            raise InputError(f"{name}: expected rows of {self.input_size} values, got shape {arr.shape}")
        return arr

    # ------------------------------------------------------------------ exact evaluation
    def _evaluate(self, x: Any) -> tuple[list[ExactArray], list[ExactArray]]:
        """([a_0, ..., a_L], [z_1, ..., z_L]) at x, exact (:func:`dtd_formal.walk.forward` in Fractions): one pass
        serves both views."""
        return forward(EXACT, self.arrays("fraction"), self.relu_flags, self.as_input(x))

    def preactivations(self, x: Any) -> list[ExactArray]:
        """[z_1, ..., z_L] at x, exact."""
        return self._evaluate(x)[1]

    def activations(self, x: Any) -> list[ExactArray]:
        """[a_0 = x, a_1, ..., a_L] at x, exact (a_L = z_L unless ``final_relu``)."""
        return self._evaluate(x)[0]

    def forward(self, x: Any) -> ExactArray:
        """f(x), exact."""
        return self.activations(x)[-1]

    def pattern(self, x: Any) -> Pattern:
        """Activation pattern at x: per ReLU layer, +1 (z > 0), -1 (z < 0), 0 (z = 0)."""
        zs = self.preactivations(x)
        return [sign(zs[l - 1]) for l in self.relu_layers]

    def gradient(self, x: Any, output: int = 0) -> ExactArray:
        """Exact gradient of f_output at x, with the kink convention relu'(0) = 0.

        On the interior of a region this is the gradient g(s) of the affine piece; on a hyperplane it is the
        gradient of the piece in which every neuron with z = 0 is inactive.
        """
        self.check_output(output)
        pattern = self.pattern(x)
        slopes = {l: (s > 0) for l, s in zip(self.relu_layers, pattern)}
        return self._affine_of_slopes(slopes, output)[0]

    def check_output(self, output: int) -> None:
        if not isinstance(output, (int, np.integer)) or not 0 <= output < self.output_size:
            raise InputError(f"output {output!r} does not exist: the network has outputs 0..{self.output_size - 1}")

    def _affine_of_slopes(self, slopes: dict[int, np.ndarray], output: int) -> tuple[ExactArray, Fraction]:
        """(g, c) with f_output(x) = g·x + c when each ReLU layer l passes exactly the neurons slopes[l]."""
        maps = self._layer_maps(slopes)
        A, c = maps[-1]
        if self.final_relu:
            keep = slopes[self.n_layers][output]
            return (A[output] if keep else A[output] * 0), (c[output] if keep else Fraction(0))
        return A[output], c[output]

    def _layer_maps(self, slopes: dict[int, np.ndarray]) -> list[tuple[ExactArray, ExactArray]]:
        """Affine maps z_l = A_l x + c_l of all layers when layer l's ReLU passes exactly slopes[l]."""
        n0 = self.input_size
        A = np.eye(n0, dtype=int).astype(object) * Fraction(1)
        c = np.array([Fraction(0)] * n0, dtype=object)
        maps = []
        for l, (W, b) in enumerate(zip(self.weights, self.biases), start=1):
            A = W.dot(A)
            c = W.dot(c) + b
            maps.append((A, c))
            if self.has_relu(l):
                mask = np.asarray(slopes[l], dtype=bool)
                A = A * mask[:, None]
                c = c * mask
        return maps

    def local_affine(self, pattern: Pattern) -> list[tuple[ExactArray, ExactArray]]:
        r"""Exact affine maps of every layer's pre-activations on the closed region of ``pattern``.

        Returns ``[(A_1, c_1), ..., (A_L, c_L)]`` with :math:`z_l(x) = A_l x + c_l` for all x in P(s).
        Neurons with s = +1 pass (a = z); s = -1 and s = 0 give a = 0 (for s = 0, z = 0 on P(s) anyway).
        """
        slopes = self._slopes_of_pattern(pattern)
        return self._layer_maps(slopes)

    def _slopes_of_pattern(self, pattern: Pattern) -> dict[int, np.ndarray]:
        if len(pattern) != len(self.relu_layers):
            raise InputError(f"pattern has {len(pattern)} layers, the network has {len(self.relu_layers)} ReLU layers")
        slopes = {}
        for l, s in zip(self.relu_layers, pattern):
            s = np.asarray(s)
            if s.shape != (self.weights[l - 1].shape[0],):
                raise InputError(f"pattern of layer {l}: shape {s.shape}, expected ({self.weights[l - 1].shape[0]},)")
            if not np.all(np.isin(s, (-1, 0, 1))):
                raise InputError(f"pattern of layer {l}: entries must be +1, 0 or -1")
            slopes[l] = s > 0
        return slopes

    def affine_map(self, pattern: Pattern, output: int = 0) -> tuple[ExactArray, Fraction]:
        """(g, c) with f_output(x) = g·x + c on the closed region of ``pattern`` (g is the gradient there)."""
        self.check_output(output)
        return self._affine_of_slopes(self._slopes_of_pattern(pattern), output)

    def region(self, pattern: Pattern) -> tuple[ExactArray, ExactArray]:
        r"""The closed activation region P(s) as exact (A, b) with :math:`P(s) = \{x : A x \le b\}`.

        Row order: layer by layer, neuron by neuron; s = +1 gives :math:`-z \le 0`, s = -1 gives :math:`z \le 0`,
        s = 0 gives both.
        """
        maps = self.local_affine(pattern)
        rows: list[ExactArray] = []
        rhs: list[Fraction] = []
        for l, s in zip(self.relu_layers, pattern):
            A, c = maps[l - 1]
            sign_rows(A, c, s, rows, rhs)
        if not rows:
            return np.empty((0, self.input_size), dtype=object), np.empty(0, dtype=object)
        return np.array(rows, dtype=object), np.array(rhs, dtype=object)

    def upper(self, layer: int) -> "Network":
        """The sub-network of layers ``layer``..L: its input is a_{layer-1}, its layer 1 is this layer ``layer``."""
        self.check_layer(layer)
        return Network(
            self.weights[layer - 1 :],
            self.biases[layer - 1 :],
            final_relu=self.final_relu,
            metadata={"upper_of": layer},
        )

    # ------------------------------------------------------------------ fast views
    @property
    def integer_layers(self) -> list[IntegerLayer]:
        """Each layer as integer numerators over a common denominator (cached): the fast exact representation."""
        if self._integer_layers is None:
            layers = []
            for W, b in zip(self.weights, self.biases):
                nums, den = common_denominator(np.concatenate([W, b[:, None]], axis=1))
                layers.append(IntegerLayer(nums[:, :-1], nums[:, -1].copy(), den))
            self._integer_layers = layers
        return self._integer_layers

    def to_float(self) -> "FloatNetwork":
        """A float64 view of this network (each weight rounded to the nearest float) for fast batch work (cached)."""
        if self._float_view is None:
            self._float_view = FloatNetwork(self)
        return self._float_view

    @property
    def fast_layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W_l, b_l) as object arrays of :data:`dtd_formal.exact.FAST_RATIONAL` (gmpy2.mpq): same exact values,
        for internal hot paths (cached)."""
        if self._fast_layers is None:
            self._fast_layers = [(to_fast(W), to_fast(b)) for W, b in zip(self.weights, self.biases)]
        return self._fast_layers

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """The package's exact JSON form: rationals as "num/den" strings."""
        return {
            "format": JSON_FORMAT,
            "final_relu": self.final_relu,
            "layers": [
                {"weight": array_to_json(W), "bias": array_to_json(b)} for W, b in zip(self.weights, self.biases)
            ],
            "metadata": _jsonable(self.metadata),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "JSON") -> "Network":
        """Inverse of :meth:`to_json`; errors name ``source`` and the layer."""
        if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
            raise InputError(f"{source}: not a dtd_formal network (expected \"format\": \"{JSON_FORMAT}\")")
        layers = data.get("layers")
        if not isinstance(layers, list) or not layers:
            raise InputError(f"{source}: \"layers\" must be a non-empty list")
        weights, biases = [], []
        for l, layer in enumerate(layers, start=1):
            if not isinstance(layer, dict) or "weight" not in layer or "bias" not in layer:
                raise InputError(f"{source}: layer {l} needs \"weight\" and \"bias\"")
            if not isinstance(layer["weight"], list) or not isinstance(layer["bias"], list):
                raise InputError(f"{source}: layer {l}: \"weight\" and \"bias\" must be lists")
            try:
                weights.append(array_from_json(layer["weight"], f"{source}: layer {l} weight"))
                biases.append(array_from_json(layer["bias"], f"{source}: layer {l} bias"))
            except ValueError as exc:
                if isinstance(exc, InputError):
                    raise
                raise InputError(f"{source}: layer {l}: {exc}") from None
        final_relu = data.get("final_relu", False)
        if not isinstance(final_relu, bool):
            raise InputError(f"{source}: \"final_relu\" must be true or false (a JSON boolean), got {final_relu!r}")
        metadata = data.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InputError(f"{source}: \"metadata\" must be an object, got {type(metadata).__name__}")
        try:
            return cls(weights, biases, final_relu=final_relu, metadata=metadata)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None

    def digest(self) -> str:
        """``"sha256:<hex>"`` of the canonical exact JSON (final_relu and the layers as "num/den" strings; sorted keys,
        no whitespace; metadata excluded): what a verdict file binds its statement to."""
        canonical = {"format": JSON_FORMAT, "final_relu": self.final_relu,
                     "layers": [{"weight": array_to_json(W), "bias": array_to_json(b)}
                                for W, b in zip(self.weights, self.biases)]}
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def save(self, path: str | Path) -> None:
        """Write the exact JSON form to ``path``."""
        Path(path).write_text(json.dumps(self.to_json(), indent=1))

    # ------------------------------------------------------------------ loaders (lazy, see dtd_formal.io)
    @classmethod
    def from_torch(cls, model: Any, input_shape: Any = None, **kwargs: Any) -> Any:
        """Exact network from a torch model.

        Without ``input_shape``: an ``nn.Sequential`` of Linear/ReLU layers as a dense :class:`Network`
        (:func:`dtd_formal.io.torch_io.network_from_torch`). With ``input_shape`` (one input, no batch dimension,
        e.g. ``(3, 32, 32)``): any model the torch backend can trace (convolutions, pools, BatchNorm, residual
        sums) as an exact operator graph (:func:`dtd_formal.io.torch_graph.graph_from_torch`).
        """
        if input_shape is not None:
            from .io.torch_graph import graph_from_torch

            if kwargs:
                raise InputError(f"from_torch with input_shape takes no other options, got {sorted(kwargs)}")
            return graph_from_torch(model, input_shape)
        from .io.torch_io import network_from_torch

        return network_from_torch(model, **kwargs)

    def to_torch(self, dtype: Any = None) -> Any:
        """An ``nn.Sequential`` of Linear/ReLU computing this network in floats (float64 by default)."""
        from .io.torch_io import network_to_torch

        return network_to_torch(self, dtype=dtype)

    def to_sympy(self, pattern: Pattern | None = None, output: int | None = None, **kwargs: Any) -> Any:
        """Exact SymPy form: global nested Max (pattern None, budgeted) or the affine form on P(pattern).

        See :func:`dtd_formal.symbolic.translate.to_sympy` (imported lazily).
        """
        from .symbolic.translate import to_sympy

        return to_sympy(self, pattern, output=output, **kwargs)


def sign_rows(A: Any, c: Any, signs: Any, rows: list[Any], rhs: list[Any]) -> None:
    r"""Append the closed-region inequalities of affine pre-activations :math:`z = A x + c` with the signs s:
    s = +1 gives :math:`-z \le 0`, s = -1 gives :math:`z \le 0`, s = 0 both (rows of A x <= b)."""
    for j, sj in enumerate(np.asarray(signs)):
        if sj >= 0:
            rows.append(-A[j])
            rhs.append(c[j])
        if sj <= 0:
            rows.append(A[j])
            rhs.append(-c[j])


def relu(z: ExactArray) -> ExactArray:
    """Entrywise max(z, 0) of an exact array."""
    return np.where(np.asarray([v > 0 for v in z.ravel()], dtype=bool).reshape(z.shape), z, Fraction(0)).astype(
        object
    )


def _jsonable(value: Any) -> Any:
    """Metadata to JSON: Fractions and exact arrays as strings, numpy arrays as lists."""
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, np.ndarray):
        return array_to_json(value) if value.dtype == object else value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


@dataclass
class FloatNetwork:
    """Float64 twin of a :class:`Network` for batches: same numbering and kink convention, rounded weights."""

    exact: Network
    weights: list[np.ndarray] = field(init=False)
    biases: list[np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        from .exact import to_float

        self.weights = [to_float(W) for W in self.exact.weights]
        self.biases = [to_float(b) for b in self.exact.biases]

    def preactivations(self, xs: np.ndarray) -> list[np.ndarray]:
        """[z_1..z_L] for a batch (rows) or a single input, float64."""
        a = np.asarray(xs, dtype=np.float64)
        zs = []
        for l, (W, b) in enumerate(zip(self.weights, self.biases), start=1):
            z = a @ W.T + b
            zs.append(z)
            a = np.maximum(z, 0.0) if self.exact.has_relu(l) else z
        return zs

    def forward(self, xs: np.ndarray) -> np.ndarray:
        zs = self.preactivations(xs)
        return np.maximum(zs[-1], 0.0) if self.exact.final_relu else zs[-1]

    def pattern(self, xs: np.ndarray) -> list[np.ndarray]:
        zs = self.preactivations(xs)
        return [np.sign(zs[l - 1]).astype(np.int8) for l in self.exact.relu_layers]

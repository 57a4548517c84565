r"""Exact piecewise-linear operators of a network graph, each a small typed object with its forward pass.

Every value is a flat 1-D array (the C-order flattening of the operator's output shape), in the numbers of an ops
namespace (exact rationals, float64, Z3 terms): the same operator code runs on every backend, as rules do.

Structured operators never unroll into dense matrices. A convolution, and every pooling window, is kept in
*patch form*: ``idx`` (n_out, k) holds, for output j, the flat input positions of its receptive field (-1 for
padding), and ``weights`` (n_out, k) the kernel entries that meet them, so

.. math::  z_j = \sum_{m < k,\ \mathrm{idx}_{jm} \ge 0} w_{jm}\, a_{\mathrm{idx}_{jm}} + b_j .

``weights`` repeats the kernel's entries by reference (n_out x k pointers, not a Toeplitz matrix of n_out x n_in
numbers); for the CIFAR net of the shared data this is about 150k entries against 4M for a dense unrolling.

Operators:

- :class:`Dense` (:math:`z = W a + b`) and :class:`Conv` (1-D/2-D, stride, padding, dilation, groups, bias): the
  affine *layers* a rule explains;
- :class:`Relu`; :class:`MaxPool` (piecewise-linear: which input wins each window is part of the pattern);
- :class:`AvgPool` (exact rational means, also global); :class:`Add` (residual sums of two tensors);
- :class:`Scale` (:math:`y = d \odot x + c`, elementwise constants: Sub/Div/Mul/Add by constants, BatchNorm);
- :class:`Gather` (index maps: Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Slice) and :class:`Concat`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import InputError

Shape = tuple[int, ...]


def size(shape: Shape) -> int:
    return int(np.prod(shape)) if shape else 1


# ---------------------------------------------------------------------------------------------------- patches
def window_patches(in_shape: Shape, kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int],
                   dilations: Sequence[int]) -> tuple[np.ndarray, Shape]:
    """Receptive fields of a sliding window over the spatial dims of ``in_shape`` = (C, *spatial).

    Returns (idx, out_spatial): ``idx`` (C * prod(out_spatial), prod(kernel)) flat positions into the input for one
    channel-preserving window (the channel of row r is r // prod(out_spatial)), -1 where the window meets the
    padding. ``pads`` = (begin_0, ..., begin_{d-1}, end_0, ..., end_{d-1}) as in ONNX.
    """
    C, spatial = in_shape[0], in_shape[1:]
    d = len(spatial)
    if not (len(kernel) == len(strides) == len(dilations) == d and len(pads) == 2 * d):
        raise InputError(f"window of {len(kernel)} dims over a tensor of shape {in_shape}")
    out_spatial = tuple((spatial[i] + pads[i] + pads[d + i] - dilations[i] * (kernel[i] - 1) - 1) // strides[i] + 1
                        for i in range(d))
    if any(o < 1 for o in out_spatial):
        raise InputError(f"window {tuple(kernel)} with pads {tuple(pads)} does not fit the input shape {in_shape}")
    # coordinates of every (output position, kernel offset) pair
    out_pos = np.array(list(itertools.product(*[range(o) for o in out_spatial])), dtype=np.int64).reshape(-1, d)
    offs = np.array(list(itertools.product(*[range(k) for k in kernel])), dtype=np.int64).reshape(-1, d)
    coord = (out_pos[:, None, :] * np.array(strides) - np.array(pads[:d]) + offs[None, :, :] * np.array(dilations))
    inside = np.all((coord >= 0) & (coord < np.array(spatial)), axis=2)
    strides_flat = np.array([int(np.prod(spatial[i + 1:])) for i in range(d)], dtype=np.int64)
    flat = (coord * strides_flat).sum(axis=2)
    flat = np.where(inside, flat, -1)
    plane = size(spatial)
    idx = np.concatenate([np.where(flat >= 0, flat + c * plane, -1) for c in range(C)], axis=0)
    return idx, out_spatial


# ---------------------------------------------------------------------------------------------------- operators
@dataclass
class Operator:
    """Base: ``name`` (the source node), ``inputs`` (ids of the nodes it reads), ``shape`` (its output shape)."""

    name: str
    inputs: list[int]
    shape: Shape

    kind = "operator"

    @property
    def n_out(self) -> int:
        return size(self.shape)

    def forward(self, ops: Any, args: list[Any]) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class Input(Operator):
    kind = "input"


@dataclass
class Dense(Operator):
    """z = W a + b (W (n_out, n_in), b (n_out,)), exact."""

    W: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    b: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    kind = "dense"

    def forward(self, ops: Any, args: list[Any]) -> Any:
        W, b = self.arrays(ops)
        return ops.matmul(W, args[0]) + b

    def arrays(self, ops: Any) -> tuple[Any, Any]:
        """(W, b) in the numbers of ``ops`` (cached per ops kind)."""
        return converted(self, ops, ("W", "b"))


@dataclass
class Conv(Operator):
    """A convolution in patch form (module docstring): ``idx`` (n_out, k), ``weights`` (n_out, k), ``b`` (n_out,).

    ``kernel`` (C_out, C_in / groups, *kernel_shape) and the geometry (strides, pads, dilations, groups) are kept
    for export and for the torch twin; ``b`` is per output neuron (a folded input normalisation makes it vary over
    positions near the border).
    """

    in_shape: Shape = ()
    kernel: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    b: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    strides: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()
    dilations: tuple[int, ...] = ()
    groups: int = 1
    idx: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    weights: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    widx: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]  #: weights = table()[widx]

    kind = "conv"

    @classmethod
    def build(cls, name: str, inputs: list[int], in_shape: Shape, kernel: np.ndarray, bias: np.ndarray | None,
              strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int], groups: int = 1) -> "Conv":
        """The patch form of a convolution (exact kernel and bias, object arrays); ``bias`` per output channel or,
        of length n_out, per output neuron."""
        C_out, C_in_g = kernel.shape[:2]
        C_in = in_shape[0]
        if C_in != C_in_g * groups or C_out % groups:
            raise InputError(f"conv {name!r}: kernel {kernel.shape} with groups {groups} does not fit input {in_shape}")
        ksp = kernel.shape[2:]
        # windows over one input channel at a time; a row of the conv reads C_in/groups channels
        win, out_spatial = window_patches((1,) + tuple(in_shape[1:]), ksp, strides, pads, dilations)
        plane_in = size(in_shape[1:])
        n_pos = size(out_spatial)
        k_sp = win.shape[1]
        k = C_in_g * k_sp
        idx = np.empty((C_out * n_pos, k), dtype=np.int64)
        widx = np.empty((C_out * n_pos, k), dtype=np.int64)  # into the flat kernel; C_out * k is the zero slot
        for oc in range(C_out):
            g = oc // (C_out // groups)
            cols = np.concatenate([np.where(win >= 0, win + (g * C_in_g + ic) * plane_in, -1) for ic in range(C_in_g)],
                                  axis=1)
            rows = slice(oc * n_pos, (oc + 1) * n_pos)
            idx[rows] = cols
            widx[rows] = np.where(cols >= 0, oc * k + np.arange(k)[None, :], C_out * k)
        zero = 0 * kernel.ravel()[0]
        n_out = C_out * n_pos
        if bias is None:
            b = np.array([zero] * n_out, dtype=object)
        else:
            bias = np.asarray(bias, dtype=object)
            b = bias.copy() if len(bias) == n_out and n_out != C_out else np.repeat(bias, n_pos)
        op = cls(name, inputs, (C_out,) + tuple(out_spatial), tuple(in_shape), kernel, b, tuple(strides),
                 tuple(pads), tuple(dilations), groups, idx, None)
        op.widx = widx
        op.weights = op.table()[widx]
        return op

    def table(self) -> np.ndarray:
        """The flat kernel and a trailing 0: ``weights = table()[widx]``."""
        flat = self.kernel.reshape(-1)
        return np.concatenate([flat, np.array([0 * flat[0]], dtype=object)])

    def rescaled(self, out_scale: np.ndarray | None = None, in_scale: np.ndarray | None = None,
                 bias: np.ndarray | None = None) -> "Conv":
        """The same geometry with the kernel scaled per output channel (``out_scale``, length C_out) and/or per
        input channel (``in_scale``, length C_in), exactly, and the per-neuron ``bias`` (default: unchanged)."""
        K = np.array(self.kernel, dtype=object)
        C_out, C_in_g = K.shape[:2]
        if out_scale is not None:
            K = K * np.asarray(out_scale, dtype=object).reshape((C_out,) + (1,) * (K.ndim - 1))
        if in_scale is not None:
            per_group = C_out // self.groups
            s_in = np.asarray(in_scale, dtype=object)
            for oc in range(C_out):
                g = oc // per_group
                K[oc] = K[oc] * s_in[g * C_in_g:(g + 1) * C_in_g].reshape((C_in_g,) + (1,) * (K.ndim - 2))
        return Conv.build(self.name, list(self.inputs), self.in_shape, K, self.b if bias is None else bias,
                          self.strides, self.pads, self.dilations, self.groups)

    def arrays(self, ops: Any) -> tuple[Any, Any]:
        """(weights, b) in the numbers of ``ops`` (cached per ops kind; the kernel is converted once and the
        patch weights indexed from it)."""
        return cached(self, (getattr(ops, "name", type(ops).__name__), "patch"),
                      lambda: (_convert(ops, self.table())[self.widx], _convert(ops, self.b)))

    def gather(self, ops: Any, a: Any) -> Any:
        """The (n_out, k) patches of the input ``a`` (0 at padding)."""
        return gather_rows(ops, a, self.idx)

    def forward(self, ops: Any, args: list[Any]) -> Any:
        Wg, b = self.arrays(ops)
        if is_residue_vector(ops, args[0]):
            return patch_matrix(self, ops, len(args[0])) @ args[0] + b
        if _plain_exact(ops, args[0]):
            out = self._integer_forward(ops, args[0], b)
            if out is not None:
                return out
        return ops.sum(Wg * self.gather(ops, args[0]), axis=1) + b

    def _integer_forward(self, ops: Any, a: np.ndarray, b: Any) -> np.ndarray | None:
        r"""The exact patch sums through integers: with the kernel over its least common denominator,
        :math:`K = N_K / d_K`, and the input over its own, :math:`a = N_a / d_a`,

        .. math:: z_j = \frac{\sum_m (N_K)_{w_{jm}}\, (N_a)_{\mathrm{idx}_{jm}}}{d_K\, d_a} + b_j,

        one canonical rational per output instead of a rational product and sum per term (float weights and
        activations have power-of-two denominators, so the integers stay small). None (the rational path) when
        either common denominator has more than :data:`INTEGER_FORWARD_BITS` bits."""
        from ..exact import common_denominator

        def integer_kernel() -> tuple[Any, int]:
            N, d = common_denominator(_convert(ops, self.table()))
            return (N[self.widx] if d.bit_length() <= INTEGER_FORWARD_BITS else None), d

        N_k, d_k = cached(self, (getattr(ops, "name", ""), "integer-kernel"), integer_kernel)
        if N_k is None:
            return None
        nums, d_a = common_denominator(a)
        if d_a.bit_length() > INTEGER_FORWARD_BITS:
            return None
        N_a = np.append(nums, 0)  # the padding position (idx = -1) reads the trailing 0
        sums = (N_k * N_a[np.where(self.idx >= 0, self.idx, len(a))]).sum(axis=1)
        D = d_k * d_a
        out = np.empty(len(sums), dtype=object)
        out[:] = [ops.rational(t, D) + c for t, c in zip(sums.tolist(), b.tolist())]  # Python ints throughout
        return out


@dataclass
class Relu(Operator):
    kind = "relu"

    def forward(self, ops: Any, args: list[Any]) -> Any:
        return ops.pos(args[0])


@dataclass
class MaxPool(Operator):
    """max over each window (``idx`` (n_out, k), -1 entries replaced by a valid position of the same window, which
    leaves every maximum unchanged; ONNX pads max pools with -inf)."""

    idx: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    window: dict[str, Any] = field(default_factory=dict)  #: kernel, strides, pads (for export)

    kind = "maxpool"

    def forward(self, ops: Any, args: list[Any]) -> Any:
        cols = gather_rows(ops, args[0], self.idx)
        m = cols[:, 0]
        maximum = getattr(ops, "maximum", None)  # SymPy terms have no truth value: their namespace gives max
        for c in range(1, cols.shape[1]):
            m = maximum(cols[:, c], m) if maximum is not None else ops.where(cols[:, c] > m, cols[:, c], m)
        return m

    def winners(self, a: np.ndarray) -> list[set[int]]:
        """Per window, the set of window positions (0..k-1, distinct inputs) that attain the maximum (exact)."""
        cols = np.asarray(a, dtype=object)[self.idx]
        out = []
        for row, ids in zip(cols, self.idx):
            top = max(row)
            seen, best = set(), set()
            for m, (v, i) in enumerate(zip(row, ids)):
                if v == top and int(i) not in seen:
                    best.add(m)
                seen.add(int(i))
            out.append(best)
        return out


@dataclass
class AvgPool(Operator):
    """Exact means over windows: patch form with weights 1/count (count of the valid positions, ONNX's default
    ``count_include_pad=0``, or the whole window when ``count_include_pad``)."""

    idx: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    weights: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    window: dict[str, Any] = field(default_factory=dict)  #: kernel, strides, pads, count_include_pad (for export)

    kind = "avgpool"

    def arrays(self, ops: Any) -> tuple[Any, Any]:
        return converted(self, ops, ("weights",))[0], None

    def forward(self, ops: Any, args: list[Any]) -> Any:
        Wg, _ = self.arrays(ops)
        if is_residue_vector(ops, args[0]):
            return patch_matrix(self, ops, len(args[0])) @ args[0]
        return ops.sum(Wg * gather_rows(ops, args[0], self.idx), axis=1)


@dataclass
class Add(Operator):
    kind = "add"

    def forward(self, ops: Any, args: list[Any]) -> Any:
        return args[0] + args[1]


@dataclass
class Scale(Operator):
    """y = d * x + c elementwise (exact constants broadcast to the input's flat size)."""

    d: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    c: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    kind = "scale"

    def forward(self, ops: Any, args: list[Any]) -> Any:
        d, c = converted(self, ops, ("d", "c"))
        return d * args[0] + c


@dataclass
class Gather(Operator):
    """An index map: output position i holds input position ``perm[i]`` (Flatten, Reshape, Transpose, ...)."""

    perm: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    kind = "gather"

    def forward(self, ops: Any, args: list[Any]) -> Any:
        return args[0][self.perm]


@dataclass
class Concat(Operator):
    """The flat concatenation of several inputs along ``axis`` of their shapes (``parts``: each input's flat
    positions in the output)."""

    parts: list[np.ndarray] = field(default_factory=list, repr=False)

    kind = "concat"

    def forward(self, ops: Any, args: list[Any]) -> Any:
        out = np.empty(self.n_out, dtype=object)
        for pos, v in zip(self.parts, args):
            out[pos] = list(v)
        return like(args[0], out)


#: operators that are layers for rules (each explained by a rule; layers are numbered 1..L in graph order)
LAYER_KINDS = ("dense", "conv")


# ---------------------------------------------------------------------------------------------------- helpers
def like(template: Any, out: np.ndarray) -> Any:
    """``out`` (an object array) in the array type of ``template``: float64 for float arrays, the same ndarray
    subclass for terms (Z3Array keeps its comparisons)."""
    if isinstance(template, np.ndarray) and template.dtype != object:
        return out.astype(template.dtype)
    return out.view(type(template)) if isinstance(template, np.ndarray) and type(template) is not np.ndarray else out


def gather_rows(ops: Any, a: Any, idx: np.ndarray) -> Any:
    """``a[idx]`` with 0 where idx = -1 (the zero padding), as an (n_out, k) array of the ops' numbers."""
    safe = np.where(idx >= 0, idx, len(a))
    if isinstance(a, np.ndarray) and a.dtype != object:  # float64, int64 residues: stay vectorised
        return np.concatenate([a, np.zeros(1, dtype=a.dtype)])[safe]
    zero = ops.zero[()] if isinstance(ops.zero, np.ndarray) else ops.zero
    padded = np.empty(len(a) + 1, dtype=object)
    padded[:-1] = list(a)
    padded[-1] = zero
    return like(a, padded[safe])


def patch_matrix(node: Any, ops: Any, n_in: int) -> Any:
    r"""The patch weights of a conv or average pool in the numbers of ``ops`` as a sparse (n_out, n_in) CSR matrix
    :math:`S_{j,\,\mathrm{idx}_{jm}} = C_{jm}` (padding entries dropped; no dense unrolling), cached on the
    operator: float64 (the certified float pass) or int64 residues (:mod:`dtd_formal.graph.modular`), for
    which ``S @ a`` and ``S.T @ g`` give the same integers as the patch sums and :func:`scatter_dot`
    (scipy's int64 products accumulate in int64)."""
    def make() -> Any:
        from scipy.sparse import csr_matrix

        Wg, _ = node.arrays(ops)
        idx = node.idx
        valid = idx >= 0
        rows = np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)[valid]
        S = csr_matrix((np.asarray(Wg)[valid], (rows, idx[valid])), shape=(idx.shape[0], n_in))
        S.sum_duplicates()
        if S.nnz != int(valid.sum()):  # a patch reads each input once; anything else would change the sums
            raise ValueError(f"{node.name}: repeated input positions in a patch")
        return S

    return cached(node, (getattr(ops, "name", type(ops).__name__), "csr"), make)


def transposed_patch_matrix(node: Any, ops: Any, n_in: int) -> Any:
    """:func:`patch_matrix` transposed, (n_in, n_out), as its own CSR matrix (a transposed CSR product is slower),
    cached on the operator."""
    return cached(node, (getattr(ops, "name", type(ops).__name__), "csr-transposed"),
                  lambda: patch_matrix(node, ops, n_in).T.tocsr())


#: largest common denominator (bits) of a conv kernel or input for :meth:`Conv._integer_forward`
INTEGER_FORWARD_BITS = 4096


def _plain_exact(ops: Any, a: Any) -> bool:
    """Whether ``ops`` is the plain exact namespace (not a subclass such as the interval ops) and ``a`` a flat
    object array of its rationals."""
    return type(ops).__name__ == "ExactOps" and isinstance(a, np.ndarray) and a.dtype == object and a.ndim == 1


def is_residue_vector(ops: Any, a: Any) -> bool:
    """Whether ``a`` is a flat int64 array of residues of :class:`~dtd_formal.graph.modular.ModOps` (the sparse
    patch matrix path)."""
    return str(getattr(ops, "name", "")).startswith("mod-") and isinstance(a, np.ndarray) and a.dtype == np.int64 \
        and a.ndim == 1


def scatter_dot(ops: Any, C: Any, s: Any, idx: np.ndarray, n: int) -> Any:
    r"""The transposed patch product :math:`y_i = \sum_{(j, m):\ \mathrm{idx}_{jm} = i} C_{jm}\, s_j` (length n;
    padding entries idx = -1 dropped): a transposed convolution, a relevance redistribution, a backward pass.

    Exact rationals: the sum of each output position is taken over its own contributions' least common
    denominator (rows with :math:`s_j = 0` skipped; integer additions, one reduction per output; the lcm shared
    by outputs with the same contributing rows, :func:`_exact_scatter_dot`). A common
    denominator for the whole tensor was measured slower: the least common multiple of all :math:`s_j`'s
    denominators is far larger than any one output's, and reducing against it costs more than the local sums
    (BENCHMARKS.md, "operator graph"). float64 and int64 arrays use numpy's scatter.
    """
    C = np.asarray(C) if not isinstance(C, np.ndarray) else C
    s_arr = s if isinstance(s, np.ndarray) else np.asarray(s)
    if C.dtype != object and s_arr.dtype != object:
        prod = C * s_arr[:, None]
        flat = np.where(idx >= 0, idx, n).ravel()
        if prod.dtype == np.float64:
            return np.bincount(flat, weights=prod.ravel(), minlength=n + 1)[:n]
        out = np.zeros(n + 1, dtype=prod.dtype)
        np.add.at(out, flat, prod.ravel())
        return out[:n]
    if getattr(ops, "exact_results", False) and type(ops).__name__ == "ExactOps":
        return _exact_scatter_dot(ops, C, s_arr, idx, n)
    prod = C * s_arr[:, None]
    out = np.empty(n + 1, dtype=object)
    zero = ops.zero[()] if isinstance(ops.zero, np.ndarray) else ops.zero
    out[:] = [zero] * (n + 1)
    np.add.at(out, np.where(idx >= 0, idx, n).ravel(), np.asarray(prod, dtype=object).ravel())
    return like(prod, out[:n])


def _exact_scatter_dot(ops: Any, C: np.ndarray, s: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    r""":func:`scatter_dot` in exact rationals, one reduction per output position.

    For the output i with contributing rows :math:`J_i` (those with :math:`s_j = n_j/d_j \ne 0`):
    :math:`L = \mathrm{lcm}_{j \in J_i} d_j`, :math:`m_j = n_j L / d_j` (integers), and with
    :math:`D = \mathrm{lcm}_t \mathrm{den}(C_t)`,

    .. math:: y_i = \frac{\sum_t \mathrm{num}(C_t)\,(D/\mathrm{den}(C_t))\, m_{j_t}}{L D}.

    L and the :math:`m_j` depend on :math:`J_i` only, and a convolution's input positions that differ only in
    their channel share it, so they are computed once per distinct row set (the large integers: lcms and exact
    divisions of 30k-bit denominators on a convnet's input layer); the per-output work is small-by-large
    products and the final reduction. Rows with the same ``idx`` row (a convolution's output channels at one
    position) reach the same outputs, so the rows are first grouped by it (:func:`_row_groups`): each group's
    :math:`L_g = \mathrm{lcm}_{j \in g} d_j` and :math:`n_j L_g / d_j` once, and a row set's L is the lcm of its
    groups' :math:`L_g`, with :math:`m_j = (n_j L_g / d_j)(L / L_g)`: a few lcms per row set instead of one per
    row.
    """
    out = np.empty(n, dtype=object)
    out[:] = [ops.zero] * n
    rows = np.flatnonzero(np.asarray(s != 0, dtype=bool))
    if not len(rows):
        return out
    k = idx.shape[1]
    flat = idx[rows].ravel()
    order = np.argsort(flat, kind="stable")
    flat = flat[order]
    row_of = (order // k).tolist()  # position in `rows` of each sorted term
    coeffs = C[rows].ravel()[order].tolist()
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    ends = np.r_[starts[1:], len(flat)]
    values = s[rows].tolist()
    group_of, group_L, group_m = _row_groups(idx[rows], values)
    shared: dict[tuple[int, ...], tuple[Any, dict[int, Any]]] = {}
    for a, b in zip(starts.tolist(), ends.tolist()):
        if flat[a] < 0:  # the padding group (idx = -1) is dropped
            continue
        key = tuple(row_of[a:b])
        if key not in shared:
            shared[key] = _scaled_numerators(key, group_of, group_L, group_m)
        L, m = shared[key]
        out[flat[a]] = _coefficient_sum(ops, coeffs[a:b], [m[r] for r in key], L)
    return out


def _row_groups(idx_rows: np.ndarray, values: list[Any]) -> tuple[list[int], list[Any], list[Any]]:
    r"""Rows with equal ``idx`` rows grouped: (group of each row, :math:`L_g = \mathrm{lcm}_{j \in g} d_j` of each
    group, :math:`n_j L_g / d_j` of each row) for the rationals ``values`` :math:`= n_j / d_j`."""
    from ..exact import divide_exactly, integer_lcm

    _, inverse = np.unique(idx_rows, axis=0, return_inverse=True)
    group_of = inverse.ravel().tolist()
    members: dict[int, list[int]] = {}
    for r, g in enumerate(group_of):
        members.setdefault(g, []).append(r)
    group_L: list[Any] = [None] * len(members)
    for g, rs in members.items():
        group_L[g] = integer_lcm([values[r].denominator for r in rs])
    group_m = [v.numerator * divide_exactly(group_L[g], v.denominator) for v, g in zip(values, group_of)]
    return group_of, group_L, group_m


def _scaled_numerators(key: tuple[int, ...], group_of: list[int], group_L: list[Any], group_m: list[Any]
                       ) -> tuple[Any, dict[int, Any]]:
    r"""(L, {row: n L / d}) for the rows of ``key``: their least common denominator, the lcm of their groups'
    :math:`L_g`, and each numerator over it, :math:`(n L_g / d)(L / L_g)` (:func:`_row_groups`)."""
    from ..exact import divide_exactly, integer_lcm

    groups = sorted({group_of[r] for r in key})
    L = integer_lcm([group_L[g] for g in groups])
    factor = {g: divide_exactly(L, group_L[g]) for g in groups}
    return L, {r: group_m[r] * factor[group_of[r]] for r in key}


def _coefficient_sum(ops: Any, coeffs: list[Any], scaled: list[Any], L: Any) -> Any:
    r""":math:`\sum_t c_t m_t / L` exactly (integers :math:`m_t`, rationals :math:`c_t` with small denominators),
    reduced once."""
    from ..exact import divide_exactly, integer_lcm

    dens = [c.denominator for c in coeffs]
    D = integer_lcm(dens)
    total = sum(c.numerator * divide_exactly(D, d) * m for c, d, m in zip(coeffs, dens, scaled) if c)
    return ops.rational(total, L * D)


def cached(op: Any, key: Any, make: Any) -> Any:
    """``make()`` computed once per operator and ``key`` (the ops namespace's name and what is made) and kept on
    the operator: the arrays of an operator in the numbers of one namespace, its sparse matrices."""
    cache = op.__dict__.setdefault("converted", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def converted(op: Operator, ops: Any, names: Sequence[str]) -> tuple[Any, ...]:
    """The exact arrays ``names`` of ``op`` in the numbers of ``ops`` (Fractions stay; gmpy2, float64, Z3 are
    converted once and cached on the operator)."""
    return cached(op, getattr(ops, "name", type(ops).__name__), lambda: tuple(
        None if getattr(op, n) is None else _convert(ops, getattr(op, n)) for n in names))


def _convert(ops: Any, arr: np.ndarray) -> Any:
    name = getattr(ops, "name", "")
    if name == "exact":
        return arr
    if name.startswith("exact-"):
        from ..exact import to_fast

        return to_fast(arr)
    if name == "float64":
        from ..exact import to_float

        return to_float(arr)
    if hasattr(ops, "lift"):
        return ops.lift(arr)
    return ops.const(arr)


__all__ = ["Operator", "Input", "Dense", "Conv", "Relu", "MaxPool", "AvgPool", "Add", "Scale", "Gather", "Concat",
           "LAYER_KINDS", "window_patches", "gather_rows", "scatter_dot", "patch_matrix",
           "transposed_patch_matrix", "cached", "like", "size"]

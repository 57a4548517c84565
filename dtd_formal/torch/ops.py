r"""The rule ``ops`` namespace over torch tensors, dense and structured, and the layer operators.

Two implementations of the namespace of :mod:`dtd_formal.rules.ops` run the catalogue's rule bodies unchanged:

- :class:`TorchOps`: dense tensors, mirroring :class:`~dtd_formal.rules.ops.ExactOps` operation by operation
  (a (n_in,), W (n_out, n_in), b (n_out,), R (n_out,)). It materialises the (n_out, n_in) contribution matrices,
  so it serves small Linear layers and the tests (it is "the rule body as written").
- :class:`LazyOps`: the same namespace for a layer :math:`z = \mathcal{L}(a; W) + b` given only as an operator
  (Linear or Conv), without ever forming a matrix. A rule's contributions :math:`C = W \odot V(a)` are built from
  masks and elementwise functions of W and a, so every matrix a rule body forms is *separable*,

  .. math::  C_{ji} = \sum_k c_k\, f_k(W)_{ji}\, g_k(a)_i ,

  and the only things a body does with such a matrix are ``sum(C, axis=1)`` and ``matmul(transpose(C), s)``:

  .. math::  \sum_i C_{ji} = \sum_k c_k\, \mathcal{L}(g_k(a); f_k(W))_j, \qquad
             (C^\top s)_i = \sum_k c_k\, g_k(a)_i\, (\mathcal{L}^\top(s; f_k(W)))_i ,

  i.e. one modified forward (convolution with modified weights on a modified input) and one modified transposed
  operator per term: the modified-gradient form of the rule, derived from the rule's own body. Values are typed
  wrappers (input-space, output-space, weight-shaped, bias-shaped, separable matrix) so that broadcasting means
  what it means in the dense body.

``LazyOps`` also keeps the layer's bias-free forward output: a term that is exactly the layer itself (the original
weight on the original input) is read from it instead of being recomputed, so LRP-epsilon costs one
transposed operator per layer, like the gradient. Its values carry what is known of their sign (from ``pos``,
``neg``, masks and products), and a row sum stays symbolic (:class:`SumOut`) until read, so that an added bias and
the stabiliser of a sum known to be >= 0 fold into the bias of the one modified convolution.

Conventions as in the exact engine: ``stabilise`` uses sign(0) = +1, ``safe_divide`` gives 0 where the denominator
is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UnsupportedLayerError


# ---------------------------------------------------------------------------------------------------- dense
class TorchOps:
    """Dense torch backend of the rule namespace (one sample: a 1-D, W 2-D), bound to a dtype and device."""

    def __init__(self, dtype: torch.dtype = torch.float64, device: Any = "cpu") -> None:
        self.dtype, self.device = dtype, torch.device(device)
        self.name = f"torch-{str(dtype).replace('torch.', '')}"
        self.zero = 0.0
        self.one = 1.0

    def const(self, value: Any) -> Any:
        if isinstance(value, (np.ndarray, list, tuple, torch.Tensor)):
            return _as_float_tensor(value, self.dtype, self.device)
        return float(value)

    def positive_mask(self, w: Any) -> torch.Tensor:
        return (w > 0).to(w.dtype)

    def negative_mask(self, w: Any) -> torch.Tensor:
        return (w < 0).to(w.dtype)

    @staticmethod
    def pos(w: Any) -> torch.Tensor:
        return w.clamp(min=0)

    @staticmethod
    def neg(w: Any) -> torch.Tensor:
        return w.clamp(max=0)

    @staticmethod
    def where(cond: Any, x: Any, y: Any) -> torch.Tensor:
        ref = x if isinstance(x, torch.Tensor) else y
        return torch.where(cond, torch.as_tensor(x, dtype=ref.dtype, device=ref.device),
                           torch.as_tensor(y, dtype=ref.dtype, device=ref.device))

    @staticmethod
    def matmul(A: Any, B: Any) -> torch.Tensor:
        return A @ B

    def sum(self, x: Any, axis: int | None = None) -> Any:
        return x.sum() if axis is None else x.sum(dim=axis)

    @staticmethod
    def transpose(A: Any) -> torch.Tensor:
        return A.T

    @staticmethod
    def ones_like(x: Any) -> torch.Tensor:
        return torch.ones_like(x)

    @staticmethod
    def zeros_like(x: Any) -> torch.Tensor:
        return torch.zeros_like(x)

    @staticmethod
    def stabilise(z: Any, eps: Any) -> torch.Tensor:
        return stabilise(z, eps)

    @staticmethod
    def safe_divide(n: Any, d: Any) -> torch.Tensor:
        return safe_divide(n, d)

    @staticmethod
    def is_zero(x: Any) -> torch.Tensor:
        return x == 0


def safe_divide(n: torch.Tensor, d: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """n / d where d != 0, else 0 (broadcasting); written into ``out`` when given."""
    q = torch.div(n, d, out=out) if out is not None else n / d  # inf/nan where d == 0, replaced below
    return q.masked_fill_(d == 0, 0.0)


def stabilise(z: torch.Tensor, eps: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """z + eps * sign0(z), sign0(0) = +1 (zennit's stabiliser), in z's dtype (eps is not rounded to float32);
    written into ``out`` (z's shape) when given."""
    e = torch.as_tensor(float(eps), dtype=z.dtype, device=z.device)
    if out is None:
        return torch.where(z >= 0, e, -e).add_(z)
    return torch.where(z >= 0, e, -e, out=out).add_(z)


def _as_float_tensor(value: Any, dtype: torch.dtype, device: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(dtype=dtype, device=device)
    arr = np.asarray(value, dtype=object)
    flat = [float(v) for v in arr.ravel()]
    return torch.tensor(flat, dtype=dtype, device=device).reshape(arr.shape)


# ---------------------------------------------------------------------------------------------------- layer operators
class LayerOp:
    r"""A linear operator :math:`\mathcal{L}(a; W)` (no bias) with its transpose :math:`\mathcal{L}^\top(s; W)`."""

    kind: str = "linear"

    def forward(self, a: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        r""":math:`\mathcal{L}(a; W)` (+ b when given)."""
        raise NotImplementedError

    def transpose(self, s: torch.Tensor, W: torch.Tensor, in_shape: torch.Size) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def bias_view(self, b: torch.Tensor) -> torch.Tensor:
        """The bias shaped to broadcast against a batch of outputs."""
        return b


class LinearOp(LayerOp):
    """``F.linear``: a (B, ..., n_in) -> (B, ..., n_out)."""

    kind = "linear"

    def forward(self, a: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        return F.linear(a, W, b)

    def transpose(self, s: torch.Tensor, W: torch.Tensor, in_shape: torch.Size) -> torch.Tensor:
        return s @ W


@dataclass
class ConvOp(LayerOp):
    """``F.conv1d`` / ``F.conv2d`` with integer stride, padding (zeros), dilation and groups."""

    dim: int
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    kind: str = "conv"

    @classmethod
    def from_module(cls, name: str, m: torch.nn.Module) -> ConvOp:
        dim = 1 if isinstance(m, torch.nn.Conv1d) else 2
        if m.padding_mode != "zeros":
            raise UnsupportedLayerError(f"module {name!r} ({type(m).__name__}): padding_mode={m.padding_mode!r} is not supported")
        padding = m.padding
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0,) * dim
            else:  # "same" (stride 1): symmetric only
                total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
                if any(t % 2 for t in total):
                    raise UnsupportedLayerError(f"module {name!r}: padding='same' with asymmetric padding is not supported")
                padding = tuple(t // 2 for t in total)
        return cls(dim, tuple(m.stride), tuple(padding), tuple(m.dilation), int(m.groups))

    def forward(self, a: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        conv = F.conv1d if self.dim == 1 else F.conv2d
        return conv(a, W, b, self.stride, self.padding, self.dilation, self.groups)

    def transpose(self, s: torch.Tensor, W: torch.Tensor, in_shape: torch.Size) -> torch.Tensor:
        # the input gradient of the convolution. torch.nn.grad.conv2d_input passes a broadcast (stride-0) input,
        # which the CPU kernel first copies into a full contiguous tensor; an uninitialised contiguous one of the
        # input's shape is never read (only the input gradient is asked for) and costs no pass over memory
        fmt = torch.channels_last if s.dim() == 4 and s.is_contiguous(memory_format=torch.channels_last) else None
        unread_input = torch.empty(tuple(in_shape), dtype=s.dtype, device=s.device,
                                   memory_format=fmt or torch.contiguous_format)
        return torch.ops.aten.convolution_backward(
            s, unread_input, W, None, self.stride, self.padding, self.dilation, False, (0,) * self.dim,
            self.groups, (True, False, False))[0]

    def bias_view(self, b: torch.Tensor) -> torch.Tensor:
        return b.reshape((-1,) + (1,) * self.dim)


# ---------------------------------------------------------------------------------------------------- scratch memory
class ScratchPool:
    """Output-space temporaries of one layer's backward step, reused by later steps of the same shape.

    A fresh CPU tensor costs a page fault per 4 KiB page on first touch (on VGG16 more time than the arithmetic of
    the elementwise steps, see BENCHMARKS.md); the stabilised normaliser and the quotient :math:`s = R / n` of
    every layer are written into tensors of this pool instead. ``take(like)`` hands out a free tensor with like's
    shape, layout, dtype and device (allocating one when none is free); ``release()`` makes everything handed out
    free again: the caller (:func:`dtd_formal.torch.lrp.redistribute_layer`) calls it when the layer's rule has
    returned, after checking that its result shares no memory with the pool. The pool lives as long as one
    :func:`~dtd_formal.torch.lrp.modified_gradients` block.
    """

    def __init__(self) -> None:
        self._free: dict[tuple[Any, ...], list[torch.Tensor]] = {}
        self._taken: list[tuple[tuple[Any, ...], torch.Tensor]] = []

    def take(self, like: torch.Tensor) -> torch.Tensor:
        """A tensor of like's shape, dtype and device, in channels_last if like is, else contiguous."""
        cl = like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last)
        fmt = torch.channels_last if cl else torch.contiguous_format
        key = (tuple(like.shape), fmt, like.dtype, like.device)
        free = self._free.get(key)
        t = free.pop() if free else torch.empty(like.shape, dtype=like.dtype, device=like.device, memory_format=fmt)
        self._taken.append((key, t))
        return t

    def holds(self, t: torch.Tensor) -> bool:
        """Whether t shares memory with a tensor handed out since the last release."""
        ptr = t.untyped_storage().data_ptr()
        return any(b.untyped_storage().data_ptr() == ptr for _, b in self._taken)

    def release(self) -> None:
        for key, t in self._taken:
            self._free.setdefault(key, []).append(t)
        self._taken.clear()


class CrossRowOperation(Exception):
    """Raised by a row-block :class:`LazyOps` when a rule body mixes output neurons (see ``row_block``)."""


# ---------------------------------------------------------------------------------------------------- lazy values
class _Val:
    """A typed value of :class:`LazyOps`; arithmetic dispatches on the kinds of both operands.

    ``sign`` is what is known of the signs of all entries: +1 all >= 0, -1 all <= 0, 0 unknown (derived
    symbolically from ``pos``/``neg``/masks and products, never by looking at the values).
    """

    kind = "?"
    ops: LazyOps
    sign: int = 0

    def __add__(self, other: Any) -> Any:
        return self.ops._binary("add", self, other)

    def __radd__(self, other: Any) -> Any:
        return self.ops._binary("add", other, self)

    def __sub__(self, other: Any) -> Any:
        return self.ops._binary("add", self, self.ops._binary("mul", -1.0, other))

    def __rsub__(self, other: Any) -> Any:
        return self.ops._binary("add", other, self.ops._binary("mul", -1.0, self))

    def __mul__(self, other: Any) -> Any:
        return self.ops._binary("mul", self, other)

    def __rmul__(self, other: Any) -> Any:
        return self.ops._binary("mul", other, self)

    def __neg__(self) -> Any:
        return self.ops._binary("mul", -1.0, self)

    def __truediv__(self, other: Any) -> Any:
        return self.ops.safe_divide(self, other) if isinstance(other, _Val) else self.ops._binary("mul", self, 1.0 / other)

    def _cmp(self, fn: Callable[[Any, Any], Any], other: Any) -> Any:
        if not isinstance(self, _Tensorish):
            raise TypeError(f"comparison of a {self.kind} value")
        o = other.t if isinstance(other, _Tensorish) else other
        return _kind_of(self)(self.ops, fn(self.t, o))

    def __gt__(self, other: Any) -> Any:
        return self._cmp(lambda x, y: x > y, other)

    def __lt__(self, other: Any) -> Any:
        return self._cmp(lambda x, y: x < y, other)

    def __ge__(self, other: Any) -> Any:
        return self._cmp(lambda x, y: x >= y, other)

    def __le__(self, other: Any) -> Any:
        return self._cmp(lambda x, y: x <= y, other)


class _Tensorish(_Val):
    def __init__(self, ops: LazyOps, t: Any, tag: str | None = None, sign: int = 0) -> None:
        self.ops, self.t, self.tag, self.sign = ops, t, tag, sign


class In(_Tensorish):
    """Input-space tensor (batch, *in_shape); tags: "a" the layer input, "0" zero, "1" ones."""

    kind = "in"


class Out(_Tensorish):
    """Output-space tensor (batch, *out_shape)."""

    kind = "out"


class SumOut(Out):
    r"""A row sum :math:`\sum_k c_k \mathcal{L}(g_k(a); f_k(W)) + c_0 (y - b) + \sum_m \beta_m + \delta`,
    evaluated on first use.

    Kept symbolic until read, so that a bias added to it (:math:`\beta`, e.g. zennit's :math:`b^+`) and the
    stabiliser of a sum known to be non-negative (:math:`\mathrm{stab}(z) = z + \epsilon` for :math:`z \ge 0`,
    the shift :math:`\delta`) fold into the bias argument of one modified convolution: zennit's z+ normaliser
    :math:`\mathrm{stab}(\mathcal{L}(a; W^+) + b^+)` costs one convolution and no elementwise pass. The
    unmodified term (original weight on the layer input, coefficient :math:`c_0`) is read from the forward output
    y; with :math:`c_0 = 1` and the layer's own bias added it is y itself.
    """

    def __init__(self, ops: LazyOps, terms: list[tuple[float, Par, In | None]], plain_coef: float = 0.0,
                 biases: tuple[Bias, ...] = (), shift: float = 0.0) -> None:
        self.ops, self._t, self.tag = ops, None, None
        self.terms, self.plain_coef, self.biases, self.shift = terms, plain_coef, biases, shift
        known_nonneg = (plain_coef == 0 and shift >= 0 and all(_term_sign(*term) > 0 for term in terms)
                        and all(b.sign > 0 for b in biases))
        self.sign = 1 if known_nonneg else 0

    def pending(self) -> bool:
        """Whether nothing has been computed yet (a bias or shift can still fold into the convolution)."""
        return self._t is None

    def plus_bias(self, b: Bias) -> SumOut:
        return SumOut(self.ops, self.terms, self.plain_coef, self.biases + (b,), self.shift)

    def shifted(self, delta: float) -> SumOut:
        return SumOut(self.ops, self.terms, self.plain_coef, self.biases, self.shift + delta)

    @property
    def t(self) -> Any:  # type: ignore[override]
        if self._t is None:
            self._t = self._evaluate()
        return self._t

    def _evaluate(self) -> torch.Tensor:
        ops = self.ops
        biases = list(self.biases)
        plain = None
        if self.plain_coef:
            own = next((b for b in biases if b.tag == "b"), None)
            if self.plain_coef == 1 and own is not None:  # (y - b) + b: the forward output itself
                biases.remove(own)
                plain = ops.y_t
            else:
                plain = ops.y_t - ops.op.bias_view(ops.b_t)
                if self.plain_coef != 1:
                    plain.mul_(self.plain_coef)
        bias_vec: torch.Tensor | None = None
        for b in biases:
            bias_vec = b.t if bias_vec is None else bias_vec + b.t
        if self.shift:
            bias_vec = ops.b_t.new_full(ops.b_t.shape, self.shift) if bias_vec is None else bias_vec + self.shift
        total: torch.Tensor | None = None
        for c, f, g in self.terms:
            fold = bias_vec if c == 1 else None  # the bias enters the first convolution with coefficient 1
            val = ops.op.forward(ops._in_tensor(g), f.t, fold)
            if fold is not None:
                bias_vec = None
            if c != 1:
                val.mul_(c)
            total = val if total is None else total.add_(val)
        if plain is not None:
            total = plain if total is None else total.add_(plain)  # plain may be y itself: never written to
        if total is None:
            out_shape = ops.y_t.shape if ops.y_t is not None else ops.op.forward(ops.a_t, ops.W_t).shape
            total = torch.zeros(out_shape, dtype=ops.a_t.dtype, device=ops.a_t.device)
        if bias_vec is not None:
            total = total + ops.op.bias_view(bias_vec)
        return total


def _term_sign(c: float, f: Par, g: In | None) -> int:
    r"""The known sign of a separable term :math:`c\, f(W) \odot g(a)` (0 unknown)."""
    return (1 if c > 0 else -1 if c < 0 else 1) * f.sign * (1 if g is None else g.sign)


class Par(_Tensorish):
    """Weight-shaped tensor (an elementwise function of W), computed on first use; tags: "W" the weight, "1" ones.

    Lazy, so that a mask or ones matrix a rule body forms but never needs (``ones_like(W) * a``, the negative part
    when the input is non-negative) is never allocated.
    """

    kind = "par"

    def __init__(self, ops: LazyOps, t: Any, tag: str | None = None, thunk: Callable[[], torch.Tensor] | None = None,
                 sign: int = 0) -> None:
        self.ops, self._t, self.tag, self._thunk, self.sign = ops, t, tag, thunk, sign

    @property
    def t(self) -> Any:  # type: ignore[override]
        if self._t is None and self._thunk is not None:
            self._t, self._thunk = self._thunk(), None
        return self._t


class Bias(_Tensorish):
    """Bias-shaped tensor (n_out,)."""

    kind = "bias"


def _kind_of(v: Any) -> type:
    """The plain class of a value's kind (a SumOut's results are ordinary Out values)."""
    return Out if isinstance(v, Out) else type(v)


class Sep(_Val):
    r"""A separable (n_out, n_in) matrix :math:`\sum_k c_k f_k(W) \odot g_k(a)`; terms (c_k, Par, In or None)."""

    kind = "sep"

    def __init__(self, ops: LazyOps, terms: list[tuple[float, Par, In | None]]) -> None:
        self.ops, self.terms = ops, terms


class _SepT(_Val):
    kind = "sepT"

    def __init__(self, ops: LazyOps, sep: Sep) -> None:
        self.ops, self.sep = ops, sep


# ---------------------------------------------------------------------------------------------------- lazy ops
class LazyOps:
    r"""The rule namespace for one layer :math:`z = \mathcal{L}(a; W) + b`, a whole batch at once.

    Parameters
    ----------
    op : LayerOp
        The layer's operator.
    a : Tensor
        The layer input (batch, *in_shape).
    W, b : Tensor
        The layer's weight and bias (bias zeros if the layer has none).
    y : Tensor, optional
        The layer's output :math:`\mathcal{L}(a; W) + b` from the forward pass: the unmodified term reads it
        (:math:`y - b`, or y itself where the body adds the layer's own bias back) instead of recomputing it.
    nonneg : bool, optional
        Whether a >= 0 is known (from the graph: a ReLU output); checked on the tensor when not given.
    pool : ScratchPool, optional
        Where the stabilised normaliser and quotients are written (fresh tensors when not given).
    row_block : bool
        W, b (and y) are a block of the layer's rows: an operation over all output neurons at once
        (``sum(axis=None)``) raises :class:`CrossRowOperation`, so that the caller can evaluate unblocked.

    Attributes ``a``, ``W``, ``b`` are the wrapped values to pass to a rule body; ``out(R)`` wraps an
    output-space tensor; the result of ``redistribute`` is an :class:`In` value (``.t``).
    """

    name = "torch-lazy"
    zero = 0.0
    one = 1.0

    def __init__(self, op: LayerOp, a: torch.Tensor, W: torch.Tensor, b: torch.Tensor, y: torch.Tensor | None = None,
                 nonneg: bool | None = None, pool: ScratchPool | None = None, row_block: bool = False) -> None:
        self.op, self.pool, self.row_block = op, pool, row_block
        self.a_t, self.W_t, self.b_t, self.y_t = a, W, b, y
        self.a = In(self, a, "a", sign=1 if nonneg else 0)
        self.W = Par(self, W, "W")
        self.b = Bias(self, b, "b")
        self._nonneg: bool | None = nonneg
        self._par_cache: dict[tuple[str, int], Par] = {}
        self.used_plain_term = False  #: whether a body asked for the unmodified term (see uses_plain_term)

    def out(self, t: torch.Tensor) -> Out:
        return Out(self, t)

    def release(self) -> None:
        """Drop every tensor this namespace holds. Its values point back to it (a reference cycle, which Python
        frees only at its next cyclic collection): without this, each layer's temporaries would outlive the
        backward step that made them (measured on VGG16: peak memory growing from call to call)."""
        self.a = self.W = self.b = None  # type: ignore[assignment]
        self._par_cache.clear()
        self.a_t = self.W_t = self.b_t = self.y_t = None  # type: ignore[assignment]
        self.pool = None

    def _zero_in(self) -> In:
        return In(self, torch.zeros((), dtype=self.a_t.dtype, device=self.a_t.device), "0", sign=1)

    # ------------------------------------------------------------------ helpers
    def _input_nonnegative(self) -> bool:
        if self._nonneg is None:
            self._nonneg = bool((self.a_t >= 0).all())
        return self._nonneg

    def _to_sep(self, x: Any) -> Sep:
        if isinstance(x, Sep):
            return x
        if isinstance(x, Par):
            return Sep(self, [(1.0, x, None)])
        raise TypeError(f"expected a matrix, got a {getattr(x, 'kind', type(x).__name__)} value")

    def _bias_out(self, b: Bias) -> torch.Tensor:
        return self.op.bias_view(b.t)

    def _in_tensor(self, g: In | None) -> torch.Tensor:
        return torch.ones_like(self.a_t) if g is None else torch.broadcast_to(g.t, self.a_t.shape)

    def _binary(self, what: str, x: Any, y: Any) -> Any:
        kx, ky = getattr(x, "kind", "scalar"), getattr(y, "kind", "scalar")
        if what == "mul":
            if kx == "scalar" and ky == "scalar":
                return x * y
            if ky == "scalar":
                x, y, kx, ky = y, x, ky, kx
            if kx == "scalar":  # scalar * value
                if ky == "sep":
                    return Sep(self, [(x * c, f, g) for c, f, g in y.terms])
                if x == 1:
                    return y
                sign = _scalar_sign(x) * y.sign
                if isinstance(y, Par):
                    return Par(self, None, None, lambda: x * y.t, sign=sign)
                return _kind_of(y)(self, x * y.t, sign=sign)
            if kx == ky and kx in ("in", "out", "par", "bias"):
                if kx == "in" and "0" in (x.tag, y.tag):
                    return self._zero_in()
                if kx == "par" and x.tag == "1":
                    return y
                if kx == "par" and y.tag == "1":
                    return x
                if kx == "in" and x.tag == "1":
                    return y
                if kx == "in" and y.tag == "1":
                    return x
                if kx == "par":
                    return Par(self, None, None, lambda: x.t * y.t, sign=x.sign * y.sign)
                return _kind_of(x)(self, x.t * y.t, sign=x.sign * y.sign)
            if {kx, ky} == {"in", "par"}:
                f, g = (x, y) if kx == "par" else (y, x)
                return Sep(self, [] if g.tag == "0" else [(1.0, f, None if g.tag == "1" else g)])
            if "sep" in (kx, ky) and {kx, ky} <= {"sep", "in", "par"}:
                s, o = (x, y) if kx == "sep" else (y, x)
                if isinstance(o, Sep):
                    raise TypeError("product of two matrices is not elementwise-separable here")
                terms = []
                for c, f, g in s.terms:
                    if isinstance(o, Par):
                        terms.append((c, self._binary("mul", f, o), g))
                    else:
                        if o.tag == "0":
                            continue
                        terms.append((c, f, o if g is None else self._binary("mul", g, o)))
                return Sep(self, terms)
            if {kx, ky} == {"out", "bias"}:
                o, b = (x, y) if kx == "out" else (y, x)
                return Out(self, o.t * self._bias_out(b), sign=o.sign * b.sign)
        else:  # add
            if kx == "scalar" and ky == "scalar":
                return x + y
            if ky == "scalar":
                x, y, kx, ky = y, x, ky, kx
            if kx == "scalar":
                if ky == "sep":
                    raise TypeError("a scalar plus a matrix is not separable")
                if x == 0:
                    return y
                sign = _sum_sign(_scalar_sign(x), y.sign)
                if isinstance(y, Par):
                    return Par(self, None, None, lambda: y.t + x, sign=sign)
                return _kind_of(y)(self, y.t + x, sign=sign)
            if kx == ky and kx in ("in", "out", "par", "bias"):
                if kx == "in" and x.tag == "0":
                    return y
                if kx == "in" and y.tag == "0":
                    return x
                sign = _sum_sign(x.sign, y.sign)
                if kx == "par":
                    return Par(self, None, None, lambda: x.t + y.t, sign=sign)
                return _kind_of(x)(self, x.t + y.t, sign=sign)
            if {kx, ky} == {"out", "bias"}:
                o, b = (x, y) if kx == "out" else (y, x)
                if isinstance(o, SumOut) and o.pending():
                    return o.plus_bias(b)  # folds into the convolution's bias (SumOut)
                return Out(self, o.t + self._bias_out(b), sign=_sum_sign(o.sign, b.sign))
            if {kx, ky} <= {"sep", "par"}:
                return Sep(self, self._to_sep(x).terms + self._to_sep(y).terms)
        raise TypeError(f"LazyOps: cannot {what} a {kx} and a {ky} value")

    def _apply(self, x: Any, fn: Callable[[torch.Tensor], torch.Tensor], tag_rule: Callable[[Any], str | None] | None = None,
               key: str | None = None, sign: int = 0) -> Any:
        """fn(x) elementwise; ``sign`` is the known sign of every result entry (0 unknown)."""
        if isinstance(x, Par):
            ck = (key, id(x)) if key else None
            if ck is not None and ck in self._par_cache:
                return self._par_cache[ck]
            res = Par(self, None, None, lambda: fn(x.t), sign=sign)
            if ck is not None:
                self._par_cache[ck] = res
            return res
        if isinstance(x, _Tensorish):
            tag = tag_rule(x) if tag_rule else None
            if tag == "same":
                return x
            return _kind_of(x)(self, fn(x.t), tag, sign=sign)
        if isinstance(x, (int, float)):
            return float(fn(torch.tensor(float(x))).item())
        raise TypeError(f"LazyOps: elementwise function of a {getattr(x, 'kind', type(x).__name__)} value")

    # ------------------------------------------------------------------ the namespace
    def const(self, value: Any) -> Any:
        if isinstance(value, (np.ndarray, list, tuple, torch.Tensor)):
            t = _as_float_tensor(value, self.a_t.dtype, self.a_t.device)
            return In(self, t)  # a per-input parameter (ZBox bounds): broadcasts against a sample
        return float(value)

    def positive_mask(self, w: Any) -> Any:
        return self._apply(w, lambda t: (t > 0).to(t.dtype), key="positive_mask", sign=1)

    def negative_mask(self, w: Any) -> Any:
        return self._apply(w, lambda t: (t < 0).to(t.dtype), key="negative_mask", sign=1)

    def pos(self, w: Any) -> Any:
        def tag(x: Any) -> str | None:
            if isinstance(x, In) and x.tag == "a" and self._input_nonnegative():
                x.sign = 1
                return "same"
            return None

        return self._apply(w, lambda t: t.clamp(min=0), tag, key="pos", sign=1)

    def neg(self, w: Any) -> Any:
        if isinstance(w, In) and w.tag == "a" and self._input_nonnegative():
            return self._zero_in()
        return self._apply(w, lambda t: t.clamp(max=0), key="neg", sign=-1)

    def where(self, cond: Any, x: Any, y: Any) -> Any:
        ref = cond
        tx = x.t if isinstance(x, _Tensorish) else x
        ty = y.t if isinstance(y, _Tensorish) else y
        dtype = self.a_t.dtype
        tx = torch.as_tensor(tx, dtype=dtype, device=self.a_t.device)
        ty = torch.as_tensor(ty, dtype=dtype, device=self.a_t.device)
        return _kind_of(ref)(self, torch.where(cond.t, tx, ty))

    def matmul(self, A: Any, B: Any) -> Any:
        if isinstance(A, _SepT) and isinstance(B, Out):
            return self._transpose_apply(A.sep, B.t)
        if isinstance(A, (Par, Sep)) and isinstance(B, In):
            return self._forward_sum_out(self._binary("mul", A, B))
        raise TypeError(f"LazyOps.matmul of {getattr(A, 'kind', '?')} and {getattr(B, 'kind', '?')}")

    def sum(self, x: Any, axis: int | None = None) -> Any:
        if axis == 1 and isinstance(x, (Sep, Par)):
            return self._forward_sum_out(x)
        if axis is None and isinstance(x, _Tensorish):
            if self.row_block:
                raise CrossRowOperation("sum over all entries")
            return x.t.sum()
        raise TypeError(f"LazyOps.sum(axis={axis}) of a {getattr(x, 'kind', '?')} value")

    def transpose(self, A: Any) -> Any:
        return _SepT(self, self._to_sep(A))

    def ones_like(self, x: Any) -> Any:
        if isinstance(x, Par):
            return Par(self, None, "1", lambda: torch.ones_like(x.t), sign=1)
        return _kind_of(x)(self, torch.ones_like(x.t), "1", sign=1)

    def zeros_like(self, x: Any) -> Any:
        if isinstance(x, Par):
            return Par(self, None, "0", lambda: torch.zeros_like(x.t), sign=1)
        return _kind_of(x)(self, torch.zeros_like(x.t), "0", sign=1)

    def stabilise(self, z: Any, eps: Any) -> Any:
        r""":math:`z + \epsilon\, \mathrm{sign}_0(z)`; for z known to be >= 0 that is :math:`z + \epsilon` (folded
        into the convolution's bias when z is a pending :class:`SumOut`)."""
        e = float(eps)
        if e > 0 and z.sign > 0:
            if isinstance(z, SumOut) and z.pending():
                out = z.shifted(e)
            else:
                out = Out(self, torch.add(z.t, e, out=self._scratch(z.t)), sign=1)
        else:
            out = Out(self, stabilise(z.t, e, out=self._scratch(z.t)))
        out.tag = "nonzero" if e > 0 else None  # |stab(z)| >= eps: never 0, also after rounding
        return out

    def safe_divide(self, n: Any, d: Any) -> Any:
        nt, dt = n.t, d.t
        out = self._scratch(dt) if nt.shape == dt.shape and nt.dtype == dt.dtype else None
        if getattr(d, "tag", None) == "nonzero":
            return Out(self, torch.div(nt, dt, out=out) if out is not None else nt / dt)
        return Out(self, safe_divide(nt, dt, out=out))

    def _scratch(self, like: torch.Tensor) -> torch.Tensor:
        return self.pool.take(like) if self.pool is not None else torch.empty_like(like)

    def is_zero(self, x: Any) -> Any:
        return x.t == 0

    # ------------------------------------------------------------------ the two matrix actions
    def _forward_sum_out(self, x: Any) -> SumOut:
        r""":math:`\sum_i C_{ji}` for a batch: :math:`\sum_k c_k \mathcal{L}(g_k(a); f_k(W))` (a lazy
        :class:`SumOut`; the term that is the layer itself is read from the forward output)."""
        terms, plain_coef = [], 0.0
        for c, f, g in self._to_sep(x).terms:
            if f.tag == "W" and g is not None and g.tag == "a":
                self.used_plain_term = True
                if self.y_t is not None:  # the layer itself: reuse the forward pass
                    plain_coef += c
                    continue
            terms.append((c, f, g))
        return SumOut(self, terms, plain_coef)

    def _transpose_apply(self, sep: Sep, s: torch.Tensor) -> In:
        r""":math:`(C^\top s)_i = \sum_k c_k\, g_k(a)_i\, \mathcal{L}^\top(s; f_k(W))_i`."""
        total: torch.Tensor | None = None
        for c, f, g in sep.terms:
            val = self.op.transpose(s, f.t, self.a_t.shape)
            if g is not None:
                val.mul_(g.t)
            if c != 1:
                val.mul_(c)
            total = val if total is None else total.add_(val)
        return In(self, torch.zeros_like(self.a_t) if total is None else total)

    def rows(self, sep: Any, onehots: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
        r"""Rows of a separable matrix: for each (one-hot output selector e, sample i), :math:`e^\top C(a_i)`.

        ``onehots`` has shape (N, *out_shape); ``samples`` (N,) picks the batch row of a for each.
        """
        sep = self._to_sep(sep)
        in_shape = (onehots.shape[0],) + tuple(self.a_t.shape[1:])
        total = torch.zeros(in_shape, dtype=self.a_t.dtype, device=self.a_t.device)
        for c, f, g in sep.terms:
            val = self.op.transpose(onehots, f.t, torch.Size(in_shape))
            if g is not None:
                gt = g.t if g.t.shape[0] != self.a_t.shape[0] or g.t.dim() != self.a_t.dim() else g.t[samples]
                val = val * gt
            total = total + (val if c == 1 else c * val)
        return total


def _scalar_sign(x: float) -> int:
    return -1 if x < 0 else 1


def _sum_sign(s1: int, s2: int) -> int:
    """The known sign of a sum: that of both terms when they agree, else unknown."""
    return s1 if s1 == s2 else 0


def uses_plain_term(rule: Any) -> bool:
    """Whether ``rule.redistribute`` needs the layer's own bias-free output (then the forward pass keeps it).

    Decided once per rule by running its body on a 2x2 probe layer with a non-negative input (the case of hidden
    layers; a layer with negative inputs only ever needs more terms, never the plain one less).
    """
    key = (type(rule), repr(rule))
    hit = _PLAIN_TERM_CACHE.get(key)
    if hit is None:
        a = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
        W = torch.tensor([[1.0, -2.0], [-0.5, 3.0]], dtype=torch.float64)
        b = torch.tensor([0.5, -0.25], dtype=torch.float64)
        ops = LazyOps(LinearOp(), a, W, b, None)
        rule.redistribute(ops, ops.a, ops.W, ops.b, ops.out(torch.ones(1, 2, dtype=torch.float64)))
        hit = _PLAIN_TERM_CACHE[key] = ops.used_plain_term
    return hit


_PLAIN_TERM_CACHE: dict[Any, bool] = {}


__all__ = ["ConvOp", "CrossRowOperation", "LayerOp", "LazyOps", "LinearOp", "ScratchPool", "TorchOps", "safe_divide",
           "stabilise", "uses_plain_term"]

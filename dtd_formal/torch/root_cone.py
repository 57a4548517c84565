r"""Region verdicts of torch roots by incremental evaluation: the upper network on the cone a root's change reaches.

:func:`dtd_formal.torch.root_regions` needs, for the root :math:`\tilde a = a - t_j v_j` of a neuron j of a Conv2d
layer l, the ReLU signs and max-pool winners of the upper network at :math:`\tilde a` and at the layer input a.
The change :math:`\delta_0 = \tilde a - a` is non-zero only on its support, read off the points themselves (for z+
and w² the receptive field of j; no rule is assumed: a dense change gives the whole map). Every later value is the
input's value plus a change that lives on the positions the change reaches, a spatial window per root (the *cone*):

.. math::  z(\tilde a) = z(a) + \Delta z, \qquad \Delta z = \mathcal{L}(\Delta x; W) \ \text{(no bias)}, \qquad
           \Delta r = \mathrm{relu}(z(a) + \Delta z) - \mathrm{relu}(z(a)),

and a max pool's change is :math:`\max(x(a) + \Delta x) - \max(x(a))` on the pooled windows the change meets.
A convolution or pool maps an input window :math:`[o, o + h)` (per axis; kernel k, stride s, padding p, dilation
d) to the output window :math:`[\lceil (o + p - d(k-1))/s \rceil, \lfloor (o + h - 1 + p)/s \rfloor]`, of size
:math:`\lfloor (h - 1 + d(k-1))/s \rfloor + 1` for every placement, shifted into the map; a window that grows to
the whole map stays a window (the whole map), so deep layers are evaluated exactly too, only without saving.
Stride-1 convolutions map the window onto its reach with the transposed-flipped kernel (h² k² products per
channel pair instead of (h + k - 1)² k²). A sum of two changes (a residual add) lives on the union of their
windows; average pools and shape operations see the whole change; Linear layers take it flat.

The cached activations of the input are the float64 values of the upper network at a: the model's own forward
values when it is float64 (then the input's signs are exactly the plain forward pass's), otherwise the upper
network evaluated once in float64 at the (float) layer input, which is also the base of the float64 fallback.
The changes are computed in float64, batched over roots; a Linear layer followed by a ReLU first in the model's
dtype, and again in float64 for the rows whose signs that leaves uncertain. (Convolutions in float32 were tried
and dropped: under the bound below they decided none of 32 VGG16 roots at conv layers 11 and 13.)

**Certified margins.** Every computed change carries :math:`\sigma`, a bound on the standard deviation of its
rounding error in the probabilistic model of rounding (each operation's relative error an independent, mean-zero
variable of modulus at most u; Higham and Mary 2019), the errors of different neurons treated as uncorrelated,
kept per (row, channel) as the largest over the window (per entry for flat values). An inner product of n terms
adds :math:`u\sqrt{2n}\,\lVert w\rVert_2 \lVert x\rVert_2` (at most 2n roundings, every partial sum at most
:math:`\lVert w\rVert_2\lVert x\rVert_2` by Cauchy-Schwarz, the norm over the window) and inherits
:math:`\lVert w\rVert_2 \max \sigma_x`; ReLUs and pools pass :math:`\sigma` on (they are 1-Lipschitz), adding
that of the input's value. A sign at the root is taken only where
:math:`|z(\tilde a)| > \lambda \sqrt{\sigma_{\Delta z}^2 + 2\sigma_{z(a)}^2}` (this computation's error and that of
a plain forward pass at the root, :math:`\lambda = 8`), a max-pool winner only where it beats every other entry
of its window by twice that, or all entries are ReLU zeros (an exact tie; inactive ReLUs give exact zeros). The
bound is a conservative estimate, not a proof: a worst-case bound grows by :math:`\sqrt{n}` per layer and, on
VGG16, exceeds the changes themselves after two layers in float32 and leaves FC-layer signs uncertain even in
float64.

**Affine maps.** The resolved patterns differ exactly where some sign or winner flips strictly. Such a row is
certified to leave the affine map of :math:`f_c` (the plain path's test
:math:`\lVert g_1 - g_2\rVert_\infty > \mathrm{tol}\max(\lVert g_1\rVert_\infty, \lVert g_2\rVert_\infty)`, g the
gradients w.r.t. a under the input's and the root's resolved patterns) when the input's resolved pattern has the
input's own gradient (:math:`g_1 = g_0`, computed once per input) and the pixel p of the support with the largest
change gives

.. math::  (1 - \epsilon) \max_c |g_{0,cp} - g_{2,cp}| > \frac{\mathrm{tol}}{1 - \mathrm{tol}} (1 + \epsilon)
           \lVert g_0 \rVert_\infty, \qquad \epsilon = 1/4:

since :math:`\lVert g_2\rVert_\infty \le \lVert g_0\rVert_\infty + \lVert g_0 - g_2\rVert_\infty`, this implies the
test whatever :math:`g_2` is elsewhere. :math:`g_{2,\cdot p}` is a backward pass over the cone of p only (through
a Linear layer: the input's gradient plus the product with the difference, sparse where few entries differ).
Rows this does not decide and rows with an uncertain sign or winner are returned undecided; the caller evaluates
them with the plain full forward pass in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from .graph import Handlers, LayerInfo, Plan, run
from .ops import ConvOp

LAMBDA = 8.0  #: standard deviations of the rounding-error model a certified margin must exceed
EPS_GRAD = 0.25  #: relative error allowed to the gradients of the affine-map certificate

NeuronId = Any


def neuron_id(flat: int, shape: tuple[int, ...]) -> NeuronId:
    """A neuron's id from its flat index: an int for a flat output, else the (channel, y, x) tuple."""
    if len(shape) == 1:
        return int(flat)
    return tuple(int(v) for v in np.unravel_index(int(flat), shape))


def _u(dtype: torch.dtype) -> float:
    """Unit roundoff of a floating-point dtype."""
    return torch.finfo(dtype).eps / 2


def _u_op(dtype: torch.dtype, device: torch.device) -> float:
    """Unit roundoff of a convolution or matrix product in ``dtype``: float32 products may run in TF32 on CUDA
    (2^-11) or in bfloat16 where ``torch.set_float32_matmul_precision`` allows it (2^-8)."""
    if dtype == torch.float32:
        if device.type == "cuda" and (torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32):
            return 2.0 ** -11
        if torch.get_float32_matmul_precision() != "highest":
            return 2.0 ** -8
    return _u(dtype)


# ---------------------------------------------------------------------------------------------------- windows
@dataclass(frozen=True)
class _Axis:
    """One spatial axis of a convolution or pool: kernel k, stride s, padding p, dilation d."""

    k: int
    s: int
    p: int
    d: int

    @property
    def span(self) -> int:
        return self.d * (self.k - 1) + 1

    def reach(self, o: torch.Tensor, h: int, n_out: int) -> tuple[torch.Tensor, int]:
        r"""Origins and size of the output window that input window :math:`[o, o + h)` reaches, clamped into
        :math:`[0, n_{out})`: every output reading an input of the window lies in it."""
        size = min((h - 1 + self.d * (self.k - 1)) // self.s + 1, n_out)
        first = -torch.div(-(o + self.p - self.d * (self.k - 1)), self.s, rounding_mode="floor")
        return first.clamp(min=0, max=n_out - size), size

    def patch(self, o: torch.Tensor, size: int) -> tuple[torch.Tensor, int]:
        """Origins and size of the input patch (padding coordinates included) read by outputs [o, o + size)."""
        return o * self.s - self.p, (size - 1) * self.s + self.span


def _pair(v: Any) -> tuple[int, int]:
    """A 2-d module parameter (an int or a pair) as a pair of ints."""
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _pool_axes(m: nn.MaxPool2d) -> tuple[_Axis, _Axis]:
    """The two axes of a MaxPool2d module."""
    k, p, d = _pair(m.kernel_size), _pair(m.padding), _pair(m.dilation)
    s = _pair(m.stride) if m.stride is not None else k
    return _Axis(k[0], s[0], p[0], d[0]), _Axis(k[1], s[1], p[1], d[1])


def _conv_axes(op: ConvOp, W: torch.Tensor) -> tuple[_Axis, _Axis]:
    return (_Axis(W.shape[2], op.stride[0], op.padding[0], op.dilation[0]),
            _Axis(W.shape[3], op.stride[1], op.padding[1], op.dilation[1]))


@dataclass
class _Win:
    """A per-row spatial window of a (N, C, H, W) value: rows [oy, oy + h), columns [ox, ox + w) of an H x W map."""

    oy: torch.Tensor
    ox: torch.Tensor
    h: int
    w: int
    H: int
    W: int

    @classmethod
    def full(cls, n: int, H: int, W: int, device: Any) -> _Win:
        z = torch.zeros(n, dtype=torch.long, device=device)
        return cls(z, z, H, W, H, W)

    def same(self, other: _Win) -> bool:
        return (self.h, self.w) == (other.h, other.w) and bool((self.oy == other.oy).all()) \
            and bool((self.ox == other.ox).all())

    def take(self, idx: torch.Tensor) -> _Win:
        return _Win(self.oy[idx], self.ox[idx], self.h, self.w, self.H, self.W)

    def union(self, other: _Win) -> _Win:
        """The smallest batch-uniform window of the same map holding both windows in every row (a residual sum's
        change lives on the union of its parts' windows; both are zero outside their own)."""
        y0, x0 = torch.minimum(self.oy, other.oy), torch.minimum(self.ox, other.ox)
        y1, x1 = torch.maximum(self.oy + self.h, other.oy + other.h), torch.maximum(self.ox + self.w, other.ox + other.w)
        h, w = min(int((y1 - y0).max()), self.H), min(int((x1 - x0).max()), self.W)
        return _Win(y0.clamp(max=self.H - h), x0.clamp(max=self.W - w), h, w, self.H, self.W)


def _crop(t: torch.Tensor, rows: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, h: int, w: int,
          fill: float = 0.0) -> torch.Tensor:
    """``t[rows[n], :, oy[n]:oy[n]+h, ox[n]:ox[n]+w]`` for every n, positions outside t's map set to ``fill``
    (channels last in memory: a gather of whole channel vectors)."""
    H, W = t.shape[-2:]
    iy = oy[:, None] + torch.arange(h, device=t.device)
    ix = ox[:, None] + torch.arange(w, device=t.device)
    out = t[rows[:, None, None], :, iy.clamp(0, H - 1)[:, :, None], ix.clamp(0, W - 1)[:, None, :]]
    out = out.permute(0, 3, 1, 2)
    vy, vx = (iy >= 0) & (iy < H), (ix >= 0) & (ix < W)
    if not (bool(vy.all()) and bool(vx.all())):
        out = out.masked_fill(~(vy[:, None, :, None] & vx[:, None, None, :]), fill)
    return out


def _shift(t: torch.Tensor, src: _Win, dst: _Win, fill: float = 0.0) -> torch.Tensor:
    """A window tensor of ``src`` re-cut to the window ``dst`` of the same map (``fill`` where src has no value)."""
    ar = torch.arange(t.shape[0], device=t.device)
    return _crop(t, ar, dst.oy - src.oy, dst.ox - src.ox, dst.h, dst.w, fill)


def _place(t: torch.Tensor, win: _Win) -> torch.Tensor:
    """The window tensor t written into a zero (N, C, H, W) map."""
    if (win.h, win.w) == (win.H, win.W):
        return t
    n, c = t.shape[:2]
    out = t.new_zeros((n, c, win.H, win.W))
    iy = win.oy[:, None] + torch.arange(win.h, device=t.device)
    ix = win.ox[:, None] + torch.arange(win.w, device=t.device)
    out[torch.arange(n, device=t.device)[:, None, None], :, iy[:, :, None], ix[:, None, :]] = t.permute(0, 2, 3, 1)
    return out


# ---------------------------------------------------------------------------------------------------- changes
@dataclass
class _Change:
    """The change of one node's value at a batch of roots, in float64: on ``win`` (a (N, C, h, w) window
    tensor) for a (N, C, H, W) value, else the whole value. ``sd`` (float64) bounds the standard deviation of its
    rounding error: per (row, channel) for a window, per entry otherwise. ``active`` (window values of a ReLU
    output): where the ReLU is active at the root; elsewhere the value at the root is exactly 0."""

    d: torch.Tensor
    sd: torch.Tensor
    win: _Win | None
    active: torch.Tensor | None = None

    def take(self, idx: torch.Tensor) -> _Change:
        """The rows ``idx`` of the batch."""
        return _Change(self.d[idx], self.sd[idx], self.win.take(idx) if self.win is not None else None,
                       self.active[idx] if self.active is not None else None)


@dataclass
class _ReluRecord:
    win: _Win | None
    opp: torch.Tensor  # strictly opposite signs at input and root (the layer's own neuron excluded)
    active: torch.Tensor  # the root's resolved phase (the layer's own neuron held active)
    p1_differs: torch.Tensor  # (N,) the input's resolved phases differ from its own phases somewhere
    uncertain: torch.Tensor  # (N,)
    sure_opp: torch.Tensor  # the entries of opp whose sign at the root has a certified margin


@dataclass
class _PoolRecord:
    win: _Win  # the pooled output window
    opp: torch.Tensor  # each point's winner strictly beaten at the other point
    win_rt: torch.Tensor  # the root's resolved winners (flat index of the input map, as max_pool's indices)
    p1_differs: torch.Tensor  # (N,) the input's resolved winners differ from its own, other than in ties of zeros
    uncertain: torch.Tensor  # (N,)
    sure_opp: torch.Tensor  # the entries of opp whose root winner has a certified margin


_Record = _ReluRecord | _PoolRecord


def _group_norm(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, groups) Euclidean norm of each group of channels of a (N, C, h, w) tensor, in float64."""
    n, c, h, w = x.shape
    return torch.linalg.vector_norm(x.reshape(n, groups, c // groups, h, w), dim=(2, 3, 4), dtype=torch.float64)


def _channel_max(x: torch.Tensor) -> torch.Tensor:
    """(N, C) largest modulus per channel of a (N, C, ...) tensor, in float64."""
    return x.abs().amax(dim=tuple(range(2, x.dim()))).double() if x.dim() > 2 else x.abs().double()


def _inner_sd(wn: torch.Tensor, xn: torch.Tensor, sx: torch.Tensor, n: int, u: float) -> torch.Tensor:
    r"""Standard deviation bound of inner products :math:`w_o \cdot x` computed with unit roundoff u from inputs of
    norm ``xn`` whose entries have error deviations at most ``sx``:
    :math:`\lVert w_o\rVert_2 \sqrt{(u \sqrt{2n}\, \lVert x\rVert_2)^2 + \sigma_x^2}` (n terms, at most 2n
    roundings, every partial sum at most :math:`\lVert w_o\rVert_2 \lVert x\rVert_2`)."""
    return wn * torch.sqrt((u * math.sqrt(2 * n) * xn) ** 2 + sx ** 2)


class ConeContext:
    """What the incremental evaluation of one layer's roots needs, computed once per layer.

    Parameters
    ----------
    plan, info, start
        The traced model, the layer, the node holding the layer input.
    base : dict
        float64 value at the inputs of every node downstream of ``start`` (``start`` included), shape (B, ...).
    winners : dict
        max-pool node -> its winners at the inputs (flat indices, as ``return_indices``), from the same pass.
    output : Tensor
        (B,) the explained output of every input.
    base_env : dict
        The model's own forward values (for the input-pattern gradient, in the model's dtype).
    tol : float
        The affine-map tolerance.
    weights64 : dtd_formal.torch.roots.Float64Weights, optional
        layer index -> the layer's float64 (W, b) when the model is not float64 (made once per layer, on first use:
        a float64 copy allocated per use would cost its page faults every time, half a second for VGG16's first
        Linear).
    gradient : bool
        Whether to compute the input's gradient (the affine-map certificate needs it; pattern-only runs do not).
    """

    def __init__(self, plan: Plan, info: LayerInfo, start: str, base: dict[str, Any], winners: dict[str, torch.Tensor],
                 output: torch.Tensor, base_env: dict[str, Any], tol: float,
                 weights64: Any = None, gradient: bool = True) -> None:
        self.plan, self.info, self.start, self.output, self.tol = plan, info, start, output, tol
        self.base = {k: v.contiguous(memory_format=torch.channels_last) if isinstance(v, torch.Tensor) and v.dim() == 4
                     else v for k, v in base.items()}  # crops gather whole channel vectors
        self.winners = {k: v.contiguous(memory_format=torch.channels_last) for k, v in winners.items()}
        self.by_name = {n.name: n for n in plan.nodes}
        down = plan.downstream(start)
        self.nodes = [n for n in plan.nodes if n.name in down and n.name != start]
        self.model_dtype = info.weight.dtype
        self._weights: dict[tuple[int, torch.dtype], tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._w64 = weights64 or {}
        self._mats: dict[int, torch.Tensor] = {}
        self.norms = {li.index: _row_norms64(li.weight) for li in plan.layers if li.out_node in down}
        self.sd_base = self._base_sd()
        if gradient:  # only the affine-map certificate reads it
            self.g0, self.g0_max = self._base_gradient(base_env)

    # ------------------------------------------------------------------ eligibility
    @staticmethod
    def eligible(plan: Plan, info: LayerInfo, start: str, base_env: dict[str, Any]) -> bool:
        """Whether the layer's upper network is made of what the incremental evaluation handles: a Conv2d layer;
        then Conv2d or Linear (on flat inputs) layers, ReLUs, MaxPool2d, 2-d average pools, sums of two tensors,
        shape operations of one tensor, and flat logits."""
        if not (isinstance(info.op, ConvOp) and info.op.dim == 2) or base_env[start].dim() != 4:
            return False
        down = plan.downstream(start)
        for n in plan.nodes:
            if n.name not in down or n.name == start:
                continue
            kind = plan.handler[n.name]
            ins = [a for a in n.all_input_nodes if a.name in down]
            x = base_env.get(ins[0].name) if ins else None
            if kind in ("layer", "bn"):
                li = plan.layer_of_node[n.name]
                if li.out_node == n.name and x.dim() != (4 if isinstance(li.op, ConvOp) else 2):
                    return False
                if li.out_node == n.name and isinstance(li.op, ConvOp) and li.op.dim != 2:
                    return False
            elif kind == "maxpool" and not isinstance(plan.modules[n.target], nn.MaxPool2d):
                return False
            elif kind == "avgpool" and not isinstance(plan.modules[n.target], (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                return False
            elif kind == "relu" and x.dim() not in (2, 4):
                return False
            elif kind == "pass" and len(n.all_input_nodes) != 1:
                return False
            elif kind == "output" and x.dim() != 2:
                return False
        return True

    # ------------------------------------------------------------------ weights
    def weights(self, li: LayerInfo, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The layer's weight in ``dtype`` and, for a convolution, the transposed-flipped kernel
        :math:`W^t_{i,o,y,x} = W_{o,i,k-1-y,k-1-x}` (per group): convolving with it maps a window of the output
        back to the input, and its transposed convolution maps an input window to its whole reach."""
        key = (li.index, dtype)
        if key not in self._weights:
            if dtype == self.model_dtype:
                W = li.weight
            elif dtype == torch.float64 and li.index in self._w64:
                W = self._w64[li.index][0]
            else:
                W = li.weight.to(dtype)
            Wt = None
            if isinstance(li.op, ConvOp):
                g = li.op.groups
                co, ci = W.shape[:2]
                Wt = (W.reshape(g, co // g, ci, *W.shape[2:]).transpose(1, 2)
                      .reshape(g * ci, co // g, *W.shape[2:]).flip(2, 3).contiguous())
            self._weights[key] = (W, Wt)
        return self._weights[key]

    def _reach_mats(self, li: LayerInfo) -> torch.Tensor:
        """The float64 kernel of a one-group convolution as (kh, kw, Cin, Cout) matrices (:func:`_reach_conv`)."""
        if li.index not in self._mats:
            self._mats[li.index] = self.weights(li, torch.float64)[0].permute(2, 3, 1, 0).contiguous()
        return self._mats[li.index]

    # ------------------------------------------------------------------ the input's side
    def _base_sd(self) -> dict[str, torch.Tensor]:
        r""":math:`\sigma` of every cached value (float64 unit roundoff, from an exact layer input): per (input,
        channel) for a (B, C, H, W) value, per entry otherwise."""
        u = _u(torch.float64)
        sd: dict[str, torch.Tensor] = {self.start: torch.zeros(self.base[self.start].shape[:2], dtype=torch.float64,
                                                               device=self.base[self.start].device)}
        for n in self.nodes:
            kind = self.plan.handler[n.name]
            ins = [a.name for a in self._inputs(n) if a.name in sd]
            v = self.base[n.name] if kind != "output" else None
            if kind == "output" or not isinstance(v, torch.Tensor):
                continue
            if kind in ("layer", "bn"):
                li = self.plan.layer_of_node[n.name]
                if li.out_node != n.name:
                    sd[n.name] = sd[ins[0]]
                    continue
                xb, sx = self.base[ins[0]], sd[ins[0]]
                wn = self.norms[li.index]
                if isinstance(li.op, ConvOp):
                    g = li.op.groups
                    sxg = sx.reshape(len(sx), g, -1).amax(dim=2)
                    s = _inner_sd(wn.reshape(1, g, -1), _group_norm(xb, g)[..., None], sxg[..., None],
                                  li.weight[0].numel(), u).reshape(len(sx), -1)
                    sd[n.name] = s + u * _channel_max(v)
                else:
                    sd[n.name] = _inner_sd(wn, xb.norm(dim=1, keepdim=True), sx.amax(dim=1, keepdim=True),
                                           li.weight.shape[1], u) + u * v.abs()
            elif kind in ("relu", "maxpool"):
                sd[n.name] = sd[ins[0]]
            elif kind == "avgpool":
                m = self.plan.modules[n.target]
                sd[n.name] = sd[ins[0]] + u * _pool_area(m, self.base[ins[0]]) * _channel_max(self.base[ins[0]])
            elif kind == "add":
                parts = [_expand(sd[a], self.base[a]) for a in ins]
                total = sum(parts) + u * v.abs()
                sd[n.name] = _channel_max(total) if v.dim() == 4 else total
            else:  # pass: the same shape operation on the deviations
                out = self._apply_pass(n, _expand(sd[ins[0]], self.base[ins[0]]))
                sd[n.name] = _channel_max(out) if out.dim() == 4 else out
        return sd

    def _inputs(self, n: fx.Node) -> list[fx.Node]:
        """The tensor inputs of node n, a repeated one as often as it is passed: a sum ``g + g`` reads g twice
        (its change and its gradient count twice), while fx's ``all_input_nodes`` lists g once."""
        if self.plan.handler[n.name] == "add":
            return [a for a in n.args if isinstance(a, fx.Node)]
        return n.all_input_nodes

    def _apply_pass(self, n: fx.Node, t: torch.Tensor) -> Any:
        """A shape node (one tensor input, see :meth:`eligible`) applied to t in place of that input."""

        def val(a: Any) -> Any:
            if isinstance(a, fx.Node):
                return t
            if isinstance(a, (list, tuple)):
                return type(a)(val(v) for v in a)
            return a

        args, kwargs = val(n.args), val(n.kwargs)
        if n.op == "call_module":
            return self.plan.modules[n.target](*args, **kwargs)
        if n.op == "call_function":
            return n.target(*args, **kwargs)
        obj = args[0]
        if n.target == "view" and isinstance(obj, torch.Tensor) and not obj.is_contiguous():
            obj = obj.contiguous()
        return getattr(obj, n.target)(*args[1:], **kwargs)

    def _base_gradient(self, base_env: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`g_0 = \partial f_c / \partial a` under the input's own pattern (ReLU masks and pool winners held),
        in the model's dtype, and :math:`\lVert g_0\rVert_\infty` per input; also keeps, per Linear layer, the
        gradients w.r.t. its input and output (``self.linear_grads``), from which a root's backward pass through
        the layer is the base's plus the product with the (sparse) difference."""
        masks = {n.name: self.base[n.all_input_nodes[0].name] > 0 for n in self.nodes
                 if self.plan.handler[n.name] == "relu"}

        def relu(name: str, z: torch.Tensor) -> torch.Tensor:
            return z * masks[name].to(z.dtype)

        def maxpool(name: str, m: nn.Module, a: torch.Tensor) -> torch.Tensor:
            idx = self.winners[name]
            return a.flatten(2).gather(2, idx.flatten(2)).reshape(idx.shape)

        held: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def layer(li: LayerInfo, x: torch.Tensor) -> torch.Tensor:
            z = li.op.forward(x, li.weight, li.bias)
            if not isinstance(li.op, ConvOp):
                x.retain_grad()
                z.retain_grad()
                held[li.index] = (x, z)
            return z

        a = base_env[self.start].detach().clone().requires_grad_(True)
        B = a.shape[0]
        with torch.enable_grad():
            y = run(self.plan, a, Handlers(layer=layer, relu=relu, maxpool=maxpool), start=(self.start, a),
                    base_env=base_env)
            f = y[torch.arange(B, device=y.device), self.output]
            f.sum().backward()
        self.linear_grads = {k: (x.grad if x.grad is not None else torch.zeros_like(x),
                                 z.grad if z.grad is not None else torch.zeros_like(z)) for k, (x, z) in held.items()}
        g = a.grad.detach()
        return g, g.reshape(B, -1).abs().amax(dim=1).double()

    # ------------------------------------------------------------------ the roots' side
    def classify(self, pts: torch.Tensor, samp: torch.Tensor, forced: torch.Tensor, scope_nodes: list[str],
                 affine_map: bool, first_flip: bool = False
                 ) -> tuple[list[list[tuple[Any, NeuronId]]], torch.Tensor, torch.Tensor]:
        """Verdicts of a batch of roots (row r: root ``pts[r]`` of neuron ``forced[r]`` (flat) for input ``samp[r]``).

        Returns the flipped neurons of ``scope_nodes`` per row, whether each row leaves the affine map, and which
        rows are undecided (their other entries are meaningless). ``first_flip`` (with ``affine_map`` False)
        decides the pattern only, see :meth:`_classify_first_flip`.
        """
        N = len(pts)
        a = self.base[self.start]
        win0 = _support(pts != a[samp].to(pts.dtype))
        d0 = _crop(pts, _ar(N, pts), win0.oy, win0.ox, win0.h, win0.w).double() - \
            _crop(a, samp, win0.oy, win0.ox, win0.h, win0.w)
        chg: dict[str, _Change | None] = {self.start: _Change(d0, _u(torch.float64) * _channel_max(d0), win0)}
        records: dict[str, _Record] = {}
        if first_flip:
            if affine_map:
                raise ValueError("the affine map needs the whole pattern: first_flip decides the pattern only")
            return self._classify_first_flip(chg, samp, forced, scope_nodes, N)
        for n in self.nodes:
            chg[n.name] = self._forward_node(n, chg, samp, forced, records)
        undecided = torch.zeros(N, dtype=torch.bool, device=pts.device)
        any_flip = torch.zeros_like(undecided)
        for rec in records.values():  # resolved patterns differ exactly where some sign or winner flips strictly
            undecided |= rec.uncertain
            any_flip |= _rows_any(rec.opp)
        leaves_map = torch.zeros_like(undecided)
        if affine_map:
            todo = torch.nonzero(~undecided & any_flip, as_tuple=True)[0]
            if len(todo):
                own = torch.ones(len(todo), dtype=torch.bool, device=pts.device)
                for rec in records.values():
                    own &= ~rec.p1_differs[todo]
                cert = torch.zeros(len(todo), dtype=torch.bool, device=pts.device)
                if bool(own.any()):
                    rows = todo[own]
                    cert[own] = self._certify(rows, records, samp[rows], d0[rows], win0.take(rows))
                leaves_map[todo] = cert
                undecided[todo[~cert]] = True
        return self._flips(records, scope_nodes, N), leaves_map, undecided

    def _classify_first_flip(self, chg: dict[str, _Change | None], samp: torch.Tensor, forced: torch.Tensor,
                             scope_nodes: list[str], N: int
                             ) -> tuple[list[list[tuple[Any, NeuronId]]], torch.Tensor, torch.Tensor]:
        """Pattern verdicts that stop each row at its first certain flip.

        Node by node in plan order, a row leaves the pattern at the first scope node where some sign or winner is
        strictly opposite with a certified margin while no sign or winner before that node was uncertain (then
        every value the flip is computed from is certified, as for a row decided whole); its flips are those
        certain entries of that node (a non-empty subset of the whole pattern's flips). A row with an uncertain
        sign or winner before any certain flip is undecided. Decided and undecided rows leave the batch at once,
        so later nodes are evaluated only for the rows still open; nothing after the last scope node is
        evaluated. Rows open at the end keep the pattern (every scope sign and winner certain and equal).
        """
        dev = samp.device
        flips: list[list[tuple[Any, NeuronId]]] = [[] for _ in range(N)]
        undecided = torch.zeros(N, dtype=torch.bool, device=dev)
        scope = set(scope_nodes)
        last = max((i for i, n in enumerate(self.nodes) if n.name in scope), default=-1)
        last_use: dict[str, int] = {}
        for i, n in enumerate(self.nodes):
            for a in self._inputs(n):
                last_use[a.name] = i
        live = torch.arange(N, device=dev)  # the batch rows still open, in the order of the current tensors
        for i, n in enumerate(self.nodes[: last + 1]):
            records: dict[str, _Record] = {}
            chg[n.name] = self._forward_node(n, chg, samp, forced, records)
            rec = records.get(n.name)
            if rec is None:
                continue
            done = rec.uncertain.clone()
            if n.name in scope:
                flipped = _rows_any(rec.sure_opp)
                for r, nid in self._entries(n.name, rec.sure_opp, rec.win, len(live)):
                    flips[int(live[r])].append(nid)
                done |= flipped
                undecided[live[rec.uncertain & ~flipped]] = True
            else:
                undecided[live[rec.uncertain]] = True
            if not bool(done.any()):
                continue
            keep = torch.nonzero(~done, as_tuple=True)[0]
            live, samp, forced = live[keep], samp[keep], forced[keep]
            if not len(live):
                break
            for name in list(chg):
                if last_use.get(name, -1) <= i or chg[name] is None:
                    chg.pop(name)
                else:
                    chg[name] = chg[name].take(keep)
        return flips, torch.zeros(N, dtype=torch.bool, device=dev), undecided

    def _forward_node(self, n: fx.Node, chg: dict[str, _Change | None], samp: torch.Tensor, forced: torch.Tensor,
                      records: dict[str, _Record]) -> _Change | None:
        kind = self.plan.handler[n.name]
        ins = [a.name for a in self._inputs(n)]
        u = _u(torch.float64)
        if kind == "output":
            return None
        if kind == "add":
            return _add([c for c in (chg.get(a) for a in ins) if c is not None], u)
        x = chg.get(ins[0])
        if x is None:
            return None
        if kind in ("layer", "bn"):
            li = self.plan.layer_of_node[n.name]
            return x if li.out_node != n.name else self._layer(li, x, n.name, samp)
        if kind == "relu":
            return self._relu(n.name, ins[0], x, samp, forced, records)
        if kind == "maxpool":
            return self._maxpool(n, ins[0], x, samp, records)
        if kind == "avgpool":
            m = self.plan.modules[n.target]
            if isinstance(m, nn.AdaptiveAvgPool2d) and tuple(self.base[n.name].shape[2:]) == (x.win.H, x.win.W):
                return x
            d = m(_place(x.d, x.win))
            return _Change(d, x.sd + u * _pool_area(m, self.base[ins[0]]) * _channel_max(x.d),
                           _Win.full(len(d), d.shape[2], d.shape[3], d.device))
        # pass: an identity module keeps the window; any other shape operation sees the whole change
        if n.op == "call_module" and isinstance(self.plan.modules[n.target], (nn.Identity, nn.Dropout)):
            return x
        if not isinstance(self.base[n.name], torch.Tensor):  # e.g. .size(): nothing that changes
            return None
        full = _place(x.d, x.win) if x.win is not None else x.d
        d = self._apply_pass(n, full)
        sd = self._apply_pass(n, _expand(x.sd, full))
        if d.dim() == 4:
            return _Change(d, _channel_max(sd), _Win.full(len(d), d.shape[2], d.shape[3], d.device))
        return _Change(d, sd, None)

    def _layer(self, li: LayerInfo, x: _Change, name: str, samp: torch.Tensor) -> _Change:
        r""":math:`\Delta z = \mathcal{L}(\Delta x; W)` on the window the input window reaches, in float64."""
        if not isinstance(li.op, ConvOp):
            return self._linear(li, x, name, samp)
        W, Wt = self.weights(li, torch.float64)
        u = _u(torch.float64)
        wn = self.norms[li.index]
        op, win = li.op, x.win
        ay, axx = _conv_axes(op, W)
        Ho, Wo = self.base[name].shape[2:]
        py, ho = ay.reach(win.oy, win.h, Ho)
        px, wo = axx.reach(win.ox, win.w, Wo)
        out = _Win(py, px, ho, wo, Ho, Wo)
        g = op.groups
        if (ay.s, axx.s) == (1, 1) and (ho, wo) != (Ho, Wo):  # the transposed kernel maps the window to its reach
            ext = _reach_conv(x.d, Wt, g, (ay.d, axx.d), self._reach_mats(li) if g == 1 else None)
            ext_win = _Win(win.oy + ay.p - ay.d * (ay.k - 1), win.ox + axx.p - axx.d * (axx.k - 1),
                           ext.shape[2], ext.shape[3], Ho, Wo)
            d = _shift(ext, ext_win, out)
        else:
            iy, hp = ay.patch(py, ho)
            ix, wp = axx.patch(px, wo)
            d = F.conv2d(_shift(x.d, win, _Win(iy, ix, hp, wp, win.H, win.W)), W, None, (ay.s, axx.s), 0,
                         (ay.d, axx.d), g)
        sxg = x.sd.reshape(len(x.sd), g, -1).amax(dim=2)
        sd = _inner_sd(wn.reshape(1, g, -1), _group_norm(x.d, g)[..., None], sxg[..., None], W[0].numel(), u)
        return _Change(d, sd.reshape(len(d), -1) + u * _channel_max(d), out)

    def _linear(self, li: LayerInfo, x: _Change, name: str, samp: torch.Tensor) -> _Change:
        r""":math:`\Delta y = W \Delta x`: when it is followed by a ReLU, first in the model's dtype and, for the rows
        where that does not decide the ReLU's signs, again in float64; otherwise in float64."""
        dtype = torch.float64
        xn = torch.linalg.vector_norm(x.d, dim=1, keepdim=True, dtype=torch.float64)
        sx = x.sd.amax(dim=1, keepdim=True)

        def product(dt: torch.dtype, rows: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
            xd = x.d[rows]
            d = F.linear(xd.to(dt), self.weights(li, dt)[0])
            sin = sx[rows] + _u(dt) * xd.abs().amax(dim=1, keepdim=True).double()  # the input rounded to dt
            sd = _inner_sd(self.norms[li.index], xn[rows], sin, li.weight.shape[1], _u_op(dt, d.device))
            return d.to(dtype), sd + _u(dt) * d.double().abs()

        cheap = self.model_dtype
        if not (li.relu_after and torch.finfo(cheap).eps > torch.finfo(dtype).eps):
            d, sd = product(dtype, slice(None))
            return _Change(d, sd, None)
        d, sd = product(cheap, slice(None))
        B = self.base[name][samp]
        thr = LAMBDA * torch.sqrt(sd ** 2 + 2 * self.sd_base[name][samp] ** 2)
        redo = torch.nonzero(((B + d).abs() <= thr).any(dim=1), as_tuple=True)[0]
        if len(redo):
            d[redo], sd[redo] = product(dtype, redo)
        return _Change(d, sd, None)

    def _relu(self, name: str, src: str, x: _Change, samp: torch.Tensor, forced: torch.Tensor,
              records: dict[str, _Record]) -> _Change:
        r"""Signs at input and root, their certainty (:math:`|z(\tilde a)| > \lambda\sqrt{\sigma_{\Delta z}^2 +
        2\sigma_{z(a)}^2}`) and :math:`\Delta r = \mathrm{relu}(z(a) + \Delta z) - \mathrm{relu}(z(a))`."""
        win = x.win
        Sb = self.sd_base[src][samp]
        if win is None:
            B = self.base[src][samp]
        else:
            B = _crop(self.base[src], samp, win.oy, win.ox, win.h, win.w)
        R = B + x.d
        thr = LAMBDA * torch.sqrt(x.sd ** 2 + 2 * Sb ** 2)
        if win is not None:
            thr = thr[:, :, None, None]
        absR = R.abs()
        own = None
        if name == self.info.relu_node:
            own = _own_index(win, forced, self.base[src].shape[1:])
            absR[own] = math.inf
        # a zero margin means every product and the bias of that channel are exact zeros (zero norms): the value
        # at the root is exactly what is computed here and in the plain pass (0 for a dead filter), so it is sure
        unsure = (absR <= thr) & (thr > 0)
        uncertain = _rows_any(unsure)
        act_in, act_rt = B > 0, R > 0
        if own is not None:
            act_rt[own] = True
        opp = (act_in ^ act_rt) & (B != 0)
        if own is not None:
            opp[own] = False
        D = R.clamp(min=0).sub_(B.clamp(min=0))
        if own is not None:
            D[own] = R[own] - B[own].clamp(min=0)
        p1 = _rows_any((B == 0) & act_rt)  # a zero at the input resolved to the root's phase
        if own is not None:
            p1 |= torch.zeros_like(p1).index_put_((own[0],), ~act_in[own])
        records[name] = _ReluRecord(win, opp, act_rt, p1, uncertain, opp & ~unsure)
        sd = x.sd + Sb + _u(torch.float64) * (_channel_max(D) if win is not None else D.abs())
        return _Change(D, sd, win, act_rt if win is not None else None)

    def _maxpool(self, n: fx.Node, src: str, x: _Change, samp: torch.Tensor, records: dict[str, _Record]) -> _Change:
        """Winners at input and root on the pooled windows the change meets, their certainty (the winner beats
        every other entry by the margin of both, or all entries are ReLU zeros), and the change of the maxima."""
        m = self.plan.modules[n.target]
        ay, axx = _pool_axes(m)
        win = x.win
        Ho, Wo = self.base[n.name].shape[2:]
        py, ho = ay.reach(win.oy, win.h, Ho)
        px, wo = axx.reach(win.ox, win.w, Wo)
        out = _Win(py, px, ho, wo, Ho, Wo)
        iy, hp = ay.patch(py, ho)
        ix, wp = axx.patch(px, wo)
        patch = _Win(iy, ix, hp, wp, win.H, win.W)
        Bp = _crop(self.base[src], samp, iy, ix, hp, wp, fill=-math.inf)
        Rp = Bp + _shift(x.d, win, patch)
        zero = None
        if x.active is not None:  # ReLU outputs: exactly 0 where inactive at the root (outside the window: as at a)
            inside = _shift(torch.ones_like(x.active), win, patch, fill=False)
            zero = torch.where(inside, ~_shift(x.active, win, patch, fill=False), Bp == 0)
            Rp.masked_fill_(zero, 0.0)
        ks, st, dl = (ay.k, axx.k), (ay.s, axx.s), (ay.d, axx.d)
        max_rt, loc_rt = F.max_pool2d(Rp, ks, st, 0, dl, return_indices=True)
        thr = 2 * LAMBDA * torch.sqrt(x.sd ** 2 + 2 * self.sd_base[src][samp] ** 2)
        margin = max_rt[..., None] - _windows(Rp, ay, axx)
        sure = margin > thr[:, :, None, None, None]
        sure |= _windows(torch.arange(hp * wp, device=Rp.device).reshape(1, 1, hp, wp), ay, axx) == loc_rt[..., None]
        if zero is not None:  # every entry a ReLU zero (or padding): an exact tie
            sure |= _windows(zero | (Bp == -math.inf), ay, axx).all(dim=-1, keepdim=True)
        sure_out = sure.all(dim=-1)
        uncertain = ~sure_out.flatten(1).all(dim=1)
        rt_idx = (iy[:, None, None, None] + loc_rt // wp) * win.W + (ix[:, None, None, None] + loc_rt % wp)
        idx_in = _crop(self.winners[n.name], samp, py, px, ho, wo)
        max_in = _crop(self.base[n.name], samp, py, px, ho, wo)
        loc_in = (idx_in // win.W - iy[:, None, None, None]) * wp + (idx_in % win.W - ix[:, None, None, None])
        in_beaten = torch.gather(Rp.flatten(2), 2, loc_in.flatten(2)).reshape(loc_in.shape) < max_rt
        rt_val = torch.gather(Bp.flatten(2), 2, loc_rt.flatten(2)).reshape(loc_rt.shape)
        strict = in_beaten & (rt_val < max_in)
        loose = in_beaten & ~strict  # the input's resolved winner is the root's: harmless between ReLU zeros
        harmless = (rt_val == 0) & (max_in == 0) if self.plan.handler[src] == "relu" else torch.zeros_like(loose)
        p1 = _rows_any(loose & ~harmless)
        records[n.name] = _PoolRecord(out, strict, torch.where(in_beaten, rt_idx, idx_in), p1, uncertain,
                                      strict & sure_out)
        D = max_rt - max_in
        return _Change(D, x.sd + self.sd_base[src][samp] + _u(torch.float64) * _channel_max(D), out)

    # ------------------------------------------------------------------ affine maps
    def _certify(self, rows: torch.Tensor, records: dict[str, _Record], samp: torch.Tensor, d0: torch.Tensor,
                 win0: _Win) -> torch.Tensor:
        """The affine-map certificate (module docstring) for the rows ``rows`` of the batch, at the pixel of the
        support with the largest change (``d0`` on the window ``win0``)."""
        M = len(rows)
        p = d0.abs().sum(dim=1).reshape(M, -1).argmax(dim=1)
        py, px = win0.oy + p // win0.w, win0.ox + p % win0.w
        g2 = self._backward_at(rows, records, samp, py, px)
        g0 = self.g0[samp, :, py, px]
        L = (g0.double() - g2.double()).abs().amax(dim=1)
        tol = self.tol
        return (1 - EPS_GRAD) * L > tol / (1 - tol) * (1 + EPS_GRAD) * self.g0_max[samp]

    def _backward_at(self, rows: torch.Tensor, records: dict[str, _Record], samp: torch.Tensor,
                     py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
        r""":math:`\partial f_c/\partial a_{\cdot, p}` under the roots' resolved patterns, by a backward pass over the
        cone of pixel p only (no value outside it depends on :math:`a_{\cdot p}`), in the model's dtype."""
        M = len(rows)
        start_shape = self.base[self.start].shape
        wins: dict[str, _Win | None] = {self.start: _Win(py, px, 1, 1, start_shape[2], start_shape[3])}
        for n in self.nodes:
            wins[n.name] = self._window_of(n, wins)
        dtype = self.model_dtype
        out_node = self.nodes[-1]
        logits = out_node.all_input_nodes[0].name
        seed = torch.zeros((M,) + tuple(self.base[logits].shape[1:]), dtype=dtype, device=py.device)
        seed[torch.arange(M, device=py.device), self.output[samp]] = 1
        grads: dict[str, torch.Tensor] = {logits: seed}

        def add(name: str, t: torch.Tensor) -> None:
            grads[name] = grads[name] + t if name in grads else t

        for n in reversed(self.nodes[:-1]):
            if n.name not in grads:
                continue
            gy = grads.pop(n.name)
            kind = self.plan.handler[n.name]
            ins = [a.name for a in self._inputs(n) if a.name in wins]
            wn, wi = wins[n.name], wins.get(ins[0]) if ins else None
            if kind in ("layer", "bn"):
                li = self.plan.layer_of_node[n.name]
                if li.out_node != n.name:
                    add(ins[0], gy)
                    continue
                W, Wt = self.weights(li, dtype)
                if not isinstance(li.op, ConvOp):
                    add(ins[0], _linear_back(gy, W, *self.linear_grads[li.index], samp))
                    continue
                ay, axx = _conv_axes(li.op, W)
                g = li.op.groups
                if (ay.s, axx.s) == (1, 1):
                    pw = _Win(wi.oy + ay.p - ay.d * (ay.k - 1), wi.ox + axx.p - axx.d * (axx.k - 1),
                              wi.h + ay.d * (ay.k - 1), wi.w + axx.d * (axx.k - 1), wn.H, wn.W)
                    add(ins[0], F.conv2d(_shift(gy, wn, pw), Wt, None, 1, 0, (ay.d, axx.d), g))
                else:
                    full = F.conv_transpose2d(gy, W, None, (ay.s, axx.s), 0, 0, g, (ay.d, axx.d))
                    src = _Win(wn.oy * ay.s - ay.p, wn.ox * axx.s - axx.p, full.shape[2], full.shape[3], wi.H, wi.W)
                    add(ins[0], _shift(full, src, wi))
            elif kind == "relu":
                rec = records[n.name]
                act = rec.active[rows].to(gy.dtype)
                add(ins[0], gy * (act if wn is None else _shift(act, rec.win.take(rows), wn)))
            elif kind == "maxpool":
                rec = records[n.name]
                winners = _shift(rec.win_rt[rows], rec.win.take(rows), wn)
                ly, lx = winners // wi.W - wi.oy[:, None, None, None], winners % wi.W - wi.ox[:, None, None, None]
                ok = (ly >= 0) & (ly < wi.h) & (lx >= 0) & (lx < wi.w)
                gx = gy.new_zeros((M, gy.shape[1], wi.h * wi.w))
                gx.scatter_add_(2, torch.where(ok, ly * wi.w + lx, 0).flatten(2), torch.where(ok, gy, 0).flatten(2))
                add(ins[0], gx.reshape(M, gy.shape[1], wi.h, wi.w))
            elif kind == "add":
                for a in ins:
                    add(a, _convert(gy, wn, wins[a]))
            else:  # avgpool, pass: the adjoint of a linear map of the whole value
                full = _place(gy, wn) if wn is not None else gy
                x0 = torch.zeros((M,) + tuple(self.base[ins[0]].shape[1:]), dtype=full.dtype, device=full.device,
                                 requires_grad=True)
                with torch.enable_grad():
                    yv = self.plan.modules[n.target](x0) if kind == "avgpool" else self._apply_pass(n, x0)
                    (gx,) = torch.autograd.grad(yv, x0, full)
                add(ins[0], _convert(gx, None if wi is None else _Win.full(M, wi.H, wi.W, gx.device), wi))
        if self.start not in grads:  # no path from p to the output is open
            return torch.zeros((M, start_shape[1]), dtype=dtype, device=py.device)
        return grads[self.start][:, :, 0, 0]

    def _window_of(self, n: fx.Node, wins: dict[str, _Win | None]) -> _Win | None:
        """The window of node n's value that depends on the start window (the geometry of the forward pass)."""
        kind = self.plan.handler[n.name]
        ins = [a.name for a in self._inputs(n) if a.name in wins]
        v = self.base.get(n.name)
        if kind == "output" or not ins or not isinstance(v, torch.Tensor):
            return None
        w = wins[ins[0]]
        if kind in ("layer", "bn", "maxpool") and w is not None:
            if kind == "maxpool":
                ay, axx = _pool_axes(self.plan.modules[n.target])
            else:
                li = self.plan.layer_of_node[n.name]
                if li.out_node != n.name:
                    return w
                if not isinstance(li.op, ConvOp):
                    return None
                ay, axx = _conv_axes(li.op, li.weight)
            py, ho = ay.reach(w.oy, w.h, v.shape[2])
            px, wo = axx.reach(w.ox, w.w, v.shape[3])
            return _Win(py, px, ho, wo, v.shape[2], v.shape[3])
        if kind == "relu" or (kind == "pass" and n.op == "call_module"
                              and isinstance(self.plan.modules[n.target], (nn.Identity, nn.Dropout))):
            return w
        if kind == "add":
            ws = [wins[a] for a in ins]
            if len(ws) == 1:
                return ws[0]
            if ws[0] is not None and ws[1] is not None:
                return ws[0] if ws[0].same(ws[1]) else ws[0].union(ws[1])
        if kind == "avgpool" and isinstance(self.plan.modules[n.target], nn.AdaptiveAvgPool2d) \
                and tuple(v.shape[2:]) == tuple(self.base[ins[0]].shape[2:]):
            return w
        return _Win.full(len(wins[self.start].oy), v.shape[2], v.shape[3], v.device) if v.dim() == 4 else None

    # ------------------------------------------------------------------ records
    def _flips(self, records: dict[str, _Record], scope_nodes: list[str], N: int) -> list[list[tuple[Any, NeuronId]]]:
        """Per row, the (label, neuron) of every strictly opposite sign or winner of the scope, in the plain path's
        order (node by node, then by flat index)."""
        flips: list[list[tuple[Any, NeuronId]]] = [[] for _ in range(N)]
        for name in scope_nodes:
            rec = records.get(name)
            if rec is not None:
                for r, flip in self._entries(name, rec.opp, rec.win, N):
                    flips[r].append(flip)
        return flips

    def _entries(self, name: str, mask: torch.Tensor, win: _Win | None, N: int
                 ) -> list[tuple[int, tuple[Any, NeuronId]]]:
        """(row, (label, neuron)) of every set entry of a record's ``mask`` of node ``name`` (a window tensor on
        ``win``, or the whole value), row by row, then by flat index."""
        label = self.plan.relu_label.get(name, name)
        shape = tuple(self.base[name].shape[1:])
        if win is None:
            r, k = torch.nonzero(mask.reshape(N, -1), as_tuple=True)
        else:
            r, c, yy, xx = torch.nonzero(mask, as_tuple=True)
            k = (c * shape[1] + win.oy[r] + yy) * shape[2] + win.ox[r] + xx
        if len(shape) > 1:
            ids: list[Any] = list(zip(*(i.tolist() for i in np.unravel_index(k.cpu().numpy(), shape))))
        else:
            ids = k.tolist()
        return [(rr, (label, nid)) for rr, nid in zip(r.tolist(), ids)]


def _row_norms64(W: torch.Tensor, block: int = 2**22) -> torch.Tensor:
    r""":math:`\lVert W_{o,\cdot}\rVert_2` per output o in float64, converting one block of about ``block``
    entries at a time into a reused buffer (a whole float64 copy of VGG16's first Linear costs 0.4 s of page
    faults; ``vector_norm(..., dtype=float64)`` on the float32 weights took 0.9 s)."""
    flat = W.reshape(W.shape[0], -1)
    if flat.dtype == torch.float64:
        return torch.linalg.vector_norm(flat, dim=1)
    rows = max(1, block // max(1, flat.shape[1]))
    buf = torch.empty((min(rows, flat.shape[0]), flat.shape[1]), dtype=torch.float64, device=W.device)
    out = torch.empty(flat.shape[0], dtype=torch.float64, device=W.device)
    for r0 in range(0, flat.shape[0], rows):
        blk = buf[: min(rows, flat.shape[0] - r0)]
        blk.copy_(flat[r0 : r0 + len(blk)])
        out[r0 : r0 + len(blk)] = torch.linalg.vector_norm(blk, dim=1)
    return out


def _linear_back(gy: torch.Tensor, W: torch.Tensor, g0_in: torch.Tensor, g0_out: torch.Tensor,
                 samp: torch.Tensor) -> torch.Tensor:
    r"""The gradient w.r.t. a Linear layer's input, :math:`g_y W = g_{0,in} + (g_y - g_{0,out}) W`, through a sparse
    product where the output gradient differs from the input's (``g0_in``, ``g0_out``) in few entries."""
    diff = gy - g0_out[samp]
    if int((diff != 0).sum()) > 0.05 * diff.numel():
        return gy @ W
    return g0_in[samp] + torch.sparse.mm(diff.to_sparse(), W)


def _rows_any(t: torch.Tensor) -> torch.Tensor:
    """(N,) whether each row of a boolean (N, ...) tensor has a True entry (any memory layout, no copy)."""
    return t.any(dim=tuple(range(1, t.dim()))) if t.dim() > 1 else t


def _ar(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.arange(n, device=like.device)


def _expand(sd: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-channel deviations (N, C) of a (N, C, H, W) value as a tensor of the value's shape (others as they are)."""
    if like.dim() == 4 and sd.dim() == 2:
        return sd[:, :, None, None].expand(sd.shape[0], sd.shape[1], like.shape[2], like.shape[3])
    return sd


def _support(changed: torch.Tensor) -> _Win:
    """The smallest batch-uniform window size holding every row's support (``changed``, (N, C, H, W) booleans),
    placed at each row's support (shifted inside the map)."""
    N, _, H, W = changed.shape
    nz = changed.any(dim=1)
    rows, cols = nz.any(dim=2), nz.any(dim=1)
    ar_h, ar_w = torch.arange(H, device=changed.device), torch.arange(W, device=changed.device)
    y0 = torch.where(rows, ar_h, H).amin(dim=1)
    y1 = torch.where(rows, ar_h, -1).amax(dim=1)
    x0 = torch.where(cols, ar_w, W).amin(dim=1)
    x1 = torch.where(cols, ar_w, -1).amax(dim=1)
    empty = y1 < 0
    y0, y1 = torch.where(empty, 0, y0), torch.where(empty, 0, y1)
    x0, x1 = torch.where(empty, 0, x0), torch.where(empty, 0, x1)
    h, w = int((y1 - y0).max()) + 1, int((x1 - x0).max()) + 1
    return _Win(y0.clamp(max=H - h), x0.clamp(max=W - w), h, w, H, W)


def _windows(t: torch.Tensor, ay: _Axis, ax: _Axis) -> torch.Tensor:
    """The pooling windows of a patch (N, C, h, w): (N, C, ho, wo, ky * kx), stride and dilation applied."""
    v = t.unfold(2, ay.span, ay.s).unfold(3, ax.span, ax.s)[..., :: ay.d, :: ax.d]
    return v.reshape(v.shape[:4] + (-1,))


def _reach_conv(x: torch.Tensor, Wt: torch.Tensor, groups: int, dil: tuple[int, int],
                mats: torch.Tensor | None) -> torch.Tensor:
    r"""Stride-1 convolution of a window x (N, Cin, h, w) onto its whole reach, (N, Cout, h + d(k-1), w + ...):
    :math:`y_{o, q + d(k-1-\kappa)} \mathrel{+}= \sum_i W_{o,i,\kappa} x_{i,q}`. In float64 with one group (no fast
    transposed convolution on the CPU) k² matrix products with ``mats`` (kh, kw, Cin, Cout) added at their shifts
    (channels last), otherwise the transposed convolution with the transposed-flipped kernel ``Wt``."""
    if x.dtype != torch.float64 or mats is None:
        return F.conv_transpose2d(x, Wt, None, 1, 0, 0, groups, dil)
    n, c, h, w = x.shape
    kh, kw, _, co = mats.shape
    xf = x.permute(0, 2, 3, 1).reshape(-1, c)
    out = x.new_zeros((n, h + dil[0] * (kh - 1), w + dil[1] * (kw - 1), co))
    for ky in range(kh):
        for kx in range(kw):
            oy, ox = dil[0] * (kh - 1 - ky), dil[1] * (kw - 1 - kx)
            out[:, oy : oy + h, ox : ox + w] += (xf @ mats[ky, kx]).reshape(n, h, w, co)
    return out.permute(0, 3, 1, 2)


def _own_index(win: _Win | None, forced: torch.Tensor, node_shape: torch.Size) -> tuple[torch.Tensor, ...]:
    """Index (rows, channel, y, x) of each row's own neuron (flat index ``forced`` of the layer output) in a window
    tensor, for the rows where it lies in the window (rows, flat for a flat value)."""
    N = len(forced)
    rows = torch.arange(N, device=forced.device)
    if win is None:
        return rows, forced
    hw = node_shape[1] * node_shape[2]
    c, yx = forced // hw, forced % hw
    y, x = yx // node_shape[2] - win.oy, yx % node_shape[2] - win.ox
    ok = (y >= 0) & (y < win.h) & (x >= 0) & (x < win.w)
    return rows[ok], c[ok], y[ok], x[ok]


def _add(parts: list[_Change], u: float) -> _Change | None:
    """The change of a sum, on the union of its parts' windows (each part is zero outside its own)."""
    if len(parts) < 2:
        return parts[0] if parts else None
    p, q = parts
    if p.win is not None and q.win is not None and not p.win.same(q.win):
        both = p.win.union(q.win)
        p, q = _Change(_shift(p.d, p.win, both), p.sd, both), _Change(_shift(q.d, q.win, both), q.sd, both)
    d = p.d + q.d
    return _Change(d, p.sd + q.sd + u * (_channel_max(d) if p.win is not None else d.double().abs()), p.win)


def _convert(t: torch.Tensor, src: _Win | None, dst: _Win | None) -> torch.Tensor:
    """A gradient given on window ``src`` (None: the whole value) re-cut to window ``dst``."""
    if dst is None:
        return t if src is None else _place(t, src)
    if src is None:
        return _crop(t, _ar(len(t), t), dst.oy, dst.ox, dst.h, dst.w)
    return _shift(t, src, dst)


def _pool_area(m: nn.Module, x: torch.Tensor) -> float:
    """The largest number of entries an average pool sums for one output."""
    if isinstance(m, nn.AdaptiveAvgPool2d):
        out = m.output_size if isinstance(m.output_size, tuple) else (m.output_size, m.output_size)
        return float(np.prod([-(-size // (o or size)) + 1 for size, o in zip(x.shape[2:], out)]))
    return float(np.prod(_pair(m.kernel_size)))


__all__ = ["ConeContext", "neuron_id"]

r"""Batched train-free root points and their region verdicts on torch models (float32/float64, CPU or GPU).

Semantics are the exact engine's (:mod:`dtd_formal.dtd`, :mod:`dtd_formal.regions`), in floats:

- Layer l (1..L, the explained Linear/Conv layers in execution order, BatchNorm folded) has input
  :math:`a = a_{l-1}` and output :math:`z`; a neuron is an output index: an int for Linear, (channel, y, x) for
  Conv2d, (channel, x) for Conv1d. Relevant neurons: :math:`z_j > 0` when the layer's output feeds a ReLU
  ("inactive" otherwise); in the model's last layer only the explained output ("not explained").
- Root: :math:`\tilde a^{(j)} = a - t_j v_j` from the rule's own ``root_step`` (run over
  :class:`~dtd_formal.torch.ops.LazyOps`; row j of the separable direction matrix is the transposed operator on a
  one-hot), :math:`t_j = z_j / (w_j \cdot v_j)` ("true") or :math:`R^l_j / (w_j \cdot v_j)` ("paper-code", with
  :math:`R^l` from :func:`dtd_formal.torch.lrp` with the same rule). Zero denominators are skipped.
- The upper network is the model as a function of :math:`a_{l-1}` (every node that depends on it is recomputed,
  the others are held at their values for the input), with neuron j held linear. ``leaves_pattern``: some ReLU
  pre-activation downstream has strictly opposite signs at the input and at the root (neuron j excluded), or a
  max-pool's winner is strictly beaten on both sides (each point's winner loses strictly at the other point);
  ``scope="layer"`` looks only at the ReLU right after layer l. ``flipped`` lists (label, neuron): the label is the
  layer number for a ReLU right after a layer, else the fx node name.
- ``leaves_affine_map``: the closest patterns (zeros and ties resolved to the other point's phase, zeros on both
  sides inactive, j active) define two affine maps of :math:`f_c`; they differ when the gradients w.r.t.
  :math:`a_{l-1}` or the values at the root differ by more than ``tol`` relative to their size (default
  :math:`10^{-9}` in float64, :math:`10^{-4}` in float32). This is a float decision: it can only be wrong when two
  maps differ by less than the tolerance. Checked only when some neuron flips (otherwise the maps are equal).
- ``root_in_domain``: the rule's domain, checked on the float root (NonNegative: root >= 0, Box: bounds).

Signs are decided in floats: they agree with the exact engine away from hyperplanes (the tests compare on random
nets in float64). Conv2d layers are classified incrementally (:mod:`dtd_formal.torch.root_cone`): the upper network
is re-evaluated only on the window each root's change reaches, over float64 activations of the input, and a sign or
winner is taken only with a certified margin; rows with a close call, and every other layer, go through the plain
forward pass of the whole upper network (in float64 for a float32 model's close calls). On random float64 nets the
records equal the plain forward pass's (tests/test_torch_root_regions.py). Row j of the direction matrix of a Conv2d
layer is written on j's receptive field (the same values as the transposed operator on a one-hot).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..regions import RootRegionRecord, RootRegionReport
from ..rules.base import Rule
from ..rules.domains import Box, NonNegative, Unbounded
from .graph import Handlers, LayerInfo, Plan, build_plan, run
from .lrp import lrp, output_selector
from .ops import ConvOp, LazyOps
from .root_cone import ConeContext, neuron_id

NeuronId = Any  # int (Linear) or tuple (Conv)
Flip = tuple[Any, NeuronId]


@dataclass
class TorchRoots:
    """Roots of one layer for a batch: row r is the root of ``neurons[r]`` for input ``input_index[r]``."""

    layer: int
    layer_input: torch.Tensor
    input_index: torch.Tensor
    neurons: list[NeuronId]
    points: torch.Tensor
    steps: torch.Tensor
    own_preactivation: torch.Tensor
    skipped: dict[str, int]
    rule: Rule
    definition: str
    output: torch.Tensor
    flat_neurons: torch.Tensor = field(repr=False, default=None)  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.neurons)

    def point(self, input_index: int, neuron: NeuronId) -> torch.Tensor:
        """The root of ``neuron`` for input ``input_index``."""
        for r, (i, j) in enumerate(zip(self.input_index.tolist(), self.neurons)):
            if i == input_index and j == neuron:
                return self.points[r]
        raise KeyError((input_index, neuron))


class TorchRootRegionRecord(RootRegionRecord):
    """A :class:`~dtd_formal.regions.RootRegionRecord` with float values and conv-shaped roots."""

    def to_json(self) -> dict[str, Any]:
        return {
            "input_index": self.input_index,
            "layer": self.layer,
            "neuron": list(self.neuron) if isinstance(self.neuron, tuple) else self.neuron,
            "root": np.asarray(self.root_value).tolist(),
            "step": float(self.step),
            "own_preactivation": float(self.own_preactivation),
            "leaves_pattern": self.leaves_pattern,
            "leaves_affine_map": self.leaves_affine_map,
            "flipped": [[p[0], list(p[1]) if isinstance(p[1], tuple) else p[1]] for p in self.flipped],
            "root_in_domain": self.root_in_domain,
        }


def _neuron_flat(neuron: NeuronId, shape: tuple[int, ...], what: str) -> int:
    idx = (neuron,) if isinstance(neuron, (int, np.integer)) else tuple(neuron)
    if len(idx) != len(shape) or any(not 0 <= v < s for v, s in zip(idx, shape)):
        raise InputError(f"{what}: neuron {neuron!r} does not exist in an output of shape {shape}")
    return int(np.ravel_multi_index(idx, shape))


def _input_node(plan: Plan, info: LayerInfo) -> str:
    node = next(n for n in plan.nodes if n.name == info.node)
    return node.args[0].name


def _candidates(info: LayerInfo, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Boolean (B, n_out) mask of relevant neurons and masks of the skip reasons."""
    B = z.shape[0]
    zf = z.reshape(B, -1)
    keep = torch.ones_like(zf, dtype=torch.bool)
    reasons: dict[str, torch.Tensor] = {}
    if info.is_last:
        explained = torch.zeros_like(keep)
        explained[torch.arange(B, device=z.device), c] = True
        reasons["not explained"] = ~explained
        keep &= explained
    if info.relu_after:
        inactive = keep & ~(zf > 0)
        reasons["inactive"] = inactive
        keep &= zf > 0
    return keep, reasons


@dataclass
class _ConvPatch:
    r"""The receptive fields of a batch of Conv2d output neurons: row r's entries (channel ``ch``, position
    ``iy``, ``ix``) of the layer input that neuron ``flat[r]`` reads, (n, C/groups, kh, kw) each (clamped into the
    map), and ``ok``, where the position lies inside the map (not in the padding)."""

    ch: torch.Tensor
    iy: torch.Tensor
    ix: torch.Tensor
    ok: torch.Tensor
    out_channel: torch.Tensor

    @classmethod
    def of(cls, op: ConvOp, in_shape: tuple[int, ...], weight: torch.Tensor, flat: torch.Tensor,
           out_shape: tuple[int, ...]) -> _ConvPatch:
        (_, H, W), (Cout, Ho, Wo) = in_shape, out_shape
        cin, kh, kw = weight.shape[1:]
        c, y, x = flat // (Ho * Wo), (flat // Wo) % Ho, flat % Wo
        dev = flat.device
        ch = ((c // (Cout // op.groups)) * cin)[:, None, None, None] + torch.arange(cin, device=dev)[None, :, None, None]
        iy = (y * op.stride[0] - op.padding[0])[:, None, None, None] + \
            op.dilation[0] * torch.arange(kh, device=dev)[None, None, :, None]
        ix = (x * op.stride[1] - op.padding[1])[:, None, None, None] + \
            op.dilation[1] * torch.arange(kw, device=dev)[None, None, None, :]
        shape = (len(flat), cin, kh, kw)
        ok = ((iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)).expand(shape)
        return cls(ch.expand(shape), iy.clamp(0, H - 1).expand(shape), ix.clamp(0, W - 1).expand(shape), ok, c)

    def gather(self, t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``t[rows[r], ch, iy, ix]`` on every patch entry of row r (t a (B, C, H, W) value)."""
        return t[rows[:, None, None, None].expand(self.ch.shape), self.ch, self.iy, self.ix]

    def values(self, ops: LazyOps, sep: Any, samples: torch.Tensor) -> torch.Tensor:
        r"""Row r of a separable matrix on its patch, :math:`e_j^\top C(a_i) = \sum_k c_k\, g_k(a_i) \odot
        \mathcal{L}^\top(e_j; f_k(W))`: :math:`\mathcal{L}^\top(e_j; F)` is the kernel :math:`F_{c_j}` on j's
        receptive field (``LazyOps.rows`` gets the same values from a transposed convolution of a one-hot map, a
        whole convolution per row; the row is zero off the patch). Same products and sums, so the same values."""
        a = ops.a_t
        total: torch.Tensor | None = None
        for coef, f, g in ops._to_sep(sep).terms:
            val = f.t[self.out_channel]  # (n, C / groups, kh, kw)
            if g is not None:
                if g.t.shape[0] != a.shape[0] or g.t.dim() != a.dim():  # broadcast over the batch
                    gt = torch.broadcast_to(g.t, (1,) + tuple(a.shape[1:]))
                    val = val * self.gather(gt, torch.zeros_like(self.out_channel))
                else:
                    val = val * self.gather(g.t, samples)
            val = val if coef == 1 else coef * val
            total = val if total is None else total + val
        assert total is not None, "a separable matrix has at least one term"
        return total


def roots(
    model: nn.Module,
    x: torch.Tensor,
    rule: Rule,
    layer: int | str = 1,
    neurons: Iterable[NeuronId] | None = None,
    output: Any = None,
    definition: str = "true",
    sample: int | None = None,
    seed: int = 0,
    chunk: int = 256,
    _plan: Plan | None = None,
    _env: dict[str, Any] | None = None,
) -> TorchRoots:
    r"""Train-free root points of the relevant neurons of ``layer`` for every input of the batch ``x``.

    Parameters
    ----------
    neurons : iterable, optional
        Neuron ids to consider (default: all relevant neurons); ids that are not relevant are skipped with a reason.
    sample : int, optional
        Keep at most this many relevant neurons per input, drawn uniformly (``seed``).
    chunk : int
        Roots built per transposed-operator call.
    """
    if not isinstance(rule, Rule):
        raise InputError(f"roots need a single Rule, got {type(rule).__name__}")
    if not rule.has_root:
        raise InputError(f"{rule.spec()} is not a root-point rule: it has no root points")
    if definition not in ("true", "paper-code"):
        raise InputError(f"root definition must be 'true' or 'paper-code', got {definition!r}")
    plan = _plan or build_plan(model)
    info = plan.layer(layer)
    if _env is None:
        env: dict[str, Any] = {}
        with torch.no_grad():
            y = run(plan, x.detach(), env_out=env)
    else:
        env = _env
        y = env[next(n for n in plan.nodes if n.op == "output").args[0].name]
    c = output_selector(y, output)
    a = env[_input_node(plan, info)]
    z = env[info.out_node]
    B = x.shape[0]
    out_shape = tuple(z.shape[1:])
    keep, reasons = _candidates(info, z, c)
    skipped: dict[str, int] = {}
    if neurons is not None:
        chosen = torch.zeros_like(keep)
        flat = [_neuron_flat(j, out_shape, f"layer {info.index}") for j in neurons]
        chosen[:, flat] = True
        for name, mask in reasons.items():
            skipped[name] = int((mask & chosen).sum())
        keep &= chosen
    else:
        for name, mask in reasons.items():
            skipped[name] = int(mask.sum())
    R = None
    if definition == "paper-code":
        per_layer: dict[int, torch.Tensor] = {}
        lrp(model, x, rule, output=c, per_layer=per_layer, activation="gate")
        R = per_layer[info.index]
    with torch.no_grad():
        ops = LazyOps(info.op, a, info.weight, info.bias)
        t, V, den = rule.root_step(ops, ops.a, ops.W, ops.b, None if R is None else ops.out(R), definition)
        den_f = den.t.reshape(B, -1)
        zero_den = keep & (den_f == 0)
        skipped["zero denominator"] = int(zero_den.sum())
        keep &= den_f != 0
        if sample is not None:
            gen = torch.Generator().manual_seed(seed)
            scores = torch.rand(keep.shape, generator=gen).to(keep.device)
            scores = torch.where(keep, scores, torch.full_like(scores, 2.0))
            order = scores.argsort(dim=1)[:, :sample]
            sampled = torch.zeros_like(keep)
            sampled.scatter_(1, order, True)
            keep &= sampled
        rows_i, rows_j = torch.nonzero(keep, as_tuple=True)
        n = len(rows_i)
        points = torch.empty((n,) + tuple(a.shape[1:]), dtype=a.dtype, device=a.device)
        own = torch.empty(n, dtype=a.dtype, device=a.device)
        t_f = t.t.reshape(B, -1)
        steps = t_f[rows_i, rows_j]
        b_flat = info.bias
        local = isinstance(info.op, ConvOp) and info.op.dim == 2
        for s in range(0, n, chunk):
            ii, jj = rows_i[s : s + chunk], rows_j[s : s + chunk]
            step = steps[s : s + chunk].reshape((-1,) + (1,) * (a.dim() - 1))
            channel = jj // int(np.prod(out_shape[1:])) if len(out_shape) > 1 else jj
            if local:  # the rows vanish off the receptive field: the root is a there, exactly
                patch = _ConvPatch.of(info.op, tuple(a.shape[1:]), info.weight, jj, out_shape)
                Vp, Wp = patch.values(ops, V, ii), patch.values(ops, ops.W, ii)
                pts = points[s : s + chunk]
                torch.index_select(a, 0, ii, out=pts)
                on = patch.ok
                local_rows = torch.arange(len(ii), device=a.device)[:, None, None, None].expand(on.shape)
                where = (local_rows[on], patch.ch[on], patch.iy[on], patch.ix[on])
                pts[where] = pts[where] - (step * Vp)[on]
                own[s : s + chunk] = (Wp * patch.gather(pts, torch.arange(len(ii), device=a.device))) \
                    .masked_fill(~on, 0).reshape(len(ii), -1).sum(dim=1) + b_flat[channel]
                continue
            onehot = torch.zeros((len(ii), int(np.prod(out_shape))), dtype=a.dtype, device=a.device)
            onehot[torch.arange(len(ii), device=a.device), jj] = 1
            onehot = onehot.reshape((len(ii),) + out_shape)
            Vrows, Wrows = ops.rows(V, onehot, ii), ops.rows(ops.W, onehot, ii)
            pts = a[ii] - step * Vrows
            own[s : s + chunk] = (Wrows * pts).reshape(len(ii), -1).sum(dim=1) + b_flat[channel]
            points[s : s + chunk] = pts
        ops.release()
    ids = [neuron_id(j, out_shape) for j in rows_j.tolist()]
    return TorchRoots(info.index, a, rows_i, ids, points, steps, own, skipped, rule, definition, c, rows_j)


# ---------------------------------------------------------------------------------------------------- regions
class _Recorder:
    """Region-run handlers: record ReLU signs and max-pool winners; optionally hold neuron j linear or fix masks."""

    def __init__(self, forced_node: str | None = None, forced: torch.Tensor | None = None,
                 masks: dict[str, torch.Tensor] | None = None, winners: dict[str, torch.Tensor] | None = None) -> None:
        self.forced_node, self.forced = forced_node, forced
        self.masks, self.winners = masks, winners
        self.signs: dict[str, torch.Tensor] = {}
        self.pools: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # node -> (input, winners, max)

    def relu(self, name: str, z: torch.Tensor) -> torch.Tensor:
        if self.masks is not None:
            return z * self.masks[name] if name in self.masks else F.relu(z)
        self.signs[name] = torch.sign(z).to(torch.int8)
        keep = z > 0
        if name == self.forced_node and self.forced is not None:
            flat = keep.reshape(keep.shape[0], -1).clone()
            flat[torch.arange(flat.shape[0], device=flat.device), self.forced] = True
            keep = flat.reshape(keep.shape)
        return torch.where(keep, z, torch.zeros_like(z))

    def maxpool(self, name: str, m: nn.Module, a: torch.Tensor) -> torch.Tensor:
        pool = F.max_pool1d if isinstance(m, nn.MaxPool1d) else F.max_pool2d
        if self.winners is not None and name in self.winners:
            idx = self.winners[name]
            return a.flatten(2).gather(2, idx.flatten(2)).reshape(idx.shape)
        out, idx = pool(a, m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode, return_indices=True)
        self.pools[name] = (a, idx, out)
        return out

    def handlers(self, layer: Callable[[LayerInfo, torch.Tensor], torch.Tensor] | None = None) -> Handlers:
        """The recording handlers; ``layer`` evaluates the Linear/Conv layers (default: their own parameters)."""
        return Handlers(layer=layer, relu=self.relu, maxpool=self.maxpool)


def _gather(a: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return a.flatten(2).gather(2, idx.flatten(2)).reshape(idx.shape)


def _in_domain(rule: Rule, pts: torch.Tensor) -> list[bool]:
    dom = rule.domain
    if len(pts) == 0:
        return []
    flat = pts.reshape(pts.shape[0], -1)
    if isinstance(dom, Unbounded):
        return [True] * len(pts)
    if isinstance(dom, NonNegative):
        return (flat >= 0).all(dim=1).tolist()
    if isinstance(dom, Box):
        def bound(v: np.ndarray) -> torch.Tensor:
            t = torch.tensor([float(e) for e in np.ravel(v)], dtype=pts.dtype, device=pts.device)
            return t.reshape(v.shape) if v.ndim else t.reshape(())

        low, high = bound(dom.low), bound(dom.high)
        return ((pts >= low) & (pts <= high)).reshape(len(pts), -1).all(dim=1).tolist()
    return [bool(dom.contains(p.detach().cpu().numpy())) for p in pts]


def root_regions(
    model: nn.Module,
    x: torch.Tensor,
    rule: Rule,
    layers: int | str | Iterable[int | str] | None = None,
    neurons: Iterable[NeuronId] | None = None,
    output: Any = None,
    definition: str = "true",
    scope: str = "upper",
    sample: int | None = None,
    seed: int = 0,
    affine_map: bool | None = None,
    tol: float | None = None,
    keep_roots: bool = True,
    chunk: int = 256,
    first_flip: bool = False,
    progress: bool = False,
    _engine: str = "incremental",
) -> RootRegionReport:
    """Region verdict of the root of every relevant (or chosen, or sampled) neuron of ``layers`` for the batch x.

    Returns a :class:`~dtd_formal.regions.RootRegionReport` of :class:`TorchRootRegionRecord` (module docstring
    for the semantics). ``affine_map=False`` skips the affine-map decision (reported False); ``keep_roots=False``
    stores no root values (for throughput runs); ``chunk`` bounds the roots per plain forward pass (fewer where
    the upper network's values would exceed :data:`PASS_BYTES`). Without ``neurons`` and ``sample``, a layer
    whose roots would hold more than :data:`ROOT_BYTES` of points is checked in groups of neurons (the same
    records, in the same order, and the same skip counts).

    ``progress=True`` shows a progress bar over the roots (tqdm, on stderr; its total grows as each group of
    neurons' roots is computed: a whole VGG16 layer takes minutes on a CPU).

    ``first_flip=True`` is for the share of roots that leave the pattern: ``leaves_pattern`` is decided as
    always, but the incremental evaluation stops a root at the first node where a flip is certain, so ``flipped``
    may list only a non-empty subset of the flips (those of one node; rows the plain pass decides list them all),
    and the affine map is not decided (``affine_map`` defaults to False then; True is refused).

    Conv2d layers are evaluated incrementally (:mod:`dtd_formal.torch.root_cone`: only the cone the root's change
    reaches, certified margins, the undecided rows by the plain full forward pass in float64); ``_engine="full"``
    runs the plain full forward pass in the model's dtype for every root (the reference the tests and benchmarks
    compare with).
    """
    if scope not in ("layer", "upper"):
        raise InputError(f"scope must be 'layer' or 'upper', got {scope!r}")
    if _engine not in ("incremental", "full"):
        raise InputError(f"engine must be 'incremental' or 'full', got {_engine!r}")
    if affine_map is None:
        affine_map = not first_flip
    elif affine_map and first_flip:
        raise InputError("first_flip=True decides the pattern only: the affine map needs every flip "
                         "(pass affine_map=False, or first_flip=False)")
    plan = build_plan(model)
    if layers is None:
        layer_list = [i.index for i in plan.layers]
    elif isinstance(layers, (int, str)):
        layer_list = [plan.layer(layers).index]
    else:
        layer_list = [plan.layer(v).index for v in layers]
    dtype = x.dtype
    tol = tol if tol is not None else (1e-9 if dtype == torch.float64 else 1e-4)
    B = x.shape[0]
    xd = x.detach()
    base_env: dict[str, Any] = {}
    base_rec = _Recorder()
    with torch.no_grad():
        run(plan, xd, base_rec.handlers(), env_out=base_env)
    records: list[RootRegionRecord] = []
    skipped: dict[int, dict[str, int]] = {}
    c_all: torch.Tensor | None = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=0, desc="root regions", unit="root")
    try:
        for l in layer_list:
            info = plan.layer(l)
            start, down, relus, pools, scope_nodes = _upper_nodes(plan, info, scope)
            rows_per_pass = _rows_per_pass(base_env, down, chunk)
            groups = _neuron_groups(base_env[start], base_env[info.out_node]) \
                if neurons is None and sample is None else [neurons]
            counts: dict[str, int] = {}
            layer_records: list[RootRegionRecord] = []
            for group in groups:
                rts = roots(model, xd, rule, l, group, output, definition, sample, seed, chunk, _plan=plan,
                            _env=base_env)
                c_all = rts.output
                if bar is not None:
                    bar.total += len(rts)
                    bar.refresh()
                for k, v in rts.skipped.items():
                    counts[k] = counts.get(k, 0) + v
                flips, leaves_map = _group_verdicts(plan, info, rts, base_env, base_rec, start, relus, pools,
                                                    scope_nodes, affine_map, tol, rows_per_pass, first_flip, _engine)
                layer_records.extend(_records(info, rts, flips, leaves_map, keep_roots, _in_domain(rule, rts.points)))
                if bar is not None:
                    bar.update(len(rts))
            if len(groups) > 1:  # the order of one call: by input, then by neuron (tuple order is flat order)
                layer_records.sort(key=lambda r: (r.input_index, r.neuron))
            skipped[l] = {k: v for k, v in counts.items() if v}
            records.extend(layer_records)
    finally:
        if bar is not None:
            bar.close()
    out_label: Any = int(c_all[0]) if c_all is not None and bool((c_all == c_all[0]).all()) else (
        c_all.tolist() if c_all is not None else output)
    return RootRegionReport(records, rule, scope, definition, out_label, layer_list, B, skipped,
                            arithmetic=f"torch-{str(dtype).replace('torch.', '')}")


def _group_verdicts(plan: Plan, info: LayerInfo, rts: TorchRoots, base_env: dict[str, Any], base_rec: _Recorder,
                    start: str, relus: list[str], pools: list[str], scope_nodes: list[str], affine_map: bool,
                    tol: float, rows_per_pass: int, first_flip: bool, engine: str
                    ) -> tuple[list[list[Flip]], torch.Tensor]:
    """Flips and affine-map verdicts of the roots ``rts`` of one group of neurons: by the incremental evaluation
    where it applies (``engine="incremental"``, a conv layer), else by the plain forward pass, ``rows_per_pass``
    roots at a time."""
    if engine == "incremental" and len(rts) and ConeContext.eligible(plan, info, start, base_env):
        with torch.no_grad():
            return _verdicts_incremental(plan, info, rts, base_env, base_rec, start, relus, pools, scope_nodes,
                                         affine_map, tol, rows_per_pass, first_flip)
    flips: list[list[Flip]] = []
    leaves_map = torch.zeros(len(rts), dtype=torch.bool, device=rts.points.device)
    for s0 in range(0, len(rts), rows_per_pass):
        rows = torch.arange(s0, min(s0 + rows_per_pass, len(rts)), device=rts.points.device)
        f, m = _verdicts_full(plan, info, rts, rows, base_env, base_rec, start, relus, pools, scope_nodes, affine_map,
                              tol)
        flips.extend(f)
        leaves_map[rows] = m
    return flips, leaves_map


#: bytes of root points one call of :func:`roots` may hold when every neuron of a layer is checked: the neurons are
#: split into groups below it (a VGG16 conv-11 root is 100k floats; a whole layer, 2 inputs, would be 40 GB)
ROOT_BYTES = 2**30


def _neuron_groups(a: torch.Tensor, z: torch.Tensor) -> list[list[NeuronId] | None]:
    """All neurons of a layer (input a, output z) as one group (``[None]``), or, where a root per neuron and input
    of the batch would hold more than :data:`ROOT_BYTES`, as consecutive groups of neuron ids that stay below it
    (every id once: their skip counts add up to the whole layer's)."""
    out_shape = tuple(z.shape[1:])
    n_out = int(np.prod(out_shape))
    per_neuron = a.shape[0] * a[0].numel() * a.element_size()
    if n_out * per_neuron <= ROOT_BYTES:
        return [None]
    size = max(1, ROOT_BYTES // per_neuron)
    return [[neuron_id(j, out_shape) for j in range(g0, min(g0 + size, n_out))] for g0 in range(0, n_out, size)]


def _upper_nodes(plan: Plan, info: LayerInfo, scope: str) -> tuple[str, set[str], list[str], list[str], list[str]]:
    """The node holding layer ``info``'s input, the nodes strictly above it, their ReLU and max-pool nodes (in plan
    order), and the nodes whose flips count in ``scope`` ("layer": the layer's own ReLU; "upper": every ReLU and
    max pool above)."""
    start = _input_node(plan, info)
    down = plan.downstream(start) - {start}
    relus = [n.name for n in plan.nodes if plan.handler[n.name] == "relu" and n.name in down]
    pools = [n.name for n in plan.nodes if plan.handler[n.name] == "maxpool" and n.name in down]
    scope_nodes = [n for n in ([info.relu_node] if scope == "layer" else relus + pools) if n is not None]
    return start, down, relus, pools, scope_nodes


#: bytes of upper-network values one plain forward pass over a batch of roots may hold (the pass keeps every
#: node's value, and the affine-map test runs 2 rows per root with gradients): the batch shrinks to fit
PASS_BYTES = 2 * 2**30


def _rows_per_pass(base_env: dict[str, Any], down: set[str], chunk: int) -> int:
    r"""Roots per plain forward pass: ``chunk``, or fewer where :math:`4 \times` (rows) :math:`\times` (bytes of
    the upper network's values for one input, in float64) exceeds :data:`PASS_BYTES` (a residual net at 64 px
    holds ~30 MB of values per root: 256 roots at once took more than 20 GB)."""
    per_row = sum(v[0].numel() * 8 for k, v in base_env.items()
                  if k in down and isinstance(v, torch.Tensor) and v.dim() > 0)
    return max(1, min(chunk, PASS_BYTES // max(1, 4 * per_row)))


def _records(info: LayerInfo, rts: TorchRoots, flips: list[list[Flip]], leaves_map: torch.Tensor, keep_roots: bool,
             in_domain: list[bool]) -> list[RootRegionRecord]:
    """One record per root of ``rts`` from its flipped neurons and affine-map verdict."""
    samp_l, own_l, step_l = rts.input_index.tolist(), rts.own_preactivation.tolist(), rts.steps.tolist()
    map_l = leaves_map.tolist()
    return [TorchRootRegionRecord(
        input_index=samp_l[r],
        layer=info.index,
        neuron=rts.neurons[r],
        root_value=rts.points[r].detach().cpu().numpy() if keep_roots else np.empty(0),
        own_preactivation=own_l[r],
        leaves_pattern=bool(flips[r]),
        leaves_affine_map=bool(map_l[r]),
        flipped=flips[r],
        root_in_domain=bool(in_domain[r]),
        step=step_l[r],
    ) for r in range(len(rts))]


def _frontier(plan: Plan, start: str) -> set[str]:
    """Nodes the upper network of ``start`` reads without depending on it (held at their values for the input)."""
    down = plan.downstream(start)
    return {a.name for n in plan.nodes if n.name in down for a in n.all_input_nodes} - down


class Float64Weights:
    """Float64 copies of a float model's layer weights and biases, made on first use and kept (``w[index]``).

    :meth:`forward` evaluates a layer in float64; a Linear layer whose copy does not exist yet is multiplied block
    of rows by block through one reused buffer instead: VGG16's classifier would need a 1 GB copy (0.3-0.7 s,
    mostly page faults) that the one float64 forward pass at the inputs reads once and a pattern run rarely again.
    """

    BLOCK = 2**22  #: weight entries per block (32 MB of float64)

    def __init__(self, layers: Iterable[LayerInfo]) -> None:
        self.layers = {li.index: li for li in layers}
        self._copies: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def __contains__(self, index: object) -> bool:
        return index in self.layers

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if index not in self._copies:
            li = self.layers[index]
            self._copies[index] = (li.weight.double(), None if li.bias is None else li.bias.double())
        return self._copies[index]

    def forward(self, li: LayerInfo, a: torch.Tensor) -> torch.Tensor:
        r"""The layer at the float64 input a with float64 weights (exact copies of the float ones): for a Linear
        layer without a copy, :math:`y_{\cdot, r_0:r_1} = a W_{r_0:r_1}^\top + b_{r_0:r_1}` per block of rows."""
        W = li.weight
        if li.index in self._copies or isinstance(li.op, ConvOp) or W.dim() != 2 or W.numel() <= self.BLOCK \
                or (torch.is_grad_enabled() and a.requires_grad):  # blocks are written in place: no gradient
            return li.op.forward(a, *self[li.index])
        rows = max(1, self.BLOCK // W.shape[1])
        buf = torch.empty((rows, W.shape[1]), dtype=torch.float64, device=W.device)
        b64 = None if li.bias is None else li.bias.double()
        out = torch.empty(tuple(a.shape[:-1]) + (W.shape[0],), dtype=torch.float64, device=a.device)
        for r0 in range(0, W.shape[0], rows):
            blk = buf[: min(rows, W.shape[0] - r0)]
            blk.copy_(W[r0 : r0 + len(blk)])
            out[..., r0 : r0 + len(blk)] = li.op.forward(a, blk, None if b64 is None else b64[r0 : r0 + len(blk)])
        return out


def _float64_base(plan: Plan, start: str, base_env: dict[str, Any], base_rec: _Recorder) -> tuple[
        dict[str, Any], _Recorder, Callable[[LayerInfo, torch.Tensor], torch.Tensor] | None,
        Float64Weights | None]:
    """The upper network of ``start`` at the inputs in float64: values, recorded signs and winners, the float64
    layer function and weights (the model's own forward pass and None when the model is float64)."""
    if base_env[start].dtype == torch.float64:
        return base_env, base_rec, None, None
    down = plan.downstream(start)
    w64 = Float64Weights([li for li in plan.layers if li.out_node in down])
    layer64 = w64.forward
    a64 = base_env[start].double()
    frontier = {k: base_env[k].double() if isinstance(base_env[k], torch.Tensor) and base_env[k].is_floating_point()
                else base_env[k] for k in _frontier(plan, start)}
    env64: dict[str, Any] = {}
    rec64 = _Recorder()
    run(plan, a64, rec64.handlers(layer64), env_out=env64, start=(start, a64), base_env=frontier)
    return env64, rec64, layer64, w64


def float64_full_verdicts(model: nn.Module, x: torch.Tensor, rule: Rule, layer: int, scope: str = "upper",
                          affine_map: bool = True, tol: float = 1e-4, **roots_kwargs: Any
                          ) -> tuple[list[list[Flip]], list[bool]]:
    """Flipped neurons and affine-map verdicts of the roots :func:`roots` gives for ``layer`` (``roots_kwargs``:
    output, definition, neurons, sample, seed) by the plain full forward pass of the upper network in float64, at
    the model's own (float32) roots and layer input: the reference the incremental evaluation of a float32 model is
    compared with (tests, benchmarks/bench_torch_vgg16.py)."""
    plan = build_plan(model)
    env: dict[str, Any] = {}
    rec = _Recorder()
    with torch.no_grad():
        run(plan, x, rec.handlers(), env_out=env)
    rts = roots(model, x, rule, layer=layer, _plan=plan, _env=env, **roots_kwargs)
    if not len(rts):
        return [], []
    info = plan.layer(layer)
    start, down, relus, pools, scope_nodes = _upper_nodes(plan, info, scope)
    env64, rec64, layer64, _ = _float64_base(plan, start, env, rec)
    flips: list[list[Flip]] = []
    maps: list[bool] = []
    step = _rows_per_pass(env64, down, 256)  # the plain pass holds every value of the upper network per row
    for s0 in range(0, len(rts), step):
        rows = torch.arange(s0, min(s0 + step, len(rts)), device=rts.points.device)
        f, m = _verdicts_full(plan, info, rts, rows, env64, rec64, start, relus, pools, scope_nodes, affine_map, tol,
                              layer64, torch.float64)
        flips.extend(f)
        maps.extend(m.tolist() if affine_map else [False] * len(rows))
    return flips, maps


def _verdicts_incremental(plan: Plan, info: LayerInfo, rts: TorchRoots, base_env: dict[str, Any], base_rec: _Recorder,
                          start: str, relus: list[str], pools: list[str], scope_nodes: list[str], affine_map: bool,
                          tol: float, chunk: int, first_flip: bool = False) -> tuple[list[list[Flip]], torch.Tensor]:
    """Verdicts of every root of ``rts`` by :class:`~dtd_formal.torch.root_cone.ConeContext`, batched, and by the
    plain full forward pass in float64 for the rows it leaves undecided (``first_flip``: see :func:`root_regions`).

    The cached activations of the input are float64: the model's own when it is float64, else the upper network
    evaluated once in float64 at the (float) layer input, which is also the base of the float64 full forward."""
    down = plan.downstream(start)
    env64, rec64, layer64, w64 = _float64_base(plan, start, base_env, base_rec)
    base = {k: v for k, v in env64.items() if k in down}
    ctx = ConeContext(plan, info, start, base, {name: rec64.pools[name][1] for name in pools}, rts.output, base_env,
                      tol, w64, gradient=affine_map)
    n = len(rts)
    flips: list[list[Flip]] = [[] for _ in range(n)]
    leaves_map = torch.zeros(n, dtype=torch.bool, device=rts.points.device)
    step = max(1, min(chunk, 32))  # rows per incremental batch: its float64 window tensors stay small
    rest: list[torch.Tensor] = []
    for s0 in range(0, n, step):
        rows = torch.arange(s0, min(s0 + step, n), device=rts.points.device)
        f, m, undecided = ctx.classify(rts.points[rows], rts.input_index[rows], rts.flat_neurons[rows], scope_nodes,
                                       affine_map, first_flip)
        for r in torch.nonzero(~undecided, as_tuple=True)[0].tolist():
            flips[int(rows[r])] = f[r]
        leaves_map[rows[~undecided]] = m[~undecided]
        rest.append(rows[undecided])
    left = torch.cat(rest)
    for s0 in range(0, len(left), chunk):
        rows = left[s0 : s0 + chunk]
        f, m = _verdicts_full(plan, info, rts, rows, env64, rec64, start, relus, pools, scope_nodes, affine_map, tol,
                              layer64, torch.float64)
        for r, row in enumerate(rows.tolist()):
            flips[row] = f[r]
        leaves_map[rows] = m
    return flips, leaves_map


def _verdicts_full(plan: Plan, info: LayerInfo, rts: TorchRoots, rows: torch.Tensor, base_env: dict[str, Any],
                   base_rec: _Recorder, start: str, relus: list[str], pools: list[str], scope_nodes: list[str],
                   affine_map: bool, tol: float, layer: Callable[[LayerInfo, torch.Tensor], torch.Tensor] | None = None,
                   dtype: torch.dtype | None = None) -> tuple[list[list[Flip]], torch.Tensor]:
    """Flipped neurons and affine-map verdicts of the roots ``rows`` of ``rts`` by the plain forward pass of the
    whole upper network (row r reads input ``input_index[r]``); in ``dtype`` with the layer function ``layer``
    when given (the float64 evaluation of a float32 model), else in the model's own."""
    pts = rts.points[rows] if dtype is None else rts.points[rows].to(dtype)
    samp = rts.input_index[rows]
    N = len(rows)
    forced = rts.flat_neurons[rows]
    rec = _Recorder(info.relu_node, forced)
    with torch.no_grad():
        run(plan, pts, rec.handlers(layer), start=(start, pts), base_env=base_env, base_rows=samp)
    opposite: dict[str, torch.Tensor] = {}
    res_in: dict[str, torch.Tensor] = {}
    res_rt: dict[str, torch.Tensor] = {}
    ar = torch.arange(N, device=pts.device)
    for name in relus:
        s_in = base_rec.signs[name][samp].reshape(N, -1)
        s_rt = rec.signs[name].reshape(N, -1)
        opp = (s_in * s_rt) < 0
        r_in = torch.where(s_in != 0, s_in, s_rt)
        r_rt = torch.where(s_rt != 0, s_rt, s_in)
        r_in, r_rt = torch.where(r_in == 0, -1, r_in), torch.where(r_rt == 0, -1, r_rt)
        if name == info.relu_node:
            opp[ar, forced] = False
            r_in[ar, forced] = 1
            r_rt[ar, forced] = 1
        opposite[name], res_in[name], res_rt[name] = opp, r_in, r_rt
    win_in: dict[str, torch.Tensor] = {}
    win_rt: dict[str, torch.Tensor] = {}
    for name in pools:
        a_in, idx_in, max_in = (v[samp] for v in base_rec.pools[name])
        a_rt, idx_rt, max_rt = rec.pools[name]
        in_beaten = _gather(a_rt, idx_in) < max_rt  # the input's winner loses strictly at the root
        rt_beaten = _gather(a_in, idx_rt) < max_in  # and the root's winner strictly at the input
        strict = in_beaten & rt_beaten
        opposite[name] = strict.reshape(N, -1)
        common = torch.where(in_beaten, idx_rt, idx_in)  # a winner valid at both points when not strict
        win_in[name] = torch.where(strict, idx_in, common)
        win_rt[name] = torch.where(strict, idx_rt, common)
    any_flip = torch.zeros(N, dtype=torch.bool, device=pts.device)
    for opp in opposite.values():
        any_flip |= opp.any(dim=1)
    leaves_map = torch.zeros(N, dtype=torch.bool, device=pts.device)
    if affine_map and bool(any_flip.any()):
        differ = torch.zeros(N, dtype=torch.bool, device=pts.device)
        for name in relus:
            differ |= (res_in[name] != res_rt[name]).any(dim=1)
        for name in pools:
            differ |= (win_in[name] != win_rt[name]).reshape(N, -1).any(dim=1)
        todo = torch.nonzero(any_flip & differ, as_tuple=True)[0]
        if len(todo):
            leaves_map[todo] = _maps_differ(
                plan, pts[todo], samp[todo], start, base_env, rts.output[samp[todo]], relus,
                {k: v[todo] for k, v in res_in.items()}, {k: v[todo] for k, v in res_rt.items()},
                {k: v[todo] for k, v in win_in.items()}, {k: v[todo] for k, v in win_rt.items()}, base_rec, tol,
                layer)
    shapes = {name: tuple(base_rec.signs[name].shape[1:]) for name in relus}
    shapes.update({name: tuple(base_rec.pools[name][2].shape[1:]) for name in pools})
    flips: list[list[Flip]] = [[] for _ in range(N)]
    for name in scope_nodes:
        label = plan.relu_label.get(name, name)
        for r, k in torch.nonzero(opposite[name], as_tuple=False).tolist():
            flips[r].append((label, neuron_id(k, shapes[name])))
    return flips, leaves_map


def _maps_differ(plan: Plan, pts: torch.Tensor, samp: torch.Tensor, start: str, base_env: dict[str, Any],
                 c: torch.Tensor, relus: list[str], res_in: dict[str, torch.Tensor], res_rt: dict[str, torch.Tensor],
                 win_in: dict[str, torch.Tensor], win_rt: dict[str, torch.Tensor], base_rec: _Recorder,
                 tol: float, layer: Callable[[LayerInfo, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Whether the affine maps of f_c under the two resolved patterns differ (gradient and value at the root).

    Both patterns run in one batch of 2N rows (the first N with the input's resolved pattern); ``layer`` as in
    :func:`_verdicts_full`.
    """
    N = len(pts)
    masks = {name: torch.cat([res_in[name], res_rt[name]]).gt(0).to(pts.dtype).reshape(
        (2 * N,) + tuple(base_rec.signs[name].shape[1:])) for name in relus}
    winners = {name: torch.cat([win_in[name], win_rt[name]]) for name in win_in}
    rec = _Recorder(masks=masks, winners=winners)
    p = torch.cat([pts, pts]).detach().requires_grad_(True)
    rows2 = torch.cat([samp, samp])
    c2 = torch.cat([c, c])
    with torch.enable_grad():
        y = run(plan, p, rec.handlers(layer), start=(start, p), base_env=base_env, base_rows=rows2)
        f = y[torch.arange(2 * N, device=y.device), c2]
        (g,) = torch.autograd.grad(f.sum(), p)
    g = g.reshape(2 * N, -1).detach()
    f = f.detach()
    g1, g2, v1, v2 = g[:N], g[N:], f[:N], f[N:]
    gscale = torch.maximum(g1.abs().amax(dim=1), g2.abs().amax(dim=1))
    vscale = torch.maximum(v1.abs(), v2.abs()) + gscale * pts.reshape(N, -1).abs().amax(dim=1)
    gdiff = (g1 - g2).abs().amax(dim=1) > tol * gscale
    vdiff = (v1 - v2).abs() > tol * vscale
    return gdiff | vdiff


__all__ = ["TorchRootRegionRecord", "TorchRoots", "root_regions", "roots"]

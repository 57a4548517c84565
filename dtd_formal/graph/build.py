"""Building network graphs: :class:`GraphBuilder` adds operators one at a time (shapes inferred, exact weights),
the way the ONNX and torch loaders and the tests make graphs.

    g = GraphBuilder((1, 4, 4))
    h = g.conv(g.input, kernel, bias, pads=(1, 1, 1, 1))
    h = g.maxpool(g.relu(h), (2, 2))
    net = g.network(g.dense(g.flatten(h), W, b))
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..exact import to_fraction_array
from .network import GraphNetwork
from .operators import (Add, AvgPool, Concat, Conv, Dense, Gather, Input, MaxPool, Operator, Relu, Scale, size,
                        window_patches)


class GraphBuilder:
    """Adds operators in order; every method returns the new node's id (module docstring)."""

    def __init__(self, input_shape: Sequence[int], name: str = "input") -> None:
        shape = tuple(int(s) for s in input_shape)
        if not shape or any(s <= 0 for s in shape):
            raise InputError(f"input shape must be positive, got {shape}")
        self.nodes: list[Operator] = [Input(name, [], shape)]
        self.input = 0

    def shape(self, node: int) -> tuple[int, ...]:
        return self.nodes[node].shape

    def _add(self, op: Operator) -> int:
        self.nodes.append(op)
        return len(self.nodes) - 1

    def _name(self, kind: str, name: str | None) -> str:
        return name or f"{kind}{len(self.nodes)}"

    def dense(self, x: int, W: Any, b: Any, name: str | None = None) -> int:
        Wf, bf = to_fraction_array(W, "dense weight"), to_fraction_array(b, "dense bias")
        n_in = size(self.shape(x))
        if Wf.ndim != 2 or Wf.shape[1] != n_in or bf.shape != (Wf.shape[0],):
            raise InputError(f"dense {name or ''}: weight {Wf.shape} / bias {bf.shape} do not fit {n_in} inputs")
        return self._add(Dense(self._name("dense", name), [x], (Wf.shape[0],), Wf, bf))

    def conv(self, x: int, kernel: Any, bias: Any = None, strides: Sequence[int] | None = None,
             pads: Sequence[int] | None = None, dilations: Sequence[int] | None = None, groups: int = 1,
             name: str | None = None) -> int:
        K = to_fraction_array(kernel, "conv kernel")
        in_shape = self.shape(x)
        d = K.ndim - 2
        if d < 1 or len(in_shape) != d + 1:
            raise InputError(f"conv {name or ''}: kernel {K.shape} does not fit input shape {in_shape}")
        B = None if bias is None else to_fraction_array(bias, "conv bias")
        op = Conv.build(self._name("conv", name), [x], in_shape, K, B, strides or [1] * d, pads or [0] * (2 * d),
                        dilations or [1] * d, groups)
        return self._add(op)

    def relu(self, x: int, name: str | None = None) -> int:
        return self._add(Relu(self._name("relu", name), [x], self.shape(x)))

    def maxpool(self, x: int, kernel: Sequence[int], strides: Sequence[int] | None = None,
                pads: Sequence[int] | None = None, name: str | None = None) -> int:
        in_shape = self.shape(x)
        d = len(kernel)
        window = {"kernel": [int(k) for k in kernel], "strides": [int(s) for s in (strides or kernel)],
                  "pads": [int(p) for p in (pads or [0] * (2 * d))]}
        idx, out_sp = window_patches(in_shape, window["kernel"], window["strides"], window["pads"], [1] * d)
        if np.any(np.all(idx < 0, axis=1)):
            raise InputError(f"maxpool {name or ''}: a window lies entirely in the padding")
        first = np.array([row[row >= 0][0] for row in idx])
        idx = np.where(idx >= 0, idx, first[:, None])  # a repeated valid entry leaves the max unchanged (-inf pads)
        return self._add(MaxPool(self._name("maxpool", name), [x], (in_shape[0],) + tuple(out_sp), idx, window))

    def avgpool(self, x: int, kernel: Sequence[int] | None = None, strides: Sequence[int] | None = None,
                pads: Sequence[int] | None = None, count_include_pad: bool = False, name: str | None = None) -> int:
        """Average pool; ``kernel=None`` is the global average (GlobalAveragePool)."""
        from fractions import Fraction

        in_shape = self.shape(x)
        kernel = list(in_shape[1:]) if kernel is None else list(kernel)
        d = len(kernel)
        window = {"kernel": [int(k) for k in kernel], "strides": [int(s) for s in (strides or kernel)],
                  "pads": [int(p) for p in (pads or [0] * (2 * d))], "count_include_pad": bool(count_include_pad)}
        idx, out_sp = window_patches(in_shape, window["kernel"], window["strides"], window["pads"], [1] * d)
        count = np.full(idx.shape[0], idx.shape[1]) if count_include_pad else (idx >= 0).sum(axis=1)
        weights = np.empty(idx.shape, dtype=object)
        for r in range(idx.shape[0]):
            w = Fraction(1, int(count[r]))
            weights[r] = [w if i >= 0 else Fraction(0) for i in idx[r]]
        return self._add(AvgPool(self._name("avgpool", name), [x], (in_shape[0],) + tuple(out_sp), idx, weights,
                                 window))

    def add(self, x: int, y: int, name: str | None = None) -> int:
        if self.shape(x) != self.shape(y):
            raise InputError(f"add {name or ''}: shapes {self.shape(x)} and {self.shape(y)} differ")
        return self._add(Add(self._name("add", name), [x, y], self.shape(x)))

    def scale(self, x: int, d: Any = 1, c: Any = 0, name: str | None = None) -> int:
        """y = d * x + c elementwise (d, c broadcast to x's shape)."""
        shape = self.shape(x)
        D = to_fraction_array(np.broadcast_to(np.asarray(d, dtype=object), shape), "scale factor").reshape(-1)
        C = to_fraction_array(np.broadcast_to(np.asarray(c, dtype=object), shape), "scale shift").reshape(-1)
        return self._add(Scale(self._name("scale", name), [x], shape, D, C))

    def reshape(self, x: int, shape: Sequence[int], name: str | None = None) -> int:
        """A C-order reshape: the flat values do not move (a Gather with the identity permutation)."""
        shape = tuple(int(s) for s in shape)
        if size(shape) != size(self.shape(x)):
            raise InputError(f"reshape {name or ''}: cannot reshape {self.shape(x)} to {shape}")
        return self._add(Gather(self._name("reshape", name), [x], shape, np.arange(size(shape))))

    def flatten(self, x: int, name: str | None = None) -> int:
        return self.reshape(x, (size(self.shape(x)),), name or self._name("flatten", None))

    def transpose(self, x: int, perm: Sequence[int], name: str | None = None) -> int:
        shape = self.shape(x)
        src = np.arange(size(shape)).reshape(shape).transpose(perm)
        return self._add(Gather(self._name("transpose", name), [x], tuple(src.shape), src.reshape(-1)))

    def concat(self, xs: Sequence[int], axis: int = 0, name: str | None = None) -> int:
        shapes = [self.shape(x) for x in xs]
        total = np.concatenate([np.full(s, k) for k, s in enumerate(shapes)], axis=axis)
        order = np.concatenate([np.arange(size(s)).reshape(s) for s in shapes], axis=axis)
        parts = [np.flatnonzero(total.reshape(-1) == k)[np.argsort(order.reshape(-1)[total.reshape(-1) == k])]
                 for k in range(len(xs))]
        return self._add(Concat(self._name("concat", name), list(xs), tuple(total.shape), parts))

    def network(self, output: int | None = None, metadata: dict[str, Any] | None = None) -> GraphNetwork:
        return GraphNetwork(self.nodes, output, metadata)


__all__ = ["GraphBuilder"]

"""Red-team comparisons of the incremental root-region engine (dtd_formal.torch.root_cone) with the plain full
forward pass (``root_regions(..., _engine="full")``, or for float32 models the plain forward pass in float64 at
the same roots).

A sum of a node with itself (``g + g``: fx lists g once among a node's inputs) is the one discrepancy this found,
fixed (root_cone reads an add's arguments, repeated ones twice); the rest are derandomized random
comparisons (seeded small convnets: kernel 1-5, stride 1-3, padding 0-2, dilation 1-2, groups, bias on/off,
BatchNorm, residual sums, MaxPool2d with padding/dilation/ceil_mode, AvgPool2d, AdaptiveAvgPool2d, 1x1 and 2x3
maps, exact zeros and ties, dead filters) and the clean fallback of models the window algebra does not cover.
"""

from __future__ import annotations

import collections
import random
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import dtd_formal.torch as dt  # noqa: E402
from dtd_formal.rules import LRP0, Gamma, WSquare, ZBox, ZPlus  # noqa: E402
from dtd_formal.torch import root_cone  # noqa: E402
from dtd_formal.torch.graph import build_plan  # noqa: E402
from dtd_formal.torch.ops import ConvOp  # noqa: E402

roots_mod = __import__("dtd_formal.torch.roots", fromlist=["roots"])


# ---------------------------------------------------------------------------------------------------- helpers
def _conv_layers(m: nn.Module) -> list[int]:
    return [li.index for li in build_plan(m).layers if isinstance(li.op, ConvOp)]


def _differences(full: Any, inc: Any) -> list[Any]:
    """Every field where the two reports' records differ (empty: the same records)."""
    kf = {(r.input_index, r.layer, r.neuron): r for r in full.records}
    ki = {(r.input_index, r.layer, r.neuron): r for r in inc.records}
    if kf.keys() != ki.keys():
        return [("records", sorted(set(kf) ^ set(ki), key=str))]
    out: list[Any] = [("skipped", full.skipped, inc.skipped)] if full.skipped != inc.skipped else []
    for k, f in kf.items():
        i = ki[k]
        for field in ("leaves_pattern", "leaves_affine_map", "root_in_domain", "own_preactivation", "step"):
            if getattr(i, field) != getattr(f, field):
                out.append((k, field, getattr(f, field), getattr(i, field)))
        if [tuple(p) for p in i.flipped] != [tuple(p) for p in f.flipped]:
            out.append((k, "flipped", f.flipped, i.flipped))
        if not np.array_equal(i.root, f.root):
            out.append((k, "root"))
    return out


@pytest.fixture
def spy(monkeypatch: Any) -> collections.Counter:
    """Counts the rows the incremental evaluation decided itself (the comparisons are not of fallbacks only)."""
    counts: collections.Counter = collections.Counter()
    classify = root_cone.ConeContext.classify

    def counted(self: Any, pts: Any, *args: Any) -> Any:
        flips, maps, undecided = classify(self, pts, *args)
        counts["decided"] += int((~undecided).sum())
        counts["undecided"] += int(undecided.sum())
        return flips, maps, undecided

    monkeypatch.setattr(root_cone.ConeContext, "classify", counted)
    return counts


# ---------------------------------------------------------------------------------------------------- known bugs
class _SelfSum(nn.Module):
    """``g + g``: fx's ``all_input_nodes`` lists the node once, so the incremental sum sees one change, not two."""

    def __init__(self, form: str) -> None:
        super().__init__()
        self.form = form
        self.c1 = nn.Conv2d(2, 3, 3, padding=1)
        self.c2 = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 6 * 6, 3)

    def forward(self, x: Any) -> Any:
        h = torch.relu(self.c1(x))
        g = self.c2(h)
        if self.form == "operator":
            g = g + g
        elif self.form == "torch.add":
            g = torch.add(g, g)
        else:
            g = g.add(g)
        return self.fc(torch.flatten(torch.relu(g), 1))


@pytest.mark.parametrize("form", ["operator", "torch.add", "method"])
def test_self_sum_after_the_layer(form: str) -> None:
    torch.manual_seed(0)
    m = _SelfSum(form).double().eval()
    x = torch.rand(2, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    full = dt.root_regions(m, x, ZPlus(), layers=1, output=0, _engine="full")
    inc = dt.root_regions(m, x, ZPlus(), layers=1, output=0)
    assert _differences(full, inc) == []


class _SelfSumBelow(nn.Module):
    """``h + h`` of the explained layer's ReLU output, read by a later convolution and max pool."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 3, 3, padding=1)
        self.c2 = nn.Conv2d(3, 3, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(3 * 3 * 3, 3)

    def forward(self, x: Any) -> Any:
        h = torch.relu(self.c1(x))
        h = h + h
        return self.fc(torch.flatten(self.pool(torch.relu(self.c2(h))), 1))


def test_self_sum_of_the_layers_relu() -> None:
    torch.manual_seed(0)
    m = _SelfSumBelow().double().eval()
    x = torch.rand(2, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    full = dt.root_regions(m, x, WSquare(), layers=1, output=1, _engine="full")
    inc = dt.root_regions(m, x, WSquare(), layers=1, output=1)
    assert _differences(full, inc) == []


def test_self_sum_upstream_of_the_layer_is_fine() -> None:
    """The same model's layer 2 (the self-sum is its input, not in its upper network) agrees."""
    torch.manual_seed(0)
    m = _SelfSumBelow().double().eval()
    x = torch.rand(2, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    full = dt.root_regions(m, x, WSquare(), layers=2, output=1, _engine="full")
    inc = dt.root_regions(m, x, WSquare(), layers=2, output=1)
    assert len(full.records) > 0 and _differences(full, inc) == []


# ---------------------------------------------------------------------------------------------------- random nets
class _Res(nn.Module):
    def __init__(self, c: int, k: int, d: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, k, padding=d * (k - 1) // 2, dilation=d)

    def forward(self, h: Any) -> Any:
        return h + self.conv(h)


def _out(n: int, k: int, s: int, p: int, d: int, ceil: bool = False) -> int:
    num = n + 2 * p - d * (k - 1) - 1
    if not ceil:
        return num // s + 1
    o = -(-num // s) + 1
    return o - 1 if (o - 1) * s >= n + p else o


def _random_net(rng: random.Random, dtype: Any) -> tuple[nn.Module, Any]:
    C, H, W = rng.randint(1, 3), rng.randint(1, 9), rng.randint(1, 9)
    layers: list[nn.Module] = []
    c, h, w, nconv = C, H, W, 0
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["conv", "conv", "conv", "res", "pool", "avg", "adapt"])
        if kind == "conv" or nconv == 0:
            k = rng.randint(1, min(5, 1 + max(h, w)))
            s, p, d = rng.randint(1, 3), rng.randint(0, 2), rng.randint(1, 2)
            if k == 1:
                d = 1  # torch 2.13 (oneDNN) segfaults on a float32 channels_last 1x1 conv, stride 3, padding 2, dilation 2
            if _out(h, k, s, p, d) < 1 or _out(w, k, s, p, d) < 1:
                k, s, p, d = 1, 1, rng.randint(0, 1), 1
            g = rng.choice([1, 1, 2]) if c % 2 == 0 else 1
            co = rng.choice([1, 2, 3, 4])
            co += g == 2 and co % 2
            layers.append(nn.Conv2d(c, co, k, stride=s, padding=p, dilation=d, groups=g, bias=rng.random() < 0.8))
            c, h, w = co, _out(h, k, s, p, d), _out(w, k, s, p, d)
            nconv += 1
            if rng.random() < 0.2:
                layers.append(nn.BatchNorm2d(c))
            if rng.random() < 0.85:
                layers.append(nn.ReLU())
        elif kind == "res":
            layers.append(_Res(c, rng.choice([1, 3]), rng.randint(1, 2)))
            nconv += 1
            if rng.random() < 0.7:
                layers.append(nn.ReLU())
        elif kind == "pool":
            k, s = rng.randint(1, 3), rng.randint(1, 3)
            p, d, ceil = rng.randint(0, k // 2), rng.randint(1, 2), rng.random() < 0.5
            if _out(h, k, s, p, d, ceil) >= 1 and _out(w, k, s, p, d, ceil) >= 1:
                layers.append(nn.MaxPool2d(k, s, p, d, ceil_mode=ceil))
                h, w = _out(h, k, s, p, d, ceil), _out(w, k, s, p, d, ceil)
        elif kind == "avg":
            k, s = rng.randint(1, 2), rng.randint(1, 2)
            if h >= k and w >= k:
                layers.append(nn.AvgPool2d(k, s))
                h, w = _out(h, k, s, 0, 1), _out(w, k, s, 0, 1)
        else:
            o = (rng.randint(1, max(1, h)), rng.randint(1, max(1, w)))
            layers.append(nn.AdaptiveAvgPool2d(o))
            h, w = o
    layers.append(nn.Flatten())
    if rng.random() < 0.6:
        hid = rng.randint(2, 6)
        layers += [nn.Linear(c * h * w, hid)] + ([nn.ReLU()] if rng.random() < 0.7 else []) + [nn.Linear(hid, 3)]
    else:
        layers.append(nn.Linear(c * h * w, 3))
    m = nn.Sequential(*layers).to(dtype)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.3, 0.3)
                mod.running_var.uniform_(0.5, 2)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
    m.eval()
    x = torch.rand(rng.randint(1, 3), C, H, W, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(rng.randint(0, 10**6)))
    mode = rng.random()
    if mode < 0.1:
        x[:] = 0.5  # constant input: ties everywhere
    elif mode < 0.2:
        x = (x * 4).round() / 4
    elif mode < 0.3:
        x[x < 0.5] = 0  # exact zeros
    if rng.random() < 0.1:  # a dead filter: exact zeros in the upper network
        with torch.no_grad():
            conv = rng.choice([mod for mod in m.modules() if isinstance(mod, nn.Conv2d)])
            conv.weight[0].zero_()
            if conv.bias is not None:
                conv.bias[0] = 0
    with torch.no_grad():  # a max-pool window entirely in its padding (dilation) gives -inf and an index out of range
        if not bool(torch.isfinite(m(x.to(dtype))).all()):
            return _random_net(rng, dtype)
    return m, x.to(dtype)


_RULES = [ZPlus, WSquare, lambda: Gamma(0.25), LRP0, lambda: ZBox(0.0, 1.0)]


def _random_config(rng: random.Random, batch: int) -> dict[str, Any]:
    kw: dict[str, Any] = dict(scope=rng.choice(["upper", "upper", "layer"]),
                              definition=rng.choice(["true", "true", "paper-code"]), affine_map=rng.random() < 0.8)
    o = rng.random()
    if o < 0.3:
        kw["output"] = rng.randint(0, 2)
    elif o < 0.5:
        kw["output"] = [rng.randint(0, 2) for _ in range(batch)]
    if rng.random() < 0.15:
        kw["sample"], kw["seed"] = rng.randint(1, 4), rng.randint(0, 9)
    return kw


def test_random_float64_nets_agree_with_the_full_forward_pass(spy) -> None:  # type: ignore[no-untyped-def]
    n_cmp = 0
    for seed in range(12):
        rng = random.Random(seed)
        torch.manual_seed(seed)
        m, x = _random_net(rng, torch.float64)
        rule = _RULES[rng.randrange(len(_RULES))]()
        kw = _random_config(rng, len(x))
        for layer in _conv_layers(m):
            full = dt.root_regions(m, x, rule, layers=layer, _engine="full", **kw)
            inc = dt.root_regions(m, x, rule, layers=layer, **kw)
            assert _differences(full, inc) == [], (seed, layer, kw, m)
            n_cmp += len(full.records)
    assert n_cmp > 50 and spy["decided"] > n_cmp // 2, (n_cmp, dict(spy))


def test_random_float32_nets_agree_with_the_float64_forward_pass(spy) -> None:  # type: ignore[no-untyped-def]
    n_cmp = 0
    for seed in range(100, 108):
        rng = random.Random(seed)
        torch.manual_seed(seed)
        m, x = _random_net(rng, torch.float32)
        rule = _RULES[rng.randrange(len(_RULES))]()
        kw = _random_config(rng, len(x))
        for layer in _conv_layers(m):
            inc = dt.root_regions(m, x, rule, layers=layer, **kw)
            flips, maps = roots_mod.float64_full_verdicts(
                m, x, rule, layer, kw["scope"], kw["affine_map"],
                **{k: v for k, v in kw.items() if k in ("output", "definition", "sample", "seed")})
            flips = [[tuple(p) for p in f] for f in flips]
            assert [[tuple(p) for p in r.flipped] for r in inc.records] == flips, (seed, layer, kw, m)
            assert [r.leaves_affine_map for r in inc.records] == maps, (seed, layer, kw, m)
            n_cmp += len(inc.records)
    assert n_cmp > 20 and spy["decided"] > 0, (n_cmp, dict(spy))


def test_anisotropic_geometry_agrees(spy) -> None:  # type: ignore[no-untyped-def]
    """Per-axis kernels, strides, paddings and dilations (rows and columns differ), several outputs and chunks."""
    torch.manual_seed(1)
    m = nn.Sequential(nn.Conv2d(2, 3, (1, 3), stride=(2, 1), padding=(0, 1), dilation=(1, 2)), nn.ReLU(),
                      nn.Conv2d(3, 4, (3, 2), stride=(1, 2), padding=(2, 0), dilation=(2, 1)), nn.ReLU(),
                      nn.MaxPool2d((2, 1), stride=(1, 2), padding=(1, 0), ceil_mode=True),
                      nn.Conv2d(4, 2, (2, 3), padding=(1, 1)), nn.ReLU(), nn.AvgPool2d((2, 1)), nn.Flatten(),
                      nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 3)).double()
    x = torch.rand(2, 2, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    m(x)
    m.eval()
    for rule, kw in ((ZPlus(), {"output": [2, 0]}), (WSquare(), {"output": 1, "chunk": 3}),
                     (Gamma(0.25), {"definition": "paper-code", "scope": "layer", "sample": 4})):
        for layer in _conv_layers(m):
            full = dt.root_regions(m, x, rule, layers=layer, _engine="full", **kw)
            inc = dt.root_regions(m, x, rule, layers=layer, **kw)
            assert _differences(full, inc) == [], (rule, kw, layer)
    assert spy["decided"] > 0


# ---------------------------------------------------------------------------------------------------- fallbacks
class _ToConv1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(2, 3, 3)
        self.c1 = nn.Conv1d(3, 2, 2)
        self.pool = nn.AvgPool1d(2)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: Any) -> Any:
        h = torch.relu(self.c(x))
        return self.fc(torch.flatten(self.pool(torch.relu(self.c1(torch.flatten(h, 2)))), 1))


class _ViewSize(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(2, 3, 3)
        self.c2 = nn.Conv2d(3, 3, 2)
        self.fc = nn.Linear(3 * 9, 2)

    def forward(self, x: Any) -> Any:
        h = torch.relu(self.c2(torch.relu(self.c(x))))
        return self.fc(h.view(h.size(0), -1))


@pytest.mark.parametrize("name", ["conv1d", "conv2d-then-conv1d", "view-size"])
def test_uncovered_models_fall_back_cleanly(name: str, spy) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    if name == "conv1d":
        m: nn.Module = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 3, 3), nn.ReLU(), nn.MaxPool1d(2),
                                     nn.Flatten(), nn.Linear(6, 2))
        x = torch.rand(2, 2, 8, dtype=torch.float64)
    elif name == "conv2d-then-conv1d":
        m, x = _ToConv1d(), torch.rand(2, 2, 4, 5, dtype=torch.float64)
    else:
        m, x = _ViewSize(), torch.rand(2, 2, 6, 6, dtype=torch.float64)
    m = m.double().eval()
    for rule in (ZPlus(), LRP0()):
        for layer in _conv_layers(m):
            full = dt.root_regions(m, x, rule, layers=layer, output=0, _engine="full")
            inc = dt.root_regions(m, x, rule, layers=layer, output=0)
            assert _differences(full, inc) == []
    assert spy["decided"] + spy["undecided"] == 0  # never entered the incremental evaluation

"""``dtd-formal explain MODEL --inputs FILE [--rule SPEC | --composite SPEC] [--target C] [--batch-size N]
--out DIR [--json]``: LRP relevance of an ONNX model at a batch of inputs, with one heatmap per input.

MODEL is loaded with :func:`dtd_formal.torch.from_onnx`; FILE is a ``.npy`` holding a batch (N, ...) or one input
(the batch axis is added). The explainer string is read by :func:`dtd_formal.rules.parse.parse_explainer` (a rule
such as ``gamma:0.25`` or ``zplus@zennit``, or a zennit preset such as ``epsilon-plus-flat`` or
``epsilon-gamma-box:low=-3,high=3``). The relevance is :func:`dtd_formal.torch.lrp` explaining the output
``--target`` (default: each row's arg-max), in batches of ``--batch-size``, in the model's dtype (float32 unless
the model is float64). Written to DIR:

- ``relevance.npy``: the relevance, shaped like the inputs file;
- ``heatmap_000.png``, ...: :func:`dtd_formal.torch.heatmap.heatmap` of each input's relevance (channels summed,
  symmetric, normalised per input). Channel-last inputs (an ONNX graph that starts with an NHWC -> NCHW
  transpose) are drawn as such; a 1-D input is drawn as a 1-pixel-high strip;
- ``explain.json``: the model, the explainer (spec and repr), per input the target, the model output, the explained
  output and the relevance sum, the files written and the package version (also printed with ``--json``).

Exit 0 on success, 2 for bad input (missing file, an inputs array that fits neither (N, *S) nor S for the model's
input shape S, an unknown rule, a layer the backend refuses).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .common import positive_int, print_json


def register(sub: Any) -> None:
    p = sub.add_parser("explain", help="LRP relevance and heatmaps of an ONNX model at a batch of inputs")
    p.add_argument("model", help="ONNX model file (.onnx), loaded with dtd_formal.torch.from_onnx")
    p.add_argument("--inputs", required=True, help=".npy file: a batch (N, ...) or one input")
    spec = p.add_mutually_exclusive_group()
    spec.add_argument("--rule", help="rule string for every layer (zplus, epsilon:1e-6, gamma:0.25, zplus@zennit, "
                                     "...; default zplus)")
    spec.add_argument("--composite", help="zennit preset (epsilon-plus, epsilon-plus-flat, "
                                          "epsilon-gamma-box:low=-3,high=3, ...)")
    p.add_argument("--target", type=int, default=None, metavar="C",
                   help="explained output class (default: each input's arg-max)")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="inputs per pass (default 32)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--cmap", default="bwr", help="heatmap colour map (zennit's names or matplotlib's; default bwr)")
    p.add_argument("--level", type=float, default=1.0, help="heatmap contrast, >= 0 (zennit's level; default 1)")
    p.add_argument("--json", action="store_true", help="print explain.json instead of a summary")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def onnx_input_shape(path: str) -> tuple[str, tuple[int, ...]]:
    """The ONNX graph's input name and its per-sample shape (the declared dims after the batch axis)."""
    import onnx

    g = onnx.load(path).graph
    const = {i.name for i in g.initializer}
    (inp,) = [i for i in g.input if i.name not in const]  # from_onnx has already checked there is one
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in inp.type.tensor_type.shape.dim]
    return inp.name, tuple(int(d) for d in dims[1:])


def first_layer(model: Any) -> tuple[str, Any] | None:
    """The first Conv/Linear module the model runs (name, module), or None."""
    from torch import nn

    steps = getattr(model, "steps", None)
    names = [mod for kind, mod, _, _ in steps if kind == "module"] if steps else [n for n, _ in model.named_modules()]
    for name in names:
        m = model.get_submodule(name) if name else model
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            return name, m
    return None


def first_step(model: Any) -> Any:
    """The module applied to the model's input first (an :class:`~dtd_formal.torch.onnx_import.OnnxModule`)."""
    for kind, mod, ins, _ in getattr(model, "steps", []):
        if kind == "module" and ins and ins[0] == model.input_name:
            return model.get_submodule(mod)
    return None


def describe_layer(layer: tuple[str, Any] | None) -> str:
    if layer is None:
        return "no Conv/Linear layer found"
    from torch import nn

    name, m = layer
    takes = (f"{m.in_features} input value(s)" if isinstance(m, nn.Linear)
             else f"{m.in_channels} input channel(s)")
    return f"first layer {name}: {m!r}, takes {takes}"


def load_input_batch(path: str, sample_shape: tuple[int, ...], context: str) -> tuple[np.ndarray, bool]:
    """The inputs of a .npy file as a batch (N, *sample_shape), and whether the file held a batch.

    An array shaped ``sample_shape`` is one input; one shaped (N, *sample_shape) is a batch. Anything else raises
    :class:`InputError` naming the file, its shape, the expected shapes and ``context`` (the first layer)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a folder, expected a .npy file")
    if p.suffix.lower() != ".npy":
        raise InputError(f"{path}: inputs must be a .npy file (numpy.save), got {p.suffix or 'no suffix'!r}")
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read a .npy array ({exc})") from None
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
            or arr.dtype == np.bool_):
        raise InputError(f"{path}: inputs must be real numbers, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{path}: inputs hold NaN or infinite values")
    known = all(d > 0 for d in sample_shape)
    batched: bool
    if known and tuple(arr.shape) == sample_shape:
        batched = False
        arr = arr[None]
    elif known and arr.ndim == len(sample_shape) + 1 and tuple(arr.shape[1:]) == sample_shape:
        batched = True
    elif not known and arr.ndim >= 1:  # a symbolic per-sample dimension: trust the file, a batch along axis 0
        batched = True
    else:
        shape = ", ".join(map(str, sample_shape))
        raise InputError(f"{path}: inputs of shape {tuple(arr.shape)} do not fit the model: expected a batch "
                         f"(N, {shape}) or one input ({shape}{',' if len(sample_shape) == 1 else ''}) ({context})")
    if arr.shape[0] == 0:
        raise InputError(f"{path}: the batch is empty (shape {tuple(arr.shape)})")
    return arr, batched


def image_view(relevance: np.ndarray, channel_last: bool) -> np.ndarray:
    """One input's relevance in a shape :func:`heatmap` draws: (C, H, W) or (H, W)."""
    if relevance.ndim == 3:
        return relevance.transpose(2, 0, 1) if channel_last else relevance
    if relevance.ndim == 2:
        return relevance
    if relevance.ndim == 1:
        return relevance.reshape(1, -1)
    if relevance.ndim == 0:
        return relevance.reshape(1, 1)
    lead = int(np.prod(relevance.shape[:-2]))  # more axes: all but the last two are summed as channels
    return relevance.reshape(lead, *relevance.shape[-2:])


def explain_batch(model: Any, x: np.ndarray, explainer: Any, target: int | None, batch_size: int,
                  progress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relevance (shaped like ``x``), model outputs (N, K) and targets (N,) of ``model`` at the batch ``x``.

    Each chunk of ``batch_size`` rows runs one forward pass (outputs, the arg-max when ``target`` is None) and
    :func:`dtd_formal.torch.lrp` with those targets; inputs are cast to the model's dtype (float64 models stay
    float64, everything else runs in float32)."""
    import torch
    from tqdm import tqdm

    from ..torch import lrp

    param = next(iter(model.parameters()), None)
    dtype = torch.float64 if param is not None and param.dtype == torch.float64 else torch.float32
    rel, outs, tgts = [], [], []
    with tqdm(total=len(x), desc="explain", unit="input", file=sys.stderr, disable=not progress) as bar:
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.ascontiguousarray(x[start:start + batch_size]), dtype=dtype)
            with torch.no_grad():
                y = model(xb)
            if y.dim() != 2:
                raise InputError(f"the model output has shape {tuple(y.shape)}; expected (batch, outputs)")
            if target is not None and not 0 <= target < y.shape[1]:
                raise InputError(f"--target {target} out of range: the model has {y.shape[1]} outputs "
                                 f"(0..{y.shape[1] - 1})")
            c = y.argmax(dim=1) if target is None else torch.full((len(xb),), target, dtype=torch.long)
            rel.append(lrp(model, xb, explainer, output=c).detach().cpu().numpy())
            outs.append(y.detach().cpu().numpy())
            tgts.append(c.cpu().numpy())
            bar.update(len(xb))
    return np.concatenate(rel), np.concatenate(outs), np.concatenate(tgts)


def run(args: argparse.Namespace) -> int:
    import dtd_formal

    from ..rules.parse import parse_composite, parse_explainer
    from ..torch import from_onnx
    from ..torch.heatmap import colormap, heatmap, write_png
    from ..torch.onnx_import import Permute

    if not str(args.model).lower().endswith(".onnx"):
        raise InputError(f"{args.model}: MODEL must be an .onnx file")
    spec = args.composite if args.composite is not None else (args.rule if args.rule is not None else "zplus")
    option = "--composite" if args.composite is not None else "--rule"
    try:
        try:
            explainer = parse_explainer(spec)
        except InputError as exc:
            if option == "--composite" and str(exc).startswith("unknown rule"):
                parse_composite(spec)  # raises "unknown composite ...; known: <the presets>"
            raise
    except InputError as exc:
        from ..rules.composites import PRESETS

        hint = ""
        if str(exc).startswith("unknown rule"):
            hint = f"; or a composite: {', '.join(k.replace('_', '-') for k in sorted(PRESETS))}"
        raise InputError(f"{option} {spec!r}: {exc}{hint}") from None
    if not args.level >= 0 or not np.isfinite(args.level):
        raise InputError(f"--level must be a finite number >= 0, got {args.level}")
    colormap(args.cmap)  # an unknown colour map is refused before any work
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {args.out}: exists and is not a folder")
    model = from_onnx(args.model)
    in_name, sample_shape = onnx_input_shape(args.model)
    layer = first_layer(model)
    context = f"ONNX input {in_name!r}; {describe_layer(layer)}"
    x, batched = load_input_batch(args.inputs, sample_shape, context)
    progress = not args.json and not args.no_progress and sys.stderr.isatty()
    try:
        R, y, targets = explain_batch(model, x, explainer, args.target, args.batch_size, progress)
    except RuntimeError as exc:  # torch's own shape errors: the inputs do not fit a layer
        raise InputError(f"{args.inputs}: the model cannot run on inputs of shape {tuple(x.shape[1:])} ({context}): "
                         f"{exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    rel_path = out / "relevance.npy"
    np.save(rel_path, R if batched else R[0])
    step = first_step(model)
    channel_last = isinstance(step, Permute) and step.perm == (0, 3, 1, 2) and R.ndim == 4
    width = max(3, len(str(len(R) - 1)))
    pngs = []
    for i, r in enumerate(R):
        pngs.append(write_png(heatmap(image_view(r, channel_last), cmap=args.cmap, level=args.level),
                              out / f"heatmap_{i:0{width}d}.png"))
    report_path = out / "explain.json"
    rows = np.arange(len(R))
    report: dict[str, Any] = {
        "model": str(args.model),
        "inputs": str(args.inputs),
        "input_shape": list(x.shape[1:]),
        "batched": batched,
        "dtype": str(R.dtype),
        "explainer": {"spec": spec, "repr": repr(explainer)},
        "target_option": "argmax" if args.target is None else int(args.target),
        "targets": [int(c) for c in targets],
        "outputs": [[float(v) for v in row] for row in y],
        "explained_outputs": [float(v) for v in y[rows, targets]],
        "relevance_sums": [float(v) for v in R.reshape(len(R), -1).sum(axis=1, dtype=np.float64)],
        "heatmap": {"cmap": args.cmap, "level": args.level, "symmetric": True, "channel_reduce": "sum",
                    "per_sample": True, "channel_last": channel_last},
        "files": {"relevance": str(rel_path), "heatmaps": [str(p) for p in pngs], "report": str(report_path)},
        "version": dtd_formal.__version__,
    }
    report_path.write_text(json.dumps(report, indent=1) + "\n")
    if args.json:
        print_json(report)
        return 0
    print(f"model {args.model}: input {in_name!r} {tuple(sample_shape)}, {describe_layer(layer)}")
    print(f"explainer {spec}: {explainer!r}; target "
          f"{'arg-max per input' if args.target is None else args.target}; {len(R)} input(s) in {R.dtype}")
    print(f"{'input':>5} {'target':>6} {'f_target(x)':>12} {'sum R':>12}")
    shown = min(len(R), 20)
    for i in range(shown):
        print(f"{i:>5} {int(targets[i]):>6} {report['explained_outputs'][i]:>12.6g} "
              f"{report['relevance_sums'][i]:>12.6g}")
    if shown < len(R):
        print(f"  ... {len(R) - shown} more in {report_path}")
    last = f" .. {pngs[-1].name}" if len(pngs) > 1 else ""
    print(f"wrote {rel_path}, {len(pngs)} heatmap(s) {pngs[0]}{last}, {report_path}")
    return 0

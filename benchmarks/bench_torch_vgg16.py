"""VGG16 benchmark of the torch backend: LRP time and peak memory vs plain gradient x input and vs zennit.

VGG16 (configuration D, 138M parameters) is built by hand here with random weights (seeded default init), input
224x224, batch 8, float32, on the CPU (``--device cuda`` where available). Each method runs in its own process
(``--method``), so ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is that method's peak memory; the driver (no
``--method``) starts one process per method and prints a table (``--json`` for JSON).

Methods: ``gradient`` (plain gradient x input on the model as built, NCHW), ``gradient-cl`` (the same with model
and input in channels_last, the layout the backend runs convolutions in on the CPU), ``ours-zplus`` / ``ours-epsilon`` (dtd_formal.torch.lrp with
ZPlus / Epsilon(1e-6) in zennit's convention on every layer), ``zennit-zplus`` / ``zennit-epsilon`` (zennit's
Gradient attributor, the same rule on every Conv/Linear, Norm on the average pool, ReLU gradients as they are:
the same function), ``roots-full`` / ``roots-incremental`` (root-region checks of sampled neurons of conv layers
11 and 13, z+, 2 inputs, by the plain full forward pass, ``root_regions(..., _engine="full")``, and by the
incremental evaluation, the default: per layer and sample size a warm-up, then ``--repeats`` timed calls, roots
per second from the median; ``roots-incremental`` then compares the verdicts: every record of the float32 run
against the plain forward pass in float64 at the same float32 roots, and both engines on a float64 copy of the
model (one input, 8 roots per layer), which must agree record for record; the process exits non-zero otherwise).
``roots-patternfull`` / ``roots-firstflip`` are the same pair for the pattern verdict alone (the share of roots
that leave the pattern): the plain full forward pass without the affine map, and the incremental evaluation with
``first_flip=True`` (a root stops at its first certain flip); a first-flip record agrees when its
``leaves_pattern`` is the plain pass's and its flips are a non-empty subset of the plain pass's flips (none when
it stays). ``roots-wholelayer`` runs the first-flip check on every relevant neuron of one conv layer
(``--whole-layer``) for one input, timed once, and compares 256 records drawn at random with the plain pass in
float64 at the same roots.

Usage::

    python benchmarks/bench_torch_vgg16.py                   # all methods, one process each
    python benchmarks/bench_torch_vgg16.py --method gradient  # one method
    python benchmarks/bench_torch_vgg16.py --methods roots-full,roots-incremental --roots-per-input 16,64
    python benchmarks/bench_torch_vgg16.py --methods roots-patternfull,roots-firstflip --roots-per-input 64,256
    python benchmarks/bench_torch_vgg16.py --method roots-wholelayer --whole-layer 11   # every root of a layer
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from pathlib import Path

import torch
from torch import nn

CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
METHODS = ["gradient", "gradient-cl", "ours-zplus", "ours-epsilon", "zennit-zplus", "zennit-epsilon", "roots-full",
           "roots-incremental", "roots-patternfull", "roots-firstflip", "roots-wholelayer"]
#: root methods: (engine, root_regions keyword arguments)
ROOT_METHODS = {"full": ("full", {}), "incremental": ("incremental", {}),
                "patternfull": ("full", {"affine_map": False}), "firstflip": ("incremental", {"first_flip": True})}


def vgg16(num_classes: int = 1000, seed: int = 0) -> nn.Module:
    """VGG16 (configuration D) with seeded random weights, eval mode."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    c = 3
    for v in CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            c = int(v)
    features = nn.Sequential(*layers)
    classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
        nn.Linear(4096, num_classes),
    )
    return nn.Sequential(features, nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(), classifier).eval()


def _zennit_attr(model: nn.Module, x: torch.Tensor, which: str) -> torch.Tensor:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "stubs"))
    from zennit.attribution import Gradient
    from zennit.composites import LayerMapComposite
    from zennit.rules import Epsilon, Norm, ZPlus
    from zennit.types import AvgPool, Convolution

    rule = ZPlus() if which == "zplus" else Epsilon(epsilon=1e-6)
    composite = LayerMapComposite([(AvgPool, Norm()), (Convolution, rule), (nn.Linear, rule)])
    with Gradient(model=model, composite=composite) as attributor:
        _, rel = attributor(x, lambda y: torch.eye(y.shape[1], dtype=y.dtype, device=y.device)[y.argmax(1)] * y)
    return rel


def _roots(model: nn.Module, xs: torch.Tensor, repeats: int, per_input: list[int], method: str,
           sync: Callable[[], None]) -> dict:
    """A ``roots-*`` method: one engine's timings, and for the incremental engine the verdict comparisons (module
    docstring)."""
    import dtd_formal.torch as dt
    from dtd_formal.rules import ZPlus
    from dtd_formal.torch.roots import float64_full_verdicts

    engine, kwargs = ROOT_METHODS[method]
    pattern_only = kwargs.get("affine_map") is False or kwargs.get("first_flip", False)

    def agrees(rec: Any, flips: list, leaves_map: bool) -> bool:
        """The record against the plain pass's: first-flip records list a non-empty subset of the flips."""
        if kwargs.get("first_flip"):
            return rec.leaves_pattern == bool(flips) and set(rec.flipped) <= set(flips) and \
                bool(rec.flipped) == rec.leaves_pattern
        return rec.flipped == flips and rec.leaves_affine_map == leaves_map

    out: dict = {"per_input": per_input, "engine": engine, "options": kwargs}
    for layer in (11, 13):  # conv 11 (14x14 maps; 3 convs above it) and conv 13 (the last conv)
        for k in per_input:
            call = lambda: dt.root_regions(model, xs, ZPlus(), layers=layer, sample=k, keep_roots=False,
                                           _engine=engine, **kwargs)
            call()  # warm-up
            times = []
            for _ in range(repeats):
                sync()
                t0 = time.perf_counter()
                report = call()
                sync()
                times.append(time.perf_counter() - t0)
            recs = report.records
            med = statistics.median(times)
            entry = {"roots": len(recs), "median_seconds": med, "all_seconds": times,
                     "roots_per_second": len(recs) / med, "leaves_pattern": sum(r.leaves_pattern for r in recs),
                     "leaves_affine_map": sum(r.leaves_affine_map for r in recs)}
            if engine == "incremental":
                flips64, maps64 = float64_full_verdicts(model, xs, ZPlus(), layer, sample=k,
                                                        affine_map=not pattern_only)
                entry["same_as_float64_full"] = sum(agrees(a, f, m) for a, f, m in zip(recs, flips64, maps64))
            out[f"layer{layer}_k{k}"] = entry
    if engine == "incremental":
        model64, x64 = copy.deepcopy(model).double(), xs[:1].double()
        sample64 = {}
        for layer in (11, 13):
            a = dt.root_regions(model64, x64, ZPlus(), layers=layer, sample=8, _engine="full",
                                affine_map=not pattern_only).records
            b = dt.root_regions(model64, x64, ZPlus(), layers=layer, sample=8, **kwargs).records
            sample64[f"layer{layer}"] = {"roots": len(a), "identical_records": sum(
                agrees(q, r.flipped, r.leaves_affine_map) and (r.leaves_pattern, r.own_preactivation, r.step) ==
                (q.leaves_pattern, q.own_preactivation, q.step) for r, q in zip(a, b))}
        out["float64_sample"] = sample64
        out["verdicts_ok"] = all(v["identical_records"] == v["roots"] for v in sample64.values()) and all(
            e["same_as_float64_full"] == e["roots"] for key, e in out.items() if key.startswith("layer"))
    return out


def _whole_layer(model: nn.Module, x: torch.Tensor, layer: int, check: int) -> dict:
    """The share of leaving roots over a whole conv layer for one input: ``root_regions`` with ``first_flip=True``
    on every relevant neuron (checked in groups under ``ROOT_BYTES``), timed once; then ``check`` records drawn at
    random (seed 0) are compared with the plain full forward pass in float64 at the same float32 roots (the
    agreement of ``_roots``: the same ``leaves_pattern``, the flips a non-empty subset)."""
    import random

    import dtd_formal.torch as dt
    from dtd_formal.rules import ZPlus
    from dtd_formal.torch.roots import float64_full_verdicts

    t0 = time.perf_counter()
    report = dt.root_regions(model, x, ZPlus(), layers=layer, keep_roots=False, first_flip=True, progress=True)
    seconds = time.perf_counter() - t0
    recs = report.records
    picked = sorted(random.Random(0).sample(range(len(recs)), min(check, len(recs))))
    neurons = [recs[i].neuron for i in picked]
    flips64, _ = float64_full_verdicts(model, x, ZPlus(), layer, affine_map=False, neurons=neurons)
    same = sum(recs[i].leaves_pattern == bool(f) and bool(recs[i].flipped) == recs[i].leaves_pattern
               and set(recs[i].flipped) <= set(f) for i, f in zip(picked, flips64))
    return {"layer": layer, "roots": len(recs), "seconds": seconds, "roots_per_second": len(recs) / seconds,
            "leaves_pattern": sum(r.leaves_pattern for r in recs), "checked": len(picked),
            "same_as_float64_full": same, "verdicts_ok": same == len(picked)}


def run_one(method: str, batch: int, size: int, repeats: int, device: str, threads: int,
            per_input: list[int] | None = None, whole_layer: int = 11) -> dict:
    torch.set_num_threads(threads)
    import dtd_formal.torch as dt
    from dtd_formal.rules import Epsilon, ZPlus

    model = vgg16().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    if method == "gradient-cl":  # the baseline with model and input in channels_last, the layout our LRP runs in
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    result: dict = {"method": method, "batch": batch, "size": size, "device": device, "threads": threads}
    if method == "roots-wholelayer":
        result.update(_whole_layer(model, x[:1], whole_layer, check=256))
    elif method.startswith("roots-"):
        result.update(_roots(model, x[:2], repeats, per_input or [16], method.split("-")[1], sync))
    else:
        if method.startswith("gradient"):
            fn = lambda: dt.gradient_times_input(model, x)
        elif method.startswith("ours-"):
            rule = ZPlus(bias="zennit") if method.endswith("zplus") else Epsilon(1e-6, bias="zennit")
            fn = lambda: dt.lrp(model, x, rule)
        else:
            which = method.split("-")[1]
            fn = lambda: _zennit_attr(model, x, which)
        fn()  # warm-up
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn()
            sync()
            times.append(time.perf_counter() - t0)
        result.update(seconds=min(times), median_seconds=statistics.median(times), all_seconds=times,
                      finite=bool(torch.isfinite(out).all()))
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=METHODS)
    ap.add_argument("--methods", default=",".join(m for m in METHODS if m != "roots-wholelayer"),
                    help="driver: comma-separated methods to run (default: all but roots-wholelayer)")
    ap.add_argument("--whole-layer", type=int, default=11, help="roots-wholelayer: the conv layer (default 11)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--roots-per-input", default="16", help="roots: sampled neurons per input, comma-separated")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    per_input = [int(v) for v in args.roots_per_input.split(",")]
    if args.method:
        result = run_one(args.method, args.batch, args.size, args.repeats, args.device, args.threads, per_input,
                         args.whole_layer)
        print(json.dumps(result))
        if not result.get("verdicts_ok", True):
            sys.exit(1)
        return
    results = {}
    for method in args.methods.split(","):
        cmd = [sys.executable, __file__, "--method", method, "--batch", str(args.batch), "--size", str(args.size),
               "--repeats", str(args.repeats), "--device", args.device, "--threads", str(args.threads),
               "--roots-per-input", args.roots_per_input, "--whole-layer", str(args.whole_layer)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            results[method] = {"error": proc.stderr.strip().splitlines()[-1:]}
        else:
            results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(method, json.dumps(results[method]), file=sys.stderr, flush=True)
    base = results.get("gradient", {}).get("seconds")
    if args.json:
        print(json.dumps(results, indent=1))
        sys.exit(1 if any("error" in results.get(m, {}) for m in ("roots-incremental", "roots-firstflip")) else 0)
    print(f"VGG16, batch {args.batch}, {args.size}px, {args.device}, {args.threads} threads")
    med = results.get("gradient", {}).get("median_seconds")
    print(f"{'method':16s} {'best s':>8s} {'x grad':>7s} {'median s':>9s} {'x grad':>7s} {'peak RSS MiB':>13s}")
    for method, r in results.items():
        if "seconds" not in r or method.startswith("roots"):
            continue
        ratio = r["seconds"] / base if base else float("nan")
        mratio = r["median_seconds"] / med if med else float("nan")
        print(f"{method:16s} {r['seconds']:8.2f} {ratio:7.2f} {r['median_seconds']:9.2f} {mratio:7.2f} "
              f"{r['peak_rss_mib']:13.0f}")
    for rule in ("zplus", "epsilon"):
        o, z = results.get(f"ours-{rule}", {}), results.get(f"zennit-{rule}", {})
        if "seconds" in o and "seconds" in z:
            print(f"{rule}: ours / zennit time = {o['seconds'] / z['seconds']:.2f}, "
                  f"peak memory = {o['peak_rss_mib'] / z['peak_rss_mib']:.2f}")
    failed = False
    for base_name, fast_name, what in (("roots-full", "roots-incremental", "affine maps included"),
                                       ("roots-patternfull", "roots-firstflip", "pattern only, first flip")):
        full, inc = results.get(base_name, {}), results.get(fast_name, {})
        for key, r in inc.items():
            if key.startswith("layer") and key in full:
                f = full[key]
                print(f"root-region checks (z+, 2 inputs, {key}: {r['roots']} roots, {what}): plain full "
                      f"forward {f['roots_per_second']:.2f} roots/s, {fast_name} {r['roots_per_second']:.2f} roots/s "
                      f"({f['median_seconds'] / r['median_seconds']:.2f}x; {r['leaves_pattern']} leave the pattern, "
                      f"{r['leaves_affine_map']} the affine map; {r['same_as_float64_full']}/{r['roots']} records "
                      f"as the float64 forward pass at the same roots)")
        if "float64_sample" in inc:
            print(f"float64 model, {fast_name} against the plain pass, records agreeing:",
                  json.dumps(inc["float64_sample"]))
        failed |= "error" in inc  # the verdicts differed from the plain forward pass (or the run failed)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()

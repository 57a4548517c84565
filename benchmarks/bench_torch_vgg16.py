"""VGG16 benchmark of the torch backend: LRP time and peak memory vs plain gradient x input and vs zennit.

VGG16 (configuration D, 138M parameters) is built by hand here with random weights (seeded default init), input
224x224, batch 8, float32, on the CPU (``--device cuda`` where available). Each method runs in its own process
(``--method``), so ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is that method's peak memory; the driver (no
``--method``) starts one process per method and prints a table (``--json`` for JSON).

Methods: ``gradient`` (plain gradient x input on the model as built, NCHW), ``gradient-cl`` (the same with model
and input in channels_last, the layout the backend runs convolutions in on the CPU), ``ours-zplus`` / ``ours-epsilon`` (dtd_formal.torch.lrp with
ZPlus / Epsilon(1e-6) in zennit's convention on every layer), ``zennit-zplus`` / ``zennit-epsilon`` (zennit's
Gradient attributor, the same rule on every Conv/Linear, Norm on the average pool, ReLU gradients as they are:
the same function), ``roots`` (root-region checks of sampled neurons of a conv layer; roots per second).

Usage::

    python benchmarks/bench_torch_vgg16.py                   # all methods, one process each
    python benchmarks/bench_torch_vgg16.py --method gradient  # one method
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
METHODS = ["gradient", "gradient-cl", "ours-zplus", "ours-epsilon", "zennit-zplus", "zennit-epsilon", "roots"]


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


def run_one(method: str, batch: int, size: int, repeats: int, device: str, threads: int) -> dict:
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
    if method == "roots":
        per_input = 16
        xs = x[:2]
        dt.root_regions(model, xs[:1], ZPlus(), layers=13, sample=2, keep_roots=False)  # warm-up
        for layer in (11, 13):  # conv 11 (14x14 maps; 3 convs above it) and conv 13 (the last conv)
            sync()
            t0 = time.perf_counter()
            report = dt.root_regions(model, xs, ZPlus(), layers=layer, sample=per_input, keep_roots=False)
            sync()
            dt_s = time.perf_counter() - t0
            n = len(report.records)
            result[f"layer{layer}"] = {
                "roots": n, "seconds": dt_s, "roots_per_second": n / dt_s,
                "leaves_pattern": sum(r.leaves_pattern for r in report.records),
                "leaves_affine_map": sum(r.leaves_affine_map for r in report.records)}
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
    ap.add_argument("--methods", default=",".join(METHODS), help="driver: comma-separated methods to run")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.method:
        print(json.dumps(run_one(args.method, args.batch, args.size, args.repeats, args.device, args.threads)))
        return
    results = {}
    for method in args.methods.split(","):
        cmd = [sys.executable, __file__, "--method", method, "--batch", str(args.batch), "--size", str(args.size),
               "--repeats", str(args.repeats), "--device", args.device, "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            results[method] = {"error": proc.stderr.strip().splitlines()[-1:]}
        else:
            results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(method, json.dumps(results[method]), file=sys.stderr, flush=True)
    base = results.get("gradient", {}).get("seconds")
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"VGG16, batch {args.batch}, {args.size}px, {args.device}, {args.threads} threads")
    med = results.get("gradient", {}).get("median_seconds")
    print(f"{'method':16s} {'best s':>8s} {'x grad':>7s} {'median s':>9s} {'x grad':>7s} {'peak RSS MiB':>13s}")
    for method, r in results.items():
        if "seconds" not in r or method == "roots":
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
    for key, r in results.get("roots", {}).items():
        if key.startswith("layer"):
            print(f"root-region checks (z+, 2 inputs x 16 sampled neurons, affine maps included): {r['roots']} roots "
                  f"of {key} in {r['seconds']:.2f} s = {r['roots_per_second']:.2f} roots/s "
                  f"({r['leaves_pattern']} leave the pattern, {r['leaves_affine_map']} the affine map)")


if __name__ == "__main__":
    main()

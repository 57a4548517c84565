"""Where one LRP call on VGG16 spends its time: torch.profiler's operator table plus page faults and system time.

Runs one method (``gradient``, ``gradient-cl``, ``zplus`` or ``epsilon``) on the VGG16 of
``bench_torch_vgg16.py`` (random weights, 224px, batch 8, float32, CPU): a warm-up, ``--repeats`` timed calls
with wall time, user and system CPU time and minor page faults from ``resource.getrusage`` (fresh memory is
page-faulted on first touch, which is what the backend's scratch pool, row blocks and channels_last layout cut),
then one call under ``torch.profiler`` and its operator table sorted by self CPU time.

Usage::

    python benchmarks/profile_torch_lrp.py zplus
    python benchmarks/profile_torch_lrp.py gradient --repeats 5 --rows 12
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_torch_vgg16 import vgg16  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("method", choices=["gradient", "gradient-cl", "zplus", "epsilon"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", type=int, default=20, help="rows of the profiler table")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import dtd_formal.torch as dt
    from dtd_formal.rules import Epsilon, ZPlus

    model = vgg16()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.randn(8, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    if args.method == "gradient-cl":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if args.method.startswith("gradient"):
        fn = lambda: dt.gradient_times_input(model, x)  # noqa: E731
    else:
        rule = ZPlus(bias="zennit") if args.method == "zplus" else Epsilon(1e-6, bias="zennit")
        fn = lambda: dt.lrp(model, x, rule)  # noqa: E731
    fn()
    for _ in range(args.repeats):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        fn()
        r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        print(f"{args.method}: wall {t1 - t0:.2f} s, user {r1.ru_utime - r0.ru_utime:.2f} s, "
              f"system {r1.ru_stime - r0.ru_stime:.2f} s, minor page faults {r1.ru_minflt - r0.ru_minflt}")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()

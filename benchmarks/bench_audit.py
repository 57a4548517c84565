"""Time of ``dtd.audit`` against one explanation by the audited library (issue 16; target: under 3x).

    python benchmarks/bench_audit.py                 # VGG-like and ResNet-like, zennit and captum, 5 repeats
    python benchmarks/bench_audit.py --repeats 3 --size 32 --batch 4 --width 32

Models (built here, random weights, float64 as the audit runs them): a VGG-like stack (conv-relu x2, max-pool,
conv-relu x2, adaptive average pool, two Linear layers) and a ResNet-like net (stem, two residual blocks with
``h + r`` sums, average pool, Linear), ``--width`` channels, ``--size`` px inputs, ``--batch`` inputs.

Per (model, explainer), ``--repeats`` pairs (after one warm-up) of the explanation and the audit, run back to
back; the medians of each side's times and the median of the per-pair ratios (so a change in the machine's load
between pairs moves both sides of a ratio alike):

- ``explain``: one explanation by the library itself, in float64 (zennit: the composite's context and one
  ``torch.autograd.grad``; captum: ``LRP(model).attribute``, built as ``dtd-formal audit --explainer captum:LRP`` does, with a rule on
  the Flatten, which captum has no default for; set again before every call, since ``attribute`` deletes the
  rules it used);
- ``audit``: ``dtd.audit(model, x, explainer, target=c, roots=False)`` (conservation, definition per layer,
  coverage, canonizers, end to end against the torch backend);
- ``audit+roots``: the same with the root-region check on 32 sampled neurons per root-point layer (``--no-roots``
  skips it: NaN in its columns).

Prints one JSON line per row (wall and CPU seconds, ratios to ``explain``) and a Markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from typing import Any, Callable

import torch
from torch import nn

import dtd_formal as dtd

COMMAND = "python benchmarks/bench_audit.py " + " ".join(sys.argv[1:])


def vgg_like(width: int) -> nn.Module:
    torch.manual_seed(0)
    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(), nn.Linear(8 * w, 64), nn.ReLU(), nn.Linear(64, 10),
    ).double().eval()


class ResNetLike(nn.Module):
    """stem, two residual blocks (conv-relu-conv plus the identity, then relu), average pool, Linear."""

    def __init__(self, width: int) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.stem, self.relu0 = nn.Conv2d(3, width, 3, padding=1), nn.ReLU()
        self.a1, self.ra, self.a2, self.rb = (nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                              nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.b1, self.rc, self.b2, self.rd = (nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                              nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.pool, self.flatten, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu0(self.stem(x))
        h = self.rb(h + self.a2(self.ra(self.a1(h))))
        h = self.rd(h + self.b2(self.rc(self.b1(h))))
        return self.fc(self.flatten(self.pool(h)))


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall-clock seconds and CPU seconds of this process (all its threads) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _paired(first: Callable[[], Any], second: Callable[[], Any], repeats: int) -> dict[str, float]:
    """``first`` and ``second`` timed alternately, ``repeats`` pairs after one warm-up of each: the medians of
    their wall and CPU seconds and the median of the per-pair ratios second / first (a pair runs back to back,
    so a change of the machine's load between repeats moves both sides of a ratio alike)."""
    first(), second()  # warm-up
    pairs = [(_timed(first), _timed(second)) for _ in range(repeats)]
    med = statistics.median
    return {"first_s": med(a[0] for a, _ in pairs), "second_s": med(b[0] for _, b in pairs),
            "first_cpu_s": med(a[1] for a, _ in pairs), "second_cpu_s": med(b[1] for _, b in pairs),
            "ratio": med(b[0] / a[0] for a, b in pairs), "cpu_ratio": med(b[1] / a[1] for a, b in pairs)}


def _zennit_explain(composite: Any, model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    xg = x.clone().requires_grad_(True)
    with composite.context(model) as modified:
        out = modified(xg)
        grad_out = torch.zeros_like(out)
        grad_out[:, target] = out[:, target]
        (R,) = torch.autograd.grad(out, xg, grad_out)
    return R


def _captum(model: nn.Module) -> Any:
    """captum's LRP as ``dtd-formal audit --explainer captum:LRP`` builds it (a rule for the Flatten)."""
    from dtd_formal.commands.audit import build_explainer

    return build_explainer("captum:LRP", [], model)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--no-roots", action="store_true", help="skip the audit + roots rows (the audit alone is timed)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "tests" / "stubs"))
    rows = []
    x = torch.rand(args.batch, 3, args.size, args.size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = 3
    explainers: list[tuple[str, Callable[[nn.Module], Any], Callable[[Any, nn.Module], Any]]] = []
    try:
        import zennit.composites as zc

        explainers.append(("zennit EpsilonPlusFlat", lambda m: zc.EpsilonPlusFlat(),
                           lambda e, m: _zennit_explain(e, m, x, target)))
    except ImportError as exc:
        print(json.dumps({"skipped": f"zennit: {exc}"}))
    try:
        import captum.attr  # noqa: F401

        explainers.append(("captum LRP", _captum, lambda e, m: e.attribute(x.clone().requires_grad_(True), target=target)))
    except ImportError as exc:
        print(json.dumps({"skipped": f"captum: {exc}"}))
    for model_name, build in (("VGG-like", vgg_like), ("ResNet-like", ResNetLike)):
        for ex_name, make, explain in explainers:
            model = build(args.width).double().eval()
            # a fresh explainer per call: captum's attribute() deletes the rules set on the layers when it ends
            plain = _paired(lambda: explain(make(model), model),
                            lambda: dtd.audit(model, x, make(model), target=target, roots=False), args.repeats)
            with_roots = None if args.no_roots else _paired(
                lambda: explain(make(model), model),
                lambda: dtd.audit(model, x, make(model), target=target, roots=True), args.repeats)
            verdict = dtd.audit(model, x, make(model), target=target, roots=False).verdict
            row = {"model": model_name, "explainer": ex_name, "explain_s": plain["first_s"],
                   "audit_s": plain["second_s"], "audit_ratio": plain["ratio"],
                   "explain_cpu_s": plain["first_cpu_s"], "audit_cpu_s": plain["second_cpu_s"],
                   "audit_cpu_ratio": plain["cpu_ratio"],
                   "audit_roots_s": math.nan if with_roots is None else with_roots["second_s"],
                   "audit_roots_ratio": math.nan if with_roots is None else with_roots["ratio"], "verdict": verdict}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\nCommand: `{COMMAND}` (batch {args.batch}, {args.size}px, width {args.width}, float64, 2 threads, "
          f"medians of {args.repeats} pairs; ratios: median of the per-pair ratios)\n")
    print("| model | explainer | one explanation (wall / CPU) | audit (wall / CPU) | ratio wall | ratio CPU | "
          "audit + roots | ratio | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['explainer']} | {r['explain_s']:.3f} s / {r['explain_cpu_s']:.3f} s | "
              f"{r['audit_s']:.3f} s / {r['audit_cpu_s']:.3f} s | {r['audit_ratio']:.2f}x | {r['audit_cpu_ratio']:.2f}x | "
              f"{r['audit_roots_s']:.3f} s | {r['audit_roots_ratio']:.2f}x | {r['verdict']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``dtd-formal reproduce [--quick] [--out DIR] [--inputs N] [--seed S] [--json]``: the main job."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..examples import STUDY_SEED

#: the measured wall time of ``dtd-formal reproduce --quick`` (``time dtd-formal reproduce --quick --out /tmp/rq``,
#: two runs: 19 s and 27 s on 2 CPU cores); README states the same figure
QUICK_TIME = "15-30 s on 2 CPU cores"


def register(sub: Any) -> None:
    p = sub.add_parser("reproduce", help="the paper's claims and study end to end: report.md, results.json, figures",
                       description="The paper's claims and the C6 study end to end: report.md, results.json, "
                                   "figures/, certificates/. results.json and report.md record the package "
                                   "versions, the seeds, the command line and the wall time of every step.")
    p.add_argument("--quick", action="store_true", help=f"fewer inputs and smaller budgets ({QUICK_TIME})")
    p.add_argument("--out", default="reproduce-out", help="output folder (default reproduce-out)")
    p.add_argument("--inputs", type=int, help="study inputs (default 1000, quick 100)")
    p.add_argument("--seed", type=int, default=STUDY_SEED, help=f"network seed (default {STUDY_SEED})")
    p.add_argument("--json", action="store_true", help="print results.json to stdout")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments.reproduce import Invocation, reproduce

    arguments = {"out": args.out, "quick": args.quick, "inputs": args.inputs, "seed": args.seed,
                 "json": args.json, "no_progress": args.no_progress}
    done = reproduce(out=args.out, quick=args.quick, n_inputs=args.inputs, seed=args.seed,
                     progress=not args.no_progress and not args.json,
                     invocation=Invocation.from_command_line(arguments))
    if args.json:
        print(json.dumps(done.payload(), indent=1))
    else:
        for r in done.results:
            print(f"{r.status:>8}  {r.seconds:7.1f} s  {r.title}" + (f"  FAILED: {r.failures}" if r.failures else ""))
        print(f"total {done.seconds:.1f} s; wrote {done.report} and {done.results_json}; exit {done.exit_code}")
    return done.exit_code

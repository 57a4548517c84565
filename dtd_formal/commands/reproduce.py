"""``dtd-formal reproduce [--quick] [--out DIR] [--inputs N] [--seed S] [--json]``: the main job."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..examples import STUDY_SEED

QUICK_BUDGETS = {"claims": 60, "c6_study": 20, "root_exit_search": 20, "in_region_roots": 20, "figures": 20}
FULL_BUDGETS = {"claims": 120, "c6_study": 600, "root_exit_search": 600, "in_region_roots": 300, "figures": 120}


def register(sub: Any) -> None:
    p = sub.add_parser("reproduce", help="the paper's claims and study end to end: report.md, results.json, figures")
    p.add_argument("--quick", action="store_true", help="fewer inputs and smaller budgets (about 2 minutes)")
    p.add_argument("--out", default="reproduce-out", help="output folder (default reproduce-out)")
    p.add_argument("--inputs", type=int, help="study inputs (default 1000, quick 100)")
    p.add_argument("--seed", type=int, default=STUDY_SEED, help=f"network seed (default {STUDY_SEED})")
    p.add_argument("--json", action="store_true", help="print results.json to stdout")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments.reproduce import Context, exit_code, run_steps, write_outputs
    from ..experiments.steps import ALL_STEPS

    ctx = Context(
        out=Path(args.out), quick=args.quick, seed=args.seed,
        n_inputs=args.inputs or (100 if args.quick else 1000),
        budgets=dict(QUICK_BUDGETS if args.quick else FULL_BUDGETS), progress=not args.no_progress and not args.json,
    )
    results = run_steps(ctx, ALL_STEPS)
    header = (f"# dtd_formal reproduce ({'quick' if args.quick else 'full'})\n\nSixt & Landgraf, *A Rigorous Study "
              "Of The Deep Taylor Decomposition* (TMLR 2022): the claims, proved exactly, and the C6 study, decided "
              "exactly. Seeds and versions are in results.json.")
    rj, rm = write_outputs(ctx, results, header)
    code = exit_code(results)
    if args.json:
        print(json.dumps(json.loads(rj.read_text()), indent=1))
    else:
        for r in results:
            print(f"{r.status:>8}  {r.seconds:7.1f} s  {r.title}" + (f"  FAILED: {r.failures}" if r.failures else ""))
        print(f"wrote {rm} and {rj}; exit {code}")
    return code

"""``dtd-formal replay FILE [--json]``: re-check a certificate exactly.

Every stored residual is rebuilt from its exact text and re-simplified (it must be exactly 0); every witness is
re-verified in rational arithmetic by its claim's checker; a refutation's counterexample is re-evaluated;
``--rerun`` also re-runs the proof and requires identical residuals and witnesses. Exit 0
if it checks, 1 if not, 2 for a missing or malformed file.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="re-check a certificate or counterexample exactly")
    p.add_argument("file", help="certificate JSON written by `dtd-formal prove`")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--rerun", action="store_true",
                   help="also re-run the claim's proof and require identical residuals and witnesses")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..symbolic.registry import replay_certificate

    report = replay_certificate(args.file, rerun=args.rerun)
    if args.json:
        json.dump({"file": args.file, **report.to_json()}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        verdict = "checks" if report.ok else "DOES NOT CHECK"
        print(f"{args.file}: claim {report.claim} ({report.status}): {verdict} "
              f"({report.identities} identities re-simplified to 0, {report.witnesses} witnesses re-verified)")
        for f in report.failures:
            print(f"  {f}")
    return 0 if report.ok else 1

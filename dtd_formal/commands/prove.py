"""``dtd-formal prove [CLAIM ...] [--json] [--out DIR] [--fast]``: run the exact proofs of the study's claims.

Prints a table (claim, verdict, seconds, statement in words, method) or, with ``--json``, a JSON list of
``{claim, statement, status, method, seconds, certificate}``; writes one certificate per claim to ``--out``
(default ``./certificates``). Exit 0 when every requested claim is proved, 1 when one is not (every claim is
phrased so that "proved" is expected), 2 for an unknown claim name (the message lists the known names).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import InputError


def register(sub: Any) -> None:
    p = sub.add_parser("prove", help="run the exact (SymPy) proofs of the study's claims and write certificates")
    p.add_argument("claims", nargs="*", metavar="CLAIM", help="claim names (default: all; see --list)")
    p.add_argument("--json", action="store_true", help="print a JSON list of results")
    p.add_argument("--out", default="certificates", help="directory for the certificates (default ./certificates)")
    p.add_argument("--no-certificates", action="store_true", help="do not write certificate files")
    p.add_argument("--fast", action="store_true", help="smaller generic dimensions (as in the tests)")
    p.add_argument("--list", action="store_true", help="list the claim names and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..symbolic.registry import CLAIMS, get_claim, run_claim

    if args.list:
        for name, claim in CLAIMS.items():
            print(f"{name:40s} {claim.summary}")
        return 0
    names = list(args.claims) or list(CLAIMS)
    unknown = [n for n in names if n not in CLAIMS]
    if unknown:
        raise InputError(f"unknown claim(s) {', '.join(map(repr, unknown))}; known claims: {', '.join(CLAIMS)}")
    for n in names:
        get_claim(n)
    out = None if args.no_certificates else args.out
    iterator: Any = names
    if not args.no_progress and not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        iterator = tqdm(names, desc="proving", unit="claim", file=sys.stderr)
    results = [run_claim(n, out=out, fast=args.fast) for n in iterator]
    if args.json:
        json.dump([r.to_json() for r in results], sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(f"{'claim':40s} {'verdict':8s} {'seconds':>8s}  statement")
        for r in results:
            print(f"{r.claim:40s} {r.status:8s} {r.seconds:8.2f}  {CLAIMS[r.claim].summary}")
            print(f"{'':40s} method: {r.method}")
        total = sum(r.seconds for r in results)
        n_ok = sum(r.status == "proved" for r in results)
        print(f"{n_ok}/{len(results)} proved in {total:.2f} s" + (f"; certificates in {out}/" if out else ""))
    return 0 if all(r.status == "proved" for r in results) else 1

"""Shared runner of the proof scripts in proofs/: one claim per script, or all of them (``run_all.py``).

Each script proves its claim exactly (see :mod:`dtd_formal.symbolic.registry`), prints the statement, the method,
the verdict and the time, and writes a certificate JSON (default ``./certificates/<claim>.json``) that
``dtd-formal replay FILE`` re-checks. Exit status: 0 proved, 1 not proved.

Usage: ``python proofs/<claim>.py [--fast] [--out DIR]``
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Sequence


def main(claims: Sequence[str], argv: Sequence[str] | None = None) -> int:
    from dtd_formal.symbolic.registry import run_claim

    parser = argparse.ArgumentParser(description=f"exact proof of: {', '.join(claims)}")
    parser.add_argument("--fast", action="store_true", help="smaller generic dimensions")
    parser.add_argument("--out", default="certificates", help="certificate directory (default ./certificates)")
    args = parser.parse_args(argv)
    ok = True
    for name in claims:
        r = run_claim(name, out=args.out, fast=args.fast)
        print(f"claim:       {name}")
        print(textwrap.fill(r.statement, width=110, initial_indent="statement:   ", subsequent_indent=" " * 13))
        print(textwrap.fill(r.method, width=110, initial_indent="method:      ", subsequent_indent=" " * 13))
        print(f"verdict:     {r.status}")
        print(f"time:        {r.seconds:.2f} s")
        print(f"certificate: {r.certificate}")
        print()
        ok &= r.status == "proved"
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:2]))

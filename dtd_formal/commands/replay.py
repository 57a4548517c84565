"""``dtd-formal replay FILE [--model MODEL] [--rule module:Class] [--timeout S] [--json]``: re-derive a saved verdict.

Claim certificates (``dtd-formal prove``), verdicts and reports of the search engines (``counterexample``,
``reproduce``) and property counterexamples (``check-rule --export``) are re-derived from network + rule + question
+ evidence, trusting no stored result (:mod:`dtd_formal.replay`). A file names its rule by an exact catalogue
reference; a user rule is never imported from a file: pass it with ``--rule module:Class`` (imported from the
current directory too, instantiated without arguments; it must be the rule the file names).

Exit 0 if the file is confirmed, 1 if it is rejected (the first mismatch is named), 2 for a missing, malformed or
unreadable file, or a re-derivation that cannot run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    from .common import add_fold_option, positive_seconds

    p = sub.add_parser("replay", help="re-derive a certificate, verdict or counterexample exactly")
    p.add_argument("file", help="certificate, verdict, report or counterexample JSON")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--model", default=None, help="the network a file without an embedded one is about")
    add_fold_option(p)
    p.add_argument("--rule", default=None, metavar="module:Class",
                   help="the user rule the file names (never imported from the file itself)")
    p.add_argument("--timeout", type=positive_seconds, default=60.0, help="seconds per re-run Z3 query (default 60)")
    p.add_argument("--rerun", action="store_true", help=argparse.SUPPRESS)  # re-running is the default now
    p.set_defaults(func=run)


def _user_rule(text: str) -> Any:
    """The rule of ``--rule TEXT``: ``module:Class`` is imported with the current directory on the import path (a
    ``module.py`` in the directory replay runs from works without PYTHONPATH); a catalogue string is parsed.

    Raises
    ------
    InputError
        Naming ``--rule TEXT``, the failure and where the module was looked for.
    """
    from ..errors import InputError
    from .common import load_rule

    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return load_rule(text)
    except InputError as exc:
        raise InputError(f"--rule {text}: {exc} (looked in the current directory {cwd} and on PYTHONPATH)") from None


def run(args: argparse.Namespace) -> int:
    from ..replay import replay_file
    from .common import load_model

    model = load_model(args.model, args.fold_normalization) if args.model else None
    rule = _user_rule(args.rule) if args.rule else None
    report = replay_file(args.file, model=model, rule=rule, timeout=args.timeout)
    if args.json:
        json.dump({"file": args.file, **report.to_json()}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        verdict = "checks" if report.ok else "DOES NOT CHECK"
        print(f"{args.file}: {report.kind} ({report.status}): {verdict} ({report.detail})")
        for problem in report.problems[:10]:
            print(f"  {problem}")
    return 0 if report.ok else 1

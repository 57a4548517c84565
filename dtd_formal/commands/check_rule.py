"""``dtd-formal check-rule RULE [--properties ...] [--max-examples N] [--seed S] [--bias B] [--domain D] [--json]``.

Runs :func:`dtd_formal.testing.check_rule` and prints a table (or JSON). RULE is ``module:Class`` (the module is
imported, also from the current directory, and the class instantiated without arguments) or a catalogue rule
string (``zplus``, ``gamma:0.25``, ``lrp0@zennit``, ``zbox:-1,1``). ``--export DIR`` writes every counterexample as
JSON and as a pytest regression test. Exit codes: 0 no property refuted (each was proved or held on its examples),
1 a property refuted, 2 bad input (module not importable, not a Rule, unknown property) or a rule whose code raised
("error": the report names the method, the exception and the input), 3 a solver left a property unknown.

Wording (:data:`STATUS_HELP`): "proved" only for an exact verdict (Z3 proved the property for every input on the
solver networks); a property that no generated example refuted, without a proof, is "held on N examples" (its JSON
``status`` stays "passed").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..rules.domains import Box, Domain, NonNegative, Unbounded
from .common import load_rule, positive_int, print_json

#: the statuses and their wording, shown by ``dtd-formal check-rule --help``
STATUS_HELP = """\
statuses (the table's status column; JSON "status", with "proof" and "summary"):
  proved               exact: Z3 proved the property for every input of the domain on the
                       solver networks (small nets drawn from the seed); JSON "proof": true
  held on N examples   no counterexample among the N generated examples and no proof
                       (hypothesis only); JSON "status": "passed", "proof": false
  refuted              an exact counterexample (shrunk, replayed in Fractions)
  unknown              the solver timed out or could not replay the witness
  error                the rule's code raised (method, exception and input are named)
  not applicable / not run

Changed: hypothesis-only results used to be listed as "passed" beside Z3's "proved"; the
table and JSON "summary" now say "held on N examples", the verdict line separates the
proved properties from those that only held on examples, and JSON adds "proof" and
"summary" per property and "summary" for the report. The JSON "status" values are unchanged.

exit codes: 0 no property refuted (each proved or held on its examples), 1 a property
refuted, 2 bad input or a rule whose code raised, 3 a solver left a property unknown"""


def register(sub: Any) -> None:
    p = sub.add_parser("check-rule", help="property-test a relevance rule (hypothesis + Z3), with counterexamples",
                       description="Property-test a relevance rule: hypothesis draws exact cases, Z3 decides the "
                                   "solvable properties on small networks.",
                       epilog=STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rule", help="module:RuleClass (imported, instantiated without arguments) or a rule string "
                                "(zplus, gamma:0.25, lrp0@zennit, ...)")
    p.add_argument("--properties", nargs="+", metavar="NAME", help="properties to check (default: the catalogue)")
    p.add_argument("--max-examples", type=positive_int, default=100, help="cases per property (default 100)")
    p.add_argument("--seed", type=int, default=0, help="search seed (default 0)")
    p.add_argument("--bias", choices=("any", "nonpositive", "nonnegative", "zero"), default="any",
                   help="bias sign constraint of the drawn networks (default any)")
    p.add_argument("--domain", help="input domain of layer 1: nonnegative, unbounded or LOW:HIGH (write --domain=-1:1 "
                        "for a negative LOW; default: the rule's)")
    p.add_argument("--networks", choices=("dense", "conv"), default="dense",
                   help="network class: dense MLPs (default) or small convolutional graphs (conv, max pool, dense), "
                        "where the rule meets patch-shaped layers")
    p.add_argument("--no-solver", action="store_true", help="hypothesis only (no Z3 decision on a small network)")
    p.add_argument("--solver-timeout", type=positive_int, default=2000, metavar="MS", help="Z3 timeout per property")
    p.add_argument("--export", metavar="DIR", help="write each counterexample as DIR/<property>.json and "
                                                    "DIR/test_<property>_regression.py")
    p.add_argument("--json", action="store_true", help="machine-readable report (exact rationals as strings)")
    p.set_defaults(func=run)


def parse_domain(text: str | None) -> Domain | None:
    if text is None:
        return None
    t = text.strip().lower()
    if t in ("nonnegative", "a>=0"):
        return NonNegative()
    if t == "unbounded":
        return Unbounded()
    low, sep, high = t.partition(":")
    if not sep:
        raise InputError(f"--domain: expected nonnegative, unbounded or LOW:HIGH, got {text!r}")
    try:
        return Box(low, high)
    except ValueError as exc:
        raise InputError(f"--domain {text!r}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from ..testing import check_rule
    from ..testing.properties import get_property

    rule = load_rule(args.rule)
    for name in args.properties or []:
        get_property(name)
    if args.max_examples < 1:
        raise InputError(f"--max-examples must be >= 1, got {args.max_examples}")
    from ..testing import NetworkSpec

    report = check_rule(rule, args.properties, max_examples=args.max_examples, domain=parse_domain(args.domain),
                        seed=args.seed, networks=NetworkSpec(kind=args.networks), bias=args.bias,
                        solver=not args.no_solver, solver_timeout_ms=args.solver_timeout)
    if args.export:
        out = Path(args.export)
        out.mkdir(parents=True, exist_ok=True)
        for p in report.properties:
            if p.counterexample is not None:
                stem = p.name.replace(":", "_")
                p.counterexample.save(out / f"{stem}.json")
                try:
                    (out / f"test_{stem}_regression.py").write_text(p.counterexample.to_pytest())
                except InputError as exc:
                    print(f"note: {exc}", file=sys.stderr)
    if args.json:
        print_json(report.to_json())
    else:
        print(report.table())
    if report.errors:
        return 2
    if report.refuted:
        return 1
    if report.unknown:
        return 3
    return 0

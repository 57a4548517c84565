"""The ``dtd-formal`` command line (also ``python -m dtd_formal``).

Each subcommand lives in its own module under :mod:`dtd_formal.commands` and exposes
``register(subparsers) -> None`` (adds its parser, sets ``func``). Exit codes (docs/api.md): 0 = completed with
definite answers; 1 = something expected to hold failed; 2 = usage or input error (message names the file,
layer or value); 3 = an unknown (timeout, budget) remains.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import Sequence

from .errors import DTDFormalError, InputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3

#: subcommand modules under dtd_formal.commands, in the order ``--help`` lists them
COMMANDS = ["reproduce", "roots", "example", "regions", "check_rule", "prove", "replay", "counterexample", "explain",
            "audit"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors; keep its message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dtd-formal", description="Exact checks of Deep Taylor Decomposition / LRP rules.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"dtd_formal {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return parser


#: options whose values may start with a minus sign (a negative bound, a list of inputs): argparse would read
#: "-1:1" as an option, so ``--domain -1:1`` is rewritten to ``--domain=-1:1`` before parsing
NEGATIVE_VALUE_OPTIONS = {"--domain", "--extent", "--input", "--radius"}
_NEGATIVE_VALUE = re.compile(r"-[\d.]")


def join_negative_values(argv: Sequence[str]) -> list[str]:
    """``--domain -1:1`` -> ``--domain=-1:1`` (and the same for every option of :data:`NEGATIVE_VALUE_OPTIONS`)."""
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        a = items[i]
        if a in NEGATIVE_VALUE_OPTIONS and i + 1 < len(items) and _NEGATIVE_VALUE.match(items[i + 1]):
            out.append(f"{a}={items[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = join_negative_values(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (exit 2) and --help / --version (exit 0), as a return code
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `dtd-formal ... --json | head`: the reader left; stop quietly
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except InputError as exc:
        print(f"dtd-formal {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DTDFormalError as exc:
        print(f"dtd-formal {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # pragma: no cover
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

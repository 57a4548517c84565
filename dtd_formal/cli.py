"""The ``dtd-formal`` command line (also ``python -m dtd_formal``).

Each subcommand lives in its own module under :mod:`dtd_formal.commands` and exposes
``register(subparsers) -> None`` (adds its parser, sets ``func``). Exit codes (DESIGN.md): 0 = completed with
definite answers; 1 = something expected to hold failed; 2 = usage or input error (message names the file,
layer or value); 3 = an unknown (timeout, budget) remains.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .errors import DTDFormalError, InputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3

#: subcommand modules under dtd_formal.commands, in the order ``--help`` lists them
COMMANDS = ["reproduce", "roots", "example", "regions", "check_rule", "prove", "replay", "counterexample"]


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (exit 2) and --help / --version (exit 0), as a return code
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
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

r"""The input box of a VNN-LIB property file (the competition format, VNN-LIB 1.0).

A property declares inputs ``X_i`` and outputs ``Y_j`` (``(declare-const X_0 Real)``) and asserts constraints.
dtd_formal reads the *input box*: every input needs exactly one lower and one upper bound, asserted as
``(assert (<= X_i c))``, ``(assert (>= X_i c))`` (either operand order), possibly inside one top-level ``(and
...)``. Numbers are read exactly as the decimals they spell (``0.1`` is 1/10). Output constraints (anything on
``Y_j`` alone) are the property's verification goal, not part of the domain: they are counted and reported, not
used. Anything else on the inputs (disjunctions of boxes, constraints mixing inputs, strict inequalities) is refused
with the line it is on; nothing is approximated.

The maintained ``vnnlib`` package on PyPI (1.0.2) parses the newer VNN-LIB 2 syntax and rejects these 1.0 files,
so this is a small strict reader of the box subset.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import parse_rational

_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_INPUT = re.compile(r"X_(\d+)$")
_OUTPUT = re.compile(r"Y_(\d+)$")


def _tokens(text: str) -> list[tuple[str, int]]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split(";", 1)[0]
        out.extend((m.group(0), lineno) for m in _TOKEN.finditer(line))
    return out


def _parse(tokens: list[tuple[str, int]], source: str) -> list[tuple[Any, int]]:
    """Top-level S-expressions as nested lists of strings, each with its first line."""
    stack: list[list[Any]] = []
    out: list[tuple[Any, int]] = []
    start = 0
    for tok, line in tokens:
        if tok == "(":
            if not stack:
                start = line
            stack.append([])
        elif tok == ")":
            if not stack:
                raise InputError(f"{source}:{line}: unbalanced ')'")
            done = stack.pop()
            if stack:
                stack[-1].append(done)
            else:
                out.append((done, start))
        elif not stack:
            raise InputError(f"{source}:{line}: {tok!r} outside an expression")
        else:
            stack[-1].append(tok)
    if stack:
        raise InputError(f"{source}: unbalanced '(' (the file ends inside an expression)")
    return out


def read_vnnlib_box(path: str | Path, n_inputs: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(low, high, info) of a VNN-LIB property's input box for a network with ``n_inputs`` inputs (module
    docstring). ``info``: ``{"inputs": n, "outputs": m, "output_constraints": k}``."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read the VNN-LIB file ({exc})") from None
    low: dict[int, Fraction] = {}
    high: dict[int, Fraction] = {}
    declared_x: set[int] = set()
    n_outputs = 0
    output_constraints = 0

    def bound(expr: Any, line: int) -> bool:
        """Record an input bound; False when the expression constrains only outputs."""
        if not (isinstance(expr, list) and len(expr) == 3 and expr[0] in ("<=", ">=") and
                all(isinstance(e, str) for e in expr[1:])):
            names = re.findall(r"X_\d+", str(expr))
            if not names:
                return False
            raise InputError(f"{source}:{line}: only bounds on single inputs are supported (X_i <= c, X_i >= c), "
                             f"got {_show(expr)}")
        op, u, v = expr
        ux, vx = _INPUT.match(u), _INPUT.match(v)
        if not ux and not vx:
            if _OUTPUT.match(u) or _OUTPUT.match(v):
                return False
            raise InputError(f"{source}:{line}: a constraint on no declared variable: {_show(expr)}")
        if ux and vx:
            raise InputError(f"{source}:{line}: a constraint between two inputs is not a box: {_show(expr)}")
        if (_OUTPUT.match(v) if ux else _OUTPUT.match(u)):
            raise InputError(f"{source}:{line}: a constraint mixing inputs and outputs is not a box: {_show(expr)}")
        i = int((ux or vx).group(1))  # type: ignore[union-attr]
        c = parse_rational(v if ux else u, f"{source}:{line}: bound")
        is_upper = (op == "<=") == bool(ux)
        table = high if is_upper else low
        if i in table and table[i] != c:
            raise InputError(f"{source}:{line}: X_{i} has two different {'upper' if is_upper else 'lower'} bounds")
        table[i] = c
        return True

    for expr, line in _parse(_tokens(text), source):
        if not expr:
            raise InputError(f"{source}:{line}: empty expression")
        head = expr[0]
        if head == "declare-const":
            if len(expr) != 3 or expr[2] != "Real":
                raise InputError(f"{source}:{line}: expected (declare-const NAME Real), got {_show(expr)}")
            m, o = _INPUT.match(expr[1]), _OUTPUT.match(expr[1])
            if m:
                declared_x.add(int(m.group(1)))
            elif o:
                n_outputs += 1
            else:
                raise InputError(f"{source}:{line}: variables are named X_i (inputs) and Y_j (outputs), got "
                                 f"{expr[1]!r}")
        elif head == "assert":
            if len(expr) != 2:
                raise InputError(f"{source}:{line}: expected (assert EXPR), got {_show(expr)}")
            body = expr[1]
            parts = body[1:] if isinstance(body, list) and body and body[0] == "and" else [body]
            for part in parts:
                if not bound(part, line):
                    output_constraints += 1
        else:
            raise InputError(f"{source}:{line}: unsupported command {head!r} (declare-const and assert are read)")
    if declared_x != set(range(len(declared_x))):
        raise InputError(f"{source}: inputs must be declared as X_0..X_{{n-1}}, got {sorted(declared_x)[:8]} ...")
    if len(declared_x) != n_inputs:
        raise InputError(f"{source}: declares {len(declared_x)} inputs, the network has {n_inputs}")
    missing = [i for i in range(n_inputs) if i not in low or i not in high]
    if missing:
        raise InputError(f"{source}: X_{missing[0]} has no {'lower' if missing[0] not in low else 'upper'} bound "
                         f"({len(missing)} inputs lack a bound); the domain must be a box")
    lo = np.array([low[i] for i in range(n_inputs)], dtype=object)
    hi = np.array([high[i] for i in range(n_inputs)], dtype=object)
    bad = [i for i in range(n_inputs) if lo[i] > hi[i]]
    if bad:
        raise InputError(f"{source}: X_{bad[0]} has lower bound {lo[bad[0]]} above its upper bound {hi[bad[0]]}")
    return lo, hi, {"inputs": n_inputs, "outputs": n_outputs, "output_constraints": output_constraints}


def _show(expr: Any) -> str:
    return expr if isinstance(expr, str) else "(" + " ".join(_show(e) for e in expr) + ")"


__all__ = ["read_vnnlib_box"]

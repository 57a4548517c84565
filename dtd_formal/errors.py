"""Exception types shared by every module.

Every error that a user can cause by bad input derives from :class:`InputError`; the CLI maps it to exit code 2
and prints its message, which names the file, layer or value at fault.
"""

from __future__ import annotations


class DTDFormalError(Exception):
    """Base class of all errors raised by dtd_formal."""


class InputError(DTDFormalError, ValueError):
    """Bad input: malformed file, NaN/inf value, shape mismatch, unknown rule string (CLI exit code 2)."""


class UnsupportedLayerError(InputError):
    """A layer or operator the exact engine cannot represent exactly; it is refused, never approximated."""


class BudgetError(DTDFormalError):
    """A request exceeds a stated size budget (e.g. a global symbolic expression for a large network)."""


def check_timeout(timeout: object, name: str = "timeout") -> float:
    """A time budget in seconds: a finite number > 0 (else :class:`InputError` naming the value)."""
    import math

    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InputError(f"{name} must be a number of seconds, got {timeout!r}")
    value = float(timeout)
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a finite number of seconds > 0, got {timeout!r}")
    return value

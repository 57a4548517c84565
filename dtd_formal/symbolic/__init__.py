r"""SymPy backend: generic-weight identities, per-pattern affine maps, and the proofs of the study's claims.

- :mod:`.ops`: the rules' ``ops`` namespace over SymPy (rule bodies run unchanged on symbolic weights).
- :mod:`.translate`: ``to_sympy(net)`` (global nested-Max form, budgeted) and ``to_sympy(net, pattern)``
  (affine form on one closed region), symbolic gradients, exact evaluation.
- :mod:`.certificate`: evidence (residuals that simplify to exactly 0, witnesses), certificates, exact replay.
- :mod:`.rule_claims`, :mod:`.taylor_claims`, :mod:`.dtd_claims`: the proofs; :mod:`.witnesses`: explicit nets.
- :mod:`.registry`: claims by stable name, :func:`prove`, :func:`run_claim`, :func:`replay_certificate`.

Imports network, rules, dtd, regions and verdict of the package (never cli).
"""

from .ops import SYMPY, InexactExpressionError, SympyOps, assert_exact, sign_pattern_symbols, to_rational
from .registry import CLAIMS, ClaimResult, claim_names, get_claim, prove, replay_certificate, run_claim
from .translate import (
    MAX_GLOBAL_RELUS,
    evaluate,
    input_symbols,
    lambdify_exact,
    pattern_affine_maps,
    rule_expressions,
    symbolic_gradient,
    to_sympy,
)

__all__ = [
    "SYMPY", "SympyOps", "InexactExpressionError", "assert_exact", "sign_pattern_symbols", "to_rational",
    "CLAIMS", "ClaimResult", "claim_names", "get_claim", "prove", "replay_certificate", "run_claim",
    "MAX_GLOBAL_RELUS", "evaluate", "input_symbols", "lambdify_exact", "pattern_affine_maps", "rule_expressions",
    "symbolic_gradient", "to_sympy",
]

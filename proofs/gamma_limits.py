"""Exact proof of the claim ``gamma_limits`` (section 2 table): Gamma(0) = LRP-0; Gamma(gamma -> oo) = z+.

Run: ``python proofs/gamma_limits.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["gamma_limits"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["gamma_limits"]))

"""Exact proof of the claim ``taylor_exact_in_region`` (C1): first-order Taylor is exact within a closed region (C1).

Run: ``python proofs/taylor_exact_in_region.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["taylor_exact_in_region"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["taylor_exact_in_region"]))

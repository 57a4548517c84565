"""Exact proof of the claim ``zplus_is_alpha1_beta0`` (section 2 table): z+ = alpha1-beta0 for a >= 0, not for negative inputs.

Run: ``python proofs/zplus_is_alpha1_beta0.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["zplus_is_alpha1_beta0"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["zplus_is_alpha1_beta0"]))

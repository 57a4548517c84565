"""Exact proof of the claim ``upper_network_bounds_valid_roots`` (P1): staying in the upper region suffices; the check is not vacuous (P1).

Run: ``python proofs/upper_network_bounds_valid_roots.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["upper_network_bounds_valid_roots"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["upper_network_bounds_valid_roots"]))

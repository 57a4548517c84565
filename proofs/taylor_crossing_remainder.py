"""Exact proof of the claim ``taylor_crossing_remainder`` (C1): a segment crossing a kink leaves a non-zero remainder (C1).

Run: ``python proofs/taylor_crossing_remainder.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["taylor_crossing_remainder"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["taylor_crossing_remainder"]))

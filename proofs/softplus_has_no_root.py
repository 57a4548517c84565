"""Exact proof of the claim ``softplus_has_no_root`` (C4): softplus > 0: no root, second-order term never vanishes (C4).

Run: ``python proofs/softplus_has_no_root.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["softplus_has_no_root"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["softplus_has_no_root"]))

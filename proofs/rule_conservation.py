"""Exact proof of the claim ``rule_conservation`` (section 2): DTD rules conserve relevance; Epsilon's defect in closed form.

Run: ``python proofs/rule_conservation.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["rule_conservation"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["rule_conservation"]))

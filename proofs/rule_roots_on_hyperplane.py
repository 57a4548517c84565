"""Exact proof of the claim ``rule_roots_on_hyperplane`` (section 2): every DTD rule's root a - t v lies on the neuron's hyperplane.

Run: ``python proofs/rule_roots_on_hyperplane.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["rule_roots_on_hyperplane"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["rule_roots_on_hyperplane"]))

"""Exact proof of the claim ``constant_roots_gradient_x_input`` (C2): locally constant roots give grad f * x - k; roots 0: grad x input (C2).

Run: ``python proofs/constant_roots_gradient_x_input.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["constant_roots_gradient_x_input"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["constant_roots_gradient_x_input"]))

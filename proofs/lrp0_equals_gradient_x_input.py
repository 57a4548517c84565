"""Exact proof of the claim ``lrp0_equals_gradient_x_input`` (C2): LRP-0 with biases in the denominators = gradient x input.

Run: ``python proofs/lrp0_equals_gradient_x_input.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["lrp0_equals_gradient_x_input"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["lrp0_equals_gradient_x_input"]))

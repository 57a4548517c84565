"""Exact proof of the claim ``input_dependent_roots_any_explanation`` (C3): input-dependent roots realise any explanation (C3).

Run: ``python proofs/input_dependent_roots_any_explanation.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["input_dependent_roots_any_explanation"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["input_dependent_roots_any_explanation"]))

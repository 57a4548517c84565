"""Exact proof of the claim ``train_free_roots_unconstrained`` (C5): a train-free z+ root leaves the upper region (C5).

Run: ``python proofs/train_free_roots_unconstrained.py [--fast] [--out DIR]``; the proof itself is
:func:`dtd_formal.symbolic.registry.CLAIMS["train_free_roots_unconstrained"].prove` (see its module docstring for the formulas).
"""

import sys

from _runner import main

if __name__ == "__main__":
    sys.exit(main(["train_free_roots_unconstrained"]))

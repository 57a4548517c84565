"""Run every claim's exact proof (the same as ``dtd-formal prove``): ``python proofs/run_all.py [--fast] [--out DIR]``."""

import sys

from _runner import main

from dtd_formal.symbolic.registry import CLAIMS

if __name__ == "__main__":
    sys.exit(main(list(CLAIMS)))

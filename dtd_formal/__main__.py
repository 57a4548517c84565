"""``python -m dtd_formal`` = ``dtd-formal``."""

import sys

from .cli import main

sys.exit(main())

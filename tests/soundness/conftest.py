"""The soundness suite imports the shared mutants of tests/ (tests/mutants.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

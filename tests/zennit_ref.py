"""Import zennit for cross-checks, with the tests-only torchvision stand-in when torchvision is absent."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest


def import_zennit():  # type: ignore[no-untyped-def]
    """Return the zennit package or skip the calling test cleanly."""
    try:
        importlib.import_module("torchvision.models.resnet")
    except ImportError:
        stub = str(Path(__file__).parent / "stubs")
        if stub not in sys.path:
            sys.path.insert(0, stub)
    return pytest.importorskip("zennit")

"""dtd_formal: exact verification of Deep Taylor Decomposition / LRP rules on ReLU networks.

See README.md for the quickstart; THEORY.md (shared) for the mathematics.
"""

from . import rules
from .dtd import Relevance, Roots, constant_roots, exact_dtd, gradient_times_input, lrp, roots, rule_roots
from .errors import BudgetError, DTDFormalError, InputError, UnsupportedLayerError
from .exact import to_float, to_fraction, to_fraction_array
from .network import FloatNetwork, Network
from .regions import RootRegionRecord, RootRegionReport, root_regions

__version__ = "0.1.0"


def load(path: str, **kwargs):  # type: ignore[no-untyped-def]
    """Load a network by file extension: .onnx, .nnet or .json (see :mod:`dtd_formal.io`)."""
    from .io import load as _load

    return _load(path, **kwargs)


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """Lazy submodules that import heavier dependencies (torch, onnx): ``dtd.examples``, ``dtd.io``."""
    if name in ("examples", "io"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'dtd_formal' has no attribute {name!r}")


__all__ = [
    "rules", "Relevance", "Roots", "constant_roots", "exact_dtd", "gradient_times_input", "lrp", "roots",
    "rule_roots", "BudgetError", "DTDFormalError", "InputError", "UnsupportedLayerError", "to_float",
    "to_fraction", "to_fraction_array", "FloatNetwork", "Network", "RootRegionRecord", "RootRegionReport",
    "root_regions", "load", "__version__",
]

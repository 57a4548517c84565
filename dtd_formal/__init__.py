"""dtd_formal: exact verification of Deep Taylor Decomposition / LRP rules on ReLU networks.

See README.md for the quickstart, docs/api.md for the API and CLI contract, docs/theory.md for the mathematics.
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


def prove(name: str, fast: bool = False):  # type: ignore[no-untyped-def]
    """Prove a claim by its stable name (``dtd_formal.symbolic.registry.CLAIMS``): Proved / Refuted / Unknown."""
    from .symbolic.registry import prove as _prove

    return _prove(name, fast=fast)


def find_root_exit(net, rule, layer=1, neuron=None, domain=(0, 1), scope="upper", timeout=60.0, **kwargs):  # type: ignore[no-untyped-def]
    """Refuted / Proved / Unknown: does some input in the box have a root that leaves its region?
    (see :func:`dtd_formal.smt.root_exit.find_root_exit`; Z3/SciPy are imported on first use)."""
    from .smt.root_exit import find_root_exit as _find

    return _find(net, rule, layer=layer, neuron=neuron, domain=domain, scope=scope, timeout=timeout, **kwargs)


def find_violation(net, rule, property, domain=(0, 1), timeout=60.0, **kwargs):  # type: ignore[no-untyped-def]
    """Refuted / Proved / Unknown: does some input in the box violate a rule property?
    (see :func:`dtd_formal.smt.violations.find_violation`)."""
    from .smt.violations import find_violation as _find

    return _find(net, rule, property, domain=domain, timeout=timeout, **kwargs)


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """Lazy submodules that import heavier dependencies (torch, onnx, z3, sympy): ``dtd.examples``, ``dtd.io``,
    ``dtd.torch``, ``dtd.testing``, ``dtd.symbolic``, ``dtd.smt``, ``dtd.experiments``, ``dtd.graph``, and
    ``dtd.audit`` (callable: ``dtd.audit(model, x, explainer, ...)``, :func:`dtd_formal.audit.audit`)."""
    if name in ("examples", "io", "torch", "testing", "symbolic", "smt", "experiments", "graph", "audit"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'dtd_formal' has no attribute {name!r}")


__all__ = [
    "rules", "Relevance", "Roots", "constant_roots", "exact_dtd", "gradient_times_input", "lrp", "roots",
    "rule_roots", "BudgetError", "DTDFormalError", "InputError", "UnsupportedLayerError", "to_float",
    "to_fraction", "to_fraction_array", "FloatNetwork", "Network", "RootRegionRecord", "RootRegionReport",
    "root_regions", "load", "prove", "find_root_exit", "find_violation", "__version__",
]

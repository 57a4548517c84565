"""Torch backend: the catalogue's rules as modified gradients on nn.Modules, batched roots and region checks, CSC,
and ONNX conv nets as modules.

- :func:`lrp` / :func:`modified_gradients` (:mod:`.lrp`): LRP with any catalogue rule or composite, one forward and
  one backward pass; the rules run through the ``ops`` namespaces of :mod:`.ops`.
- :func:`roots` / :func:`root_regions` (:mod:`.roots`): train-free roots and their region verdicts, batched.
- :func:`csc` (:mod:`.csc`): cosine similarity convergence.
- :func:`from_onnx` (:mod:`.onnx_import`).
- :func:`build_plan` (:mod:`.graph`): the torch.fx trace, BatchNorm canonizer and refusals behind all of them.
- zennit's interface: :mod:`.composites` (its presets and layer/name maps, zennit convention by default),
  :mod:`.canonizers` (canonizers as objects), :class:`~.attribution.Gradient` (its attributor), and
  :func:`~.heatmap.heatmap` (its imgify conventions).

``import torch`` inside this package is absolute and resolves to PyTorch itself; the subpackage is reached as
``dtd_formal.torch`` (or lazily as ``dtd.torch``).
"""

from . import canonizers, composites
from .attribution import Gradient
from .csc import CSCReport, csc
from .graph import build_plan
from .heatmap import heatmap, save_heatmap
from .lrp import gradient_times_input, lrp, modified_gradients, top_relevance
from .onnx_import import from_onnx
from .ops import LazyOps, TorchOps
from .roots import TorchRootRegionRecord, TorchRoots, root_regions, roots

__all__ = [
    "CSCReport",
    "Gradient",
    "LazyOps",
    "TorchOps",
    "TorchRootRegionRecord",
    "TorchRoots",
    "build_plan",
    "csc",
    "from_onnx",
    "canonizers",
    "composites",
    "gradient_times_input",
    "heatmap",
    "lrp",
    "modified_gradients",
    "root_regions",
    "roots",
    "save_heatmap",
    "top_relevance",
]

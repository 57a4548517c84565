"""Networks as graphs of exact piecewise-linear operators (convolutions, pools, residual sums, index maps).

- :mod:`.operators`: the operators and their patch form;
- :mod:`.network`: :class:`GraphNetwork` (evaluation over any ops namespace, patterns, gradients, JSON);
- :mod:`.build`: :class:`GraphBuilder` (how loaders and tests make graphs);
- :mod:`.patch_ops`: the rules' ops on a convolution in patch form (one rule definition for dense and conv);
- :mod:`.explain`: LRP, roots and root-region verdicts on graphs, exact;
- :mod:`.certified`: certified float64 evaluation of batches of roots (exact fall-back where it cannot decide);
- :mod:`.modular`: residues modulo a prime (a fast exact test that two affine maps differ);
- :mod:`.serialize`: the graph JSON format.
"""

from .build import GraphBuilder
from .network import GraphNetwork
from .operators import AvgPool, Concat, Conv, Dense, Gather, Input, MaxPool, Relu, Scale

__all__ = ["GraphBuilder", "GraphNetwork", "AvgPool", "Concat", "Conv", "Dense", "Gather", "Input", "MaxPool", "Relu",
           "Scale"]

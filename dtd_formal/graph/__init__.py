"""Networks as graphs of exact piecewise-linear operators (convolutions, pools, residual sums, index maps).

- :mod:`.operators`: the operators and their patch form;
- :mod:`.network`: :class:`GraphNetwork` (evaluation over any ops namespace, patterns, gradients, JSON);
- :mod:`.patch_ops`: the rules' ops on a convolution in patch form (one rule definition for dense and conv);
- :mod:`.explain`: LRP, roots and root-region verdicts on graphs, exact.
"""

from .network import GraphNetwork
from .operators import AvgPool, Concat, Conv, Dense, Gather, Input, MaxPool, Relu, Scale

__all__ = ["GraphNetwork", "AvgPool", "Concat", "Conv", "Dense", "Gather", "Input", "MaxPool", "Relu", "Scale"]

"""zennit's ``Gradient`` attributor, computed by the torch backend: a drop-in for ``zennit.attribution.Gradient``.

::

    with Gradient(model=model, composite=composite) as attributor:
        output, relevance = attributor(x, torch.eye(n_classes)[[c]])

``attr_output`` is zennit's: a tensor of the output's shape (or one row of it) used as the output relevance
:math:`R^L` (``grad_outputs``), a callable ``output -> tensor``, or None for the output itself
(:math:`R^L = f(x)`, zennit's default). The relevance is :func:`dtd_formal.torch.lrp` with
``target=R^L``; the model is not modified (no hooks are left behind, inside or after the block).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import InputError
from .lrp import lrp


class Gradient:
    """Attributor with zennit's interface (module docstring)."""

    def __init__(self, model: nn.Module, composite: Any = None, attr_output: Any = None,
                 activation: str | None = None) -> None:
        if composite is None:
            raise InputError("Gradient: give a composite (or a rule): the plain gradient is gradient x input, "
                             "dtd_formal.torch.gradient_times_input")
        self.model, self.composite, self.attr_output, self.activation = model, composite, attr_output, activation

    def __enter__(self) -> Gradient:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __call__(self, input: torch.Tensor, attr_output: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(model output, input relevance) for ``input`` with the output relevance ``attr_output``."""
        with torch.no_grad():
            output = self.model(input)
        spec: Any = self.attr_output if attr_output is None else attr_output
        top = self._output_relevance(output, spec)
        relevance = lrp(self.model, input, self.composite, target=top, activation=self.activation)
        return output, relevance

    @staticmethod
    def _output_relevance(output: torch.Tensor, spec: Any) -> torch.Tensor:
        if spec is None:
            return output.detach().clone()
        if callable(spec):
            spec = spec(output.detach())
        if not isinstance(spec, torch.Tensor):
            raise InputError(f"attr_output must be a tensor, a callable or None, got {type(spec).__name__}")
        return spec.to(dtype=output.dtype, device=output.device)



__all__ = ["Gradient"]

"""Canonizers as objects, as in zennit: ``EpsilonGammaBox(low, high, canonizers=[SequentialMergeBatchNorm()])``.

A canonizer rewrites a model into a form its rules explain as intended. The torch backend's plan
(:func:`dtd_formal.torch.graph.build_plan`) already does what zennit's standard canonizers do, exactly and
without touching the model: a BatchNorm that follows a Conv/Linear is folded into that layer's weight and bias
(zennit's ``SequentialMergeBatchNorm``; its ``VGGCanonizer`` is that one), and a residual ``p + q`` is attributed
proportionally, :math:`R_p = p \\odot R / (p + q)` (zennit's ``ResNetCanonizer``, which swaps torchvision's
``+=`` for its ``Sum`` module with the ``Norm`` rule). So a composite's canonizers are checked, not run: each must
be one of these (the classes below, or zennit's own objects of those names); any other canonizer is refused,
because applying a transformation the backend does not know would explain a different model.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError


class Canonizer:
    """A model transformation the backend performs itself (module docstring)."""

    #: what the backend does in its place (shown in errors and reprs)
    does = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SequentialMergeBatchNorm(Canonizer):
    """Fold each BatchNorm that follows a Conv/Linear into it: :math:`W' = \\gamma W / \\sigma`,
    :math:`b' = \\gamma (b - \\mu) / \\sigma + \\beta` with :math:`\\sigma = \\sqrt{\\mathrm{var} + \\epsilon}`."""

    does = "BatchNorm after a Conv/Linear folded into it"


class MergeBatchNorm(SequentialMergeBatchNorm):
    """zennit's base name for the BatchNorm merge (the same folding)."""


class VGGCanonizer(SequentialMergeBatchNorm):
    """zennit's VGG canonizer: the BatchNorm merge."""


class ResNetCanonizer(SequentialMergeBatchNorm):
    """zennit's ResNet canonizer: the BatchNorm merge and the residual sum attributed proportionally."""

    does = "BatchNorm folded; residual sums attributed proportionally"


KNOWN = {cls.__name__: cls for cls in (SequentialMergeBatchNorm, MergeBatchNorm, VGGCanonizer, ResNetCanonizer)}


def check_canonizers(rule_or_composite: Any) -> list[Canonizer]:
    """The composite's canonizers as this module's objects; an unknown one raises :class:`InputError`."""
    out: list[Canonizer] = []
    for c in getattr(rule_or_composite, "canonizers", None) or []:
        name = type(c).__name__
        if isinstance(c, Canonizer):
            out.append(c)
        elif name in KNOWN:  # zennit's object of the same name: the same transformation
            out.append(KNOWN[name]())
        else:
            raise InputError(
                f"canonizer {name} is not supported: the torch backend performs "
                f"{', '.join(sorted(KNOWN))} itself (BatchNorm folding, proportional residual sums) and refuses "
                "other model rewrites rather than explain a different model")
    return out


__all__ = ["Canonizer", "MergeBatchNorm", "ResNetCanonizer", "SequentialMergeBatchNorm", "VGGCanonizer",
           "check_canonizers"]

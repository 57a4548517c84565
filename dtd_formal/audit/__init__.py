"""Audit LRP explainers (zennit composites, captum LRP, dtd_formal composites, any callable) layer by layer
against the exact definition of the rules they claim: :func:`audit` returns an :class:`AuditReport`.

``dtd.audit(model, x, explainer, ...)`` calls :func:`audit`: this package is itself callable (its module object
has a ``__call__``), so ``import dtd_formal as dtd; dtd.audit(...)`` works whether or not the submodule was
imported first (importing it binds ``dtd_formal.audit`` to this module, which would otherwise shadow a function).
"""

import sys
import types
from typing import Any

from .core import audit
from .report import AuditReport, CanonizerRecord, LayerRecord


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> AuditReport:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["AuditReport", "CanonizerRecord", "LayerRecord", "audit"]

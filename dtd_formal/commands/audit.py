"""``dtd-formal audit MODEL --explainer KIND:SPEC --inputs FILE [--target C] [--canonizer NAME ...] [--exact]
[--json] [--out DIR]``: check an LRP explainer layer by layer against the exact definition of its rules.

MODEL is an ONNX file (:func:`dtd_formal.torch.from_onnx`), or a ``.pt`` state dict with ``--module
pkg.mod:Factory`` (a function or class of no arguments that builds the module; the state dict is loaded with
``weights_only=True``). The explainer:

- ``zennit:PRESET[:k=v,...]`` -- a zennit composite by class name (``zennit:EpsilonPlusFlat``,
  ``zennit:EpsilonGammaBox:low=-3,high=3``), with ``--canonizer`` names from ``zennit.canonizers``;
- ``captum:LRP`` -- captum's LRP with its default rule per layer type (``EpsilonRule``); the shape-only modules
  captum has no default for (Flatten, Unflatten, Identity, Dropout) get its ``IdentityRule``, handing relevance on
  in the input's shape (:func:`reshape_identity_rule`; captum's own breaks at a Flatten);
- ``dtd:SPEC`` -- a dtd_formal rule or preset string (``dtd:epsilon-plus-flat@zennit``, ``dtd:gamma:0.25``).

Prints the report (Markdown; the JSON with ``--json``); ``--out DIR`` writes ``audit.json``, ``audit.md`` and
``audit.png``. Exit 0: sound; 1: a finding (leaks, deviates, uncovered); 2: bad input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="check zennit / captum / dtd_formal LRP layer by layer against the exact definition")
    p.add_argument("model", help="ONNX model (.onnx), or a .pt state dict with --module")
    p.add_argument("--module", default=None, metavar="PKG.MOD:FACTORY",
                   help="builds the module for a .pt state dict (the current folder is importable)")
    p.add_argument("--explainer", required=True, metavar="KIND:SPEC",
                   help="zennit:PRESET[:k=v,...] | captum:LRP | dtd:RULE_OR_PRESET")
    p.add_argument("--canonizer", action="append", default=[], metavar="NAME",
                   help="a zennit canonizer class (zennit.canonizers), e.g. SequentialMergeBatchNorm; repeatable")
    p.add_argument("--inputs", required=True, help=".npy file: a batch (N, ...) or one input")
    p.add_argument("--target", type=int, default=None, metavar="C", help="explained class (default: the argmax)")
    p.add_argument("--exact", action="store_true", help="end to end against the exact engine where it loads the model")
    p.add_argument("--no-roots", action="store_true", help="skip the root-region check")
    p.add_argument("--tolerance", type=float, default=1e-6, help="relative deviation counted as agreement")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--out", default=None, metavar="DIR", help="write audit.json, audit.md and audit.png")
    p.set_defaults(func=run)


def _load_model(path: str, module: str | None) -> Any:
    import torch

    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.suffix.lower() == ".onnx":
        from ..torch import from_onnx

        return from_onnx(path)
    if p.suffix.lower() in (".pt", ".pth"):
        if not module or ":" not in module:
            raise InputError(f"{path}: a state dict needs --module pkg.mod:Factory (the code that builds the model)")
        mod_name, _, attr = module.partition(":")
        if "" not in sys.path and "." not in sys.path:
            sys.path.insert(0, "")
        try:
            factory = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as exc:
            raise InputError(f"--module {module}: {exc}") from None
        model = factory()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - torch's load errors are many; name the file
            raise InputError(f"{path}: cannot load it as the state dict of {module} ({exc})") from None
        return model.eval()
    raise InputError(f"{path}: MODEL must be .onnx, or .pt with --module")


def reshape_identity_rule() -> Any:
    """captum's ``IdentityRule`` for a module that only moves values (Flatten, Identity, Dropout in eval): the
    relevance entering it, handed on in its input's shape. captum's own hands it on in the output's shape, which
    torch refuses at a Flatten; its ``EpsilonRule`` would divide by stab(a) = a + 1e-9 sign0(a), a change of order
    1e-9 / |a| that no rule claims."""
    from captum.attr._utils.lrp_rules import IdentityRule

    class ReshapeIdentityRule(IdentityRule):
        def _create_backward_hook_input(self, inputs: Any) -> Any:
            def _backward_hook_input(grad: Any) -> Any:
                relevance = self.relevance_output[grad.device].reshape(inputs.shape)
                if self._has_single_input:
                    self.relevance_input[grad.device] = relevance.data
                return relevance

            return _backward_hook_input

    return ReshapeIdentityRule()


def build_explainer(spec: str, canonizers: list[str], model: Any) -> Any:
    """The explainer object of a ``KIND:SPEC`` string (module docstring)."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "dtd":
        from ..rules.parse import parse_explainer

        if canonizers:
            raise InputError("--canonizer is for zennit explainers (dtd_formal folds BatchNorm itself)")
        return parse_explainer(rest)
    if kind == "zennit":
        from ..rules.parse import _number

        try:
            import zennit.canonizers as zcan
            import zennit.composites as zc
        except ImportError as exc:
            raise InputError(f"--explainer {spec}: zennit is not importable ({exc})") from None
        name, _, args_text = rest.partition(":")
        cls = getattr(zc, name.strip(), None)
        if not isinstance(cls, type):
            raise InputError(f"--explainer {spec}: zennit.composites has no composite {name!r}")
        kwargs = {}
        for part in (q.strip() for q in args_text.split(",") if q.strip()):
            key, eq, value = part.partition("=")
            if not eq:
                raise InputError(f"--explainer {spec}: parameters are key=value, got {part!r}")
            kwargs[key.strip()] = float(_number(value.strip(), spec))
        objs = []
        for c in canonizers:
            ccls = getattr(zcan, c, None)
            if not isinstance(ccls, type):
                raise InputError(f"--canonizer {c}: zennit.canonizers has no such class")
            objs.append(ccls())
        try:
            return cls(**kwargs, canonizers=objs or None)
        except TypeError as exc:
            raise InputError(f"--explainer {spec}: {exc}") from None
    if kind == "captum":
        if rest.strip() != "LRP":
            raise InputError(f"--explainer {spec}: only captum:LRP is supported")
        try:
            from captum.attr import LRP
        except ImportError as exc:
            raise InputError(f"--explainer {spec}: captum is not importable ({exc})") from None
        from torch import nn

        for m in model.modules():  # captum has no default rule for shape-only modules
            if isinstance(m, (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout)) and not hasattr(m, "rule"):
                m.rule = reshape_identity_rule()
        return LRP(model)
    raise InputError(f"--explainer {spec!r}: expected zennit:PRESET, captum:LRP or dtd:SPEC")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..audit import audit
    from .common import print_json
    from .explain import load_input_batch

    model = _load_model(args.model, args.module)
    explainer = build_explainer(args.explainer, args.canonizer, model)
    if str(args.model).lower().endswith(".onnx"):
        from .explain import onnx_input_shape

        _, shape = onnx_input_shape(args.model)
    else:
        shape = tuple(np.load(args.inputs, allow_pickle=False).shape[1:]) if Path(args.inputs).exists() else ()
    x, _ = load_input_batch(args.inputs, shape, f"model {args.model}")
    report = audit(model, torch.as_tensor(np.asarray(x, dtype=np.float64)), explainer, target=args.target,
                   tolerance=args.tolerance, exact=args.exact, roots=not args.no_roots)
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {args.out}: exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
        (out / "audit.json").write_text(report.to_json())
        (out / "audit.md").write_text(report.to_markdown())
        report.figure(out / "audit.png")
    if args.json:
        print_json(report.to_dict())
    else:
        print(report.to_markdown(), end="")
    return 0 if report.verdict == "sound" else 1

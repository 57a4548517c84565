"""Loaders: ``load(path)`` by extension (.onnx, .nnet, .json); torch ``nn.Sequential`` via ``Network.from_torch``.

Every loader converts floats exactly and refuses what it cannot represent exactly (the error names the file and
the layer or operator). Model files are read without executing code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..network import Network


def load_json(path: str | Path) -> Network:
    """The package's own exact JSON format (:meth:`Network.save`)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read JSON ({exc})") from None
    return Network.from_json(data, source=str(path))


def load(path: str | Path, **kwargs: Any) -> Network:
    """Load a network by file extension: ``.onnx``, ``.nnet`` or ``.json``."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    suffix = p.suffix.lower()
    if suffix == ".json":
        return load_json(p, **kwargs)
    if suffix == ".onnx":
        from .onnx_io import load_onnx

        return load_onnx(p, **kwargs)
    if suffix == ".nnet":
        from .nnet import load_nnet

        return load_nnet(p, **kwargs)
    raise InputError(f"{path}: unknown model format {suffix!r} (expected .onnx, .nnet or .json)")


__all__ = ["load", "load_json"]

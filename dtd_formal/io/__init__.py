"""Loaders: ``load(path)`` by extension (.onnx, .nnet, .json, .pt/.pth state dicts); torch ``nn.Sequential`` via
``Network.from_torch``.

Every loader converts floats exactly and refuses what it cannot represent exactly (the error names the file and
the layer or operator). Model files are read without executing code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..network import Network


def load_json(path: str | Path) -> Any:
    """The package's own exact JSON formats: a dense :class:`Network` (:meth:`Network.save`) or a network graph
    (:meth:`dtd_formal.graph.GraphNetwork.save`, ``"format": "dtd_formal.graph/1"``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read JSON ({exc})") from None
    return network_from_json(data, str(path))


def network_from_json(data: Any, source: str = "JSON") -> Any:
    """A parsed network JSON object: a network graph when it says ``"format": "dtd_formal.graph/1"``, else a
    dense :class:`Network` (both strict)."""
    from ..graph.network import GRAPH_FORMAT

    if isinstance(data, dict) and data.get("format") == GRAPH_FORMAT:
        from ..graph.network import GraphNetwork

        return GraphNetwork.from_json(data, source=source)
    return Network.from_json(data, source=source)


def load(path: str | Path, **kwargs: Any) -> Any:
    """Load a network by file extension.

    ``.onnx`` (:func:`~dtd_formal.io.onnx_io.load_onnx`: a chain of dense layers becomes a :class:`Network`, a
    graph with convolutions, pools, transposes or residual sums a :class:`~dtd_formal.graph.GraphNetwork`), ``.nnet`` (:func:`~dtd_formal.io.nnet.load_nnet`;
    keyword ``fold_normalization``), ``.json`` (:func:`load_json`), ``.pt``/``.pth`` (a state dict of Linear
    layers, :func:`~dtd_formal.io.torch_io.network_from_torch`; keyword ``final_relu``). Keywords go to the
    loader. Raises :class:`~dtd_formal.errors.InputError` naming the file for a missing file, an unknown
    extension or a malformed file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    suffix = p.suffix.lower()
    if suffix == ".json":
        if kwargs:
            raise InputError(f"{path}: the JSON loader takes no options (got {sorted(kwargs)})")
        return load_json(p)
    if suffix == ".onnx":
        from .onnx_io import load_onnx

        return load_onnx(p, **kwargs)  # a dense Network, or a GraphNetwork for convolutional / residual graphs
    if suffix == ".nnet":
        from .nnet import load_nnet

        return load_nnet(p, **kwargs)
    if suffix in (".pt", ".pth"):
        from .torch_io import network_from_torch

        return network_from_torch(p, **kwargs)
    raise InputError(f"{path}: unknown model format {suffix!r} (expected .onnx, .nnet, .json, .pt or .pth)")


_LAZY = {
    "load_onnx": "onnx_io",
    "load_nnet": "nnet",
    "network_from_torch": "torch_io",
    "network_to_torch": "torch_io",
}


def __getattr__(name: str) -> Any:
    """The format loaders, imported on first use (onnx and torch are heavy): ``dtd_formal.io.load_onnx`` etc."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["load", "load_json", *_LAZY]

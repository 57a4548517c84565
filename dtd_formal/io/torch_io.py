r"""torch <-> :class:`~dtd_formal.network.Network`: ``nn.Sequential`` models and Linear state dicts.

Reading (:func:`network_from_torch`) walks the modules in order (nested ``nn.Sequential`` flattened):

- ``nn.Linear``: an affine map :math:`z = W a + b`, every float weight converted exactly (``Fraction(float(w))``).
- ``nn.ReLU`` (``inplace`` too): closes the current affine map as one layer of the network; a ReLU right after
  a ReLU is idempotent and skipped; a ReLU before any Linear is refused.
- ``nn.Flatten`` (``start_dim >= 1``), ``nn.Identity``, ``nn.Dropout`` in eval mode: no change.
- ``nn.BatchNorm1d`` (eval mode, running statistics) right after a single ``nn.Linear``: folded into it as
  :math:`W' = s \odot W,\ b' = s \odot b + t` with :math:`s = \gamma / \sqrt{\sigma^2 + \epsilon}` and
  :math:`t = \beta - \mu s`, computed **in float64** and then converted exactly. The square root makes an exact
  fold impossible, so the exact network *is* the float64-folded network: its weights are exactly those float64
  numbers, and it matches torch's eval output to float64 rounding, not exactly.
- Two ``nn.Linear`` with no ReLU between them compose exactly into one layer:
  :math:`W = W_2 W_1,\ b = W_2 b_1 + b_2` (the network then has fewer layers than the model has Linears;
  ``metadata["layer_modules"]`` lists the module names behind each layer).

A trailing ``nn.ReLU`` gives ``final_relu=True``. Any other module raises
:class:`~dtd_formal.errors.UnsupportedLayerError` naming the module and its type; ``nn.Dropout`` or
``nn.BatchNorm1d`` in training mode is refused (call ``model.eval()`` first).

A state dict (or a ``.pt``/``.pth`` file of one, read with ``torch.load(weights_only=True)``: no code runs) holds
no activations: its 2-D ``*.weight`` tensors and their ``*.bias`` are read, in order, as Linear layers with a
ReLU between consecutive ones.

Writing (:func:`network_to_torch`) gives ``nn.Sequential(Linear, ReLU, ..., Linear[, ReLU])`` in float64 by
default (each exact weight rounded to nearest), in eval mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UnsupportedLayerError
from ..exact import ExactArray, to_float, to_fraction_array
from ..network import Network


@dataclass
class _Pending:
    """The affine map since the last ReLU: exact (W, b), the module names in it, and whether it is one Linear."""

    W: ExactArray
    b: ExactArray
    modules: list[str] = field(default_factory=list)
    single_linear: bool = True
    float_W: np.ndarray | None = None  # float64 weights of a single Linear (for the BatchNorm fold)
    float_b: np.ndarray | None = None


def _walk(module: Any, prefix: str) -> list[tuple[str, Any]]:
    """(dotted name, module) of the leaves, nested ``nn.Sequential`` flattened."""
    import torch.nn as nn

    if isinstance(module, nn.Sequential):
        out: list[tuple[str, Any]] = []
        for name, child in module.named_children():
            out.extend(_walk(child, f"{prefix}.{name}" if prefix else name))
        return out
    return [(prefix or type(module).__name__, module)]


def _linear_arrays(name: str, m: Any) -> tuple[np.ndarray, np.ndarray]:
    """float64 copies (exact for float16/32/64 parameters) of a Linear's weight and bias."""
    W = m.weight.detach().cpu().double().numpy()
    b = m.bias.detach().cpu().double().numpy() if m.bias is not None else np.zeros(W.shape[0])
    for what, arr in (("weight", W), ("bias", b)):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"module {name!r} (Linear): {what} has NaN or inf entries")
    return W, b


def _fold_batchnorm(name: str, bn: Any, pending: _Pending | None) -> _Pending:
    r"""Fold eval-mode BatchNorm1d into the single Linear before it, in float64 (see the module docstring)."""
    kind = type(bn).__name__
    if pending is None or not pending.single_linear or pending.float_W is None:
        raise UnsupportedLayerError(
            f"module {name!r} ({kind}): BatchNorm1d is folded only into a single nn.Linear directly before it"
        )
    if bn.running_mean is None or bn.running_var is None:
        raise UnsupportedLayerError(
            f"module {name!r} ({kind}): no running statistics (track_running_stats=False); it is not a fixed affine map"
        )
    n = pending.float_W.shape[0]
    if bn.num_features != n:
        raise InputError(f"module {name!r} ({kind}): {bn.num_features} features after a Linear with {n} outputs")
    mean = bn.running_mean.detach().cpu().double().numpy()
    var = bn.running_var.detach().cpu().double().numpy()
    gamma = bn.weight.detach().cpu().double().numpy() if bn.weight is not None else np.ones(n)
    beta = bn.bias.detach().cpu().double().numpy() if bn.bias is not None else np.zeros(n)
    s = gamma / np.sqrt(var + float(bn.eps))
    t = beta - mean * s
    W = s[:, None] * pending.float_W
    b = s * pending.float_b + t
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
        raise InputError(f"module {name!r} ({kind}): folding gives NaN or inf (check running_var and eps)")
    return _Pending(
        to_fraction_array(W, f"module {name!r} folded weight"),
        to_fraction_array(b, f"module {name!r} folded bias"),
        pending.modules + [name],
        single_linear=False,  # a second BatchNorm would fold into an already folded map
        float_W=None,
        float_b=None,
    )


def network_from_torch(model: Any, final_relu: bool | None = None) -> Network:
    """Exact :class:`Network` from a torch ``nn.Sequential``, a single ``nn.Linear``, a state dict or a file of one.

    Parameters
    ----------
    model : nn.Module, Mapping[str, Tensor], str or Path
        The model (see the module docstring for the supported modules), a state dict of Linear layers, or a
        ``.pt``/``.pth`` file holding one (read with ``torch.load(weights_only=True)``).
    final_relu : bool, optional
        For a state dict: whether a ReLU follows the last layer (default False). For a module it is read from
        the model; passing a value that contradicts the model is an error.

    Returns
    -------
    Network
        ``metadata``: ``source`` ("torch" or the file), ``layer_modules`` (module names per layer).

    Raises
    ------
    UnsupportedLayerError
        A module other than those listed, named with its dotted name and type.
    InputError
        Training-mode Dropout/BatchNorm1d, NaN/inf parameters, shape mismatches, an unreadable file.
    """
    if isinstance(model, (str, Path)):
        return _from_state_dict(_load_state_file(Path(model)), final_relu, source=str(model))
    if isinstance(model, Mapping):
        return _from_state_dict(model, final_relu, source="state dict")
    import torch.nn as nn

    if not isinstance(model, nn.Module):
        raise InputError(f"expected an nn.Module, a state dict or a file, got {type(model).__name__}")
    layers: list[tuple[ExactArray, ExactArray]] = []
    layer_modules: list[list[str]] = []
    pending: _Pending | None = None
    relu_last = False
    for name, m in _walk(model, ""):
        kind = type(m).__name__
        if isinstance(m, nn.Linear):
            W64, b64 = _linear_arrays(name, m)
            W = to_fraction_array(W64, f"module {name!r} weight")
            b = to_fraction_array(b64, f"module {name!r} bias")
            if pending is None:
                expected = layers[-1][0].shape[0] if layers else W.shape[1]
                if W.shape[1] != expected:
                    raise InputError(f"module {name!r} (Linear): {W.shape[1]} inputs, but the layer before has {expected} outputs")
                pending = _Pending(W, b, [name], True, W64, b64)
            else:
                if W.shape[1] != pending.W.shape[0]:
                    raise InputError(
                        f"module {name!r} (Linear): {W.shape[1]} inputs, but the map before has {pending.W.shape[0]} outputs"
                    )
                pending = _Pending(W.dot(pending.W), W.dot(pending.b) + b, pending.modules + [name], False)
            relu_last = False
        elif isinstance(m, nn.ReLU):
            if pending is not None:
                layers.append((pending.W, pending.b))
                layer_modules.append(pending.modules + [name])
                pending = None
            elif not relu_last:  # a ReLU on the raw input: no affine map to close
                raise UnsupportedLayerError(
                    f"module {name!r} (ReLU): a ReLU before any Linear layer is not supported"
                )
            relu_last = True
        elif isinstance(m, (nn.Dropout, nn.BatchNorm1d)):
            if m.training:
                raise InputError(
                    f"module {name!r} ({kind}) is in training mode; call model.eval() first "
                    "(only the eval-mode map is a fixed function)"
                )
            if isinstance(m, nn.BatchNorm1d):
                pending = _fold_batchnorm(name, m, pending)
                relu_last = False
        elif isinstance(m, nn.Identity):
            pass
        elif isinstance(m, nn.Flatten):
            if m.start_dim == 0:
                raise UnsupportedLayerError(f"module {name!r} (Flatten): start_dim=0 would flatten the batch dimension")
        else:
            raise UnsupportedLayerError(
                f"module {name!r} ({kind}) is not supported as a dense network (Linear, ReLU, Flatten, Identity, "
                "Dropout, BatchNorm1d); for convolutional or residual models pass input_shape, e.g. "
                "Network.from_torch(model, input_shape=(3, 32, 32)), to read the exact operator graph"
            )
    if pending is None and not layers:
        raise InputError("the model has no nn.Linear layer")
    model_final_relu = pending is None
    if pending is not None:
        layers.append((pending.W, pending.b))
        layer_modules.append(pending.modules)
    if final_relu is not None and bool(final_relu) != model_final_relu:
        raise InputError(
            f"final_relu={final_relu} contradicts the model, which {'ends' if model_final_relu else 'does not end'} with a ReLU"
        )
    return Network(
        [W for W, _ in layers],
        [b for _, b in layers],
        final_relu=model_final_relu,
        metadata={"source": "torch", "layer_modules": layer_modules},
    )


def _load_state_file(path: Path) -> Mapping[str, Any]:
    """``torch.load(path, weights_only=True)``: tensors and containers only, no code runs."""
    import torch

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors, refused globals
        raise InputError(f"{path}: cannot read a torch state dict ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, Mapping):
        raise InputError(f"{path}: expected a state dict (mapping of names to tensors), got {type(obj).__name__}")
    return obj


def _from_state_dict(state: Mapping[str, Any], final_relu: bool | None, source: str) -> Network:
    """Linear layers from ``*.weight`` (2-D) and ``*.bias`` entries, in order, with a ReLU between them."""
    import torch

    def key(prefix: str, leaf: str) -> str:
        return f"{prefix}.{leaf}" if prefix else leaf

    prefixes: list[str] = []
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise InputError(f"{source}: entry {name!r} is not a tensor")
        prefix, _, leaf = name.rpartition(".")
        weight = state.get(key(prefix, "weight"))
        if leaf == "weight" and value.ndim == 2:
            prefixes.append(prefix)
        elif leaf == "bias" and value.ndim == 1 and isinstance(weight, torch.Tensor) and weight.ndim == 2:
            if value.shape[0] != weight.shape[0]:
                raise InputError(f"{source}: {name!r} has {value.shape[0]} entries for {weight.shape[0]} outputs")
            continue
        else:
            raise UnsupportedLayerError(
                f"{source}: entry {name!r} (shape {tuple(value.shape)}) is not a Linear weight or bias; "
                "build the nn.Sequential, load the state dict into it and pass the model"
            )
    if not prefixes:
        raise InputError(f"{source}: no Linear weights (2-D '*.weight' tensors)")
    weights, biases = [], []
    for prefix in prefixes:
        wkey, bkey = key(prefix, "weight"), key(prefix, "bias")
        W = state[wkey]
        b = state.get(bkey)
        weights.append(to_fraction_array(W, f"{source}: {wkey}"))
        biases.append(to_fraction_array(b, f"{source}: {bkey}") if b is not None else to_fraction_array(np.zeros(W.shape[0])))
    try:
        return Network(weights, biases, final_relu=bool(final_relu), metadata={"source": source, "layer_modules": [[p] for p in prefixes]})
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


def network_to_torch(net: Network, dtype: Any = None) -> Any:
    """``nn.Sequential`` of ``nn.Linear``/``nn.ReLU`` computing ``net`` in floats (float64 unless ``dtype``).

    Each exact weight is rounded to the nearest float of ``dtype``; the model is returned in eval mode.
    """
    import torch
    import torch.nn as nn

    dtype = torch.float64 if dtype is None else dtype
    mods: list[nn.Module] = []
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        lin = nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(to_float(W)).to(dtype))
            lin.bias.copy_(torch.from_numpy(to_float(b)).to(dtype))
        mods.append(lin)
        if net.has_relu(l):
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()


__all__ = ["network_from_torch", "network_to_torch"]

"""Helpers shared by the subcommands: model and input loading with clear errors, JSON output."""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, check_timeout
from ..exact import ExactArray, to_fraction_array
from ..network import Network
from ..rules.base import Rule
from ..rules.catalogue import CATALOGUE
from ..rules.parse import parse_rule
from ..verdict import to_jsonable


def positive_seconds(text: str) -> float:
    """argparse type of a time budget: a finite number of seconds > 0."""
    try:
        return check_timeout(float(text), "seconds")
    except (ValueError, InputError):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type of a count or a millisecond budget: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def writable_file(path: str, option: str) -> Path:
    """A file path whose folder exists (checked before any work starts, so that no result is lost)."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{option} {path}: is a folder, expected a file path")
    if not p.parent.is_dir():
        raise InputError(f"{option} {path}: the folder {str(p.parent)!r} does not exist")
    return p


def add_fold_option(p: Any) -> None:
    """``--fold-normalization``: read a .nnet file's input normalisation and output scaling into the weights."""
    p.add_argument("--fold-normalization", action="store_true",
                   help=".nnet models: fold the file's input normalisation and output scaling into the weights "
                        "(exactly), so inputs and the domain are in raw units; the domain is printed")


def load_model(path: str, fold_normalization: bool = False, announce: bool = False) -> Network:
    """Load MODEL (.onnx, .nnet, .json) or a built-in example (``example:paper-mlp[:SEED[:INIT]]``);
    ``fold_normalization`` (.nnet only) folds the normalisation in, and ``announce`` prints the resulting domain."""
    if fold_normalization:
        if not path.lower().endswith(".nnet"):
            raise InputError(f"--fold-normalization applies to .nnet files; {path} is not one")
        if not Path(path).exists():
            raise InputError(f"{path}: no such file")
        from ..io import load

        net = load(path, fold_normalization=True)
        if announce:
            low, high = net.metadata["input_domain"]
            print(f"{path}: normalisation folded into the weights; input domain (raw units): "
                  f"[{', '.join(str(v) for v in low)}] .. [{', '.join(str(v) for v in high)}]")
        return net
    if path.startswith("example:"):
        from ..examples import STUDY_SEED, paper_mlp

        parts = path.split(":")
        if len(parts) < 2 or parts[1] != "paper-mlp" or len(parts) > 4:
            raise InputError(f"unknown example {path!r}; known: example:paper-mlp[:SEED[:INIT]]")
        seed_text = parts[2] if len(parts) > 2 and parts[2] else str(STUDY_SEED)
        if not re.fullmatch(r"\d{1,9}", seed_text):
            raise InputError(f"{path}: the seed must be a non-negative integer, got {seed_text!r}")
        init = parts[3] if len(parts) > 3 else "paper-text"
        if init not in ("paper-text", "paper-code"):
            raise InputError(f"{path}: init must be paper-text or paper-code, got {init!r}")
        return paper_mlp(int(seed_text), init)  # type: ignore[arg-type]
    if not Path(path).exists():
        raise InputError(f"{path}: no such file")
    from ..io import load

    return load(path)


def parse_input_text(text: str, name: str = "--input") -> ExactArray:
    """``0.1,1/3,-2`` -> exact 1-D array (decimals read as the decimal they spell)."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if not parts:
        raise InputError(f"{name}: empty input")
    return to_fraction_array(parts, name)


def load_inputs(path: str, net: Any = None) -> ExactArray:
    """Rows of inputs from .npy (floats converted exactly), .csv or .json (numbers or "num/den" strings).

    With ``net``, an array of any shape is read as one input when it holds exactly the network's number of inputs
    (an MNIST image of shape (28, 28, 1)) and as a batch along its first axis otherwise."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            data: Any = np.load(p, allow_pickle=False)
        elif suffix == ".csv":
            with p.open(newline="") as fh:
                data = [[cell.strip() for cell in row if cell.strip()] for row in csv.reader(fh) if row]
        elif suffix == ".json":
            data = json.loads(p.read_text())
            if isinstance(data, dict) and "inputs" in data:
                data = data["inputs"]
        else:
            raise InputError(f"{path}: unsupported inputs file type {suffix!r} (use .npy, .csv or .json)")
    except (OSError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: cannot read inputs ({exc})") from None
    arr = to_fraction_array(data, path)
    if net is not None and arr.ndim > 2:
        n = net.input_size
        if arr.size == n:
            return arr.reshape(1, n)
        if arr[0].size == n:
            return arr.reshape(arr.shape[0], n)
        raise InputError(f"{path}: an array of shape {arr.shape} holds neither one input nor rows of {n} values")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a 2-D table of inputs, got shape {arr.shape}")
    return arr


def parse_neurons(texts: list[str] | None) -> list[Any] | None:
    """``--neuron 3`` or ``--neuron 0,1,2`` (a conv neuron (channel, y, x) on a graph, three neurons on a dense
    network: :func:`resolve_neurons`), repeatable."""
    if not texts:
        return None
    out: list[Any] = []
    for text in texts:
        parts = [p.strip() for p in str(text).split(",") if p.strip()]
        if not parts or not all(re.fullmatch(r"\d+", p) for p in parts):
            raise InputError(f"--neuron {text!r}: expected an index or channel,y,x (non-negative integers)")
        out.append(int(parts[0]) if len(parts) == 1 else tuple(int(p) for p in parts))
    return out


def resolve_neurons(net: Any, layer: int, neurons: list[Any] | None) -> list[int] | None:
    """Flat neuron indices of ``--neuron`` values: on a graph, an index or channel,y,x of the layer; on a dense
    network, an index or a comma list of indices (``--neuron 0,1,2`` is three neurons there)."""
    if neurons is None:
        return None
    if hasattr(net, "neuron_index"):
        return [net.neuron_index(layer, j) for j in neurons]
    out: list[int] = []
    for j in neurons:
        out.extend(int(v) for v in (j if isinstance(j, tuple) else (j,)))
    return out


def format_flip(flip: Any, net: Any = None) -> str:
    """A flipped unit: "layer:neuron" (conv neurons as "layer:c,y,x" when ``net`` is a graph), or
    "maxpool:name:window"."""
    if net is not None and hasattr(net, "neuron_coords") and len(flip) == 2 and isinstance(flip[0], int):
        return f"{flip[0]}:{','.join(map(str, net.neuron_coords(flip[0], int(flip[1]))))}"
    return ":".join(str(v) for v in flip)


def print_json(obj: Any) -> None:
    json.dump(to_jsonable(obj), sys.stdout, indent=1)
    sys.stdout.write("\n")


def load_rule(text: str) -> Rule:
    """``module:Class`` (the user's own rule: imported, also from the current directory, and instantiated without
    arguments) or a catalogue rule string (``zplus``, ``gamma:0.25``, ``lrp0@zennit``)."""
    module, sep, name = text.partition(":")
    catalogue_name = module.strip().lower().replace("-", "").replace("_", "").split("@")[0]
    is_catalogue = catalogue_name in set(CATALOGUE) | {"z", "zb", "w2", "alpha1beta0"}
    if sep and not is_catalogue and re.fullmatch(r"[A-Za-z_][\w.]*", module) and re.fullmatch(r"[A-Za-z_]\w*", name):
        if str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import failure is bad input
            raise InputError(f"cannot import module {module!r}: {type(exc).__name__}: {exc}") from None
        obj = getattr(mod, name, None)
        if obj is None:
            raise InputError(f"module {module!r} has no attribute {name!r}")
        if isinstance(obj, type):
            if not issubclass(obj, Rule):
                raise InputError(f"{text}: {name} is not a dtd_formal.rules.Rule subclass")
            try:
                obj = obj()
            except Exception as exc:  # noqa: BLE001 - a constructor that needs arguments, or fails
                raise InputError(f"{text}: cannot instantiate {name} without arguments ({exc})") from None
        if not isinstance(obj, Rule):
            raise InputError(f"{text}: {name} is not a dtd_formal.rules.Rule (got {type(obj).__name__})")
        return obj
    return parse_rule(text)

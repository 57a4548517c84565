"""Helpers shared by the subcommands: model and input loading with clear errors, JSON output."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import ExactArray, to_fraction_array
from ..network import Network
from ..verdict import to_jsonable


def load_model(path: str) -> Network:
    """Load MODEL (.onnx, .nnet, .json) or a built-in example (``example:paper-mlp[:SEED[:INIT]]``)."""
    if path.startswith("example:"):
        from ..examples import STUDY_SEED, paper_mlp

        parts = path.split(":")
        if len(parts) < 2 or parts[1] != "paper-mlp":
            raise InputError(f"unknown example {path!r}; known: example:paper-mlp[:SEED[:INIT]]")
        seed = int(parts[2]) if len(parts) > 2 and parts[2] else STUDY_SEED
        init = parts[3] if len(parts) > 3 else "paper-text"
        return paper_mlp(seed, init)  # type: ignore[arg-type]
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


def load_inputs(path: str) -> ExactArray:
    """Rows of inputs from .npy (floats converted exactly), .csv or .json (numbers or "num/den" strings)."""
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
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a 2-D table of inputs, got shape {arr.shape}")
    return arr


def print_json(obj: Any) -> None:
    json.dump(to_jsonable(obj), sys.stdout, indent=1)
    sys.stdout.write("\n")

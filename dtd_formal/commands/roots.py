"""``dtd-formal roots MODEL --input X | --inputs FILE --rule zplus [--scope upper] [--json]``.

Prints, per layer, every root point with its region verdicts, and a summary of exact fractions.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InputError
from ..exact import to_float
from ..regions import root_regions
from ..rules.parse import parse_rule
from .common import (add_fold_option, format_flip, load_inputs, load_model, parse_input_text, parse_neurons,
                     print_json, resolve_neurons)


def register(sub: Any) -> None:
    p = sub.add_parser("roots", help="root points of a rule and whether they leave the input's region")
    p.add_argument("model", help="network file (.onnx, .nnet, .json) or example:paper-mlp[:SEED[:INIT]]")
    add_fold_option(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="one input, comma-separated (0.1,1/3,...; read exactly)")
    src.add_argument("--inputs", help="inputs file: .npy, .csv or .json (one input per row)")
    p.add_argument("--rule", default="zplus", help="rule string (zplus, lrp0, gamma:0.25, zbox:0,1, wsquare, ...)")
    p.add_argument("--scope", choices=("upper", "layer"), default="upper")
    p.add_argument("--layer", type=int, action="append", help="layer(s) to examine (default: all)")
    p.add_argument("--neuron", action="append", metavar="J|C,Y,X",
                   help="only these neurons (an index, or channel,y,x for conv layers); repeatable")
    p.add_argument("--output", type=int, default=0, help="explained output (default 0)")
    p.add_argument("--definition", choices=("true", "paper-code"), default="true")
    p.add_argument("--arithmetic", choices=("exact", "float64"), default="exact")
    p.add_argument("--json", action="store_true", help="machine-readable output (exact rationals as strings)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    net = load_model(args.model, args.fold_normalization, not args.json)
    xs = (net.as_input(parse_input_text(args.input), "--input").reshape(1, -1) if args.input is not None
          else load_inputs(args.inputs, net))
    rule = parse_rule(args.rule)
    neurons = parse_neurons(args.neuron)
    if neurons is not None:
        if not args.layer or len(args.layer) != 1:
            raise InputError("--neuron needs exactly one --layer")
        neurons = resolve_neurons(net, args.layer[0], neurons)
    report = root_regions(
        net,
        xs,
        rule,
        scope=args.scope,
        output=args.output,
        definition=args.definition,
        layers=args.layer,
        arithmetic=args.arithmetic,
        progress=not args.no_progress and not args.json and len(xs) > 1,
        neurons=neurons,
    )
    if args.json:
        print_json({"model": args.model, **report.to_json()})
        return 0
    print(f"model {args.model}: {net!r}; rule {rule.spec()}; scope {args.scope}; definition {args.definition}")
    show_records = len(report.records) <= 60
    if show_records:
        print(f"{'input':>5} {'layer':>5} {'neuron':>6}  {'t':>10}  {'leaves pattern':>14}  {'leaves map':>10}  "
              f"{'in domain':>9}  flipped")
        for r in report.records:
            flips = ", ".join(format_flip(f, net) for f in r.flipped[:6]) + (" ..." if len(r.flipped) > 6 else "")
            neuron = (",".join(map(str, net.neuron_coords(r.layer, r.neuron))) if hasattr(net, "neuron_coords")
                      else str(r.neuron))
            print(f"{r.input_index:>5} {r.layer:>5} {neuron:>6}  {float(r.step):>10.4g}  {str(r.leaves_pattern):>14}  "
                  f"{str(r.leaves_affine_map):>10}  {str(r.root_in_domain):>9}  {flips}")
            if len(report.records) <= 8 and net.input_size <= 32:
                print(f"{'':>19}root = [{', '.join(f'{v:.6g}' for v in to_float(r.root))}]")
    if not show_records:
        print(f"({len(report.records)} roots: --json lists every root and verdict exactly; --layer L --neuron J|C,Y,X "
              "picks some)")
    print("summary (exact fractions of roots):")
    for l, s in report.summary.items():
        if not s["roots"]:
            print(f"  layer {l}: no roots ({s['skipped']})")
            continue
        print(
            f"  layer {l}: {s['roots']} roots; leave pattern {s['leaves_pattern']} ({float(s['leaves_pattern']):.3f}), "
            f"leave affine map {s['leaves_affine_map']} ({float(s['leaves_affine_map']):.3f}), "
            f"in domain {float(s['root_in_domain']):.3f}; skipped {s['skipped']}"
        )
    return 0

"""``dtd-formal regions MODEL --plot out.png [--input X | --inputs FILE] [--rule R] [--extent x0:x1,y0:y1]``:
the 2-D picture of a 2-input network's linear regions, inputs, layer-1 roots and segments (exact verdicts).

The regions are vector polygons (PNG, PDF or SVG by the suffix of ``--plot``); the region count printed and in
``--json`` counts regions of positive area only (a hyperplane is not a region).

Networks with more inputs (conv graphs, MNIST MLPs) get the slice through one input and the root of one layer-1
neuron (``--neuron J|C,Y,X``), coloured by region (:func:`dtd_formal.experiments.figures.plot_slice`)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..errors import InputError
from ..rules.parse import parse_rule
from .common import (add_fold_option, load_inputs, load_model, parse_input_text, parse_neurons, print_json,
                     resolve_neurons)


def _extent(text: str) -> tuple[float, float, float, float]:
    try:
        xr, yr = text.split(",")
        x0, x1 = (float(v) for v in xr.split(":"))
        y0, y1 = (float(v) for v in yr.split(":"))
    except ValueError:
        raise InputError(f"--extent {text!r}: expected x0:x1,y0:y1") from None
    if not (x0 < x1 and y0 < y1):
        raise InputError(f"--extent {text!r}: empty box")
    return x0, x1, y0, y1


def register(sub: Any) -> None:
    p = sub.add_parser("regions", help="plot a network's regions with inputs, roots and segments (2 inputs: the "
                                       "input plane; more: the slice through an input and one root)")
    p.add_argument("model", help="network file (.onnx, .nnet, .json), or example:toy-2d[:SEED]")
    add_fold_option(p)
    p.add_argument("--plot", required=True, help="output image path (.png, .pdf or .svg)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", help="one input x1,x2 (read exactly)")
    src.add_argument("--inputs", help="inputs file (.npy/.csv/.json)")
    p.add_argument("--samples", type=int, default=12, help="without inputs: this many seeded inputs with f_c > 0")
    p.add_argument("--rule", default="zplus")
    p.add_argument("--output", type=int, default=0)
    p.add_argument("--extent", default="-2:2,-2:2", help="x0:x1,y0:y1")
    p.add_argument("--neuron", default=None, metavar="J|C,Y,X",
                   help="networks with more than 2 inputs: the layer-1 neuron whose root spans the slice "
                        "(default: the first relevant one)")
    p.add_argument("--resolution", type=int, default=120, help="slice pictures: pixels per side (default 120)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _run_slice(args: argparse.Namespace, net: Any) -> int:
    """Networks with more than 2 inputs (conv graphs included): the plane through the input and one root."""
    from ..experiments.figures import slice_figure

    if args.input is not None:
        xs = net.as_input(parse_input_text(args.input), "--input").reshape(1, -1)
    elif args.inputs:
        xs = load_inputs(args.inputs, net)
    else:
        raise InputError(f"{args.model}: a network with {net.input_size} inputs needs --input or --inputs (one input)")
    if len(xs) != 1:
        raise InputError(f"a slice picture shows one input; {args.inputs} holds {len(xs)}")
    neurons = resolve_neurons(net, 1, parse_neurons([args.neuron]) if args.neuron is not None else None)
    if neurons is not None and len(neurons) != 1:
        raise InputError(f"--neuron {args.neuron}: a slice shows one neuron's root")
    neuron = None if neurons is None else neurons[0]
    if args.resolution < 8:
        raise InputError(f"--resolution must be at least 8, got {args.resolution}")
    fig = slice_figure(net, xs[0], parse_rule(args.rule), 1, neuron, args.output, args.resolution)
    fig.save(args.plot)
    rec = fig.record
    if args.json:
        print_json({"plot": args.plot, "model": args.model, "regions": fig.regions, "record": rec.to_json()})
    else:
        print(f"wrote {args.plot}; {fig.regions} linear regions on the slice; layer-1 neuron {rec.neuron}: the root "
              f"{'leaves' if rec.leaves_pattern else 'stays in'} the input's region "
              f"(affine map {'changes' if rec.leaves_affine_map else 'unchanged'}), exact")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..experiments.figures import regions_figure, toy_2d_network
    from ..network import Network

    if args.model.startswith("example:toy-2d"):
        parts = args.model.split(":")
        if len(parts) > 2 and parts[2] and not parts[2].isdigit():
            raise InputError(f"{args.model}: the seed must be a non-negative integer, got {parts[2]!r}")
        net = toy_2d_network(int(parts[2]) if len(parts) > 2 and parts[2] else 0)
    else:
        net = load_model(args.model, args.fold_normalization, not args.json)
    if net.input_size != 2 or not isinstance(net, Network):  # a 2-input operator graph: the slice picture too
        return _run_slice(args, net)
    extent = _extent(args.extent)
    if args.input is not None:
        xs = parse_input_text(args.input).reshape(1, -1)
    elif args.inputs:
        xs = load_inputs(args.inputs)
    else:
        rng = np.random.default_rng(0)
        cand = rng.uniform([extent[0], extent[2]], [extent[1], extent[3]], size=(50 * args.samples, 2))
        if net.input_size == 2:
            cand = cand[net.to_float().forward(cand)[:, args.output] > 0][: args.samples]
        xs = cand
    fig = regions_figure(net, xs, parse_rule(args.rule), extent, output=args.output)
    fig.save(args.plot)
    report = fig.report
    summary = report.summary[1] if report else {}
    if args.json:
        print_json({"plot": args.plot, "model": args.model, "regions": fig.regions, "summary": summary,
                    "records": [r.to_json() for r in report.records] if report else []})
    else:
        print(f"wrote {args.plot}; {fig.regions} linear regions in the box; layer-1 roots: {summary.get('roots', 0)}, "
              f"leaving the region: {summary.get('leaves_pattern')}")
    return 0

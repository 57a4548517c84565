"""``dtd-formal counterexample MODEL --rule zplus --layer 1 --domain 0:1 [--neuron j] [--timeout S] [--json]
[--executor local|dask://HOST:PORT] [--definition true|paper-code]``.

For every neuron of the layer (or the given ones): search the input box for an input whose root leaves the linear
region (Refuted, with an exact counterexample), prove that none exists (Proved), or say Unknown. Exit codes:
0 = every neuron got a definite answer (refuted and proved are both answers), 3 = unknowns remain, 2 = bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..exact import to_float
from ..rules.parse import rule_reference
from .common import (add_fold_option, format_flip, load_inputs, load_model, load_rule, parse_neurons,
                     positive_seconds, print_json, resolve_neurons, writable_file)


def register(sub: Any) -> None:
    p = sub.add_parser("counterexample", help="search a box for inputs whose DTD roots leave their linear region")
    p.add_argument("model", help="network file (.onnx, .nnet, .json) or example:paper-mlp[:SEED[:INIT]]")
    add_fold_option(p)
    p.add_argument("--rule", default="zplus", help="root-point rule (zplus, lrp0, gamma:0.25, zbox:0,1, wsquare) or a user rule "
                        "module:Class (imported, also from the current directory)")
    p.add_argument("--layer", type=int, default=1, help="layer whose neurons' roots are examined (default 1)")
    p.add_argument("--neuron", action="append", metavar="J|C,Y,X",
                   help="neuron(s) of the layer: an index, or channel,y,x on conv layers (default: all)")
    p.add_argument("--domain", default=None,
                   help="input box LOW:HIGH, scalars or comma lists (e.g. 0:1), or a VNN-LIB property FILE.vnnlib "
                        "(its input box); default: the model's own input domain when its file records one")
    p.add_argument("--around", default=None, metavar="FILE",
                   help="an input (.npy/.csv/.json, any array shape): search the box of --radius around it "
                        "(intersected with --domain when given)")
    p.add_argument("--radius", default=None, help="half-width of the --around box (exact; e.g. 0.01 or 1/100)")
    p.add_argument("--scope", choices=("upper", "layer"), default="upper")
    p.add_argument("--variant", choices=("pattern", "affine_map"), default="pattern")
    p.add_argument("--output", type=int, default=0, help="explained output (default 0)")
    p.add_argument("--definition", choices=("true", "paper-code"), default="true",
                   help="root step: true (t = z_j / w_j.v_j, default) or paper-code (t = R_j / w_j.v_j)")
    p.add_argument("--timeout", type=positive_seconds, default=60.0, help="seconds per neuron (default 60)")
    p.add_argument("--executor", default=None, help="local (process pool) or dask://HOST:PORT (default: serial)")
    p.add_argument("--save-tests", default=None, metavar="FILE",
                   help="write a pytest regression test for every counterexample to FILE (the network once, beside "
                        "it as FILE's stem + .network.json, checked by digest)")
    p.add_argument("--json", action="store_true", help="machine-readable output (exact rationals as strings)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def report_json(net: Any, per_neuron: dict[int, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The replayable report of a run (``dtd_formal.root-exit-report/1``): the summary, the network once (exact
    JSON; its digest is in every question) and every neuron's self-describing verdict."""
    from ..replay import REPORT_FORMAT

    return {"format": REPORT_FORMAT, **summary, "network": net.to_json(),
            "neurons": {str(j): v.to_json() for j, v in per_neuron.items()}}


def write_tests(path: Path, net: Any, per_neuron: dict[int, Any], rule: Any = None) -> None:
    """Write a pytest regression test per counterexample to ``path``; the network is written once beside it.

    The network goes to ``<path stem>.network.json`` in the same folder (exact JSON, never inlined in the tests:
    a conv net is megabytes). The test module finds it next to itself (``Path(__file__)``, so the two files can be
    moved together), loads it once and refuses it, naming the file, when its digest is not the one the tests were
    written for.

    Parameters
    ----------
    path : Path
        The test module to write.
    net : Network or GraphNetwork
        The network the counterexamples are about.
    per_neuron : dict
        The per-neuron verdicts; a test is written for each refuted one.
    rule : Rule, optional
        The rule searched; needed for a user rule (not a catalogue reference), which the tests import from its
        module.

    Raises
    ------
    InputError
        For a user rule that cannot be imported by the tests (defined in a script or a function).
    """
    from ..smt.counterexample import _network_loader
    from ..testing.counterexample import rule_source

    refuted = {j: v for j, v in per_neuron.items() if v.status == "refuted"}
    if not refuted:
        path.write_text("# dtd-formal counterexample --save-tests: no counterexamples, so no tests\n")
        return
    net_path = path.with_name(path.stem + ".network.json")
    digest = net.digest()
    imports: set[str] = {"from functools import cache", "from pathlib import Path", "from typing import Any"}
    bodies = []
    marker = "<network file>"
    loader = _network_loader(net, digest, marker)
    for j, v in refuted.items():
        src = v.counterexample.to_pytest(net, f"test_root_exit_layer{v.counterexample.layer}_neuron{j}",
                                         network_file=marker)
        head, sep, body = src.partition("\n\n\ndef ")
        if not sep or loader not in body:
            raise RuntimeError(f"neuron {j}: unexpected layout of the generated test; cannot share the network")
        imports.update(line for line in head.splitlines() if line.strip())
        body = body.replace(loader, "    net = _network()\n")
        reference = v.counterexample.rule
        if reference.startswith("python:"):  # a user rule: imported from its module, not parsed
            built = rule_source(rule) if rule is not None else None
            if built is None:
                raise InputError(f"--save-tests {path}: the user rule {reference!r} cannot be imported by a test "
                                 "(define it in a module file)")
            imports.update(built[0])
            body = body.replace(f"parse_rule({reference!r})", built[1])
        bodies.append("def " + body.rstrip() + "\n")
    if not any("parse_rule(" in b for b in bodies):
        imports.discard("from dtd_formal.rules.parse import parse_rule")

    groups: dict[int, list[str]] = {0: [], 1: [], 2: []}  # standard library, dtd_formal, the user's rule module
    for line in sorted(imports, key=lambda i: (not i.startswith("import "), i)):
        top = line.split()[1].split(".")[0]
        groups[0 if top in ("json", "fractions", "functools", "pathlib", "typing") else
               1 if top == "dtd_formal" else 2].append(line)
    header = (
        f'"""Regression tests written by ``dtd-formal counterexample --save-tests``: one per counterexample (an exact\n'
        f'input whose DTD root leaves its linear region). The network is not inlined: it is {net_path.name}\n'
        f'beside this file, loaded once and checked against its digest."""\n\n'
        + "\n\n".join("\n".join(group) for group in groups.values() if group) + "\n\n"
        f"NETWORK_FILE = Path(globals().get(\"__file__\", {str(path.resolve())!r})).with_name({net_path.name!r})\n"
        f"NETWORK_DIGEST = {digest!r}\n\n\n"
        "@cache\n"
        "def _network() -> Any:\n"
        '    """The network of these tests, read once; refused (naming the file) unless its digest is NETWORK_DIGEST."""\n'
        "    if not NETWORK_FILE.is_file():\n"
        '        raise FileNotFoundError(f"{NETWORK_FILE}: the network of these tests is missing (it is written beside "\n'
        '                                "them by dtd-formal counterexample --save-tests)")\n'
        "    net = dtd.load(NETWORK_FILE)\n"
        "    if net.digest() != NETWORK_DIGEST:\n"
        '        raise AssertionError(f"{NETWORK_FILE}: digest mismatch: the file holds {net.digest()}, these tests were "\n'
        '                             f"written for {NETWORK_DIGEST}; the network file was changed or replaced")\n'
        "    return net\n"
    )
    net.save(net_path)
    path.write_text(header + "\n\n" + "\n\n".join(bodies))


def _domain(args: argparse.Namespace, net: Any) -> Any:
    if (args.around is None) != (args.radius is None):
        raise InputError("--around and --radius go together")
    if args.domain is not None and str(args.domain).lower().endswith(".vnnlib"):
        from ..io.vnnlib import read_vnnlib_box

        low, high, info = read_vnnlib_box(args.domain, net.input_size)
        if not args.json:
            print(f"domain: the input box of {args.domain} ({info['inputs']} inputs; {info['output_constraints']} "
                  "output constraints not used)")
        args.domain = (low, high)
    if args.around is not None:
        from ..exact import parse_rational
        from ..smt.problem import parse_box

        xs = load_inputs(args.around, net)
        if len(xs) != 1:
            raise InputError(f"--around {args.around}: expected one input, got {len(xs)}")
        r = parse_rational(args.radius, "--radius")
        if not r > 0:
            raise InputError(f"--radius must be positive, got {args.radius!r}")
        low, high = xs[0] - r, xs[0] + r
        if args.domain is not None or net.metadata.get("input_domain") is not None:
            dlo, dhi = parse_box(args.domain if args.domain is not None else tuple(net.metadata["input_domain"]),
                                 net.input_size, "--domain")
            low = np.array([max(a, b) for a, b in zip(low, dlo)], dtype=object)
            high = np.array([min(a, b) for a, b in zip(high, dhi)], dtype=object)
            if any(a > b for a, b in zip(low, high)):
                raise InputError(f"--around {args.around}: the input lies outside the domain")
        return (low, high)
    if args.domain is not None:
        return args.domain
    dom = net.metadata.get("input_domain")
    if dom is None:
        raise InputError(f"{args.model}: no input domain recorded in the model; pass --domain LOW:HIGH")
    return tuple(dom)


def _name(net: Any, layer: int, j: int) -> str:
    """A neuron as the user names it: its index, or channel,y,x on a conv layer."""
    coords = net.neuron_coords(layer, j) if hasattr(net, "neuron_coords") else (j,)
    return ",".join(map(str, coords))


def run(args: argparse.Namespace) -> int:
    from ..smt.root_exit import find_root_exit

    save_tests = writable_file(args.save_tests, "--save-tests") if args.save_tests else None
    net = load_model(args.model, args.fold_normalization, not args.json)
    rule = load_rule(args.rule)
    net.check_layer(args.layer)
    neurons = resolve_neurons(net, args.layer, parse_neurons(args.neuron))
    verdict = find_root_exit(
        net, rule, layer=args.layer, neuron=neurons, domain=_domain(args, net),
        scope=args.scope, timeout=args.timeout, variant=args.variant, output=args.output,
        executor=args.executor, progress=not (args.json or args.no_progress), definition=args.definition,
    )
    per = getattr(verdict, "per_neuron", None) or {neurons[0]: verdict}  # type: ignore[index]
    counts = {s: sum(v.status == s for v in per.values()) for s in ("refuted", "proved", "unknown")}
    if save_tests is not None:
        write_tests(save_tests, net, per, rule)
    if args.json:
        print_json(report_json(net, per, {"model": args.model, "rule": rule_reference(rule), "layer": args.layer,
                                          "scope": args.scope, "variant": args.variant,
                                          "definition": args.definition, "counts": counts}))
    else:
        print(f"model {args.model}: {net!r}; rule {rule.spec()}; layer {args.layer}; scope {args.scope}; "
              f"variant {args.variant}" + (f"; {args.definition} roots" if args.definition != "true" else ""))
        for j, v in per.items():
            if v.status == "refuted":
                c = v.counterexample
                flips = ", ".join(format_flip(f, net) for f in c.flipped[:6]) + (" ..." if len(c.flipped) > 6 else "")
                print(f"  neuron {_name(net, args.layer, j):>3}: refuted ({v.method}); t = {float(c.step):.6g}; "
                      f"flipped {flips}")
                if net.input_size <= 32:
                    print(f"               x = [{', '.join(f'{u:.6g}' for u in to_float(c.input))}]")
            elif v.status == "proved":
                print(f"  neuron {_name(net, args.layer, j):>3}: proved ({v.method})")
            else:
                print(f"  neuron {_name(net, args.layer, j):>3}: unknown ({v.reason})")
        print(f"summary: {counts['refuted']} refuted, {counts['proved']} proved, {counts['unknown']} unknown")
    return 3 if counts["unknown"] else 0

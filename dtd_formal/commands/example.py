"""``dtd-formal example paper-mlp [--seed S] [--init paper-text|paper-code] --out net.json [--inputs N FILE]``:
write the bundled example network (exact JSON) and, optionally, study inputs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..exact import array_to_json
from ..examples import STUDY_SEED, paper_inputs, paper_mlp


def register(sub: Any) -> None:
    p = sub.add_parser("example", help="write a bundled example network as exact JSON")
    p.add_argument("name", choices=("paper-mlp",))
    p.add_argument("--seed", type=int, default=STUDY_SEED)
    p.add_argument("--init", choices=("paper-text", "paper-code"), default="paper-text")
    p.add_argument("--out", required=True, help="output .json path")
    p.add_argument("--inputs", nargs=2, metavar=("N", "FILE"), help="also write N study inputs (f_0 > 0.1) as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    net = paper_mlp(args.seed, args.init)
    net.save(args.out)
    print(f"wrote {args.out}: {net!r} (seed {args.seed}, init {args.init})")
    if args.inputs:
        n, path = int(args.inputs[0]), args.inputs[1]
        xs = paper_inputs(net, n, seed=args.seed)
        Path(path).write_text(json.dumps({"inputs": array_to_json(xs)}))
        print(f"wrote {path}: {n} inputs x = |N(0, I)| with f_0(x) > 0.1")
    return 0

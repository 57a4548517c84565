"""``dtd-formal replay FILE [--json] [--model MODEL]``: re-check a certificate or a counterexample exactly.

Proof certificates (``dtd-formal prove``): every stored residual is rebuilt from its exact text and re-simplified
(it must be exactly 0); every witness is re-verified in rational arithmetic by its claim's checker; a refutation's
counterexample is re-evaluated; ``--rerun`` also re-runs the proof and requires identical residuals and witnesses.

Counterexamples are recognised by their JSON and replayed in exact arithmetic by code independent of the search
that found them:

- ``"format": "dtd_formal.counterexample/1"`` (:mod:`dtd_formal.testing.counterexample`): the property is
  re-evaluated in Fractions on the stored rule, network and input; it checks when the violation reproduces;
- ``"kind": "root_exit"`` / ``"kind": "violation"`` (:mod:`dtd_formal.smt.counterexample`, also inside a verdict
  ``{"status": "refuted", "counterexample": {...}}`` and in the ``--json`` report of ``dtd-formal counterexample``,
  where every counterexample must replay): :meth:`RootExitCounterexample.replay` /
  :meth:`ViolationCounterexample.replay` on the network embedded in the file (``to_json(net)``), else ``--model``,
  else the file's ``"model"`` path.

Exit 0 if it checks, 1 if not, 2 for a missing or malformed file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError

COUNTEREXAMPLE_FORMAT = "dtd_formal.counterexample/1"


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="re-check a certificate or counterexample exactly")
    p.add_argument("file", help="certificate JSON written by `dtd-formal prove`, or a counterexample JSON")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--rerun", action="store_true",
                   help="also re-run the claim's proof and require identical residuals and witnesses")
    p.add_argument("--model", default=None,
                   help="network for a root-exit/violation counterexample that embeds none (default: its \"model\")")
    p.set_defaults(func=run)


def _read(path: str) -> Any:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None


def _smt_counterexample(data: Any) -> dict[str, Any] | None:
    """The root-exit/violation counterexample object of the file (bare, or inside a refuted verdict)."""
    if not isinstance(data, dict):
        return None
    if data.get("kind") in ("root_exit", "violation"):
        return data
    inner = data.get("counterexample")
    if data.get("status") == "refuted" and isinstance(inner, dict) and inner.get("kind") in ("root_exit", "violation"):
        return {**inner, **({"network": data["network"]} if "network" in data and "network" not in inner else {})}
    return None


def replay_counterexample(path: str, data: Any, model: str | None = None) -> dict[str, Any] | None:
    """Replay a counterexample file exactly; None when the file is not a counterexample (a certificate)."""
    from ..network import Network
    from ..rules.parse import parse_rule

    if isinstance(data, dict) and data.get("format") == COUNTEREXAMPLE_FORMAT:
        from ..testing.counterexample import Counterexample

        try:
            cex = Counterexample.from_json(data, source=path)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: malformed counterexample ({exc})") from None
        outcome = cex.replay()
        return {"kind": "property", "property": cex.property, "rule": cex.rule.spec(), "ok": not outcome.holds,
                "detail": outcome.message or ("the property holds here: the violation does not reproduce"
                                              if outcome.holds else "")}
    if isinstance(data, dict) and isinstance(data.get("neurons"), dict):  # `dtd-formal counterexample --json`
        found = [v for v in data["neurons"].values() if _smt_counterexample(v) is not None]
        if not found:
            raise InputError(f"{path}: the report holds no counterexample to replay")
        reports = [replay_counterexample(path, v, model or data.get("model")) for v in found]
        bad = [r for r in reports if not r["ok"]]  # type: ignore[index]
        return {"kind": "root_exit", "rule": reports[0]["rule"], "ok": not bad,  # type: ignore[index]
                "detail": f"{len(reports) - len(bad)} of {len(reports)} counterexamples replay"}
    obj = _smt_counterexample(data)
    if obj is None:
        return None
    from ..smt.counterexample import RootExitCounterexample, ViolationCounterexample

    if "network" in obj:
        try:
            net = Network.from_json(obj["network"], source=path)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: malformed network ({exc})") from None
    else:
        source = model or obj.get("model")
        if not source:
            raise InputError(f"{path}: the counterexample embeds no network and names no model; pass --model MODEL")
        from .common import load_model

        net = load_model(str(source))
    rule = parse_rule(str(obj.get("rule", "")))
    if obj["kind"] == "root_exit":
        cex = RootExitCounterexample.from_json(obj)
        if cex.input.shape != (net.input_size,) or not 1 <= cex.layer <= net.n_layers:
            raise InputError(f"{path}: the counterexample does not fit the network {net!r}")
        ok = cex.replay(net, rule)
        what = (f"layer {cex.layer} neuron {cex.neuron} ({cex.definition} root, t = {cex.step}) "
                f"{'leaves the region' if cex.variant == 'pattern' else 'changes the affine map'}, flipped "
                f"{[tuple(f) for f in cex.flipped]}")
        return {"kind": "root_exit", "rule": rule.spec(), "ok": ok, "detail": what}
    vcex = ViolationCounterexample.from_json(obj)
    if vcex.input.shape != (net.input_size,):
        raise InputError(f"{path}: the counterexample does not fit the network {net!r}")
    ok = vcex.replay(net, rule)
    return {"kind": "violation", "property": vcex.property, "rule": rule.spec(), "ok": ok,
            "detail": f"{vcex.property} fails at the stored input" if ok else "the property holds at the stored input"}


def run(args: argparse.Namespace) -> int:
    data = _read(args.file)
    report = replay_counterexample(args.file, data, args.model)
    if report is not None:
        if args.json:
            json.dump({"file": args.file, **report}, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            verdict = "checks" if report["ok"] else "DOES NOT CHECK"
            print(f"{args.file}: {report['kind']} counterexample ({report['rule']}): {verdict}"
                  + (f" ({report['detail']})" if report.get("detail") else ""))
        return 0 if report["ok"] else 1
    from ..symbolic.registry import replay_certificate

    cert = replay_certificate(args.file, rerun=args.rerun)
    if args.json:
        json.dump({"file": args.file, **cert.to_json()}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        verdict = "checks" if cert.ok else "DOES NOT CHECK"
        print(f"{args.file}: claim {cert.claim} ({cert.status}): {verdict} "
              f"({cert.identities} identities re-simplified to 0, {cert.witnesses} witnesses re-verified)")
        for f in cert.failures:
            print(f"  {f}")
    return 0 if cert.ok else 1

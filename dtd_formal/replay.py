r"""Re-derive a saved verdict from network + rule + question + evidence, trusting no stored result.

``dtd-formal replay FILE`` (and :func:`replay_file`) reads one of

- a claim certificate (``"format": "dtd_formal.certificate/1"``, ``dtd-formal prove``): the claim's proof is re-run
  and compared field by field (:func:`dtd_formal.symbolic.registry.replay_certificate`);
- a verdict of the search engines (``"format": "dtd_formal.verdict/2"``: ``find_root_exit`` / ``find_violation``,
  ``dtd-formal counterexample``, ``dtd-formal reproduce``);
- a report of ``dtd-formal counterexample --json`` (``"format": "dtd_formal.root-exit-report/1"``): every
  per-neuron verdict in it;
- a property counterexample of ``check-rule`` (``"format": "dtd_formal.counterexample/1"``).

What is re-derived, per verdict (every stored field that is read is compared with its re-derivation; the first
mismatch rejects the file):

- the network: embedded in the file, or given (``model``); its digest must be the question's;
- the rule: the question names it by an exact catalogue reference (parsed, never imported) or as a user rule,
  which the caller must pass (``rule``; its reference must match); nothing named in a file is imported or run;
- the statement: recomputed from the question;
- Refuted: the counterexample is re-derived from its exact input (in the box, exactly; root, step, patterns,
  flipped neurons, verdict) by :meth:`dtd_formal.smt.counterexample.RootExitCounterexample.check` /
  :meth:`~dtd_formal.smt.counterexample.ViolationCounterexample.check`;
- Proved: "trivial" — the reason is re-derived; a relaxation split tree — every node re-derived and checked
  exactly (:func:`dtd_formal.smt.relax.certificate_problems`: interval leaves, LP leaves with freshly derived
  Farkas certificates, the prover's own branching rule), on the verified stock form of the rule; Z3 — the Z3 query
  is built again from the rule's own definition and re-run (it must answer unsat within ``timeout``), after the
  rule's body is checked to agree on Z3 terms and in exact arithmetic (on a network graph: the graph walk's query,
  every max-pool winner case, with the stored case count re-derived; for root exits also the root walk's query
  with its interval root bounding re-derived);
- Unknown: nothing to confirm (rejected, with its reason).

Outcome: a :class:`ReplayReport` (``ok``, ``problems``); a malformed file is an :class:`~dtd_formal.errors.InputError`
(CLI exit 2), a rejection exit 1, a confirmation exit 0. A crash of the re-derivation is reported as an error, never
as a confirmation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .network import Network
from .rules.base import Rule
from .verdict import VERDICT_FORMAT

REPORT_FORMAT = "dtd_formal.root-exit-report/1"
_NOTHING_TO_CONFIRM = "an unknown verdict has nothing to confirm (its question and statement re-derive)"
PROPERTY_CEX_FORMAT = "dtd_formal.counterexample/1"
CERTIFICATE_FORMAT = "dtd_formal.certificate/1"

#: fields of a verdict file that replay does not read (provenance for people; nothing depends on them)
UNCHECKED_VERDICT_FIELDS = ("environment", "method", "found_by", "reason")


@dataclass
class ReplayReport:
    """Outcome of a replay: ``ok`` when everything re-derived; ``problems`` names each mismatch."""

    kind: str
    status: str
    ok: bool
    detail: str = ""
    problems: list[str] = field(default_factory=list)
    parts: list["ReplayReport"] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "status": self.status, "checks": self.ok, "detail": self.detail,
                               "problems": self.problems}
        if self.parts:
            out["parts"] = [p.to_json() for p in self.parts]
        return out


def read_json(path: str | Path) -> Any:
    """The JSON content of ``path`` (:class:`InputError` for a missing or non-JSON file)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a JSON file ({exc})") from None


def user_rule_hint(reference: str, source: str) -> str:
    """The error message for a file that names a user rule (``python:<module>:<class>[<spec>]``) when no rule is given.

    Parameters
    ----------
    reference : str
        The rule reference the file holds (:func:`dtd_formal.rules.parse.rule_reference`).
    source : str
        The file (and part of it) the reference comes from, named first in the message.

    Returns
    -------
    str
        The message: the reference, and the exact ``--rule module:Class`` option (or Python call) that replays it.
    """
    module, _, rest = reference[len("python:"):].partition(":")
    cls = rest.split("[", 1)[0]
    if module == "__main__" or not module or not cls or "<locals>" in cls:
        how = ("the class was defined in a script or a function, so it cannot be imported: move it into a module "
               "file and pass it with --rule module:Class (in Python: replay_file(path, rule=Class()))")
    else:
        how = (f"pass it with --rule {module}:{cls} (imported from the current directory or PYTHONPATH, built without "
               f"arguments; in Python: replay_file(path, rule={cls.rsplit('.', 1)[-1]}()))")
    return f"{source}: the file names the user rule {reference!r}; replay never imports code named in a file: {how}"


def _resolve_rule(reference: Any, given: Rule | None, source: str) -> Rule:
    """:func:`dtd_formal.rules.parse.resolve_rule`, with :func:`user_rule_hint` when a user rule is not given."""
    from .rules.parse import resolve_rule

    if given is None and isinstance(reference, str) and reference.startswith("python:"):
        raise InputError(user_rule_hint(reference, source))
    return resolve_rule(reference, given, source)


def _network(data: dict[str, Any], model: Network | None, source: str) -> Network:
    if isinstance(data.get("network"), dict):
        from .io import network_from_json

        return network_from_json(data["network"], source=f"{source}: embedded network")
    if model is not None:
        return model
    raise InputError(f"{source}: the file embeds no network; pass the network it is about (--model MODEL)")


def replay_data(data: Any, source: str = "file", model: Network | None = None, rule: Rule | None = None,
                timeout: float = 60.0) -> ReplayReport:
    """Replay parsed JSON content (see :func:`replay_file`)."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object")
    fmt = data.get("format")
    if fmt == CERTIFICATE_FORMAT:
        raise InputError(f"{source}: a claim certificate is replayed by file path (replay_file)")
    if fmt == PROPERTY_CEX_FORMAT:
        return _replay_property_counterexample(data, source, rule)
    if fmt == REPORT_FORMAT:
        return _replay_report(data, source, model, rule, timeout)
    if fmt == VERDICT_FORMAT:
        return replay_verdict(data, source, model, rule, timeout)
    if data.get("kind") in ("root_exit", "violation") and isinstance(data.get("question"), dict):
        return _replay_bare_counterexample(data, source, model, rule)
    raise InputError(f"{source}: not a dtd_formal verdict, report, counterexample or certificate (format {fmt!r})")


def replay_file(path: str | Path, model: Network | None = None, rule: Rule | None = None,
                timeout: float = 60.0) -> ReplayReport:
    """Replay one file (module docstring). ``model``: the network a file without an embedded one is about;
    ``rule``: the user rule a file names (catalogue rules are resolved from the file); ``timeout``: seconds for each
    Z3 query that a Z3 proof re-runs."""
    data = read_json(path)
    if isinstance(data, dict) and data.get("format") == CERTIFICATE_FORMAT:
        from .symbolic.registry import replay_certificate

        cert = replay_certificate(path)
        return ReplayReport("claim", cert.status, cert.ok,
                            f"claim {cert.claim}: {cert.identities} identities re-simplified to 0, {cert.witnesses} "
                            "witnesses re-verified", list(cert.failures))
    return replay_data(data, str(path), model, rule, timeout)


# ---------------------------------------------------------------------------------------------------- verdicts
def replay_verdict(data: dict[str, Any], source: str, model: Network | None, given_rule: Rule | None,
                   timeout: float = 60.0) -> ReplayReport:
    """Re-derive one ``dtd_formal.verdict/2`` object (module docstring)."""
    from .smt.counterexample import question_from_json

    if data.get("format") != VERDICT_FORMAT:
        raise InputError(f"{source}: not a verdict (expected \"format\": \"{VERDICT_FORMAT}\")")
    status = data.get("status")
    if status not in ("refuted", "proved", "unknown"):
        raise InputError(f"{source}: status must be refuted, proved or unknown, got {status!r}")
    q = data.get("question")
    kind = q.get("kind") if isinstance(q, dict) else None
    if kind not in ("root-exit", "violation"):
        raise InputError(f"{source}: question kind must be root-exit or violation, got {kind!r}")
    question = question_from_json(q, kind, source)
    net = _network(data, model, source)
    rule = _resolve_rule(question.rule, given_rule, source)
    problems: list[str] = []
    if question.network != net.digest():
        problems.append(f"network: the verdict is about {question.network}, the network is {net.digest()}")
    if data.get("statement") != question.statement():
        problems.append("statement: differs from the one the question makes")
    if problems:
        return ReplayReport(kind, status, False, problems[0], problems)
    try:
        if status == "refuted":
            problems = _replay_refuted(data, question, net, rule, source)
        elif status == "proved":
            problems = _replay_proved(data, question, net, rule, source, timeout)
        else:
            problems = [_NOTHING_TO_CONFIRM]
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crash of the re-derivation is an error, never a confirmation
        problems = [f"error: the re-derivation failed ({type(exc).__name__}: {exc})"]
    return ReplayReport(kind, status, not problems, _describe(question, status) if not problems else problems[0],
                        problems)


def _describe(question: Any, status: str) -> str:
    p = question.params
    if question.kind == "root-exit":
        return (f"{status}: {question.rule} layer {p['layer']} neuron {p['neuron']} ({p['definition']} root, "
                f"{p['variant']}, scope {p['scope']})")
    return f"{status}: {question.rule} {p['property']}"


def _replay_refuted(data: dict[str, Any], question: Any, net: Network, rule: Rule, source: str) -> list[str]:
    from .smt.counterexample import RootExitCounterexample, ViolationCounterexample

    cls = RootExitCounterexample if question.kind == "root-exit" else ViolationCounterexample
    if getattr(net, "is_graph", False) and question.kind == "root-exit":
        from .graph.root_exit import GraphRootExitCounterexample

        cls = GraphRootExitCounterexample
    cex = cls.from_json(data.get("counterexample"), f"{source}: counterexample")
    if cex.question != question:
        return ["counterexample: its question differs from the verdict's"]
    return cex.check(net, rule)


def _replay_proved(data: dict[str, Any], question: Any, net: Network, rule: Rule, source: str,
                   timeout: float) -> list[str]:
    cert = data.get("certificate")
    if not isinstance(cert, dict):
        raise InputError(f"{source}: a proved verdict needs a \"certificate\" object")
    if question.kind == "violation":
        return _replay_violation_proof(question, net, rule, cert, timeout)
    if getattr(net, "is_graph", False):
        return _replay_graph_root_exit_proof(question, net, rule, cert, source, timeout)
    return _replay_root_exit_proof(question, net, rule, cert, source, timeout)


def _replay_graph_root_exit_proof(question: Any, net: Any, rule: Rule, cert: dict[str, Any], source: str,
                                  timeout: float = 60.0) -> list[str]:
    """A graph's Proved is a trivial reason (:func:`dtd_formal.graph.root_exit.trivial_graph_reason`), an interval
    proof (:func:`dtd_formal.graph.root_exit.interval_root_proof`) or a Z3 proof
    (:func:`_replay_graph_z3_root_exit`), re-derived from network + rule + question."""
    from .graph.root_exit import trivial_graph_reason

    p = question.params
    net.check_layer(p["layer"])
    net.check_output(p["output"])
    n_l = net.nodes[net.layer(p["layer"]).node].n_out
    if not 0 <= p["neuron"] < n_l:
        raise InputError(f"{source}: layer {p['layer']} has neurons 0..{n_l - 1}, the question names {p['neuron']}")
    from .graph.bounds import interval_bounds
    from .smt.problem import box_of

    low, high = box_of(question, net.input_size)
    bounds = interval_bounds(net, low, high)
    if cert.get("method") == "interval-roots":
        from .graph.root_exit import interval_root_proof

        why = interval_root_proof(net, rule, p["layer"], p["neuron"], p["scope"], p["variant"], p["definition"],
                                  bounds)
        return [] if why is None else [f"interval proof: re-derived {why}"]
    if cert.get("solver") == "z3":
        return _replay_graph_z3_root_exit(question, net, rule, cert, low, high, bounds, timeout)
    want = trivial_graph_reason(net, p["layer"], p["neuron"], p["scope"], p["variant"], p["output"], bounds)
    if "reason" not in cert:
        return ["certificate: a graph's proof is a trivial reason or an interval proof; the file has neither"]
    return [] if want is not None and want == cert["reason"] else \
        [f"certificate reason: re-derived {want!r}, stored {cert['reason']!r}"]


def _replay_graph_z3_root_exit(question: Any, net: Any, rule: Rule, cert: dict[str, Any], low: Any, high: Any,
                               bounds: list[Any], timeout: float) -> list[str]:
    """A graph's Z3 root-exit proof: the query of every case is built again from network + rule + question (the
    rule's own root step) and re-run, and the encoding is checked against exact arithmetic at the box's corners,
    centre and face centres (:func:`dtd_formal.graph.root_exit.z3_root_exit_proof`); the certificate that re-run
    derives (encoding, number of max-pool winner cases, root bounding, query scope) must be the stored one. The
    stored result is never read as an answer."""
    from .graph.root_exit import z3_root_exit_proof

    p = question.params
    st, why, want = z3_root_exit_proof(net, rule, p["layer"], p["neuron"], p["scope"], p["variant"], p["output"],
                                       p["definition"], low, high, bounds, timeout)
    if st != "unsat":
        return [f"z3: the re-run query answers {st}" + (f" ({why})" if isinstance(why, str) else "")]
    for key in ("method", "logic", "encoding", "maxpool_cases", "root_bounds", "query_scope"):
        if cert.get(key) != want[key]:
            return [f"certificate {key}: stored {cert.get(key)!r}, re-derived {want[key]!r}"]
    return []


def _problem(question: Any, net: Network, rule: Rule) -> Any:
    from .smt.problem import RootExitProblem, box_of

    p = question.params
    low, high = box_of(question, net.input_size)
    return RootExitProblem(net, rule, p["layer"], p["neuron"], low, high, p["scope"], p["variant"], p["output"],
                           p["definition"])


def _replay_root_exit_proof(question: Any, net: Network, rule: Rule, cert: dict[str, Any], source: str,
                            timeout: float) -> list[str]:
    from .smt.root_exit import trivial_reason

    P = _problem(question, net, rule)
    if "reason" in cert:
        want = trivial_reason(P)
        return [] if want is not None and want == cert["reason"] else \
            [f"certificate reason: re-derived {want!r}, stored {cert['reason']!r}"]
    if "split_tree" in cert:
        from .smt.relax import BRANCHING, certificate_problems

        tree, branch = cert.get("split_tree"), cert.get("branch")
        if branch not in BRANCHING:
            raise InputError(f"{source}: certificate branch must be one of {', '.join(BRANCHING)}")
        if P.stock is None or not P.true_root:
            return [f"the relaxation's split tree proves nothing for this rule: {P.not_stock_reason or 'paper-code'}"]
        problems = certificate_problems(P, tree, branch)
        if not problems and cert.get("boxes") != len(tree):
            problems.append(f"boxes: stored {cert.get('boxes')!r}, the tree has {len(tree)} nodes")
        if not problems and cert.get("t_splits") != tree.count(-3):
            problems.append(f"t_splits: stored {cert.get('t_splits')!r}, the tree has {tree.count(-3)}")
        return problems
    if cert.get("solver") == "z3":
        import time

        from .smt.root_exit import probe_points, root_step_disagreement

        bad = root_step_disagreement(P, probe_points(P, []))
        if bad:
            return [f"z3: {bad}"]
        if P.variant == "affine_map":
            from .smt.maps import enumerate_map_changes

            res = enumerate_map_changes(P, time.monotonic() + timeout)
            if res.status != "proved":
                return [f"z3: the re-run enumeration gives {res.status} ({res.reason})"]
            if cert.get("pattern_pairs") != res.patterns:
                return [f"pattern_pairs: stored {cert.get('pattern_pairs')!r}, re-derived {res.patterns}"]
            return []
        from .smt.encode import solve_root_exit

        st, _ = solve_root_exit(P, timeout)
        return [] if st == "unsat" else [f"z3: the re-run query answers {st} within {timeout} s, not unsat"]
    return ["certificate: no trivial reason, split tree or Z3 proof to re-derive"]


def _replay_violation_proof(question: Any, net: Network, rule: Rule, cert: dict[str, Any],
                            timeout: float) -> list[str]:
    """A Z3 proof of a property over a box, dense or graph: the encoding is checked against exact arithmetic at the
    box's corners, centre and face centres (:func:`dtd_formal.smt.violations.check_points`), then the query is
    built again from the rule's own definition and re-run (every max-pool winner case of a graph; the stored case
    count must be the re-derived one)."""
    from .properties import get_property
    from .rules.domains import Box
    from .smt.problem import box_of
    from .smt.violations import check_points, decide_property, encoding_disagreement, graph_certificate

    if cert.get("solver") != "z3":
        return ["certificate: not a Z3 proof"]
    prop = get_property(question.params["property"])
    low, high = box_of(question, net.input_size)
    if getattr(net, "is_graph", False):
        want = graph_certificate(net, low, high)
        for key in ("logic", "encoding", "maxpool_cases"):
            if cert.get(key) != want[key]:
                return [f"certificate {key}: stored {cert.get(key)!r}, re-derived {want[key]!r}"]
        if isinstance(want["maxpool_cases"], str):
            return [f"z3: {want['maxpool_cases']}"]
    elif cert.get("encoding", "dense") != "dense":
        return [f"certificate encoding: stored {cert.get('encoding')!r}, the network is dense"]
    for x in check_points(low, high):
        bad = encoding_disagreement(prop, rule, net, x, question.params["output"])
        if bad:
            return [f"z3: {bad}"]
    st, _, why = decide_property(prop, rule, net, question.params["output"], Box(low, high), timeout)
    return [] if st == "unsat" else [f"z3: the re-run query answers {st} {why}".rstrip()]


def _replay_bare_counterexample(data: dict[str, Any], source: str, model: Network | None,
                                given_rule: Rule | None) -> ReplayReport:
    """A counterexample object on its own (``counterexample.to_json(net)``): re-derived like a refuted verdict."""
    from .smt.counterexample import RootExitCounterexample, ViolationCounterexample

    cls = RootExitCounterexample if data["kind"] == "root_exit" else ViolationCounterexample
    cex = cls.from_json(data, source)
    net = _network(data, model, source)
    problems = cex.check(net, _resolve_rule(cex.question.rule, given_rule, source))
    return ReplayReport(cex.question.kind, "refuted", not problems,
                        _describe(cex.question, "refuted") if not problems else problems[0], problems)


# ---------------------------------------------------------------------------------------------------- reports
def _replay_report(data: dict[str, Any], source: str, model: Network | None, rule: Rule | None,
                   timeout: float) -> ReplayReport:
    neurons = data.get("neurons")
    if not isinstance(neurons, dict) or not neurons:
        raise InputError(f"{source}: the report holds no per-neuron verdicts")
    if rule is None and isinstance(data.get("rule"), str) and data["rule"].startswith("python:"):
        raise InputError(user_rule_hint(data["rule"], source))
    net = _network(data, model, source)
    parts = []
    for j, v in neurons.items():
        if not isinstance(v, dict):
            raise InputError(f"{source}: neuron {j}: expected a verdict object")
        part = replay_verdict(v, f"{source}: neuron {j}", net, rule, timeout)
        if str(v.get("question", {}).get("neuron")) != j:
            part.ok, part.problems = False, [f"neuron {j}: the verdict's question is about neuron "
                                             f"{v.get('question', {}).get('neuron')!r}"]
        if part.problems == [_NOTHING_TO_CONFIRM]:  # an unknown neuron is reported as such, not as a rejection
            part.ok, part.problems = True, []
        parts.append(part)
    bad = [p for p in parts if not p.ok]
    counts = {s: sum(p.status == s for p in parts) for s in ("refuted", "proved", "unknown")}
    summary_problems = []
    if "counts" in data and data["counts"] != counts:
        summary_problems.append(f"counts: stored {data['counts']!r}, the verdicts give {counts!r}")
    for key in ("rule", "layer", "scope", "variant", "definition"):
        for j, v in neurons.items():
            stored = data.get(key, v.get("question", {}).get(key))
            if stored != v.get("question", {}).get(key):
                summary_problems.append(f"{key}: the report says {stored!r}, neuron {j}'s question says "
                                        f"{v.get('question', {}).get(key)!r}")
                break
    if summary_problems:
        return ReplayReport("root-exit-report", "report", False, summary_problems[0], summary_problems, parts)
    detail = (f"{len(parts) - len(bad)} of {len(parts)} per-neuron verdicts re-derived ({counts['refuted']} refuted, "
              f"{counts['proved']} proved, {counts['unknown']} unknown, not re-checkable)")
    return ReplayReport("root-exit-report", "report", not bad, detail if not bad else bad[0].problems[0],
                        [q for p in bad for q in p.problems], parts)


def _replay_property_counterexample(data: dict[str, Any], source: str, rule: Rule | None) -> ReplayReport:
    from .testing.counterexample import Counterexample

    ref = data["rule"].get("reference") if isinstance(data.get("rule"), dict) else None
    if rule is None and isinstance(ref, str) and ref.startswith("python:"):
        raise InputError(user_rule_hint(ref, source))
    cex = Counterexample.from_json(data, rule=rule, source=source)
    try:
        problems = cex.check()
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - never a confirmation
        problems = [f"error: the re-derivation failed ({type(exc).__name__}: {exc})"]
    return ReplayReport("property", "refuted", not problems,
                        f"{cex.property} fails for {cex.rule.spec()} at the stored input" if not problems else problems[0],
                        problems)


__all__ = ["ReplayReport", "replay_file", "replay_data", "replay_verdict", "read_json", "user_rule_hint",
           "REPORT_FORMAT", "UNCHECKED_VERDICT_FIELDS"]

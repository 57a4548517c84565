r"""``check_rule``: which DTD properties does a rule have, with a minimal counterexample for each it lacks.

For every requested property (catalogue: :mod:`dtd_formal.testing.properties`):

1. hypothesis draws up to ``max_examples`` exact cases (:func:`dtd_formal.testing.strategies.cases`: a network
   built around an input in the domain) and evaluates the property in Fractions; the first violation is shrunk by
   hypothesis and kept as a :class:`~dtd_formal.testing.counterexample.Counterexample` that replays exactly;
2. if none is found and Z3 can decide the property (:mod:`dtd_formal.testing.solver`), the solver decides it on
   a few small given networks (``solver_networks``, drawn deterministically from the seed) for *every* input of
   the domain: ``unsat`` on all of them makes the status "proved" (for those networks; the examples add evidence
   elsewhere), a witness becomes "refuted" after an exact replay, and a timeout is "unknown", never a pass.

Statuses (the machine-readable ``status`` of each property, in JSON too): "proved" (an exact verdict: Z3 proved
it for every input of the domain on the solver networks), "refuted" (an exact counterexample, replayed in
Fractions), "passed" (no counterexample among the N generated examples and no solver proof; reports word it
"held on N examples", never "proved"), "unknown" (the solver timed out or could not replay), "error" (the rule's
code raised, or returned inexact numbers in exact arithmetic, on a valid case: the report names the method, the
exception and the input; this is a bug in the rule's code, not a mathematical counterexample), "not applicable"
(e.g. root properties of a non-root rule), "not run" (``fail_fast`` stopped after an earlier refutation).
``report.passed`` is True when nothing is refuted, unknown or in error. :attr:`PropertyReport.summary` and
:attr:`RuleReport.summary` give the wording the table and JSON use ("proved ..." only for exact proofs, "held on N
examples" for the hypothesis-only results).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Sequence

from hypothesis import HealthCheck, Phase, Verbosity, given
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hyp_settings
from hypothesis.errors import Flaky

from ..errors import InputError
from ..network import Network
from ..rules.base import Rule
from ..rules.domains import Domain
from .counterexample import Counterexample
from .properties import DEFAULT_PROPERTIES, Outcome, Property, get_property
from .solver import SOLVABLE, decide
from .strategies import Case, NetworkSpec, cases

STATUSES = ("proved", "refuted", "passed", "unknown", "error", "not applicable", "not run")


def held_on(examples: int) -> str:
    """The wording of a hypothesis-only result: ``"held on N examples"`` (no counterexample, not a proof)."""
    return f"held on {examples} example{'' if examples == 1 else 's'}"


class _PropertyFailed(Exception):
    def __init__(self, case: Case, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.case, self.outcome = case, outcome


class _RuleRaised(Exception):
    """The rule's code failed on a case (stops the search; not shrunk as a counterexample)."""

    def __init__(self, case: Case, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.case, self.outcome = case, outcome


@dataclass
class PropertyReport:
    """The verdict on one property.

    Attributes
    ----------
    name, statement : the property
    status : one of :data:`STATUSES`
    examples : cases evaluated before the first violation (all of them when none was found)
    degenerate : of those, cases where the property was vacuous (f_c(x) = 0, a dead layer, a precondition unmet)
    zeros : exact zeros met in those cases: cases with a kink (z = 0), with an input on the domain's lower face,
        with a zero weight
    counterexample : the shrunk (or solver) counterexample of a refuted property
    solver : what the solver did ("proved on ...", "refuted ...", "unknown: ...", or why it was not used)
    reason : why a property is "not applicable" or "unknown"
    """

    name: str
    statement: str
    status: str
    examples: int = 0
    degenerate: int = 0
    zeros: dict[str, int] = field(default_factory=dict)
    counterexample: Counterexample | None = None
    solver: str = ""
    reason: str = ""

    @property
    def proof(self) -> bool:
        """True only for an exact proof (the Z3 solver's "proved"); a hypothesis-only "passed" is not one."""
        return self.status == "proved"

    @property
    def label(self) -> str:
        """The status as the table shows it: ``"held on N examples"`` for "passed", else the status itself."""
        return held_on(self.examples) if self.status == "passed" else self.status

    @property
    def summary(self) -> str:
        """One line in words: "proved" only for an exact proof, "held on N examples" for hypothesis results.

        Returns
        -------
        str
            E.g. ``"held on 100 examples"``,
            ``"z3 proved it on nets 2-2-1, ... (all inputs ...); held on 100 examples"``,
            ``"refuted (counterexample found by hypothesis (shrunk), replayed exactly)"``.
        """
        if self.status == "passed":
            return held_on(self.examples)
        if self.status == "proved":
            return f"{self.solver or 'proved'}; {held_on(self.examples)}"
        if self.status == "refuted":
            found = self.counterexample.found_by if self.counterexample is not None else "the search"
            return f"refuted (counterexample found by {found}, replayed exactly)"
        return f"{self.status}: {self.reason}" if self.reason else self.status

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "statement": self.statement, "status": self.status, "proof": self.proof,
            "summary": self.summary, "examples": self.examples,
            "degenerate": self.degenerate, "zeros": dict(self.zeros), "solver": self.solver, "reason": self.reason,
            "counterexample": self.counterexample.to_json() if self.counterexample else None,
        }


@dataclass
class RuleReport:
    """Result of :func:`check_rule`: one :class:`PropertyReport` per property."""

    rule: Rule
    properties: list[PropertyReport]
    max_examples: int
    seed: int | None
    domain: Domain
    networks: NetworkSpec
    solver_networks: list[Network] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no property is refuted or unknown."""
        return all(p.status in ("proved", "passed", "not applicable") for p in self.properties)

    @property
    def refuted(self) -> list[PropertyReport]:
        return [p for p in self.properties if p.status == "refuted"]

    @property
    def unknown(self) -> list[PropertyReport]:
        return [p for p in self.properties if p.status == "unknown"]

    @property
    def errors(self) -> list[PropertyReport]:
        """Properties whose evaluation stopped because the rule's code raised."""
        return [p for p in self.properties if p.status == "error"]

    @property
    def counterexample(self) -> Counterexample | None:
        """The first refuted property's counterexample (None when nothing is refuted)."""
        bad = self.refuted
        return bad[0].counterexample if bad else None

    def __getitem__(self, name: str) -> PropertyReport:
        key = get_property(name).name
        for p in self.properties:
            if p.name == key:
                return p
        raise KeyError(name)

    def table(self, counterexamples: bool = True) -> str:
        """A readable table: property, status, examples, degenerate, kinks, solver (and the counterexamples)."""
        shape = ("small conv graphs (conv, ReLU, max pool, dense)" if self.networks.kind == "conv" else
                 f"L {self.networks.n_layers}, width {self.networks.width}")
        head = (f"rule {self.rule.spec()} ({type(self.rule).__name__}); domain {self.domain.describe()}; networks: "
                f"{shape}, bias {self.networks.bias}; "
                f"max_examples {self.max_examples}; seed {self.seed}")
        rows = [("property", "status", "examples", "degenerate", "kinks", "solver / reason")]
        for p in self.properties:
            rows.append((p.name, p.label, str(p.examples), str(p.degenerate), str(p.zeros.get("kinks", 0)),
                         p.reason or p.solver))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [head]
        for k, r in enumerate(rows):
            lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:5])) + "  " + r[5])
            if k == 0:
                lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 15)
        for p in self.properties if counterexamples else []:
            if p.counterexample is not None:
                lines.append(f"counterexample for {p.name}:")
                lines.append(p.counterexample.describe())
        lines.append(self.summary)
        return "\n".join(lines)

    @property
    def summary(self) -> str:
        """The verdict line: PASSED / ERROR / REFUTED / UNKNOWN, and for PASSED which properties were proved (exact,
        by Z3 on the solver networks) and which only held on their examples.

        Returns
        -------
        str
            E.g. ``"PASSED: proved by z3 (every input, on the solver nets): positivity; held on 100 examples (no
            counterexample; not a proof): continuity, backend-agreement"``.
        """
        if self.errors:
            return "ERROR (the rule's code failed): " + "; ".join(f"{p.name}: {p.reason}" for p in self.errors)
        if self.refuted:
            return "REFUTED: " + ", ".join(p.name for p in self.refuted)
        if not self.passed:
            return "UNKNOWN: " + ", ".join(p.name for p in self.unknown)
        parts = []
        proved = [p.name for p in self.properties if p.status == "proved"]
        if proved:
            parts.append("proved by z3 (every input, on the solver nets): " + ", ".join(proved))
        held: dict[int, list[str]] = {}
        for p in self.properties:
            if p.status == "passed":
                held.setdefault(p.examples, []).append(p.name)
        for n, names in held.items():
            parts.append(f"{held_on(n)} (no counterexample; not a proof): " + ", ".join(names))
        if not parts:
            parts.append("no property applied")
        return "PASSED: " + "; ".join(parts)

    def failure_message(self) -> str:
        """What a failing test prints: the refuted properties with their counterexamples."""
        out = [f"{self.rule.spec()} violates {', '.join(p.name for p in self.refuted)}"]
        for p in self.refuted:
            if p.counterexample is not None:
                out.append(p.counterexample.describe())
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        from .counterexample import domain_to_json, rule_to_json

        return {
            "rule": rule_to_json(self.rule), "passed": self.passed, "max_examples": self.max_examples,
            "seed": self.seed, "domain": domain_to_json(self.domain),
            "networks": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.networks.__dict__.items()},
            "solver_networks": [n.to_json() for n in self.solver_networks], "summary": self.summary,
            "properties": [p.to_json() for p in self.properties],
        }


# ---------------------------------------------------------------------------------------------------- solver net
def solver_network(spec: NetworkSpec, seed: int | None, index: int = 0) -> Network:
    """A small network the solver decides properties on: 2 inputs, one hidden layer of width 2 (clipped to the
    spec's ranges; ``index`` 2 and up use width 3), weights k/d from the spec's numerators and denominators,
    biases obeying its sign constraint, drawn from ``random.Random((seed, index))``."""
    rng = random.Random(f"{0 if seed is None else seed}:{index}")
    L = min(max(2, spec.n_layers[0]), spec.n_layers[1])
    n0 = min(max(2, spec.input_size[0]), spec.input_size[1])
    width = min(max(2 if index < 2 else 3, spec.width[0]), spec.width[1])
    n_out = max(spec.output_size[0], spec.output + 1)
    sizes = [n0] + [width] * (L - 1) + [n_out]

    def num() -> Fraction:
        return Fraction(rng.randint(-spec.numerator, spec.numerator), rng.choice(spec.denominators))

    def bias() -> Fraction:
        v = num()
        return {"any": v, "nonpositive": -abs(v), "nonnegative": abs(v), "zero": Fraction(0)}[spec.bias]

    weights = [[[num() for _ in range(sizes[l])] for _ in range(sizes[l + 1])] for l in range(L)]
    biases = [[bias() for _ in range(sizes[l + 1])] for l in range(L)]
    final = bool(spec.final_relu) if spec.final_relu is not None else False
    return Network(weights, biases, final_relu=final)


# ---------------------------------------------------------------------------------------------------- check_rule
def _run_hypothesis(prop: Property, rule: Rule, spec: NetworkSpec, domain: Domain, max_examples: int,
                    seed: int | None, shrink_budget: int = 120) -> tuple[PropertyReport, Counterexample | None]:
    counts = {"examples": 0, "degenerate": 0, "kinks": 0, "zero_inputs": 0, "zero_weights": 0}
    failed: dict[str, Any] = {"seen": False, "shrink_calls": 0, "best": None}
    # outcome per distinct case (Case.key): hypothesis draws the same case from different choice sequences (about
    # one example in eight on small nets) and the shrinker revisits cases; the evaluation is a function of the case
    outcomes: dict[tuple[Any, ...], Outcome] = {}

    @hyp_settings(max_examples=max_examples, database=None, deadline=None, derandomize=seed is None,
                  report_multiple_bugs=False, verbosity=Verbosity.quiet, phases=(Phase.generate, Phase.shrink),
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large, HealthCheck.large_base_example],
                  print_blob=False)
    @given(case=cases(spec, domain))
    def run(case: Case) -> None:
        if failed["seen"]:
            # shrink budget: once spent, only the current minimal failure still fails, so the shrinker stops
            failed["shrink_calls"] += 1
            if failed["shrink_calls"] > shrink_budget and repr(case) != failed["best"]:
                return
        key = case.key()
        outcome = outcomes.get(key)
        if outcome is None:
            outcome = outcomes[key] = prop.evaluate(rule, case.network, case.x, case.output, domain)
        if outcome.error:
            raise _RuleRaised(case, outcome)
        if not failed["seen"]:
            counts["examples"] += 1
            counts["degenerate"] += int(outcome.vacuous or case.stats.degenerate)
            counts["kinks"] += int(case.stats.kinks > 0)
            counts["zero_inputs"] += int(case.stats.zero_inputs > 0)
            counts["zero_weights"] += int(case.stats.zero_weights > 0)
        if not outcome.holds:
            failed["seen"] = True
            failed["best"] = repr(case)
            failed["last"] = _PropertyFailed(case, outcome)
            raise failed["last"]

    if seed is not None:
        run = hypothesis_seed(seed)(run)
    cex = None
    error = ""
    try:
        try:
            run()
        except Flaky:
            # the shrink budget made hypothesis see a pass where the case failed before: the smallest failure it
            # found is the last one recorded (and the counterexample is re-checked exactly either way)
            if failed.get("last") is None:
                raise
            raise failed["last"] from None
    except _PropertyFailed as exc:
        case = exc.case
        cex = Counterexample(prop.name, rule, case.network, case.x, case.output, domain, exc.outcome.values,
                             exc.outcome.message, "hypothesis (shrunk)", seed)
    except _RuleRaised as exc:
        net = exc.case.network
        where = (f"graph {net!r} {json.dumps(net.to_json()['nodes'], separators=(',', ':'))}"
                 if getattr(net, "is_graph", False) else
                 f"{'-'.join(str(n) for n in net.layer_sizes)} network {net.to_json()['layers']}")
        error = f"{exc.outcome.error} (input x = {[str(v) for v in exc.case.x]} of the {where})"
    zeros = {k: counts[k] for k in ("kinks", "zero_inputs", "zero_weights")}
    status = "error" if error else ("refuted" if cex else "passed")
    report = PropertyReport(prop.name, prop.statement, status, counts["examples"], counts["degenerate"], zeros, cex,
                            reason=error)
    return report, cex


def check_rule(
    rule: Rule,
    properties: Sequence[str | Property] | None = None,
    max_examples: int | None = None,
    domain: Domain | None = None,
    seed: int | None = 0,
    networks: NetworkSpec | None = None,
    bias: str | None = None,
    solver: bool = True,
    solver_timeout_ms: int = 2000,
    shrink_budget: int = 120,
    fail_fast: bool = False,
    solver_networks: int = 3,
) -> RuleReport:
    """Check a rule's properties by exact property-based testing, with Z3 deciding them on a small net.

    Parameters
    ----------
    rule : Rule
        The rule (a :class:`~dtd_formal.rules.Rule` subclass instance).
    properties : list of str, optional
        Catalogue names (default :data:`~dtd_formal.testing.properties.DEFAULT_PROPERTIES`).
    max_examples : int, optional
        Cases per property (default: the active hypothesis profile's ``max_examples``).
    domain : Domain, optional
        Input domain of layer 1 (default: the rule's ``domain``); inputs are drawn from it and ``root_in_domain``
        checks against it.
    seed : int or None
        Seed of the search (None: hypothesis's derandomized default). The same seed gives the same report.
    networks : NetworkSpec, optional
        Which networks to draw (default :class:`NetworkSpec()`); ``bias`` is a shortcut for ``networks.bias``.
    solver : bool
        Let Z3 decide solvable properties on :func:`solver_network` (module docstring).
    solver_timeout_ms : int
        Z3 timeout per property; a timeout makes the property "unknown".
    shrink_budget : int
        At most this many shrink attempts per refuted property (the counterexample is then the smallest found so
        far; it still replays exactly).
    fail_fast : bool
        Stop after the first refuted property; the rest are "not run".
    solver_networks : int
        How many small networks (:func:`solver_network`) the solver decides each solvable property on.

    Returns
    -------
    RuleReport
    """
    if not isinstance(rule, Rule):
        raise InputError(f"check_rule needs a dtd_formal.rules.Rule instance, got {type(rule).__name__}")
    if max_examples is None:
        max_examples = int(hyp_settings.default.max_examples)
    if max_examples < 1:
        raise InputError(f"max_examples must be >= 1, got {max_examples}")
    spec = networks or NetworkSpec()
    if bias is not None:
        spec = NetworkSpec(**{**spec.__dict__, "bias": bias})
    domain = rule.domain if domain is None else domain
    props = [get_property(p) for p in (properties or DEFAULT_PROPERTIES)]
    # Z3 decides on small dense networks; conv graphs are property-tested by hypothesis alone
    smalls = [solver_network(spec, seed, k) for k in range(solver_networks)] if solver and spec.kind == "dense" else []
    reports: list[PropertyReport] = []
    for prop in props:
        if fail_fast and any(r.status == "refuted" for r in reports):
            reports.append(PropertyReport(prop.name, prop.statement, "not run", reason="fail_fast: stopped earlier"))
            continue
        reason = prop.applies(rule)
        if reason:
            reports.append(PropertyReport(prop.name, prop.statement, "not applicable", reason=reason))
            continue
        report, cex = _run_hypothesis(prop, rule, spec, domain, max_examples, seed, shrink_budget)
        if report.status == "error":
            reports.append(report)
            continue
        if cex is None and smalls and prop.name in SOLVABLE:
            positive = spec.output_sign == "positive"
            cond = f"all inputs with {domain.describe()}" + (f" and f_{spec.output}(x) >= 0" if positive else "")
            cond = f"({cond})"
            proved, unknown, no_encoding = [], [], ""
            for small in smalls:
                verdict = decide(prop.name, rule, small, spec.output, domain, solver_timeout_ms, positive)
                name = "-".join(str(n) for n in small.layer_sizes)
                if verdict.status == "refuted":
                    c = verdict.counterexample
                    report.status = "refuted"
                    report.solver = f"z3 refuted it on the {name} net {cond}"
                    report.counterexample = Counterexample(
                        prop.name, rule, c["network"], c["input"], c["output"], domain, c["values"], c["message"],
                        "z3 on a solver network (replayed in Fractions)", seed)
                    break
                if verdict.status == "proved":
                    proved.append(name)
                elif verdict.reason.startswith("no Z3 encoding"):
                    no_encoding = verdict.reason
                    break
                else:
                    unknown.append(f"{name}: {verdict.reason}")
            if report.status != "refuted":
                if no_encoding:
                    report.solver = f"solver not used: {no_encoding}"
                elif unknown:
                    report.status = "unknown"
                    report.reason = (f"{held_on(report.examples)}; solver unknown on " + "; ".join(unknown))
                else:
                    report.status = "proved"
                    report.solver = f"z3 proved it on nets {', '.join(proved)} {cond}"
        elif prop.name not in SOLVABLE:
            report.solver = "hypothesis only (no Z3 encoding for this property)"
        elif spec.kind == "conv" and cex is None:
            report.solver = "hypothesis only (Z3 decides on dense networks; these were conv graphs)"
        elif cex is None and not solver:
            report.solver = "hypothesis only (solver off)"
        reports.append(report)
    return RuleReport(rule, reports, max_examples, seed, domain, spec, smalls)


__all__ = ["check_rule", "RuleReport", "PropertyReport", "solver_network", "STATUSES", "held_on"]

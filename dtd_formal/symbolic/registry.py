r"""The registry of the study's claims by stable name, the runner, and certificate replay.

Every claim is phrased so that its expected verdict is "proved" (existence statements are proved by an explicit,
exactly re-verified witness). :func:`run_claim` times a proof, writes its certificate (JSON: statement, method,
residuals that simplified to 0 or the witness data, SymPy and package versions, seeds, time) and returns a
:class:`ClaimResult`; :func:`replay_certificate` re-checks a certificate exactly: every stored residual is rebuilt
from its exact ``srepr`` text and re-simplified, every witness is re-verified by its claim's own checker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError
from ..verdict import Unknown, Verdict
from . import dtd_claims, rule_claims, taylor_claims
from .certificate import parse_srepr, read_certificate, replay_identity, write_certificate
from .witnesses import replay_root_exit


@dataclass(frozen=True)
class Claim:
    """A claim: stable ``name``, a short ``summary`` in words, its proof ``prove(fast) -> Verdict``."""

    name: str
    summary: str
    prove: Callable[[bool], Verdict]
    theory: str = ""


CLAIMS: dict[str, Claim] = {c.name: c for c in (
    Claim("rule_roots_on_hyperplane", "every DTD rule's root a - t v lies on the neuron's hyperplane",
          rule_claims.claim_rule_roots_on_hyperplane, "section 2"),
    Claim("rule_conservation", "DTD rules conserve relevance; Epsilon's defect in closed form",
          rule_claims.claim_rule_conservation, "section 2"),
    Claim("zplus_is_alpha1_beta0", "z+ = alpha1-beta0 for a >= 0, not for negative inputs",
          rule_claims.claim_zplus_is_alpha1_beta0, "section 2 table"),
    Claim("gamma_limits", "Gamma(0) = LRP-0; Gamma(gamma -> oo) = z+", rule_claims.claim_gamma_limits,
          "section 2 table"),
    Claim("taylor_exact_in_region", "first-order Taylor is exact within a closed region (C1)",
          taylor_claims.claim_taylor_exact_in_region, "C1"),
    Claim("taylor_crossing_remainder", "a segment crossing a kink leaves a non-zero remainder (C1)",
          taylor_claims.claim_taylor_crossing_remainder, "C1"),
    Claim("upper_network_bounds_valid_roots", "staying in the upper region suffices; the check is not vacuous (P1)",
          taylor_claims.claim_upper_network_bounds_valid_roots, "P1"),
    Claim("train_free_roots_unconstrained", "a train-free z+ root leaves the upper region (C5)",
          taylor_claims.claim_train_free_roots_unconstrained, "C5"),
    Claim("constant_roots_gradient_x_input", "locally constant roots give grad f * x - k; roots 0: grad x input (C2)",
          dtd_claims.claim_constant_roots_gradient_x_input, "C2"),
    Claim("lrp0_equals_gradient_x_input", "LRP-0 with biases in the denominators = gradient x input",
          dtd_claims.claim_lrp0_equals_gradient_x_input, "C2"),
    Claim("input_dependent_roots_any_explanation", "input-dependent roots realise any explanation (C3)",
          dtd_claims.claim_input_dependent_roots_any_explanation, "C3"),
    Claim("softplus_has_no_root", "softplus > 0: no root, second-order term never vanishes (C4)",
          taylor_claims.claim_softplus_has_no_root, "C4"),
)}

#: witness kind -> exact re-checker (data -> bool)
WITNESS_CHECKERS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "zplus_alpha1beta0_differ": rule_claims.replay_zplus_witness,
    "rule_explicit_nets": rule_claims.replay_explicit_net_checks,
    "region_taylor": taylor_claims.replay_region_taylor,
    "crossing_remainder": taylor_claims.replay_crossing,
    "root_exit": replay_root_exit,
    "positive": taylor_claims.replay_positive,
    "constant_roots_nets": dtd_claims.replay_constant_roots_nets,
    "lrp0_bias_conventions": dtd_claims.replay_lrp0_witness,
    "two_valid_policies": dtd_claims.replay_two_policies,
}


def claim_names() -> list[str]:
    return list(CLAIMS)


def get_claim(name: str) -> Claim:
    """The claim called ``name``; :class:`InputError` listing the known names otherwise."""
    if name not in CLAIMS:
        raise InputError(f"unknown claim {name!r}; known claims: {', '.join(CLAIMS)}")
    return CLAIMS[name]


def prove(name: str, fast: bool = False) -> Verdict:
    """Run the proof of claim ``name`` and return its verdict (Proved / Refuted / Unknown)."""
    claim = get_claim(name)
    try:
        return claim.prove(fast)
    except RecursionError as exc:  # pragma: no cover - SymPy blow-up is a budget problem, not a proof
        return Unknown(claim.summary, f"SymPy gave up: {exc}")


@dataclass
class ClaimResult:
    """One row of the runner's output."""

    claim: str
    statement: str
    status: str
    method: str
    seconds: float
    certificate: str | None
    verdict: Verdict

    def to_json(self) -> dict[str, Any]:
        return {"claim": self.claim, "statement": self.statement, "status": self.status, "method": self.method,
                "seconds": round(self.seconds, 3), "certificate": self.certificate}


def run_claim(name: str, out: str | Path | None = "certificates", fast: bool = False) -> ClaimResult:
    """Prove one claim, time it, and write its certificate to ``out/<name>.json`` (``out=None``: no file)."""
    claim = get_claim(name)
    t0 = time.perf_counter()
    verdict = prove(name, fast=fast)
    seconds = time.perf_counter() - t0
    path = None
    if out is not None:
        path = str(write_certificate(Path(out) / f"{name}.json", name, verdict.to_json(), seconds, fast=fast))
    statement = getattr(verdict, "statement", claim.summary)
    method = getattr(verdict, "method", "") or getattr(verdict, "reason", "")
    return ClaimResult(name, statement, verdict.status, method, seconds, path, verdict)


# ------------------------------------------------------------------------------------------------ replay
@dataclass
class ReplayReport:
    """Outcome of :func:`replay_certificate`: ``ok`` when every stored check re-checked exactly."""

    claim: str
    status: str
    ok: bool
    identities: int
    witnesses: int
    failures: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"claim": self.claim, "status": self.status, "checks": self.ok, "identities": self.identities,
                "witnesses": self.witnesses, "failures": self.failures}


def replay_certificate(path: str | Path, rerun: bool = False) -> ReplayReport:
    """Re-check a certificate exactly. Raises :class:`InputError` for a malformed file.

    - proved: every identity's residual (rebuilt from ``srepr``) simplifies to 0 and was recorded as holding;
      every witness passes its claim's exact checker; there is at least one check.
    - refuted: the stored residual, at the stored rational values, is a non-zero rational.
    - unknown: nothing to check (reported as not ok).

    ``rerun=True`` also re-runs the claim's proof (same fast flag) and requires the same status and exactly the
    same residuals (``srepr`` texts) and witness data, so a certificate with checks left out does not pass.
    """
    data = read_certificate(path)
    claim, status = str(data["claim"]), str(data["status"])
    failures: list[str] = []
    n_id = n_w = 0
    if status == "proved":
        cert = data.get("certificate")
        if not isinstance(cert, dict):
            raise InputError(f"{path}: proved certificate without a \"certificate\" object")
        identities, witnesses = cert.get("identities", []), cert.get("witnesses", [])
        if not isinstance(identities, list) or not isinstance(witnesses, list):
            raise InputError(f"{path}: \"identities\" and \"witnesses\" must be lists")
        for rec in identities:
            n_id += 1
            if not (isinstance(rec, dict) and rec.get("holds") is True and replay_identity(rec)):
                failures.append(f"identity {rec.get('case') if isinstance(rec, dict) else rec!r} does not simplify to 0")
        for w in witnesses:
            n_w += 1
            kind = w.get("kind") if isinstance(w, dict) else None
            checker = WITNESS_CHECKERS.get(str(kind))
            if checker is None:
                raise InputError(f"{path}: witness of unknown kind {kind!r}")
            try:
                ok = bool(checker(w))
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 - malformed witness data
                raise InputError(f"{path}: witness {kind!r} is malformed ({type(exc).__name__}: {exc})") from None
            if not ok:
                failures.append(f"witness {kind!r} does not re-verify")
        if n_id + n_w == 0:
            failures.append("no checks stored")
    elif status == "refuted":
        cex = data.get("counterexample")
        if not isinstance(cex, dict) or "srepr" not in cex or "values" not in cex:
            raise InputError(f"{path}: refuted certificate without a residual and values")
        import sympy as sp

        expr = parse_srepr(cex["srepr"])
        vals = {s: sp.Rational(str(cex["values"][s.name])) for s in expr.free_symbols if s.name in cex["values"]}
        v = expr.xreplace(vals)
        n_w = 1
        if not (v.is_Rational and v != 0 and str(v) == str(sp.Rational(cex["values"]["residual"]))):
            failures.append("counterexample does not give the stored non-zero residual")
    else:
        failures.append(f"status {status!r}: nothing to re-check")
    if rerun and claim in CLAIMS:
        fresh = prove(claim, fast=bool(data.get("fast", False)))
        if fresh.status != status:
            failures.append(f"re-run gives {fresh.status!r}, the certificate says {status!r}")
        elif status == "proved":
            import json

            cert = data["certificate"]
            new = json.loads(json.dumps(fresh.to_json()))["certificate"]
            if [r["srepr"] for r in new["identities"]] != [r.get("srepr") for r in cert["identities"]]:
                failures.append("re-run residuals differ from the stored ones")
            if new["witnesses"] != cert["witnesses"]:
                failures.append("re-run witnesses differ from the stored ones")
    elif rerun:
        raise InputError(f"{path}: unknown claim {claim!r}; known claims: {', '.join(CLAIMS)}")
    return ReplayReport(claim, status, not failures, n_id, n_w, failures)


__all__ = ["Claim", "CLAIMS", "WITNESS_CHECKERS", "claim_names", "get_claim", "prove", "run_claim", "ClaimResult",
           "replay_certificate", "ReplayReport"]

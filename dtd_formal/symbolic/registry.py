r"""The registry of the study's claims by stable name, the runner, and certificate replay.

Every claim is phrased so that its expected verdict is "proved" (existence statements are proved by an explicit,
exactly re-verified witness). :func:`run_claim` times a proof, writes its certificate (JSON: statement, method,
residuals that simplified to 0 or the witness data, SymPy and package versions, seeds, time) and returns a
:class:`ClaimResult`; :func:`replay_certificate` re-checks a certificate exactly: every stored residual is rebuilt
from its exact ``srepr`` text and re-simplified, every witness is re-verified by its claim's own checker.
"""

from __future__ import annotations

import json
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


#: certificate fields replay does not compare with the re-derivation: timings and versions (they differ between runs
#: of the same proof and nothing depends on them)
UNCHECKED_FIELDS = ("seconds", "timings", "environment")


def _without_unchecked(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_unchecked(v) for k, v in obj.items() if k not in UNCHECKED_FIELDS}
    if isinstance(obj, list):
        return [_without_unchecked(v) for v in obj]
    return obj


def _first_difference(stored: Any, fresh: Any, path: str = "") -> str | None:
    """The path of the first place where two JSON values differ (srepr texts compared as parsed expressions)."""
    if isinstance(stored, dict) and isinstance(fresh, dict):
        for key in list(fresh) + [k for k in stored if k not in fresh]:
            if key not in stored or key not in fresh:
                return f"{path}.{key}" if path else str(key)
            if key == "srepr" and isinstance(stored[key], str) and isinstance(fresh[key], str):
                if stored[key] != fresh[key] and parse_srepr(stored[key]) != parse_srepr(fresh[key]):
                    return f"{path}.srepr"
                continue
            diff = _first_difference(stored[key], fresh[key], f"{path}.{key}" if path else str(key))
            if diff:
                return diff
        return None
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            return f"{path} (stored {len(stored)} entries, re-derived {len(fresh)})"
        for k, (u, v) in enumerate(zip(stored, fresh)):
            diff = _first_difference(u, v, f"{path}[{k}]")
            if diff:
                return diff
        return None
    return None if stored == fresh and type(stored) is type(fresh) else path or "(top)"


def replay_certificate(path: str | Path, rerun: bool = True) -> ReplayReport:
    """Re-derive a certificate; :class:`InputError` for a malformed file. Nothing stored is trusted.

    The claim's proof is run again (same ``fast`` flag) and the certificate it writes is compared with the stored
    one field by field, except :data:`UNCHECKED_FIELDS`: status, statement, method, every identity (case, residual,
    exact srepr, conditions, how it simplified), every witness, the notes, the claim and the flag. The first
    difference rejects the file, named. Then, independently of the proof code: every stored residual is parsed
    (:func:`parse_srepr`, no code is evaluated) and must simplify to exactly 0, every witness must pass its exact
    checker, and a refutation's stored values must give its stored non-zero residual. A crash of the re-derivation
    is reported as a failure ("error: ..."), never as a confirmation. ``rerun`` is accepted for compatibility:
    re-deriving is what replay does.
    """
    data = read_certificate(path)
    claim, status = data["claim"], data["status"]
    if not isinstance(claim, str) or claim not in CLAIMS:
        raise InputError(f"{path}: unknown claim {claim!r}; known claims: {', '.join(CLAIMS)}")
    fast = data.get("fast", False)
    if not isinstance(fast, bool):
        raise InputError(f"{path}: \"fast\" must be true or false, got {fast!r}")
    failures: list[str] = []
    n_id = n_w = 0
    try:
        fresh = {"format": data["format"], "claim": claim, **({"fast": fast} if "fast" in data else {}),
                 **prove(claim, fast=fast).to_json()}
        fresh = json.loads(json.dumps(fresh))
        diff = _first_difference(_without_unchecked(data), _without_unchecked(fresh))
        if diff:
            failures.append(f"{diff}: the stored value differs from the re-derived one")
        if status == "proved":
            n_id, n_w, independent = _independent_checks(data, path)
            failures.extend(independent)
        elif status == "refuted":
            n_w = 1
            failures.extend(_check_refutation(data, path))
        else:
            failures.append(f"status {status!r}: nothing to re-check")
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - never a confirmation
        failures.append(f"error: the re-derivation failed ({type(exc).__name__}: {exc})")
    return ReplayReport(claim, str(status), not failures, n_id, n_w, failures)


def _independent_checks(data: dict[str, Any], path: str | Path) -> tuple[int, int, list[str]]:
    """Re-simplify every stored identity, re-verify every stored witness (independent of the proof's code)."""
    cert = data.get("certificate")
    if not isinstance(cert, dict):
        raise InputError(f"{path}: proved certificate without a \"certificate\" object")
    identities, witnesses = cert.get("identities", []), cert.get("witnesses", [])
    if not isinstance(identities, list) or not isinstance(witnesses, list):
        raise InputError(f"{path}: \"identities\" and \"witnesses\" must be lists")
    failures = []
    for rec in identities:
        if not (isinstance(rec, dict) and rec.get("holds") is True and replay_identity(rec)):
            failures.append(f"identity {rec.get('case') if isinstance(rec, dict) else rec!r} does not simplify to 0")
    for w in witnesses:
        kind = w.get("kind") if isinstance(w, dict) else None
        checker = WITNESS_CHECKERS.get(str(kind))
        if checker is None:
            raise InputError(f"{path}: witness of unknown kind {kind!r}")
        if not bool(checker(w)):
            failures.append(f"witness {kind!r} does not re-verify")
    if not identities and not witnesses:
        failures.append("no checks stored")
    return len(identities), len(witnesses), failures


def _check_refutation(data: dict[str, Any], path: str | Path) -> list[str]:
    """The stored counterexample values give the stored non-zero residual, exactly."""
    import sympy as sp

    cex = data.get("counterexample")
    if not isinstance(cex, dict) or "srepr" not in cex or not isinstance(cex.get("values"), dict):
        raise InputError(f"{path}: refuted certificate without a residual and values")
    expr = parse_srepr(cex["srepr"])
    vals = {s: sp.Rational(str(cex["values"][s.name])) for s in expr.free_symbols if s.name in cex["values"]}
    v = expr.xreplace(vals)
    if not (v.is_Rational and v != 0 and str(v) == str(sp.Rational(str(cex["values"].get("residual"))))):
        return ["counterexample does not give the stored non-zero residual"]
    return []


__all__ = ["Claim", "CLAIMS", "WITNESS_CHECKERS", "claim_names", "get_claim", "prove", "run_claim", "ClaimResult",
           "replay_certificate", "ReplayReport", "UNCHECKED_FIELDS"]

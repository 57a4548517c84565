"""Proof time of ``dtd-formal prove`` (issue 15, item 7): each claim timed, median of 3 runs, slowest profiled.

    python benchmarks/bench_prove.py                 # 3 fresh processes, all claims in the CLI's order; profile
    python benchmarks/bench_prove.py --runs 5 --top 30
    python benchmarks/bench_prove.py --profile-claim rule_roots_on_hyperplane

Each run is a fresh ``python`` process that does what ``dtd-formal prove --no-certificates`` does: import the
claim registry, then ``registry.run_claim(name, out=None, fast=False)`` for every claim in ``CLAIMS`` order (the
command's "seconds" column is ``ClaimResult.seconds``, the same number). Fresh processes, because SymPy's cache
makes a second proof in the same process faster than the command ever sees. Reported: per claim the median and
the three times, the total proof time per run and its median, the same in this process's CPU seconds (on a shared
machine wall-clock time grows with the load, CPU time much less), the registry import time, the load average
before and after. Then the slowest claim (by median) is run under ``cProfile`` in another fresh process, after the
claims that precede it in the command's order (so SymPy's caches are as warm as in the command): its top
functions by cumulative and by own time, and a breakdown into the SymPy entry points the proof code calls
(``simplify_to_zero``'s steps, the rule bodies on symbols, the certificate text, the explicit-network checks).

Output: one JSON line per measurement and a summary line; exit 1 if a claim is not proved.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from typing import Any

COMMAND = "python benchmarks/bench_prove.py " + " ".join(a for a in sys.argv[1:] if not a.startswith("--child"))

#: (label, filename substring, function name): cumulative times read off the profile of the slowest claim
BREAKDOWN = [
    ("Evidence.identity (all of simplify + certificate text)", "symbolic/certificate.py", "identity"),
    ("simplify_to_zero", "symbolic/certificate.py", "simplify_to_zero"),
    ("  rational_numerator (N = 0 in ZZ[symbols], no gcds)", "symbolic/certificate.py", "rational_numerator"),
    ("  QQ.frac_field(...) (field construction)", "polys/domains/domain.py", "frac_field"),
    ("  field.from_sympy (residual into QQ(symbols))", "polys/fields.py", "from_sympy"),
    ("  sympy.together", "simplify/radsimp.py", "together"),
    ("  sympy.together (polys/rationaltools)", "polys/rationaltools.py", "together"),
    ("  sympy.expand", "core/function.py", "expand"),
    ("  sympy.cancel", "polys/polytools.py", "cancel"),
    ("  sympy.simplify", "simplify/simplify.py", "simplify"),
    ("sympy.srepr (certificate)", "printing/repr.py", "srepr"),
    ("str(residual) (certificate)", "printing/str.py", "sstr"),
    ("expr_srepr (certificate srepr, subexpressions remembered)", "symbolic/ops.py", "expr_srepr"),
    ("expr_str (certificate text and conditions, remembered)", "symbolic/ops.py", "expr_str"),
    ("SymPy assumption queries (_ask)", "core/assumptions.py", "_ask"),
    ("sympify", "core/sympify.py", "sympify"),
    ("rule bodies: redistribute", "rules/", "redistribute"),
    ("rule bodies: normaliser", "rules/", "normaliser"),
    ("rule bodies: root_step", "rules/", "root_step"),
    ("  SympyOps.matmul (products with an exact 0 left out)", "symbolic/ops.py", "matmul"),
    ("explicit-network checks (exact, no SymPy)", "symbolic/rule_claims.py", "explicit_net_checks"),
    ("exact_dtd on explicit nets (Fractions, no SymPy)", "dtd_formal/dtd.py", "exact_dtd"),
    ("find_counterexample", "symbolic/certificate.py", "find_counterexample"),
]


def emit(**row: Any) -> None:
    print(json.dumps({"bench": "prove", **row}), flush=True)


def child_times() -> None:
    t0 = time.perf_counter()
    from dtd_formal.symbolic.registry import CLAIMS, run_claim

    imported = time.perf_counter() - t0
    rows = []
    for name in CLAIMS:
        c0 = time.process_time()
        r = run_claim(name, out=None, fast=False)
        rows.append({"claim": name, "status": r.status, "seconds": r.seconds, "cpu_seconds": time.process_time() - c0})
    print(json.dumps({"import_s": imported, "claims": rows}))


def child_profile(claim: str, top: int) -> None:
    from dtd_formal.symbolic.registry import CLAIMS, run_claim

    for name in CLAIMS:  # warm SymPy as the command has by the time it reaches ``claim``
        if name == claim:
            break
        run_claim(name, out=None, fast=False)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    r = run_claim(claim, out=None, fast=False)
    prof.disable()
    wall = time.perf_counter() - t0
    st = pstats.Stats(prof, stream=io.StringIO())
    total = st.total_tt  # type: ignore[attr-defined]
    entries = st.stats  # type: ignore[attr-defined]

    def short(key: tuple[str, int, str]) -> str:
        path, line, fn = key
        for marker in ("site-packages/", "dtd_formal/"):
            if marker in path:
                path = ("" if marker == "site-packages/" else "dtd_formal/") + path.split(marker, 1)[1]
                break
        return f"{path}:{line}({fn})"

    by_cum = sorted(entries.items(), key=lambda kv: kv[1][3], reverse=True)[:top]
    by_own = sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    breakdown = []
    for label, where, fn in BREAKDOWN:
        # the outermost frame of each matching function: cumulative time is not double-counted for recursion
        # (pstats' cumulative time of a function already excludes recursive re-entries)
        cum = sum(v[3] for k, v in entries.items() if where in k[0] and k[2] == fn)
        calls = sum(v[1] for k, v in entries.items() if where in k[0] and k[2] == fn)
        if calls:
            breakdown.append({"what": label, "calls": calls, "cumulative_s": round(cum, 3)})
    print(json.dumps({"claim": claim, "status": r.status, "seconds_profiled": r.seconds, "wall_profiled_s": wall,
                      "profile_total_s": total,
                      "top_cumulative": [{"fn": short(k), "calls": v[1], "cumulative_s": round(v[3], 3),
                                          "own_s": round(v[2], 3)} for k, v in by_cum],
                      "top_own": [{"fn": short(k), "calls": v[1], "own_s": round(v[2], 3),
                                   "cumulative_s": round(v[3], 3)} for k, v in by_own],
                      "breakdown": breakdown}))


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="fresh-process runs of all claims (default 3)")
    ap.add_argument("--top", type=int, default=20, help="functions listed from the profile (default 20)")
    ap.add_argument("--profile-claim", default=None, help="profile this claim instead of the slowest")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--child-times", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-profile", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_times:
        child_times()
        return 0
    if args.child_profile:
        child_profile(args.child_profile, args.top)
        return 0

    emit(kind="config", command=COMMAND, runs=args.runs, python=sys.version.split()[0], cpus=os.cpu_count(),
         load_average=[round(u, 2) for u in os.getloadavg()])
    runs = [run_child("--child-times") for _ in range(args.runs)]
    names = [row["claim"] for row in runs[0]["claims"]]
    per: dict[str, list[float]] = {n: [] for n in names}
    statuses: dict[str, set[str]] = {n: set() for n in names}
    for k, run in enumerate(runs):
        for row in run["claims"]:
            per[row["claim"]].append(row["seconds"])
            statuses[row["claim"]].add(row["status"])
        emit(kind="run", run=k + 1, total_proof_s=round(sum(r["seconds"] for r in run["claims"]), 3),
             total_cpu_s=round(sum(r["cpu_seconds"] for r in run["claims"]), 3), import_s=round(run["import_s"], 3))
    medians = {n: statistics.median(v) for n, v in per.items()}
    for n in names:
        emit(kind="claim", claim=n, status="/".join(sorted(statuses[n])), median_s=round(medians[n], 3),
             runs_s=[round(s, 3) for s in per[n]])
    totals = [sum(r["seconds"] for r in run["claims"]) for run in runs]
    cpu_totals = [sum(r["cpu_seconds"] for r in run["claims"]) for run in runs]
    slowest = max(medians, key=medians.get)  # type: ignore[arg-type]
    ok = all(statuses[n] == {"proved"} for n in names)
    emit(kind="summary", claims=len(names), all_proved=ok, median_total_proof_s=round(statistics.median(totals), 3),
         median_total_cpu_s=round(statistics.median(cpu_totals), 3),
         sum_of_medians_s=round(sum(medians.values()), 3), totals_s=[round(t, 3) for t in totals],
         median_import_s=round(statistics.median(r["import_s"] for r in runs), 3), slowest=slowest,
         goal="< 5 s of proof time (issue 15, item 7)", load_average_end=[round(u, 2) for u in os.getloadavg()])
    if not args.no_profile:
        claim = args.profile_claim or slowest
        prof = run_child("--child-profile", claim, "--top", str(args.top))
        emit(kind="profile", **prof)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

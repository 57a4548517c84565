"""``dtd-formal reproduce``: the paper's claims and study end to end, with report.md, results.json, figures/,
certificates/.

Each step is a function of a :class:`Context` that returns a :class:`StepResult`; a step whose backend module is
not installed is recorded as "skipped" with the reason, and a step that raises is recorded as "failed" with the
error (the other steps still run). The run fails (exit 1) when a claim expected to hold is not proved or a step
failed; it reports exit 3 when unknowns remain and nothing failed.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..verdict import to_jsonable


@dataclass
class Context:
    """What every step gets: the output folder, the mode, seeds and per-step budgets (seconds)."""

    out: Path
    quick: bool
    seed: int
    n_inputs: int
    budgets: dict[str, float]
    progress: bool = True
    shared: dict[str, Any] = field(default_factory=dict)  #: results a later step reuses (e.g. the study net)

    @property
    def figures(self) -> Path:
        return self.out / "figures"

    @property
    def certificates(self) -> Path:
        return self.out / "certificates"


@dataclass
class StepResult:
    """One section of the report."""

    name: str
    title: str
    status: str  #: "done", "skipped" or "failed"
    seconds: float = 0.0
    data: Any = None
    report_md: str = ""
    figures: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  #: things expected to hold that did not
    unknowns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status, "seconds": round(self.seconds, 3),
                "failures": self.failures, "unknowns": self.unknowns, "figures": self.figures,
                "data": to_jsonable(self.data)}


Step = Callable[[Context], StepResult]


def run_steps(ctx: Context, steps: list[tuple[str, str, Step]]) -> list[StepResult]:
    """Run every step, timing it and turning missing modules and errors into recorded outcomes."""
    from tqdm import tqdm

    ctx.out.mkdir(parents=True, exist_ok=True)
    ctx.figures.mkdir(exist_ok=True)
    ctx.certificates.mkdir(exist_ok=True)
    results: list[StepResult] = []
    bar = tqdm(steps, desc="reproduce", unit="step", disable=not ctx.progress)
    for name, title, fn in bar:
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        try:
            res = fn(ctx)
        except ImportError as exc:
            res = StepResult(name, title, "skipped", report_md=f"Skipped: a backend module is missing ({exc}).")
        except Exception as exc:  # noqa: BLE001 - a failing step is recorded, the run goes on
            tb = traceback.format_exc(limit=6)
            res = StepResult(name, title, "failed", report_md=f"Failed: `{exc!r}`\n\n```\n{tb}\n```",
                             failures=[f"{name}: {exc!r}"])
        res.seconds = time.perf_counter() - t0
        results.append(res)
    return results


def write_outputs(ctx: Context, results: list[StepResult], header: str) -> tuple[Path, Path]:
    """results.json and report.md."""
    payload = {"quick": ctx.quick, "seed": ctx.seed, "n_inputs": ctx.n_inputs, "budgets": ctx.budgets,
               "steps": {r.name: r.to_json() for r in results}}
    rj = ctx.out / "results.json"
    rj.write_text(json.dumps(payload, indent=1))
    lines = [header, "", "| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {r.title} | {r.status} | {r.seconds:.1f} |" for r in results]
    for r in results:
        lines += ["", f"## {r.title}", "", r.report_md.strip()]
        for fig in r.figures:
            lines += ["", f"![{Path(fig).stem}]({fig})"]
    rm = ctx.out / "report.md"
    rm.write_text("\n".join(lines) + "\n")
    return rj, rm


def exit_code(results: list[StepResult]) -> int:
    """1 if anything expected to hold failed, else 3 if unknowns remain, else 0."""
    if any(r.failures for r in results):
        return 1
    if any(r.unknowns for r in results):
        return 3
    return 0

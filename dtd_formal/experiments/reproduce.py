"""``dtd-formal reproduce``: the paper's claims and study end to end, with report.md, results.json, figures/,
certificates/.

Each step is a function of a :class:`Context` that returns a :class:`StepResult`; a step whose backend module is
not installed is recorded as "skipped" with the reason, and a step that raises is recorded as "failed" with the
error (the other steps still run). The run fails (exit 1) when a claim expected to hold is not proved or a step
failed; it reports exit 3 when unknowns remain and nothing failed.

results.json and report.md record how the run came about: the package versions (:func:`package_versions`), the
seeds (the network seed and the fixed seeds of :data:`INPUT_SEEDS`), the command line or Python call
(:class:`Invocation`) and the wall time of every step and of the whole run. :func:`reproduce` is the Python entry
point; ``dtd-formal reproduce`` calls it.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import json
import platform
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..examples import STUDY_SEED
from ..verdict import to_jsonable

#: (distribution name, import name) of the packages whose versions a run records
VERSION_PACKAGES: tuple[tuple[str, str], ...] = (
    ("dtd_formal", "dtd_formal"), ("torch", "torch"), ("z3-solver", "z3"), ("sympy", "sympy"), ("numpy", "numpy"),
    ("scipy", "scipy"),
)

#: the fixed seeds of the steps (the network seed is the run's ``seed``): numpy seeds of the study inputs, the demo
#: inputs, the in-region inputs and the 2-D figure's inputs (and its network), the torch seed of the CSC net and input
INPUT_SEEDS: dict[str, int] = {"c6_inputs": 0, "demo_inputs": 1, "in_region_inputs": 3, "figures_2d": 0, "csc": 0}

QUICK_BUDGETS = {"claims": 60, "c6_study": 20, "root_exit_search": 20, "in_region_roots": 20, "figures": 20}
FULL_BUDGETS = {"claims": 120, "c6_study": 600, "root_exit_search": 600, "in_region_roots": 300, "figures": 120}


def package_versions() -> dict[str, str]:
    """The versions of :data:`VERSION_PACKAGES`, plus Python and the platform.

    Returns
    -------
    dict of str to str
        Distribution name -> version (from the installed distribution's metadata, else the module's
        ``__version__``; ``"not installed"`` when the module cannot be imported), and ``python``, ``platform``.
    """
    out: dict[str, str] = {}
    for dist, module in VERSION_PACKAGES:
        try:
            out[dist] = importlib.metadata.version(dist)
            continue
        except importlib.metadata.PackageNotFoundError:
            pass
        try:
            out[dist] = str(getattr(importlib.import_module(module), "__version__", "unknown"))
        except ImportError:
            out[dist] = "not installed"
    out["python"] = platform.python_version()
    out["platform"] = platform.platform()
    return out


@dataclass
class Invocation:
    """How a run was started: from the command line (``argv`` is the process's ``sys.argv``) or from Python
    (``call`` is the call with its arguments).

    Attributes
    ----------
    via : str
        ``"command line"`` or ``"python"``.
    arguments : dict
        The run's arguments by name (out, quick, n_inputs, seed, ...), as given.
    argv : list of str
        The process's ``sys.argv`` (for a Python call: the host process's, for context).
    call : str
        The Python call with its arguments (empty for the command line).
    command : str
        A ``dtd-formal reproduce ...`` command line that repeats the run.
    """

    via: str
    arguments: dict[str, Any]
    argv: list[str]
    call: str = ""
    command: str = ""

    @staticmethod
    def equivalent_command(out: str | Path, quick: bool, n_inputs: int | None, seed: int) -> str:
        """The ``dtd-formal reproduce`` command line with these settings."""
        words = ["dtd-formal", "reproduce"] + (["--quick"] if quick else []) + ["--out", str(out)]
        words += (["--inputs", str(n_inputs)] if n_inputs is not None else []) + ["--seed", str(seed)]
        return shlex.join(words)

    @classmethod
    def from_command_line(cls, arguments: dict[str, Any], argv: Sequence[str] | None = None) -> "Invocation":
        """The invocation of ``dtd-formal reproduce`` with parsed ``arguments``; when the process's command line
        is not that command (``dtd_formal.cli.main([...])`` called from Python), ``via`` is ``"python"`` and
        ``call`` names ``cli.main`` with the equivalent argument list."""
        argv = list(sys.argv if argv is None else argv)
        command = cls.equivalent_command(arguments["out"], arguments["quick"], arguments.get("inputs"),
                                         arguments["seed"])
        if argv[1:2] == ["reproduce"]:
            return cls("command line", dict(arguments), argv, "", shlex.join(["dtd-formal", *argv[1:]]))
        words = shlex.split(command)[1:] + [f"--{k.replace('_', '-')}" for k in ("json", "no_progress")
                                            if arguments.get(k)]
        return cls("python", dict(arguments), argv, f"dtd_formal.cli.main({words!r})", command)

    def to_json(self) -> dict[str, Any]:
        return {"via": self.via, "arguments": to_jsonable(self.arguments), "argv": list(self.argv),
                "call": self.call, "command": self.command}

    def describe(self) -> str:
        """One markdown line: the command (or call) and the process's command line."""
        if self.via == "command line":
            return f"`{self.command}` (command line; sys.argv: `{shlex.join(self.argv)}`)"
        return (f"`{self.call}` (Python call; equivalent command `{self.command}`; host process sys.argv: "
                f"`{shlex.join(self.argv)}`)")


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
    invocation: Invocation | None = None  #: how the run was started (recorded in results.json and report.md)
    seconds: float | None = None  #: wall time of the whole run, set by :func:`reproduce` before writing

    @property
    def seeds(self) -> dict[str, int]:
        """Every seed of the run: the network seed and :data:`INPUT_SEEDS`."""
        return {"network": self.seed, **INPUT_SEEDS}

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
            if (exc.name or "").split(".")[0] == "dtd_formal":  # the package's own module: a bug, not an option
                res = StepResult(name, title, "failed", report_md=f"Failed: `{exc!r}`",
                                 failures=[f"{name}: {exc!r}"])
            else:
                res = StepResult(name, title, "skipped", report_md=f"Skipped: a backend module is missing ({exc}).")
        except Exception as exc:  # noqa: BLE001 - a failing step is recorded, the run goes on
            tb = traceback.format_exc(limit=6)
            res = StepResult(name, title, "failed", report_md=f"Failed: `{exc!r}`\n\n```\n{tb}\n```",
                             failures=[f"{name}: {exc!r}"])
        res.seconds = time.perf_counter() - t0
        results.append(res)
    return results


def table_cell(text: Any) -> str:
    """A markdown table cell: the whole text, with ``|`` escaped and line breaks as spaces (never cut)."""
    return str(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def report_header(quick: bool) -> str:
    """The title and opening paragraph of report.md."""
    return (f"# dtd_formal reproduce ({'quick' if quick else 'full'})\n\nSixt & Landgraf, *A Rigorous Study Of The "
            "Deep Taylor Decomposition* (TMLR 2022): the claims, proved exactly, and the C6 study, decided exactly. "
            "The run's command, seeds, package versions and wall times are below and in results.json.")


def run_section(ctx: Context, results: list[StepResult]) -> list[str]:
    """The report's "Run" lines: command, seeds, versions, wall time (the same values as results.json)."""
    versions = package_versions()
    inv = ctx.invocation
    lines = ["## Run", "", f"- command: {inv.describe() if inv else '(not recorded)'}",
             "- seeds: " + ", ".join(f"{k} {v}" for k, v in ctx.seeds.items())
             + f" (network: `examples.paper_mlp({ctx.seed}, init)`)",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
             f"- wall time: {_seconds(ctx.seconds)} s in all; per step: "
             + ", ".join(f"{r.name} {_seconds(r.seconds)} s" for r in results)]
    return lines


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{round(value, 3):.3f}"


def write_outputs(ctx: Context, results: list[StepResult], header: str | None = None) -> tuple[Path, Path]:
    """Write results.json and report.md into ``ctx.out``.

    Parameters
    ----------
    ctx : Context
        The run (its invocation, seeds and total wall time are recorded).
    results : list of StepResult
        The steps, in report order.
    header : str, optional
        The report's title and first paragraph (default :func:`report_header`).

    Returns
    -------
    (Path, Path)
        results.json and report.md.
    """
    step_seconds = {r.name: round(r.seconds, 3) for r in results}
    total = ctx.seconds if ctx.seconds is not None else sum(r.seconds for r in results)
    payload = {"quick": ctx.quick, "seed": ctx.seed, "seeds": ctx.seeds, "n_inputs": ctx.n_inputs,
               "budgets": ctx.budgets, "versions": package_versions(),
               "invocation": ctx.invocation.to_json() if ctx.invocation else None,
               "command": ctx.invocation.command if ctx.invocation else None,
               "started_utc": ctx.shared.get("started_utc"),
               "timings": {"total_seconds": round(total, 3), "steps": step_seconds},
               "steps": {r.name: r.to_json() for r in results}}
    rj = ctx.out / "results.json"
    rj.write_text(json.dumps(payload, indent=1))
    lines = [header or report_header(ctx.quick), "", "| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {table_cell(r.title)} | {r.status} | {_seconds(r.seconds)} |" for r in results]
    lines += [f"| total (wall time) | | {_seconds(total)} |", ""]
    lines += run_section(ctx, results)
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


@dataclass
class ReproduceRun:
    """What :func:`reproduce` returns: the step results, the files written and the exit code."""

    results: list[StepResult]
    results_json: Path
    report: Path
    exit_code: int
    seconds: float

    def payload(self) -> dict[str, Any]:
        """results.json, parsed."""
        return json.loads(self.results_json.read_text())


def reproduce(out: str | Path = "reproduce-out", quick: bool = False, n_inputs: int | None = None,
              seed: int = STUDY_SEED, progress: bool = True,
              steps: list[tuple[str, str, Step]] | None = None,
              invocation: Invocation | None = None) -> ReproduceRun:
    """Run the paper's claims and study end to end and write report.md, results.json, figures/, certificates/.

    Parameters
    ----------
    out : str or Path
        Output folder (created).
    quick : bool
        Fewer inputs and smaller budgets (:data:`QUICK_BUDGETS`).
    n_inputs : int, optional
        Study inputs (default 1000, quick 100).
    seed : int
        Network seed (default :data:`~dtd_formal.examples.STUDY_SEED`); the other seeds are :data:`INPUT_SEEDS`.
    progress : bool
        Show a progress bar on stderr.
    steps : list, optional
        (name, title, function) triples (default :data:`~dtd_formal.experiments.steps.ALL_STEPS`).
    invocation : Invocation, optional
        How the run was started (the command line passes its own); default: this Python call with its arguments.

    Returns
    -------
    ReproduceRun
    """
    t0 = time.perf_counter()
    if steps is None:
        from .steps import ALL_STEPS

        steps = ALL_STEPS
    if invocation is None:
        arguments = {"out": str(out), "quick": quick, "n_inputs": n_inputs, "seed": seed, "progress": progress}
        if [s[0] for s in steps] != _default_step_names():
            arguments["steps"] = [s[0] for s in steps]
        listed = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        call = f"dtd_formal.experiments.reproduce.reproduce({listed})"
        invocation = Invocation("python", arguments, list(sys.argv), call,
                                Invocation.equivalent_command(out, quick, n_inputs, seed))
    ctx = Context(out=Path(out), quick=quick, seed=seed, n_inputs=n_inputs or (100 if quick else 1000),
                  budgets=dict(QUICK_BUDGETS if quick else FULL_BUDGETS), progress=progress, invocation=invocation)
    ctx.shared["started_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results = run_steps(ctx, steps)
    ctx.seconds = time.perf_counter() - t0
    rj, rm = write_outputs(ctx, results)
    return ReproduceRun(results, rj, rm, exit_code(results), ctx.seconds)


def _default_step_names() -> list[str]:
    from .steps import ALL_STEPS

    return [s[0] for s in ALL_STEPS]

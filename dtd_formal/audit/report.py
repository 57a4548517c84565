"""The audit's findings: :class:`LayerRecord` per module, :class:`AuditReport` with its verdict, JSON and
Markdown, and the figure (per-layer conservation and deviation, and the input heatmap)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: verdicts from best to worst; the report's verdict is its worst finding
VERDICTS = ("sound", "uncovered", "leaks", "deviates")


@dataclass
class LayerRecord:
    """One module (or functional operation) of the explained model.

    ``relevance_in``: relevance entering (at its output), ``relevance_out``: leaving (at its inputs), both summed
    over the batch; ``absorbed = relevance_in - relevance_out`` and ``share = absorbed / |relevance_in|``;
    ``max_deviation``: max |library - definition| / max |definition| of the relevance it hands down (None when
    not checked), ``rule``: the rule it claims (spec) and ``cause``: why relevance was absorbed or created, or
    why the layer departs; ``finding``: "", "leak" or "deviation"; ``top``: the channels/neurons with the largest
    absorbed amounts; ``absorbed_per_input`` and ``deviation_per_input``: the same figures for each input of the
    batch (empty / None where not measured)."""

    name: str
    kind: str
    rule: str
    relevance_in: float
    relevance_out: float
    absorbed: float
    share: float
    max_deviation: float | None = None
    cause: str = ""
    finding: str = ""
    top: list[tuple[int, float]] = field(default_factory=list)
    absorbed_per_input: list[float] = field(default_factory=list)
    deviation_per_input: list[float] | None = None


@dataclass
class CanonizerRecord:
    """A canonizer: the largest change of the model output it makes, and whether the model's parameters and
    hooks are exactly as before once it is removed."""

    name: str
    max_output_change: float
    restored: bool


@dataclass
class AuditReport:
    """Result of :func:`dtd_formal.audit.audit` (its docstring says what is checked)."""

    explainer: str
    reference: str
    layers: list[LayerRecord]
    uncovered: list[dict[str, str]]
    canonizers: list[CanonizerRecord]
    roots: list[dict[str, Any]]
    end_to_end: dict[str, Any]
    restored: bool
    tolerance: float
    target: list[int]
    input_relevance: Any = field(default=None, repr=False)

    @property
    def verdict(self) -> str:
        """The worst finding: "deviates" > "leaks" > "uncovered" > "sound"."""
        worst = "sound"
        if self.uncovered or not self.restored or any(not c.restored for c in self.canonizers):
            worst = "uncovered"
        if any(r.finding == "leak" for r in self.layers):
            worst = "leaks"
        dev = self.end_to_end.get("max_deviation")
        explained = worst != "sound"  # an end-to-end difference that a leak or a gap accounts for is that finding
        if any(r.finding == "deviation" for r in self.layers) or (dev is not None and dev > self.tolerance and not explained):
            worst = "deviates"
        return worst

    @property
    def first_departure(self) -> str | None:
        """The first module (in call order) whose relevance departs from its rule's definition."""
        return next((r.name for r in self.layers if r.finding == "deviation"), None)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "input_relevance"}
        out["verdict"] = self.verdict
        out["first_departure"] = self.first_departure
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=float)

    def to_markdown(self) -> str:
        lines = [f"# Audit: {self.explainer}", "", f"**Verdict: {self.verdict}** (reference: {self.reference}; "
                 f"tolerance {self.tolerance:g}; targets {self.target})", ""]
        if self.first_departure:
            lines += [f"First layer that departs from its rule: `{self.first_departure}`", ""]
        e2e = self.end_to_end
        if e2e:
            lines += [f"End to end: {e2e.get('status', '')} "
                      + (f"(max relative deviation {e2e['max_deviation']:.3g})" if e2e.get("max_deviation") is not None else ""), ""]
        lines += ["| module | kind | rule | relevance in | relevance out | absorbed (share) | max deviation | finding | cause |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in self.layers:
            dev = "" if r.max_deviation is None else f"{r.max_deviation:.3g}"
            lines.append(f"| `{r.name}` | {r.kind} | {r.rule} | {r.relevance_in:.6g} | {r.relevance_out:.6g} | "
                         f"{r.absorbed:.3g} ({r.share:.1%}) | {dev} | {r.finding} | {r.cause} |")
        if self.uncovered:
            lines += ["", "## Not covered", ""] + [f"- `{u['name']}` ({u['kind']}): {u['reason']}" for u in self.uncovered]
        if self.canonizers:
            lines += ["", "## Canonizers", ""] + [
                f"- {c.name}: output changes by at most {c.max_output_change:.3g}; model restored: {c.restored}"
                for c in self.canonizers]
        if self.roots:
            lines += ["", "## Roots", ""] + [
                f"- layer `{r['layer']}` ({r['rule']}): {r.get('leave', '?')} of {r.get('roots', '?')} roots leave the "
                f"input's region; {r.get('outside_domain', '?')} leave the rule's domain" if "error" not in r
                else f"- layer `{r['layer']}`: unknown ({r['error']})" for r in self.roots]
        lines += ["", f"Model restored after the audit: {self.restored}"]
        return "\n".join(lines) + "\n"

    def figure(self, path: str | Path) -> Path:
        """Per-layer conservation (absorbed share) and deviation, and the input heatmap, in one PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np

        names = [r.name for r in self.layers]
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        colours = ["tab:red" if r.finding == "leak" else "tab:gray" for r in self.layers]
        axes[0].bar(range(len(names)), [r.share for r in self.layers], color=colours)
        axes[0].set_title("relevance absorbed per module (share of what entered)")
        floor = 1e-17  # an exact agreement (0) drawn at the floor of the log axis
        devs = [max(r.max_deviation, floor) if r.max_deviation is not None else np.nan for r in self.layers]
        axes[1].bar(range(len(names)), devs, color=["tab:red" if r.finding == "deviation" else "tab:blue" for r in self.layers])
        axes[1].set_yscale("log")
        axes[1].set_ylabel(f"relative deviation (0 drawn at {floor:g})")
        axes[1].axhline(self.tolerance, color="k", lw=0.8, ls="--", label=f"tolerance {self.tolerance:g}")
        axes[1].set_title("max relative deviation from the rule's definition")
        axes[1].legend()
        for ax in axes[:2]:
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        if self.input_relevance is not None:
            from ..torch.heatmap import heatmap

            axes[2].imshow(heatmap(self.input_relevance[0]))
            axes[2].set_title("input relevance (first input)")
        axes[2].axis("off")
        fig.suptitle(f"{self.explainer}: {self.verdict}")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


__all__ = ["AuditReport", "CanonizerRecord", "LayerRecord", "VERDICTS"]

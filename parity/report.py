"""Reports of a run: the terminal report (rich), JSON and Markdown.

The terminal report has one line per case × variant: the worst |Δ|/bound of each tier (at
most 1 passes) and pass or fail; the rows of every failing quantity follow, and the last line
is the count.  ``detail`` prints every row instead; ``quiet`` only the last line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .compare import TIERS, Row

_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


@dataclass
class VariantLine:
    """The summary of one case × variant: the worst ratio per tier, and the status."""

    case: str
    variant: str
    worst: dict[str, float | None] = field(default_factory=dict)
    status: str = "skip"
    rows: list[Row] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case, "variant": self.variant, "status": self.status,
                "worst": {t: _json_number(v) for t, v in self.worst.items()}}


def variant_lines(rows: Sequence[Row]) -> list[VariantLine]:
    """The rows grouped by case × variant, in their order."""
    lines: dict[tuple[str, str], VariantLine] = {}
    for r in rows:
        line = lines.setdefault((r.case, r.variant), VariantLine(r.case, r.variant))
        line.rows.append(r)
    for line in lines.values():
        statuses = {r.status for r in line.rows}
        line.status = "fail" if "fail" in statuses else "pass" if "pass" in statuses else "skip"
        for tier in TIERS:
            ratios = [math.inf if r.ratio is None else r.ratio for r in line.rows
                      if r.tier == tier and r.status != "skip"]  # None: nothing measured
            line.worst[tier] = max(ratios) if ratios else None
    return list(lines.values())


def summary(rows: Sequence[Row]) -> dict[str, int]:
    out = {"pass": 0, "fail": 0, "skip": 0}
    for r in rows:
        out[r.status] += 1
    return out


def last_line(rows: Sequence[Row]) -> str:
    s = summary(rows)
    lines = variant_lines(rows)
    cases = len({line.case for line in lines})
    failing = sum(1 for line in lines if line.status == "fail")
    return (f"{s['pass']} passed, {s['fail']} failed, {s['skip']} skipped "
            f"({len(lines)} case × variant of {cases} cases; {failing} failing)")


def _ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return "inf" if math.isinf(x) else f"{x:.2g}"


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.2e}"


def summary_table(rows: Sequence[Row], title: str) -> Any:
    from rich import box
    from rich.table import Table

    t = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", title_justify="left")
    t.add_column("case")
    t.add_column("variant")
    for tier in TIERS:
        t.add_column(f"{tier} |Δ|/bound", justify="right")
    t.add_column("status")
    for line in variant_lines(rows):
        t.add_row(line.case, line.variant or "-", *(_ratio(line.worst[k]) for k in TIERS),
                  f"[{_STYLE[line.status]}]{line.status}[/]")
    return t


def detail_table(rows: Sequence[Row], title: str) -> Any:
    from rich import box
    from rich.table import Table

    t = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", title_justify="left")
    for col, just in (("case", "left"), ("variant", "left"), ("tier", "left"),
                      ("quantity", "left"), ("max |Δ|", "right"), ("|Δ|/bound", "right"),
                      ("bound", "left"), ("status", "left"), ("note", "left")):
        t.add_column(col, justify=just, overflow="fold")
    for r in rows:
        t.add_row(r.case, r.variant, r.tier, r.quantity, _num(r.max_abs), _ratio(r.ratio),
                  r.bound, f"[{_STYLE[r.status]}]{r.status}[/]", r.note)
    return t


def print_report(console: Any, rows: Sequence[Row], meta: dict[str, Any],
                 detail: bool = False, quiet: bool = False) -> None:
    """The terminal report (see the module's doc) on a rich Console."""
    if not quiet:
        title = f"parity: {meta.get('candidate', '?')} vs {meta.get('source', '?')}"
        if detail:
            console.print(detail_table(rows, title))
        else:
            console.print(summary_table(rows, title))
            failed = [r for r in rows if r.status == "fail"]
            if failed:
                console.print(detail_table(failed, "failing quantities"))
    colour = "red" if summary(rows)["fail"] else "green"
    console.print(f"[{colour}]{last_line(rows)}[/]", highlight=False)


def _json_number(x: Any) -> Any:
    """JSON has no NaN or infinity: a non-finite difference (a candidate's NaN objective)
    is written as the string "nan", "inf" or "-inf"."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def to_json(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    out = [{k: _json_number(v) for k, v in r.to_json().items()} for r in rows]
    return json.dumps({"meta": meta, "summary": summary(rows),
                       "variants": [line.to_json() for line in variant_lines(rows)],
                       "rows": out}, indent=1, allow_nan=False, default=str) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def to_markdown(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    lines = [f"# Parity report: {meta.get('candidate', '?')} vs {meta.get('source', '?')}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += [f"- result: {last_line(rows)}", ""]
    lines.append("| case | variant | " + " | ".join(f"{t} \\|Δ\\|/bound" for t in TIERS)
                 + " | status |")
    lines.append("|---|---|" + "---:|" * len(TIERS) + "---|")
    for line in variant_lines(rows):
        lines.append(_md_row([line.case, line.variant or "-",
                              *(_ratio(line.worst[t]) for t in TIERS), line.status]))
    lines += ["", "## Every quantity", ""]
    lines.append("| case | variant | tier | quantity | max abs | max rel | \\|Δ\\|/bound | bound "
                 "| status | note |")
    lines.append("|---|---|---|---|---:|---:|---:|---|---|---|")
    for r in rows:
        lines.append(_md_row([r.case, r.variant, r.tier, r.quantity, _num(r.max_abs),
                              _num(r.max_rel), _ratio(r.ratio), r.bound, r.status, r.note]))
    return "\n".join(lines) + "\n"

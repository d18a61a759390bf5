"""Reports of a run: a terminal table (rich), JSON and Markdown."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from .compare import Row

_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.2e}"


def _nagq(k: int) -> str:
    return "" if k < 0 else str(k)


def table(rows: Sequence[Row], title: str, failures_only: bool = False) -> Table:
    t = Table(title=title, show_lines=False, header_style="bold")
    for col, just in (("case", "left"), ("nAGQ", "right"), ("tier", "left"),
                      ("quantity", "left"), ("max |Δ|", "right"), ("max rel", "right"),
                      ("bound", "left"), ("status", "left"), ("note", "left")):
        t.add_column(col, justify=just, overflow="fold")
    for r in rows:
        if failures_only and r.status != "fail":
            continue
        t.add_row(r.case, _nagq(r.nAGQ), r.tier, r.quantity, _num(r.max_abs), _num(r.max_rel),
                  r.bound, f"[{_STYLE[r.status]}]{r.status}[/]", r.note)
    return t


def summary(rows: Sequence[Row]) -> dict[str, int]:
    out = {"pass": 0, "fail": 0, "skip": 0}
    for r in rows:
        out[r.status] += 1
    return out


def print_report(console: Console, rows: Sequence[Row], meta: dict[str, Any],
                 failures_only: bool = False) -> None:
    title = f"parity: {meta.get('candidate', '?')} vs {meta.get('source', '?')}"
    console.print(table(rows, title, failures_only))
    s = summary(rows)
    colour = "red" if s["fail"] else "green"
    console.print(f"[{colour}]{s['pass']} passed, {s['fail']} failed, {s['skip']} skipped[/]")


def _json_number(x: Any) -> Any:
    """JSON has no NaN or infinity: a non-finite difference (a candidate's NaN objective)
    is written as the string "nan", "inf" or "-inf"."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def to_json(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    out = [{k: _json_number(v) for k, v in r.to_json().items()} for r in rows]
    return json.dumps({"meta": meta, "summary": summary(rows), "rows": out}, indent=1,
                      allow_nan=False, default=str)


def to_markdown(rows: Sequence[Row], meta: dict[str, Any]) -> str:
    s = summary(rows)
    lines = [f"# Parity report: {meta.get('candidate', '?')} vs {meta.get('source', '?')}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += [f"- result: {s['pass']} passed, {s['fail']} failed, {s['skip']} skipped", ""]
    lines.append("| case | nAGQ | tier | quantity | max abs | max rel | bound | status | note |")
    lines.append("|---|---:|---|---|---:|---:|---|---|---|")
    for r in rows:
        cells = [r.case, _nagq(r.nAGQ), r.tier, r.quantity, _num(r.max_abs), _num(r.max_rel),
                 r.bound, r.status, r.note]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells)
                     + " |")
    return "\n".join(lines) + "\n"

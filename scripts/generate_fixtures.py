#!/usr/bin/env python3
"""Regenerate the lme4 fixtures from live R, or check that they have not drifted.

    scripts/generate_fixtures.py                 # every case, written into fixtures/
    scripts/generate_fixtures.py cbpp verbagg    # only these cases
    scripts/generate_fixtures.py --check         # regenerate into a temp dir and compare

Each fixture is written atomically once its case is complete, so an interrupted run leaves
every committed fixture either as it was or fully replaced.  ``--check`` writes nothing in
fixtures/; it exits 1 with a table of the drifting quantities when a regenerated fixture
differs from the committed one beyond the tolerance tiers (the guard against an R, lme4 or
Matrix upgrade), and 2 when it cannot run (no R, unknown case, unreadable fixture).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from parity import fixtures, report
from parity.cases import select_cases
from parity.drift import compare_references
from parity.errors import ParityError
from parity.generate import committed_probe_points, generate_document
from parity.r_bridge import session
from parity.results import CaseReference


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cases", nargs="*", help="case names (default: the whole corpus)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temp dir and compare with the committed fixtures")
    ap.add_argument("--out", type=Path, default=fixtures.DEFAULT_DIR,
                    help="fixture folder (default: fixtures/)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    try:
        cases = select_cases(args.cases)
        r = session()
        committed = {c.name: fixtures.load_document(fixtures.fixture_path(c.name, args.out))
                     for c in cases} if args.check else {}
    except ParityError as exc:
        console.print(f"[red]generate_fixtures: {exc}[/]")
        return 2
    v = r.versions
    console.print(f"R {v['r_version']}, lme4 {v['lme4_version']}, Matrix {v['matrix_version']}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="parity-fixtures-") as tmp:
        target = Path(tmp) if args.check else args.out
        steps = sum(2 + 3 * len(c.nAGQ) for c in cases)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True,
                      disable=args.no_progress) as progress:
            task = progress.add_task("fixtures", total=steps)

            def on_step(msg: str) -> None:
                progress.update(task, description=msg, advance=1)

            for case in cases:
                old = committed.get(case.name)
                try:
                    doc = generate_document(case, r, committed_probe_points(old) if old else None,
                                            on_step)
                    path = fixtures.write(doc, fixtures.fixture_path(case.name, target))
                except ParityError as exc:
                    console.print(f"[red]{case.name}: {exc}[/]")
                    return 2
                progress.advance(task)
                if old is None:
                    console.print(f"wrote {path}")
                    continue
                rows += compare_references(CaseReference.from_json(old),
                                           CaseReference.from_json(doc))
    if not args.check:
        return 0
    failed = [row for row in rows if row.status == "fail"]
    meta = {"candidate": f"regenerated on lme4 {v['lme4_version']}", "source": "committed fixtures"}
    if failed:
        console.print("[red]fixtures drifted beyond the tolerances:[/]")
        report.print_report(console, failed, meta)
        return 1
    s = report.summary(rows)
    console.print(f"[green]no drift: {s['pass']} quantities within tolerance "
                  f"({len(cases)} fixtures, lme4 {v['lme4_version']})[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

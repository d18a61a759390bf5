"""The command line: ``python -m parity run`` (also installed as ``parity``).

``run`` fits the corpus through a reference source and a candidate and prints the
case × nAGQ × quantity table; it exits 1 when any comparison fails, and 2 when the run
cannot start (unknown case, unavailable candidate or source, a bad option) or a fixture is
malformed (its case is a failing row, and the error, naming the file and the field, is
printed after the table).  Each live-R call runs under ``--r-timeout`` seconds; a call that
passes it gives failing rows.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__, report
from .atomic import write_text_atomic
from .candidates import CANDIDATES, Candidate, engine_available, make_candidate
from .cases import select_cases
from .compare import TIERS
from .deadline import DEFAULT_R_TIMEOUT, check_timeout
from .errors import ParityError
from .runner import run
from .sources import SOURCES, FixtureSource, ReferenceSource, make_source


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="parity", description="glmm vs lme4 parity harness")
    p.add_argument("--version", action="version", version=f"parity {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="compare a candidate with lme4 over the corpus")
    r.add_argument("--source", choices=SOURCES, default="auto",
                   help="where lme4's reference comes from (auto: live R if it loads, "
                        "else the fixtures)")
    r.add_argument("--candidate", choices=("auto", *CANDIDATES), default="auto",
                   help="what is compared with the reference (auto: glmm when the engine "
                        "exists, else live R against fixtures, else the fixture self-check)")
    r.add_argument("--case", action="append", metavar="NAME", help="only this case (repeatable)")
    r.add_argument("--nagq", action="append", type=int, metavar="K",
                   help="only this nAGQ (repeatable)")
    r.add_argument("--tier", action="append", choices=TIERS, help="only this tier (repeatable)")
    r.add_argument("--fixtures-dir", type=Path, default=None, help="fixture folder")
    r.add_argument("--json", type=Path, metavar="PATH", help="also write a JSON report")
    r.add_argument("--markdown", type=Path, metavar="PATH", help="also write a Markdown report")
    r.add_argument("--failures-only", action="store_true", help="print failing rows only")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--r-timeout", type=_seconds, default=DEFAULT_R_TIMEOUT, metavar="SECONDS",
                   help="time limit of each live-R call (building a case's data, one fit, one "
                        "set of probes); a call that passes it is stopped and its case's rows "
                        f"fail; 0 for no limit (default: {DEFAULT_R_TIMEOUT:g})")
    sub.add_parser("list", help="list the corpus cases")
    return p


def _seconds(text: str) -> float:
    try:
        return check_timeout(float(text)) or 0.0
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds >= 0 (0: no limit)") from None


def choose_candidate(name: str, source: ReferenceSource,
                     r_timeout: float | None = DEFAULT_R_TIMEOUT) -> Candidate:
    """The candidate by name; ``auto`` picks glmm when the engine exists, else live R against
    fixtures when R loads, else the fixture self-check.  ``r_timeout`` limits each R call of
    the live-R candidate (seconds, None for none)."""
    if name != "auto":
        return make_candidate(name, r_timeout)
    if engine_available()[0]:
        return make_candidate("glmm")
    if isinstance(source, FixtureSource):
        from .r_bridge import r_available

        if r_available()[0]:
            return make_candidate("r", r_timeout)
    return make_candidate("fixture")


def cmd_list(console: Console) -> int:
    for c in select_cases():
        w = f", weights={c.weights}" if c.weights else ""
        console.print(f"[bold]{c.name}[/]  {c.formula}  {c.family}({c.link}){w}  "
                      f"nAGQ={list(c.nAGQ)}", highlight=False)
    return 0


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    timeout = args.r_timeout or None
    try:
        cases = select_cases(args.case)
        source = make_source(args.source, args.fixtures_dir, timeout)
        candidate = choose_candidate(args.candidate, source, timeout)
    except ParityError as exc:
        console.print(f"[red]parity: {exc}[/]")
        return 2
    meta = {"source": source.description, "candidate": candidate.description,
            "parity": __version__}
    console.print(f"reference: {source.description}\ncandidate: {candidate.description}",
                  highlight=False)
    wanted = set(args.nagq) if args.nagq else None
    total = sum(1 for c in cases for k in c.nAGQ if wanted is None or k in wanted)
    tiers = tuple(args.tier) if args.tier else TIERS
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=args.no_progress) as progress:
        task = progress.add_task("parity", total=total)

        def on_step(label: str, done: bool) -> None:
            progress.update(task, description=label, advance=1 if done else 0)

        result = run(cases, source, candidate, tiers, args.nagq, on_step)
    report.print_report(console, result.rows, meta, args.failures_only)
    if args.json:
        write_text_atomic(args.json, report.to_json(result.rows, meta))
    if args.markdown:
        write_text_atomic(args.markdown, report.to_markdown(result.rows, meta))
    for exc in result.fixture_errors:
        console.print(f"[red]parity: malformed fixture: {exc}[/]", highlight=False)
    if result.fixture_errors:
        return 2
    return 1 if result.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    if args.command == "list":
        return cmd_list(console)
    return cmd_run(args, console)




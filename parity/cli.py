"""The command line: ``python -m parity`` (also installed as ``parity``).

- ``run`` compares a candidate with lme4's reference, case by case and variant by variant,
  and prints one line per case × variant (``--detail``: every quantity);
- ``generate`` writes fixtures from live R, or with ``--check`` regenerates them into a
  temporary folder and compares (the drift check);
- ``list`` shows the cases.

The cases come from ``--cases FILE`` (a TOML case file), or from the fixtures in
``--fixtures-dir DIR`` (a folder of fixtures is a corpus by itself), or the corpus.  Results
go to stdout, errors and progress to stderr.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .choices import CANDIDATES, DEFAULT_SOURCE, SOURCES
from .deadline import DEFAULT_R_TIMEOUT, check_timeout
from .errors import FixtureError, ParityError

EXIT_CODES = """\
exit codes:
  0  every comparison passed (generate: written; --check: no drift)
  1  a comparison failed (generate --check: a fixture drifted)
  2  the run could not start or compared nothing: a bad option, a --case or --variant that
     selects nothing, an unreadable case file, a malformed fixture, a missing R or engine
"""



def _parser() -> argparse.ArgumentParser:
    from .compare import TIERS

    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="parity", description="glmm vs lme4 parity harness",
                                epilog=EXIT_CODES, formatter_class=fmt)
    p.add_argument("--version", action="version", version=f"parity {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def cases_options(q: argparse.ArgumentParser, dir_help: str) -> None:
        q.add_argument("--cases", type=Path, metavar="FILE",
                       help="a TOML case file: your own models (default: the corpus)")
        q.add_argument("--fixtures-dir", type=Path, metavar="DIR", help=dir_help)
        q.add_argument("--case", action="append", metavar="NAME",
                       help="only cases of this name or shell pattern (repeatable); one that "
                            "matches nothing exits 2")

    def r_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("-j", "--jobs", type=_jobs, default=1, metavar="N",
                       help="spread the cases over N worker processes, each with its own R "
                            "session (default: 1)")
        q.add_argument("--no-progress", action="store_true", help="no progress bar")
        q.add_argument("--r-timeout", type=_seconds, default=DEFAULT_R_TIMEOUT,
                       metavar="SECONDS",
                       help="time limit of each live-R call (building a case's data, one fit, "
                            "one set of probes); a call that passes it is stopped and its "
                            f"case fails; 0 for no limit (default: {DEFAULT_R_TIMEOUT:g})")

    r = sub.add_parser("run", help="compare a candidate with lme4's reference",
                       epilog=EXIT_CODES, formatter_class=fmt)
    cases_options(r, "read the fixtures from DIR only; without --cases, its fixtures are the "
                     "cases (default: $PARITY_FIXTURES, ./fixtures, then the corpus shipped "
                     "in the package)")
    r.add_argument("--source", choices=SOURCES, default=DEFAULT_SOURCE,
                   help="where lme4's reference comes from: the fixtures, live R, or auto "
                        f"(live R if it loads, else the fixtures) (default: {DEFAULT_SOURCE})")
    r.add_argument("--candidate", choices=("auto", *CANDIDATES), default="auto",
                   help="what is compared with the reference (auto: glmm when the engine "
                        "exists, else live R against fixtures, else the fixture self-check)")
    r.add_argument("--variant", action="append", metavar="LABEL",
                   help="only this variant: nAGQ1, REML, ML, ... (repeatable)")
    r.add_argument("--nagq", action="append", type=int, metavar="K",
                   help="only nAGQ K; the same as --variant nAGQK (repeatable)")
    r.add_argument("--tier", action="append", choices=TIERS, help="only this tier (repeatable)")
    r.add_argument("--detail", action="store_true",
                   help="every quantity's row (default: one line per case × variant, with "
                        "the failing quantities expanded)")
    r.add_argument("-q", "--quiet", action="store_true", help="print the last line only")
    r.add_argument("--json", metavar="PATH", help="also write a JSON report ('-': stdout)")
    r.add_argument("--markdown", metavar="PATH",
                   help="also write a Markdown report ('-': stdout)")
    r_options(r)

    g = sub.add_parser("generate", help="write fixtures from live R (--check: the drift check)",
                       epilog=EXIT_CODES, formatter_class=fmt)
    g.add_argument("--cases", type=Path, metavar="FILE",
                   help="a TOML case file: your own models (default: the corpus)")
    g.add_argument("--case", action="append", metavar="NAME",
                   help="only cases of this name or shell pattern (repeatable)")
    g.add_argument("--out", type=Path, metavar="DIR",
                   help="fixture folder (default: $PARITY_FIXTURES, else the package's corpus "
                        "for the corpus and ./fixtures for a case file)")
    g.add_argument("--check", action="store_true",
                   help="regenerate into a temporary folder and compare with the fixtures in "
                        "place: the guard against an R, lme4 or Matrix upgrade")
    r_options(g)

    lst = sub.add_parser("list", help="list the cases")
    cases_options(lst, "list the cases of the fixtures in DIR")
    return p


def _seconds(text: str) -> float:
    try:
        return check_timeout(float(text)) or 0.0
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds >= 0 (0: no limit)") from None


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of jobs >= 1")
    return n


def choose_candidate(name: str, source: Any, r_timeout: float | None = DEFAULT_R_TIMEOUT) -> Any:
    """The candidate by name; ``auto`` picks glmm when the engine exists, else live R against
    fixtures when R loads, else the fixture self-check.  ``r_timeout`` limits each R call of
    the live-R candidate (seconds, None for none)."""
    from .candidates import engine_available, make_candidate
    from .sources import FixtureSource

    if name != "auto":
        return make_candidate(name, r_timeout)
    if engine_available()[0]:
        return make_candidate("glmm")
    if isinstance(source, FixtureSource):
        from .r_bridge import r_available

        if r_available()[0]:
            return make_candidate("r", r_timeout)
    return make_candidate("fixture")


def select(cases_file: Path | None, fixtures_dir: Path | None, patterns: Sequence[str] | None
           ) -> tuple[list[Any], list[FixtureError]]:
    """The cases to use, and the fixtures of ``fixtures_dir`` that could not be read (when
    they are the cases): from the case file, else the folder's fixtures, else the corpus."""
    from . import fixtures
    from .cases import CORPUS, select_cases

    if cases_file is not None:
        from .casefile import load_cases

        return select_cases(patterns, load_cases(cases_file), str(cases_file)), []
    if fixtures_dir is not None:
        if not fixtures_dir.is_dir():
            raise ParityError(f"--fixtures-dir {fixtures_dir}: no such folder")
        cases, errors = fixtures.cases_in(fixtures_dir)
        where = f"the fixtures in {fixtures_dir}"
        known = cases + [_Named(Path(e.path).stem) for e in errors]
        chosen = {c.name for c in select_cases(patterns, known, where)}  # type: ignore[arg-type]
        return ([c for c in cases if c.name in chosen],
                [e for e in errors if Path(e.path).stem in chosen])
    return select_cases(patterns, CORPUS), []


class _Named:
    """A case that could not be read, known by its file's name (for --case matching)."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Consoles:
    """stdout for results, stderr for errors and progress."""

    def __init__(self) -> None:
        from rich.console import Console

        width = None if sys.stdout.isatty() else 120
        self.out = Console(width=width, soft_wrap=False)
        self.err = Console(stderr=True, soft_wrap=True)

    def error(self, text: str) -> None:
        self.err.print(f"[red]parity: {text}[/]", highlight=False, markup=True)

    def progress(self, disable: bool) -> Any:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=self.err, transient=True,
                        disable=disable or not self.err.is_terminal)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def cmd_list(args: argparse.Namespace, io: _Consoles) -> int:
    try:
        cases, errors = select(args.cases, args.fixtures_dir, args.case)
    except ParityError as exc:
        io.error(_escape(str(exc)))
        return 2
    for c in cases:
        w = f", weights={c.weights}" if c.weights else ""
        o = f", offset={c.offset}" if c.offset else ""
        io.out.print(f"[bold]{_escape(c.name)}[/]  {_escape(c.formula)}  {c.method} "
                     f"{c.family}({c.link}){w}{o}  "
                     f"{' '.join(v.label for v in c.variants)}", highlight=False)
    for exc in errors:
        io.error(f"malformed fixture: {_escape(str(exc))}")
    return 2 if errors else 0


def _variant_filter(args: argparse.Namespace) -> list[str] | None:
    labels = list(args.variant or []) + [f"nAGQ{k}" for k in args.nagq or []]
    return labels or None


def cmd_run(args: argparse.Namespace, io: _Consoles) -> int:
    from . import report
    from .atomic import write_text_atomic
    from .compare import TIERS, Row
    from .runner import run, selected_variants
    from .sources import make_source

    if args.json == "-" and args.markdown == "-":
        io.error("--json - and --markdown - cannot both write to stdout")
        return 2
    timeout = args.r_timeout or None
    variants = _variant_filter(args)
    try:
        cases, bad_fixtures = select(args.cases, args.fixtures_dir, args.case)
        units = sum(len(selected_variants(c, variants)) for c in cases)
        if units == 0 and not bad_fixtures:
            chosen = f" with variants {', '.join(variants)}" if variants else ""
            raise ParityError(f"the selection is empty: no case{chosen} "
                              f"({len(cases)} cases selected before the variant filter)")
        source = make_source(args.source, args.fixtures_dir, timeout)
        candidate = choose_candidate(args.candidate, source, timeout)
    except ParityError as exc:
        io.error(_escape(str(exc)))
        return 2
    meta = {"source": source.description, "candidate": candidate.description,
            "parity": __version__}
    human = io.err if "-" in (args.json, args.markdown) else io.out
    tiers = tuple(args.tier) if args.tier else TIERS
    with io.progress(args.no_progress) as progress:
        total = len(cases) if args.jobs > 1 else units
        task = progress.add_task("parity", total=total)

        def on_step(label: str, done: bool) -> None:
            progress.update(task, description=label, advance=1 if done else 0)

        result = run(cases, source, candidate, tiers, variants, on_step, args.jobs)
    rows = [Row(Path(e.path).stem, "", "reference", "reference", "fail", note=str(e))
            for e in bad_fixtures] + result.rows
    fixture_errors = bad_fixtures + result.fixture_errors
    report.print_report(human, rows, meta, args.detail, args.quiet)
    for target, text in ((args.json, report.to_json), (args.markdown, report.to_markdown)):
        if target == "-":
            sys.stdout.write(text(rows, meta))
        elif target:
            write_text_atomic(target, text(rows, meta))
    for exc in fixture_errors:
        io.error(f"malformed fixture: {_escape(str(exc))}")
    if fixture_errors:
        return 2
    if not any(r.status != "skip" for r in rows):
        io.error("nothing was compared: every quantity was skipped (see the notes)")
        return 2
    return 1 if any(r.status == "fail" for r in rows) else 0


def cmd_generate(args: argparse.Namespace, io: _Consoles) -> int:
    from . import fixtures, report
    from .drift import compare_references
    from .generate import committed_probe_points, generate_all, steps
    from .r_bridge import session
    from .results import CaseReference

    timeout = args.r_timeout or None
    out_dir = args.out or fixtures.output_dir(corpus=args.cases is None)
    try:
        cases, _ = select(args.cases, None, args.case)
        r = session()
        committed = {c.name: fixtures.load_document(fixtures.fixture_path(c.name, args.out))
                     for c in cases} if args.check else {}
    except ParityError as exc:
        io.error(_escape(str(exc)))
        return 2
    v = r.versions
    io.err.print(f"R {v['r_version']}, lme4 {v['lme4_version']}, Matrix {v['matrix_version']}",
                 highlight=False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="parity-fixtures-") as tmp, \
            io.progress(args.no_progress) as progress:
        target = Path(tmp) if args.check else out_dir
        task = progress.add_task("fixtures", total=sum(steps(c) for c in cases))

        def on_step(msg: str) -> None:
            progress.update(task, description=msg, advance=1)

        points = {name: committed_probe_points(doc) for name, doc in committed.items()}
        for case, doc in generate_all(cases, points, args.jobs, timeout, on_step):
            if isinstance(doc, ParityError):
                io.error(f"{_escape(case.name)}: {_escape(str(doc))}")
                return 2
            try:
                path = fixtures.write(doc, fixtures.fixture_path(case.name, target))
            except ParityError as exc:
                io.error(f"{_escape(case.name)}: {_escape(str(exc))}")
                return 2
            old = committed.get(case.name)
            if old is None:
                io.out.print(f"wrote {path}", highlight=False, markup=False)
                continue
            rows += compare_references(CaseReference.from_json(old),
                                       CaseReference.from_json(doc))
    if not args.check:
        return 0
    failed = [row for row in rows if row.status == "fail"]
    meta = {"candidate": f"regenerated on lme4 {v['lme4_version']}", "source": "the fixtures"}
    if failed:
        io.out.print("[red]fixtures drifted beyond the tolerances:[/]")
        report.print_report(io.out, failed, meta, detail=True)
        return 1
    s = report.summary(rows)
    io.out.print(f"[green]no drift: {s['pass']} quantities within tolerance "
                 f"({len(cases)} fixtures, lme4 {v['lme4_version']})[/]", highlight=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        import jsonschema  # noqa: F401
        import rich  # noqa: F401
    except ImportError as exc:
        print(f"parity: the harness needs {exc.name}, which comes with its extra: "
              "pip install 'glmm-lme4[parity]'", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    io = _Consoles()
    if args.command == "list":
        return cmd_list(args, io)
    if args.command == "generate":
        return cmd_generate(args, io)
    return cmd_run(args, io)

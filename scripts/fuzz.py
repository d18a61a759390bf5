"""The long fuzzing campaign of tests/test_fuzz.py, with the counts by outcome.

    .venv/bin/python scripts/fuzz.py                 # 10,000 parses and 10,000 glmer() calls
    .venv/bin/python scripts/fuzz.py --examples 900  # fewer

Runs the fuzz tests under pytest with GLMM_FUZZ_EXAMPLES set, then prints, for the parser and
for glmer(), how many examples ended in each outcome ("ok", or the error's type) and the
warnings glmer() issued.  Exits with pytest's status: nonzero if an example broke the rules
(hypothesis then prints the shrunk example).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000,
                        help="examples of each fuzz test (default 10000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "fuzz.json"
        env = {**os.environ, "GLMM_FUZZ_EXAMPLES": str(args.examples),
               "GLMM_FUZZ_REPORT": str(report)}
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              str(ROOT / "tests" / "test_fuzz.py")], cwd=ROOT, env=env)
        counts = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    for what, outcomes in counts.items():
        total = sum(outcomes.values())
        print(f"\n{what}: {total}")
        for outcome, k in outcomes.items():
            print(f"  {k:7d}  {outcome}")
    return rc


if __name__ == "__main__":
    sys.exit(main())

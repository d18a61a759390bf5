#!/usr/bin/env python3
"""Whole-process time of one small fit: a fresh interpreter that reads cbpp with pandas,
imports the engine and fits cbpp at nAGQ = 1, for glmm and for each peer, the engines taken
in turn; the median wall time over the runs.

    scripts/process_bench.py --runs 15 --peer glmm062=/path/to/venv/bin/python

glmm is the one this script's interpreter imports (this checkout's, when installed editable);
each peer runs from its own environment (scripts/bench.py's PEERS); every engine with
``python -I``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parity import fixtures  # noqa: E402

SCRIPTS = {
    "glmm": """
import pandas as pd
df = pd.read_csv(PATH, dtype={"herd": "category", "period": "category"})
import glmm
fit = glmm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", df,
                 family="binomial")
print(-2 * fit.loglik)
""",
    "glmm062": """
import pandas as pd
df = pd.read_csv(PATH, dtype={"herd": str, "period": str})
import glmm
data = {c: df[c].to_numpy() for c in df.columns}
data["failures"] = data["size"] - data["incidence"]
fit = glmm.fit(data, "cbind(incidence, failures) ~ period + (1 | herd)", "binomial")
print(-2 * fit.loglik)
""",
    "mixedlm": """
import pandas as pd
df = pd.read_csv(PATH, dtype={"herd": str, "period": str})
import mixedlm
from mixedlm import families
w = df["size"].to_numpy(float)
df["prop"] = df["incidence"] / w
fit = mixedlm.glmer("prop ~ period + (1 | herd)", df, family=families.Binomial(), weights=w)
print(-2 * float(fit.logLik()))
""",
}


def _cbpp_csv(path: Path) -> None:
    ds = fixtures.load("cbpp").data
    cols = {}
    for c in ds.columns:
        if c.kind == "factor":
            cols[c.name] = np.asarray(c.levels, dtype=object)[np.asarray(c.values)]
        else:
            cols[c.name] = np.asarray(c.values, dtype=float)
    import pandas as pd

    pd.DataFrame(cols).to_csv(path, index=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15, help="processes per engine")
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=PYTHON",
                    help=f"a peer ({', '.join(n for n in SCRIPTS if n != 'glmm')}) and the "
                         "python of its own venv; repeatable")
    args = ap.parse_args(argv)
    # every engine isolated (-I): no PYTHON* variable (PYTHONDONTWRITEBYTECODE, say) applies
    # to one engine only, and no working directory shadows a peer's glmm
    engines = {"glmm": [sys.executable, "-I"]}
    for text in args.peer:
        name, _, python = text.partition("=")
        if name not in SCRIPTS or name == "glmm" or not python:
            ap.error(f"--peer: expected NAME=PYTHON, NAME one of glmm062, mixedlm; got {text!r}")
        engines[name] = [python, "-I"]
    times: dict[str, list[float]] = {e: [] for e in engines}
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "cbpp.csv"
        _cbpp_csv(csv)
        for _ in range(args.runs):
            for name, cmd in engines.items():
                code = SCRIPTS[name].replace("PATH", repr(str(csv)))
                t0 = time.perf_counter()
                proc = subprocess.run([*cmd, "-c", code], capture_output=True, text=True,
                                      cwd=tmp, check=False)
                times[name].append(time.perf_counter() - t0)
                if proc.returncode:
                    lines = (proc.stderr or proc.stdout).strip().splitlines()
                    print(f"{name}: {lines[-1] if lines else f'exit code {proc.returncode}'}",
                          file=sys.stderr)
                    return 1
                out[name] = proc.stdout.strip()
    for name, t in times.items():
        print(f"{name:8s} median {statistics.median(t):.3f} s  (min {min(t):.3f}, max "
              f"{max(t):.3f}; {args.runs} processes)  −2logLik {out[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

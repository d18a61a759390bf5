#!/usr/bin/env python3
"""Whole-process time of one small fit: a fresh interpreter that reads cbpp with pandas,
imports the engine and fits cbpp at nAGQ = 1, for glmm and for each peer, the engines taken
in turn; the median wall time over the runs.

    scripts/process_bench.py --runs 15 --peer glmm062=/path/to/venv/bin/python
    scripts/process_bench.py --runs 15 --wheel --peer glmm062=/path/to/venv/bin/python

Which glmm is timed (each engine's line says where its glmm was imported from):

- by default, this checkout's, run by this script's interpreter with the checkout first on
  sys.path.  In the project's venv glmm-lme4 is installed editable: site runs setuptools'
  editable finder (its .pth), whose imports (pathlib and what it needs, ~9 ms under
  ``-X importtime``, most of which pandas imports later anyway) a peer's venv does not run;
- ``--glmm PYTHON``: the glmm that PYTHON imports, from its own environment (a venv where
  glmm-lme4 is installed as a wheel, say);
- ``--wheel``: a wheel of this checkout (``pip wheel``, the compiled core built) installed,
  non-editable, into a temporary venv beside this interpreter's numpy, scipy, pandas and
  threadpoolctl versions: the same footing as a peer's venv.  ``--wheel`` times both this
  installed glmm (``glmm-wheel``) and the default one (``glmm``).

Each peer runs from its own environment (scripts/bench.py's PEERS).  Every engine runs with
``python -I`` (no ``PYTHON*`` variable applies to one engine only, and no working directory
shadows a peer's glmm), once untimed first (bytecode written, files in the page cache), then
the engines in turn, ``--runs`` times; the median wall time of each.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
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
print(glmm.__file__)
""",
    "glmm062": """
import pandas as pd
df = pd.read_csv(PATH, dtype={"herd": str, "period": str})
import glmm
data = {c: df[c].to_numpy() for c in df.columns}
data["failures"] = data["size"] - data["incidence"]
fit = glmm.fit(data, "cbind(incidence, failures) ~ period + (1 | herd)", "binomial")
print(-2 * fit.loglik)
print(glmm.__file__)
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
print(mixedlm.__file__)
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


#: what a wheel of glmm needs beside it, at this interpreter's versions
DEPENDENCIES = ("numpy", "scipy", "pandas", "threadpoolctl")


def _setup(cmd: list[str]) -> None:
    """Runs one setup step quietly; on failure, prints its output and exits."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)}: exit code {proc.returncode}\n{proc.stdout}{proc.stderr}")


def _installed_glmm(tmp: Path) -> str:
    """The python of a new venv in ``tmp`` holding a wheel of this checkout (non-editable,
    the compiled core built by setup.py) and this interpreter's versions of DEPENDENCIES.
    The wheel is built from a copy of the working tree without its build products, so that
    no stale build/ (nor a compiled core built elsewhere) goes into it."""
    src, wheels, venv = tmp / "src", tmp / "wheels", tmp / "venv"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.so"))
    _setup([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
            str(src)])
    (wheel,) = wheels.glob("glmm_lme4-*.whl")
    _setup([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    pins = [f"{d}=={importlib.metadata.version(d)}" for d in DEPENDENCIES]
    _setup([str(python), "-m", "pip", "install", "-q", *pins, str(wheel)])
    return str(python)


def _run(cmd: list[str], code: str, cwd: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, "-c", code], capture_output=True, text=True, cwd=cwd,
                          check=False)
    return time.perf_counter() - t0, proc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15, help="processes per engine")
    ap.add_argument("--peer", action="append", default=[], metavar="NAME=PYTHON",
                    help=f"a peer ({', '.join(n for n in SCRIPTS if n != 'glmm')}) and the "
                         "python of its own venv; repeatable")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--glmm", metavar="PYTHON",
                     help="time the glmm that PYTHON imports (its own environment's) instead "
                          "of this checkout's")
    how.add_argument("--wheel", action="store_true",
                     help="also time a wheel of this checkout installed into a temporary venv "
                          "(glmm-wheel)")
    args = ap.parse_args(argv)
    peers = {}
    for text in args.peer:
        name, _, python = text.partition("=")
        if name not in SCRIPTS or name == "glmm" or not python:
            ap.error(f"--peer: expected NAME=PYTHON, NAME one of glmm062, mixedlm; got {text!r}")
        peers[name] = python
    # every engine isolated (-I): no PYTHON* variable (PYTHONDONTWRITEBYTECODE, say) applies
    # to one engine only, and no working directory shadows a peer's glmm; -I also drops
    # PYTHONPATH, so the timed code itself puts this checkout first on sys.path
    checkout = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
    with tempfile.TemporaryDirectory() as tmp:
        # name: (command, script, what runs before the script)
        engines: dict[str, tuple[list[str], str, str]] = {}
        if args.glmm:
            engines["glmm"] = ([args.glmm, "-I"], "glmm", "")
        else:
            engines["glmm"] = ([sys.executable, "-I"], "glmm", checkout)
        if args.wheel:
            engines["glmm-wheel"] = ([_installed_glmm(Path(tmp)), "-I"], "glmm", "")
        for name, python in peers.items():
            engines[name] = ([python, "-I"], name, "")
        csv = Path(tmp) / "cbpp.csv"
        _cbpp_csv(csv)
        times: dict[str, list[float]] = {e: [] for e in engines}
        out: dict[str, list[str]] = {}
        for run in range(args.runs + 1):   # the first round untimed
            for name, (cmd, script, prelude) in engines.items():
                code = prelude + SCRIPTS[script].replace("PATH", repr(str(csv)))
                elapsed, proc = _run(cmd, code, tmp)
                if proc.returncode:
                    lines = (proc.stderr or proc.stdout).strip().splitlines()
                    print(f"{name}: {lines[-1] if lines else f'exit code {proc.returncode}'}",
                          file=sys.stderr)
                    return 1
                if run:
                    times[name].append(elapsed)
                out[name] = proc.stdout.strip().splitlines()   # −2logLik, the module's file
    width = max(map(len, engines))
    for name, t in times.items():
        print(f"{name:{width}s} median {statistics.median(t):.3f} s  (min {min(t):.3f}, max "
              f"{max(t):.3f}; {args.runs} processes)  −2logLik {out[name][0]}")
    for name in engines:
        print(f"{name:{width}s} from {Path(out[name][-1]).parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

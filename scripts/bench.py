#!/usr/bin/env python3
"""Benchmark glmm against lme4 and the Python peers that fit the same models, on the same
data, on this machine, in one run.

    scripts/bench.py                          # every model, glmm and lme4
    scripts/bench.py cbpp-1 verbagg-1         # some models
    scripts/bench.py --peer glmm062=/opt/glmm062/bin/python --peer mixedlm=/opt/mixedlm/bin/python
    scripts/bench.py --json bench.json
    scripts/bench.py --rounds 3               # engines in turn, three times, timings pooled

Each engine fits each model in a fresh worker process (so that peak memory is its own),
`--repeat` times after its warm-up fits (`--warmup`, default 10, or fewer where they take
over 1 s in all, WARMUP_SECONDS; none when a single fit is timed), so that the
medians are a warm engine's: CPython specialises a function's bytecode only after several
calls, and a small fit's first dozen fits in a new process run up to 2× slower (the cold
cost is what scripts/process_bench.py measures).  The table shows
median wall times, lme4's and the best peer's time over glmm's, the criterion (−2logLik, or
the REML criterion) of every engine, objective evaluations, the time (s) of the fit's vcov at
nAGQ ≥ 1 (glmm: the Hessian on first use, then V; lme4: the finite-difference Hessian that
glmer computes inside each fit, then V) and peak resident memory.
The data of every model are written once to a temporary .npz file that all workers read:
same rows, same factor levels.

A peer (`--peer NAME=PYTHON`, repeatable) is a Python environment of its own holding one of
the packages in PEERS: `glmm062`, PyPI `glmm` 0.6.2 (Rust core; its import name clashes with
ours), or `mixedlm` 1.3.0.  Its worker runs with `python -I`, so that nothing of this checkout can
shadow it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parity.bench_models import BY_NAME, MODELS, BenchModel, load_frame, write_data  # noqa: E402


# -- workers (run in their own process) --------------------------------------------------
def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM, which a new program starts afresh (Linux
    keeps ru_maxrss across execve, so a worker started by a parent holding a 1e6-row data
    set would report the parent's peak); ru_maxrss where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: The warm-up of each worker stops after this many seconds of fits (and at least one fit).
WARMUP_SECONDS = 1.0


def warmup_fits(fit_once, warmup: int) -> None:
    """Up to ``warmup`` untimed fits, fewer where they take WARMUP_SECONDS in all; one at
    least when ``warmup`` > 0."""
    import time

    t0 = time.perf_counter()
    for _ in range(warmup):
        fit_once()
        if time.perf_counter() - t0 > WARMUP_SECONDS:
            break


def worker_glmm(model: BenchModel, path: str, repeat: int, warmup: int) -> dict:
    import time
    import warnings

    import glmm

    df = load_frame(path)
    fam = glmm.make_family(model.family, model.link)
    if model.method == "lmer":   # warnings (a singular fit) would only clutter the table
        warnings.simplefilter("ignore", glmm.GlmmWarning)
    def fit_once() -> object:
        if model.method == "lmer":
            return glmm.lmer(model.formula, df, REML=model.REML)
        return glmm.glmer(model.formula, df, family=fam, nAGQ=model.nAGQ)

    warmup_fits(fit_once, warmup)
    times = []
    fit = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        fit = fit_once()
        times.append(time.perf_counter() - t0)
    assert fit is not None
    vcov = None
    if model.method == "glmer" and model.nAGQ >= 1:   # the Hessian, on first use, and V
        warnings.simplefilter("ignore", glmm.GlmmWarning)
        t0 = time.perf_counter()
        fit.vcov()
        vcov = time.perf_counter() - t0
    return {"times": times, "m2loglik": fit.objective, "feval": fit.feval,
            "vcov": vcov, "peak_mb": _peak_mb()}


def worker_lme4(model: BenchModel, path: str, repeat: int, warmup: int) -> dict:
    from parity.dataset import Column, Dataset
    from parity.r_bridge import session

    s = session()
    z = np.load(path)
    cols = []
    for name in z.files:
        if name.endswith("__levels"):
            continue
        if name + "__levels" in z.files:
            cols.append(Column(name, "factor", tuple(int(v) for v in z[name]),
                               tuple(str(v) for v in z[name + "__levels"])))
        else:
            cols.append(Column(name, "double",
                               tuple(None if np.isnan(v) else float(v) for v in z[name])))
    rdf = s.dataframe(Dataset(tuple(cols)))
    s.ro.r(BENCH_R)
    spec = s.spec({"formula": model.formula, "family": model.family, "link": model.link})
    if model.method == "lmer":
        out = s.call("parity_bench_lmer", rdf, model.formula, model.REML, repeat, warmup,
                     WARMUP_SECONDS)
    else:
        out = s.call("parity_bench", rdf, spec, model.nAGQ, repeat, warmup, WARMUP_SECONDS)
    return {"times": out["times"], "m2loglik": out["m2loglik"], "feval": out["feval"],
            "vcov": out.get("vcov"), "peak_mb": _peak_mb()}


BENCH_R = r"""
## up to warmup_n untimed calls of fit_once, fewer where they take seconds in all (bench.py's
## warmup_fits)
parity_warmup <- function(fit_once, warmup_n, seconds) {
  t0 <- proc.time()[["elapsed"]]
  for (i in seq_len(warmup_n)) {
    fit_once()
    if (proc.time()[["elapsed"]] - t0 > seconds) break
  }
}

parity_bench <- function(data, spec, nAGQ, repeat_n, warmup_n, seconds) {
  parity_in_c_locale({
    fam <- parity_family(spec$family, spec$link)
    cl <- parity_call("glmer", spec, nAGQ, glmerControl())
    fit_once <- function() suppressWarnings(suppressMessages(eval(cl)))
    parity_warmup(fit_once, warmup_n, seconds)
    times <- numeric(0)
    for (i in seq_len(repeat_n)) {
      t0 <- proc.time()[["elapsed"]]
      fit <- fit_once()
      times <- c(times, proc.time()[["elapsed"]] - t0)
    }
    ## what vcov(fit) costs lme4 at nAGQ >= 1: the finite-difference Hessian that glmer
    ## computes inside every fit (calc.derivs = TRUE: lme4:::deriv12 on its devfun), then V
    vcov_s <- NULL
    if (nAGQ >= 1) {
      dd <- suppressWarnings(suppressMessages(update(fit, devFunOnly = TRUE)))
      t0 <- proc.time()[["elapsed"]]
      h <- lme4:::deriv12(dd, c(getME(fit, "theta"), fixef(fit)))
      v <- suppressWarnings(vcov(fit))
      vcov_s <- .S(proc.time()[["elapsed"]] - t0)
    }
    list(times = times, m2loglik = .S(unname(fit@devcomp$cmp[["dev"]])),
         feval = .S(as.integer(fit@optinfo$feval)), vcov = vcov_s)
  })
}
"""

BENCH_R += r"""
parity_bench_lmer <- function(data, formula, REML, repeat_n, warmup_n, seconds) {
  parity_in_c_locale({
    f <- stats::as.formula(formula)
    fit_once <- function() suppressWarnings(suppressMessages(lme4::lmer(f, data, REML = REML)))
    parity_warmup(fit_once, warmup_n, seconds)
    times <- numeric(0)
    for (i in seq_len(repeat_n)) {
      t0 <- proc.time()[["elapsed"]]
      fit <- fit_once()
      times <- c(times, proc.time()[["elapsed"]] - t0)
    }
    crit <- if (REML) fit@devcomp$cmp[["REML"]] else fit@devcomp$cmp[["dev"]]
    list(times = times, m2loglik = .S(unname(crit)), feval = .S(as.integer(fit@optinfo$feval)))
  })
}
"""

#: The peers' workers, by the name given to --peer: argv is the .npz path, the model (JSON:
#: BenchModel's fields), the number of timed fits, the warm-up fits and WARMUP_SECONDS; each
#: prints one JSON line (times, m2loglik = −2logLik or the REML criterion, feval, peak_mb) or
#: {"unsupported": why}.
PEER_COMMON = r"""
import json, re, resource, sys, time
import numpy as np
path, spec, repeat = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
warmup, seconds = int(sys.argv[4]), float(sys.argv[5])
z = np.load(path)
data = {}
for name in z.files:
    if name.endswith("__levels"):
        continue
    data[name] = (z[name + "__levels"][z[name]] if name + "__levels" in z.files else z[name])
formula = spec["peer_formula"] or spec["formula"]

def timed(fit_once):
    t0 = time.perf_counter()   # the warm-up: bench.py's warmup_fits
    for _ in range(warmup):
        fit_once()
        if time.perf_counter() - t0 > seconds:
            break
    times, fit = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        fit = fit_once()
        times.append(time.perf_counter() - t0)
    return times, fit

def report(times, m2loglik, feval=None):
    try:   # VmHWM: ru_maxrss survives execve (bench.py's _peak_mb)
        with open("/proc/self/status") as f:
            peak = next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    except (OSError, StopIteration, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"times": times, "m2loglik": m2loglik, "feval": feval, "peak_mb": peak}))
"""

PEERS = {
    # PyPI glmm 0.6.2 (named for its version: its import name is ours): glmm.fit(data: dict
    # of arrays, formula, family, link=, nagq=, reml=); Satterthwaite's df off (lme4 computes
    # none)
    "glmm062": PEER_COMMON + r"""
import glmm
if spec["method"] == "glmer" and spec["nAGQ"] == 0:
    print(json.dumps({"unsupported": "no nAGQ = 0"}))
    sys.exit(0)
if spec["method"] == "lmer":
    times, fit = timed(lambda: glmm.fit(data, formula, "gaussian", reml=spec["REML"],
                                        satterthwaite=False))
else:
    times, fit = timed(lambda: glmm.fit(data, formula, spec["family"], link=spec["link"],
                                        nagq=spec["nAGQ"]))
report(times, -2 * float(fit.loglik), getattr(fit, "n_eval", None))
""",
    # mixedlm 1.3.0: lme4's API on a pandas DataFrame; cbind(a, b) as a / (a + b) with
    # weights a + b (its parser has no cbind)
    "mixedlm": PEER_COMMON + r"""
import pandas as pd
import mixedlm
from mixedlm import families
df = pd.DataFrame({k: (v.astype(str) if v.dtype.kind in "US" else v) for k, v in data.items()})
weights = None
m = re.match(r"\s*cbind\((\w+),\s*(\w+)\)\s*~(.*)$", formula)
if m:
    a, b, rhs = m.groups()
    weights = (df[a] + df[b]).to_numpy(float)
    df["_prop"] = df[a] / weights
    formula = "_prop ~" + rhs
if spec["method"] == "lmer":
    times, fit = timed(lambda: mixedlm.lmer(formula, df, REML=spec["REML"]))
    report(times, float(fit.REMLcrit() if spec["REML"] else fit.deviance),
           getattr(fit, "function_evals", None))
else:
    fam = {"binomial": families.Binomial, "poisson": families.Poisson}[spec["family"]]()
    times, fit = timed(lambda: mixedlm.glmer(formula, df, family=fam, nAGQ=spec["nAGQ"],
                                             weights=weights))
    report(times, -2 * float(fit.logLik()))
""",
}


def run_worker(engine: str, model: BenchModel, path: str, repeat: int, warmup: int,
               peers: dict[str, str]) -> dict:
    """One engine's fits of one model in a fresh process: "glmm", "lme4" or a peer's name,
    ``warmup`` untimed fits (at most; see warmup_fits) and ``repeat`` timed ones."""
    # -I for every engine: isolated, so that neither this checkout (the working directory)
    # nor PYTHONPATH can shadow a peer's package (PyPI glmm's import name is ours), and so
    # that no PYTHON* variable (PYTHONDONTWRITEBYTECODE, say) applies to one engine only
    if engine in peers:
        cmd = [peers[engine], "-I", "-c", PEERS[engine], path, json.dumps(asdict(model)),
               str(repeat), str(warmup), str(WARMUP_SECONDS)]
    else:
        cmd = [sys.executable, "-I", __file__, "--worker", engine, model.name, "--data", path,
               "--repeat", str(repeat), "--warmup", str(warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pool(a: dict | None, b: dict) -> dict:
    """Two rounds of one engine on one model: all timings, the larger peak memory."""
    if a is None or "error" in a or "unsupported" in a:
        return b
    if "error" in b or "unsupported" in b:
        return a
    return {**a, "times": a["times"] + b["times"], "peak_mb": max(a["peak_mb"], b["peak_mb"])}


# -- report ------------------------------------------------------------------------------
def _median(r: dict | None) -> float | None:
    return statistics.median(r["times"]) if r and r.get("times") else None


def _fmt_ms(r: dict | None) -> str:
    if not r:
        return ""
    if "error" in r:
        return "error"
    if "unsupported" in r:
        return "n/a"
    return f"{1e3 * statistics.median(r['times']):.2f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "" if a is None or b is None else f"{a / b:.3g}"


def _peer(text: str) -> tuple[str, str]:
    name, sep, python = text.partition("=")
    if not sep or name not in PEERS or not python:
        raise argparse.ArgumentTypeError(
            f"expected NAME=PYTHON with NAME one of {', '.join(PEERS)}, got {text!r}")
    return name, python


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help=f"models (default all): {', '.join(BY_NAME)}")
    ap.add_argument("--engines",
                    help="comma list of glmm, lme4 and the peers' names (default all given)")
    ap.add_argument("--peer", type=_peer, action="append", default=[], metavar="NAME=PYTHON",
                    help=f"a peer ({', '.join(PEERS)}) and the python of its own venv; "
                         "repeatable")
    ap.add_argument("--repeat", type=int, help="timed fits per engine (default per model)")
    ap.add_argument("--warmup", type=int, default=10,
                    help="untimed fits before the timed ones, per worker, at most (fewer "
                         f"where they take over {WARMUP_SECONDS:g} s; none for a model timed "
                         "by a single fit; default 10)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the engines in turn this many times per model and pool the "
                         "timings, so that a slow spell of the machine hits every engine "
                         "alike (models timed by a single fit get one round)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        model = BY_NAME[args.models[0]]
        fn = {"glmm": worker_glmm, "lme4": worker_lme4}[args.worker]
        print(json.dumps(fn(model, args.data, args.repeat, args.warmup)))
        return 0

    from rich.console import Console
    from rich.table import Table

    unknown = [m for m in args.models if m not in BY_NAME]
    if unknown:
        print(f"bench: unknown models {unknown}; choose from {list(BY_NAME)}", file=sys.stderr)
        return 2
    peers = dict(args.peer)
    engines = ([e.strip() for e in args.engines.split(",") if e.strip()] if args.engines
               else ["glmm", "lme4", *peers])
    bad = [e for e in engines if e not in ("glmm", "lme4") and e not in peers]
    if bad:
        print(f"bench: unknown engines {bad} (a peer needs --peer NAME=PYTHON)",
              file=sys.stderr)
        return 2
    models = [BY_NAME[m] for m in args.models] if args.models else list(MODELS)
    console = Console(width=None if sys.stdout.isatty() else 250)
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="glmm-bench-") as tmp:
        for model in models:
            path = str(Path(tmp) / f"{model.name}.npz")
            write_data(model, Path(path))
            results[model.name] = {}
            repeat = args.repeat or model.repeat
            rounds = max(1, args.rounds) if repeat > 1 else 1
            for k in range(rounds):
                for engine in engines:
                    if "unsupported" in results[model.name].get(engine, {}):
                        continue
                    console.print(f"[dim]{model.name}: {engine}, round {k + 1}/{rounds}…[/]")
                    r = run_worker(engine, model, path, repeat,
                                   max(0, args.warmup) if repeat > 1 else 0, peers)
                    results[model.name][engine] = _pool(results[model.name].get(engine), r)
    named = [e for e in engines if e in peers]
    table = Table(title="median wall time per fit (ms); lme4 / glmm and best peer / glmm "
                        "above 1: glmm is faster; this machine, one run")
    cols = ["model", "nAGQ/REML", *(f"{e} ms" for e in engines), "lme4 / glmm"]
    if named:
        cols.append("best peer / glmm")
    cols += [f"criterion {e}" for e in engines]
    cols += ["evals glmm", "evals lme4", "vcov glmm", "vcov lme4"]
    cols += [f"peak MB {e}" for e in engines]
    for col in cols:
        table.add_column(col, justify="left" if col == "model" else "right")
    for model in models:
        r = results[model.name]

        def val(x: dict | None, key: str, fmt: str = "{:.5f}") -> str:
            if not x or "error" in x or x.get(key) is None:
                return ""
            return fmt.format(x[key])

        best = min((t for t in (_median(r.get(e)) for e in named) if t is not None),
                   default=None)
        row = [model.name, model.variant, *(_fmt_ms(r.get(e)) for e in engines),
               _ratio(_median(r.get("lme4")), _median(r.get("glmm")))]
        if named:
            row.append(_ratio(best, _median(r.get("glmm"))))
        row += [val(r.get(e), "m2loglik") for e in engines]
        row += [val(r.get("glmm"), "feval", "{}"), val(r.get("lme4"), "feval", "{}"),
                val(r.get("glmm"), "vcov", "{:.2e}"), val(r.get("lme4"), "vcov", "{:.2e}")]
        row += [val(r.get(e), "peak_mb", "{:.0f}") for e in engines]
        table.add_row(*row)
    console.print(table)
    for model in models:
        for engine, r in results[model.name].items():
            if "error" in r:
                console.print(f"[red]{model.name} {engine}: {r['error']}[/]")
    if args.json:
        from parity.atomic import write_text_atomic

        doc = {"models": [asdict(m) for m in models], "peers": peers, "results": results}
        write_text_atomic(args.json, json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

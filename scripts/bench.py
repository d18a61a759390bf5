#!/usr/bin/env python3
"""Benchmark glmm against lme4 (and, optionally, the PyPI Rust-core `glmm` peer) on the
same data, on this machine, in one run.

    scripts/bench.py                          # every model, glmm and lme4
    scripts/bench.py cbpp-1 verbagg-1         # some models
    scripts/bench.py --peer-python /opt/peer/bin/python   # also the peer, from its own venv
    scripts/bench.py --json bench.json
    scripts/bench.py --rounds 3               # engines in turn, three times, timings pooled

Each engine fits each model in a fresh worker process (so that peak memory is its own),
`--repeat` times after one warm-up fit (none when a single fit is timed); the table shows
median wall times, ratios to glmm, −2logLik, objective evaluations, the time (s) of the fit's
vcov at nAGQ ≥ 1 (glmm: the Hessian on first use, then V; lme4: the finite-difference Hessian
that glmer computes inside each fit, then V) and peak resident memory.
The data of every model are written once to a temporary .npz file that all workers read:
same rows, same factor levels.
The peer must live in a separate environment: its import name `glmm` clashes with ours.
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
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_glmm(model: BenchModel, path: str, repeat: int) -> dict:
    import time
    import warnings

    import glmm

    df = load_frame(path)
    fam = glmm.make_family(model.family, model.link)
    if model.method == "lmer":   # warnings (a singular fit) would only clutter the table
        warnings.simplefilter("ignore", glmm.GlmmWarning)
    times = []
    fit = None
    warmup = 1 if repeat > 1 else 0  # a single timed fit (large models) gets no warm-up
    for i in range(repeat + warmup):
        t0 = time.perf_counter()
        if model.method == "lmer":
            fit = glmm.lmer(model.formula, df, REML=model.REML)
        else:
            fit = glmm.glmer(model.formula, df, family=fam, nAGQ=model.nAGQ)
        if i >= warmup:
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


def worker_lme4(model: BenchModel, path: str, repeat: int) -> dict:
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
        out = s.call("parity_bench_lmer", rdf, model.formula, model.REML, repeat)
    else:
        out = s.call("parity_bench", rdf, spec, model.nAGQ, repeat)
    return {"times": out["times"], "m2loglik": out["m2loglik"], "feval": out["feval"],
            "vcov": out.get("vcov"), "peak_mb": _peak_mb()}


BENCH_R = r"""
parity_bench <- function(data, spec, nAGQ, repeat_n) {
  parity_in_c_locale({
    fam <- parity_family(spec$family, spec$link)
    cl <- parity_call("glmer", spec, nAGQ, glmerControl())
    times <- numeric(0)
    warmup <- if (repeat_n > 1) 1 else 0
    for (i in seq_len(repeat_n + warmup)) {
      t0 <- proc.time()[["elapsed"]]
      fit <- suppressWarnings(suppressMessages(eval(cl)))
      if (i > warmup) times <- c(times, proc.time()[["elapsed"]] - t0)
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
parity_bench_lmer <- function(data, formula, REML, repeat_n) {
  parity_in_c_locale({
    f <- stats::as.formula(formula)
    times <- numeric(0)
    warmup <- if (repeat_n > 1) 1 else 0
    for (i in seq_len(repeat_n + warmup)) {
      t0 <- proc.time()[["elapsed"]]
      fit <- suppressWarnings(suppressMessages(lme4::lmer(f, data, REML = REML)))
      if (i > warmup) times <- c(times, proc.time()[["elapsed"]] - t0)
    }
    crit <- if (REML) fit@devcomp$cmp[["REML"]] else fit@devcomp$cmp[["dev"]]
    list(times = times, m2loglik = .S(unname(crit)), feval = .S(as.integer(fit@optinfo$feval)))
  })
}
"""

PEER_WORKER = r"""
import json, resource, sys, time
import numpy as np
import glmm
path, formula, family, link, nagq, repeat = sys.argv[1:7]
z = np.load(path)
data = {}
for name in z.files:
    if name.endswith("__levels"):
        continue
    data[name] = (z[name + "__levels"][z[name]] if name + "__levels" in z.files else z[name])
times, fit = [], None
warmup = 1 if int(repeat) > 1 else 0
for i in range(int(repeat) + warmup):
    t0 = time.perf_counter()
    fit = glmm.results.glmer(data, formula, family, link=link, nagq=int(nagq))
    if i >= warmup:
        times.append(time.perf_counter() - t0)
ll = getattr(fit, "loglik", None)
print(json.dumps({"times": times, "m2loglik": None if ll is None else -2 * float(ll),
                  "feval": None,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_worker(engine: str, model: BenchModel, path: str, repeat: int,
               peer_python: str | None) -> dict:
    if engine == "peer":
        formula = model.peer_formula or model.formula
        # -I: isolated, so that neither this checkout (the working directory) nor
        # PYTHONPATH can shadow the peer's `glmm` with ours
        cmd = [peer_python or "python3", "-I", "-c", PEER_WORKER, path, formula, model.family,
               model.link, str(model.nAGQ), str(repeat)]
    else:
        cmd = [sys.executable, __file__, "--worker", engine, model.name, "--data", path,
               "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return {"error": lines[-1] if lines else f"exit code {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pool(a: dict | None, b: dict) -> dict:
    """Two rounds of one engine on one model: all timings, the larger peak memory."""
    if a is None or "error" in a:
        return b
    if "error" in b:
        return a
    return {**a, "times": a["times"] + b["times"], "peak_mb": max(a["peak_mb"], b["peak_mb"])}


# -- report ------------------------------------------------------------------------------
def _fmt_ms(r: dict | None) -> str:
    if not r:
        return ""
    if "error" in r:
        return "error"
    if "unsupported" in r:   # the peer fits nAGQ ≥ 1 only
        return "n/a"
    return f"{1e3 * statistics.median(r['times']):.1f}"


def _ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or "times" not in a or "times" not in b:
        return ""
    return f"{statistics.median(a['times']) / statistics.median(b['times']):.3g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help=f"models (default all): {', '.join(BY_NAME)}")
    ap.add_argument("--engines",
                    help="comma list of glmm, lme4, peer (default glmm,lme4, and peer when "
                         "--peer-python is given; peer needs --peer-python)")
    ap.add_argument("--peer-python", help="python of a separate venv with PyPI glmm 0.6.2")
    ap.add_argument("--repeat", type=int, help="timed fits per engine (default per model)")
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
        print(json.dumps(fn(model, args.data, args.repeat)))
        return 0

    from rich.console import Console
    from rich.table import Table

    unknown = [m for m in args.models if m not in BY_NAME]
    if unknown:
        print(f"bench: unknown models {unknown}; choose from {list(BY_NAME)}", file=sys.stderr)
        return 2
    default = "glmm,lme4,peer" if args.peer_python else "glmm,lme4"
    engines = [e.strip() for e in (args.engines or default).split(",") if e.strip()]
    if "peer" in engines and not args.peer_python:
        print("bench: the peer needs --peer-python; skipping it", file=sys.stderr)
        engines.remove("peer")
    models = [BY_NAME[m] for m in args.models] if args.models else list(MODELS)
    console = Console(width=None if sys.stdout.isatty() else 220)
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
                    if engine == "peer" and (model.nAGQ == 0 or model.method == "lmer"):
                        results[model.name][engine] = {"unsupported": "no nAGQ = 0"}
                        continue
                    console.print(f"[dim]{model.name}: {engine}, round {k + 1}/{rounds}…[/]")
                    r = run_worker(engine, model, path, repeat, args.peer_python)
                    results[model.name][engine] = _pool(results[model.name].get(engine), r)
    table = Table(title="median wall time per fit (ms), ratios to glmm; this machine, one run")
    for col in ("model", "nAGQ/REML", "glmm", "lme4", "lme4/glmm", "peer", "peer/glmm",
                "criterion glmm", "criterion lme4", "criterion peer", "evals glmm", "evals lme4",
                "vcov glmm", "vcov lme4", "peak MB glmm", "peak MB lme4", "peak MB peer"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for model in models:
        r = results[model.name]
        g, lm, pe = r.get("glmm"), r.get("lme4"), r.get("peer")

        def val(x: dict | None, key: str, fmt: str = "{:.5f}") -> str:
            if not x or "error" in x or x.get(key) is None:
                return ""
            return fmt.format(x[key])

        table.add_row(model.name, model.variant, _fmt_ms(g), _fmt_ms(lm), _ratio(lm, g),
                      _fmt_ms(pe), _ratio(pe, g), val(g, "m2loglik"), val(lm, "m2loglik"),
                      val(pe, "m2loglik"), val(g, "feval", "{}"), val(lm, "feval", "{}"),
                      val(g, "vcov", "{:.2e}"), val(lm, "vcov", "{:.2e}"),
                      val(g, "peak_mb", "{:.0f}"), val(lm, "peak_mb", "{:.0f}"),
                      val(pe, "peak_mb", "{:.0f}"))
    console.print(table)
    for model in models:
        for engine, r in results[model.name].items():
            if "error" in r:
                console.print(f"[red]{model.name} {engine}: {r['error']}[/]")
    if args.json:
        from parity.atomic import write_text_atomic

        doc = {"models": [asdict(m) for m in models], "results": results}
        write_text_atomic(args.json, json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``import glmm`` imports no scipy and none of the engine's own modules (they load on first
use), a fit imports only the parts of scipy it calls, and every BLAS pool a fit uses, scipy's
loaded during the fit included, runs one thread there: each check runs in a fresh
interpreter, whose sys.modules and thread pools no other test has touched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CBPP = ("import pandas as pd, glmm\n"
        "from parity import fixtures\n"
        "ds = fixtures.load('cbpp').data\n"
        "df = pd.DataFrame({c.name: (pd.Categorical([c.levels[i] for i in c.values])\n"
        "                            if c.kind == 'factor' else c.values)\n"
        "                   for c in ds.columns})\n")


def _run(code: str) -> object:
    """The JSON value that ``code``, run in a fresh interpreter in the repository's root (so
    that it imports this tree's glmm), prints last."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _modules_after(code: str, prefix: str) -> list[str]:
    """The modules named ``prefix`` or ``prefix.*`` in sys.modules after running ``code``."""
    return _run(f"{code}\nimport json, sys\n"
                f"print(json.dumps(sorted(m for m in sys.modules "
                f"if m == {prefix!r} or m.startswith({prefix!r} + '.'))))")


def test_import_glmm_imports_no_scipy() -> None:
    assert _modules_after("import glmm", "scipy") == []


def test_import_glmm_loads_its_modules_on_first_use() -> None:
    assert _modules_after("import glmm", "glmm") == ["glmm"]
    # the public names are the same objects as their modules' (glmer and lmer: the functions,
    # whichever of a name's module and function is imported first)
    code = ("import glmm, glmm.lmer, glmm.results.lmer\n"
            "from glmm.glmer import glmer\n"
            "from glmm.errors import FormulaError\n"
            "import json\n"
            "print(json.dumps([glmm.glmer is glmer, glmm.FormulaError is FormulaError,\n"
            "                  callable(glmm.lmer), glmm.LmerFit is glmm.results.lmer.LmerFit,\n"
            "                  sorted(set(glmm.__all__) - set(dir(glmm)))]))")
    assert _run(code) == [True, True, True, True, []]


def test_star_import_gives_every_public_name() -> None:
    code = ("import glmm\n"
            "ns = {}\n"
            "exec('from glmm import *', ns)\n"
            "import json\n"
            "print(json.dumps([sorted(set(glmm.__all__) - set(ns)),\n"
            "                  all(ns[k] is getattr(glmm, k) for k in glmm.__all__)]))")
    assert _run(code) == [[], True]


def test_a_glmm_fit_imports_scipys_lapack_only() -> None:
    # the fit's LAPACK (dpotrf, ...) is scipy's f2py module, loaded without scipy.linalg's
    # __init__; binomial and Poisson need no scipy.special
    code = CBPP + ("fit = glmm.glmer('cbind(incidence, size - incidence) ~ period + (1 | herd)',\n"
                   "                 df, family='binomial')\n"
                   "fit.loglik\n")
    assert _modules_after(code, "scipy") == ["scipy.linalg._flapack"]


def test_a_scalar_term_fit_loads_no_blocked_machinery() -> None:
    # one scalar term: no blocked factor nor its coupling pattern and layouts, no lmer, and
    # the results' inference modules only when asked for
    code = CBPP + ("fit = glmm.glmer('cbind(incidence, size - incidence) ~ period + (1 | herd)',\n"
                   "                 df, family='binomial')\n"
                   "fit.loglik\n")
    mods = set(_modules_after(code, "glmm"))
    assert "glmm.objectives.scalar_term" in mods
    assert not mods & {"glmm.linalg.coupling", "glmm.linalg.blocked", "glmm.objectives.blocked",
                       "glmm.lmer", "glmm.objectives.lmm", "glmm.results.summary",
                       "glmm.results.vcov"}


def test_an_lmm_fit_imports_no_scipy_sparse() -> None:
    # the fit factorises by LAPACK (scipy.linalg's) but builds no sparse matrix
    code = ("import pandas as pd, glmm\n"
            "df = pd.read_csv('tests/data/lmm/sleepstudy.csv')\n"
            "df['Subject'] = df['Subject'].astype(str).astype('category')\n"
            "glmm.lmer('Reaction ~ Days + (Days | Subject)', df)")
    mods = _modules_after(code, "scipy")
    assert {"scipy.linalg._flapack", "scipy.linalg.cython_lapack"} & set(mods)
    assert not [m for m in mods if m.startswith(("scipy.sparse", "scipy.optimize"))]


def test_the_lapack_routines_are_scipy_linalgs() -> None:
    # loaded before scipy.linalg, they are the objects it exports when it loads later
    code = ("import json\n"
            "from glmm import threads\n"
            "flapack = threads.scipy_linalg('_flapack')\n"
            "import scipy.linalg\n"
            "print(json.dumps([scipy.linalg.lapack.dpotrf is flapack.dpotrf,\n"
            "                  threads.scipy_linalg() is scipy.linalg]))")
    assert _run(code) == [True, True]


def test_scipy_linalg_imported_after_a_fit_is_whole() -> None:
    # an lmer fit loads cython_lapack, cython_blas and _flapack before scipy.linalg: a later
    # import of scipy.linalg, in any form, gives the package with them as its attributes
    # and its own loader, and takes the one-shot finder away
    code = ("import json, sys, pandas as pd, glmm\n"
            "df = pd.read_csv('tests/data/lmm/sleepstudy.csv')\n"
            "df['Subject'] = df['Subject'].astype(str).astype('category')\n"
            "glmm.lmer('Reaction ~ Days + (Days | Subject)', df)\n"
            "early = 'scipy.linalg' not in sys.modules\n"
            "import importlib.util\n"
            "importlib.util.find_spec('scipy.linalg')   # a probe first: the import still binds\n"
            "import scipy.linalg.cython_lapack as cl\n"
            "import scipy.linalg\n"
            "from importlib.machinery import SourceFileLoader\n"
            "print(json.dumps([early, scipy.linalg.cython_lapack is cl,\n"
            "                  scipy.linalg.cython_blas is\n"
            "                  sys.modules['scipy.linalg.cython_blas'],\n"
            "                  scipy.linalg._flapack is sys.modules['scipy.linalg._flapack'],\n"
            "                  isinstance(scipy.linalg.__spec__.loader, SourceFileLoader),\n"
            "                  [type(f).__name__ for f in sys.meta_path\n"
            "                   if type(f).__module__ == 'glmm.threads']]))")
    assert _run(code) == [True, True, True, True, True, []]


#: pools() is the BLAS pools now, as sorted [path, thread count] (threadpoolctl's view)
POOLS = ("import json, sys, numpy, threadpoolctl\n"
         "def pools():\n"
         "    return sorted([d['filepath'], d['num_threads']]\n"
         "                  for d in threadpoolctl.threadpool_info() if d['user_api'] == 'blas')\n")


def _split(stages: dict[str, list[list]]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """At each stage, the counts of the pools loaded before the code ran (numpy's) and of
    those loaded while it ran (scipy's); skips where scipy has no pool of its own, or where
    one thread is numpy's pool's own count (nothing would tell a limit from its absence; an
    OpenBLAS's own count is the machine's cores or OPENBLAS_NUM_THREADS, scipy's as numpy's)."""
    known = {path for path, _ in stages["before"]}
    old = {k: [n for p, n in v if p in known] for k, v in stages.items()}
    new = {k: [n for p, n in v if p not in known] for k, v in stages.items()}
    if not new["after"]:
        pytest.skip(f"scipy shares numpy's BLAS here: {stages['after']}")
    if 1 in old["before"]:
        pytest.skip(f"one thread is the BLAS pools' own count here: {stages['after']}")
    return old, new


def test_a_pool_loaded_inside_a_limit_is_limited_and_restored() -> None:
    """scipy's OpenBLAS, loaded inside blas_limit(2) inside blas_limit(1), runs two threads
    there, one once the inner limit exits, its own count after the outer."""
    code = POOLS + (
        "from glmm import threads\n"
        "from glmm.threads import blas_limit, scipy_linalg\n"
        "threads._FIRST = 'json'   # no LAPACK loaded by the first look: the pool comes later\n"
        "stages = {'before': pools()}\n"
        "with blas_limit(1):\n"
        "    stages['limited'] = pools()\n"
        "    with blas_limit(2):\n"
        "        stages['unlimited'] = pools()\n"
        "        scipy_linalg('_flapack')\n"
        "        stages['loaded'] = pools()\n"
        "    stages['inner exited'] = pools()\n"
        "    with blas_limit(1):\n"
        "        stages['again'] = pools()\n"
        "stages['after'] = pools()\n"
        "print(json.dumps(stages))")
    old, new = _split(_run(code))
    own = new["after"]
    assert 1 not in own
    assert old["limited"] == [1] * len(old["before"])
    assert old["unlimited"] == [2] * len(old["before"]) and new["loaded"] == [2]
    assert old["inner exited"] == [1] * len(old["before"]) and new["inner exited"] == [1]
    assert new["again"] == [1]
    assert old["after"] == old["before"]


def test_a_fits_thread_limit_reaches_scipys_blas() -> None:
    """scipy's OpenBLAS (glmm.linalg.lapack's LAPACK) is not numpy's and is loaded during the
    fit: every pool runs one thread when the fit first calls it, and its own count after."""
    code = POOLS + CBPP + (
        "from glmm.design import fixed\n"
        "checks, seen = fixed.column_checks, []\n"
        "def spy(*args, **kwargs):\n"
        "    if not seen:\n"
        "        seen.append(pools())\n"
        "    return checks(*args, **kwargs)\n"
        "fixed.column_checks = spy   # the design's checks of X, inside the fit's limit\n"
        "before = pools()\n"
        "fit = glmm.glmer('cbind(incidence, size - incidence) ~ period + (1 | herd)', df,\n"
        "                 family='binomial')\n"
        "print(json.dumps({'before': before, 'loaded': seen[0], 'after': pools()}))")
    old, new = _split(_run(code))
    assert old["loaded"] == [1] * len(old["before"]) and new["loaded"] == [1]
    assert old["after"] == old["before"] and 1 not in new["after"]


def test_blas_limit_refuses_a_count_below_one() -> None:
    from glmm.threads import blas_limit

    with pytest.raises(ValueError, match="positive thread count"), blas_limit(0):
        pass


def test_a_blas_limit_is_entered_once() -> None:
    """A limit keeps one entry's counts to restore: entering it again is refused, nested
    or after its exit, and leaves the pools as they were."""
    from glmm.threads import blas_limit

    limit = blas_limit(1)
    with limit:
        with pytest.raises(RuntimeError, match="entered once"), limit:
            pass
    with pytest.raises(RuntimeError, match="entered once"), limit:
        pass
    with blas_limit(1):   # a new one is fine
        pass

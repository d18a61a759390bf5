"""``import glmm`` imports no scipy (scipy.linalg and scipy.sparse are a large part of its
import time), and a fit imports only the parts of scipy it calls: each check runs in a fresh
interpreter, whose sys.modules no other test has touched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _scipy_modules_after(code: str) -> list[str]:
    """The scipy modules in sys.modules after running ``code`` in a fresh interpreter (in the
    repository's root, so that it imports this tree's glmm)."""
    probe = (f"{code}\nimport json, sys\n"
             "print(json.dumps(sorted(m for m in sys.modules "
             "if m == 'scipy' or m.startswith('scipy.'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_glmm_imports_no_scipy() -> None:
    assert _scipy_modules_after("import glmm") == []


def test_an_lmm_fit_imports_no_scipy_sparse() -> None:
    # the fit factorises by LAPACK (scipy.linalg.lapack) but builds no sparse matrix
    code = ("import pandas as pd, glmm\n"
            "df = pd.read_csv('tests/data/lmm/sleepstudy.csv')\n"
            "df['Subject'] = df['Subject'].astype(str).astype('category')\n"
            "glmm.lmer('Reaction ~ Days + (Days | Subject)', df)")
    mods = _scipy_modules_after(code)
    assert "scipy.linalg" in mods
    assert not [m for m in mods if m.startswith(("scipy.sparse", "scipy.optimize"))]


def test_a_fits_thread_limit_reaches_scipys_blas() -> None:
    """scipy's OpenBLAS (glmm.linalg.lapack's and the compiled core's LAPACK) is not numpy's;
    loaded lazily, it must still be among the pools a fit limits to one thread."""
    code = ("import importlib, json, glmm\n"
            "g = importlib.import_module('glmm.glmer')\n"
            "with g._threads().limit(limits=1, user_api='blas'):\n"
            "    import threadpoolctl\n"
            "    info = threadpoolctl.threadpool_info()\n"
            "print(json.dumps([[d['filepath'], d['num_threads']] for d in info\n"
            "                  if d['user_api'] == 'blas']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, check=True).stdout
    pools = json.loads(out.strip().splitlines()[-1])
    if not any("scipy" in path for path, _ in pools):
        pytest.skip(f"scipy shares numpy's BLAS here: {pools}")
    assert all(n == 1 for _, n in pools), pools

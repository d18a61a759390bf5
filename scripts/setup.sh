#!/usr/bin/env bash
# Create .venv and install the project with its test extra, plus the R extra (rpy2) when R
# with lme4 is on this machine.  Idempotent: does nothing when pyproject.toml is unchanged.
# Sourced by scripts/test.sh and scripts/report.sh; run it alone to set up by hand.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: Python >= 3.11 is required ($("$py" --version 2>&1))" >&2; exit 1; }
extras="test"
if command -v Rscript >/dev/null 2>&1 && Rscript -e 'quit(status = !requireNamespace("lme4", quietly = TRUE))' >/dev/null 2>&1; then
  extras="test,r"
fi
# reinstall when the project's metadata or the C source of its compiled core changes (an
# editable install rebuilds the extension only when installed again)
stamp=".venv/.installed-$(cat pyproject.toml setup.py glmm/csrc/* | sha256sum | cut -c1-16)-${extras/,/-}"
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
  rm -f .venv/.installed-*
  touch "$stamp"
  echo "setup: installed the project into .venv with extras [${extras}]" >&2
  .venv/bin/python -c 'import glmm._core' 2>/dev/null || echo "setup: the compiled core \
glmm._core was not built (no C compiler?): glmm computes the same in numpy, slower, and \
tests/test_scalar_core.py fails" >&2
fi

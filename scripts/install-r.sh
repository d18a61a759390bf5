#!/usr/bin/env bash
# Live-R mode: install R 4.2 and lme4 1.1-31 from Debian, and a C compiler for glmm's compiled
# core, then the project with its R extra (rpy2 3.5.x; 3.6 does not load on R 4.2).  Needs
# root (or sudo) for apt.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends \
  r-base-core r-cran-lme4 r-cran-jsonlite r-cran-mlmrev gcc libc6-dev >/dev/null
Rscript -e 'cat("R", as.character(getRversion()), "lme4", as.character(packageVersion("lme4")), "\n")'
bash "$root/scripts/setup.sh"

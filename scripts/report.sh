#!/usr/bin/env bash
# Set up (scripts/setup.sh) and print the parity report on the committed fixtures.
# Extra arguments go to `python -m parity run` (try --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
exec .venv/bin/python -m parity run --source fixtures "$@"

#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the test suite.  Extra arguments go to pytest.
# Live-R tests run when R with lme4 is installed (scripts/install-r.sh), else they are
# skipped with the reason.  Exit code 5 (no tests collected) is turned into a failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$rc"

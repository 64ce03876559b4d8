#!/usr/bin/env bash
# Run the test suite on this machine, installing first whatever it needs:
# the Python environment (.venv) and the Debian packages behind the real
# parts (chromium, sshd, Slurm, munge). Extra arguments go to pytest:
#
#   bash scripts/test.sh                  # everything
#   bash scripts/test.sh -k fields -x     # a selection
#
# The exit status is pytest's (5, "no tests collected", stays a failure).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-env.sh --system

echo "[physviz test] .venv/bin/python -m pytest $*"
rc=0
.venv/bin/python -m pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "[physviz test] pytest collected no tests (exit 5): counted as a failure" >&2
fi
exit "$rc"

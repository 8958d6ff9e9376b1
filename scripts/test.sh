#!/usr/bin/env bash
# Installs everything (idempotent) and runs the whole test suite, daemon and slow tests included.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow and not daemon"` for a quick local run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"

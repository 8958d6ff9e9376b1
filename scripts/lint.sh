#!/usr/bin/env bash
# ruff (lint and format check) over the repository; the mypy error count is held by tests/tooling/test_types.py.
# Run after scripts/bootstrap.sh. `ruff format .` rewrites what the check refuses.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .

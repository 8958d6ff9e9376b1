#!/usr/bin/env bash
# Static analysis of contracts/ with slither, through the npm solc shim (no native solc here).
# Exits non-zero when slither reports findings. Extra arguments go to slither (e.g. --json out.json).
set -euo pipefail
cd "$(dirname "$0")/.."
export CODECOOP_SOLC_MODULE="$PWD/node_modules/solc"
exec .venv/bin/slither contracts \
  --solc codecoop/chain/solc/solc-v0.8.28 --solc-standard-json \
  --solc-remaps "@openzeppelin/=node_modules/@openzeppelin/" \
  --filter-paths node_modules "$@"

#!/usr/bin/env bash
# The multi-process devnet: a hardhat@2 JSON-RPC node and one `codecoop node run` process per
# organisation, each with its own store, talking over libp2p (each organisation in its own network
# namespace when run as root, else on 127.0.0.1); runs the given number of rounds, then stops everything.
#
#   scripts/devnet.sh                      # 3 organisations, 1 round on tiny
#   scripts/devnet.sh --orgs 4 --rounds 2  # any `codecoop sim --processes` option
#
# CODECOOP_KEEP_DEVNET=1 keeps the work folder (logs, configs, keystores, journals) of a run
# started without --workdir.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
[ -x node_modules/.bin/hardhat ] || npm ci --no-audit --no-fund --loglevel=error
exec "$PY" -c 'import sys; sys.argv[0] = "scripts/devnet.sh"; from codecoop.cli import main; sys.exit(main(["sim", "--processes", *sys.argv[1:]]))' "$@"

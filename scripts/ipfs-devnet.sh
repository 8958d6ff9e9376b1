#!/usr/bin/env bash
# A real, offline IPFS daemon for integration tests and CI: js-ipfs (npm `ipfs`, pinned by
# package-lock.json) serving the Kubo HTTP RPC API on 127.0.0.1, its repository in a temporary folder.
#
#   scripts/ipfs-devnet.sh start    # installs from the lockfile if needed, starts, prints the API multiaddr
#   scripts/ipfs-devnet.sh status   # prints the API multiaddr and exits 0 when running, exits 3 otherwise
#   scripts/ipfs-devnet.sh stop     # stops the daemon and deletes its repository
#
# start and stop are idempotent: start on a running daemon only prints its address again.
# Environment: IPFS_DEVNET_PORT (API port, default 5001), IPFS_DEVNET_STATE (state folder, default
# $TMPDIR/codecoop-ipfs-devnet-$UID-<port>), IPFS_DEVNET_TIMEOUT (seconds to wait for start, default 90).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PORT=${IPFS_DEVNET_PORT:-5001}
STATE=${IPFS_DEVNET_STATE:-${TMPDIR:-/tmp}/codecoop-ipfs-devnet-$(id -u)-$PORT}
WAIT=${IPFS_DEVNET_TIMEOUT:-90}
API="/ip4/127.0.0.1/tcp/$PORT/http"
JSIPFS="$ROOT/node_modules/.bin/jsipfs"
# js-ipfs 0.66 calls Promise.withResolvers, which Node 20 lacks: preload a polyfill.
export NODE_OPTIONS="--require $ROOT/scripts/promise-with-resolvers.cjs ${NODE_OPTIONS:-}"

log() { printf '[ipfs-devnet] %s\n' "$*" >&2; }

api_up() {
  curl -s -o /dev/null -m 2 -X POST "http://127.0.0.1:$PORT/api/v0/id"
}

running_pid() {
  local pid
  [ -f "$STATE/pid" ] || return 1
  pid=$(cat "$STATE/pid")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

install() {
  if [ ! -x "$JSIPFS" ]; then
    command -v npm >/dev/null || { log "npm is required (apt-get install nodejs npm)"; exit 1; }
    [ -f package-lock.json ] || { log "package-lock.json is missing: the daemon is only installed from the lockfile"; exit 1; }
    log "installing js-ipfs from package-lock.json (npm ci, a few minutes)"
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
}

start() {
  if running_pid >/dev/null && api_up; then
    echo "$API"
    return 0
  fi
  # A stale state folder (crashed daemon) is discarded, never reused.
  stop_quietly
  if api_up; then
    log "port $PORT already answers an IPFS API that this script did not start; stop it or set IPFS_DEVNET_PORT"
    exit 1
  fi
  install
  mkdir -p "$STATE"
  local repo
  repo=$(mktemp -d "${TMPDIR:-/tmp}/codecoop-ipfs-repo.XXXXXX")
  echo "$repo" > "$STATE/repo"
  export IPFS_PATH="$repo"
  "$JSIPFS" init --profile test >"$STATE/init.log" 2>&1 || { cat "$STATE/init.log" >&2; exit 1; }
  "$JSIPFS" config --json Addresses.Swarm '[]' >/dev/null
  "$JSIPFS" config --json Bootstrap '[]' >/dev/null
  "$JSIPFS" config Addresses.API "/ip4/127.0.0.1/tcp/$PORT" >/dev/null
  # Port 0 for the gateway and gRPC endpoints: only the HTTP API is used, and fixed ports would clash.
  "$JSIPFS" config Addresses.Gateway /ip4/127.0.0.1/tcp/0 >/dev/null
  "$JSIPFS" config Addresses.RPC /ip4/127.0.0.1/tcp/0 >/dev/null
  # setsid: the daemon outlives this shell and is stopped only through `stop`.
  setsid "$JSIPFS" daemon --offline </dev/null >"$STATE/daemon.log" 2>&1 &
  echo $! > "$STATE/pid"
  local waited=0
  until api_up; do
    if ! running_pid >/dev/null; then
      log "daemon exited during start; its log:"
      cat "$STATE/daemon.log" >&2
      stop_quietly
      exit 1
    fi
    if [ "$waited" -ge $((WAIT * 5)) ]; then
      log "daemon did not answer on $API within ${WAIT}s; its log:"
      cat "$STATE/daemon.log" >&2
      stop_quietly
      exit 1
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  log "running: pid $(cat "$STATE/pid"), repository $repo"
  echo "$API"
}

stop_quietly() {
  local pid i
  if pid=$(running_pid); then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  if [ -f "$STATE/repo" ]; then
    case "$(cat "$STATE/repo")" in
      */codecoop-ipfs-repo.*) rm -rf -- "$(cat "$STATE/repo")" ;;
    esac
  fi
  rm -rf -- "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop_quietly; log "stopped" ;;
  status)
    if running_pid >/dev/null && api_up; then echo "$API"; else log "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac

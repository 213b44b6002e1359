#!/usr/bin/env bash
# Creates (idempotently) a Python venv with snmpsim and snmpsim-data, the independent SNMP agent
# simulator and its real-device recordings (BSD-licensed, installed here rather than committed),
# for the poller's recording tests (crates/poller/tests/recordings.rs).
# Usage: scripts/snmpsim-venv.sh [VENV_DIR]   (default: ${CARGO_TARGET_DIR:-target}/snmpsim-venv)
# Prints the venv directory on success.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-${CARGO_TARGET_DIR:-$PWD/target}/snmpsim-venv}"
if [ -x "$VENV/bin/snmpsim-command-responder" ] && [ -f "$VENV/.complete" ]; then
  echo "$VENV"
  exit 0
fi
command -v python3 >/dev/null || { echo "python3 not found (Debian: apt-get install python3 python3-venv)" >&2; exit 1; }
mkdir -p "$(dirname "$VENV")"
# A lock so parallel test binaries do not build the same venv twice.
exec 9>"$VENV.lock"
flock 9
if [ ! -f "$VENV/.complete" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" >&2 || { echo "python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check snmpsim snmpsim-data cryptography >&2
  touch "$VENV/.complete"
fi
echo "$VENV"

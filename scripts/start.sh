#!/usr/bin/env bash
# Installs what Lookout needs and starts it on its embedded default:
# SQLite + RRD files under ./data, web UI/API on http://127.0.0.1:8000, web + dispatcher +
# poller in one process. Extra arguments go to `lookout serve` (e.g. --listen 0.0.0.0:8000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release -p lookout
exec target/release/lookout serve "$@"

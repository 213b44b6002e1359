#!/usr/bin/env bash
# Runs the whole test suite: formatting, clippy, then every test of the workspace.
# Tests start the real servers they need (snmpd, rrdcached, ...) on 127.0.0.0/8 themselves;
# MariaDB (127.0.0.1:3306) and Redis (127.0.0.1:6379) are expected to be running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (SQLite default; store, coord and web tests also use MariaDB/Redis/Galera)"
cargo test --workspace --no-fail-fast -- --test-threads="${LOOKOUT_TEST_THREADS:-4}"
echo "== cargo test -p lookout on MariaDB (DB_CONNECTION=mysql: the end-to-end suite again)"
LOOKOUT_TEST_DB=mysql cargo test -p lookout --no-fail-fast -- --test-threads="${LOOKOUT_TEST_THREADS:-4}"

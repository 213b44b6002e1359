#!/usr/bin/env bash
# The same-run SNMP benchmark of issue 3: ifTable+ifXTable of N simulated 48-interface devices
# walked by the Lookout engine, by one snmpbulkwalk process per device and table (LibreNMS's
# way) and by Prometheus snmp_exporter, against lookout-snmpsim on 127.0.0.1.
#
#   scripts/bench-snmp.sh                          # N = 100, 1,000, 10,000
#   scripts/bench-snmp.sh --devices 100 --json out.json
#
# Arguments go to crates/snmpsim/examples/ifmib_bench.rs (--help lists them). Needs Debian
# snmp (snmpbulkwalk) and prometheus-snmp-exporter (scripts/install-deps.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in snmpbulkwalk prometheus-snmp-exporter; do
  command -v "$tool" >/dev/null || { echo "$tool missing: run scripts/install-deps.sh" >&2; exit 1; }
done
cargo build --release -q -p lookout-snmpsim --bin lookout-snmpsim --example ifmib_bench
# 10,000 devices are 10,000 UDP sockets in the simulator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "${CARGO_TARGET_DIR:-target}/release/examples/ifmib_bench" "$@"

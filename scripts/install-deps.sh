#!/usr/bin/env bash
# Installs the Debian packages Lookout and its tests use (idempotent; quick when present).
# Runs as root, or through sudo when available.
set -euo pipefail
PACKAGES=(
  snmpd snmp            # net-snmp agent (tests) and tools (reference, `snmpbulkwalk`)
  rrdtool rrdcached librrd-dev   # RRD files, the rrdcached daemon, librrd for the local backend
  libclang-dev pkg-config        # bindgen for librrd
  fping                 # ICMP availability (has cap_net_raw)
  iproute2              # icmp tests: `ip` in a namespace of their own (blackholed 127.0.0.9)
  python3-venv          # snmpsim (real-device recordings) in a venv for the poller tests
  sqlite3               # inspecting the embedded database
  chromium chromium-driver       # browser tests (headless)
  redis-sentinel galera-4 haproxy mariadb-server rsync # HA tests (Sentinel, Galera + rsync SST, HAProxy)
  openssl               # the MySQL TLS test makes its CA and server certificate
  prometheus-snmp-exporter  # SNMP benchmark (scripts/bench-snmp.sh): the snmp_exporter comparison
  prometheus-alertmanager python3-aiosmtpd  # alert transport tests: two Alertmanager replicas, an SMTP server
)
missing=()
for p in "${PACKAGES[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }

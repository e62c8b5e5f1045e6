#!/usr/bin/env bash
# Installs the Prometheus server (and promtool) from Debian's `prometheus` package when missing.
# The integration tests and the local stack start it themselves on 127.0.0.1; the package's own
# service is not used (and not started here: containers have no init system).
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "prometheus is not installed and this is not root: skipping the install." >&2
  echo "  Install it with: sudo apt-get install prometheus   (Prometheus tests will be skipped)" >&2
  exit 0
fi
echo "Installing Prometheus from Debian's prometheus package..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# Debian's postinst may try to start the packaged service; we run our own instances.
if command -v service >/dev/null 2>&1; then service prometheus stop >/dev/null 2>&1 || true; fi
pkill -x prometheus >/dev/null 2>&1 || true
command -v prometheus >/dev/null && command -v promtool >/dev/null

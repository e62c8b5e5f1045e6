#!/usr/bin/env bash
# Installs wrk (the HTTP load generator of the selector benchmark) from Debian's `wrk` package when
# missing. Not root and not installed: says so and exits 0; the benchmark then skips its wrk run.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "wrk is not installed and this is not root: skipping the install." >&2
  echo "  Install it with: sudo apt-get install wrk   (the selector benchmark will be skipped)" >&2
  exit 0
fi
echo "Installing wrk from Debian's wrk package..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends wrk >/dev/null
command -v wrk >/dev/null

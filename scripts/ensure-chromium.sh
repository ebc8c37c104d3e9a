#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium: the live page's
# browser test drives it with playwright-core (which never downloads a
# browser of its own). Installs Debian's package when missing and running as
# root; otherwise says how.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing: installing Debian's chromium package" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
cat >&2 <<'MSG'
/usr/bin/chromium is missing. The live page's browser test (test/live) drives
Debian's Chromium with playwright-core. Install it with:
  sudo apt-get install chromium             (Debian; Ubuntu's is a snap: use Debian's package or a container)
then run the command again. Do not run `npx playwright install`: the test uses
/usr/bin/chromium only.
MSG
exit 1

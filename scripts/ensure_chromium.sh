#!/usr/bin/env bash
# Install Debian's chromium for the browser tests when it is missing (never `playwright install`).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "error: /usr/bin/chromium is missing and this user cannot install it; run: sudo apt-get install -y chromium" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# a mirror that fails for a moment (a sync in progress, a dropped connection) is tried again
for try in 1 2 3; do
  if $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null; then break; fi
  if [ "$try" = 3 ]; then echo "error: apt-get could not install chromium (3 tries)" >&2; exit 1; fi
  echo "apt-get failed; trying again in $((try * 10)) s" >&2
  sleep $((try * 10))
done
test -x /usr/bin/chromium

#!/usr/bin/env bash
# Installs what only the browser tests need (tests/browser), apart from `make setup` so that a first
# `make demo` or `make up` waits for neither: `make tools` (run before `make test`) calls this.
#   - Debian's chromium (headless browser; Playwright drives /usr/bin/chromium, its own browser download
#     is never used) and an emoji font
#   - `npm ci` in tools/firebase_emulators/: firebase-tools, for its Firebase Auth emulator (Node only,
#     nothing downloaded at run time), which tests/browser/test_cloud_signin.py signs in against
# Idempotent: a stamp holding the hash of the inputs skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp="tools/firebase_emulators/.setup-stamp"
want=$(cat scripts/setup_browser_tests.sh tools/firebase_emulators/package-lock.json | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x tools/firebase_emulators/node_modules/.bin/firebase ] \
   && command -v chromium >/dev/null; then
  exit 0
fi
if ! command -v chromium >/dev/null; then
  echo "setup_browser_tests: installing Debian's chromium and an emoji font"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
fi
command -v npm >/dev/null || { echo "setup_browser_tests: node/npm are missing; install Node.js 20+" >&2; exit 1; }
echo "setup_browser_tests: npm ci in tools/firebase_emulators (the Firebase Auth emulator)"
# --omit=optional: the Auth emulator needs none of firebase-tools' optional packages, and one of them, re2
# (superstatic's, for the Hosting emulator), compiles from C++ with node-gyp when its prebuilt binary cannot
# be downloaded, as here: 12 of the 13.5 minutes this step took on a fresh clone.
(cd tools/firebase_emulators && npm ci --omit=optional --no-audit --no-fund --loglevel=error)
echo "$want" > "$stamp"
echo "setup_browser_tests: done"

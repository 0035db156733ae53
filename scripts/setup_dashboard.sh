#!/usr/bin/env bash
# Installs what the Training dashboard needs and builds it (docs/dashboard.md). Idempotent: a stamp
# holding the hash of the inputs skips the work when nothing changed.
#   - Debian's chromium (headless browser for tests/browser; Playwright drives /usr/bin/chromium)
#   - the Python Playwright client in .venv (its own browser download is never used)
#   - `npm ci` in dashboard/ (versions locked by dashboard/package-lock.json) and `npm run build`
#     → dashboard/dist/, which the API serves at /training (shared/http/dashboard_routes.py)
#   - `npm ci` in tools/firebase_emulators/: firebase-tools, for its Firebase Auth emulator (Node only,
#     nothing downloaded at run time), which tests/browser/test_cloud_signin.py signs in against
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PLAYWRIGHT_VERSION=1.65.2
stamp="dashboard/.setup-stamp"
want=$( (cat scripts/setup_dashboard.sh dashboard/package.json dashboard/package-lock.json dashboard/vite.config.js \
          tools/firebase_emulators/package-lock.json;
         find dashboard/src dashboard/index.html -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f dashboard/dist/index.html ] \
   && [ -d dashboard/node_modules ] && [ -x tools/firebase_emulators/node_modules/.bin/firebase ] \
   && command -v chromium >/dev/null \
   && { [ ! -x "$VENV/bin/python" ] || "$VENV/bin/python" -c "import playwright" 2>/dev/null; }; then
  exit 0
fi
if ! command -v chromium >/dev/null; then
  echo "setup_dashboard: installing Debian's chromium and an emoji font"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
fi
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c "import playwright" 2>/dev/null; then
  echo "setup_dashboard: installing playwright==$PLAYWRIGHT_VERSION into $VENV (no browser download)"
  . scripts/setup_installer.sh
  venv_install "$VENV" "playwright==$PLAYWRIGHT_VERSION"
fi
command -v npm >/dev/null || { echo "setup_dashboard: node/npm are missing; install Node.js 20+" >&2; exit 1; }
echo "setup_dashboard: npm ci + build"
(cd dashboard && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
echo "setup_dashboard: npm ci in tools/firebase_emulators (the Firebase Auth emulator)"
(cd tools/firebase_emulators && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$stamp"
echo "setup_dashboard: done (dashboard/dist)"

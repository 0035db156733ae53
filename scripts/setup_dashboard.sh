#!/usr/bin/env bash
# Builds the Training dashboard (docs/dashboard.md): `npm ci` in dashboard/ (versions locked by
# dashboard/package-lock.json) and `npm run build` → dashboard/dist/, which the API serves at /training
# (shared/http/dashboard_routes.py). What only the browser tests need (chromium, the Firebase Auth
# emulator) is scripts/setup_browser_tests.sh's, run by `make tools`. Idempotent: a stamp holding the
# hash of the inputs skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PLAYWRIGHT_VERSION=1.65.2
stamp="dashboard/.setup-stamp"
want=$( (cat scripts/setup_dashboard.sh dashboard/package.json dashboard/package-lock.json dashboard/vite.config.js;
         find dashboard/src dashboard/index.html -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f dashboard/dist/index.html ] \
   && [ -d dashboard/node_modules ] \
   && { [ ! -x "$VENV/bin/python" ] || "$VENV/bin/python" -c "import playwright" 2>/dev/null; }; then
  exit 0
fi
# The Python Playwright client comes with requirements/dev.txt; this covers a venv made without it.
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c "import playwright" 2>/dev/null; then
  echo "setup_dashboard: installing playwright==$PLAYWRIGHT_VERSION into $VENV (no browser download)"
  . scripts/setup_installer.sh
  venv_install "$VENV" "playwright==$PLAYWRIGHT_VERSION"
fi
command -v npm >/dev/null || { echo "setup_dashboard: node/npm are missing; install Node.js 20+" >&2; exit 1; }
echo "setup_dashboard: npm ci + build"
(cd dashboard && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
echo "$want" > "$stamp"
echo "setup_dashboard: done (dashboard/dist)"

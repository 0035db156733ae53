#!/usr/bin/env bash
# Builds the Training dashboard (docs/dashboard.md): `npm ci` in dashboard/ (versions locked by
# dashboard/package-lock.json) and `npm run build` → dashboard/dist/, which the API serves at /training
# (shared/http/dashboard_routes.py). What only the browser tests need (chromium, the Firebase Auth
# emulator) is scripts/setup_browser_tests.sh's, run by `make tools`. Idempotent: a stamp holding the
# hash of the inputs skips the work when nothing changed. It touches no Python environment, so `make setup`
# runs it beside scripts/setup.sh (the Playwright client comes with requirements/dev.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp="dashboard/.setup-stamp"
want=$( (cat scripts/setup_dashboard.sh dashboard/package.json dashboard/package-lock.json dashboard/vite.config.js;
         find dashboard/src dashboard/index.html -type f -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f dashboard/dist/index.html ] \
   && [ -d dashboard/node_modules ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "setup_dashboard: node/npm are missing; install Node.js 20+" >&2; exit 1; }
echo "setup_dashboard: npm ci + build"
# --prefer-offline: a package already in npm's cache is not revalidated against the registry (the lock
# pins its version and integrity anyway): npm ci took 126 s with a warm cache at load 12 (2026-12-07).
(cd dashboard && npm ci --prefer-offline --no-audit --no-fund --loglevel=error && npm run build --silent)
echo "$want" > "$stamp"
echo "setup_dashboard: done (dashboard/dist)"

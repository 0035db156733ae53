#!/usr/bin/env bash
# Installs checkov (pinned) into its own venv, .venv-checkov: its dependencies conflict with the
# main environment's. Idempotent: a stamp holding the hash of the pin and this script skips the
# install when nothing changed. `make tools` (run before `make test`) calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION=3.3.30
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=${CHECKOV_VENV:-.venv-checkov}
stamp="$VENV/.trainyard-checkov-installed"
want=$(printf '%s\n' "$CHECKOV_VERSION" | cat - scripts/setup_checkov.sh scripts/setup_installer.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/checkov" ]; then
  exit 0
fi
echo "setup_checkov: installing checkov==$CHECKOV_VERSION into $VENV"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
. scripts/setup_installer.sh
venv_install "$VENV" "checkov==$CHECKOV_VERSION"
"$VENV/bin/checkov" --version >/dev/null
echo "$want" > "$stamp"
echo "setup_checkov: done"

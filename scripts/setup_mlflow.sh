#!/usr/bin/env bash
# A venv of its own holding a pinned MLflow (requirements/mlflow.txt), for the tests that start a real
# MLflow tracking server. Idempotent: a stamp of the requirement file's hash skips a done install.
# Installed like the main venv (scripts/setup_installer.sh: uv, else pip). Under `make tools`: only tests need it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=${MLFLOW_VENV:-.local/mlflow-venv}
stamp="$VENV/.trainyard-installed"
want=$(cat requirements/mlflow.txt scripts/setup_mlflow.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup_mlflow: installing MLflow into $VENV"
mkdir -p "$(dirname "$VENV")"
source scripts/setup_installer.sh
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
venv_install "$VENV" -r requirements/mlflow.txt
echo "$want" > "$stamp"
echo "setup_mlflow: done"

#!/usr/bin/env bash
# A venv of its own holding a pinned MLflow (requirements/mlflow.txt), for the tests that start a real
# MLflow tracking server. Idempotent: a stamp of the requirement file's hash skips a done install.
# uv is used when it is on PATH (much faster), else pip.
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
if command -v uv >/dev/null; then
  [ -x "$VENV/bin/python" ] || uv venv --quiet --python "$PY" "$VENV"
  uv pip install --quiet --python "$VENV/bin/python" -r requirements/mlflow.txt
else
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r requirements/mlflow.txt
fi
echo "$want" > "$stamp"
echo "setup_mlflow: done"

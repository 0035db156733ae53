# Sourced by scripts/setup*.sh: `venv_install VENV ARGS...` installs ARGS (pip's syntax: -r, -c, --no-deps,
# names with pins) into the virtualenv VENV with uv, a pip-compatible installer that downloads and unpacks
# in parallel, and falls back to pip when uv cannot be had. The same requirement files and constraints
# either way, so the same pins. SETUP_INSTALLER=pip forces pip (a knob of the setup scripts, not a
# setting of a Trainyard process, so not in shared/settings.py).
UV_VERSION=0.13.8

# Prints the command that runs uv: the one on PATH, else one bootstrapped into VENV with pip once (a wheel
# from the package index that carries the uv binary); prints nothing when that fails.
_uv_command() {
  local venv=$1
  if [ "${SETUP_INSTALLER:-uv}" = pip ]; then return; fi
  if command -v uv >/dev/null; then  # the developer's own uv: any recent one reads the same files
    echo uv
  elif "$venv/bin/python" -m uv --version >/dev/null 2>&1 \
     || "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >/dev/null 2>&1; then
    echo "$venv/bin/python -m uv"
  fi
}

venv_install() {
  local venv=$1; shift
  local uv arg uv_args=()
  uv=$(_uv_command "$venv")
  if [ -n "$uv" ]; then
    # uv ignores the upper bound of a package's Requires-Python (docs.astral.sh/uv/pip/compatibility,
    # "requires-python upper bounds"): what pip's --ignore-requires-python does for tfx 1.15 on 3.11.
    for arg in "$@"; do [ "$arg" = --ignore-requires-python ] || uv_args+=("$arg"); done
    $uv pip install --quiet --python "$venv/bin/python" "${uv_args[@]}" && return 0
    echo "setup: uv failed; installing with pip instead" >&2
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip<25" wheel
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

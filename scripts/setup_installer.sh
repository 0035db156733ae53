# Sourced by scripts/setup*.sh: `venv_install VENV ARGS...` installs ARGS (pip's syntax: -r, -c, --no-deps,
# names with pins) into the virtualenv VENV with uv, a pip-compatible installer that downloads and unpacks
# in parallel, and falls back to pip when uv cannot be had. The same requirement files and constraints
# either way, so the same pins. SETUP_INSTALLER=pip forces pip (a knob of the setup scripts, not a
# setting of a Trainyard process, so not in shared/settings.py).
UV_VERSION=0.13.8
# Where a bootstrapped uv is kept (SETUP_TOOLS_DIR, a knob like SETUP_INSTALLER): once per machine and
# version, not once per clone (pip took 17 s of a fresh clone's setup to fetch it into each new virtualenv).
UV_HOME=${SETUP_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/trainyard}/uv-$UV_VERSION

# Prints the command that runs uv: the one on PATH, else the one bootstrapped into UV_HOME (pip installs
# the wheel from the package index that carries the uv binary, with the virtualenv's pip or else the
# base Python's); prints nothing when that fails.
_uv_command() {
  local venv=$1 python staging
  if [ "${SETUP_INSTALLER:-uv}" = pip ]; then return; fi
  if command -v uv >/dev/null; then  # the developer's own uv: any recent one reads the same files
    echo uv; return
  fi
  if [ ! -x "$UV_HOME/bin/uv" ]; then
    mkdir -p "$(dirname "$UV_HOME")"
    staging=$(mktemp -d "$UV_HOME.XXXXXX")  # then renamed: two setups at once never see half a uv
    for python in "$venv/bin/python" "${PYTHON:-python3}"; do
      if "$python" -m pip install --quiet --disable-pip-version-check --target "$staging" "uv==$UV_VERSION" \
           >/dev/null 2>&1 && [ -x "$staging/bin/uv" ]; then
        mv -T "$staging" "$UV_HOME" 2>/dev/null || rm -rf "$staging"  # lost the race: the winner's is as good
        break
      fi
    done
    rm -rf "$staging"
  fi
  if [ -x "$UV_HOME/bin/uv" ]; then echo "$UV_HOME/bin/uv"; fi
}

venv_install() {
  local venv=$1; shift
  local uv arg uv_args=()
  uv=$(_uv_command "$venv")
  if [ -n "$uv" ]; then
    # uv ignores the upper bound of a package's Requires-Python (docs.astral.sh/uv/pip/compatibility,
    # "requires-python upper bounds"): what pip's --ignore-requires-python does for tfx 1.15 on 3.11.
    for arg in "$@"; do [ "$arg" = --ignore-requires-python ] || uv_args+=("$arg"); done
    # --compile-bytecode: pip compiles every installed module at install, uv does not by default
    # (docs.astral.sh/uv/pip/compatibility, "Bytecode compilation"). Without it each process compiles
    # TensorFlow's modules on import, and where PYTHONDONTWRITEBYTECODE is set (it is on this machine) on
    # every import: importing the pipeline took 186 s instead of 68 s, so the pipeline service missed
    # the stack's 180 s start (load 15, 2026-12-07).
    $uv pip install --quiet --compile-bytecode --python "$venv/bin/python" "${uv_args[@]}" && return 0
    echo "setup: uv failed; installing with pip instead" >&2
  fi
  [ -x "$venv/bin/pip" ] || "$venv/bin/python" -m ensurepip --upgrade >/dev/null  # a venv made without pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip<25" wheel
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

"""scripts/setup_installer.sh: the setup scripts install with uv, with the same requirement files and
constraints as pip would get, and fall back to pip when uv cannot be had or fails. Driven against a
stand-in virtualenv whose python records what it is asked (no package index, no real install)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UV_VERSION = re.search(r"^UV_VERSION=(\S+)$", (REPO / "scripts" / "setup_installer.sh").read_text(), re.M).group(1)
ARGS = ["--ignore-requires-python", "-c", "requirements/constraints.txt", "-r", "requirements/runtime.txt"]


def fake_uv(path: Path, log: Path, installs: bool = True) -> None:
    """A uv binary that logs each call's arguments and whose installs succeed if `installs`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/usr/bin/env bash\necho "uv $*" >> {log}\n{"exit 0" if installs else "exit 2"}\n')
    path.chmod(0o755)


def fake_python(path: Path, log: Path, uv_bootstraps: bool, uv_installs: bool) -> Path:
    """A python that logs each call's arguments; its `-m pip install --target DIR uv==...` puts a fake uv
    in DIR/bin if uv_bootstraps (fails otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""#!/usr/bin/env bash
echo "$*" >> {log}
if [ "$1 $2 $3" = "-m pip install" ] && [[ "$*" == *uv==* ]]; then
  {'' if uv_bootstraps else 'exit 1'}
  while [ "$1" != --target ]; do shift; done
  mkdir -p "$2/bin" && printf '#!/usr/bin/env bash\\necho "uv $*" >> {log}\\n{"exit 0" if uv_installs else "exit 2"}\\n' > "$2/bin/uv"
  chmod +x "$2/bin/uv"
fi
exit 0
""")
    path.chmod(0o755)
    return path


def fake_venv(tmp_path: Path, uv_present: bool, uv_bootstraps: bool, uv_installs: bool = True) -> Path:
    """A virtualenv whose python logs its calls; uv is already in the tools directory if uv_present,
    else the bootstrap (pip) gets it if uv_bootstraps; uv's installs succeed if uv_installs."""
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    fake_python(venv / "bin" / "python", log, uv_bootstraps, uv_installs)
    if uv_present:
        fake_uv(tmp_path / "tools" / f"uv-{UV_VERSION}" / "bin" / "uv", log, uv_installs)
    return venv


def install(venv: Path, **env) -> list[str]:
    command = f'. scripts/setup_installer.sh && venv_install {venv} {" ".join(ARGS)}'
    subprocess.run(["bash", "-c", command], cwd=REPO, check=True, capture_output=True,
                   # No uv on this PATH unless a test puts one; the base Python is the stand-in too (never
                   # the machine's, which would fetch uv from the index).
                   env={"PATH": "/usr/bin:/bin", "SETUP_TOOLS_DIR": str(venv.parent / "tools"),
                        "PYTHON": str(venv / "bin" / "python"), **env})
    return (venv.parent / "calls.log").read_text().splitlines()


def test_uv_installs_the_same_files_and_constraints(tmp_path):
    calls = install(fake_venv(tmp_path, uv_present=True, uv_bootstraps=False))
    installs = [c for c in calls if " install " in f" {c} "]
    # uv takes no --ignore-requires-python: it ignores Requires-Python upper bounds by design; it compiles
    # the modules to bytecode as pip does.
    assert installs == [f"uv pip install --quiet --compile-bytecode --python {tmp_path}/venv/bin/python "
                        "-c requirements/constraints.txt -r requirements/runtime.txt"]


def test_uv_is_bootstrapped_from_the_index_with_pip_when_missing(tmp_path):
    calls = install(fake_venv(tmp_path, uv_present=False, uv_bootstraps=True))
    assert any(c.startswith("-m pip install") and f"--target {tmp_path}/tools/uv-{UV_VERSION}." in c
               and f"uv=={UV_VERSION}" in c for c in calls)  # staged beside the tools directory, then renamed
    assert calls[-1].startswith("uv pip install --quiet --compile-bytecode")
    assert (tmp_path / "tools" / f"uv-{UV_VERSION}" / "bin" / "uv").exists()


def test_uv_is_bootstrapped_once_per_machine_not_once_per_virtualenv(tmp_path):
    install(fake_venv(tmp_path, uv_present=False, uv_bootstraps=True))
    (tmp_path / "calls.log").unlink()
    second = tmp_path / "second"
    fake_python(second / "venv" / "bin" / "python", second / "calls.log", uv_bootstraps=True, uv_installs=True)
    (second / "calls.log").touch()
    calls = install(second / "venv", SETUP_TOOLS_DIR=str(tmp_path / "tools"))
    assert not any("uv==" in c for c in calls)
    assert (tmp_path / "calls.log").read_text().startswith("uv pip install --quiet --compile-bytecode "
                                                            f"--python {second}/venv/bin/python")


def test_a_virtualenv_without_pip_bootstraps_uv_with_the_base_python(tmp_path):
    venv = fake_venv(tmp_path, uv_present=False, uv_bootstraps=False)  # its pip cannot install anything
    base = fake_python(tmp_path / "base" / "python", tmp_path / "calls.log", uv_bootstraps=True, uv_installs=True)
    calls = install(venv, PYTHON=str(base))
    assert calls[-1].startswith("uv pip install --quiet --compile-bytecode")


@pytest.mark.parametrize("case", ["uv cannot be had", "uv fails", "pip forced"])
def test_pip_installs_the_same_arguments_when_uv_is_not_used(tmp_path, case):
    venv = fake_venv(tmp_path, uv_present=case != "uv cannot be had", uv_bootstraps=False,
                     uv_installs=case != "uv fails")
    calls = install(venv, **({"SETUP_INSTALLER": "pip"} if case == "pip forced" else {}))
    assert calls[-1] == "-m pip install --quiet --disable-pip-version-check " + " ".join(ARGS)
    # uv is tried (run, or fetched) unless pip is forced
    assert (case == "pip forced") == (not any(c.startswith("uv ") or "uv==" in c for c in calls))


def test_a_uv_on_path_is_used_without_bootstrapping(tmp_path):
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text(f'#!/usr/bin/env bash\necho "uv $*" >> {tmp_path}/calls.log\n')
    (bin_dir / "uv").chmod(0o755)
    calls = install(fake_venv(tmp_path, uv_present=False, uv_bootstraps=False), PATH=f"{bin_dir}:/usr/bin:/bin")
    assert calls == [f"uv pip install --quiet --compile-bytecode --python {tmp_path}/venv/bin/python "
                     "-c requirements/constraints.txt -r requirements/runtime.txt"]

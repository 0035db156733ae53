"""scripts/setup_installer.sh: the setup scripts install with uv, with the same requirement files and
constraints as pip would get, and fall back to pip when uv cannot be had or fails. Driven against a
stand-in virtualenv whose python records what it is asked (no package index, no real install)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--ignore-requires-python", "-c", "requirements/constraints.txt", "-r", "requirements/runtime.txt"]


def fake_venv(tmp_path: Path, uv_present: bool, uv_bootstraps: bool, uv_installs: bool = True) -> Path:
    """bin/python logs each call's arguments; `-m uv` works if uv_present (or after pip installs it, if
    uv_bootstraps), and its installs succeed if uv_installs."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log, have_uv = tmp_path / "calls.log", tmp_path / "have-uv"
    if uv_present:
        have_uv.touch()
    script = f"""#!/usr/bin/env bash
echo "$*" >> {log}
if [ "$1 $2" = "-m uv" ]; then
  [ -f {have_uv} ] || exit 1
  [ "$3" = --version ] && exit 0
  {'exit 0' if uv_installs else 'exit 2'}
fi
if [ "$1 $2 $3" = "-m pip install" ] && [[ "$*" == *uv==* ]]; then
  {f'touch {have_uv}; exit 0' if uv_bootstraps else 'exit 1'}
fi
exit 0
"""
    (venv / "bin" / "python").write_text(script)
    (venv / "bin" / "python").chmod(0o755)
    return venv


def install(venv: Path, **env) -> list[str]:
    command = f'. scripts/setup_installer.sh && venv_install {venv} {" ".join(ARGS)}'
    subprocess.run(["bash", "-c", command], cwd=REPO, check=True, capture_output=True,
                   env={"PATH": "/usr/bin:/bin", **env})  # no uv on this PATH unless a test puts one
    return (venv.parent / "calls.log").read_text().splitlines()


def test_uv_installs_the_same_files_and_constraints(tmp_path):
    calls = install(fake_venv(tmp_path, uv_present=True, uv_bootstraps=False))
    installs = [c for c in calls if " install " in f" {c} "]
    # uv takes no --ignore-requires-python: it ignores Requires-Python upper bounds by design.
    assert installs == [f"-m uv pip install --quiet --python {tmp_path}/venv/bin/python "
                        "-c requirements/constraints.txt -r requirements/runtime.txt"]


def test_uv_is_bootstrapped_from_the_index_with_pip_when_missing(tmp_path):
    calls = install(fake_venv(tmp_path, uv_present=False, uv_bootstraps=True))
    assert any(c.startswith("-m pip install") and "uv==" in c for c in calls)
    assert calls[-1].startswith("-m uv pip install")


@pytest.mark.parametrize("case", ["uv cannot be had", "uv fails", "pip forced"])
def test_pip_installs_the_same_arguments_when_uv_is_not_used(tmp_path, case):
    venv = fake_venv(tmp_path, uv_present=case != "uv cannot be had", uv_bootstraps=False,
                     uv_installs=case != "uv fails")
    calls = install(venv, **({"SETUP_INSTALLER": "pip"} if case == "pip forced" else {}))
    assert calls[-1] == "-m pip install --quiet --disable-pip-version-check " + " ".join(ARGS)
    assert (case == "pip forced") == (not any(c.startswith("-m uv") for c in calls))


def test_a_uv_on_path_is_used_without_bootstrapping(tmp_path):
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text(f'#!/usr/bin/env bash\necho "uv $*" >> {tmp_path}/calls.log\n')
    (bin_dir / "uv").chmod(0o755)
    calls = install(fake_venv(tmp_path, uv_present=False, uv_bootstraps=False), PATH=f"{bin_dir}:/usr/bin:/bin")
    assert calls == [f"uv pip install --quiet --python {tmp_path}/venv/bin/python "
                     "-c requirements/constraints.txt -r requirements/runtime.txt"]

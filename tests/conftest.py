import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import shutil
import tempfile

EMULATOR_TOOLS_MISSING = [tool for tool in ("gcloud", "java") if not shutil.which(tool)]


def skip_without_emulators(items, path_part: str, layer: str) -> None:
    """Mark the tests under path_part skipped, saying plainly why, where the emulators can't run."""
    import pytest

    if not EMULATOR_TOOLS_MISSING:
        return
    skip = pytest.mark.skip(reason=f"{layer} tests need the Google Cloud CLI emulators and Java 17; "
                                   f"missing here: {', '.join(EMULATOR_TOOLS_MISSING)}")
    for item in items:
        if path_part in str(item.fspath):
            item.add_marker(skip)


def pytest_configure(config):
    """One scratch directory for every temporary file the session makes, removed when it ends.

    Ours, pytest's own, TensorFlow's autograph sources and Beam's and TFX's temporary directories all
    go through `tempfile`, here and in every process a test starts (they inherit TMPDIR); the processes
    a stack stops never run their exit hooks, so a whole suite used to leave ~250 entries in /tmp.
    """
    scratch = tempfile.mkdtemp(prefix="trainyard-tests-")
    config._trainyard_scratch = (scratch, os.environ.get("TMPDIR"), tempfile.tempdir)
    os.environ["TMPDIR"] = scratch
    tempfile.tempdir = scratch


def pytest_unconfigure(config):
    scratch, tmpdir, tempdir = getattr(config, "_trainyard_scratch", (None, None, None))
    if scratch is None:
        return
    if tmpdir is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = tmpdir
    tempfile.tempdir = tempdir
    shutil.rmtree(scratch, ignore_errors=True)

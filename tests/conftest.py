import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import shutil

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

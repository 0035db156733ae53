"""The whole local stack with real TFX: emulators, functions, the local pipeline service."""
from __future__ import annotations

import os
import shutil

import pytest

MISSING = [tool for tool in ("gcloud", "java") if not shutil.which(tool)]


def pytest_collection_modifyitems(config, items):
    if MISSING:
        skip = pytest.mark.skip(reason=f"e2e tests need the Google Cloud CLI emulators and Java 17; "
                                       f"missing here: {', '.join(MISSING)}")
        for item in items:
            if "tests/e2e/test_local_stack" in str(item.fspath):
                item.add_marker(skip)

"""The whole local stack with real TFX: emulators, functions, the local pipeline service."""
from __future__ import annotations

from tests.conftest import skip_without_emulators


def pytest_collection_modifyitems(config, items):
    skip_without_emulators(items, "tests/e2e/test_local_stack", "e2e")
    skip_without_emulators(items, "tests/e2e/test_champion_loop", "e2e")

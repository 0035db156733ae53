"""Each light function's requirements.txt is the lock of its requirements.in at the project's pins:
Cloud Functions installs it with plain `pip install -r` (no constraints), so nothing may float."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts import lock_functions

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("function", lock_functions.LIGHT_FUNCTIONS)
def test_the_lock_is_current(function):
    path = REPO / "functions" / function / "requirements.txt"
    assert path.read_text() == lock_functions.render(function), "run: python -m scripts.lock_functions"


@pytest.mark.parametrize("function", lock_functions.LIGHT_FUNCTIONS)
def test_every_line_is_an_exact_pin_of_the_constraints(function):
    pins = lock_functions.constraint_pins()
    for line in (REPO / "functions" / function / "requirements.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        name, version = re.fullmatch(r"([a-z0-9-]+)==(\S+)", line).groups()
        assert pins[name] == version, line


def test_the_closure_follows_dependencies_and_extras():
    locked = lock_functions.closure(["google-cloud-pubsub"])
    assert {"grpcio", "google-api-core", "protobuf", "proto-plus"} <= set(locked)
    assert "pytest" not in locked  # test-only extras are not installed

"""Waiting for something another process does: poll until it holds, or fail saying what never came."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.25) -> T:
    """The first truthy value `probe` returns within `timeout_s`; an AssertionError naming `what` otherwise."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")

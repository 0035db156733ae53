"""A function instance's dependencies (clients and service modules), built once, on first use,
under one lock. Cold starts stay light (nothing is built at import), and concurrent first requests
never import the same packages side by side (which can hand a thread a half-initialised module)."""
from __future__ import annotations

import threading
from typing import Any, Callable


class Once:
    def __init__(self, build: Callable[[], Any]):
        self._build = build
        self._value: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value

    def set(self, value: Any) -> None:
        """Use these dependencies instead (tests)."""
        with self._lock:
            self._value = value

    def warm_in_background(self) -> None:
        threading.Thread(target=self, daemon=True).start()

    def warm_after_fork(self) -> None:
        """Build in the background in each forked worker. functions-framework loads the source in
        gunicorn's master and then forks: a thread started at import would run in the master and
        leave its locks held, forever, in the worker."""
        import os

        os.register_at_fork(after_in_child=self.warm_in_background)

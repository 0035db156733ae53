"""Consumes `run-submit`: claim → snapshot → compile → submit (runs on Cloud Run from the GPU image)."""
from __future__ import annotations

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _here if os.path.isdir(os.path.join(_here, "shared")) else os.path.dirname(os.path.dirname(_here)))

import functions_framework  # noqa: E402

from shared.consumer import consume, event_data  # noqa: E402
from shared.settings import get_settings  # noqa: E402

import threading  # noqa: E402

_deps = None
# One lock for building the clients and for the warm-up import of TFX: two threads importing the
# same packages at once can see a partially initialised module.
_deps_lock = threading.Lock()


def deps():
    with _deps_lock:
        return _build_deps()


def _build_deps():
    global _deps
    if _deps is None:
        from shared.artifact_store import ArtifactStore
        from shared.pipelines import backend_from_settings
        from shared.repository import FirestoreRepository
        from shared.services.submission import Compiler

        settings = get_settings()
        _deps = dict(repo=FirestoreRepository(settings.project), backend=backend_from_settings(settings),
                     store=ArtifactStore(), compiler=Compiler.load(settings.compiler), settings=settings)
    return _deps


def handle_payload(payload) -> str:
    from shared.services import submission

    return submission.submit(submission.parse_message(payload), **deps())


def _warm_compiler() -> None:
    """Load the clients and TFX in the background at start, so the first run's Compile stage does
    not pay ~20 s. The submitter is the heavy consumer (Cloud Run, GPU image)."""
    with _deps_lock:
        try:
            _build_deps()
            import pipeline_compiler.pipeline  # noqa: F401
        except Exception:  # noqa: BLE001 - a compiler that cannot load fails its run with the real error
            pass


if os.environ.get("TRAINYARD_WARM_COMPILER", "1") == "1" and get_settings().compiler.startswith("pipeline_compiler"):
    threading.Thread(target=_warm_compiler, daemon=True).start()


@functions_framework.cloud_event
def on_run_submit(cloud_event):
    consume(event_data(cloud_event), handle_payload, "submitter")

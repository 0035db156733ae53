"""The Vertex AI GAPIC client (`google.cloud.aiplatform_v1`), loaded on first use: it takes about two
seconds to import, which no light function's cold start should pay."""
from __future__ import annotations

import importlib

from shared.adapters.lazy_client import GapicAdapter, gapic_client


def gapic():
    """The `google.cloud.aiplatform_v1` module (imported now, the first time it is needed)."""
    return importlib.import_module("google.cloud.aiplatform_v1")


class RegionalService(GapicAdapter):
    """A Vertex AI service client for one project and region, created once, lazily. Subclasses name
    the client class (e.g. "PipelineServiceClient"); tests pass a fake `client`.

    `emulator_host` (TRAINYARD_VERTEX_EMULATOR_HOST) points the real client at a stand-in over plain
    gRPC, as PUBSUB_EMULATOR_HOST does for Pub/Sub; unset, it is Vertex's regional endpoint."""

    CLIENT = ""

    def __init__(self, project: str, region: str, client=None, emulator_host: str = ""):
        super().__init__(client, emulator_host)
        self.project = project
        self.region = region

    def _make_client(self):
        return gapic_client(getattr(gapic(), self.CLIENT), self.emulator_host,
                            client_options={"api_endpoint": f"{self.region}-aiplatform.googleapis.com"})

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

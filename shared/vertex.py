"""Vertex AI's official GAPIC client, `google.cloud.aiplatform_v1`, loaded on first use: it takes
about two seconds to import, which no light function's cold start should pay."""
from __future__ import annotations

import importlib


def gapic():
    """The `google.cloud.aiplatform_v1` module (imported now, the first time it is needed)."""
    return importlib.import_module("google.cloud.aiplatform_v1")


class RegionalService:
    """A Vertex AI service client for one project and region, created once, lazily. Subclasses name
    the client class (e.g. "PipelineServiceClient"); tests pass a fake `client`."""

    CLIENT = ""

    def __init__(self, project: str, region: str, client=None):
        self.project = project
        self.region = region
        self._client = client

    @property
    def client(self):
        if self._client is None:
            self._client = getattr(gapic(), self.CLIENT)(
                client_options={"api_endpoint": f"{self.region}-aiplatform.googleapis.com"})
        return self._client

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

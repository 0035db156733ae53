"""The Vertex AI GAPIC client (`google.cloud.aiplatform_v1`), loaded on first use: it takes about two
seconds to import, which no light function's cold start should pay."""
from __future__ import annotations

import importlib


def gapic():
    """The `google.cloud.aiplatform_v1` module (imported now, the first time it is needed)."""
    return importlib.import_module("google.cloud.aiplatform_v1")


class RegionalService:
    """A Vertex AI service client for one project and region, created once, lazily. Subclasses name
    the client class (e.g. "PipelineServiceClient"); tests pass a fake `client`.

    `emulator_host` (TRAINYARD_VERTEX_EMULATOR_HOST) points the real client at a stand-in over plain
    gRPC, as PUBSUB_EMULATOR_HOST does for Pub/Sub; unset, it is Vertex's regional endpoint."""

    CLIENT = ""

    def __init__(self, project: str, region: str, client=None, emulator_host: str = ""):
        self.project = project
        self.region = region
        self.emulator_host = emulator_host
        self._client = client

    @property
    def client(self):
        if self._client is None:
            client_class = getattr(gapic(), self.CLIENT)
            if self.emulator_host:
                import grpc

                transport = client_class.get_transport_class("grpc")(channel=grpc.insecure_channel(self.emulator_host))
                self._client = client_class(transport=transport)
            else:
                self._client = client_class(client_options={"api_endpoint": f"{self.region}-aiplatform.googleapis.com"})
        return self._client

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

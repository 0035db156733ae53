"""Google Cloud clients made on first use, once per process.

Importing and building a `google.cloud.*` client costs a light function's cold start up to seconds, and
most requests need none (a read from Firestore needs no Pub/Sub client), so every adapter makes its client
when it is first used; threads (functions-framework serves requests on several) share the one made."""
from __future__ import annotations

import threading
from typing import Callable, Generic, Optional, TypeVar

T = TypeVar("T")


class LazyClient(Generic[T]):
    def __init__(self, make: Callable[[], T], given: Optional[T] = None):
        self._make = make
        self._value = given  # a client handed in (tests, or one shared by the composition root)
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value

    @property
    def made(self) -> Optional[T]:
        """The client if it was made (or given), without making it."""
        return self._value


def gapic_client(client_class, emulator_host: str = "", **options):
    """A GAPIC client: over plain gRPC to a stand-in at `emulator_host` (how the Pub/Sub and Firestore
    emulators are reached, and how the rehearsal reaches its gRPC fakes of Vertex AI and Cloud Scheduler),
    otherwise to Google's endpoint with `options` (e.g. client_options for a regional endpoint)."""
    if emulator_host:
        import grpc

        transport = client_class.get_transport_class("grpc")(channel=grpc.insecure_channel(emulator_host))
        return client_class(transport=transport)
    return client_class(**options)


def cloud_client(module: str, client_class: str) -> Callable[[], object]:
    """A maker of `google.cloud.<module>.<client_class>()` that imports the library only when called."""
    def make():
        import importlib

        return getattr(importlib.import_module(f"google.cloud.{module}"), client_class)()
    return make


class GapicAdapter:
    """An adapter over one GAPIC client, made on first use (`_make_client`, which subclasses give) or
    handed in (tests pass a fake `client`); `emulator_host` points it at a stand-in over plain gRPC."""

    def __init__(self, client=None, emulator_host: str = ""):
        self.emulator_host = emulator_host
        self._client = LazyClient(self._make_client, client)

    def _make_client(self):
        raise NotImplementedError

    @property
    def client(self):
        return self._client.get()

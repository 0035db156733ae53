"""The artifact store: a run's files under gs://… in the cloud or a local directory on one machine.
The URI scheme picks the side, so the same code reads both."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from shared.adapters.lazy_client import LazyClient, cloud_client


class ArtifactStore:
    def __init__(self, storage_client=None):
        self._storage = LazyClient(cloud_client("storage", "Client"), storage_client)

    @property
    def storage(self):
        return self._storage.get()

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        return bucket, name

    def write_text(self, uri: str, text: str) -> None:
        if uri.startswith("gs://"):
            bucket, name = self._split(uri)
            self.storage.bucket(bucket).blob(name).upload_from_string(text, content_type="application/json")
            return
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)  # readers never see half a file

    def copy_file(self, local_path: str, uri: str) -> None:
        self.write_text(uri, Path(local_path).read_text())

    def read_text(self, uri: str) -> Optional[str]:
        if uri.startswith("gs://"):
            from google.api_core import exceptions

            bucket, name = self._split(uri)
            try:
                return self.storage.bucket(bucket).blob(name).download_as_text()
            except exceptions.NotFound:
                return None
        path = Path(uri)
        return path.read_text() if path.is_file() else None

    def delete_tree(self, uri: str) -> int:
        if uri.startswith("gs://"):
            bucket, prefix = self._split(uri)
            blobs = list(self.storage.list_blobs(bucket, prefix=prefix.rstrip("/") + "/"))
            for blob in blobs:
                blob.delete()
            return len(blobs)
        path = Path(uri)
        if not path.exists():
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count

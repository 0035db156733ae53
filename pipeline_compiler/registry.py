"""Registering a model version: the Pusher's code, used by the pipeline's Pusher and by push-anyway
(the run-commands consumer, which runs from the pipeline image) alike, so both register the same way.

- Vertex AI Model Registry: a new version of the model named after the run, with Trainyard's serving
  container and its routes (GAPIC `ModelServiceClient`, imported lazily).
- local: {registry_dir}/{run_name}/versions/{n}/ (TensorFlow's gfile, imported lazily).

`shared/` never imports this module; run-commands hands `build_registrar` to the composition root.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
from datetime import datetime, timezone

from shared.contract import results
from shared.contract.labels import label_value, run_labels
from shared.errors import PermanentError, TransientError
from shared.adapters.serving import HEALTH_ROUTE, PREDICT_ROUTE, SERVING_PORT, Registrar
from shared.adapters.serving.vertex import map_error
from shared.adapters.vertex_gapic import RegionalService, gapic
from shared.services.model_cards import card_uri


def build_registrar(settings) -> Registrar:
    """The registrar of the configured backend (shared/composition.py builds it through this)."""
    if settings.pipeline_backend == "vertex":
        return VertexRegistrar(settings.project, settings.region, settings.serving_image,
                               emulator_host=settings.vertex_emulator_host)
    return LocalRegistrar(settings.local_registry_dir)


def write_json(path: str, text: str) -> None:
    import tensorflow as tf

    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(text)


def register_local(spec, serving_model_uri: str, registry_dir: str) -> results.RegistryEntry:
    """{registry_dir}/{run_name}/versions/{n}/ holds a copy of the SavedModel and its metadata.json.

    Idempotent per run attempt: a repeated push of the same attempt returns the version it made.
    """
    import tensorflow as tf

    from pipeline_compiler.modules.data import copy_tree

    model_dir = os.path.join(registry_dir, label_value(spec.run_name))
    versions_dir = os.path.join(model_dir, "versions")
    tf.io.gfile.makedirs(versions_dir)
    labels = run_labels(spec)
    existing = sorted((int(v) for v in tf.io.gfile.listdir(versions_dir) if v.strip("/").isdigit()))
    for version in existing:
        metadata_path = os.path.join(versions_dir, str(version), "metadata.json")
        if tf.io.gfile.exists(metadata_path):
            with tf.io.gfile.GFile(metadata_path) as handle:
                metadata = json.load(handle)
            if metadata.get("labels") == labels:
                return results.RegistryEntry.model_validate(metadata["entry"])
    version = (existing[-1] + 1) if existing else 1
    version_dir = os.path.join(versions_dir, str(version))
    copy_tree(serving_model_uri, os.path.join(version_dir, "saved_model"))
    entry = results.RegistryEntry(model_display_name=spec.run_name, model_resource_name=model_dir,
                            model_version_id=str(version), serving_model_uri=os.path.join(version_dir, "saved_model"),
                            registered_at=datetime.now(timezone.utc))
    write_json(os.path.join(version_dir, "metadata.json"),
               json.dumps({"labels": labels, "run_id": spec.run_id, "entry": entry.model_dump(mode="json")}, indent=2))
    return entry


class GfileStore:
    """The run's files through TensorFlow's gfile (gs:// or local), as the pipeline's components read them:
    the text store model cards are written with (shared/services/model_cards.py)."""

    @staticmethod
    def read_text(uri: str):
        import tensorflow as tf

        if not tf.io.gfile.exists(uri):
            return None
        with tf.io.gfile.GFile(uri) as handle:
            return handle.read()

    @staticmethod
    def write_text(uri: str, text: str) -> None:
        write_json(uri, text)


class LocalRegistrar:
    """Registers into the local registry exactly as the pipeline's Pusher does (register_local)."""

    serving_image = None  # the local prediction server (scripts/prediction_server.py)

    def __init__(self, registry_dir: str):
        self.registry_dir = registry_dir

    def register(self, spec, serving_model_uri: str) -> results.RegistryEntry:
        if not os.path.isfile(os.path.join(serving_model_uri, "saved_model.pb")):
            raise PermanentError(f"no SavedModel at {serving_model_uri}", stage="Push")
        return register_local(spec, serving_model_uri, self.registry_dir)


class VertexRegistrar(RegionalService):
    """A new version of the model named after the run (its first version is the parent), labelled with
    the run and attempt, with Trainyard's serving container and its routes. Used by the pipeline's
    Pusher and by push-anyway alike, so both register the same way. Idempotent per attempt: a retried
    Pusher finds the version its attempt made (ModelService.ListModelVersions)."""

    CLIENT = "ModelServiceClient"

    def __init__(self, project: str, region: str, serving_image: str, client=None, emulator_host: str = "",
                 wait_s: float = 1800):
        super().__init__(project, region, client, emulator_host)
        self.serving_image = serving_image
        self.wait_s = wait_s

    def register(self, spec, serving_model_uri: str) -> results.RegistryEntry:
        from google.api_core import exceptions

        aiplatform_v1 = gapic()
        labels = run_labels(spec)
        try:
            parent = self._model_named(spec.run_name)
            if parent is not None:
                mine = f'labels.trainyard-run-id="{labels["trainyard-run-id"]}" AND labels.trainyard-attempt="{spec.attempt}"'
                for version in self.client.list_model_versions(request={"name": parent.name, "filter": mine}):
                    return self._entry(spec, version.name, version.version_id, serving_model_uri)
            model = aiplatform_v1.Model(
                display_name=spec.run_name, artifact_uri=serving_model_uri, labels=labels,
                version_aliases=["default"],
                version_description=f"Trainyard run {spec.run_id} attempt {spec.attempt}; model card: {card_uri(spec)}",
                container_spec=aiplatform_v1.ModelContainerSpec(
                    image_uri=self.serving_image, predict_route=PREDICT_ROUTE, health_route=HEALTH_ROUTE,
                    ports=[aiplatform_v1.Port(container_port=SERVING_PORT)]))
            operation = self.client.upload_model(request={"parent": self.parent, "model": model,
                                                          "parent_model": parent.name if parent else ""})
            uploaded = operation.result(timeout=self.wait_s)
        except (TimeoutError, concurrent.futures.TimeoutError):
            raise TransientError("the model upload is still running; a retry will find its version") from None
        except exceptions.GoogleAPICallError as exc:
            raise map_error(exc, "registering the model", stage="Push") from exc
        return self._entry(spec, uploaded.model, uploaded.model_version_id, serving_model_uri)

    def _model_named(self, display_name: str):
        for model in self.client.list_models(request={"parent": self.parent, "filter": f'display_name="{display_name}"'}):
            return model
        return None

    @staticmethod
    def _entry(spec, model_name: str, version_id: str, serving_model_uri: str) -> results.RegistryEntry:
        return results.RegistryEntry(model_display_name=spec.run_name, model_resource_name=model_name.split("@")[0],
                                     model_version_id=str(version_id), serving_model_uri=serving_model_uri,
                                     registered_at=datetime.now(timezone.utc))

"""Load a pushed SavedModel and answer a batch of JSON instances with one of its signatures: the code
the prediction container (model_server/vertex.py) and the local prediction server
(scripts/prediction_server.py) share. For a retrieval run the serving signature takes the raw query
features and returns the top-K candidate `ids` and `scores` of the exported index (ScaNN by default).

TensorFlow is imported with the first model, not with this module.
"""
from __future__ import annotations

import threading
from typing import Any, Optional

MAX_INSTANCES = 1000
DEFAULT_SIGNATURE = "serving_default"
REQUEST_SHAPE = "send {\"instances\": [{feature: value, ...}, ...]}"


class BadRequest(Exception):
    """The request is wrong (HTTP 400); the message says how."""


class ModelLoadError(RuntimeError):
    """The SavedModel could not be loaded; the message names the model and the cause."""


def load_saved_model(uri: str):
    """tf.saved_model.load, with ScaNN's TensorFlow ops registered first.

    The trainer exports the ScaNN index into the serving graph (SaveOptions(namespace_whitelist=
    ["Scann"])); its ops (Scann>ScannSearchBatched, ...) live in scann's shared library, which only
    `import scann` loads. Without it the load fails with "Op type not registered 'Scann>...'"
    (tensorflow/recommenders#216) — the reason Vertex's prebuilt TF containers cannot serve it.
    """
    import tensorflow as tf

    try:
        import scann  # noqa: F401  registers the Scann>* ops
        scann_error = None
    except ImportError as exc:  # a BruteForce export still loads without it
        scann_error = exc
    try:
        return tf.saved_model.load(uri)
    except Exception as exc:  # noqa: BLE001 - every cause becomes one clear message
        message = f"cannot load the SavedModel at {uri}: {type(exc).__name__}: {str(exc).strip()[:2000]}"
        if "Scann>" in str(exc) and scann_error is not None:
            message += f" (the model uses ScaNN's TF ops and `import scann` failed: {scann_error})"
        raise ModelLoadError(message) from exc


class ModelCache:
    """SavedModels by path, loaded once (TensorFlow is imported on the first load, not at start)."""

    def __init__(self):
        self.models: dict[str, object] = {}
        self.lock = threading.Lock()

    def get(self, saved_model_uri: str):
        with self.lock:
            if saved_model_uri not in self.models:
                self.models[saved_model_uri] = load_saved_model(saved_model_uri)
            return self.models[saved_model_uri]


def parse_request(body: Any) -> tuple[list[dict], dict]:
    """Vertex's request body, `{"instances": [{feature: value, ...}, ...], "parameters"?: {...}}`, checked:
    returns (instances, parameters) or raises BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest(REQUEST_SHAPE + " as a JSON object")
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances or not all(isinstance(i, dict) for i in instances):
        raise BadRequest(REQUEST_SHAPE)
    if len(instances) > MAX_INSTANCES:
        raise BadRequest(f"at most {MAX_INSTANCES} instances per request")
    parameters = body.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise BadRequest("\"parameters\" must be a JSON object")
    return instances, parameters


def _python(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_python(v) for v in value]
    return value


def predict(model, instances: list[dict], signature_name: Optional[str] = None) -> list[dict]:
    """Call a signature (serving_default unless named) on a batch of instances (one dict of features each)."""
    import tensorflow as tf

    signature_name = signature_name or DEFAULT_SIGNATURE
    if signature_name not in model.signatures:
        raise BadRequest(f"the model has no signature {signature_name!r}; it has {sorted(model.signatures)}")
    signature = model.signatures[signature_name]
    specs = signature.structured_input_signature[1]
    missing = sorted({name for name in specs for inst in instances if name not in inst})
    if missing:
        raise BadRequest(f"every instance needs the features {sorted(specs)}; missing {missing}")

    def value(name, spec, raw):
        # JSON clients (and CSV rows) often send numbers as strings: "1704092581" for an int64 feature.
        if isinstance(raw, str) and (spec.dtype.is_integer or spec.dtype.is_floating):
            try:
                return int(raw) if spec.dtype.is_integer else float(raw)
            except ValueError:
                raise BadRequest(f"feature {name!r} must be a {spec.dtype.name} number, not {raw!r}") from None
        return raw

    try:
        batch = {name: tf.constant([value(name, spec, inst[name]) for inst in instances], dtype=spec.dtype)
                 for name, spec in specs.items()}
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"an instance has a value of the wrong type: {exc}") from None
    outputs = {key: value.numpy() for key, value in signature(**batch).items()}
    return [{key: _python(value[i].tolist()) for key, value in outputs.items()} for i in range(len(instances))]

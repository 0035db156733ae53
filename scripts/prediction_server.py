"""The local prediction server: the local side of a Vertex AI Endpoint.

It serves the local endpoints the run-commands consumer deploys (shared/local_models.py): each
`{endpoints_dir}/{endpoint_id}.json` lists deployed models (pushed SavedModels) and a traffic split.
Models are loaded with TensorFlow and called through their `serving_default` signature — for a
retrieval run: query features in, top-K candidate `ids` and `scores` out. Vertex's request and
response shapes, so clients do not care which side they talk to:

    POST /v1/endpoints/{id}:predict   {"instances": [{"customer_id": "c1", ...}], "deployed_model_id"?: "..."}
                                      → {"predictions": [{"ids": [...], "scores": [...]}], "deployed_model_id": ...}
    POST /v1/endpoints/{id}:load      (re)load the endpoint's models now → {"endpoint_id", "deployed_models"}
    GET  /v1/endpoints/{id}           the endpoint and which models are loaded
    GET  /health

Run it under functions-framework (the local stack: `--target serve --signature-type http`) or
standalone: `python -m scripts.prediction_server --port 8089`.
"""
from __future__ import annotations

import os
import random
import sys
import threading

_repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _repo not in sys.path:
    sys.path.insert(0, _repo)

from flask import Flask, jsonify, request  # noqa: E402

from shared.local_models import read_endpoint  # noqa: E402
from shared.settings import get_settings  # noqa: E402

MAX_INSTANCES = 1000


class BadRequest(Exception):
    pass


class ModelCache:
    """SavedModels by path, loaded once (TensorFlow is imported on the first load, not at start)."""

    def __init__(self):
        self.models: dict[str, object] = {}
        self.lock = threading.Lock()

    def get(self, saved_model_uri: str):
        with self.lock:
            if saved_model_uri not in self.models:
                import tensorflow as tf

                try:  # ScaNN-indexed models need ScaNN's TF ops registered before loading
                    import scann  # noqa: F401
                except ImportError:
                    pass
                self.models[saved_model_uri] = tf.saved_model.load(saved_model_uri)
            return self.models[saved_model_uri]


def _python(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_python(v) for v in value]
    return value


def predict(model, instances: list[dict]) -> list[dict]:
    """Call serving_default on a batch of instances (one dict of features each)."""
    import tensorflow as tf

    signature = model.signatures["serving_default"]
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


def create_app(endpoints_dir: str | None = None) -> Flask:
    endpoints_dir = endpoints_dir or get_settings().local_endpoints_dir
    cache = ModelCache()
    app = Flask("trainyard-prediction-server")

    def endpoint_or_404(endpoint_id: str) -> dict:
        endpoint = read_endpoint(endpoints_dir, endpoint_id)
        if endpoint is None:
            raise LookupError(f"no endpoint {endpoint_id}")
        return endpoint

    @app.errorhandler(LookupError)
    def not_found(exc):
        return jsonify(error="not_found", message=str(exc)), 404

    @app.errorhandler(BadRequest)
    def bad_request(exc):
        return jsonify(error="invalid_request", message=str(exc)), 400

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    @app.get("/v1/endpoints/<endpoint_id>")
    def get_endpoint(endpoint_id):
        endpoint = endpoint_or_404(endpoint_id)
        for model in endpoint["deployed_models"]:
            model["loaded"] = model["saved_model_uri"] in cache.models
        return jsonify(endpoint)

    @app.post("/v1/endpoints/<endpoint_id>:load")
    def load(endpoint_id):
        endpoint = endpoint_or_404(endpoint_id)
        loaded = []
        for model in endpoint["deployed_models"]:
            try:
                cache.get(model["saved_model_uri"])
            except (OSError, ValueError) as exc:
                raise BadRequest(f"deployed model {model['id']}: cannot load {model['saved_model_uri']}: {exc}") from None
            loaded.append(model["id"])
        return jsonify(endpoint_id=endpoint_id, deployed_models=loaded, traffic_split=endpoint["traffic_split"])

    @app.post("/v1/endpoints/<endpoint_id>:predict")
    def predict_route(endpoint_id):
        endpoint = endpoint_or_404(endpoint_id)
        body = request.get_json(silent=True) or {}
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances or not all(isinstance(i, dict) for i in instances):
            raise BadRequest("send {\"instances\": [{feature: value, ...}, ...]}")
        if len(instances) > MAX_INSTANCES:
            raise BadRequest(f"at most {MAX_INSTANCES} instances per request")
        models = {m["id"]: m for m in endpoint["deployed_models"]}
        chosen = body.get("deployed_model_id")
        if chosen is None:  # the traffic split decides, as on Vertex
            live = {k: v for k, v in endpoint["traffic_split"].items() if v > 0 and k in models}
            if not live:
                raise BadRequest(f"endpoint {endpoint_id} has no model taking traffic")
            chosen = random.choices(list(live), weights=list(live.values()))[0]
        if chosen not in models:
            raise BadRequest(f"endpoint {endpoint_id} has no deployed model {chosen}")
        predictions = predict(cache.get(models[chosen]["saved_model_uri"]), instances)
        return jsonify(predictions=predictions, deployed_model_id=chosen)

    return app


_app = None


def serve(flask_request):
    """functions-framework HTTP target (the local stack runs the server this way)."""
    global _app
    if _app is None:
        _app = create_app()
    with _app.request_context(flask_request.environ):
        return _app.full_dispatch_request()


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Trainyard's local prediction server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--endpoints-dir", default=None)
    args = parser.parse_args(argv)
    create_app(args.endpoints_dir).run(host=args.host, port=args.port, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The local prediction server: the local side of a Vertex AI Endpoint.

It serves the local endpoints the run-commands consumer deploys (shared/adapters/serving/local.py): each
`{endpoints_dir}/{endpoint_id}.json` lists deployed models (pushed SavedModels) and a traffic split.
Models are loaded and called by the prediction container's own code (model_server/savedmodel.py)
through their `serving_default` signature (or `parameters.signature_name`) — for a retrieval run:
query features in, top-K candidate `ids` and `scores` out. Vertex's request and response shapes, so
clients do not care which side they talk to:

    POST /v1/endpoints/{id}:predict   {"instances": [{"customer_id": "c1", ...}], "deployed_model_id"?: "..."}
                                      → {"predictions": [{"ids": [...], "scores": [...]}], "deployed_model_id": ...}
    POST /v1/endpoints/{id}:load      (re)load the endpoint's models now → {"endpoint_id", "deployed_models"}
    GET  /v1/endpoints/{id}           the endpoint and which models are loaded
    GET  /v1/endpoints/{id}/metrics?deployed_model_id=…&since=…&until=…
                                      what that model served in the window (model_server/counters.py):
                                      → {"requests", "errors", "p95_latency_ms"}; a canary's watch reads it
    GET  /health

Run it under functions-framework (the local stack: `--target serve --signature-type http`) or
standalone: `python -m scripts.prediction_server --port 8089`.
"""
from __future__ import annotations

import os
import random
import sys
import time
from datetime import datetime, timezone

_repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _repo not in sys.path:
    sys.path.insert(0, _repo)

from flask import Flask, jsonify, request  # noqa: E402

# The loading and predict logic is the prediction container's own (model_server/savedmodel.py), so a
# local endpoint answers exactly as a Vertex endpoint running serving_image/ does.
from model_server.savedmodel import (MAX_INSTANCES, BadRequest, ModelCache, ModelLoadError,  # noqa: E402,F401
                                     parse_request, predict)
from model_server.counters import ServingCounters  # noqa: E402
from shared.adapters.serving.local import read_endpoint  # noqa: E402
from shared.settings import get_settings  # noqa: E402


def create_app(endpoints_dir: str | None = None) -> Flask:
    endpoints_dir = endpoints_dir or get_settings().local_endpoints_dir
    cache = ModelCache()
    counters = ServingCounters()
    app = Flask("trainyard-prediction-server")
    app.config["counters"] = counters

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
            except (OSError, ValueError, ModelLoadError) as exc:
                raise BadRequest(f"deployed model {model['id']}: cannot load {model['saved_model_uri']}: {exc}") from None
            loaded.append(model["id"])
        return jsonify(endpoint_id=endpoint_id, deployed_models=loaded, traffic_split=endpoint["traffic_split"])

    @app.post("/v1/endpoints/<endpoint_id>:predict")
    def predict_route(endpoint_id):
        endpoint = endpoint_or_404(endpoint_id)
        body = request.get_json(silent=True) or {}
        instances, parameters = parse_request(body)
        models = {m["id"]: m for m in endpoint["deployed_models"]}
        chosen = body.get("deployed_model_id")
        if chosen is None:  # the traffic split decides, as on Vertex
            live = {k: v for k, v in endpoint["traffic_split"].items() if v > 0 and k in models}
            if not live:
                raise BadRequest(f"endpoint {endpoint_id} has no model taking traffic")
            chosen = random.choices(list(live), weights=list(live.values()))[0]
        if chosen not in models:
            raise BadRequest(f"endpoint {endpoint_id} has no deployed model {chosen}")
        signature = parameters.get("signature_name")
        started, failed = time.monotonic(), True
        try:
            predictions = predict(cache.get(models[chosen]["saved_model_uri"]), instances,
                                  signature if isinstance(signature, str) else None)
            failed = False
        except BadRequest:
            failed = False  # the caller's error, not the model's
            raise
        except Exception as exc:  # noqa: BLE001 - a serving error of this model: counted, answered 500
            return jsonify(error="prediction_failed", message=f"{type(exc).__name__}: {exc}",
                           deployed_model_id=chosen), 500
        finally:
            counters.record(endpoint_id, chosen, datetime.now(timezone.utc), 1000 * (time.monotonic() - started), failed)
        return jsonify(predictions=predictions, deployed_model_id=chosen)

    @app.get("/v1/endpoints/<endpoint_id>/metrics")
    def metrics(endpoint_id):
        chosen = request.args.get("deployed_model_id")
        if not chosen:
            raise BadRequest("deployed_model_id is required")
        try:
            since, until = (datetime.fromisoformat(request.args[k]) if request.args.get(k) else None
                            for k in ("since", "until"))
        except ValueError as exc:
            raise BadRequest(f"since/until must be ISO 8601 times: {exc}") from None
        return jsonify(endpoint_id=endpoint_id, **counters.summary(endpoint_id, chosen, since, until))

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

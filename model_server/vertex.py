"""The prediction container Vertex AI runs for every Trainyard model (serving_image/Dockerfile's CMD):
`python -m model_server.vertex`.

Vertex's custom-container contract (https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements):
- listen on 0.0.0.0:$AIP_HTTP_PORT (8080 unless the model's container spec names another port);
- answer GET $AIP_HEALTH_ROUTE with 200 only when ready to predict: here, once the model is loaded;
  503 while it loads (in the background, so the port is open at once for the liveness probe) or
  when loading failed (the body says why);
- answer POST $AIP_PREDICT_ROUTE: `{"instances": [...], "parameters"?: {...}}` -> `{"predictions": [...]}`,
  one prediction per instance, in order; 400 `{"error": "..."}` for a malformed request;
- the model artifacts are at $AIP_STORAGE_URI (Vertex copies the model's artifact_uri there, a gs://
  directory; tf.io.gfile reads it with the container's credentials).

Registration (pipeline_compiler/registry.py VertexRegistrar) passes the routes and port of shared/adapters/serving/__init__.py
(PREDICT_ROUTE, HEALTH_ROUTE, SERVING_PORT); the defaults below are the same values, for a container
started by hand. `parameters` may name another signature of the SavedModel:
`{"signature_name": "rank"}` (a multitask export's ranking signature), and `{"k": 10}` keeps the first
10 of the ranked ids and scores (what a batch prediction job passes as its model_parameters).

AIP_* are Vertex's variables, not Trainyard settings: this image holds no `shared/`, so they are read
here. Served by gunicorn (one worker process holding one copy of the model, several threads).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Optional

from model_server.batch import check_k, truncate
from model_server.savedmodel import BadRequest, ModelLoadError, load_saved_model, parse_request, predict

CONTRACT = "https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements"
DEFAULT_PORT = 8080
DEFAULT_PREDICT_ROUTE = "/predict"
DEFAULT_HEALTH_ROUTE = "/health"
PARAMETERS = ("signature_name", "k")


def _log(severity: str, message: str, **fields) -> None:
    """One JSON line on stderr: Cloud Logging parses it (severity, message) for the endpoint's logs."""
    print(json.dumps({"severity": severity, "message": message, **fields}), file=sys.stderr, flush=True)


class Loader:
    """Loads the model once, in a background thread, and says whether it is ready."""

    def __init__(self, uri: str):
        self.uri = uri
        self.model = None
        self.error: Optional[str] = None
        self.done = threading.Event()

    def start(self) -> "Loader":
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()
        return self

    def _load(self) -> None:
        started = time.monotonic()
        try:
            if not self.uri:
                raise ModelLoadError("AIP_STORAGE_URI is not set: register the model with an artifact_uri "
                                     "(the directory holding saved_model.pb)")
            model = load_saved_model(self.uri)
            self.model = model
            _log("INFO", "model loaded", model=self.uri, signatures=sorted(model.signatures),
                 seconds=round(time.monotonic() - started, 1))
        except Exception as exc:  # noqa: BLE001 - reported by the health route and the log
            self.error = str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
            _log("ERROR", "model not loaded", model=self.uri, error=self.error)
        finally:
            self.done.set()


def contract(environ=None) -> dict:
    """The port, routes and model location Vertex gives the container."""
    environ = os.environ if environ is None else environ
    return {"port": int(environ.get("AIP_HTTP_PORT") or DEFAULT_PORT),
            "predict_route": environ.get("AIP_PREDICT_ROUTE") or DEFAULT_PREDICT_ROUTE,
            "health_route": environ.get("AIP_HEALTH_ROUTE") or DEFAULT_HEALTH_ROUTE,
            "storage_uri": environ.get("AIP_STORAGE_URI", "")}


def create_app(storage_uri: Optional[str] = None, predict_route: Optional[str] = None,
               health_route: Optional[str] = None, loader: Optional[Loader] = None):
    """The WSGI app; starts loading the model unless a loader is given."""
    from flask import Flask, jsonify, request

    given = contract()
    storage_uri = given["storage_uri"] if storage_uri is None else storage_uri
    predict_route = predict_route or given["predict_route"]
    health_route = health_route or given["health_route"]
    loader = loader or Loader(storage_uri).start()
    app = Flask("trainyard-serving")
    app.config["loader"] = loader

    def not_ready():
        if loader.error:
            return jsonify(status="failed", model=loader.uri, error=loader.error), 503
        return jsonify(status="loading", model=loader.uri), 503

    @app.errorhandler(BadRequest)
    def bad_request(exc):
        return jsonify(error=str(exc)), 400

    @app.get(health_route, endpoint="health")
    def health():
        if loader.model is None:
            return not_ready()
        return jsonify(status="ok", model=loader.uri)

    @app.post(predict_route, endpoint="predict")
    def predict_route_():
        if loader.model is None:
            return not_ready()
        instances, parameters = parse_request(request.get_json(silent=True))
        unknown = sorted(set(parameters) - set(PARAMETERS))
        if unknown:
            raise BadRequest(f"unknown parameters {unknown}; this server takes {list(PARAMETERS)}")
        signature = parameters.get("signature_name")
        if signature is not None and not isinstance(signature, str):
            raise BadRequest("\"signature_name\" must be a string")
        k = check_k(parameters.get("k"))  # a batch job's own k (BatchPredictionJob.model_parameters)
        return jsonify(predictions=[truncate(p, k) for p in predict(loader.model, instances, signature)])

    return app


def main(argv: Optional[list[str]] = None) -> int:
    from gunicorn.app.base import BaseApplication

    given = contract()
    parser = argparse.ArgumentParser(description="Trainyard's prediction container (Vertex AI custom container)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=given["port"], help="default: $AIP_HTTP_PORT or 8080")
    parser.add_argument("--model-uri", default=None, help="default: $AIP_STORAGE_URI")
    parser.add_argument("--threads", type=int, default=8, help="concurrent requests of the one worker")
    args = parser.parse_args(argv)

    class Server(BaseApplication):
        def load_config(self):
            for key, value in {"bind": f"{args.host}:{args.port}", "workers": 1, "worker_class": "gthread",
                               "threads": args.threads, "timeout": 120, "graceful_timeout": 30}.items():
                self.cfg.set(key, value)

        def load(self):  # in the worker: the master never imports TensorFlow
            return create_app(storage_uri=args.model_uri)

    _log("INFO", "starting", bind=f"{args.host}:{args.port}", contract=CONTRACT,
         **{k: v for k, v in given.items() if k != "port"})
    Server().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

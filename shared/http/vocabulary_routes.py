"""GET /api/vocabulary: the statuses, stages, metrics, GPU types and run actions a client shows
(shared/contract/vocabulary.py); the dashboard loads it once at start."""
from __future__ import annotations

from flask import Flask, jsonify

from shared.contract.vocabulary import vocabulary


def register_vocabulary_routes(app: Flask) -> None:
    @app.get("/api/vocabulary")
    def get_vocabulary():
        return jsonify(success=True, vocabulary=vocabulary())


def openapi_paths(response, errors) -> dict:
    return {"/api/vocabulary": {"get": {
        "summary": "The run statuses (and their groups), stages, model types with their tasks and their primary "
                   "and gate metrics, metric directions, the training parameters' defaults, GPU types and which "
                   "action a run offers in which status",
        "responses": {"200": response("the vocabulary"), **errors(401)}}}}

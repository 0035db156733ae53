"""Run numbers count per model: the counter a new run's `run_number` is drawn from.

The spec's TrainingRun (§6.1) has `ml_model` (a foreign key to MLModel, the recommender being
trained: the Training page's header "Model: XYZ") and `name` ("becomes model name in Vertex
Registry"), and numbers runs per `ml_model` (`unique_together = ['ml_model', 'run_number']`,
"Auto-incremented run number per model"). Here a deployment trains one MLModel, named by
TRAINYARD_MODEL_NAME (Terraform's `model_name`, the project id by default; the dashboard's header
shows it), so every run of the deployment draws from that model's counter, whatever its name.
The counter is an atomic server-side increment (shared/adapters/repository.py `_next_number`).
"""
from __future__ import annotations

from urllib.parse import quote


def model_name(settings) -> str:
    """The model this deployment's runs belong to (the header's "Model: …")."""
    return settings.model_name or settings.project


def counter_key(model: str) -> str:
    """The counter of the model (`counters/run-number-model-<name>`; quoted: a document id has no '/')."""
    return "model-" + quote(model, safe="")

"""Batch prediction with the prediction container's own code: a JSONL file of instances in, one JSONL
line per instance out, in Vertex's batch output format, so the local side writes what a Vertex
BatchPredictionJob running serving_image/ writes:

    {"instance": {...}, "prediction": {"ids": [...], "scores": [...]}}

(https://cloud.google.com/vertex-ai/docs/predictions/get-batch-predictions#batch_request_input: for
JSON Lines input each output line holds the instance and its prediction.) Instances a request refuses
go to an errors file with the reason, as Vertex's `errors` output does, and the rest still run.

`truncate` is the `k` parameter both sides take: the serving signature returns the model's K
candidates; a batch asks for its own k (BatchPredictionJob.model_parameters → `parameters`).
"""
from __future__ import annotations

import json
from typing import Iterator, Optional

from model_server.savedmodel import MAX_INSTANCES, BadRequest, predict

PREDICTIONS_FILE = "predictions.jsonl"
ERRORS_FILE = "errors.jsonl"
RESULT_FILE = "_RESULT.json"  # written last: its presence says the output is complete
RANKED = ("ids", "scores")  # the retrieval signature's outputs, best first


def truncate(prediction: dict, k: Optional[int]) -> dict:
    """The first k of the ranked outputs; the rest of the prediction as it was."""
    if k is None:
        return prediction
    return {key: value[:k] if key in RANKED and isinstance(value, list) else value for key, value in prediction.items()}


def check_k(value) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest("\"k\" must be a positive integer")
    return value


def _chunks(lines: Iterator[str], size: int) -> Iterator[list[dict]]:
    chunk = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            instance = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"line {number} is not JSON: {exc}") from None
        chunk.append(instance)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def predict_file(model, input_uri: str, output_dir: str, k: Optional[int] = None,
                 signature_name: Optional[str] = None, batch_size: int = MAX_INSTANCES, on_progress=None) -> dict:
    """Every instance of `input_uri` (JSONL) through the model, written under `output_dir`; returns
    {"rows": answered, "failed_rows": refused, "location": output_dir, "first_error": the first refusal's reason
    or None}. `on_progress(rows, failed)` after each batch."""
    import tensorflow as tf

    tf.io.gfile.makedirs(output_dir)
    rows = failed = 0
    first_error = None
    with tf.io.gfile.GFile(input_uri) as source, \
            tf.io.gfile.GFile(f"{output_dir}/{PREDICTIONS_FILE}", "w") as out, \
            tf.io.gfile.GFile(f"{output_dir}/{ERRORS_FILE}", "w") as errors:
        for chunk in _chunks(source, batch_size):
            try:
                answers = predict(model, chunk, signature_name)
            except BadRequest as exc:
                first_error = first_error or str(exc)
                for instance in chunk:
                    errors.write(json.dumps({"instance": instance, "error": str(exc)}) + "\n")
                failed += len(chunk)
            else:
                for instance, answer in zip(chunk, answers):
                    out.write(json.dumps({"instance": instance, "prediction": truncate(answer, k)}) + "\n")
                rows += len(chunk)
            if on_progress:
                on_progress(rows, failed)
    return {"rows": rows, "failed_rows": failed, "location": output_dir, "first_error": first_error}


def write_result(output_dir: str, result: dict) -> None:
    import tensorflow as tf

    with tf.io.gfile.GFile(f"{output_dir}/{RESULT_FILE}", "w") as handle:
        handle.write(json.dumps(result))


def read_result(output_dir: str) -> Optional[dict]:
    """The finished output's result, or None while there is none (local paths and gs:// alike)."""
    import tensorflow as tf

    path = f"{output_dir}/{RESULT_FILE}"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.loads(handle.read())

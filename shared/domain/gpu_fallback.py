"""GPU fallback: a run whose Trainer cannot get its GPUs moves on to the next shape it lists.

A run's `gpu_config` is the shape its current attempt runs on; `gpu_config.fallbacks` lists the shapes
after it, in order (docs/lifecycle.md "GPU fallback"). When an attempt fails at Train because Vertex had no
quota or no capacity for the shape (`classify`), the run's next attempt takes the next shape not tried yet
(`next_config`), through the retry path (shared/services/actions/gpu_fallback.py); past the list's end the run
stays failed and its error names every shape tried and why each failed (`exhausted`).

Which shapes were tried is derived from the run itself (every attempt records its `shape` and the
`ended_because` cause: shared/domain/runs.prepare_retry), so a redelivered failure event computes the
same next shape, and the retry path's attempt check makes the second start a no-op. Pure Python.
"""
from __future__ import annotations

import copy
import re
from typing import Optional

from shared.domain import memory_errors

QUOTA, CAPACITY, PREEMPTED = "quota", "capacity", "preempted"
# Who starts an automatic attempt (its attempts[].retried_by and last_retry.by): never a user.
AUTOMATIC_RETRIER = "trainyard (gpu fallback)"
SHAPE_FIELDS = ("gpu_type", "gpu_count", "machine_type", "region", "preemptible")

# Vertex's texts for a Trainer that could not get its machines, most specific first (tests/events/gpu_failures/
# holds each as Vertex wrote it, with where it comes from):
# - capacity: "Resources are insufficient in region: …" (a CustomJob's error when no zone of the region
#   has the machines); Compute Engine's stockout "… does not have enough resources available to fulfill
#   the request" / ZONE_RESOURCE_POOL_EXHAUSTED / STOCKOUT; "temporarily out of capacity" (RESOURCE_EXHAUSTED
#   from a service out of capacity, not a quota);
# - quota: google.rpc.Code 8 RESOURCE_EXHAUSTED (HTTP 429) "The following quota metrics exceed quota limits:
#   aiplatform.googleapis.com/custom_model_training_nvidia_…_gpus" (TFX's Trainer prints it as
#   "code: 8 message: …"), and the QuotaFailure detail "The request for N … accelerators exceeds the allowed maximum";
# - preempted: a Spot VM reclaimed (Vertex: "preempted"; on Spot, Vertex's docs say the job fails with a STOCKOUT).
_CAUSES = (
    (CAPACITY, re.compile(r"resources are insufficient in region|does not have enough resources available|"
                          r"ZONE_RESOURCE_POOL_EXHAUSTED|STOCKOUT|out of capacity", re.I)),
    (QUOTA, re.compile(r"quota metrics exceed quota limits|RESOURCE_EXHAUSTED|\bcode: 8\b|"
                       r"exceeds the allowed maximum of|quota failure", re.I)),
    (PREEMPTED, re.compile(r"\bpreempt(ed|ion)\b", re.I)),
)
CAUSE_PATTERNS = tuple(pattern.pattern for _, pattern in _CAUSES)  # as GET /api/vocabulary serves them (failure_kinds)
_EXHAUSTED = "GPU fallback: every listed shape failed for quota or capacity"


def classify(text: Optional[str]) -> Optional[str]:
    """quota, capacity or preempted when the text is Vertex saying the Trainer could not get (or keep) its
    machines; None for any other failure (a bug in the data or the code does not move to another GPU)."""
    # TensorFlow's "RESOURCE_EXHAUSTED: OOM when allocating tensor" is the Trainer out of memory, not a quota:
    # another shape of the list would not help, the retry form's more-GPU-memory preset does.
    if memory_errors.says_out_of_memory(text):
        return None
    for cause, pattern in _CAUSES:
        if text and pattern.search(text):
            return cause
    return None


def shape_of(gpu: dict) -> dict:
    """The shape part of a gpu_config (or of a fallback entry)."""
    return {k: gpu.get(k) for k in SHAPE_FIELDS}


def describe(shape: dict) -> str:
    where = f" in {shape['region']}" if shape.get("region") else ""
    spot = "Spot" if shape.get("preemptible", True) else "on-demand"
    return f"{shape.get('gpu_count')}x {shape.get('gpu_type')} on {shape.get('machine_type')}{where} ({spot})"


def shapes(doc: dict) -> list[dict]:
    """The run's shapes in the order it started with: recorded on the run (the pre-flight's ranking), else
    its first attempt's shape and its fallbacks as listed."""
    recorded = (doc.get("gpu_fallback") or {}).get("shapes")
    if recorded:
        return [shape_of(s) for s in recorded]
    gpu = doc.get("gpu_config") or {}
    first = next((a.get("shape") for a in doc.get("attempts") or [] if a.get("attempt") == 1 and a.get("shape")), None)
    return [shape_of(first or gpu)] + [shape_of(f) for f in gpu.get("fallbacks") or []]


def rank(listed: list[dict], free: list[Optional[bool]]) -> list[dict]:
    """The shapes with free quota (the pre-flight's `sufficient` True) first, the user's order kept otherwise
    (a stable sort: unknown or short keep their places after them)."""
    return [shape for _, shape in sorted(zip(free, listed), key=lambda pair: pair[0] is not True)]


def tried(doc: dict) -> list[dict]:
    """Every shape an attempt of the run ran on (earlier attempts as they recorded it, then the current one)."""
    earlier = [shape_of(a["shape"]) for a in sorted(doc.get("attempts") or [], key=lambda a: a["attempt"])
               if a.get("shape") and a["attempt"] < doc.get("attempt", 1)]
    return earlier + [shape_of(doc.get("gpu_config") or {})]


def cause(doc: dict) -> Optional[str]:
    """Why the run's current attempt failed, when it is a GPU fallback's cause: failed at Train for quota or capacity."""
    if doc.get("status") != "failed" or doc.get("error_stage") != "Train":
        return None
    return classify(" ".join(filter(None, (doc.get("error_message"), str(doc.get("error_details") or "")))))


def next_config(doc: dict) -> Optional[dict]:
    """The gpu_config of the run's next attempt, on the first listed shape not tried yet; None when the run did
    not fail for quota or capacity, was stopped, or has no shape left."""
    if cause(doc) is None or (doc.get("gpu_fallback") or {}).get("stopped"):
        return None
    done = tried(doc)
    following = next((s for s in shapes(doc) if s not in done), None)
    if following is None:
        return None
    gpu = copy.deepcopy(doc.get("gpu_config") or {})
    return {**gpu, **following}


def _history(doc: dict) -> list[str]:
    ended = {a["attempt"]: a for a in doc.get("attempts") or []}
    lines = []
    for number in range(1, doc.get("attempt", 1) + 1):
        entry = ended.get(number, {}) if number < doc.get("attempt", 1) else \
            {"shape": doc.get("gpu_config"), "error_message": doc.get("error_message")}
        if not entry.get("shape"):
            continue
        why = classify(entry.get("error_message")) or entry.get("status") or "?"
        lines.append(f"attempt {number} on {describe(shape_of(entry['shape']))}: {why}")
    return lines


def stopped_by(refusal: str) -> str:
    return f"GPU fallback stopped: {refusal}"


def stop(doc: dict, reason: str) -> Optional[dict]:
    """The fallback ends before the list's end (the spend guard refused the next attempt): the run stays failed,
    its error says what was tried and why it stopped. None when it was stopped already."""
    if (doc.get("gpu_fallback") or {}).get("stopped") or cause(doc) is None:
        return None
    new = copy.deepcopy(doc)
    new["gpu_fallback"] = {"shapes": shapes(doc), "stopped": reason}
    new["error_message"] = f"{reason}. Tried: " + "; ".join(_history(doc)) + f". Last error: {doc.get('error_message')}"
    return new


def exhausted(doc: dict) -> Optional[dict]:
    """A run that failed for quota or capacity on its last listed shape: its error names every shape tried and
    why each failed. None when it has a shape left, lists no fallbacks, or says so already."""
    if cause(doc) is None or not (doc.get("gpu_config") or {}).get("fallbacks") or next_config(doc) is not None:
        return None
    return stop(doc, _EXHAUSTED)


# A Vertex AI TensorBoard instance is regional, and a job may only name resources of its own location: "For
# operations other than creating a dataset or importing a model, you must use the location of the resources you
# are working on" (cloud.google.com/vertex-ai/docs/general/locations). An instance per fallback region would
# cost for every region listed; an attempt moved elsewhere skips the upload and keeps its event files instead.
_LOCATION = re.compile(r"/locations/([^/]+)/")


def tensorboard_skipped(instance: Optional[str], home_region: str, trainer_region: Optional[str]) -> Optional[str]:
    """Why an attempt's Trainer uploads nothing to the deployment's TensorBoard instance (None: it uploads, or
    there is no instance): a GPU fallback moved it out of the instance's region."""
    found = _LOCATION.search(instance or "")
    where = trainer_region or home_region
    if not instance or (found and found.group(1) == where):
        return None
    return (f"TensorBoard upload skipped: this attempt's Trainer runs in {where} (GPU fallback) and the Vertex AI "
            f"TensorBoard instance is in {found.group(1) if found else 'another region'}; a Vertex job may only use "
            f"resources of its own region. Its event files are kept with the run's artifacts "
            f"(trainyard runs tensorboard)")

"""What kind of failure a run's root cause names, for what a retry should change (docs/run-actions.md
"Retry with changes"). Today one kind: out of memory, the failed card's "Retry with more GPU memory" (spec §5.1).

The texts, as the frameworks and Vertex write them (dashboard/src/testdata/failure_messages.json holds real ones):
- TensorFlow: `ResourceExhaustedError: OOM when allocating tensor with shape[…] … by allocator GPU_0_bfc`
  (root_cause.from_text keeps the exception's class and message);
- CUDA / cuDNN / XLA: "CUDA_ERROR_OUT_OF_MEMORY: out of memory", "CUDA out of memory", "failed to allocate … (OOM)";
- the kernel's OOM killer: a container killed with SIGKILL exits 128 + 9 = 137, which Vertex reports as "The replica
  workerpool0-0 exited with a non-zero status of 137" (Kubernetes' reason: OOMKilled); Python's own MemoryError.

Not out of memory: Vertex's RESOURCE_EXHAUSTED for GPU quota or capacity (`google.api_core.exceptions.
ResourceExhausted: 429 Quota exceeded …`), which the GPU fallback handles (shared/domain/gpu_fallback.py): a bare
"resource exhausted" in a text its patterns match, or in one naming a quota, is not out of memory.

The patterns are written in the subset of regular expressions Python and JavaScript read alike; GET /api/vocabulary
serves them (`failure_kinds`) so the dashboard tells the same runs apart without a copy of its own.
"""
from __future__ import annotations

import re
from typing import Optional

from shared.domain import gpu_fallback, memory_errors

OUT_OF_MEMORY = "out_of_memory"
# Texts that say so whatever else they hold (TensorFlow 2's "RESOURCE_EXHAUSTED: OOM when allocating …" too).
OUT_OF_MEMORY_PATTERNS = memory_errors.OUT_OF_MEMORY_PATTERNS
# Texts that say so unless they also name a quota or capacity: TensorFlow's ResourceExhaustedError is memory,
# Google's api_core ResourceExhausted is a quota.
EXHAUSTED_PATTERNS = (r"ResourceExhausted(?:Error)?\b", r"\bResource exhausted\b")
# A text any of these match is not called out of memory by EXHAUSTED_PATTERNS: the GPU fallback's quota,
# capacity and preemption texts, and a quota named in other words ("429 Quota exceeded for quota metric …").
NOT_OUT_OF_MEMORY = gpu_fallback.CAUSE_PATTERNS + (r"\bquota\b",)
# The stage whose memory a GPU change can give more of: the Trainer's (other stages run on Beam or Dataflow
# workers, whose memory the run's gpu_config does not set).
GPU_STAGES = ("Train",)

_EXHAUSTED = re.compile("|".join(EXHAUSTED_PATTERNS), re.I)
_NOT_OUT_OF_MEMORY = re.compile("|".join(NOT_OUT_OF_MEMORY), re.I)


def out_of_memory(text: Optional[str]) -> bool:
    """Whether a root cause says a process ran out of memory (and not that Vertex lacked quota or capacity)."""
    if not text:
        return False
    return memory_errors.says_out_of_memory(text) or bool(_EXHAUSTED.search(text) and not _NOT_OUT_OF_MEMORY.search(text))


def kind(doc: dict) -> Optional[str]:
    """The failure kind of a failed run (its error_message, the root cause), or None."""
    return OUT_OF_MEMORY if out_of_memory(doc.get("error_message")) else None


def wants_more_gpu_memory(doc: dict) -> bool:
    """Whether a retry should get more GPU memory: out of memory in the Trainer (or in a stage not recorded)."""
    return kind(doc) == OUT_OF_MEMORY and (doc.get("error_stage") or GPU_STAGES[0]) in GPU_STAGES


def vocabulary() -> dict:
    """The kinds as GET /api/vocabulary serves them, matched case-insensitively: any of `patterns`, or any of
    `exhausted` and none of `unless`."""
    return {OUT_OF_MEMORY: {"patterns": list(OUT_OF_MEMORY_PATTERNS), "exhausted": list(EXHAUSTED_PATTERNS),
                            "unless": list(NOT_OUT_OF_MEMORY),
                            "gpu_stages": list(GPU_STAGES)}}

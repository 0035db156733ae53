"""The texts that say a process ran out of memory whatever else they hold: read by failure_kinds (the retry
form's "more GPU memory") and by gpu_fallback (which must not call TensorFlow's
"RESOURCE_EXHAUSTED: OOM when allocating tensor" a quota failure). A module of its own so neither imports
the other."""
from __future__ import annotations

import re
from typing import Optional

OUT_OF_MEMORY_PATTERNS = (
    r"\bOOM\b",
    r"OOMKilled",
    r"\bout of memory\b",
    r"CUDA_ERROR_OUT_OF_MEMORY",
    r"\bMemoryError\b",
    r"non-zero status of 137\b",
    r"\bexit(?:ed with)? (?:code|status) 137\b",
)
_OUT_OF_MEMORY = re.compile("|".join(OUT_OF_MEMORY_PATTERNS), re.I)


def says_out_of_memory(text: Optional[str]) -> bool:
    return bool(text and _OUT_OF_MEMORY.search(text))

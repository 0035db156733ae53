"""Log severities, in Cloud Logging's order (google.logging.type.LogSeverity: DEFAULT 0 … EMERGENCY 800), so a
reader can ask for "WARNING and worse" of the cloud's entries and the local log's lines alike."""
from __future__ import annotations

import json
from typing import Optional

SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")


def at_least(severity: str, minimum: Optional[str]) -> bool:
    if not minimum:
        return True
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else 0
    return rank >= SEVERITIES.index(minimum)


def severity_of_line(line: str) -> str:
    """A local log line's severity: a structured line (shared/log.py) says its own; Python logging's default
    format and TensorFlow's C++ lines ("… E external/…") say theirs by a word or a letter."""
    if line.startswith("{"):
        try:
            return str(json.loads(line).get("severity") or "DEFAULT")
        except (ValueError, AttributeError):
            pass
    for level in ("ERROR", "WARNING", "INFO", "DEBUG", "CRITICAL"):
        if line.startswith(level) or f" {level} " in line[:40]:
            return level
    tf_level = line[28:30] if len(line) > 30 and line[:4].isdigit() and line[26:28] == ": " else ""
    return {"E ": "ERROR", "W ": "WARNING", "I ": "INFO", "F ": "CRITICAL"}.get(tf_level, "DEFAULT")

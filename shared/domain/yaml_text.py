"""YAML (or JSON) text read as the API reads request bodies: the CLI's request files and an import's mapping
file (the CLI's and the API's, shared/services/experiment_import.py) are read by this one loader."""
from __future__ import annotations

import functools
import re
from datetime import date
from typing import Any


def load(text: str) -> Any:
    """The document in `text`, with YAML's dates and times back to ISO strings; raises yaml.YAMLError."""
    return _plain(_yaml_load(text))


def _plain(value: Any) -> Any:
    """YAML's dates and times back to the ISO strings the API reads (run_at: 2026-12-05T02:00:00)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _yaml_load(text: str):
    """yaml.safe_load, except that 02:00 stays the string "02:00" (YAML 1.1 reads it as the base-60
    integer 120, which is never what a time_of_day means)."""
    import yaml

    return yaml.load(text, Loader=_loader())  # noqa: S506 — a SafeLoader subclass


@functools.cache
def _loader():
    """The loader class, made once: PyYAML is imported only where a YAML document is read (the API's cold
    start does without it)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    int_tag = "tag:yaml.org,2002:int"
    Loader.yaml_implicit_resolvers = {first: [(tag, rx) for tag, rx in resolvers if tag != int_tag]
                                      for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver(int_tag, re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
                                                     r"|[-+]?0x[0-9a-fA-F_]+)$"), list("-+0123456789"))
    return Loader

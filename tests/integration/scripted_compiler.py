"""The compiler side of the submitter's narrow interface, scripted for control-plane tests: it writes
a PipelineJob-shaped JSON without TFX, so these tests exercise the control plane alone. The real
compiler is exercised by pipeline_compiler's own tests and the e2e suite."""
from __future__ import annotations

import json


def compile_run(spec, out_path: str) -> str:
    if spec.run_name.startswith("uncompilable"):
        raise ValueError("the feature config names a column the dataset does not have")
    with open(out_path, "w") as handle:
        json.dump({"displayName": spec.run_name, "labels": {},
                   "pipelineSpec": {"pipelineInfo": {"name": spec.run_name}, "root": {"dag": {"tasks": {}}}},
                   "runtimeConfig": {"gcsOutputDirectory": spec.pipeline_root}}, handle)
    return out_path


def module_files() -> dict:
    return {}

"""The Evaluator and Pusher of the pipeline: TFX Python function components over plain functions.

Evaluator: the gate metric on the test split against the full candidate set (the exported serving
model's index), plus the baselines (most-popular, and EASE where the catalog fits: baselines.py),
-> ModelBlessing + evaluation/evaluation_results.json. The scoring is evaluation.py's.
Pusher: a blessed model becomes a new version of the model named after the run, in the Vertex
Model Registry (google-cloud-aiplatform; parent model versions; run labels) or in a local registry
directory -> registry/registry_entry.json, and its model card beside it (shared/services/model_cards.py).
A not-blessed model is not registered.
"""
# No `from __future__ import annotations`: TFX reads the component signatures at runtime.


import apache_beam as beam
import tensorflow as tf
from tfx import v1 as tfx

from pipeline_compiler import champion
from pipeline_compiler import evaluation_beam
from pipeline_compiler.evaluation import evaluate_model
from pipeline_compiler.registry import GfileStore, VertexRegistrar, register_local, write_json
from shared.contract import results
from shared import log
from shared.domain.run_config import RunSpec
from shared.services import model_cards

BLESSED_FILE, NOT_BLESSED_FILE = "BLESSED", "NOT_BLESSED"  # TFX's convention in a ModelBlessing dir


def is_blessed(blessing_uri: str) -> bool:
    return tf.io.gfile.exists(results.join(blessing_uri, BLESSED_FILE))


# --------------------------------------------------------------------------- TFX components


def _has_champion(spec: RunSpec, find) -> bool:
    """Whether the run is held to a champion (a failed lookup counts: the in-process path reports it)."""
    if not spec.evaluator_config.compare_to_champion:
        return False
    try:
        return find() is not None
    except Exception:  # noqa: BLE001 — evaluate_model records why in champion_error
        return True


@tfx.dsl.components.component(use_beam=True)
def TrainyardEvaluator(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    transform_graph: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.TransformGraph],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    run_spec: tfx.dsl.components.Parameter[str],
    target: tfx.dsl.components.Parameter[str],
    project: tfx.dsl.components.Parameter[str],
    region: tfx.dsl.components.Parameter[str],
    local_registry_dir: tfx.dsl.components.Parameter[str],
    local_endpoints_dir: tfx.dsl.components.Parameter[str],
    vertex_emulator_host: tfx.dsl.components.Parameter[str],
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Gate on the test split, against the champion where the Pusher registers (champion.py); writes the
    ModelBlessing and evaluation/evaluation_results.json. A test split of evaluator_config.beam_min_test_rows
    or more is scored by a Beam job on the pipeline's beam_pipeline_args (the data stages' runner: Dataflow in
    the cloud) when there is no champion to score; with one, the in-process Evaluator (streaming, bounded
    memory, slower) decides, so the champion gate always holds."""
    spec = RunSpec.model_validate_json(run_spec)
    with log.bound(run_id=spec.run_id, attempt=spec.attempt, stage="Evaluate"):
        serving = results.join(model.uri, "Format-Serving")

        find = champion.finder(spec, target, project, region, local_registry_dir, local_endpoints_dir,
                               vertex_emulator_host)
        if beam_pipeline is not None and evaluation_beam.runs_as_beam(spec, examples.uri) and not _has_champion(spec, find):
            log.info("the test split is scored by a Beam job", threshold=spec.evaluator_config.beam_min_test_rows)
            evaluation = evaluation_beam.evaluate_model_beam(spec, examples.uri, serving, transform_graph.uri,
                                                             beam_pipeline, results.join(blessing.uri, "scores"))
        else:
            evaluation = evaluate_model(spec, examples.uri, serving, transform_graph.uri, find_champion=find)
        log.info("model evaluated", blessed=evaluation.blessed, metric=evaluation.threshold_metric,
                 actual_value=evaluation.actual_value, threshold_value=evaluation.threshold_value,
                 baseline_value=evaluation.baseline_value, champion_value=evaluation.champion_value,
                 champion_error=evaluation.champion_error, reason=evaluation.reason)
    text = evaluation.model_dump_json(indent=2)
    write_json(results.join(spec.artifacts_uri, results.EVALUATION_FILE), text)
    write_json(results.join(blessing.uri, BLESSED_FILE if evaluation.blessed else NOT_BLESSED_FILE), text)
    blessing.set_int_custom_property("blessed", int(evaluation.blessed))
    blessing.set_string_custom_property("current_model", model.uri)
    if evaluation.actual_value is not None:
        blessing.set_float_custom_property("actual_value", evaluation.actual_value)


@tfx.dsl.components.component
def TrainyardPusher(
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    pushed_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.PushedModel],
    run_spec: tfx.dsl.components.Parameter[str],
    target: tfx.dsl.components.Parameter[str],
    project: tfx.dsl.components.Parameter[str],
    region: tfx.dsl.components.Parameter[str],
    serving_image: tfx.dsl.components.Parameter[str],
    local_registry_dir: tfx.dsl.components.Parameter[str],
    pipeline_image: tfx.dsl.components.Parameter[str],
) -> None:
    """Registers a blessed model (Vertex Model Registry or the local registry); skips a not-blessed one."""
    spec = RunSpec.model_validate_json(run_spec)
    with log.bound(run_id=spec.run_id, attempt=spec.attempt, stage="Push"):
        if not is_blessed(blessing.uri):
            log.info("the model is not blessed: kept, not registered", artifacts_uri=spec.artifacts_uri)
            pushed_model.set_int_custom_property("pushed", 0)
            return
        serving_model_uri = results.join(spec.artifacts_uri, results.SAVED_MODEL_DIR)
        if target == "vertex":
            entry = VertexRegistrar(project, region, serving_image).register(spec, serving_model_uri)
        else:
            entry = register_local(spec, serving_model_uri, local_registry_dir)
        log.info("model version registered", model=entry.model_resource_name, version=entry.model_version_id)
        model_cards.write_card(GfileStore(), spec, entry, pipeline_image=pipeline_image,
                               serving_image=serving_image if target == "vertex" else None)
    write_json(results.join(spec.artifacts_uri, results.REGISTRY_FILE), entry.model_dump_json(indent=2))
    pushed_model.set_int_custom_property("pushed", 1)
    pushed_model.set_string_custom_property("pushed_destination", entry.model_resource_name)
    pushed_model.set_string_custom_property("pushed_version", entry.model_version_id)

"""The warm start: a freshly built model takes what fits of a source SavedModel's weights, by name.

The source (shared/domain/warm_start.py) is an experiment's or a run's SavedModel, resolved when the run
was built, or the champion, found here when the run trains (pipeline_compiler/champion.py: the version
serving on the run's endpoint, else the registry's default), so each scheduled retrain starts from the
champion of its moment. Only the SavedModel is read: a champion from another run has nothing else.

- Variables are matched by object path (`model/query_tower/dense_layers/0/kernel`: the export keeps
  training's, export.py), followed through the SavedModel checkpoint's object graph to its key and read
  with tf.train.load_checkpoint; a weight whose shape matches is copied, any other keeps its fresh value.
- A vocabulary feature's embedding table is carried by id: the source's vocabulary is the SavedModel's
  asset of the same name (the Transform layer's, `assets/{feature}`), this run's the Transform output's;
  kept ids keep their rows, new ids their fresh ones (pipeline_compiler/modules/embedding_rows.py, OOV buckets too).
- Hashing, cross and bucketize tables have no vocabulary: their rows mean the same bucket when the
  bucket count (so the shape) is the same, and are copied as dense weights.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import tensorflow as tf

from pipeline_compiler.modules import embedding_rows
from shared.contract import results
from shared.domain import warm_start
from shared.domain.run_config import RunSpec

# The Trainer's custom_config key holding where to look the champion up: the Evaluator's and Pusher's
# own parameters (target, project, region, local registry and endpoints), so all three see one champion.
CHAMPION_LOOKUP_KEY = "warm_start_champion"


def champion_lookup(spec: RunSpec, target: str, project: str, region: str, registry_dir: str,
                    endpoints_dir: str, emulator_host: str = "") -> dict[str, dict[str, str]]:
    """The Trainer's custom_config entry for a warm start from the champion (none for other sources); a Vertex
    stand-in's address only when there is one (the rehearsal), so the cloud's entry names none."""
    if spec.warm_source is None or spec.warm_source.source != "champion":
        return {}
    return {CHAMPION_LOOKUP_KEY: dict(target=target, project=project, region=region, registry_dir=registry_dir,
                                      endpoints_dir=endpoints_dir,
                                      **({"emulator_host": emulator_host} if emulator_host else {}))}


def champion_finder(spec: RunSpec, custom_config: Optional[dict]) -> Optional[Callable[[], Any]]:
    """The champion lookup run_fn hands the trainer, from the custom_config entry above."""
    where = (custom_config or {}).get(CHAMPION_LOOKUP_KEY)
    if not where:
        return None
    from pipeline_compiler import champion  # the Vertex clients load only for a champion warm start

    return champion.finder(spec, **where)


def saved_model_dir(uri: str) -> Optional[str]:
    """The SavedModel at `uri`: the directory itself, a run's artifacts directory or a TFX Model artifact."""
    for candidate in (uri, results.join(uri, results.SAVED_MODEL_DIR), results.join(uri, "Format-Serving")):
        if tf.io.gfile.exists(results.join(candidate, "saved_model.pb")):
            return candidate
    return None


def resolve(spec: RunSpec, find_champion: Optional[Callable[[], Any]]) -> warm_start.WarmSource | warm_start.WarmStartRecord:
    """Where the weights are, or the fresh start's record (no champion yet is never a failure)."""
    source = spec.warm_source
    if source is None:  # a run built before sources were resolved: the base experiment, as then
        base, asked = spec.base_experiment, spec.training_params.warm_restart.experiment_id
        source = warm_start.WarmSource(source="experiment", source_id=asked or (base.id if base else None),
                              uri=base.saved_model_uri if base and asked in (None, base.id) else None)
    if source.source == "champion":
        if find_champion is None:
            return warm_start.WarmStartRecord.fallback(source, "this Trainer was given no way to look up the champion")
        try:
            champion = find_champion()
        except Exception as error:  # noqa: BLE001 - a failed lookup is a fresh start, never a failed run
            return warm_start.WarmStartRecord.fallback(source, f"looking up the champion failed: {type(error).__name__}: "
                                                      f"{str(error)[:300]}")
        if champion is None:
            return warm_start.WarmStartRecord.fallback(source, "no champion yet (nothing serves on the run's endpoint and "
                                                      f"no version of model {spec.run_name!r} is registered)")
        source = warm_start.WarmSource(source="champion", source_id=f"{champion.model}@{champion.version} ({champion.source})",
                              uri=champion.artifact_uri)
    if not source.uri:
        return warm_start.WarmStartRecord.fallback(source, f"the {source.source} {source.source_id or ''} has no model uri")
    return source


def model_variable_paths(model: tf.keras.Model) -> list[tuple[tuple[str, ...], tf.Variable]]:
    """The model's own weights, each with its object path under `model` (Checkpoint(model=model)'s names)."""
    own = {id(v) for v in model.variables}
    found: list[tuple[tuple[str, ...], tf.Variable]] = []
    root = tf.train.Checkpoint(model=model)  # the view holds its root weakly
    view = tf.train.TrackableView(root)
    queue, seen = [((), root)], {id(root)}
    while queue:  # breadth first: each variable's shortest path, as a checkpoint names it
        path, node = queue.pop(0)
        for name, child in view.children(node).items():
            if id(child) in seen:
                continue
            seen.add(id(child))
            if isinstance(child, tf.Variable):
                if id(child) in own:
                    found.append((path + (name,), child))
            else:
                queue.append((path + (name,), child))
    return found


class SourceWeights:
    """A SavedModel's variables by object path. Its checkpoint keys name each variable by ONE path from
    the saved root (whichever the saver met first), so a path is followed through the checkpoint's own
    object graph (as an object-based restore matches) to the variable's key."""

    def __init__(self, directory: str) -> None:
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        self.reader = tf.train.load_checkpoint(results.join(directory, "variables/variables"))
        self.graph = trackable_object_graph_pb2.TrackableObjectGraph()
        self.graph.ParseFromString(self.reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))

    def get(self, path: tuple[str, ...]):
        """The variable's value at `path` (from the saved root: `model/...`), or None."""
        node = self.graph.nodes[0]
        for name in path:
            child = next((c.node_id for c in node.children if c.local_name == name), None)
            if child is None:
                return None
            node = self.graph.nodes[child]
        key = next((a.checkpoint_key for a in node.attributes if a.name == "VARIABLE_VALUE"), None)
        return self.reader.get_tensor(key) if key else None


def _vocabulary(directory: str, name: str) -> Optional[list[bytes]]:
    path = results.join(directory, f"assets/{name}")
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as handle:
        return embedding_rows.vocabulary_lines(handle.read())


def load(model: tf.keras.Model, source: warm_start.WarmSource,
         vocabularies: dict[str, list[bytes]]) -> warm_start.WarmStartRecord:
    """Copy what fits of the source's weights into `model`; `vocabularies`: this run's, by feature name."""
    where = source.model_dump()
    directory = saved_model_dir(source.uri)
    if directory is None:
        return warm_start.WarmStartRecord.fallback(source, f"no SavedModel at {source.uri}")
    try:
        source_weights = SourceWeights(directory)
    except Exception as error:  # noqa: BLE001 - an unreadable source is a fresh start, never a failure
        return warm_start.WarmStartRecord.fallback(source, f"could not load weights from {directory}: "
                                                  f"{type(error).__name__}: {str(error)[:300]}")
    tables = {id(tower.embeddings[f.name].embeddings): f
              for tower in (model.query_tower, model.candidate_tower) for f in tower.feature_specs
              if f.transform.type == "vocabulary"}
    loaded, fresh, notes = 0, [], []
    counts = dict(tables=0, rows_kept=0, rows_new=0, rows_dropped=0)
    for path, variable in model_variable_paths(model):
        key = "/".join(path)
        value = source_weights.get(path)
        feature = tables.get(id(variable))
        if value is not None and feature is not None:
            old_vocabulary = _vocabulary(directory, feature.name)
            old_oov = len(value) - len(old_vocabulary) if old_vocabulary is not None else -1
            if old_vocabulary is None or old_oov < 0:
                notes.append(f"no vocabulary for {feature.name} in the source")
                fresh.append(key)
                continue
            try:
                mapping = embedding_rows.row_map(old_vocabulary, vocabularies[feature.name], old_oov,
                                    feature.transform.num_oov_buckets)
                variable.assign(embedding_rows.carry_rows(value, variable.numpy(), mapping))
            except ValueError as error:  # another embedding width
                notes.append(f"{feature.name}: {error}")
                fresh.append(key)
                continue
            counts["tables"] += 1
            counts["rows_kept"] += mapping.kept
            counts["rows_new"] += mapping.new
            counts["rows_dropped"] += mapping.dropped
            loaded += 1
        elif value is not None and tuple(value.shape) == tuple(variable.shape):
            variable.assign(value)
            loaded += 1
        else:
            fresh.append(key)
    if not loaded:
        return warm_start.WarmStartRecord.fallback(source, f"no weight of {directory} fits this model "
                                                  f"({len(fresh)} variables differ in name or shape)")
    reason = None
    if fresh:
        shown = ", ".join(fresh[:4]) + (", …" if len(fresh) > 4 else "")
        reason = f"{len(fresh)} variable(s) kept their fresh values (not in the source or another shape: {shown})"
        if notes:
            reason += "; " + "; ".join(notes[:3])
    return warm_start.WarmStartRecord(status="partial" if fresh else "loaded", variables_loaded=loaded,
                             variables_fresh=len(fresh), reason=reason, **where, **counts)


def apply(model: tf.keras.Model, spec: RunSpec, vocabularies: dict[str, list[bytes]],
               find_champion: Optional[Callable[[], Any]] = None) -> warm_start.WarmStartRecord:
    """Resolve the source and load it; the record says what the run started from."""
    source = resolve(spec, find_champion)
    if isinstance(source, warm_start.WarmStartRecord):
        return source
    return load(model, source, vocabularies)

"""The Vertex champion lookup (pipeline_compiler/champion.py) through the official GAPIC clients over
ModelService's and EndpointService's gRPC protocol (tests/protocol_fakes/vertex.py): the version taking
most of the target endpoint's traffic (GetEndpoint's deployed_models and traffic_split, GetModel with
@version), else the model's default version (GetModel with @default), registered and deployed exactly as
the Pusher and run-commands do."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipeline_compiler.champion import VertexChampions
from tests.unit.test_vertex_serving import PROJECT, REGION, deploy_request, endpoints, registrar, spec, vertex  # noqa: F401


def lookup(vertex) -> VertexChampions:  # noqa: F811
    return VertexChampions(PROJECT, REGION, emulator_host=vertex.server.address)


def run_spec(action="register_only", endpoint_id=None, name="recs-v3"):
    return SimpleNamespace(run_name=name, deployment_config=SimpleNamespace(action=action,
                                                                            existing_endpoint_id=endpoint_id))


def test_no_model_of_the_name_means_no_champion(vertex):  # noqa: F811
    registrar(vertex).register(spec(name="other-model"), "gs://a/tr-0/model/saved_model")
    assert lookup(vertex).find(run_spec()) is None


def test_the_registrys_default_version_is_the_champion(vertex):  # noqa: F811
    registrar(vertex).register(spec(run_id="tr-1"), "gs://a/tr-1/model/saved_model")
    second = registrar(vertex).register(spec(run_id="tr-2"), "gs://a/tr-2/model/saved_model")
    found = lookup(vertex).find(run_spec())
    assert (found.model, found.version, found.source) == (second.model_resource_name, "2", "registry default")
    assert found.artifact_uri == "gs://a/tr-2/model/saved_model"


def test_on_an_existing_endpoint_the_version_serving_most_traffic_is_the_champion(vertex):  # noqa: F811
    first = registrar(vertex).register(spec(run_id="tr-1"), "gs://a/tr-1/model/saved_model")
    deployed = endpoints(vertex).deploy(deploy_request(first, run_id="tr-1"))
    endpoint_id = deployed.endpoint_resource_name.rsplit("/", 1)[-1]
    second = registrar(vertex).register(spec(run_id="tr-2"), "gs://a/tr-2/model/saved_model")
    endpoints(vertex).deploy(deploy_request(second, run_id="tr-2", endpoint_id=endpoint_id, percent=30))
    found = lookup(vertex).find(run_spec("deploy_existing", endpoint_id))
    # v2 is the registry's default, but v1 serves 70 % of the endpoint: the endpoint decides
    assert (found.version, found.artifact_uri, found.source) == ("1", "gs://a/tr-1/model/saved_model",
                                                                  f"endpoint {endpoint_id}")
    third = registrar(vertex).register(spec(run_id="tr-3"), "gs://a/tr-3/model/saved_model")
    endpoints(vertex).deploy(deploy_request(third, run_id="tr-3", endpoint_id=endpoint_id, percent=100))
    assert lookup(vertex).find(run_spec("deploy_existing", deployed.endpoint_resource_name)).version == "3"


def test_a_missing_endpoint_leaves_the_registrys_default_as_the_champion(vertex):  # noqa: F811
    assert lookup(vertex).find(run_spec("deploy_existing", "no-such-endpoint")) is None
    registrar(vertex).register(spec(run_id="tr-1"), "gs://a/tr-1/model/saved_model")
    found = lookup(vertex).find(run_spec("deploy_existing", "no-such-endpoint"))
    assert (found.version, found.source) == ("1", "registry default")


def test_an_unreachable_vertex_is_an_error_the_evaluator_reports(vertex):  # noqa: F811
    from google.api_core import exceptions

    vertex.server.stop()
    with pytest.raises(exceptions.GoogleAPICallError):
        VertexChampions(PROJECT, REGION, emulator_host=vertex.server.address).find(run_spec())


def test_the_cloud_trainers_champion_lookup_asks_the_registry_and_warm_starts_from_its_answer(vertex, tmp_path):  # noqa: F811
    """The retraining loop's warm start in the cloud: the Trainer's custom_config as the Vertex pipeline compiles it
    (pipeline.py _trainer, warm_weights.champion_lookup) is all run_fn has; the lookup it builds from it goes through
    the official ModelServiceClient to the registry (ListModels under the region's parent, filtered by the run's
    model name; GetModel of its @default) and the Trainer warm-starts from the version it answers."""
    import dataclasses
    import json

    from pipeline_compiler.modules import warm_weights
    from pipeline_compiler.pipeline import create_pipeline
    from tests.unit.pipeline_compiler.test_compile import VERTEX_ENV
    from tests.unit.pipeline_compiler.tiny_data import tiny_spec

    name = "recs-champion"
    registrar(vertex).register(spec(run_id="tr-1", name=name), "gs://a/tr-1/model/saved_model")
    registrar(vertex).register(spec(run_id="tr-2", name="another-model"), "gs://a/tr-2/model/saved_model")
    current = registrar(vertex).register(spec(run_id="tr-3", name=name), "gs://a/tr-3/model/saved_model")
    run = tiny_spec(str(tmp_path), run_name=name, warm_source={"source": "champion"},
                    training_params={"warm_restart": {"enabled": True, "source": "champion"}})
    env = dataclasses.replace(VERTEX_ENV, project=PROJECT, region=REGION, vertex_emulator_host=vertex.server.address)
    trainer = next(c for c in create_pipeline(run, env).components if type(c).__name__ == "Trainer")
    config = trainer.exec_properties["custom_config"]
    config = json.loads(config) if isinstance(config, str) else config
    assert config[warm_weights.CHAMPION_LOOKUP_KEY]["target"] == "vertex"

    before = len(vertex.server.requests("list_models"))
    source = warm_weights.resolve(run, warm_weights.champion_finder(run, config))

    (listed,) = vertex.server.requests("list_models")[before:]
    assert listed.parent == f"projects/{PROJECT}/locations/{REGION}"
    assert listed.filter == f'display_name="{name}"'
    assert [r.name for r in vertex.server.requests("get_model")][-1] == f"{current.model_resource_name}@default"
    assert (source.source, source.uri) == ("champion", "gs://a/tr-3/model/saved_model")  # the answer is used
    assert source.source_id == f"{current.model_resource_name}@2 (registry default)"
    cloud = warm_weights.champion_lookup(run, "vertex", PROJECT, REGION, "r", "e")[warm_weights.CHAMPION_LOOKUP_KEY]
    assert "emulator_host" not in cloud  # the cloud's Trainer asks Vertex itself


def test_the_cloud_evaluators_champion_lookup_asks_where_the_pipeline_was_compiled_to_ask(vertex, tmp_path):  # noqa: F811
    """The Evaluator's parameters as the Vertex pipeline compiles them are all its lookup has (components.py:
    champion.finder over them): with the stand-in's address compiled in, it asks the stand-in (ListModels under
    the region's parent, the run's model name) and scores against the version it answers, once however often
    the Evaluator asks."""
    import dataclasses

    from pipeline_compiler import champion
    from pipeline_compiler.pipeline import create_pipeline
    from tests.unit.pipeline_compiler.test_compile import VERTEX_ENV
    from tests.unit.pipeline_compiler.tiny_data import tiny_spec

    name = "recs-gated"
    current = registrar(vertex).register(spec(run_id="tr-4", name=name), "gs://a/tr-4/model/saved_model")
    run = tiny_spec(str(tmp_path), run_name=name)
    env = dataclasses.replace(VERTEX_ENV, project=PROJECT, region=REGION, vertex_emulator_host=vertex.server.address)
    evaluator = next(c for c in create_pipeline(run, env).components if c.id == "Evaluator")
    p = evaluator.exec_properties
    assert (p["target"], p["vertex_emulator_host"]) == ("vertex", vertex.server.address)
    assert dataclasses.replace(VERTEX_ENV).vertex_emulator_host == ""  # in the cloud: Vertex's own endpoint

    before = len(vertex.server.requests("list_models"))
    find = champion.finder(run, p["target"], p["project"], p["region"], p["local_registry_dir"],
                           p["local_endpoints_dir"], p["vertex_emulator_host"])
    found, again = find(), find()
    (listed,) = vertex.server.requests("list_models")[before:]
    assert listed.parent == f"projects/{PROJECT}/locations/{REGION}" and listed.filter == f'display_name="{name}"'
    assert found is again and (found.model, found.artifact_uri) == (current.model_resource_name,
                                                                   "gs://a/tr-4/model/saved_model")

"""Cloud adapters checked at the client boundary: what they send to the official clients and how
they read the answers — Vertex AI Pipelines (GAPIC), Cloud Storage, Pub/Sub."""
from __future__ import annotations

import json
from dataclasses import replace


import grpc
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from shared.adapters.artifact_store import ArtifactStore
from shared.adapters.lazy_client import LazyClient
from shared.errors import NotFound, PermanentError, TransientError
from shared.adapters.messaging import PubSubPublisher
from shared.adapters.pipelines import JobRequest, VertexPipelineBackend

COMPILED = {"displayName": "x", "labels": {"tfx_version": "1-15-0"},
            "pipelineSpec": {"pipelineInfo": {"name": "trainyard-tr-1"}, "deploymentSpec": {"executors": {}},
                             "schemaVersion": "2.0.0",
                             "root": {"dag": {"tasks": {"Trainer": {"taskInfo": {"name": "Trainer"}},
                                                        "Pusher": {"taskInfo": {"name": "Pusher"}}}}}},
            # TFX 1.15 (schemaVersion 2.0.0) writes RuntimeParameters as `parameters`; newer specs `parameterValues`
            "runtimeConfig": {"gcsOutputDirectory": "gs://root/tr-1", "parameters": {"epochs": {"intValue": "3"}},
                              "parameterValues": {"note": "hi"}}}
REGION = "europe-west4"


@pytest.fixture
def vertex():
    """Vertex AI's PipelineService over its gRPC protocol (tests/protocol_fakes), reached by the real
    PipelineServiceClient the adapter builds."""
    from tests.protocol_fakes import vertex as fakes

    fake = fakes.start(REGION)
    yield fake
    fake.server.stop()


def backend(vertex) -> VertexPipelineBackend:
    return VertexPipelineBackend("proj", REGION, emulator_host=vertex.server.address)


@pytest.fixture
def request_(tmp_path):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(COMPILED))
    return JobRequest(job_id="tr-1-a2", display_name="my-model-3", labels={"trainyard-run-id": "tr-1",
                                                                            "trainyard-attempt": "2"},
                      pipeline_job_path=str(path), pipeline_job_uri="gs://a/tr-1/pipeline_job.json",
                      run_spec_uri="gs://a/tr-1/config.json", pipeline_root="gs://root/tr-1",
                      service_account="trainyard-pipeline@p.iam.gserviceaccount.com")


def test_create_sends_the_job_id_labels_root_account_caching_and_parameters(vertex, request_):
    snapshot = backend(vertex).create_job(request_)
    sent = vertex.server.requests("create_pipeline_job")[0]
    assert sent.parent == "projects/proj/locations/europe-west4" and sent.pipeline_job_id == "tr-1-a2"
    job = sent.pipeline_job
    assert job.display_name == "my-model-3" and job.service_account.startswith("trainyard-pipeline@")
    assert dict(job.labels) == {"tfx_version": "1-15-0", "trainyard-run-id": "tr-1", "trainyard-attempt": "2"}
    assert job.runtime_config.gcs_output_directory == "gs://root/tr-1"
    # B8: both forms of runtime parameters reach Vertex
    assert job.runtime_config.parameters["epochs"].int_value == 3
    assert job.runtime_config.parameter_values["note"] == "hi"
    tasks = job.pipeline_spec["root"]["dag"]["tasks"]
    assert all(tasks[name]["cachingOptions"]["enableCache"] for name in ("Trainer", "Pusher"))
    assert snapshot.state == "PIPELINE_STATE_PENDING" and snapshot.name == \
        "projects/proj/locations/europe-west4/pipelineJobs/tr-1-a2"


def test_a_job_submitted_without_caching_says_so_on_every_task(request_):
    """As aiplatform.PipelineJob(enable_caching=False) does: no task of the job is served from the cache."""
    from dataclasses import replace

    job = VertexPipelineBackend.build_pipeline_job(replace(request_, enable_caching=False), COMPILED)
    tasks = job.pipeline_spec["root"]["dag"]["tasks"]
    assert tasks and all(task["cachingOptions"]["enableCache"] is False for task in tasks.values())


def test_an_existing_job_is_success_and_is_read_back(vertex, request_):
    backend(vertex).create_job(request_)
    vertex.pipelines.advance("tr-1-a2", "PIPELINE_STATE_RUNNING")
    snapshot = backend(vertex).create_job(request_)  # a redelivered submit: ALREADY_EXISTS, then read
    assert snapshot.state == "PIPELINE_STATE_RUNNING"
    assert [r.name for r in vertex.server.requests("get_pipeline_job")] == [
        "projects/proj/locations/europe-west4/pipelineJobs/tr-1-a2"]


@pytest.mark.parametrize("code, kind", [
    (grpc.StatusCode.UNAVAILABLE, TransientError),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, TransientError),
    (grpc.StatusCode.INVALID_ARGUMENT, PermanentError),
    (grpc.StatusCode.PERMISSION_DENIED, PermanentError),
])
def test_create_errors_are_transient_or_permanent(vertex, request_, code, kind):
    vertex.server.fail("create_pipeline_job", code, times=10)  # more than the client's own retries
    with pytest.raises(kind):
        backend(vertex).create_job(request_)


def test_a_job_the_service_refuses_is_a_permanent_error_naming_why(vertex, request_):
    bad = replace(request_, labels={"Trainyard Run": "x"})
    with pytest.raises(PermanentError, match="label"):
        backend(vertex).create_job(bad)


def test_a_job_snapshot_reads_states_tasks_times_and_errors(vertex, request_):
    backend(vertex).create_job(request_)
    vertex.pipelines.advance("tr-1-a2", "PIPELINE_STATE_RUNNING", {"ExampleGen": "SKIPPED", "Trainer": "RUNNING"})
    vertex.pipelines.advance("tr-1-a2", "PIPELINE_STATE_FAILED", {"Trainer": "FAILED"})
    with vertex.pipelines.lock:  # what Vertex writes when a task fails
        job = vertex.pipelines.jobs["projects/proj/locations/europe-west4/pipelineJobs/tr-1-a2"]
        job.error = {"message": "The DAG failed because some tasks failed."}
        details = list(job.job_detail.task_details)
        details[1].error = {"message": "OOM on NVIDIA_L4"}
        job.job_detail = aiplatform_v1.PipelineJobDetail(task_details=details)
    snapshot = backend(vertex).get_job("tr-1-a2")
    assert snapshot.state == "PIPELINE_STATE_FAILED" and snapshot.terminal
    assert snapshot.error.startswith("The DAG failed")
    assert [(x.task_name, x.state, x.error) for x in snapshot.tasks] == [
        ("ExampleGen", "SKIPPED", None), ("Trainer", "FAILED", "OOM on NVIDIA_L4")]
    assert snapshot.tasks[0].start_time is None and snapshot.tasks[1].start_time is not None
    assert snapshot.labels["trainyard-run-id"] == "tr-1"


def test_get_unknown_job_is_not_found_and_cancel_names_the_job(vertex, request_):
    with pytest.raises(NotFound):
        backend(vertex).get_job("nope")
    backend(vertex).create_job(request_)
    backend(vertex).cancel_job("tr-1-a2")
    assert [r.name for r in vertex.server.requests("cancel_pipeline_job")] == [
        "projects/proj/locations/europe-west4/pipelineJobs/tr-1-a2"]
    assert vertex.pipelines.job("tr-1-a2").state.name == "PIPELINE_STATE_CANCELLED"


class FakeBlob:
    def __init__(self, store, name):
        self.store, self.name = store, name

    def upload_from_string(self, text, content_type=None):
        self.store[self.name] = text

    def download_as_text(self):
        if self.name not in self.store:
            raise exceptions.NotFound(self.name)
        return self.store[self.name]

    def delete(self):
        del self.store[self.name]


class FakeStorage:
    def __init__(self):
        self.objects: dict[str, dict[str, str]] = {}

    def bucket(self, name):
        store = self.objects.setdefault(name, {})

        class Bucket:
            def blob(self_inner, blob_name):
                return FakeBlob(store, blob_name)

        return Bucket()

    def list_blobs(self, bucket, prefix):
        store = self.objects.setdefault(bucket, {})
        return [FakeBlob(store, n) for n in list(store) if n.startswith(prefix)]


def test_gcs_artifact_store_reads_writes_and_deletes_a_run_prefix():
    storage = FakeStorage()
    store = ArtifactStore(storage)
    store.write_text("gs://arts/tr-1/config.json", "{}")
    store.write_text("gs://arts/tr-1/model/saved_model/x.pb", "pb")
    store.write_text("gs://arts/tr-10/config.json", "{}")  # same prefix letters, another run
    assert store.read_text("gs://arts/tr-1/config.json") == "{}"
    assert store.read_text("gs://arts/tr-1/missing.json") is None
    assert store.delete_tree("gs://arts/tr-1") == 2
    assert list(storage.objects["arts"]) == ["tr-10/config.json"]


def test_pubsub_publisher_sends_json_to_the_project_topic_and_maps_failures():
    class Future:
        def __init__(self, error=None):
            self.error = error

        def result(self, timeout=None):
            if self.error:
                raise self.error
            return "42"

    class Client:
        def __init__(self):
            self.sent = []
            self.error = None

        def topic_path(self, project, topic):
            return f"projects/{project}/topics/{topic}"

        def publish(self, path, data, **attributes):
            self.sent.append((path, json.loads(data), attributes))
            return Future(self.error)

    publisher = PubSubPublisher("proj")
    publisher._client = LazyClient(Client)
    assert publisher.publish("run-submit", {"run_id": "tr-1", "attempt": 1}, run_id="tr-1") == "42"
    assert publisher.client.sent == [("projects/proj/topics/run-submit", {"run_id": "tr-1", "attempt": 1},
                                      {"run_id": "tr-1"})]
    publisher.client.error = exceptions.ServiceUnavailable("emulator down")
    with pytest.raises(TransientError):
        publisher.publish("run-submit", {"run_id": "tr-1"})


class FakeFirestore:
    """Just enough of the Firestore client for catalog reads: documents by path, get_all counted."""

    def __init__(self, docs: dict):
        self.docs = docs
        self.get_all_calls = []

    def collection(self, kind):
        db = self

        class Collection:
            def document(self_inner, doc_id):
                class Ref:
                    path = f"{kind}/{doc_id}"
                    id = doc_id
                return Ref()

        return Collection()

    def get_all(self, refs):
        self.get_all_calls.append([r.path for r in refs])
        for ref in refs:
            class Snap:
                reference = ref
                exists = ref.path in self.docs
                to_dict = staticmethod(lambda path=ref.path: dict(self.docs[path]))
            yield Snap()


def test_catalog_reads_are_cached_after_the_first_and_misses_are_not():
    from shared.adapters.repository import FirestoreRepository

    db = FakeFirestore({"datasets/d1": {"id": "d1", "name": "sales"}, "model_configs/m1": {"id": "m1"}})
    repo = FirestoreRepository("p", client=db)
    first = repo.get_catalog_many([("datasets", "d1"), ("model_configs", "m1"), ("feature_configs", "nope")])
    assert [d and d["id"] for d in first] == ["d1", "m1", None]
    again = repo.get_catalog_many([("datasets", "d1"), ("model_configs", "m1"), ("feature_configs", "nope")])
    assert again == first
    assert db.get_all_calls == [["datasets/d1", "model_configs/m1", "feature_configs/nope"],
                                ["feature_configs/nope"]]  # only the miss is asked again
    again[0]["name"] = "changed by a caller"
    assert repo.get_catalog("datasets", "d1")["name"] == "sales"  # callers get copies

"""Cloud adapters checked at the client boundary: what they send to the official clients and how
they read the answers — Vertex AI Pipelines (GAPIC), Cloud Storage, Pub/Sub."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from shared.artifact_store import ArtifactStore
from shared.errors import NotFound, PermanentError, TransientError
from shared.messaging import PubSubPublisher
from shared.pipelines import JobRequest, VertexPipelineBackend

COMPILED = {"displayName": "x", "labels": {"tfx_version": "1-15-0"},
            "pipelineSpec": {"pipelineInfo": {"name": "trainyard-tr-1"},
                             "root": {"dag": {"tasks": {"Trainer": {"taskInfo": {"name": "Trainer"}},
                                                        "Pusher": {"taskInfo": {"name": "Pusher"}}}}}},
            "runtimeConfig": {"gcsOutputDirectory": "gs://root/tr-1", "parameterValues": {}}}


class FakePipelineClient:
    def __init__(self, create_error=None, job=None):
        self.created, self.cancelled, self.got = [], [], []
        self.create_error = create_error
        self.job = job

    def create_pipeline_job(self, parent, pipeline_job, pipeline_job_id):
        self.created.append((parent, pipeline_job, pipeline_job_id))
        if self.create_error:
            raise self.create_error
        return aiplatform_v1.PipelineJob(name=f"{parent}/pipelineJobs/{pipeline_job_id}",
                                         state=aiplatform_v1.PipelineState.PIPELINE_STATE_QUEUED)

    def get_pipeline_job(self, name):
        self.got.append(name)
        if self.job is None:
            raise exceptions.NotFound("no job")
        return self.job

    def cancel_pipeline_job(self, name):
        self.cancelled.append(name)


@pytest.fixture
def request_(tmp_path):
    path = tmp_path / "job.json"
    path.write_text(json.dumps(COMPILED))
    return JobRequest(job_id="tr-1-a2", display_name="my-model-3", labels={"trainyard-run-id": "tr-1",
                                                                            "trainyard-attempt": "2"},
                      pipeline_job_path=str(path), pipeline_job_uri="gs://a/tr-1/pipeline_job.json",
                      run_spec_uri="gs://a/tr-1/config.json", pipeline_root="gs://root/tr-1",
                      service_account="trainyard-pipeline@p.iam.gserviceaccount.com")


def test_create_sends_the_job_id_labels_root_account_and_caching(request_):
    client = FakePipelineClient()
    snapshot = VertexPipelineBackend("proj", "europe-west4", client).create_job(request_)
    parent, job, job_id = client.created[0]
    assert parent == "projects/proj/locations/europe-west4" and job_id == "tr-1-a2"
    assert job.display_name == "my-model-3" and job.service_account.startswith("trainyard-pipeline@")
    assert dict(job.labels) == {"tfx_version": "1-15-0", "trainyard-run-id": "tr-1", "trainyard-attempt": "2"}
    assert job.runtime_config.gcs_output_directory == "gs://root/tr-1"
    tasks = job.pipeline_spec["root"]["dag"]["tasks"]
    assert all(tasks[name]["cachingOptions"]["enableCache"] for name in ("Trainer", "Pusher"))
    assert snapshot.state == "PIPELINE_STATE_QUEUED" and snapshot.name.endswith("/pipelineJobs/tr-1-a2")


def test_an_existing_job_is_success_and_is_read_back(request_):
    existing = aiplatform_v1.PipelineJob(name="projects/proj/locations/r/pipelineJobs/tr-1-a2",
                                         state=aiplatform_v1.PipelineState.PIPELINE_STATE_RUNNING)
    client = FakePipelineClient(create_error=exceptions.AlreadyExists("exists"), job=existing)
    snapshot = VertexPipelineBackend("proj", "r", client).create_job(request_)
    assert snapshot.state == "PIPELINE_STATE_RUNNING"
    assert client.got == ["projects/proj/locations/r/pipelineJobs/tr-1-a2"]


@pytest.mark.parametrize("error, kind", [
    (exceptions.ServiceUnavailable("down"), TransientError),
    (exceptions.TooManyRequests("slow down"), TransientError),
    (exceptions.InvalidArgument("bad spec"), PermanentError),
    (exceptions.PermissionDenied("no actAs"), PermanentError),
])
def test_create_errors_are_transient_or_permanent(request_, error, kind):
    with pytest.raises(kind):
        VertexPipelineBackend("proj", "r", FakePipelineClient(create_error=error)).create_job(request_)


def test_a_job_snapshot_reads_states_tasks_times_and_errors():
    t = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
    job = aiplatform_v1.PipelineJob(
        name="projects/p/locations/r/pipelineJobs/tr-1-a1", state=aiplatform_v1.PipelineState.PIPELINE_STATE_FAILED,
        start_time=t, end_time=t, error={"message": "The DAG failed because some tasks failed."},
        labels={"trainyard-run-id": "tr-1"},
        job_detail=aiplatform_v1.PipelineJobDetail(task_details=[
            aiplatform_v1.PipelineTaskDetail(task_name="ExampleGen", state=aiplatform_v1.PipelineTaskDetail.State.SKIPPED,
                                             start_time=t, end_time=t),
            aiplatform_v1.PipelineTaskDetail(task_name="Trainer", state=aiplatform_v1.PipelineTaskDetail.State.FAILED,
                                             start_time=t, end_time=t, error={"message": "OOM on NVIDIA_L4"})]))
    snapshot = VertexPipelineBackend("p", "r", FakePipelineClient(job=job)).get_job("tr-1-a1")
    assert snapshot.state == "PIPELINE_STATE_FAILED" and snapshot.terminal
    assert snapshot.error.startswith("The DAG failed")
    assert [(x.task_name, x.state, x.error) for x in snapshot.tasks] == [
        ("ExampleGen", "SKIPPED", None), ("Trainer", "FAILED", "OOM on NVIDIA_L4")]
    assert snapshot.tasks[0].start_time == t and snapshot.labels == {"trainyard-run-id": "tr-1"}


def test_get_unknown_job_is_not_found_and_cancel_names_the_job():
    client = FakePipelineClient()
    backend = VertexPipelineBackend("p", "r", client)
    with pytest.raises(NotFound):
        backend.get_job("nope")
    backend.cancel_job("tr-1-a1")
    assert client.cancelled == ["projects/p/locations/r/pipelineJobs/tr-1-a1"]


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
    publisher._client = Client()
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
    from shared.repository import FirestoreRepository

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

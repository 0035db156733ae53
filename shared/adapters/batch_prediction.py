"""Batch prediction: top-K for a file of instances, written to GCS JSONL or a BigQuery dataset, by the
prediction container's own code. One interface, two sides, chosen once from settings (shared/composition.py):

- Vertex: a BatchPredictionJob (JobServiceClient.create_batch_prediction_job, the official GAPIC client,
  imported lazily) of the registered model version, so it runs the container the version was registered
  with (Trainyard's serving_image/). Fields: cloud.google.com/vertex-ai/docs/reference/rest/v1/
  projects.locations.batchPredictionJobs —
  - input_config: instances_format "jsonl", gcs_source.uris (one instance per line);
  - model_parameters: passed to every prediction request as `parameters` (here `{"k": k}`);
  - output_config: ONE of gcs_destination (output_uri_prefix; Vertex writes prediction.results-* files,
    each line `{"instance", "prediction"}`, in a new prediction-<model>-<time> directory) or
    bigquery_destination (output_uri `bq://project.dataset`: Vertex creates a predictions table there);
    so GCS and BigQuery together are two jobs;
  - dedicated_resources: BatchDedicatedResources(machine_spec, starting_replica_count, max_replica_count);
  - service_account: the pipeline's account (terraform/iam.tf `pipeline`). The proto: "The service account that
    the DeployedModel's container runs as. If not specified, a system generated one will be used, which has
    minimal permissions [...] Users deploying the Model must have the iam.serviceAccounts.actAs permission on
    this service account" (google/cloud/aiplatform/v1/batch_prediction_job.proto): run-commands acts as it;
  - completion_stats (successful_count, failed_count, incomplete_count) and output_info
    (gcs_output_directory, bigquery_output_table): progress, row counts, where the rows are.
  Idempotent: each job is labelled with its batch id and output kind, and a start finds a labelled job
  before it creates one, so a redelivered command never starts a second job.
- local: model_server/batch.py (the container's code) over the file, in the run-commands consumer,
  into `{destination}/{run_id}-{batch_id}/`, with a result file that makes a repeat a no-op. GCS JSONL only:
  the local stack has no BigQuery.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

from shared.adapters.vertex_gapic import RegionalService, gapic
from shared.contract.labels import RUN_ID_LABEL, label_value
from shared.errors import PermanentError, TransientError

BATCH_ID_LABEL = "trainyard-batch-id"
OUTPUT_LABEL = "trainyard-batch-output"
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
_STATES = {"JOB_STATE_SUCCEEDED": SUCCEEDED, "JOB_STATE_FAILED": FAILED, "JOB_STATE_CANCELLED": FAILED,
           "JOB_STATE_EXPIRED": FAILED, "JOB_STATE_PARTIALLY_SUCCEEDED": SUCCEEDED}


@dataclass(frozen=True)
class BatchJobRequest:
    run_id: str
    run_name: str
    batch_id: str
    kind: str  # "gcs" or "bigquery"
    destination: str  # gs://prefix (locally also a path) or project.dataset
    model_resource_name: str
    model_version_id: str
    serving_model_uri: str  # the local side loads it; Vertex runs the registered version
    input_uri: str
    k: int
    machine_count: int


@dataclass(frozen=True)
class BatchJobStatus:
    state: str  # running, succeeded, failed
    rows: int = 0
    failed_rows: int = 0
    location: Optional[str] = None
    error: Optional[str] = None


class BatchPredictions(Protocol):
    wait_s: float  # how long one delivery follows a job before handing it to a redelivery
    poll_s: float

    def start(self, request: BatchJobRequest) -> str:
        """The job writing this output (the one already started for it, if any)."""

    def status(self, job: str) -> BatchJobStatus:
        """Where the job is."""


class VertexBatchPredictions(RegionalService):
    CLIENT = "JobServiceClient"

    def __init__(self, project: str, region: str, machine_type: str, wait_s: float = 480, poll_s: float = 30,
                 client=None, emulator_host: str = "", service_account: str = ""):
        super().__init__(project, region, client, emulator_host)
        self.machine_type, self.service_account = machine_type, service_account
        self.wait_s, self.poll_s = wait_s, poll_s

    def start(self, request: BatchJobRequest) -> str:
        from google.api_core import exceptions
        aiplatform_v1 = gapic()
        labels = {RUN_ID_LABEL: label_value(request.run_id), BATCH_ID_LABEL: label_value(request.batch_id),
                  OUTPUT_LABEL: request.kind}
        wanted = " AND ".join(f'labels.{key}="{value}"' for key, value in labels.items())
        try:
            for job in self.client.list_batch_prediction_jobs(request={"parent": self.parent, "filter": wanted}):
                return job.name
            if request.kind == "bigquery":
                output = aiplatform_v1.BatchPredictionJob.OutputConfig(
                    predictions_format="bigquery",
                    bigquery_destination=aiplatform_v1.BigQueryDestination(output_uri=f"bq://{request.destination}"))
            else:
                output = aiplatform_v1.BatchPredictionJob.OutputConfig(
                    predictions_format="jsonl",
                    gcs_destination=aiplatform_v1.GcsDestination(output_uri_prefix=request.destination))
            job = aiplatform_v1.BatchPredictionJob(
                display_name=f"{request.run_name}-batch-{request.batch_id}-{request.kind}"[:128],
                model=f"{request.model_resource_name}@{request.model_version_id}",
                input_config=aiplatform_v1.BatchPredictionJob.InputConfig(
                    instances_format="jsonl", gcs_source=aiplatform_v1.GcsSource(uris=[request.input_uri])),
                model_parameters={"k": request.k}, output_config=output,  # a google.protobuf.Value
                dedicated_resources=aiplatform_v1.BatchDedicatedResources(
                    machine_spec=aiplatform_v1.MachineSpec(machine_type=self.machine_type),
                    starting_replica_count=request.machine_count, max_replica_count=request.machine_count),
                labels=labels, service_account=self.service_account)
            return self.client.create_batch_prediction_job(parent=self.parent, batch_prediction_job=job).name
        except exceptions.GoogleAPICallError as exc:
            raise _mapped(exc, "starting the batch prediction job") from exc

    def status(self, job: str) -> BatchJobStatus:
        from google.api_core import exceptions

        try:
            found = self.client.get_batch_prediction_job(name=job)
        except exceptions.GoogleAPICallError as exc:
            raise _mapped(exc, f"reading batch prediction job {job}") from exc
        stats, info = found.completion_stats, found.output_info
        state = _STATES.get(found.state.name, RUNNING)
        return BatchJobStatus(
            state=state, rows=int(stats.successful_count), failed_rows=int(stats.failed_count),
            location=info.gcs_output_directory or (f"{info.bigquery_output_dataset.removeprefix('bq://')}."
                                                   f"{info.bigquery_output_table}" if info.bigquery_output_table else None),
            error=(found.error.message or found.state.name) if state == FAILED else None)


def _mapped(exc, what: str):
    from shared.adapters.serving.vertex import map_error

    return map_error(exc, what, stage="BatchPredict")


class LocalBatchPredictions:
    """The container's code in this process (the local run-commands consumer), synchronously: `start`
    returns once the file is written, so a redelivery finds the result and does nothing again."""

    wait_s, poll_s = 0.0, 0.0

    def __init__(self, models=None):
        self.models = models  # model_server.savedmodel.ModelCache, made on first use

    def start(self, request: BatchJobRequest) -> str:
        if request.kind != "gcs":
            raise PermanentError("the local stack writes batch predictions as JSONL files only: it has no BigQuery",
                                 stage="BatchPredict")
        from model_server.batch import predict_file, write_result
        from model_server.savedmodel import BadRequest, ModelCache, ModelLoadError

        job = f"{request.destination.rstrip('/')}/{label_value(request.run_id)}-{request.batch_id}"
        if self.status(job).state != RUNNING:
            return job
        self.models = self.models or ModelCache()
        try:
            result = predict_file(self.models.get(request.serving_model_uri), request.input_uri, job, k=request.k)
        except (BadRequest, ModelLoadError) as exc:
            result = {"error": str(exc)}
        except OSError as exc:
            raise TransientError(f"batch prediction over {request.input_uri}: {exc}") from exc
        if not result.get("error") and not result["rows"] and result["failed_rows"]:
            result["error"] = f"every instance was refused: {result['first_error']}"  # as a job that answered none
        write_result(job, result)
        return job

    def status(self, job: str) -> BatchJobStatus:
        from model_server.batch import read_result

        result = read_result(job)
        if result is None:
            return BatchJobStatus(state=RUNNING)
        if result.get("error"):
            return BatchJobStatus(state=FAILED, error=result["error"])
        return BatchJobStatus(state=SUCCEEDED, rows=result["rows"], failed_rows=result["failed_rows"],
                              location=result["location"])

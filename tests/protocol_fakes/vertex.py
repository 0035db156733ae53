"""Vertex AI's PipelineService and JobService, as far as Trainyard calls them, over their real gRPC
protocol (tests/protocol_fakes/grpc_service.py). They keep state and enforce the documented rules
that matter here, answering with Google's status codes:

- resource names `projects/{project}/locations/{location}/pipelineJobs/{id}` (customJobs likewise);
- pipeline_job_id "less than 128 characters, valid characters are /[a-z][0-9]-/" and unique
  (ALREADY_EXISTS), labels "no longer than 64 characters, lowercase letters, numeric characters,
  underscores and dashes" (keys start with a letter; at most 64), a pipeline spec and a
  gcs_output_directory (INVALID_ARGUMENT otherwise);
- cancel of a job that already ended: FAILED_PRECONDITION; an unknown name: NOT_FOUND.
  (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.pipelineJobs)

Tests play a job's life with `advance(job_id, state, tasks)`, and the Trainer's own CustomJob with
`add_custom_job(...)`, as Vertex would while the pipeline runs.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

import grpc
from google.cloud import aiplatform_v1
from google.protobuf import empty_pb2
from google.rpc import status_pb2

NAME = re.compile(r"projects/([^/]+)/locations/([^/]+)")
JOB_ID = re.compile(r"[a-z][a-z0-9-]{0,127}")
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,63}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,64}")
TERMINAL = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}
JOB_TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


def _now():
    return datetime.now(timezone.utc)


def _labels_problem(labels) -> str | None:
    if len(labels) > 64:
        return "at most 64 labels"
    for key, value in labels.items():
        if not LABEL_KEY.fullmatch(key) or not LABEL_VALUE.fullmatch(value):
            return f"label {key}={value!r}: keys and values are lowercase letters, digits, '_' and '-' (keys start with a letter), up to 64"
    return None


def _parent(parent: str, context, location: str | None):
    m = NAME.fullmatch(parent)
    if not m:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"parent {parent!r} is not projects/P/locations/L")
    if location and m.group(2) != location:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"location {m.group(2)} is not served at this endpoint ({location})")
    return m


def _copy_of(resources: dict, lock, name: str, message_class, context):
    """Get<Resource>: a copy of the stored resource, NOT_FOUND as Vertex answers an unknown name."""
    with lock:
        resource = resources.get(name)
        if resource is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{message_class.__name__} {name} does not exist")
        return message_class(resource)


class PipelineServiceFake:
    def __init__(self, location: str | None = None):
        self.location = location
        self.jobs: dict[str, aiplatform_v1.PipelineJob] = {}
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ the methods the clients call

    def create_pipeline_job(self, request: aiplatform_v1.CreatePipelineJobRequest, context):
        _parent(request.parent, context, self.location)
        job_id = request.pipeline_job_id
        if not JOB_ID.fullmatch(job_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"pipeline_job_id {job_id!r} must match [a-z][a-z0-9-]{{0,127}}")
        job = aiplatform_v1.PipelineJob(request.pipeline_job)
        problem = _labels_problem(dict(job.labels))
        if problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        spec = dict(job.pipeline_spec)
        if not spec.get("root") or not spec.get("deploymentSpec") or not spec.get("pipelineInfo"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "pipeline_spec needs root, deploymentSpec and pipelineInfo")
        if not job.runtime_config.gcs_output_directory:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "runtime_config.gcs_output_directory is required")
        name = f"{request.parent}/pipelineJobs/{job_id}"
        with self.lock:
            if name in self.jobs:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"PipelineJob {name} already exists")
            job.name = name
            job.state = aiplatform_v1.PipelineState.PIPELINE_STATE_PENDING
            job.create_time = _now()
            self.jobs[name] = job
            return aiplatform_v1.PipelineJob(job)

    def get_pipeline_job(self, request: aiplatform_v1.GetPipelineJobRequest, context):
        return _copy_of(self.jobs, self.lock, request.name, aiplatform_v1.PipelineJob, context)

    def list_pipeline_jobs(self, request: aiplatform_v1.ListPipelineJobsRequest, context):
        _parent(request.parent, context, self.location)
        with self.lock:
            jobs = [aiplatform_v1.PipelineJob(j) for n, j in self.jobs.items() if n.startswith(request.parent + "/")]
        return aiplatform_v1.ListPipelineJobsResponse(pipeline_jobs=[j for j in jobs if _matches(j, request.filter)])

    def cancel_pipeline_job(self, request: aiplatform_v1.CancelPipelineJobRequest, context):
        with self.lock:
            job = self.jobs.get(request.name)
            if job is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"PipelineJob {request.name} does not exist")
            if job.state.name in TERMINAL:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"PipelineJob {request.name} is in state {job.state.name}")
            job.state = aiplatform_v1.PipelineState.PIPELINE_STATE_CANCELLED
            job.end_time = _now()
        return empty_pb2.Empty()

    # ------------------------------------------------------------------ what a test plays

    def job(self, job_id: str) -> aiplatform_v1.PipelineJob:
        with self.lock:
            return next(aiplatform_v1.PipelineJob(j) for n, j in self.jobs.items() if n.endswith("/" + job_id))

    def advance(self, job_id: str, state: str, tasks: dict[str, str] | None = None,
                task_errors: dict[str, str] | None = None, main_jobs: dict[str, str] | None = None
                ) -> aiplatform_v1.PipelineJob:
        """Move a job (and its tasks, name -> PipelineTaskDetail.State name) as Vertex would; a failed
        task's `error` (google.rpc.Status message) and the CustomJob it ran as (`main_jobs`) when given."""
        with self.lock:
            job = next(j for n, j in self.jobs.items() if n.endswith("/" + job_id))
            job.state = aiplatform_v1.PipelineState[state]
            now = _now()
            if state == "PIPELINE_STATE_RUNNING" and not job.start_time:
                job.start_time = now
            if state in TERMINAL:
                job.end_time = now
            details = {t.task_name: t for t in job.job_detail.task_details}
            for task_name, task_state in (tasks or {}).items():
                task = details.get(task_name) or aiplatform_v1.PipelineTaskDetail(task_name=task_name, create_time=now)
                task.state = aiplatform_v1.PipelineTaskDetail.State[task_state]
                if task_state == "RUNNING" and not task.start_time:
                    task.start_time = now
                if task_state in ("SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"):
                    task.end_time = now
                if task_name in (task_errors or {}):
                    task.error = status_pb2.Status(code=9, message=task_errors[task_name])
                if task_name in (main_jobs or {}):
                    container = aiplatform_v1.PipelineTaskExecutorDetail.ContainerDetail(
                        main_job=main_jobs[task_name],
                        failed_main_jobs=[main_jobs[task_name]] if task_state == "FAILED" else [])
                    task.executor_detail = aiplatform_v1.PipelineTaskExecutorDetail(container_detail=container)
                details[task_name] = task
            job.job_detail = aiplatform_v1.PipelineJobDetail(task_details=list(details.values()))
            return aiplatform_v1.PipelineJob(job)


class JobServiceFake:
    """CustomJobs: the Trainer's own job (TFX's Vertex Trainer creates it, labelled with the run).
    BatchPredictionJobs: batch recommendations (shared/adapters/batch_prediction.py); created PENDING, with
    the documented checks (a model version, a JSONL or BigQuery input, exactly one output destination,
    replica counts ≥ 1: cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.batchPredictionJobs);
    tests end them with `finish_batch(...)`, as Vertex would."""

    def __init__(self, location: str | None = None):
        self.location = location
        self.custom_jobs: dict[str, aiplatform_v1.CustomJob] = {}
        self.batch_jobs: dict[str, aiplatform_v1.BatchPredictionJob] = {}
        self.lock = threading.Lock()

    def create_batch_prediction_job(self, request: aiplatform_v1.CreateBatchPredictionJobRequest, context):
        _parent(request.parent, context, self.location)
        job = aiplatform_v1.BatchPredictionJob(request.batch_prediction_job)
        problem = _labels_problem(job.labels)
        if not job.display_name:
            problem = "display_name is required"
        elif not re.fullmatch(r"projects/[^/]+/locations/[^/]+/models/[^/@]+(@[^/]+)?", job.model):
            problem = f"model {job.model!r} is not projects/P/locations/L/models/M[@version]"
        elif job.input_config.instances_format not in ("jsonl", "bigquery", "csv", "tf-record", "file-list"):
            problem = f"instances_format {job.input_config.instances_format!r} is not supported"
        elif not (list(job.input_config.gcs_source.uris) or job.input_config.bigquery_source.input_uri):
            problem = "input_config needs a gcs_source or a bigquery_source"
        elif bool(job.output_config.gcs_destination.output_uri_prefix) == bool(job.output_config.bigquery_destination.output_uri):
            problem = "output_config takes exactly one of gcs_destination and bigquery_destination"
        elif job.dedicated_resources.starting_replica_count < 1 or \
                job.dedicated_resources.max_replica_count < job.dedicated_resources.starting_replica_count:
            problem = "dedicated_resources: starting_replica_count ≥ 1 and max_replica_count ≥ it"
        if problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        with self.lock:
            job.name = f"{request.parent}/batchPredictionJobs/{len(self.batch_jobs) + 1000}"
            job.state = aiplatform_v1.JobState.JOB_STATE_PENDING
            job.create_time = _now()
            self.batch_jobs[job.name] = job
            return aiplatform_v1.BatchPredictionJob(job)

    def get_batch_prediction_job(self, request: aiplatform_v1.GetBatchPredictionJobRequest, context):
        return _copy_of(self.batch_jobs, self.lock, request.name, aiplatform_v1.BatchPredictionJob, context)

    def list_batch_prediction_jobs(self, request: aiplatform_v1.ListBatchPredictionJobsRequest, context):
        _parent(request.parent, context, self.location)
        with self.lock:
            jobs = [aiplatform_v1.BatchPredictionJob(j) for n, j in self.batch_jobs.items()
                    if n.startswith(request.parent + "/")]
        return aiplatform_v1.ListBatchPredictionJobsResponse(
            batch_prediction_jobs=[j for j in jobs if _matches(j, request.filter)])

    def finish_batch(self, name: str, state: str = "JOB_STATE_SUCCEEDED", successful: int = 0, failed: int = 0,
                     error: str = ""):
        """End a batch job as Vertex does: its counts, where it wrote, or the error."""
        with self.lock:
            job = self.batch_jobs[name]
            job.state = aiplatform_v1.JobState[state]
            job.completion_stats = aiplatform_v1.CompletionStats(successful_count=successful, failed_count=failed)
            stamp = _now().strftime("%Y_%m_%dT%H_%M_%S_%fZ")
            if job.output_config.gcs_destination.output_uri_prefix:
                job.output_info = aiplatform_v1.BatchPredictionJob.OutputInfo(
                    gcs_output_directory=f"{job.output_config.gcs_destination.output_uri_prefix}/prediction-{job.display_name}-{stamp}")
            else:
                job.output_info = aiplatform_v1.BatchPredictionJob.OutputInfo(
                    bigquery_output_dataset=job.output_config.bigquery_destination.output_uri,
                    bigquery_output_table=f"predictions_{stamp}")
            if error:
                job.error = status_pb2.Status(code=8, message=error)

    def list_custom_jobs(self, request: aiplatform_v1.ListCustomJobsRequest, context):
        _parent(request.parent, context, self.location)
        with self.lock:
            jobs = [aiplatform_v1.CustomJob(j) for n, j in self.custom_jobs.items() if n.startswith(request.parent + "/")]
        return aiplatform_v1.ListCustomJobsResponse(custom_jobs=[j for j in jobs if _matches(j, request.filter)])

    def get_custom_job(self, request: aiplatform_v1.GetCustomJobRequest, context):
        return _copy_of(self.custom_jobs, self.lock, request.name, aiplatform_v1.CustomJob, context)

    def cancel_custom_job(self, request: aiplatform_v1.CancelCustomJobRequest, context):
        with self.lock:
            job = self.custom_jobs.get(request.name)
            if job is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"CustomJob {request.name} does not exist")
            if job.state.name in JOB_TERMINAL:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"CustomJob {request.name} is in state {job.state.name}")
            job.state = aiplatform_v1.JobState.JOB_STATE_CANCELLED
        return empty_pb2.Empty()

    def add_custom_job(self, parent: str, job_id: str, labels: dict, state: str = "JOB_STATE_RUNNING",
                       error: str = "", code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT):
        """A CustomJob as the Trainer's launcher makes it; a failed one carries `error` as the google.rpc.Status
        of `code` (a job refused its GPUs: RESOURCE_EXHAUSTED, code 8)."""
        with self.lock:
            name = f"{parent}/customJobs/{job_id}"
            self.custom_jobs[name] = aiplatform_v1.CustomJob(name=name, display_name=job_id, labels=labels,
                                                             state=aiplatform_v1.JobState[state], create_time=_now())
            if error:  # what Vertex sets on a failed job: google.rpc.Status
                self.custom_jobs[name].error = status_pb2.Status(code=code.value[0], message=error)
            return name

    def custom_job(self, name: str) -> aiplatform_v1.CustomJob:
        with self.lock:
            return aiplatform_v1.CustomJob(self.custom_jobs[name])

    def state(self, name: str) -> str:
        with self.lock:
            return self.custom_jobs[name].state.name


_FILTER_TERM = re.compile(r'(labels\.[a-z0-9_-]+|display_name)\s*=\s*"([^"]*)"')


def _matches(resource, filter_text: str) -> bool:
    """The subset of AIP-160 filters the project writes: labels.K="V" and display_name="V" terms joined
    with AND."""
    if not filter_text:
        return True
    for term in (t.strip() for t in filter_text.split(" AND ")):
        m = _FILTER_TERM.fullmatch(term)
        if not m:
            raise ValueError(f"unsupported filter term {term!r}")
        field, value = m.groups()
        got = resource.display_name if field == "display_name" else resource.labels.get(field.split(".", 1)[1])
        if got != value:
            return False
    return True


# --------------------------------------------------------------------------- Model Registry and Endpoints

ENDPOINT_ID = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")


class ModelServiceFake:
    """Models with versions (https://cloud.google.com/vertex-ai/docs/model-registry/versioning): an
    upload without parent_model makes a model (version 1); with parent_model, the next version of it.
    The alias `default` names the version a bare model name means."""

    def __init__(self, operations, location: str | None = None):
        self.operations = operations
        self.location = location
        self.models: dict[str, list[aiplatform_v1.Model]] = {}  # model name -> versions
        self.lock = threading.Lock()
        self.counter = 1000

    def upload_model(self, request: aiplatform_v1.UploadModelRequest, context):
        _parent(request.parent, context, self.location)
        model = aiplatform_v1.Model(request.model)
        if not model.display_name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "model.display_name is required")
        if not model.container_spec.image_uri:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "model.container_spec.image_uri is required")
        problem = _labels_problem(dict(model.labels))
        if problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        with self.lock:
            if request.parent_model:
                versions = self.models.get(request.parent_model)
                if versions is None:
                    context.abort(grpc.StatusCode.NOT_FOUND, f"parent model {request.parent_model} does not exist")
                name = request.parent_model
            else:
                self.counter += 1
                name, versions = f"{request.parent}/models/{self.counter}", []
                self.models[name] = versions
            model.name = name
            model.version_id = str(len(versions) + 1)
            model.create_time = model.version_create_time = _now()
            aliases = [a for a in model.version_aliases]
            if not versions or "default" in aliases:
                for old in versions:
                    old.version_aliases = [a for a in old.version_aliases if a != "default"]
                if "default" not in aliases:
                    aliases.append("default")
            model.version_aliases = aliases
            versions.append(model)
            response = aiplatform_v1.UploadModelResponse(model=name, model_version_id=model.version_id)
        return self.operations.start(request.parent, response, aiplatform_v1.UploadModelOperationMetadata())

    def _resolve(self, name: str, context) -> aiplatform_v1.Model:
        base, _, version = name.partition("@")
        versions = self.models.get(base)
        if not versions:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Model {name} does not exist")
        for model in versions:
            if (not version and "default" in model.version_aliases) or model.version_id == version \
                    or version in model.version_aliases:
                return aiplatform_v1.Model(model)
        context.abort(grpc.StatusCode.NOT_FOUND, f"Model {name} does not exist")

    def get_model(self, request: aiplatform_v1.GetModelRequest, context):
        with self.lock:
            return self._resolve(request.name, context)

    def list_models(self, request: aiplatform_v1.ListModelsRequest, context):
        _parent(request.parent, context, self.location)
        with self.lock:
            defaults = [self._resolve(name, context) for name in self.models if name.startswith(request.parent + "/")]
        return aiplatform_v1.ListModelsResponse(models=[m for m in defaults if _matches(m, request.filter)])

    def list_model_versions(self, request: aiplatform_v1.ListModelVersionsRequest, context):
        with self.lock:
            versions = [aiplatform_v1.Model(m) for m in self.models.get(request.name, [])]
        if request.name not in self.models:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Model {request.name} does not exist")
        return aiplatform_v1.ListModelVersionsResponse(models=[m for m in versions if _matches(m, request.filter)])

    def version(self, name: str) -> aiplatform_v1.Model:
        with self.lock:
            base, _, version = name.partition("@")
            return next(aiplatform_v1.Model(m) for m in self.models[base] if m.version_id == version)


class EndpointServiceFake:
    """Endpoints, deployments and traffic splits
    (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/deployModel):
    a deployed model is a version of a registered model on dedicated machines; the split's percentages
    add up to 100 ("0" names the model being deployed). `serve(model)` stands in for the model server
    Vertex starts from the model's container: it returns None once it answers, or why it did not."""

    def __init__(self, operations, models: ModelServiceFake, location: str | None = None, serve=None):
        self.operations = operations
        self.models = models
        self.location = location
        self.serve = serve
        self.endpoints: dict[str, aiplatform_v1.Endpoint] = {}
        self.lock = threading.Lock()
        self.counter = 5000

    def create_endpoint(self, request: aiplatform_v1.CreateEndpointRequest, context):
        _parent(request.parent, context, self.location)
        endpoint_id = request.endpoint_id or str(self.counter + 1)
        if request.endpoint_id and not ENDPOINT_ID.fullmatch(request.endpoint_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"endpoint_id {request.endpoint_id!r}: a letter first, "
                          "then up to 62 of [a-z0-9-], not ending in '-'")
        endpoint = aiplatform_v1.Endpoint(request.endpoint)
        if not endpoint.display_name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "endpoint.display_name is required")
        problem = _labels_problem(dict(endpoint.labels))
        if problem:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        name = f"{request.parent}/endpoints/{endpoint_id}"
        with self.lock:
            if name in self.endpoints:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Endpoint {name} already exists")
            endpoint.name = name
            endpoint.create_time = _now()
            self.endpoints[name] = endpoint
            created = aiplatform_v1.Endpoint(endpoint)
        return self.operations.start(request.parent, created, aiplatform_v1.CreateEndpointOperationMetadata())

    def get_endpoint(self, request: aiplatform_v1.GetEndpointRequest, context):
        with self.lock:
            endpoint = self.endpoints.get(request.name)
            if endpoint is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Endpoint {request.name} does not exist")
            return aiplatform_v1.Endpoint(endpoint)

    def list_endpoints(self, request: aiplatform_v1.ListEndpointsRequest, context):
        """Pages by the endpoint's name, `page_size` at a time (default 100 here), as ListEndpointsResponse's
        next_page_token says (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/projects.locations.endpoints/list)."""
        _parent(request.parent, context, self.location)
        size = request.page_size or 100
        with self.lock:
            names = sorted(n for n in self.endpoints if n.startswith(request.parent + "/") and n > request.page_token)
            page = [aiplatform_v1.Endpoint(self.endpoints[n]) for n in names[:size]]
        return aiplatform_v1.ListEndpointsResponse(endpoints=page, next_page_token=page[-1].name if len(names) > size else "")

    @staticmethod
    def _check_split(split: dict, known: set, context) -> None:
        if split and sum(split.values()) != 100:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"traffic_split {split} must add up to 100")
        unknown = set(split) - known
        if unknown:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"traffic_split names no deployed model {sorted(unknown)}")

    def deploy_model(self, request: aiplatform_v1.DeployModelRequest, context):
        with self.lock:
            endpoint = self.endpoints.get(request.endpoint)
            if endpoint is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Endpoint {request.endpoint} does not exist")
            deployed = aiplatform_v1.DeployedModel(request.deployed_model)
            model = self.models._resolve(deployed.model, context)
            resources = deployed.dedicated_resources
            if not resources.machine_spec.machine_type or resources.min_replica_count < 1:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a custom-trained model needs dedicated_resources "
                              "with a machine_type and min_replica_count >= 1")
            split = dict(request.traffic_split)
            self._check_split(split, {d.id for d in endpoint.deployed_models} | {"0"}, context)
        failure = self.serve(model) if self.serve else None
        if failure:
            return self.operations.start(request.endpoint, error=(grpc.StatusCode.FAILED_PRECONDITION,
                                                                   f"Model server never became ready: {failure}"))
        with self.lock:
            self.counter += 1
            deployed.id = str(self.counter)
            deployed.model_version_id = model.version_id
            deployed.create_time = _now()
            endpoint.deployed_models.append(deployed)
            if split:
                endpoint.traffic_split = {(deployed.id if k == "0" else k): v for k, v in split.items()}
            elif len(endpoint.deployed_models) == 1:
                endpoint.traffic_split = {deployed.id: 100}
            response = aiplatform_v1.DeployModelResponse(deployed_model=deployed)
        return self.operations.start(request.endpoint, response, aiplatform_v1.DeployModelOperationMetadata())

    def undeploy_model(self, request: aiplatform_v1.UndeployModelRequest, context):
        with self.lock:
            endpoint = self.endpoints.get(request.endpoint)
            if endpoint is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Endpoint {request.endpoint} does not exist")
            remaining = [d for d in endpoint.deployed_models if d.id != request.deployed_model_id]
            if len(remaining) == len(endpoint.deployed_models):
                context.abort(grpc.StatusCode.NOT_FOUND, f"no deployed model {request.deployed_model_id}")
            split = dict(request.traffic_split) or {k: v for k, v in endpoint.traffic_split.items()
                                                     if k != request.deployed_model_id}
            if remaining:
                self._check_split(split, {d.id for d in remaining}, context)
            endpoint.deployed_models = remaining
            endpoint.traffic_split = split if remaining else {}
        return self.operations.start(request.endpoint, aiplatform_v1.UndeployModelResponse(),
                                     aiplatform_v1.UndeployModelOperationMetadata())

    def update_endpoint(self, request: aiplatform_v1.UpdateEndpointRequest, context):
        """Only the fields `update_mask` names change (https://cloud.google.com/vertex-ai/docs/reference/rest/v1/
        projects.locations.endpoints/patch); traffic_split as in deploy_model, over the models deployed."""
        paths = list(request.update_mask.paths)
        if not paths:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "update_mask is required")
        unsupported = sorted(set(paths) - {"traffic_split", "display_name", "description", "labels"})
        if unsupported:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"update_mask names fields that cannot change: {unsupported}")
        with self.lock:
            endpoint = self.endpoints.get(request.endpoint.name)
            if endpoint is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Endpoint {request.endpoint.name} does not exist")
            if "traffic_split" in paths:
                split = dict(request.endpoint.traffic_split)
                self._check_split(split, {d.id for d in endpoint.deployed_models}, context)
                endpoint.traffic_split = split
            for field in set(paths) - {"traffic_split"}:
                setattr(endpoint, field, getattr(request.endpoint, field))
            return aiplatform_v1.Endpoint(endpoint)

    def endpoint(self, name_or_id: str) -> aiplatform_v1.Endpoint:
        with self.lock:
            return next(aiplatform_v1.Endpoint(e) for n, e in self.endpoints.items()
                        if n == name_or_id or n.endswith("/" + name_or_id))


@dataclass
class Vertex:
    server: object
    pipelines: PipelineServiceFake
    jobs: JobServiceFake
    models: ModelServiceFake
    endpoints: EndpointServiceFake
    monitoring: object = None  # tests.protocol_fakes.monitoring.MetricServiceFake: the endpoints' serving metrics


def start(location: str, serve=None) -> Vertex:
    """One server with every Vertex AI service Trainyard calls, and Cloud Monitoring's MetricService (the
    adapters reach both at TRAINYARD_VERTEX_EMULATOR_HOST); `serve(model)` as EndpointServiceFake's."""
    from google.cloud.monitoring_v3.services.metric_service.transports.grpc import MetricServiceGrpcTransport
    from google.cloud.aiplatform_v1.services.endpoint_service.transports.grpc import EndpointServiceGrpcTransport
    from google.cloud.aiplatform_v1.services.job_service.transports.grpc import JobServiceGrpcTransport
    from google.cloud.aiplatform_v1.services.model_service.transports.grpc import ModelServiceGrpcTransport
    from google.cloud.aiplatform_v1.services.pipeline_service.transports.grpc import PipelineServiceGrpcTransport

    from tests.protocol_fakes.grpc_service import FakeServer
    from tests.protocol_fakes.monitoring import MetricServiceFake

    server = FakeServer()
    pipelines, jobs, monitoring = PipelineServiceFake(location), JobServiceFake(location), MetricServiceFake()
    models = ModelServiceFake(server.operations, location)
    endpoints = EndpointServiceFake(server.operations, models, location, serve)
    server.add(PipelineServiceGrpcTransport, pipelines).add(JobServiceGrpcTransport, jobs)
    server.add(ModelServiceGrpcTransport, models).add(EndpointServiceGrpcTransport, endpoints)
    server.add(MetricServiceGrpcTransport, monitoring)
    return Vertex(server.start(), pipelines, jobs, models, endpoints, monitoring)

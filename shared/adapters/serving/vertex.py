"""The Vertex AI side of model serving: Endpoints (create / deploy with a traffic split) and the
Trainer's CustomJobs, through the official GAPIC client `google.cloud.aiplatform_v1`, imported lazily
(run-commands). Registering a model version is the Pusher's code: pipeline_compiler/registry.py."""
from __future__ import annotations

import concurrent.futures
import time
from typing import Optional

from shared.contract.labels import RUN_ID_LABEL, label_value
from shared.errors import PermanentError, TransientError
from shared.adapters.serving import (DeployedModelView, DeployRequest, DeployResult, EndpointView, endpoint_id_for,
                                     split_traffic)
from shared.adapters.vertex_gapic import RegionalService, gapic

_TRANSIENT = ("ServiceUnavailable", "DeadlineExceeded", "InternalServerError", "TooManyRequests", "Aborted")
_RUNNING_JOB_STATES = ("JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_UPDATING",
                       "JOB_STATE_PAUSED")


def map_error(exc, what: str, stage: str = "Deploy"):
    name = type(exc).__name__
    if name in _TRANSIENT:
        return TransientError(f"{what}: {exc}")
    return PermanentError(f"{what}: {getattr(exc, 'message', exc)}", stage=stage)


class VertexEndpoints(RegionalService):
    CLIENT = "EndpointServiceClient"

    def __init__(self, project: str, region: str, wait_s: float = 480, client=None, emulator_host: str = ""):
        super().__init__(project, region, client, emulator_host)
        self.wait_s = wait_s

    def endpoint_name(self, endpoint_id: str) -> str:
        return endpoint_id if endpoint_id.startswith("projects/") else f"{self.parent}/endpoints/{endpoint_id}"

    def _endpoint(self, request: DeployRequest):
        from google.api_core import exceptions
        aiplatform_v1 = gapic()

        if request.endpoint_id:
            try:
                return self.client.get_endpoint(name=self.endpoint_name(request.endpoint_id))
            except exceptions.NotFound:
                raise PermanentError(f"there is no endpoint {request.endpoint_id} in {self.parent}", stage="Deploy") from None
        endpoint_id = endpoint_id_for(request.run_id)
        try:
            return self.client.get_endpoint(name=self.endpoint_name(endpoint_id))
        except exceptions.NotFound:
            pass
        try:
            operation = self.client.create_endpoint(parent=self.parent, endpoint_id=endpoint_id, endpoint=aiplatform_v1.Endpoint(
                display_name=request.endpoint_display_name, labels={RUN_ID_LABEL: endpoint_id}))
            return operation.result(timeout=300)
        except exceptions.AlreadyExists:  # another delivery made it a moment ago
            return self.client.get_endpoint(name=self.endpoint_name(endpoint_id))
        except exceptions.GoogleAPICallError as exc:
            raise map_error(exc, "creating the endpoint") from exc

    def deploy(self, request: DeployRequest, started: Optional[str] = None, on_started=None) -> DeployResult:
        from google.api_core import exceptions
        aiplatform_v1 = gapic()

        endpoint = self._endpoint(request)
        model = f"{request.model_resource_name}@{request.model_version_id}"
        existing = self._deployed(endpoint, request)
        share = _every_model(endpoint).get(existing.id, 0) if existing is not None else None
        # Unknown for a redelivery (the model already has its share); the endpoint's split otherwise.
        before = {} if share == request.traffic_percent else _every_model(endpoint)
        if existing is not None and share != request.traffic_percent:
            # Deployed here before (rolled back to 0 %, or at another share): it takes the asked share again.
            self.set_traffic(endpoint.name, split_traffic(_every_model(endpoint), existing.id, request.traffic_percent))
            endpoint = self.client.get_endpoint(name=endpoint.name)
        if existing is None:
            if started:  # an earlier delivery started this deployment: follow it instead of starting another
                self._wait_for(started)
                endpoint = self.client.get_endpoint(name=endpoint.name)
                existing = self._deployed(endpoint, request)
            if existing is None:
                deployed = aiplatform_v1.DeployedModel(
                    model=model, display_name=f"{request.run_name}-v{request.model_version_id}",
                    dedicated_resources=aiplatform_v1.DedicatedResources(
                        machine_spec=aiplatform_v1.MachineSpec(machine_type=request.machine_type),
                        min_replica_count=1, max_replica_count=1))
                current = {k: int(v) for k, v in endpoint.traffic_split.items()}
                try:
                    operation = self.client.deploy_model(endpoint=endpoint.name, deployed_model=deployed,
                                                         traffic_split=split_traffic(current, "0", request.traffic_percent))
                except exceptions.GoogleAPICallError as exc:
                    raise map_error(exc, "deploying the model") from exc
                if on_started:  # recorded on the run, so a redelivery follows this operation
                    on_started(operation.operation.name)
                try:
                    operation.result(timeout=self.wait_s)
                except (TimeoutError, concurrent.futures.TimeoutError):  # distinct before Python 3.11; one name since
                    raise TransientError(f"deployment {operation.operation.name} still running; "
                                         "a redelivery will follow it") from None
                except exceptions.GoogleAPICallError as exc:
                    raise map_error(exc, "deploying the model") from exc
                endpoint = self.client.get_endpoint(name=endpoint.name)
                existing = self._deployed(endpoint, request)
                if existing is None:
                    raise TransientError("the deployment finished but the endpoint does not list the model yet")
        return DeployResult(
            endpoint_resource_name=endpoint.name, deployed_model_id=existing.id,
            traffic_split={k: int(v) for k, v in endpoint.traffic_split.items()}, previous_traffic_split=before,
            predict_url=f"https://{self.region}-aiplatform.googleapis.com/v1/{endpoint.name}:predict",
            console_url=(f"https://console.cloud.google.com/vertex-ai/online-prediction/locations/{self.region}/"
                         f"endpoints/{endpoint.name.rsplit('/', 1)[-1]}?project={self.project}"))

    def traffic(self, endpoint_resource_name: str) -> dict:
        from google.api_core import exceptions

        try:
            endpoint = self.client.get_endpoint(name=self.endpoint_name(endpoint_resource_name))
        except exceptions.GoogleAPICallError as exc:
            raise map_error(exc, "reading the endpoint's traffic split") from exc
        return _every_model(endpoint)

    def set_traffic(self, endpoint_resource_name: str, split: dict) -> dict:
        """EndpointService.UpdateEndpoint with update_mask `traffic_split` (aiplatform_v1 UpdateEndpointRequest;
        Endpoint.traffic_split: ids of DeployedModels → percent, "must add up to 100", an unlisted model gets
        no traffic, so models at 0 are left out). The models stay deployed."""
        from google.api_core import exceptions
        from google.protobuf import field_mask_pb2
        aiplatform_v1 = gapic()

        name = self.endpoint_name(endpoint_resource_name)
        try:
            endpoint = self.client.update_endpoint(
                endpoint=aiplatform_v1.Endpoint(name=name, traffic_split={k: int(v) for k, v in split.items() if v}),
                update_mask=field_mask_pb2.FieldMask(paths=["traffic_split"]))
        except exceptions.GoogleAPICallError as exc:
            raise map_error(exc, "changing the endpoint's traffic split") from exc
        return _every_model(endpoint)

    def list_endpoints(self) -> list[EndpointView]:
        """EndpointService.ListEndpoints over the region; the pager follows next_page_token itself."""
        from google.api_core import exceptions

        try:
            return sorted((_view(e) for e in self.client.list_endpoints(request={"parent": self.parent})),
                          key=lambda e: e.id)
        except exceptions.GoogleAPICallError as exc:
            raise map_error(exc, "listing the endpoints") from exc

    def get_endpoint(self, endpoint_id: str) -> Optional[EndpointView]:
        from google.api_core import exceptions

        try:
            return _view(self.client.get_endpoint(name=self.endpoint_name(endpoint_id)))
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as exc:
            raise map_error(exc, "reading the endpoint") from exc

    def undeploy(self, endpoint_resource_name: str, deployed_model_id: str, split_after: dict) -> dict:
        """EndpointService.UndeployModel: Vertex undeploys a model only if the request's traffic_split takes its
        traffic away (UndeployModelRequest.traffic_split overwrites the endpoint's; empty once the last model
        goes). A long operation, waited for as a deploy is; a model no longer there is done."""
        from google.api_core import exceptions

        name = self.endpoint_name(endpoint_resource_name)
        try:
            endpoint = self.client.get_endpoint(name=name)
            if not any(m.id == deployed_model_id for m in endpoint.deployed_models):
                return _every_model(endpoint)
            operation = self.client.undeploy_model(endpoint=name, deployed_model_id=deployed_model_id,
                                                   traffic_split={k: int(v) for k, v in split_after.items() if v})
            operation.result(timeout=self.wait_s)
            return _every_model(self.client.get_endpoint(name=name))
        except (TimeoutError, concurrent.futures.TimeoutError):
            raise TransientError(f"undeploying {deployed_model_id} from {name} still running; a redelivery will "
                                 "follow it") from None
        except exceptions.GoogleAPICallError as exc:
            raise map_error(exc, "undeploying the model") from exc

    @staticmethod
    def _deployed(endpoint, request: DeployRequest):
        for deployed in endpoint.deployed_models:
            same_model = deployed.model.split("@")[0] == request.model_resource_name
            if same_model and str(deployed.model_version_id or "") in ("", request.model_version_id):
                return deployed
        return None

    def _wait_for(self, operation_name: str) -> None:
        from google.longrunning import operations_pb2

        deadline = time.time() + self.wait_s
        while True:
            operation = self.client.get_operation(operations_pb2.GetOperationRequest(name=operation_name))
            if operation.done:
                if operation.HasField("error") and operation.error.code:
                    raise PermanentError(f"the deployment failed: {operation.error.message}", stage="Deploy")
                return
            if time.time() > deadline:
                raise TransientError(f"deployment {operation_name} still running; a redelivery will follow it")
            time.sleep(15)


def _every_model(endpoint) -> dict:
    """Every deployed model's share, those Vertex leaves out of traffic_split at 0 (so a model kept at 0 after a
    promotion is still there for a rollback to restore)."""
    split = {k: int(v) for k, v in endpoint.traffic_split.items()}
    return {**{m.id: 0 for m in endpoint.deployed_models}, **split}


def _time(value) -> Optional[str]:
    return value.isoformat() if value else None


def _view(endpoint) -> EndpointView:
    return EndpointView(
        id=endpoint.name.rsplit("/", 1)[-1], resource_name=endpoint.name, display_name=endpoint.display_name,
        created_at=_time(endpoint.create_time), labels=dict(endpoint.labels), traffic_split=_every_model(endpoint),
        deployed_models=tuple(DeployedModelView(
            id=m.id, model=m.model.split("@")[0], model_version_id=str(m.model_version_id or ""),
            display_name=m.display_name, deployed_at=_time(m.create_time)) for m in endpoint.deployed_models))


class VertexTrainerJobs(RegionalService):
    """The Trainer runs as its own CustomJob (labelled with the run), which cancelling the pipeline
    does not reach: cancel it too, so nothing the run started keeps a GPU busy."""

    CLIENT = "JobServiceClient"

    def cancel_for_run(self, run_id: str) -> list[str]:
        from google.api_core import exceptions

        label = label_value(run_id)  # as pipeline_compiler labels the job
        cancelled = []
        try:
            # `filter` is a field of the request, not a flattened argument of list_custom_jobs.
            for job in self.client.list_custom_jobs(request={"parent": self.parent,
                                                             "filter": f'labels.{RUN_ID_LABEL}="{label}"'}):
                if getattr(job.state, "name", str(job.state)) in _RUNNING_JOB_STATES:
                    try:
                        self.client.cancel_custom_job(name=job.name)
                        cancelled.append(job.name)
                    except exceptions.FailedPrecondition:
                        pass  # it ended meanwhile
        except exceptions.GoogleAPICallError as exc:
            raise TransientError(f"listing the run's training jobs failed: {exc}") from exc
        return cancelled

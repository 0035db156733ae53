#!/usr/bin/env python
"""Run test_gpu.py inside the GPU image as a Vertex AI custom job (spec §11.5).

    python gpu_image/submit_test_job.py --project my-proj --gpu-type T4 --gpu-count 1 --region europe-west1
    python gpu_image/submit_test_job.py --project my-proj --gpu-type L4 --gpu-count 2 --spot

The machine type comes from shared/domain/run_config.GPU_MACHINES (spec Appendix A), so the test runs on
exactly the machine a training run with that GPU config would get. The job runs
`python /app/gpu_image/test_gpu.py --require-gpu --expect-gpus N`: a missing GPU is a FAIL.

The spec's §11 failures (accelerator not offered with the machine type in that region, machine type
not offered in the region, GPU quota exhausted) are turned into one line saying what happened and
what to do. Exit status: 0 when the job succeeded, 1 when it could not be created or failed.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from google.cloud import aiplatform_v1  # noqa: E402
from google.protobuf import duration_pb2  # noqa: E402

from shared.domain.run_config import GPU_MACHINES  # noqa: E402

GPU_ALIASES = {
    "T4": "NVIDIA_TESLA_T4",
    "L4": "NVIDIA_L4",
    "V100": "NVIDIA_TESLA_V100",
    "A100": "NVIDIA_TESLA_A100",
}
TEST_COMMAND = ["python", "/app/gpu_image/test_gpu.py"]
DEFAULT_REGION = "europe-west1"
TERMINAL_STATES = {
    aiplatform_v1.JobState.JOB_STATE_SUCCEEDED,
    aiplatform_v1.JobState.JOB_STATE_FAILED,
    aiplatform_v1.JobState.JOB_STATE_CANCELLED,
    aiplatform_v1.JobState.JOB_STATE_EXPIRED,
}
LOCATIONS_DOC = "https://cloud.google.com/vertex-ai/docs/general/locations#accelerators"
# Regions with the broadest Vertex AI training GPU offer (spec §11.4's recommendations).
SUGGESTED_REGIONS = ("us-central1", "europe-west4", "europe-west1")


def other_regions(region: str) -> str:
    return " or ".join(r for r in SUGGESTED_REGIONS if r != region)


def normalize_gpu_type(value: str) -> str:
    """'t4' / 'T4' / 'NVIDIA_TESLA_T4' -> 'NVIDIA_TESLA_T4'; anything else is a ValueError."""
    name = value.strip().upper().replace("-", "_")
    name = GPU_ALIASES.get(name, name)
    if name not in GPU_MACHINES:
        choices = ", ".join(f"{short} ({full})" for short, full in GPU_ALIASES.items())
        raise ValueError(f"unknown GPU type {value!r}; choose one of {choices}")
    return name


def short_gpu(gpu_type: str) -> str:
    return next((short for short, full in GPU_ALIASES.items() if full == gpu_type), gpu_type)


def machine_type_for(gpu_type: str, gpu_count: int) -> str:
    machines = GPU_MACHINES[gpu_type]
    if gpu_count not in machines:
        raise ValueError(f"{gpu_type} comes in counts {sorted(machines)} per machine, not {gpu_count}")
    return machines[gpu_count]


def default_image(project: str) -> str:
    """Where cloudbuild.yaml pushes the GPU image with its default substitutions."""
    return f"europe-west4-docker.pkg.dev/{project}/trainyard/tfx-trainer-gpu:latest"


def build_custom_job_request(
    *,
    project: str,
    region: str,
    gpu_type: str,
    gpu_count: int,
    image: str,
    spot: bool = False,
    display_name: Optional[str] = None,
    service_account: Optional[str] = None,
    timeout_seconds: int = 3600,
) -> aiplatform_v1.CreateCustomJobRequest:
    """The CreateCustomJobRequest that runs test_gpu.py on one machine with the GPUs. Pure."""
    gpu_type = normalize_gpu_type(gpu_type)
    machine_type = machine_type_for(gpu_type, gpu_count)
    worker_pool = aiplatform_v1.WorkerPoolSpec(
        machine_spec=aiplatform_v1.MachineSpec(
            machine_type=machine_type,
            accelerator_type=aiplatform_v1.AcceleratorType[gpu_type],
            accelerator_count=gpu_count,
        ),
        replica_count=1,
        disk_spec=aiplatform_v1.DiskSpec(boot_disk_type="pd-ssd", boot_disk_size_gb=100),
        container_spec=aiplatform_v1.ContainerSpec(
            image_uri=image,
            command=list(TEST_COMMAND),
            args=["--require-gpu", "--expect-gpus", str(gpu_count)],
        ),
    )
    scheduling = aiplatform_v1.Scheduling(
        timeout=duration_pb2.Duration(seconds=timeout_seconds),
        strategy=aiplatform_v1.Scheduling.Strategy.SPOT if spot else aiplatform_v1.Scheduling.Strategy.STANDARD,
    )
    job_spec = aiplatform_v1.CustomJobSpec(worker_pool_specs=[worker_pool], scheduling=scheduling)
    if service_account:
        job_spec.service_account = service_account
    custom_job = aiplatform_v1.CustomJob(
        display_name=display_name or f"trainyard-gpu-test-{short_gpu(gpu_type).lower()}x{gpu_count}",
        job_spec=job_spec,
        labels={"app": "trainyard", "purpose": "gpu-image-test", "gpu": short_gpu(gpu_type).lower()},
    )
    return aiplatform_v1.CreateCustomJobRequest(
        parent=f"projects/{project}/locations/{region}", custom_job=custom_job
    )


# --------------------------------------------------------------------------- §11 failures


def quota_metric(gpu_type: str, spot: bool) -> str:
    """Vertex AI custom-training GPU quota metric, e.g. custom_model_training_nvidia_t4_gpus."""
    preemptible = "preemptible_" if spot else ""
    return f"custom_model_training_{preemptible}nvidia_{short_gpu(gpu_type).lower()}_gpus"


def explain_failure(
    message: str,
    *,
    project: str,
    region: str,
    gpu_type: str,
    gpu_count: int,
    machine_type: str,
    spot: bool = False,
) -> Optional[str]:
    """One line — what went wrong and the fix — for the failures of spec §11; None when unknown."""
    gpu = short_gpu(gpu_type)
    text = " ".join(message.split())

    if re.search(r"RESOURCE_EXHAUSTED|exceed(?:s|ed)? quota|quota (?:metrics? )?exceed|Quota exceeded", text, re.I):
        found = re.search(r"(?:aiplatform\.googleapis\.com/)?(custom_model_training_[a-z0-9_]+)", text)
        metric = found.group(1) if found else quota_metric(gpu_type, spot)
        return (
            f"GPU quota exhausted: project {project} has too little Vertex AI quota "
            f"aiplatform.googleapis.com/{metric} in {region} for {gpu_count} x {gpu}. "
            f"Fix: request at least {gpu_count} for that metric (Service: Vertex AI API, region {region}) at "
            f"https://console.cloud.google.com/iam-admin/quotas?project={project} "
            f"(approval takes hours to ~2 days), or use a --region/--gpu-type where the project has quota."
        )

    found = re.search(r'Accelerator "?([A-Z0-9_]+)"? is not supported for machine type "?([a-z0-9-]+)"?', text, re.I)
    if found:
        accelerator, machine = found.group(1), found.group(2)
        return (
            f"{accelerator} is not offered with {machine} for Vertex AI custom training in {region}. "
            f"Fix: use a --region that offers {gpu} GPUs for training (e.g. {other_regions(region)}; see "
            f"{LOCATIONS_DOC}), or another --gpu-type (each GPU type's machine comes from Appendix A)."
        )

    found = re.search(r'Machine type "?([a-z0-9-]+)"? is not supported', text, re.I)
    if found:
        machine = found.group(1)
        return (
            f"Machine type {machine} (needed for {gpu_count} x {gpu}) is not offered for Vertex AI custom "
            f"training in {region}. Fix: use a --region where {machine.split('-')[0]} machines with {gpu} GPUs are "
            f"offered (e.g. {other_regions(region)}; see {LOCATIONS_DOC}), or another --gpu-type."
        )

    if re.search(r"STOCKOUT|resources? (?:is|are) (?:insufficient|not available)|ZONE_RESOURCE_POOL_EXHAUSTED", text, re.I):
        return (
            f"No {gpu} capacity in {region} right now{' for Spot VMs' if spot else ''}. "
            f"Fix: retry later, use another --region{', or drop --spot' if spot else ''}."
        )

    if re.search(r"exited with a non-zero status", text, re.I):
        return (
            f"The job ran but test_gpu.py reported a FAIL on {machine_type} with {gpu_count} x {gpu}. "
            f"Fix: read the job's logs (the FAIL lines say which check) and rebuild the image."
        )
    return None


# --------------------------------------------------------------------------- submit


class JobFailed(RuntimeError):
    def __init__(self, message: str, job: Any = None):
        super().__init__(message)
        self.job = job


def job_console_url(job_name: str) -> str:
    """projects/P/locations/R/customJobs/ID -> the console page (the form the aiplatform SDK prints)."""
    parts = job_name.split("/")
    project, region, job_id = parts[1], parts[3], parts[5]
    return f"https://console.cloud.google.com/agent-platform/locations/{region}/training/{job_id}?project={project}"


def submit_and_wait(
    client: Any,
    request: aiplatform_v1.CreateCustomJobRequest,
    *,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> Any:
    """create_custom_job, then get_custom_job until the job ends. Returns the job; raises JobFailed."""
    job = client.create_custom_job(request=request)
    log(f"created {job.name}")
    log(f"  console: {job_console_url(job.name)}")
    last_state = None
    while job.state not in TERMINAL_STATES:
        if job.state != last_state:
            log(f"  state: {aiplatform_v1.JobState(job.state).name}")
            last_state = job.state
        sleep(poll_seconds)
        job = client.get_custom_job(name=job.name)
    state = aiplatform_v1.JobState(job.state).name
    log(f"  state: {state}")
    if job.state != aiplatform_v1.JobState.JOB_STATE_SUCCEEDED:
        raise JobFailed(job.error.message or state, job)
    return job


def make_client(region: str) -> aiplatform_v1.JobServiceClient:
    return aiplatform_v1.JobServiceClient(client_options={"api_endpoint": f"{region}-aiplatform.googleapis.com"})


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run gpu_image/test_gpu.py as a Vertex AI custom job.")
    parser.add_argument("--gpu-type", required=True, help="T4, L4, V100, A100 or the full NVIDIA_* name")
    parser.add_argument("--gpu-count", type=int, default=1, help="GPUs on the machine (default 1)")
    parser.add_argument("--region", default=DEFAULT_REGION, help=f"Vertex AI region (default {DEFAULT_REGION})")
    parser.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUDSDK_CORE_PROJECT"),
                        help="Google Cloud project (default $GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--image", help="image URI (default: where cloudbuild.yaml pushes :latest)")
    parser.add_argument("--spot", action="store_true", help="run on Spot VMs (uses the preemptible GPU quota)")
    parser.add_argument("--service-account", help="service account the job runs as")
    parser.add_argument("--timeout", type=int, default=3600, help="job timeout in seconds (default 3600)")
    parser.add_argument("--poll-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    if not args.project:
        parser.error("--project is required (or set GOOGLE_CLOUD_PROJECT)")
    try:
        args.gpu_type = normalize_gpu_type(args.gpu_type)
        args.machine_type = machine_type_for(args.gpu_type, args.gpu_count)
    except ValueError as exc:
        parser.error(str(exc))
    args.image = args.image or default_image(args.project)
    return args


def main(argv: Optional[list[str]] = None, client: Any = None, sleep: Callable[[float], None] = time.sleep) -> int:
    from google.api_core import exceptions as api_exceptions

    args = parse_args(argv)
    request = build_custom_job_request(
        project=args.project, region=args.region, gpu_type=args.gpu_type, gpu_count=args.gpu_count,
        image=args.image, spot=args.spot, service_account=args.service_account, timeout_seconds=args.timeout,
    )
    print(f"GPU test: {args.gpu_count} x {args.gpu_type} on {args.machine_type} in {args.region}"
          f"{' (Spot)' if args.spot else ''}, image {args.image}")
    context = dict(project=args.project, region=args.region, gpu_type=args.gpu_type, gpu_count=args.gpu_count,
                   machine_type=args.machine_type, spot=args.spot)
    try:
        submit_and_wait(client or make_client(args.region), request, poll_seconds=args.poll_seconds, sleep=sleep)
    except (api_exceptions.GoogleAPICallError, JobFailed) as exc:
        message = getattr(exc, "message", None) or str(exc)
        explanation = explain_failure(str(message), **context)
        print(f"ERROR: {explanation or message}", file=sys.stderr)
        if explanation:
            print(f"  (Vertex AI said: {' '.join(str(message).split())})", file=sys.stderr)
        return 1
    print("GPU test job succeeded: every check in test_gpu.py passed on the GPUs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

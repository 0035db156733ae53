"""The images (gpu_image/, dataflow_image/): each Dockerfile installs exactly the pinned versions and
copies what its .dockerignore lets through; cloudbuild.yaml builds both and pushes both tags;
test_gpu.py passes its CPU checks here, submit_test_job.py builds the right Vertex CustomJob request
(checked at the client boundary with a fake JobServiceClient) and explains the spec §11 failures."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.api_core import exceptions as api_exceptions
from google.cloud import aiplatform_v1
from packaging.specifiers import SpecifierSet

from gpu_image import submit_test_job as sj
from gpu_image import image_pins, image_tree
from gpu_image import verify_image as vi
from shared.domain.run_config import GPU_MACHINES

ROOT = Path(__file__).resolve().parents[2]
GPU_IMAGE = ROOT / "gpu_image"
REQ = ROOT / "requirements"
PINS = vi.constraint_pins(REQ / "constraints.txt")


# --------------------------------------------------------------------------- Dockerfile parsing

from gpu_image.dockerfile import dockerfile_instructions, pip_install_commands  # noqa: E402
from tests.rehearsal.images import load as load_image  # noqa: E402

DATAFLOW_IMAGE = ROOT / "dataflow_image"
DOCKERFILES = {"gpu": GPU_IMAGE / "Dockerfile", "dataflow": DATAFLOW_IMAGE / "Dockerfile"}


OPTIONS_WITH_VALUE = {"-c", "-r", "--constraint", "--requirement", "-i", "--index-url", "--extra-index-url", "-f"}


def pip_pin_problems(args: list[str], pins: dict[str, str]) -> list[str]:
    """What is wrong with one `pip install` argument list, measured against constraints.txt."""
    problems = []
    files = {a: args[i + 1] for i, a in enumerate(args[:-1]) if a in OPTIONS_WITH_VALUE}
    if files.get("-c", files.get("--constraint")) != "requirements/constraints.txt":
        problems.append(f"pip install {' '.join(args)} does not use -c requirements/constraints.txt")
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in OPTIONS_WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?(.*)$", arg)
        name, spec = vi.canonical(match.group(1)), match.group(3)
        if name not in pins:
            problems.append(f"{arg}: {name} is not pinned in constraints.txt")
        elif spec and spec != f"=={pins[name]}":
            problems.append(f"{arg}: constraints.txt pins {name}=={pins[name]}")
    return problems


@pytest.fixture(scope="module")
def dockerfile():
    return dockerfile_instructions((GPU_IMAGE / "Dockerfile").read_text())


def test_base_image_is_python_the_dockerfile_declares_once_with_tensorflow_and_cuda_from_pip(dockerfile):
    """N1: the GPU image runs the Python the one lock is for (the local environment's), stated once in an
    ARG the FROM line and the build checks read; TensorFlow and CUDA come from the pins (and-cuda)."""
    declared = image_pins.read_image_spec("gpu")
    assert declared.python == "%d.%d" % sys.version_info[:2]  # the lock is a freeze of this Python
    assert [a for k, a in dockerfile if k == "FROM"] == ["python:${PYTHON_VERSION}-bookworm"]
    assert load_image(DOCKERFILES["gpu"]).base == f"python:{declared.python}-bookworm"
    assert declared.compiler == "g++"  # the full image: pyfarmhash (TFDV) ships no Linux wheel
    assert declared.glibc == "2.36"  # Debian 12 bookworm
    assert declared.requirement_files == [REQ / "gpu.txt"] and declared.ignore_requires_python
    assert "tensorflow[and-cuda]" in (REQ / "gpu.txt").read_text().split()
    assert PINS["tensorflow"] == "2.15.1" and PINS["tfx"] == "1.15.0"
    for name in ("nvidia-cudnn-cu12", "nvidia-cuda-runtime-cu12", "nvidia-nccl-cu12", "nvidia-cuda-nvcc-cu12"):
        assert name in PINS, f"{name} (tensorflow[and-cuda]) is not pinned"
    # tfx 1.15 caps Python below 3.11: the image overrides that knowingly, and the closure check allows it.
    tfx_requires = SpecifierSet(importlib.metadata.metadata("tfx")["Requires-Python"])
    assert declared.python not in tfx_requires and "tfx" in image_pins.KNOWN_PYTHON_CAPS


@pytest.mark.parametrize("image", sorted(image_pins.DOCKERFILES))
def test_every_image_states_its_python_and_glibc_once_and_checks_them_at_build_time(image):
    text = (ROOT / image_pins.DOCKERFILES[image]).read_text()
    instructions = dockerfile_instructions(text)
    assert len(re.findall(r"^ARG PYTHON_VERSION=", text, re.M)) == 1
    assert len(re.findall(r"^ARG GLIBC_VERSION=", text, re.M)) == 1
    assert "${PYTHON_VERSION}" in next(a for k, a in instructions if k == "FROM")
    assert not re.search(r"python_version=\"3|py3\d\d|python3\.\d+", text.split("FROM", 1)[1]), "a second Python literal"
    check = next(a for k, a in instructions if k == "RUN" and "verify_image.py" in a)
    assert '--python "${PYTHON_VERSION}"' in check and '--glibc "${GLIBC_VERSION}"' in check
    assert '--compiler "${COMPILER}"' in check
    # Re-declared after FROM, or the RUN line would see them empty (Docker's ARG scoping).
    after_from = [a for k, a in instructions[[k for k, _ in instructions].index("FROM"):] if k == "ARG"]
    assert {"PYTHON_VERSION", "GLIBC_VERSION", "COMPILER"} <= set(after_from)
    assert "BASE_IMAGE" not in (ROOT / "cloudbuild.yaml").read_text()  # nothing overrides the base


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_installs_from_the_constraints_and_the_requirement_sets(image):
    commands = pip_install_commands(dockerfile_instructions(DOCKERFILES[image].read_text()))
    assert commands, "the Dockerfile installs nothing with pip"
    for args in commands:
        assert pip_pin_problems(args, PINS) == []
    everything = [a for args in commands for a in args]
    for needed in vi.IMAGE_REQUIREMENT_FILES[image]:
        assert f"requirements/{needed}" in everything
    assert "--ignore-requires-python" in everything


def test_the_dataflow_workers_match_the_launcher():
    """Beam pickles between the launcher (a task in the GPU image) and the workers: same Python minor
    version, the pinned Beam, and the worker image keeps Beam's boot entrypoint (A5)."""
    base = load_image(DOCKERFILES["dataflow"]).base
    match = re.fullmatch(r"apache/beam_python(\d+\.\d+)_sdk:(.+)", base)
    assert match, f"not Beam's Python SDK image: {base}"
    assert match.group(1) == image_pins.read_image_spec("dataflow").python == image_pins.read_image_spec("gpu").python
    assert match.group(2) == PINS["apache-beam"]
    dataflow = dockerfile_instructions(DOCKERFILES["dataflow"].read_text())
    assert not [a for k, a in dataflow if k == "ENTRYPOINT"], "the boot program must stay the entrypoint"
    assert set(vi.requirement_names(REQ / "ml.txt")) <= set(vi.requirement_names(REQ / "dataflow.txt"))


def test_pin_checker_rejects_the_specs_unpinned_install_lines():
    # spec §10.3's own lines: kfp is not a project dependency, >= is not a pin, wrong version.
    assert pip_pin_problems(["--no-cache-dir", "tfx==1.15.0", "kfp>=2.0.0"], PINS) != []
    assert any("pins tensorflow-recommenders==0.7.3" in p for p in pip_pin_problems(
        ["-c", "requirements/constraints.txt", "tensorflow-recommenders>=0.7.3"], PINS))
    assert pip_pin_problems(["-c", "requirements/constraints.txt", "scann==1.2.9"], PINS) != []
    assert pip_pin_problems(["scann==1.3.0"], PINS) != []  # no -c
    assert pip_pin_problems(["-c", "requirements/constraints.txt", "scann==1.3.0", "apache-beam[gcp]"], PINS) == []


def test_every_package_the_image_installs_by_name_is_pinned_and_installed_here_at_its_pin():
    for filename in {f for files in vi.IMAGE_REQUIREMENT_FILES.values() for f in files}:
        for name in vi.requirement_names(REQ / filename):
            assert name in PINS, f"{name} ({filename}) is not pinned"
    # The image runs this same check at build time; here it holds for the local environment too.
    assert vi.pin_problems(REQ) == []
    drifted = vi.pin_problems(REQ, installed_version=lambda n: "0.0.1" if n == "scann" else PINS.get(n))
    assert drifted == ["scann 0.0.1 is installed but constraints.txt pins 1.3.0"]
    missing = vi.pin_problems(REQ, installed_version=lambda n: None if n == "tfx" else PINS.get(n))
    assert missing == ["tfx is not installed (pinned 1.15.0)"]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_copies_its_whitelist_and_checks_the_tree(image):
    """The .dockerignore is each image's one file list: the Dockerfile copies the whole filtered
    context, and its build checks run after the last COPY with the tree check on."""
    instructions = dockerfile_instructions(DOCKERFILES[image].read_text())
    copies = [a.split() for k, a in instructions if k == "COPY"]
    assert copies == [["requirements/", "/app/requirements/"], [".", "/app/"]]
    env = " ".join(a for k, a in instructions if k == "ENV")
    assert "PYTHONPATH=/app" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    order = [k + " " + a for k, a in instructions]
    check = next(i for i, line in enumerate(order) if "verify_image.py" in line and line.startswith("RUN"))
    assert f"--image {image}" in order[check] and "--skip" not in order[check]
    last_copy = max(i for i, line in enumerate(order) if line.startswith("COPY"))
    first_install = next(i for i, line in enumerate(order) if "pip install" in line)
    assert check > last_copy > first_install  # checks see everything; code changes keep the pip layer cached
    if image == "gpu":
        assert "--expect-cuda" in order[check]
        assert "TF_FORCE_GPU_ALLOW_GROWTH=true" in env and re.search(r"\bNCCL_[A-Z_]+=", env)


def test_every_consumer_terraform_runs_from_the_gpu_image_is_in_it():
    """A2: run-commands' source was not in the image, so its Cloud Run service never started."""
    from tests.rehearsal import terraform_model

    tf = terraform_model.load(ROOT / "terraform", ROOT / "terraform/examples/minimal/minimal.tfvars")
    files = set(load_image(DOCKERFILES["gpu"]).files())
    services = tf.child("consumer_service")
    assert set(services) == {"submitter", "run_commands"}
    for consumer, service in services.items():
        command = service.var("command")
        source = next(a.split("=", 1)[1] for a in command if a.startswith("--source="))
        assert source in files, f"{consumer}: {source} is not in the GPU image"
        assert vi.CONSUMERS.get(source) == next(a.split("=", 1)[1] for a in command if a.startswith("--target="))


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_whitelisted_paths_exist_and_nothing_else_gets_in(image):
    dockerignore = DOCKERFILES[image].with_name("Dockerfile.dockerignore")
    lines = [l.strip() for l in dockerignore.read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[0] == "*"
    for rel in image_tree.whitelist(dockerignore):
        assert (ROOT / rel).exists(), f"{dockerignore}: {rel} is not in the repository"
    files = load_image(DOCKERFILES[image]).files()
    assert not [f for f in files if f.startswith(("tests/", "terraform/", ".venv", "dashboard/", ".git/"))]
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert "shared/settings.py" in files and "pipeline_compiler/example_gen.py" in files


def test_the_tree_check_sees_a_builder_that_ignored_the_dockerignore(tmp_path):
    dockerignore = tmp_path / "x.dockerignore"
    dockerignore.write_text("*\n!shared/\n!gpu_image/verify_image.py\n**/__pycache__\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "a.py").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.py").write_text("")
    (tmp_path / "shared" / "__pycache__").mkdir()
    (tmp_path / "shared" / "__pycache__" / "a.pyc").write_text("")
    problems = image_tree.tree_problems(tmp_path, dockerignore, ignore=("x.dockerignore",))
    assert "tests/t.py is in the image but x.dockerignore leaves it out" in problems
    assert "shared/__pycache__/a.pyc is in the image but x.dockerignore leaves it out" in problems
    assert "gpu_image/verify_image.py is whitelisted but not in the image" in problems
    assert image_tree.excluded("shared/a.py", image_tree.read_patterns(dockerignore)) is False


def test_default_command_serves_the_submitter_with_functions_framework(dockerfile):
    entrypoints = [a for k, a in dockerfile if k == "ENTRYPOINT"]
    assert entrypoints == ["[]"]
    cmd = [a for k, a in dockerfile if k == "CMD"][-1]
    assert "functions-framework" in cmd
    for part in ("--target=on_run_submit", "--source=functions/submitter/main.py", "--signature-type=cloudevent"):
        assert part in cmd
    assert "${PORT}" in cmd or "$PORT" in cmd


# --------------------------------------------------------------------------- cloudbuild.yaml


@pytest.fixture(scope="module")
def cloudbuild():
    return yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


def substitute(value, subs):
    """Cloud Build's ${VAR} / $VAR expansion (enough for this file)."""
    if isinstance(value, list):
        return [substitute(v, subs) for v in value]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: subs[m.group(1) or m.group(2)], value)


def test_cloudbuild_substitutions_and_options(cloudbuild):
    subs = cloudbuild["substitutions"]
    assert subs["_PROJECT_ID"] == "${PROJECT_ID}"
    assert subs["_TAG"] == "${SHORT_SHA}"
    for key in ("_REGION", "_REPOSITORY", "_GPU_IMAGE", "_DATAFLOW_IMAGE"):
        assert subs[key]
    assert cloudbuild["options"]["dynamicSubstitutions"] is True  # defaults refer to built-ins
    assert cloudbuild["options"]["logging"] == "CLOUD_LOGGING_ONLY"  # needed with a user-specified build account
    assert cloudbuild["options"]["machineType"]
    assert re.fullmatch(r"\d+s", cloudbuild["timeout"])
    used = set(re.findall(r"\$\{(_\w+)\}", (ROOT / "cloudbuild.yaml").read_text()))
    assert used <= set(subs), f"undefined substitutions {used - set(subs)}"


def test_cloudbuild_defaults_are_terraforms():
    """A trigger build without substitutions pushes where Terraform's services pull from."""
    from tests.rehearsal import images, terraform_model

    tf = terraform_model.load(ROOT / "terraform", ROOT / "terraform/examples/minimal/minimal.tfvars")
    built = images.built_images({"_PROJECT_ID": tf.var("project_id"), "_TAG": tf.var("image_tag")})
    assert built[tf.local("gpu_image")] == DOCKERFILES["gpu"]
    assert built[tf.local("dataflow_image")] == DOCKERFILES["dataflow"]


def test_cloudbuild_builds_both_images_checks_them_and_pushes_latest_and_the_version_tag(cloudbuild):
    builtins = {"PROJECT_ID": "proj", "SHORT_SHA": "abc1234"}
    subs = {k: substitute(v, builtins) for k, v in cloudbuild["substitutions"].items()} | builtins
    steps = {s["id"]: s for s in cloudbuild["steps"]}
    for image, step, name in (("gpu", "build-gpu", "tfx-trainer-gpu"), ("dataflow", "build-dataflow", "trainyard-dataflow")):
        repo = f"europe-west4-docker.pkg.dev/proj/trainyard/{name}"
        assert {f"{repo}:abc1234", f"{repo}:latest"} <= set(substitute(cloudbuild["images"], subs))
        build = " ".join(substitute(steps[step]["args"], subs))
        for part in (f"--tag {repo}:latest", f"--tag {repo}:abc1234", f"--file {image}_image/Dockerfile"):
            assert part in build
        assert build.rstrip().endswith(" .")  # the repository root is the build context
        assert "DOCKER_BUILDKIT=1" in steps[step]["env"]  # reads the Dockerfile's own .dockerignore
        push = f"push-{image}"
        assert substitute(steps[push]["args"], subs) == ["push", "--all-tags", repo]
        assert "cpu-smoke-test" in steps[push]["waitFor"] and "build-dataflow" in steps[push]["waitFor"]
    smoke = substitute(steps["cpu-smoke-test"]["args"], subs)
    assert "europe-west4-docker.pkg.dev/proj/trainyard/tfx-trainer-gpu:abc1234" in smoke
    assert "/app/gpu_image/test_gpu.py" in smoke


# --------------------------------------------------------------------------- test_gpu.py here


def run_test_gpu(*args, timeout=150):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(GPU_IMAGE / "test_gpu.py"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)


def statuses(stdout: str) -> dict[str, str]:
    return {m.group(2): m.group(1) for m in re.finditer(r"^\[(PASS|FAIL|SKIPPED)\s*\] (\w+):", stdout, re.M)}


@pytest.mark.slow
def test_test_gpu_passes_its_cpu_checks_and_skips_the_gpu_ones_here():
    result = run_test_gpu()
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert statuses(result.stdout) == {
        "gpus_visible": "SKIPPED", "cuda_build": "SKIPPED", "mirrored_strategy": "SKIPPED",
        "tfrs_model": "PASS", "scann_index": "PASS", "tfx_components": "PASS", "mixed_precision": "PASS",
    }
    assert "ALL TESTS PASSED" in result.stdout


@pytest.mark.slow
def test_test_gpu_fails_without_gpus_when_they_are_required():
    result = run_test_gpu("--require-gpu", "--only", "gpus_visible,mirrored_strategy")
    assert result.returncode == 1
    assert statuses(result.stdout) == {"gpus_visible": "FAIL", "mirrored_strategy": "FAIL"}


@pytest.mark.slow
def test_test_gpu_multi_replica_paths_on_logical_cpus():
    result = run_test_gpu("--cpu-replicas", "2", "--only", "mirrored_strategy,tfrs_model,mixed_precision")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert set(statuses(result.stdout).values()) == {"PASS"}
    assert "replicas: 2" in result.stdout and "2 CPU replica(s)" in result.stdout


# --------------------------------------------------------------------------- submit_test_job.py


class FakeJobServiceClient:
    """Stands in for aiplatform_v1.JobServiceClient: records requests, walks the job through states."""

    def __init__(self, states=("JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"),
                 create_error=None, error_message=""):
        self.requests, self.gets = [], []
        self.states = [aiplatform_v1.JobState[s] for s in states]
        self.create_error = create_error
        self.error_message = error_message

    def _job(self, name, state):
        job = aiplatform_v1.CustomJob(name=name, state=state)
        if state == aiplatform_v1.JobState.JOB_STATE_FAILED:
            job.error.message = self.error_message
        return job

    def create_custom_job(self, request):
        assert isinstance(request, aiplatform_v1.CreateCustomJobRequest)
        self.requests.append(request)
        if self.create_error:
            raise self.create_error
        self.name = f"{request.parent}/customJobs/123"
        return self._job(self.name, self.states.pop(0))

    def get_custom_job(self, name):
        self.gets.append(name)
        return self._job(name, self.states.pop(0))


CASES = [(gpu, count) for gpu, machines in GPU_MACHINES.items() for count in machines]


@pytest.mark.parametrize("gpu_type,gpu_count", CASES)
@pytest.mark.parametrize("spot", [False, True])
def test_request_for_each_gpu_type_at_the_client_boundary(gpu_type, gpu_count, spot, capsys):
    client = FakeJobServiceClient()
    short = sj.short_gpu(gpu_type)
    argv = ["--project", "proj", "--region", "us-central1", "--gpu-type", short, "--gpu-count", str(gpu_count),
            "--image", "europe-central2-docker.pkg.dev/proj/tfx-builder/tfx-trainer-gpu:abc1234"]
    assert sj.main(argv + (["--spot"] if spot else []), client=client, sleep=lambda s: None) == 0
    assert client.gets == ["projects/proj/locations/us-central1/customJobs/123"] * 2

    (request,) = client.requests
    assert request.parent == "projects/proj/locations/us-central1"
    (pool,) = request.custom_job.job_spec.worker_pool_specs
    assert pool.replica_count == 1
    assert pool.machine_spec.machine_type == GPU_MACHINES[gpu_type][gpu_count]
    assert pool.machine_spec.accelerator_type == aiplatform_v1.AcceleratorType[gpu_type]
    assert pool.machine_spec.accelerator_count == gpu_count
    assert pool.container_spec.image_uri.endswith("tfx-trainer-gpu:abc1234")
    assert list(pool.container_spec.command) == ["python", "/app/gpu_image/test_gpu.py"]
    assert list(pool.container_spec.args) == ["--require-gpu", "--expect-gpus", str(gpu_count)]
    strategy = request.custom_job.job_spec.scheduling.strategy
    assert strategy == (aiplatform_v1.Scheduling.Strategy.SPOT if spot else aiplatform_v1.Scheduling.Strategy.STANDARD)
    assert "succeeded" in capsys.readouterr().out


@pytest.mark.parametrize("gpu_arg,count,machine", [
    # spec Appendix A, written out independently of shared.domain.run_config
    ("T4", 1, "n1-standard-8"), ("NVIDIA_L4", 2, "g2-standard-24"), ("v100", 2, "n1-standard-16"),
    ("NVIDIA_TESLA_A100", 1, "a2-highgpu-1g"),
])
def test_appendix_a_machine_types_and_full_gpu_names(gpu_arg, count, machine):
    request = sj.build_custom_job_request(project="p", region="europe-west1", gpu_type=gpu_arg, gpu_count=count,
                                          image="img")
    assert request.custom_job.job_spec.worker_pool_specs[0].machine_spec.machine_type == machine


def test_impossible_gpu_configs_are_usage_errors():
    with pytest.raises(SystemExit) as exit_info:
        sj.parse_args(["--project", "p", "--gpu-type", "T4", "--gpu-count", "8"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        sj.parse_args(["--project", "p", "--gpu-type", "P100"])


CTX = dict(project="b2b-recs", region="europe-central2", gpu_type="NVIDIA_TESLA_T4", gpu_count=1,
           machine_type="n1-standard-8")


@pytest.mark.parametrize("message,context,expected", [
    ('ERROR: Accelerator "NVIDIA_TESLA_T4" is not supported for machine type "n1-standard-8"', CTX,
     ["NVIDIA_TESLA_T4 is not offered with n1-standard-8", "europe-central2", "--region", "us-central1",
      "vertex-ai/docs/general/locations"]),
    ('ERROR: Machine type "g2-standard-8" is not supported',
     CTX | dict(region="europe-west1", gpu_type="NVIDIA_L4", machine_type="g2-standard-8"),
     ["Machine type g2-standard-8", "1 x L4", "europe-west1", "--region", "g2 machines"]),
    ("ERROR: RESOURCE_EXHAUSTED: The following quota metrics exceed quota limits: "
     "aiplatform.googleapis.com/custom_model_training_nvidia_t4_gpus", CTX | dict(region="us-central1"),
     ["quota exhausted", "aiplatform.googleapis.com/custom_model_training_nvidia_t4_gpus", "us-central1",
      "request at least 1", "https://console.cloud.google.com/iam-admin/quotas?project=b2b-recs"]),
    ("429 Quota exceeded for resource", CTX | dict(gpu_type="NVIDIA_L4", gpu_count=2, spot=True),
     ["custom_model_training_preemptible_nvidia_l4_gpus", "request at least 2"]),
])
def test_spec_section_11_failures_become_one_line_fixes(message, context, expected):
    line = sj.explain_failure(message, **context)
    assert line is not None and "\n" not in line
    for part in expected:
        assert part in line, f"{part!r} not in {line!r}"


def test_region_suggestions_never_repeat_the_failing_region():
    line = sj.explain_failure('Accelerator "NVIDIA_TESLA_T4" is not supported for machine type "n1-standard-8"',
                              **(CTX | {"region": "us-central1"}))
    suggested = re.search(r"\(e\.g\. ([^;]+);", line).group(1)
    assert "us-central1" not in suggested and "europe-west4" in suggested


def test_unknown_failures_are_not_explained():
    assert sj.explain_failure("something else entirely", **CTX) is None


@pytest.mark.parametrize("error,expected", [
    (api_exceptions.ResourceExhausted("The following quota metrics exceed quota limits: "
                                      "aiplatform.googleapis.com/custom_model_training_nvidia_t4_gpus"),
     "custom_model_training_nvidia_t4_gpus"),
    (api_exceptions.InvalidArgument('Accelerator "NVIDIA_TESLA_T4" is not supported for machine type "n1-standard-8"'),
     "is not offered with n1-standard-8"),
])
def test_create_errors_exit_non_zero_with_the_explanation(error, expected, capsys):
    client = FakeJobServiceClient(create_error=error)
    rc = sj.main(["--project", "b2b-recs", "--gpu-type", "T4", "--region", "europe-central2"], client=client,
                 sleep=lambda s: None)
    assert rc == 1
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("ERROR: ") and expected in first


def test_a_failed_job_exits_non_zero_with_the_explanation(capsys):
    client = FakeJobServiceClient(states=("JOB_STATE_PENDING", "JOB_STATE_FAILED"),
                                  error_message='Machine type "g2-standard-8" is not supported.')
    rc = sj.main(["--project", "p", "--gpu-type", "L4", "--region", "europe-west1"], client=client, sleep=lambda s: None)
    assert rc == 1
    assert "Machine type g2-standard-8 (needed for 1 x L4) is not offered" in capsys.readouterr().err


@pytest.mark.slow
def test_the_build_time_checks_pass_in_the_local_environment():
    """verify_image.py is what the Dockerfile runs; it must work before it costs a 12-minute build."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(GPU_IMAGE / "verify_image.py"), "--image", "gpu", "--skip", "tree",
                             "--python", "%d.%d" % sys.version_info[:2], "--glibc", LOCAL_GLIBC],
                            capture_output=True, text=True, timeout=150, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    for name in ("pinned versions", "python", "glibc", "requires_python", "tensorflow", "tfx", "tfrs", "scann_ops",
                 "project"):
        assert re.search(rf"^PASS  {name}:", result.stdout, re.M), result.stdout


LOCAL_GLIBC = os.confstr("CS_GNU_LIBC_VERSION").split()[1]


def test_the_build_fails_when_the_running_python_or_glibc_is_not_the_declared_one():
    """A base image that is not what PYTHON_VERSION / GLIBC_VERSION say (the lock was checked for those)
    fails the build instead of installing wheels for another target."""
    running = "%d.%d" % sys.version_info[:2]
    assert vi.check_python(running) == f"Python {sys.version.split()[0]}"
    other = "3.10" if running != "3.10" else "3.12"
    with pytest.raises(AssertionError, match=f"declares {other}"):
        vi.check_python(other)
    assert vi.check_glibc(LOCAL_GLIBC) == f"glibc {LOCAL_GLIBC}"
    with pytest.raises(AssertionError, match="declares glibc 2.99"):
        vi.check_glibc("2.99")
    assert vi.check_compiler("none").startswith("no compiler declared")
    with pytest.raises(AssertionError, match="no-such-cc"):
        vi.check_compiler("no-such-cc")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(GPU_IMAGE / "verify_image.py"), "--image", "serving", "--skip",
                             "tree,tensorflow,scann_ops,gcs,server", "--python", running, "--glibc", "2.17"],
                            capture_output=True, text=True, timeout=150, cwd=ROOT, env=env)
    assert result.returncode == 1 and re.search(r"^FAIL  glibc: .*declares glibc 2.17", result.stdout, re.M)
    result = subprocess.run([sys.executable, str(GPU_IMAGE / "verify_image.py"), "--image", "serving", "--pins-only"],
                            capture_output=True, text=True, timeout=150, cwd=ROOT, env=env)
    assert result.returncode == 0  # --pins-only needs no target
    result = subprocess.run([sys.executable, str(GPU_IMAGE / "verify_image.py"), "--image", "serving"],
                            capture_output=True, text=True, timeout=150, cwd=ROOT, env=env)
    assert result.returncode == 2 and "--python and --glibc" in result.stderr  # the Dockerfile must say


def test_the_build_fails_on_an_installed_distribution_whose_requires_python_excludes_the_running_one():
    """--ignore-requires-python installs anything; the build then admits only the TFX caps we override."""
    class Dist:
        def __init__(self, name, requires):
            self.metadata, self.version = {"Name": name, "Requires-Python": requires}, "1.0"

    dists = [Dist("tfx", ">=3.9,<3.11"), Dist("soupsieve", ">=3.11.5"), Dist("fastavro", ">=3.11"), Dist("six", None)]
    assert vi.requires_python_problems(dists, "3.11.7") == []
    assert vi.requires_python_problems(dists, "3.11.4") == ["soupsieve 1.0 requires Python >=3.11.5"]
    assert vi.requires_python_problems(dists, "3.10.14") == ["fastavro 1.0 requires Python >=3.11",
                                                             "soupsieve 1.0 requires Python >=3.11.5"]
    assert vi.requires_python_problems() == []  # this environment, installed with the same flag


def _fake_nvidia_tree(root: Path) -> Path:
    """site-packages/nvidia as the and-cuda wheels lay it out, each library a real loadable ELF (a copy of
    this Python's own C library dependency) and ptxas a program that runs."""
    import ctypes.util

    real = Path("/lib/x86_64-linux-gnu") / (ctypes.util.find_library("z") or "libz.so.1")
    assert real.exists(), real
    for package, soname in vi.CUDA_LIBRARIES:
        (root / package / "lib").mkdir(parents=True, exist_ok=True)
        (root / package / "lib" / soname).write_bytes(real.read_bytes())
    ptxas = root / vi.PTXAS[0] / vi.PTXAS[1]
    ptxas.parent.mkdir(parents=True)
    ptxas.write_text("#!/bin/sh\necho 'ptxas: NVIDIA (R) Ptx optimizing assembler'\n")
    ptxas.chmod(0o755)
    return root


def test_the_cuda_check_loads_each_library_where_tensorflow_looks_and_names_what_is_missing(tmp_path):
    """MINOR (review 2): is_built_with_cuda() alone passes without any CUDA library; the build now also
    dlopens the CUDA runtime, cuBLAS, cuDNN, cuFFT, cuSPARSE, cuSOLVER, CUPTI and NCCL (no driver needed)
    from site-packages/nvidia beside tensorflow, and runs ptxas."""
    assert vi.nvidia_root() == Path(importlib.util.find_spec("tensorflow").origin).parent.parent / "nvidia"
    nvidia = _fake_nvidia_tree(tmp_path / "complete" / "nvidia")
    assert vi.check_cuda_libraries(nvidia).startswith(f"{len(vi.CUDA_LIBRARIES)} CUDA/cuDNN/NCCL libraries load")
    # Another tree: the loader remembers paths it has opened in this process.
    nvidia = _fake_nvidia_tree(tmp_path / "broken" / "nvidia")
    (nvidia / "cudnn" / "lib" / "libcudnn.so.8").unlink()
    (nvidia / "nccl" / "lib" / "libnccl.so.2").write_text("not an ELF file")
    (nvidia / "cuda_nvcc" / "bin" / "ptxas").unlink()
    with pytest.raises(AssertionError) as failure:
        vi.check_cuda_libraries(nvidia)
    message = str(failure.value)
    assert "cudnn/lib/libcudnn.so.8" in message and "nccl/lib/libnccl.so.2" in message and "cuda_nvcc/bin/ptxas" in message
    assert "cublas/lib/libcublas.so.12" not in message

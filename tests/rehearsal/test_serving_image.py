"""The prediction container (serving_image/, A6) started the way Vertex AI starts it, from its own tree.

The tree is the build context filtered by serving_image/Dockerfile.dockerignore, placed where the
Dockerfile's COPY lines put it (tests/rehearsal/images.py); the command is the Dockerfile's CMD, run
with this environment's Python (the same pins as the image); the environment is the image's ENV plus
what Vertex sets: AIP_HTTP_PORT, AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE, AIP_STORAGE_URI (the model's
artifacts). The model is a real export: tiny demo data through the real Transform preprocessing_fn,
then the trainer's own train_and_export, which saves the retrieval signature with a ScaNN index
(namespace_whitelist=["Scann"]). Every TensorFlow process here is a subprocess, one at a time.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.rehearsal import images

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "serving_image" / "Dockerfile"
pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]

# Routes as Vertex spells them when a model names none, to show the server takes them from the environment.
HEALTH_ROUTE = "/v1/endpoints/e1/deployedModels/m1"
PREDICT_ROUTE = "/v1/endpoints/e1/deployedModels/m1:predict"

# Runs in the repository: export a model the way the Trainer does, then ask it directly (with scann
# imported, as any loader must) for the answers the container has to give.
EXPORT = textwrap.dedent("""
    import json, os, sys
    import scann  # noqa: F401
    import tensorflow as tf
    from pipeline_compiler.modules import trainer
    from tests.unit.pipeline_compiler.tiny_data import run_tiny_transform, tiny_spec

    workdir, out = sys.argv[1:3]
    tiny = run_tiny_transform(workdir)
    spec = tiny_spec(workdir, run_id="served", training_params={"epochs": 1})
    assert spec.training_params.retrieval_index.type == "scann"
    result = trainer.train_and_export(spec, [tiny.train_pattern], [tiny.eval_pattern], tiny.transform_output_dir,
                                      export=True)
    saved_model = result.artifacts.saved_model
    signature = tf.saved_model.load(saved_model).signatures["serving_default"]
    specs = signature.structured_input_signature[1]
    rows = [0, 1, 2, 500, 2999]
    instances = [{name: tiny.raw[name][i].item() if hasattr(tiny.raw[name][i], "item") else tiny.raw[name][i]
                  for name in specs} for i in rows]
    batch = {name: tf.constant([inst[name] for inst in instances], dtype=spec.dtype) for name, spec in specs.items()}
    direct = signature(**batch)
    expected = [{"ids": [v.decode() for v in direct["ids"][i].numpy()], "scores": direct["scores"][i].numpy().tolist()}
                for i in range(len(rows))]
    with open(out, "w") as handle:
        json.dump({"saved_model": saved_model, "instances": instances, "expected": expected,
                   "features": sorted(specs)}, handle)
    # TF + Beam + ScaNN in one process can crash while the interpreter tears down; everything is written.
    sys.stdout.flush()
    os._exit(0)
""")

# Runs in the image's tree: the export needs ScaNN's ops (a loader without `import scann` fails), the
# container's loader registers them, and nothing from TFRS is needed to serve.
WITHOUT_SCANN = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    path = sys.argv[1]
    try:
        tf.saved_model.load(path)
        plain = "loaded"
    except Exception as exc:
        plain = f"{type(exc).__name__}: {exc}"
    from model_server.savedmodel import load_saved_model, predict
    import model_server
    model = load_saved_model(path)
    out = predict(model, json.loads(sys.argv[2]))
    print("RESULT " + json.dumps({"plain": plain, "predictions": out,
                                  "tfrs_imported": "tensorflow_recommenders" in sys.modules,
                                  "model_server_from": model_server.__file__}))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _image_environment(image: images.Image, tree: Path) -> dict[str, str]:
    """The image's ENV with /app mapped to the assembled tree, on a minimal host environment."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    for key, value in image.env.items():
        env[key] = str(tree) + value[len(image.workdir):] if value.startswith(image.workdir) else value
    return env


def _argv(image: images.Image) -> list[str]:
    command = list(image.command)
    assert command[0] == "python", command  # the image's python, which is this environment's here
    return [sys.executable] + command[1:]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("export")
    out = workdir / "export.json"
    result = subprocess.run([sys.executable, "-c", EXPORT, str(workdir), str(out)], cwd=REPO, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def image():
    return images.load(DOCKERFILE)


@pytest.fixture(scope="module")
def tree(image, tmp_path_factory) -> Path:
    root = image.assemble(tmp_path_factory.mktemp("serving-image") / "app")
    assert (root / "model_server" / "vertex.py").exists() and not (root / "shared").exists()
    return root


def _stop(process: subprocess.Popen) -> list[int]:
    """SIGTERM to gunicorn's master (as Vertex stops a container), then SIGKILL by pid to whatever is
    left of it and its workers; returns the pids that were running."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    pids = [process.pid] + [c.pid for c in children]
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                os.kill(pid, signal.SIGKILL)
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
    if process.poll() is None:
        process.wait(timeout=10)
    return pids


def test_the_container_serves_the_exported_scann_model_under_vertexs_contract(export, image, tree, tmp_path):
    port = _free_port()
    env = _image_environment(image, tree) | {
        "AIP_HTTP_PORT": str(port), "AIP_HEALTH_ROUTE": HEALTH_ROUTE, "AIP_PREDICT_ROUTE": PREDICT_ROUTE,
        "AIP_STORAGE_URI": export["saved_model"]}
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen(_argv(image), cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        statuses = []
        deadline = time.time() + 180
        while time.time() < deadline:
            assert process.poll() is None, f"the server exited:\n{(tmp_path / 'server.log').read_text()[-4000:]}"
            try:
                response = requests.get(base + HEALTH_ROUTE, timeout=5)
            except requests.ConnectionError:
                time.sleep(0.3)
                continue
            statuses.append(response.status_code)
            if response.status_code == 200:
                break
            assert response.status_code == 503 and response.json()["status"] == "loading", response.text
            time.sleep(0.3)
        assert statuses and statuses[-1] == 200, (tmp_path / "server.log").read_text()[-4000:]
        assert response.json() == {"status": "ok", "model": export["saved_model"]}
        assert requests.get(base + "/health", timeout=5).status_code == 404  # the route is Vertex's, not a default

        # Vertex's request shape; a number sent as a string (JSON clients do) is still that number.
        assert "timestamp" in export["features"]
        instances = [dict(i) for i in export["instances"]]
        instances[1]["timestamp"] = str(instances[1]["timestamp"])
        response = requests.post(base + PREDICT_ROUTE, json={"instances": instances, "parameters": {}}, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"predictions"}
        assert len(body["predictions"]) == len(export["expected"])
        for got, expected in zip(body["predictions"], export["expected"]):
            assert got["ids"] == expected["ids"]
            assert got["scores"] == pytest.approx(expected["scores"], rel=1e-6)
            assert len(got["ids"]) == len(set(got["ids"])) > 10

        # a named signature is the same answer; bad requests are 400 with a message saying what is wrong
        named = requests.post(base + PREDICT_ROUTE, json={"instances": instances[:1],
                                                          "parameters": {"signature_name": "serving_default"}}, timeout=60)
        assert named.status_code == 200 and named.json()["predictions"][0]["ids"] == export["expected"][0]["ids"]
        # `k` (a batch prediction's model_parameters) keeps the first k of the same answer
        first = requests.post(base + PREDICT_ROUTE, json={"instances": instances[:1], "parameters": {"k": 5}}, timeout=60)
        assert first.status_code == 200 and first.json()["predictions"][0]["ids"] == export["expected"][0]["ids"][:5]
        bad = {
            "missing features": ({"instances": [{"city": "x"}]}, "missing"),
            "not a list": ({"instances": "c1"}, "instances"),
            "not a number": ({"instances": [dict(instances[0], timestamp="soon")]}, "'timestamp' must be a int64"),
            "unknown signature": ({"instances": instances[:1], "parameters": {"signature_name": "nope"}}, "no signature"),
            "unknown parameter": ({"instances": instances[:1], "parameters": {"top": 5}}, "unknown parameters"),
        }
        for case, (payload, message) in bad.items():
            response = requests.post(base + PREDICT_ROUTE, json=payload, timeout=30)
            assert response.status_code == 400, (case, response.text)
            assert message in response.json()["error"], (case, response.json())
        assert requests.post(base + PREDICT_ROUTE, data="not json", timeout=30).status_code == 400
    finally:
        pids = _stop(process)
        log.close()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid
    with pytest.raises(requests.ConnectionError):
        requests.get(base + HEALTH_ROUTE, timeout=2)
    assert len(pids) >= 2  # gunicorn's master and the worker holding the model


def test_the_export_needs_scanns_ops_and_the_containers_loader_registers_them(export, tree):
    """Without `import scann` the export does not load (why Vertex's prebuilt TF images fail); the
    container's loader loads it, answers like the model, and needs nothing from TFRS."""
    result = subprocess.run([sys.executable, "-c", WITHOUT_SCANN, export["saved_model"],
                             json.dumps(export["instances"][:2])], cwd=tree, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    out = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))[len("RESULT "):])
    assert "Op type not registered 'Scann>" in out["plain"], out["plain"][:500]
    assert [p["ids"] for p in out["predictions"]] == [e["ids"] for e in export["expected"][:2]]
    assert out["tfrs_imported"] is False
    assert out["model_server_from"].startswith(str(tree))


def test_health_is_503_until_the_model_is_loaded_and_says_why_it_failed():
    """The loader's states as the health and predict routes report them (no TensorFlow needed)."""
    from model_server import vertex

    loading = vertex.Loader("gs://bucket/model")
    client = vertex.create_app(predict_route="/p", health_route="/h", loader=loading).test_client()
    assert client.get("/h").status_code == 503 and client.get("/h").json["status"] == "loading"
    assert client.post("/p", json={"instances": [{"a": 1}]}).status_code == 503

    unset = vertex.Loader("")
    unset._load()
    client = vertex.create_app(predict_route="/p", health_route="/h", loader=unset).test_client()
    response = client.get("/h")
    assert response.status_code == 503 and response.json["status"] == "failed"
    assert "AIP_STORAGE_URI is not set" in response.json["error"]
    assert client.post("/p", json={"instances": [{"a": 1}]}).json["status"] == "failed"


def test_the_dockerfile_installs_the_serving_pins_and_checks_its_tree(image):
    """Same rules as the other images (tests/unit/test_gpu_image.py): the pins, the one file list, the
    build checks after the last COPY, and the server as the command."""
    from gpu_image import verify_image as vi
    from tests.unit.test_gpu_image import pip_install_commands, pip_pin_problems

    pins = vi.constraint_pins(REPO / "requirements" / "constraints.txt")
    commands = pip_install_commands(image.instructions)
    assert commands and all(pip_pin_problems(args, pins) == [] for args in commands)
    assert "requirements/serving.txt" in [a for args in commands for a in args]
    assert set(vi.requirement_names(REPO / "requirements" / "serving.txt")) == {"tensorflow", "scann", "flask", "gunicorn"}
    assert [a.split() for k, a in image.instructions if k == "COPY"] == [["requirements/", "/app/requirements/"], [".", "/app/"]]
    order = [k + " " + a for k, a in image.instructions]
    check = next(i for i, line in enumerate(order) if line.startswith("RUN") and "verify_image.py" in line)
    assert "--image serving" in order[check] and "--skip" not in order[check]
    assert check > max(i for i, line in enumerate(order) if line.startswith("COPY"))
    assert image.env["PYTHONPATH"] == "/app" and image.workdir == "/app"
    from gpu_image import image_pins

    assert image.base == f"python:{image_pins.read_image_spec('serving').python}-slim-bookworm"
    assert image.command == ["python", "-m", vi.SERVING_MODULE]
    files = set(image.files())
    assert {"model_server/vertex.py", "model_server/savedmodel.py", "gpu_image/verify_image.py"} <= files
    assert not [f for f in files if f.startswith(("shared/", "pipeline_compiler/", "tests/", "scripts/"))]

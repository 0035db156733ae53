"""Build-time checks of Trainyard's images (run by each Dockerfile; also runnable in any environment).

    verify_image.py --image gpu --expect-cuda      # gpu_image/Dockerfile
    verify_image.py --image dataflow               # dataflow_image/Dockerfile
    verify_image.py --image serving                # serving_image/Dockerfile

1. The image's tree is exactly what its Dockerfile's .dockerignore lets through (a builder that
   ignored the file would ship something else) — only inside an image (/app).
2. Every package the image installs by name is pinned in requirements/constraints.txt and installed
   at exactly that version: the images cannot drift from the local environment or from each other.
3. Python 3.10 (the launcher in the GPU image and the Dataflow workers must match; the prediction
   container runs 3.11); TensorFlow (and, with --expect-cuda, built with CUDA) imports. GPU and
   Dataflow images: TFX, the TFX components the pipeline uses and the project's packages import. GPU
   image: TFRS and ScaNN with its TF ops, and every consumer Terraform runs from it (the submitter,
   run-commands) loads. Dataflow image: tfx-bsl, TFT, TFDV, the DoFns and module files the workers
   unpickle, and Beam's boot program. Serving image: ScaNN's TF ops, TensorFlow's gs:// file system
   (the model is read from $AIP_STORAGE_URI) and the container's server module.

Exit 0 when everything holds, 1 otherwise; one line per check.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
# What each image installs by name (its Dockerfile's `pip install -r ...`).
IMAGE_REQUIREMENT_FILES = {"gpu": ("ml.txt", "runtime.txt"), "dataflow": ("dataflow.txt",), "serving": ("serving.txt",)}
DOCKERIGNORE = {"gpu": "gpu_image/Dockerfile.dockerignore", "dataflow": "dataflow_image/Dockerfile.dockerignore",
                "serving": "serving_image/Dockerfile.dockerignore"}
# The Python each image runs (its base image's): Beam pickles between the GPU image's launcher and the
# Dataflow workers; the prediction container exchanges only JSON and runs the local environment's 3.11.
IMAGE_PYTHON = {"gpu": "3.10", "dataflow": "3.10", "serving": "3.11"}
# The prediction container's entrypoint module (serving_image/Dockerfile CMD).
SERVING_MODULE = "model_server.vertex"
# The consumers Terraform runs from the GPU image (terraform/variables.tf consumer_commands).
CONSUMERS = {"functions/submitter/main.py": "on_run_submit", "functions/run_commands/main.py": "on_run_command"}
BEAM_BOOT = "/opt/apache/beam/boot"


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines(path: Path) -> Iterable[str]:
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            yield line


def _included(path: Path) -> list[Path]:
    """The files a requirements file pulls in with `-r other.txt`."""
    out = []
    for raw in path.read_text().splitlines():
        parts = raw.split("#", 1)[0].split()
        if len(parts) == 2 and parts[0] in ("-r", "--requirement"):
            out.append(path.parent / parts[1])
    return out


def requirement_names(path: Path) -> list[str]:
    """Project names a requirements file asks for, its `-r` includes' too (extras and markers stripped)."""
    names = [name for included in _included(path) for name in requirement_names(included)]
    for line in _requirement_lines(path):
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if not match:
            raise ValueError(f"{path}: cannot parse requirement line {line!r}")
        names.append(canonical(match.group(1)))
    return names


def requirement_specifiers(path: Path) -> dict[str, str]:
    """name -> the version specifier written in the file ('' when unpinned)."""
    out = {}
    for line in _requirement_lines(path):
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$", line)
        if not match:
            raise ValueError(f"{path}: cannot parse requirement line {line!r}")
        out[canonical(match.group(1))] = match.group(3)
    return out


def constraint_pins(path: Path) -> dict[str, str]:
    """name -> pinned version, for every `name==version` line of constraints.txt."""
    pins = {}
    for line in _requirement_lines(path):
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;]+)", line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def _installed_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def pin_problems(
    requirements_dir: Path,
    installed_version: Callable[[str], Optional[str]] = _installed_version,
    image: str = "gpu",
) -> list[str]:
    """Every package the image installs by name must be pinned and installed at its pin."""
    pins = constraint_pins(requirements_dir / "constraints.txt")
    problems = []
    for filename in IMAGE_REQUIREMENT_FILES[image]:
        for name in requirement_names(requirements_dir / filename):
            pin = pins.get(name)
            if pin is None:
                problems.append(f"{name} ({filename}) has no == pin in constraints.txt")
                continue
            have = installed_version(name)
            if have is None:
                problems.append(f"{name} is not installed (pinned {pin})")
            elif have != pin:
                problems.append(f"{name} {have} is installed but constraints.txt pins {pin}")
    return problems


# --------------------------------------------------------------------------- import checks

TFX_COMPONENTS = ("CsvExampleGen", "ImportExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer",
                  "Evaluator", "Pusher")


def check_tensorflow(expect_cuda: bool) -> str:
    import tensorflow as tf

    built = tf.test.is_built_with_cuda()
    if expect_cuda and not built:
        raise AssertionError(f"TensorFlow {tf.__version__} was not built with CUDA")
    return f"TensorFlow {tf.__version__}, CUDA built: {built}"


def check_tfx() -> str:
    import tfx
    from tfx import v1

    missing = [name for name in TFX_COMPONENTS if not hasattr(v1.components, name)]
    if missing:
        raise AssertionError(f"TFX components missing: {missing}")
    # The cloud-side pieces the pipeline uses: BigQuery ExampleGen, the Vertex Trainer, the V2 runner.
    _ = v1.extensions.google_cloud_big_query.BigQueryExampleGen
    _ = v1.extensions.google_cloud_ai_platform.Trainer
    _ = v1.orchestration.experimental.KubeflowV2DagRunner
    return f"TFX {tfx.__version__}: {', '.join(TFX_COMPONENTS)}, BigQueryExampleGen, Vertex Trainer, KubeflowV2DagRunner"


def check_tfrs() -> str:
    import tensorflow_recommenders as tfrs
    from tensorflow_recommenders.layers.factorized_top_k import ScaNN  # noqa: F401

    return f"TFRS {tfrs.__version__} (factorized_top_k.ScaNN available)"


def check_scann_ops() -> str:
    """ScaNN's TensorFlow custom ops (the .so compiled against TF 2.15) actually load and run."""
    import numpy as np
    import scann

    rng = np.random.default_rng(0)
    db = rng.normal(size=(64, 8)).astype(np.float32)
    searcher = scann.scann_ops.builder(db, 3, "dot_product").tree(
        num_leaves=4, num_leaves_to_search=4, training_sample_size=64
    ).score_brute_force().build()
    neighbors, _ = searcher.search_batched(db[:2])
    if tuple(neighbors.shape) != (2, 3):
        raise AssertionError(f"unexpected ScaNN result shape {neighbors.shape}")
    return "ScaNN TF ops load and search"


def check_python(expected: str = "3.10") -> str:
    if "%d.%d" % sys.version_info[:2] != expected:
        raise AssertionError(f"Python {sys.version.split()[0]}, expected {expected}: the launcher (GPU image) and "
                             "the Dataflow workers must both run 3.10 (Beam pickles between them)")
    return f"Python {sys.version.split()[0]}"


def check_tree(root: Path, image: str) -> str:
    sys.path.insert(0, str(root / "gpu_image"))
    import image_tree

    dockerignore = root / DOCKERIGNORE[image]
    problems = image_tree.tree_problems(root, dockerignore, ignore=("requirements/",))
    if problems:
        raise AssertionError("; ".join(problems[:10]))
    return f"{root} holds exactly what {DOCKERIGNORE[image]} lets through"


def _load(path: Path, target: str) -> None:
    """Load a consumer the way functions-framework does (--source=<file> --target=<name>)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem + "_main", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, target, None)):
        raise AssertionError(f"{path}: {target} is not callable after import")


def check_project_packages(root: Path) -> str:
    """shared and pipeline_compiler import; every consumer the image runs loads and defines its target."""
    sys.path.insert(0, str(root))
    import pipeline_compiler  # noqa: F401
    import shared  # noqa: F401

    for source, target in CONSUMERS.items():
        _load(root / source, target)
    return "shared, pipeline_compiler import; " + ", ".join(f"{s} defines {t}" for s, t in CONSUMERS.items())


def check_worker_packages(root: Path) -> str:
    """What Dataflow workers unpickle and import: our DoFns and module files, TFT, TFDV, tfx-bsl."""
    sys.path.insert(0, str(root))
    import tensorflow_data_validation  # noqa: F401
    import tensorflow_transform  # noqa: F401
    import tfx_bsl  # noqa: F401

    import pipeline_compiler.example_gen  # noqa: F401
    import pipeline_compiler.modules.transform  # noqa: F401
    return "tfx_bsl, tensorflow_transform, tensorflow_data_validation, pipeline_compiler.example_gen, modules.transform"


def check_gcs_filesystem() -> str:
    """tf.io.gfile (and so tf.saved_model.load) reads gs://: Vertex puts the model at a gs:// AIP_STORAGE_URI."""
    import tensorflow as tf

    schemes = set(tf.io.gfile.get_registered_schemes())
    if "gs" not in schemes:
        raise AssertionError(f"TensorFlow has no gs:// file system (registered: {sorted(schemes)})")
    return "tf.io.gfile reads gs://"


def check_serving_server(root: Path) -> str:
    """The container's entrypoint module imports and builds its app (without loading a model)."""
    import importlib

    sys.path.insert(0, str(root))
    module = importlib.import_module(SERVING_MODULE)
    loader = module.Loader("")
    loader.done.set()
    app = module.create_app(storage_uri="", loader=loader)
    routes = sorted(rule.rule for rule in app.url_map.iter_rules() if rule.endpoint in ("health", "predict"))
    if routes != sorted([module.DEFAULT_HEALTH_ROUTE, module.DEFAULT_PREDICT_ROUTE]):
        raise AssertionError(f"{SERVING_MODULE} serves {routes}")
    return f"{SERVING_MODULE} imports; routes {routes}"


def check_beam_boot() -> str:
    if not os.access(BEAM_BOOT, os.X_OK):
        raise AssertionError(f"{BEAM_BOOT} is missing: Dataflow cannot start workers in this image")
    return f"{BEAM_BOOT} present (the image's entrypoint)"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", choices=sorted(IMAGE_REQUIREMENT_FILES), default="gpu")
    parser.add_argument("--requirements", type=Path, default=REPO_ROOT / "requirements")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="where shared/, pipeline_compiler/ live")
    parser.add_argument("--expect-cuda", action="store_true", help="fail unless TF was built with CUDA")
    parser.add_argument("--pins-only", action="store_true", help="only compare installed versions with the pins")
    parser.add_argument("--skip", default="", help="comma-separated checks not to run (e.g. tree outside an image)")
    parser.add_argument("--python", default=None, help="the Python minor version the image must run "
                        "(default: the image's, " + ", ".join(f"{k} {v}" for k, v in IMAGE_PYTHON.items()) + ")")
    args = parser.parse_args(argv)

    failed = False
    problems = pin_problems(args.requirements, image=args.image)
    if problems:
        failed = True
        print("FAIL  pinned versions:")
        for problem in problems:
            print(f"        {problem}")
    else:
        print("PASS  pinned versions: every package installed by name matches requirements/constraints.txt")
    if not args.pins_only:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        python = args.python or IMAGE_PYTHON[args.image]
        checks = [("tree", lambda: check_tree(args.root, args.image)),
                  ("python", lambda: check_python(python)),
                  ("tensorflow", lambda: check_tensorflow(args.expect_cuda))]
        if args.image == "gpu":
            checks += [("tfx", check_tfx), ("tfrs", check_tfrs), ("scann_ops", check_scann_ops),
                       ("project", lambda: check_project_packages(args.root))]
        elif args.image == "dataflow":
            checks += [("tfx", check_tfx), ("worker_packages", lambda: check_worker_packages(args.root)),
                       ("beam_boot", check_beam_boot)]
        else:
            checks += [("scann_ops", check_scann_ops), ("gcs", check_gcs_filesystem),
                       ("server", lambda: check_serving_server(args.root))]
        skipped = {name.strip() for name in args.skip.split(",") if name.strip()}
        for name, check in checks:
            if name in skipped:
                print(f"SKIP  {name}")
                continue
            try:
                print(f"PASS  {name}: {check()}")
            except Exception as exc:  # noqa: BLE001 - every failure is reported, none hides the rest
                failed = True
                print(f"FAIL  {name}: {type(exc).__name__}: {exc}")
    print("IMAGE CHECKS FAILED" if failed else "IMAGE CHECKS PASSED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

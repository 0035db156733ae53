"""Build-time checks of Trainyard's images (run by each Dockerfile; also runnable in any environment).

    verify_image.py --image gpu --expect-cuda --python 3.11 --glibc 2.36    # gpu_image/Dockerfile
    verify_image.py --image dataflow --python 3.11 --glibc 2.31             # dataflow_image/Dockerfile
    verify_image.py --image serving --python 3.11 --glibc 2.36              # serving_image/Dockerfile

1. The image's tree is exactly what its Dockerfile's .dockerignore lets through (a builder that
   ignored the file would ship something else) — only inside an image (/app).
2. Every package the image installs by name is pinned in requirements/constraints.txt and installed
   at exactly that version: the images cannot drift from the local environment or from each other.
3. The running Python and glibc are the ones the Dockerfile declares (ARG PYTHON_VERSION, GLIBC_VERSION:
   the lock was checked for exactly that target, gpu_image/image_pins.py), and every installed
   distribution's Requires-Python admits it but the TFX caps we override; TensorFlow imports (with
   --expect-cuda: built with CUDA, and the CUDA runtime, cuBLAS, cuDNN, cuFFT, cuSOLVER, cuSPARSE,
   CUPTI and NCCL libraries load from where TensorFlow looks for them, and ptxas runs). GPU and
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
# What each image's Dockerfile installs with pip -r (tests/unit/test_gpu_image.py checks the Dockerfiles;
# the Dockerfile is not in the image, so the build check cannot read it there).
IMAGE_REQUIREMENT_FILES = {"gpu": ("gpu.txt",), "dataflow": ("dataflow.txt",), "serving": ("serving.txt",)}
DOCKERIGNORE = {"gpu": "gpu_image/Dockerfile.dockerignore", "dataflow": "dataflow_image/Dockerfile.dockerignore",
                "serving": "serving_image/Dockerfile.dockerignore"}
# The prediction container's entrypoint module (serving_image/Dockerfile CMD).
SERVING_MODULE = "model_server.vertex"
# Requires-Python caps the images override with --ignore-requires-python, each knowingly: TFX 1.15's
# wheels say <3.11 although it runs on 3.11 (../shared/ARCHITECTURE.md "Versions"; the local environment
# runs it on 3.11 and the suite passes). These are the only distributions in any image's closure whose
# Requires-Python excludes 3.11 (python -m gpu_image.image_pins). Any other one fails the build.
KNOWN_PYTHON_CAPS = {
    "tfx": "TFX 1.15 caps Python <3.11 in its metadata; it runs on 3.11 (ARCHITECTURE.md)",
    "ml-pipelines-sdk": "released with tfx 1.15 (its pipeline DSL), same cap",
}
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


def check_python(expected: str) -> str:
    """The Python the Dockerfile declares (and the lock was checked for) is the one running."""
    if "%d.%d" % sys.version_info[:2] != expected:
        raise AssertionError(f"Python {sys.version.split()[0]}, but the Dockerfile declares {expected}: the base "
                             "image is not the one its PYTHON_VERSION names")
    return f"Python {sys.version.split()[0]}"


def requires_python_problems(distributions=None, version: Optional[str] = None) -> list[str]:
    """Installed distributions whose Requires-Python excludes the running Python (pip was told to ignore
    it), other than KNOWN_PYTHON_CAPS."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    version = version or "%d.%d.%d" % sys.version_info[:3]
    problems = []
    for dist in distributions if distributions is not None else importlib.metadata.distributions():
        requires = dist.metadata.get("Requires-Python")
        name = canonical(dist.metadata.get("Name") or "")
        if not requires or name in KNOWN_PYTHON_CAPS:
            continue
        try:
            if not SpecifierSet(requires).contains(version, prereleases=True):
                problems.append(f"{name} {dist.version} requires Python {requires}")
        except InvalidSpecifier:
            continue
    return sorted(problems)


def check_requires_python() -> str:
    problems = requires_python_problems()
    if problems:
        raise AssertionError(f"Python {sys.version.split()[0]} is excluded by: " + "; ".join(problems))
    return f"every installed distribution admits Python {sys.version.split()[0]} (known caps: {', '.join(KNOWN_PYTHON_CAPS)})"


def check_glibc(expected: str) -> str:
    """The base's glibc is the declared one: gpu_image/image_pins.py checked wheels up to manylinux_2_<minor>."""
    found = (os.confstr("CS_GNU_LIBC_VERSION") or "").split()  # "glibc 2.36"
    if len(found) != 2 or found[0] != "glibc" or found[1] != expected:
        raise AssertionError(f"C library {' '.join(found) or 'unknown'}, but the Dockerfile declares glibc {expected}")
    return f"glibc {found[1]}"


def check_compiler(declared: str) -> str:
    """A base said to ship a compiler does (image_pins.py let sdists with native code through for it)."""
    import shutil

    if declared == "none":
        return "no compiler declared (only wheels and pure-Python sdists were allowed)"
    if shutil.which(declared) is None:
        raise AssertionError(f"the Dockerfile declares COMPILER={declared}, but the base has no {declared}")
    return f"{declared} present (native sdists such as pyfarmhash build)"


# The CUDA 12 libraries TensorFlow 2.15.1 opens at run time, by the nvidia-*-cu12 wheel directory under
# site-packages/nvidia that its own RUNPATH names (libtensorflow_framework.so.2, libtensorflow_cc.so.2 and
# _pywrap_tensorflow_internal.so; readelf -d on the wheel), in an order where each library's
# dependencies come first. dlopen needs no GPU driver: libcudart loads libcuda lazily.
CUDA_LIBRARIES = (
    ("cuda_runtime", "libcudart.so.12"),
    ("cublas", "libcublasLt.so.12"),
    ("cublas", "libcublas.so.12"),
    ("cudnn", "libcudnn.so.8"),
    ("cufft", "libcufft.so.11"),
    ("cusparse", "libcusparse.so.12"),
    ("cusolver", "libcusolver.so.11"),
    ("cuda_cupti", "libcupti.so.12"),
    ("nccl", "libnccl.so.2"),
)
# XLA compiles GPU kernels with ptxas, which it looks for under nvidia/cuda_nvcc next to TensorFlow.
PTXAS = ("cuda_nvcc", "bin/ptxas")


def nvidia_root() -> Path:
    """site-packages/nvidia, beside the installed tensorflow package (where its RUNPATH points)."""
    import importlib.util

    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise AssertionError("tensorflow is not installed")
    return Path(list(spec.submodule_search_locations)[0]).parent / "nvidia"


def check_cuda_libraries(root: Optional[Path] = None) -> str:
    """Every CUDA library TensorFlow needs loads from where TensorFlow looks, and ptxas runs."""
    import ctypes
    import subprocess

    root = root if root is not None else nvidia_root()
    problems = []
    for package, soname in CUDA_LIBRARIES:
        path = root / package / "lib" / soname
        try:
            ctypes.CDLL(str(path))
        except OSError as exc:
            problems.append(f"{package}/lib/{soname}: {exc}")
    ptxas = root / PTXAS[0] / PTXAS[1]
    try:
        subprocess.run([str(ptxas), "--version"], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        problems.append(f"{PTXAS[0]}/{PTXAS[1]}: {exc}")
    if problems:
        raise AssertionError(f"under {root}: " + "; ".join(problems))
    return f"{len(CUDA_LIBRARIES)} CUDA/cuDNN/NCCL libraries load from {root}; ptxas runs"


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
    parser.add_argument("--python", help="the Python (major.minor) the Dockerfile declares (ARG PYTHON_VERSION)")
    parser.add_argument("--glibc", help="the glibc the Dockerfile declares (ARG GLIBC_VERSION)")
    parser.add_argument("--compiler", default="none", help="the compiler the Dockerfile says its base ships "
                        "(ARG COMPILER; 'none' for no compiler)")
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
        if not args.python or not args.glibc:
            parser.error("--python and --glibc (the Dockerfile's PYTHON_VERSION and GLIBC_VERSION) are required")
        checks = [("tree", lambda: check_tree(args.root, args.image)),
                  ("python", lambda: check_python(args.python)),
                  ("glibc", lambda: check_glibc(args.glibc)),
                  ("requires_python", check_requires_python),
                  ("compiler", lambda: check_compiler(args.compiler)),
                  ("tensorflow", lambda: check_tensorflow(args.expect_cuda))]
        if args.expect_cuda:
            checks.append(("cuda_libraries", check_cuda_libraries))
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

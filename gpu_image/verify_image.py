"""Build-time checks for the GPU image (run by the Dockerfile; also runnable in any environment).

1. Every package the image installs by name (requirements/ml.txt + runtime.txt) is pinned in
   requirements/constraints.txt and installed at exactly that version — the image cannot drift from
   the local environment.
2. TensorFlow imports (and, with --expect-cuda, was built with CUDA), TFX, TFRS and ScaNN import,
   ScaNN's TensorFlow custom ops load, the TFX components the pipeline uses import, and the
   project's own packages (shared, pipeline_compiler, the submitter) load.

Exit 0 when everything holds, 1 otherwise; one line per check.
"""
from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
# What the image installs by name (the Dockerfile's `pip install -r ... -r ...`).
IMAGE_REQUIREMENT_FILES = ("ml.txt", "runtime.txt")


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines(path: Path) -> Iterable[str]:
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            yield line


def requirement_names(path: Path) -> list[str]:
    """Project names a requirements file asks for (extras and markers stripped)."""
    names = []
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
) -> list[str]:
    """Every package the image installs by name must be pinned and installed at its pin."""
    pins = constraint_pins(requirements_dir / "constraints.txt")
    problems = []
    for filename in IMAGE_REQUIREMENT_FILES:
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


def check_project_packages(root: Path) -> str:
    """shared and pipeline_compiler import; the submitter module loads and defines on_run_submit."""
    import importlib.util

    sys.path.insert(0, str(root))
    import pipeline_compiler  # noqa: F401
    import shared  # noqa: F401

    main = root / "functions" / "submitter" / "main.py"
    tree = ast.parse(main.read_text(), filename=str(main))
    if "on_run_submit" not in {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}:
        raise AssertionError(f"{main} defines no on_run_submit")
    # Load it the way functions-framework does (--source=functions/submitter/main.py).
    spec = importlib.util.spec_from_file_location("submitter_main", main)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "on_run_submit", None)):
        raise AssertionError(f"{main}: on_run_submit is not callable after import")
    return "shared, pipeline_compiler import; functions/submitter/main.py loads and defines on_run_submit"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, default=REPO_ROOT / "requirements")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="where shared/, pipeline_compiler/ live")
    parser.add_argument("--expect-cuda", action="store_true", help="fail unless TF was built with CUDA")
    parser.add_argument("--pins-only", action="store_true", help="only compare installed versions with the pins")
    args = parser.parse_args(argv)

    failed = False
    problems = pin_problems(args.requirements)
    if problems:
        failed = True
        print("FAIL  pinned versions:")
        for problem in problems:
            print(f"        {problem}")
    else:
        print("PASS  pinned versions: every package installed by name matches requirements/constraints.txt")
    if not args.pins_only:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        checks = [
            ("tensorflow", lambda: check_tensorflow(args.expect_cuda)),
            ("tfx", check_tfx),
            ("tfrs", check_tfrs),
            ("scann_ops", check_scann_ops),
            ("project", lambda: check_project_packages(args.root)),
        ]
        for name, check in checks:
            try:
                print(f"PASS  {name}: {check()}")
            except Exception as exc:  # noqa: BLE001 - every failure is reported, none hides the rest
                failed = True
                print(f"FAIL  {name}: {type(exc).__name__}: {exc}")
    print("IMAGE CHECKS FAILED" if failed else "IMAGE CHECKS PASSED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

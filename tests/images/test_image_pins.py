"""N1: each image's pinned closure installs for that image's own Python and platform, resolved against
the public package index the way its Dockerfile's `pip install` runs (gpu_image/image_pins.py). Asks
the index on every run (pip revalidates index pages); skips, saying so, when the index is unreachable."""
from __future__ import annotations

from pathlib import Path

import pytest

from gpu_image import image_pins

pytestmark = [pytest.mark.index, pytest.mark.slow]


@pytest.fixture(scope="module")
def index():
    if not image_pins.index_reachable():
        pytest.skip(f"the package index ({image_pins.INDEX_URL}) is unreachable: the images' closures were not checked")


def _check(spec: image_pins.ImageSpec) -> image_pins.ImageResult:
    try:
        return image_pins.check_image(spec)
    except image_pins.IndexUnreachable as exc:
        pytest.skip(f"the package index stopped answering: {exc}")


@pytest.mark.parametrize("image", sorted(image_pins.DOCKERFILES))
def test_each_images_pinned_closure_installs_for_its_own_python_and_platform(index, image):
    result = _check(image_pins.read_image_spec(image))
    report = "\n".join(image_pins.format_result(result))
    print(report)  # the per-image time and what was allowed, in the test log
    assert not result.failures, report
    assert {"tensorflow", "numpy"} <= set(result.resolved)


def _image_tree(root: Path, python: str, requirements: str, constraints: str, compiler: str = "none") -> Path:
    (root / "serving_image").mkdir(parents=True)
    (root / "requirements").mkdir()
    (root / "requirements" / "constraints.txt").write_text(constraints)
    (root / "requirements" / "serving.txt").write_text(requirements)
    (root / "serving_image" / "Dockerfile").write_text(
        f"ARG PYTHON_VERSION={python}\nARG GLIBC_VERSION=2.31\nARG COMPILER={compiler}\n"
        "FROM python:${PYTHON_VERSION}-slim-bullseye\n"
        "RUN pip install -c requirements/constraints.txt -r requirements/serving.txt\n")
    return root


def test_the_check_names_a_pin_without_a_wheel_for_the_images_python_and_unpinned_drift(index, tmp_path):
    """What the review found (fastavro 1.13.1 has no cp310 wheel), and a closure the lock does not pin."""
    root = _image_tree(tmp_path, "3.10", "fastavro\nrequests\n", "fastavro==1.13.1\nrequests==2.34.2\n")
    result = _check(image_pins.read_image_spec("serving", root))
    # No cp310 wheel; its sdist is Cython, which this compiler-less image cannot build.
    assert result.failures["fastavro"].startswith("fastavro==1.13.1: "), result.failures
    assert "not pinned (drift)" in result.failures["idna"] and "urllib3" in result.failures
    # The same pins for Python 3.11 (with their dependencies pinned as resolved) hold.
    resolved = result.resolved
    lock = "fastavro==1.13.1\n" + "".join(f"{n}=={v}\n" for n, v in resolved.items() if n != "fastavro")
    ok = _check(image_pins.read_image_spec("serving", _image_tree(tmp_path / "ok", "3.11", "fastavro\nrequests\n", lock)))
    assert ok.failures == {} and ok.resolved["fastavro"] == "1.13.1"


def test_an_sdist_only_pin_counts_when_it_builds_a_pure_wheel(index, tmp_path):
    """google-apitools 0.5.31 ships only an sdist; built without a compiler it is a py3-none-any wheel."""
    lock = (Path(__file__).resolve().parents[2] / "requirements" / "constraints.txt").read_text()
    result = _check(image_pins.read_image_spec("serving", _image_tree(tmp_path, "3.11", "google-apitools\n", lock)))
    assert any(b.startswith("google-apitools:") and "pure" in b for b in result.built), result.built
    assert result.failures == {} and result.resolved["google-apitools"] == "0.5.31"

"""gpu_image/image_pins.py without the index: what it reads from each Dockerfile, the tags it resolves
for, how it judges a pin from the index's file list, and what it takes from pip's errors. The check
against the index itself is tests/images/test_image_pins.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from gpu_image import image_pins

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("image", sorted(image_pins.DOCKERFILES))
def test_each_image_target_and_install_line_come_from_its_dockerfile(image):
    spec = image_pins.read_image_spec(image)
    assert spec.python == "3.11"  # one Python for the twin and every image: one lock
    assert spec.constraints == ROOT / "requirements" / "constraints.txt"
    assert spec.requirement_files and all(p.exists() for p in spec.requirement_files)
    assert spec.compiler in ("none", "g++")


def test_the_old_dockerfiles_declared_no_python_so_the_check_fails_on_them(tmp_path):
    """The tree before issue 28 named its Python only inside a base image reference."""
    (tmp_path / "gpu_image").mkdir()
    (tmp_path / "gpu_image" / "Dockerfile").write_text(
        "ARG BASE_IMAGE=us-docker.pkg.dev/deeplearning-platform-release/gcr.io/tf2-gpu.2-15.py310\n"
        "FROM ${BASE_IMAGE}\nRUN pip install --ignore-requires-python -c requirements/constraints.txt "
        "-r requirements/ml.txt -r requirements/runtime.txt\n")
    with pytest.raises(ValueError, match="ARG PYTHON_VERSION"):
        image_pins.read_image_spec("gpu", tmp_path)
    spec = image_pins.read_image_spec("gpu", tmp_path, python="3.10", glibc="2.31", compiler="g++")
    assert [p.name for p in spec.requirement_files] == ["ml.txt", "runtime.txt"] and spec.ignore_requires_python


def test_platform_tags_cover_every_manylinux_level_up_to_the_base_glibc():
    spec = image_pins.ImageSpec("x", Path("Dockerfile"), "3.11", "2.31", Path("c.txt"), [], [], False, "none")
    assert spec.platforms[0] == "manylinux_2_31_x86_64" and "manylinux_2_5_x86_64" in spec.platforms
    assert "manylinux_2_32_x86_64" not in spec.platforms
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(spec.platforms)
    assert "linux_x86_64" not in spec.platforms  # no compiler: no locally built wheels
    assert "cp311-cp311-manylinux_2_17_x86_64" in spec.tags() and "py3-none-any" in spec.tags()
    assert "cp310-cp310-manylinux_2_17_x86_64" not in spec.tags()
    assert "cp311-cp311-manylinux_2_34_x86_64" not in spec.tags()


def _files(*names, requires=None):
    return [{"filename": n, "requires-python": requires} for n in names]


def test_a_pin_is_judged_by_the_files_of_its_version():
    spec310 = image_pins.ImageSpec("gpu", Path("D"), "3.10", "2.31", Path("c"), [], [], True, "g++")
    rpds = _files("rpds_py-2026.9.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                  "rpds_py-0.9.2-cp310-cp310-manylinux_2_17_x86_64.whl")  # another version's cp310 wheel
    kind, why = image_pins.classify_pin(spec310, "rpds-py", "2026.9.1", rpds)
    assert kind == "fail" and "no wheel for cp310" in why and "no sdist" in why
    kind, _ = image_pins.classify_pin(spec310, "rpds-py", "2026.9.1",
                                      rpds + _files("rpds_py-2026.9.1.tar.gz"))
    assert kind == "sdist"  # it will be built (and, needing Rust, fail there)
    kind, why = image_pins.classify_pin(spec310, "rpds-py", "2026.9.1",
                                        rpds + _files("rpds_py-2026.9.1.tar.gz", requires=">=3.11"))
    assert kind == "fail" and "its sdist requires Python >=3.11" in why  # the review's criterion
    wheel = _files("absl_py-1.4.0-py3-none-any.whl", requires=">=3.6")
    assert image_pins.classify_pin(spec310, "absl-py", "1.4.0", wheel) == ("wheel", None)
    spec_strict = image_pins.ImageSpec("s", Path("D"), "3.10", "2.36", Path("c"), [], [], False, "none")
    kind, why = image_pins.classify_pin(spec_strict, "markdown", "3.11.3",
                                        _files("markdown-3.11.3-py3-none-any.whl", requires=">=3.11"))
    assert kind == "fail" and "require Python >=3.11" in why
    # Another version's sdist does not count for this pin.
    assert image_pins.classify_pin(spec310, "crcmod", "1.7", _files("crcmod-1.6.tar.gz"))[0] == "fail"


def test_the_pins_pip_names_in_its_resolution_errors():
    conflict = ("The conflict is caused by:\n    tfx 1.15.0 depends on google-apitools<1 and >=0.5\n"
                "    The user requested (constraint) google-apitools==0.5.31\n")
    missing = ("ERROR: Could not find a version that satisfies the requirement pyfarmhash<0.4,>=0.2.2 "
               "(from tensorflow-data-validation) (from versions: 0.5.0)\n"
               "ERROR: No matching distribution found for pyfarmhash<0.4,>=0.2.2\n")
    assert image_pins.culprits(conflict + missing) == ["google-apitools", "pyfarmhash"]
    assert image_pins.culprits("ERROR: some other failure") == []


def test_the_known_python_caps_are_tfx_and_its_dsl_only_and_patch_floors_are_judged_on_a_late_patch():
    assert set(image_pins.KNOWN_PYTHON_CAPS) == {"tfx", "ml-pipelines-sdk"}
    assert all(reason for reason in image_pins.KNOWN_PYTHON_CAPS.values())
    assert not image_pins._admits(">=3.9,<3.11", "3.11") and image_pins._admits(">=3.9,<3.11", "3.10")
    assert image_pins._admits(">=3.11.5", "3.11")  # soupsieve 4.1.3: python:3.11-* is a late 3.11 patch
    assert not image_pins._admits(">=3.12", "3.11") and image_pins._admits(None, "3.11")


def test_the_resolution_ignores_this_machines_pip_configuration(monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("PIP_INDEX_URL", "http://localhost:1/simple")
    env = image_pins.isolated_env(tmp_path)
    assert not [k for k in env if k.startswith("PIP_") and k not in
                ("PIP_CONFIG_FILE", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_CACHE_DIR")]
    assert env["PIP_CONFIG_FILE"] == "/dev/null"


def test_a_pip_too_old_to_resolve_for_another_platform_is_named_before_any_resolution(monkeypatch, tmp_path):
    """CI's fresh venv (uv, Python 3.11's ensurepip) carried pip 23.2.1, which refuses --platform with
    --dry-run; every image then 'failed' with pip's own usage error instead of a verdict on its pins."""
    monkeypatch.setattr(image_pins, "installed_version", lambda name: "23.2.1")
    monkeypatch.setattr(image_pins, "_pip_resolve", lambda *a, **k: pytest.fail("resolved with an old pip"))
    with pytest.raises(RuntimeError, match=r"pip 23\.2\.1.*needs pip >= 23\.3"):
        image_pins.check_image(image_pins.read_image_spec("serving"), cache_dir=tmp_path)


def test_the_environment_the_suite_runs_in_has_a_pip_that_can_resolve_for_another_platform():
    """requirements/dev.txt installs pip, pinned by the lock, into the venv whichever installer made it."""
    image_pins.require_pip()

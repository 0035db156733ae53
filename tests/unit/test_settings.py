"""One settings source: every variable is declared once in shared/settings.py, only that module reads
the environment, and every name the code, the scripts and Terraform use is a declared one."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shared import settings as S

REPO = Path(__file__).resolve().parents[2]
# The code of every deployable and of the local twin's processes. (gpu_image/*.py are the image's own
# build and GPU checks, which set TF_* variables before TensorFlow loads; tests/ read test knobs.)
CODE_DIRS = ("shared", "pipeline_compiler", "functions", "scripts", "trainyard_cli", "bench")


def _python_files():
    for folder in CODE_DIRS:
        yield from sorted((REPO / folder).rglob("*.py"))


def environment_reads(path: Path, root: Path = REPO) -> list[str]:
    """Every use of os.environ / os.getenv / os.putenv / `from os import environ` in a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "putenv", "environb", "unsetenv"):
            found.append(f"{path.relative_to(root)}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os" \
                and any(a.name in ("environ", "getenv", "putenv") for a in node.names):
            found.append(f"{path.relative_to(root)}:{node.lineno} from os import ...")
    return sorted(found)


def test_only_the_settings_module_reads_the_environment():
    reads = [r for p in _python_files() if p != REPO / "shared" / "settings.py" for r in environment_reads(p)]
    assert reads == [], "read settings through shared/settings.py:\n" + "\n".join(reads)


def test_the_check_sees_every_kind_of_environment_read(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom os import getenv\nx = os.environ.get('A')\ny = os.getenv('B')\n")
    assert environment_reads(module, tmp_path) == ["m.py:2 from os import ...", "m.py:3 os.environ", "m.py:4 os.getenv"]


NAME = re.compile(r"\b(TRAINYARD_[A-Z0-9_]+|GOOGLE_CLOUD_PROJECT|FIRESTORE_EMULATOR_HOST|PUBSUB_EMULATOR_HOST|LOG_EXECUTION_ID)\b")
# Names the repository uses that are not settings of a Trainyard process.
NOT_SETTINGS = {"TRAINYARD_CHROMIUM"}  # the browser tests' Chromium path (tests/browser)


def _names_used():
    files = list(_python_files()) + sorted((REPO / "terraform").rglob("*.tf")) + [REPO / "Makefile"]
    files += sorted((REPO / "scripts").glob("*.sh")) + sorted((REPO / "gpu_image").glob("*"))
    used = {}
    for path in files:
        if path.is_file():
            for name in NAME.findall(path.read_text(errors="replace")):
                used.setdefault(name, set()).add(str(path.relative_to(REPO)))
    return used


def test_every_variable_the_repository_uses_is_declared():
    undeclared = {n: sorted(w) for n, w in _names_used().items() if n not in S.BY_NAME and n not in NOT_SETTINGS}
    assert undeclared == {}, f"declare these in shared/settings.py: {undeclared}"


def test_declarations_are_complete_and_unique():
    assert len(S.BY_NAME) == len(S.VARIABLES)
    for v in S.VARIABLES:
        assert v.meaning and v.readers, v.name
        assert set(v.readers) <= set(S.ROLES), v.name
        assert v.cloud in (S.TERRAFORM, S.OPTIONAL, S.LOCAL, S.VERTEX), v.name
        if v.cloud == S.TERRAFORM:
            assert set(v.readers) & set(S.DEPLOYABLES), f"{v.name}: Terraform sets it, but no deployable reads it"


def test_reading_an_undeclared_name_is_a_bug():
    with pytest.raises(KeyError, match="not declared"):
        S.read("TRAINYARD_NO_SUCH_THING", {})


def test_settings_from_an_empty_environment_are_the_local_twin():
    s = S.Settings.from_environ({})
    assert s.pipeline_backend == "local" and s.scheduler_backend == "local"
    assert s.project == "trainyard-local" and s.region == "europe-west4"
    assert s.dev_token == ""  # the API accepts no developer token unless the stack sets one
    assert s.artifacts_root.endswith("/artifacts") and s.local_registry_dir.endswith("/registry")
    assert s.dataflow_public_ips is False and s.dataflow_min_rows == 1_000_000


def test_settings_of_the_cloud():
    s = S.Settings.from_environ({"TRAINYARD_PIPELINE_BACKEND": "vertex", "TRAINYARD_REGION": "us-central1",
                                 "TRAINYARD_DATAFLOW_PUBLIC_IPS": "true", "TRAINYARD_DATAFLOW_MIN_ROWS": "5"})
    assert s.scheduler_backend == "cloud-scheduler" and s.scheduler_location == "us-central1"
    assert s.dataflow_public_ips is True and s.dataflow_min_rows == 5
    assert S.Settings.from_environ({"TRAINYARD_PIPELINE_ROOT_RETENTION_DAYS": "90"}).pipeline_root_retention_days == 90
    assert S.Settings.from_environ({}).pipeline_root_retention_days is None  # the local twin deletes nothing


@pytest.mark.parametrize("env, message", [
    ({"TRAINYARD_PIPELINE_BACKEND": "vertx"}, "TRAINYARD_PIPELINE_BACKEND must be vertex or local"),
    ({"TRAINYARD_DATAFLOW_PUBLIC_IPS": "maybe"}, "TRAINYARD_DATAFLOW_PUBLIC_IPS must be true or false"),
    ({"TRAINYARD_DEPLOY_WAIT_S": "soon"}, "TRAINYARD_DEPLOY_WAIT_S must be a number"),
    ({"TRAINYARD_PIPELINE_ROOT_RETENTION_DAYS": "ninety"}, "TRAINYARD_PIPELINE_ROOT_RETENTION_DAYS must be a number"),
    ({"TRAINYARD_PIPELINE_ROOT_RETENTION_DAYS": "0"}, "TRAINYARD_PIPELINE_ROOT_RETENTION_DAYS must be at least 1"),
])
def test_a_bad_value_names_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        S.Settings.from_environ(env)


def test_the_settings_document_is_the_declaration():
    """docs/settings.md holds `python -m shared.settings`'s table (regenerate it when this fails)."""
    text = (REPO / "docs" / "settings.md").read_text()
    assert S.markdown_table() in text, "run: python -m shared.settings, and paste the table into docs/settings.md"


# The typed settings are generated from the declarations: what an unset variable reads as, and the
# local stack's defaults, are the declared ones.
_RANDOM_WHEN_UNSET = {"TRAINYARD_CURSOR_KEY"}  # locally, each process draws its own key


@pytest.mark.parametrize("v", [v for v in S.VARIABLES if v.field and v.unset is None and v.name not in _RANDOM_WHEN_UNSET],
                         ids=lambda v: v.name)
def test_an_unset_variable_reads_as_its_documented_default(v):
    attribute, _, key = v.field.partition(".")
    unset, documented = (getattr(S.Settings.from_environ(env), attribute) for env in ({}, {v.name: v.default}))
    if key:  # one key of a dict attribute (firebase.*)
        unset, documented = unset[key], documented[key]
    assert unset == documented


def test_derived_defaults_follow_the_settings_they_derive_from(tmp_path):
    s = S.Settings.from_environ({"TRAINYARD_LOCAL_DIR": str(tmp_path), "GOOGLE_CLOUD_PROJECT": "p",
                                 "TRAINYARD_REGION": "us-east1", "TRAINYARD_PIPELINE_BACKEND": "vertex",
                                 "TRAINYARD_ALLOWED_DOMAIN": "example.com"})
    assert (s.artifacts_root, s.pipeline_root, s.local_registry_dir, s.local_endpoints_dir) == tuple(
        str(tmp_path / d) for d in ("artifacts", "pipeline-root", "registry", "endpoints"))
    assert s.model_name == "p" and s.firebase == {"projectId": "p", "apiKey": "", "authDomain": "p.firebaseapp.com",
                                                   "appId": ""}
    assert (s.scheduler_backend, s.scheduler_location, s.teams, s.cursor_key) == ("cloud-scheduler", "us-east1", (), b"")


def test_the_cursor_key_stays_out_of_the_settings_repr():
    key = "k" * 40
    assert key not in repr(S.Settings.from_environ({"TRAINYARD_CURSOR_KEY": key}))


def test_the_local_stack_starts_with_the_declared_defaults(monkeypatch):
    from scripts import stack

    for v in S.VARIABLES:
        if S.STACK in v.readers or v.name == "GOOGLE_CLOUD_PROJECT":
            monkeypatch.delenv(v.name, raising=False)
    config = stack.StackConfig.from_env()
    assert (config.project, config.dev_identity) == ("trainyard-local", "developer@localhost")
    assert (config.firestore_port, config.pubsub_port) == (8085, 8086)
    assert config.function_ports == {"api": 8080, "submitter": 8081, "pipeline_events": 8082, "training_progress": 8083,
                                     "scheduler": 8084, "run_commands": 8087, "reconciler": 8088,
                                     "pipeline_service": 8090, "prediction_server": 8089, "data_triggers": 8091}
    assert config.dev_token == S.LOCAL_DEV_TOKEN and config.local_dir == (S.REPO_ROOT / ".local").resolve()

"""terraform/iam_requirements.yaml (what each workload calls and the grant that allows it) and, per
predefined role, the permissions those rows rely on with the Google page that states them
(terraform/iam_roles.json), read in one place."""
from __future__ import annotations

import json
import re

import yaml

from tests.unit.terraform_support.hcl import TF_ROOT


def rows() -> list[dict]:
    return yaml.safe_load((TF_ROOT / "iam_requirements.yaml").read_text())["rows"]


def role_sources() -> dict:
    """terraform/iam_roles.json as written: _source and, per role, source, checked, permissions
    (read on a Google page, with evidence) and unconfirmed (permission -> why it could not be read)."""
    return json.loads((TF_ROOT / "iam_roles.json").read_text())


def vendored_roles() -> dict[str, set[str]]:
    """Predefined role -> the permissions the table relies on, confirmed or not (both count for the
    grant check; unconfirmed_role_permissions() says which are not confirmed on a Google page)."""
    roles = role_sources()["roles"]
    return {name: set(role["permissions"]) | set(role.get("unconfirmed", {})) for name, role in roles.items()}


def unconfirmed_role_permissions() -> dict[tuple[str, str], str]:
    """(role, permission) -> why no Google page read on the check date states that the role contains it."""
    roles = role_sources()["roles"]
    return {(name, perm): why for name, role in roles.items() for perm, why in role.get("unconfirmed", {}).items()}


def rpc_methods(table: list[dict]) -> set[str]:
    """The gRPC methods the table names, as "Service.Rpc": a row's method "ModelService.ListModels,
    ListModelVersions (note)" names ModelService.ListModels and ModelService.ListModelVersions."""
    out = set()
    for row in table:
        service = None
        for part in re.sub(r"\([^)]*\)", "", row["method"]).split(","):
            name = part.strip()
            m = re.fullmatch(r"([A-Z]\w*)\.([A-Z]\w*)", name)
            if m:
                service = m[1]
                out.add(name)
            elif service and re.fullmatch(r"[A-Z]\w*", name):
                out.add(f"{service}.{name}")
    return out


def served_method(path: str) -> str:
    """/google.cloud.aiplatform.v1.PipelineService/CreatePipelineJob -> PipelineService.CreatePipelineJob"""
    service, rpc = path.strip("/").split("/")
    return f"{service.rsplit('.', 1)[-1]}.{rpc}"

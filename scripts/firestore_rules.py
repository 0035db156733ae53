"""terraform/firestore.rules rendered as Terraform renders it (terraform/firestore.tf:
templatefile(..., {org_domain_regex = replace(lower(domain), ".", "[.]")})), for the Firestore
emulators the local stack and the tests start: the rules the cloud enforces, enforced locally too."""
from __future__ import annotations

from pathlib import Path

RULES = Path(__file__).resolve().parent.parent / "terraform" / "firestore.rules"


def render(org_domain: str) -> str:
    return RULES.read_text().replace("${org_domain_regex}", org_domain.lower().replace(".", "[.]"))


def write(org_domain: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(org_domain))
    return path

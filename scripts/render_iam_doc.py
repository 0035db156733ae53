"""Render docs/iam.md from terraform/iam_requirements.yaml (the table is the source; the page is
what people read). `python scripts/render_iam_doc.py` writes the page, `--stdout` prints it
(tests/unit/test_iam_requirements.py compares the two)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "terraform" / "iam_requirements.yaml"
ROLES = REPO / "terraform" / "iam_roles.json"
PAGE = REPO / "docs" / "iam.md"

INTRO = """# IAM: what each workload calls, and the grant that allows it

Generated from `terraform/iam_requirements.yaml` by `python scripts/render_iam_doc.py`; edit the
YAML, not this page. Each row is a Google API method that our code, or a library it drives (Beam's
BigQuery read, TFX's Vertex Trainer, the Vertex AI and Cloud client libraries), calls; the IAM
permission the method checks; the role Terraform grants for it, and where (`scope`); the Google page
that states it. For each predefined role, `terraform/iam_roles.json` lists the permissions these rows
rely on with the Google page that states them ({snapshot}; {reference}); custom roles are defined in
`terraform/iam.tf`. A reference marked *unconfirmed* could not be read on a Google page when checked;
`terraform/iam_roles.json` says the same of role contents.

`tests/unit/test_iam_requirements.py` fails when a row's permission is not in a role Terraform gives
that workload at that scope, and when a project role is granted that no row needs. What it cannot
see: calls missing from the table. Add a row with every new client call.

Scopes: `project`; `bucket:<artifacts|pipeline_root>`; `bucket:data` and `dataset:data` (your data:
every team's `buckets` and `datasets`, and `data_buckets` / `data_bigquery_datasets`, docs/deploy.md
"Let Trainyard read your data");
`dataset:created` (Beam's temporary dataset: BigQuery makes its creator OWNER); `topic:<name>`;
`subscription:dead_letter_holds`; `repository:images`; `service_account:<workload>` (act as it);
`secret:notify`.
"""


def render() -> str:
    rows = yaml.safe_load(TABLE.read_text())["rows"]
    source = json.loads(ROLES.read_text())["_source"]
    out = [INTRO.format(snapshot=source["snapshot"], reference=source["reference"])]
    for workload in dict.fromkeys(r["workload"] for r in rows):
        out += [f"\n## {workload}\n", "| API | method | permission | role | scope | caller | reference |",
                "|---|---|---|---|---|---|---|"]
        for r in (r for r in rows if r["workload"] == workload):
            scope = ", ".join(r["scope"]) if isinstance(r["scope"], list) else r["scope"]
            cite = r["cite"] + (f" (*unconfirmed*: {r['unconfirmed']})" if "unconfirmed" in r else "")
            cells = [r["api"], r["method"], f"`{r['permission']}`", f"`{r['role']}`", scope, r["caller"], cite]
            out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stdout", action="store_true", help="print the page instead of writing docs/iam.md")
    args = parser.parse_args()
    text = render()
    if args.stdout:
        print(text, end="")
    else:
        PAGE.write_text(text)


if __name__ == "__main__":
    main()

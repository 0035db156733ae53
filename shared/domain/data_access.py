"""Which data a team may train on (docs/security.md, "Data confined to each team").

A dataset's source names its data in one of three ways, each confined here:
- a BigQuery `table`, `project.dataset.table`: each part a valid name, and `project.dataset` one of the
  team's `datasets` (shared/domain/teams.py);
- a file `uri`: `gs://bucket/path` under one of the team's `buckets` (`gs://bucket/` or
  `gs://bucket/prefix/`), or a local path, only for a team that may use anything (`*`: the local demo);
- free SQL (`query`): the tables a query reads cannot be proved from its text, so only a platform admin
  (TRAINYARD_ADMINS) may write one, or a team that may read every dataset anyway (`*`).

Names that reach SQL are checked here and quoted by `quoted_table` / `quoted_column`, the one way
pipeline_compiler writes them: a name that is not valid never reaches a query, and a valid one is
backtick-quoted part by part.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Optional

from shared.domain import teams
from shared.errors import FieldError, Forbidden

# BigQuery's rules, narrowed where they allow what SQL would need escaping for:
# - project ids: 6-30 lower-case letters, digits and hyphens, starting with a letter, not ending with a
#   hyphen (cloud.google.com/resource-manager/docs/creating-managing-projects), optionally domain-scoped
#   (`example.com:project`, as Terraform's data_bigquery_datasets accepts);
# - dataset ids: letters, digits and underscores, at most 1,024 (DatasetReference.datasetId,
#   cloud.google.com/bigquery/docs/datasets#dataset-naming);
# - table names may hold any Unicode letter, mark, number, connector, dash or space, up to 1,024 bytes
#   (cloud.google.com/bigquery/docs/tables#table_naming); Trainyard accepts the ASCII letters, digits,
#   `_` and `-` of them (a table with other characters: give it a view with a plain name);
# - column names: letters, digits and underscores, starting with a letter or underscore, at most 300
#   characters (cloud.google.com/bigquery/docs/schemas#column_names; flexible names are not accepted).
PROJECT = r"(?:(?:[a-z0-9-]+\.)*[a-z0-9-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]"
DATASET = r"[A-Za-z0-9_]{1,1024}"
TABLE = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,1022}[A-Za-z0-9_])?"
TABLE_PATH = re.compile(rf"(?P<project>{PROJECT})\.(?P<dataset>{DATASET})\.(?P<table>{TABLE})")
COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,299}")
# Bucket names: 3-63 characters per dot-separated part, 222 in all; lower-case letters, digits, -, _ and .
# (cloud.google.com/storage/docs/buckets#naming), the form Terraform's data_buckets checks.
BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
GS = "gs://"


@dataclass(frozen=True)
class TableRef:
    project: str
    dataset: str
    table: str

    @property
    def dataset_path(self) -> str:
        return f"{self.project}.{self.dataset}"


def table_ref(value: str) -> TableRef:
    """`project.dataset.table`, each part valid; ValueError saying what is wrong otherwise."""
    match = TABLE_PATH.fullmatch(value or "")
    if not match:
        raise ValueError(f"{value!r} is not project.dataset.table: the project id is 6-30 lower-case letters, "
                         "digits or '-'; the dataset letters, digits or '_'; the table letters, digits, '_' "
                         "or '-' (no backticks, spaces, dots or SQL)")
    return TableRef(**match.groupdict())


def column(value: str) -> str:
    """A column name as SQL and TensorFlow see it: [A-Za-z_][A-Za-z0-9_]*; ValueError otherwise."""
    if not isinstance(value, str) or not COLUMN.fullmatch(value):
        raise ValueError(f"{value!r} is not a column name: letters, digits and '_', starting with a letter or '_'")
    return value


def quoted_table(value: str) -> str:
    """The table path as GoogleSQL reads it: each checked part in backticks (lexical structure, quoted
    identifiers: cloud.google.com/bigquery/docs/reference/standard-sql/lexical#quoted_identifiers)."""
    ref = table_ref(value)
    return f"`{ref.project}`.`{ref.dataset}`.`{ref.table}`"


def quoted_column(value: str) -> str:
    return f"`{column(value)}`"


def file_uri(value: str) -> str:
    """A file source's address, normalised: `gs://bucket/path` or a local path; no `..`, no other scheme."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("give a gs://bucket/path or, locally, a file path")
    value = value.strip()
    if any(ch in value for ch in "\\\x00\n\r\t") or any(ord(ch) < 32 for ch in value):
        raise ValueError(f"{value!r} holds a backslash or a control character")
    if "/../" in f"/{value}/" or value.endswith("/.."):
        raise ValueError(f"{value!r} climbs out of its folder with '..'")
    if value.startswith(GS):
        bucket, _, path = value[len(GS):].partition("/")
        if not BUCKET.fullmatch(bucket):
            raise ValueError(f"{value!r}: {bucket!r} is not a bucket name (lower-case letters, digits, '.', '_', '-')")
        # Collapse `//` and `./` so that a prefix check sees the path Cloud Storage will be asked for.
        path = posixpath.normpath(path).lstrip("/") if path.strip("/") else ""
        tail = "/" if value.endswith("/") and path else ""
        return f"{GS}{bucket}/{path}{tail}" if path else f"{GS}{bucket}/"
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", value):
        raise ValueError(f"{value!r}: only gs:// addresses (or, locally, file paths) are read")
    return posixpath.normpath(value) + ("/" if value.endswith("/") and value != "/" else "")


# --------------------------------------------------------------------------- the team's data


def may_write_sql(team: teams.Team, platform_admin: bool) -> bool:
    """Free SQL may read any table the pipeline can: only a platform admin writes it, or a team that may
    read every dataset anyway (the local demo)."""
    return platform_admin or teams.ANYTHING in team.datasets


def under_buckets(patterns, uri: str) -> bool:
    """Whether a normalised gs:// uri lies under one of the team's buckets: `*`, `prefix*` or exact as
    teams.allows reads them, and `gs://bucket/` or `gs://bucket/prefix/` as folders."""
    if teams.allows(patterns, uri):
        return True
    return any(p.endswith("/") and p.startswith(GS) and uri.startswith(p) for p in patterns)


def source_problem(source, team: teams.Team, platform_admin: bool) -> Optional[FieldError]:
    """Why `team` may not use this source, as a FieldError naming the field and what the team may use;
    None when it may. `platform_admin`: whether the dataset's author is one (free SQL)."""
    if getattr(source, "kind", None) == "bigquery":
        if not source.table:
            if may_write_sql(team, platform_admin):
                return None
            return FieldError.one("source.bigquery.query", "free SQL is written by platform admins only (TRAINYARD_ADMINS): "
                                                  f"name a table of {_listed(team.datasets)} instead")
        ref = table_ref(source.table)
        if teams.allows(team.datasets, ref.dataset_path):
            return None
        return FieldError.one("source.bigquery.table", f"the dataset {ref.dataset_path} is not one team {team.name!r} may "
                                              f"read (its datasets: {_listed(team.datasets)})")
    uri = file_uri(source.uri)
    if uri.startswith(GS) and under_buckets(team.buckets, uri):
        return None
    if not uri.startswith(GS) and teams.ANYTHING in team.buckets:
        return None
    what = "a local path is read only by the local stack" if not uri.startswith(GS) else \
        f"{uri} is not under a bucket team {team.name!r} may read"
    return FieldError.one("source.files.uri", f"{what} (its buckets: {_listed(team.buckets)})")


def require_source(source, team: teams.Team, who: teams.Caller) -> None:
    """A new dataset's source, by `who`: 403 for free SQL from anyone but a platform admin, 400 for data
    outside the team's datasets and buckets."""
    if getattr(source, "kind", None) == "bigquery" and source.query and not may_write_sql(team, who.platform_admin):
        raise Forbidden(f"{who.email} may not write free SQL: the tables a query reads cannot be checked against "
                        "the team's datasets, so only platform admins (TRAINYARD_ADMINS) may; name a table of "
                        f"{_listed(team.datasets)} instead", team=team.name, needed="platform admin",
                        role=who.role_on(team.name))
    problem = source_problem(source, team, who.platform_admin)
    if problem:
        raise problem


def run_data_problem(source, team_name: Optional[str], declared, author: Optional[str], admins) -> Optional[str]:
    """Why a run of team `team_name` may not read `source` (a message naming the data), or None. Checked
    when the run is created and again before it is compiled: a team's datasets may shrink since.
    `author`: who wrote the dataset (free SQL compiles only if a platform admin, one of `admins`, did)."""
    if team_name is None:
        return None  # no team: a platform admin's, in a deployment with none (teams.team_for_new)
    team = teams.by_name(declared, team_name)
    if team is None:
        return f"{data_named(source)}: the run's team {team_name!r} is no longer declared"
    problem = source_problem(source, team, (author or "").strip().lower() in admins)
    return None if problem is None else f"{data_named(source)}: {problem.errors[0]['message']}"


def data_named(source) -> str:
    """What a source reads, for messages: the table, the query's start, or the uri."""
    if getattr(source, "kind", None) == "bigquery":
        return source.table or f"the SQL query {source.query[:60]!r}"
    return source.uri


def _listed(values) -> str:
    return ", ".join(values) if values else "none declared"

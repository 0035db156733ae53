"""Small data stays off Dataflow: each Dataflow job costs minutes of worker start-up and money, which a
dataset of a few hundred thousand rows does not repay. A small run's data stages run their Beam
pipelines with DirectRunner inside their own Vertex task container instead.

Decided at compile time from, in this order: the dataset's `stats.rows` (scaled by the run's sample
percent) against TRAINYARD_DATAFLOW_MIN_ROWS; for a BigQuery table without stats, the table's row count;
for file sources without stats, the total size of the matched files against TRAINYARD_DATAFLOW_MIN_BYTES.
A BigQuery query without stats goes to Dataflow: the safe side for data we cannot measure.

Measuring is also the run's first read of the users' data. When it is refused or finds nothing (a
bucket or table Trainyard's accounts may not read: a team's `buckets` / `datasets` in Terraform's `teams`),
the run fails at Compile naming the data, the account and the fix, instead of going to Dataflow and
failing there obscurely. A transient failure of the read is raised as TransientError, so the run-submit
is redelivered (shared/consumer.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from shared.domain.catalog import BigQuerySource, FileSource
from shared.domain.run_config import RunSpec
from shared.errors import PermanentError, TransientError

# BigQuery answers an exceeded quota or rate limit with 403 too; the reason tells it from a refusal
# (cloud.google.com/bigquery/docs/troubleshoot-quotas). Both are retried: the run-submit's redelivery window.
_BIGQUERY_RETRY_REASONS = {"rateLimitExceeded", "quotaExceeded"}


@dataclass(frozen=True)
class Decision:
    runner: str  # "direct" | "dataflow"
    reason: str


class DataUnreadable(PermanentError):
    """The run's data cannot be read by Trainyard's accounts, or is not there: the run fails at Compile."""

    def __init__(self, message: str):
        super().__init__(message, stage="Compile")


def file_bytes(uri: str) -> int:
    """Total size of the files a FileSource uri names (a file, a directory or a glob; local or gs://)."""
    import tensorflow as tf

    from pipeline_compiler.pipeline import split_file_uri

    base, pattern = split_file_uri(uri)
    files = tf.io.gfile.glob(f"{base}/{pattern}")
    if not files:
        raise FileNotFoundError(f"no files match {uri}")
    return sum(tf.io.gfile.stat(path).length for path in files)


def bigquery_table_rows(table: str) -> Optional[int]:
    """Rows of a BigQuery table (tables.get: its metadata, no query); None for a view, which has no count."""
    from google.cloud import bigquery

    from shared.domain.data_access import table_ref

    return bigquery.Client(project=table_ref(table).project).get_table(table).num_rows


def failure_kind(exc: BaseException) -> Optional[str]:
    """"denied" (no permission), "missing" (nothing there), "transient" (worth retrying) or None (other)."""
    import tensorflow as tf
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    if isinstance(exc, api.Forbidden) and _BIGQUERY_RETRY_REASONS & {e.get("reason") for e in exc.errors or []
                                                                      if isinstance(e, dict)}:
        return "transient"
    if isinstance(exc, (PermissionError, tf.errors.PermissionDeniedError, tf.errors.UnauthenticatedError,
                        api.Forbidden, api.Unauthorized)):
        return "denied"
    if isinstance(exc, (FileNotFoundError, tf.errors.NotFoundError, api.NotFound)):
        return "missing"
    if isinstance(exc, (ConnectionError, TimeoutError, tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                        tf.errors.ResourceExhaustedError, tf.errors.AbortedError, api.ServiceUnavailable,
                        api.TooManyRequests, api.InternalServerError, api.GatewayTimeout, api.DeadlineExceeded,
                        auth.TransportError)):
        return "transient"
    return None


def _unreadable(source, kind: str, exc: BaseException, account: str) -> DataUnreadable:
    who = account or "the pipeline's service account"
    if isinstance(source, FileSource):
        what, bucket = source.uri, source.uri[5:].split("/")[0] if source.uri.startswith("gs://") else ""
        grant = (f"list gs://{bucket}/ in the team's buckets (the Terraform variable teams; it grants the pipeline "
                 f"and submitter accounts read access) and apply" if bucket else "use a gs:// URI the pipeline can read")
    else:
        what = source.table
        dataset = ".".join(what.split(".")[:-1])
        grant = (f"list the dataset {dataset!r} in the team's datasets (the Terraform variable teams; it grants "
                 f"the pipeline and submitter accounts read access) and apply")
    cause = f"{type(exc).__name__}: {exc}"
    if kind == "denied":
        return DataUnreadable(f"the run's data {what} cannot be read by {who} ({cause}). Fix: {grant}.")
    return DataUnreadable(f"the run's data {what} was not found ({cause}). Fix: check the dataset's source; "
                          f"if it exists, {grant} (a bucket {who} may not list looks empty).")


def _measure(source, probe: Callable, account: str):
    try:
        return probe(source.uri if isinstance(source, FileSource) else source.table)
    except Exception as exc:  # noqa: BLE001 - sorted below
        kind = failure_kind(exc)
        if kind in ("denied", "missing"):
            raise _unreadable(source, kind, exc, account) from exc
        if kind == "transient":
            raise TransientError(f"measuring the run's data failed transiently: {type(exc).__name__}: {exc}") from exc
        return exc  # an unknown failure: treated as large, with the reason logged


def decide(spec: RunSpec, min_rows: int, min_bytes: int,
           probe: Optional[Callable[[str], int]] = file_bytes,
           table_rows: Optional[Callable[[str], Optional[int]]] = bigquery_table_rows,
           account: str = "") -> Decision:
    """account: the pipeline's service account, named when the data cannot be read."""
    share = spec.training_params.data_sample_percent / 100.0
    rows, basis = spec.dataset.stats.rows, "stats"
    source = spec.dataset.source
    if rows is None and isinstance(source, BigQuerySource) and source.table and table_rows is not None:
        measured = _measure(source, table_rows, account)
        if isinstance(measured, BaseException):
            return Decision("dataflow", f"rows of {source.table} unknown ({type(measured).__name__}: {measured})")
        rows, basis = measured, "table"
    if rows is not None:
        effective = int(rows * share)
        if effective < min_rows:
            return Decision("direct", f"{effective} rows ({basis}) < {min_rows}")
        return Decision("dataflow", f"{effective} rows ({basis}) >= {min_rows}")
    if not isinstance(source, FileSource) or probe is None:
        return Decision("dataflow", "no row count in the dataset's stats")
    measured = _measure(source, probe, account)
    if isinstance(measured, BaseException):
        return Decision("dataflow", f"size of {source.uri} unknown ({type(measured).__name__}: {measured})")
    size = int(measured * share)
    if size < min_bytes:
        return Decision("direct", f"{size} bytes < {min_bytes}")
    return Decision("dataflow", f"{size} bytes >= {min_bytes}")

"""Which data stays off Dataflow (pipeline_compiler/data_scale.py)."""
import pytest
from google.api_core import exceptions as api

from pipeline_compiler import data_scale
from shared.errors import PermanentError, TransientError
from pipeline_compiler.demo_data import demo_run_spec


def _spec(tmp_path, rows=None, percent=100, source=None):
    spec = demo_run_spec(str(tmp_path / "data.csv"), str(tmp_path / "a"), str(tmp_path / "r"),
                         training_params={"data_sample_percent": percent})
    update = {"stats": {"rows": rows}}
    if source:
        update["source"] = source
    return spec.model_copy(update={"dataset": spec.dataset.model_validate({**spec.dataset.model_dump(), **update})})


def test_row_stats_decide_with_the_sample_percent(tmp_path):
    assert data_scale.decide(_spec(tmp_path, rows=500_000), 1_000_000, 1).runner == "direct"
    assert data_scale.decide(_spec(tmp_path, rows=5_000_000), 1_000_000, 1).runner == "dataflow"
    decision = data_scale.decide(_spec(tmp_path, rows=5_000_000, percent=10), 1_000_000, 1)
    assert decision.runner == "direct" and "500000 rows" in decision.reason


def test_files_without_stats_are_measured(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n" + "1,2\n" * 1000)
    small = data_scale.decide(_spec(tmp_path), 1, 1_000_000)
    assert small.runner == "direct" and "bytes" in small.reason
    assert data_scale.decide(_spec(tmp_path), 1, 100).runner == "dataflow"


def test_what_cannot_be_measured_goes_to_dataflow(tmp_path):
    def odd(uri):
        raise ValueError("a scheme this probe does not know")

    unknown = data_scale.decide(_spec(tmp_path), 1, 10**12, probe=odd)
    assert unknown.runner == "dataflow" and "unknown" in unknown.reason
    query = _spec(tmp_path, source={"kind": "bigquery", "query": "SELECT 1"})
    assert data_scale.decide(query, 1, 10**12).runner == "dataflow"
    view = _spec(tmp_path, source={"kind": "bigquery", "table": "my-project.d.v"})
    assert data_scale.decide(view, 1, 10**12, table_rows=lambda table: None).runner == "dataflow"


def test_a_bigquery_table_without_stats_is_counted(tmp_path):
    bigquery = _spec(tmp_path, source={"kind": "bigquery", "table": "my-project.d.t"}, percent=10)
    small = data_scale.decide(bigquery, 1_000, 1, table_rows={"my-project.d.t": 5_000}.get)
    assert small.runner == "direct" and small.reason == "500 rows (table) < 1000"
    assert data_scale.decide(bigquery, 100, 1, table_rows={"my-project.d.t": 5_000}.get).runner == "dataflow"


def _raises(exc):
    def probe(_):
        raise exc
    return probe


ACCOUNT = "pipelines@demo.iam.gserviceaccount.com"


def _gcs_denied():
    import tensorflow as tf

    return tf.errors.PermissionDeniedError(None, None, "HTTP response code 403: submitter@demo.iam.gserviceaccount.com "
                                           "does not have storage.objects.list access to the bucket team-data")


@pytest.mark.parametrize("source, error, words", [
    ({"kind": "files", "uri": "gs://team-data/events/*.csv"}, _gcs_denied,
     ["gs://team-data/events/*.csv", ACCOUNT, "PermissionDeniedError", "storage.objects.list",
      "gs://team-data/", "teams"]),
    ({"kind": "files", "uri": "gs://team-data/events/"}, lambda: FileNotFoundError("no files match gs://team-data/events/"),
     ["not found", "no files match", "team's buckets"]),
    ({"kind": "bigquery", "table": "analytics.shop.events"},
     lambda: api.Forbidden("Access Denied: Table analytics:shop.events: Permission bigquery.tables.get denied"),
     ["analytics.shop.events", ACCOUNT, "bigquery.tables.get", "'analytics.shop'", "teams"]),
    ({"kind": "bigquery", "table": "analytics.shop.events"}, lambda: api.NotFound("Not found: Table analytics:shop.events"),
     ["not found", "team's datasets"]),
])
def test_unreadable_data_fails_the_run_at_compile_with_its_root_cause(tmp_path, source, error, words):
    """Review N7: a 403 or a 404 on the users' data no longer sends the run to Dataflow as 'large'."""
    spec = _spec(tmp_path, source=source)
    with pytest.raises(data_scale.DataUnreadable) as caught:
        data_scale.decide(spec, 1, 10**12, probe=_raises(error()), table_rows=_raises(error()), account=ACCOUNT)
    assert caught.value.stage == "Compile" and isinstance(caught.value, PermanentError)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


@pytest.mark.parametrize("error", [
    lambda: api.ServiceUnavailable("backend"), lambda: api.TooManyRequests("slow down"),
    lambda: api.Forbidden("Exceeded rate limits", errors=[{"reason": "rateLimitExceeded"}]),
    lambda: ConnectionResetError("reset"), lambda: __import__("tensorflow").errors.UnavailableError(None, None, "503"),
])
def test_a_transient_failure_of_the_probe_is_retried(tmp_path, error):
    spec = _spec(tmp_path, source={"kind": "bigquery", "table": "my-project.d.t"})
    with pytest.raises(TransientError):
        data_scale.decide(spec, 1, 1, table_rows=_raises(error()))
    with pytest.raises(TransientError):
        data_scale.decide(_spec(tmp_path), 1, 1, probe=_raises(error()))

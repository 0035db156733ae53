"""`trainyard endpoints …` against the API app (tests/unit/test_cli_routes.py's fixture): what a person reads, the
JSON as the API sent it, and a share that is not MODEL=PERCENT refused before any call."""
from __future__ import annotations

import json

import pytest

from tests.unit.test_cli_routes import _endpoint_with_two_models, api, run_cli  # noqa: F401 - the fixture


def test_endpoints_get_list_traffic_and_undeploy_as_a_person_reads_them(api, tmp_path):  # noqa: F811
    shop = _endpoint_with_two_models(api["repo"], tmp_path)
    code, out = run_cli("endpoints", "get", shop)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("shop  shop  teams: ") and lines[1] == "local/endpoints/shop"
    (m2,) = [line for line in lines if line.startswith("m2")]
    assert m2.split()[:2] == ["m2", "100"]  # its share, then the run it came from
    code, out = run_cli("--json", "endpoints", "list")
    assert code == 0 and [e["id"] for e in json.loads(out)["endpoints"]] == ["shop"]
    code, out = run_cli("endpoints", "traffic", shop, "m1=40", "m2=60", "--reason", "A/B")
    assert code == 0 and out.strip() == "changing the traffic of endpoint shop"
    assert ("POST", "/api/endpoints/shop/traffic") in api["calls"]
    code, out = run_cli("endpoints", "undeploy", shop, "m2")
    assert code == 1  # m2 holds all the traffic (the change above is not carried out here): force needed


def test_a_share_that_is_not_model_equals_percent_is_refused_before_any_call(api, tmp_path, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as exit_:
        run_cli("endpoints", "traffic", "shop", "m1:40")
    assert exit_.value.code == 2 and "is not MODEL=PERCENT" in capsys.readouterr().err
    assert not api["calls"]

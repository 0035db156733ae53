"""GET /api/vocabulary's entries for the retraining loop's forms: the dashboard starts the champion gate and a
canary where the API would, offers as many GPU fallback shapes as it accepts, and orders roles as it does."""
from __future__ import annotations

from shared.contract.vocabulary import vocabulary
from shared.domain import run_config, teams
from shared.domain.canary import CanaryConfig


def test_the_loops_defaults_are_the_domains():
    v = vocabulary()
    gate = run_config.EvaluatorConfig()
    assert v["champion_gate"] == {"compare_to_champion": gate.compare_to_champion,
                                  "champion_tolerance": gate.champion_tolerance}
    # the canary fields a request may leave out, with what the API then uses; the required ones are not there
    assert v["canary"] == CanaryConfig(percent=10, watch_minutes=30).model_dump(exclude={"percent", "watch_minutes"})
    assert v["max_fallbacks"] == run_config.MAX_FALLBACKS
    assert v["roles"] == list(teams.ROLES)
    assert all(teams.RANK[a] < teams.RANK[b] for a, b in zip(v["roles"], v["roles"][1:]))

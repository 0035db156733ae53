"""The CLI's identity in the cloud: a token the API admits (shared/http/identity.py)."""
from __future__ import annotations

import subprocess

import pytest

from shared import settings
from trainyard_cli import client
from trainyard_cli.client import ApiError, identity_token

API = "https://europe-west4-p.cloudfunctions.net/trainyard-api"


@pytest.fixture
def cloud_url(monkeypatch):
    monkeypatch.setenv("TRAINYARD_API_URL", API + "/")
    monkeypatch.delenv("TRAINYARD_TOKEN", raising=False)


def gcloud(answers):
    calls = []

    def run(args, **_):
        calls.append(args)
        code, out, err = answers[len(calls) - 1]
        return subprocess.CompletedProcess(args, code, out, err)
    return run, calls


def test_a_service_account_mints_its_token_for_the_api_url(cloud_url):
    run, calls = gcloud([(0, "sa-token\n", "")])
    assert identity_token(run) == "sa-token"
    assert calls == [["gcloud", "auth", "print-identity-token", f"--audiences={API}"]]


def test_a_user_account_falls_back_to_gclouds_own_audience(cloud_url):
    refused = "ERROR: (gcloud.auth.print-identity-token) Invalid account type for `--audiences`. Requires valid service account."
    run, calls = gcloud([(1, "", refused), (0, "user-token\n", "")])
    assert identity_token(run) == "user-token"
    assert calls[1] == ["gcloud", "auth", "print-identity-token"]


def test_gcloud_failures_are_api_errors_with_gclouds_message(cloud_url):
    run, _ = gcloud([(1, "", "ERROR: You do not currently have an active account selected.")])
    with pytest.raises(ApiError, match="no.*active account|active account"):
        identity_token(run)

    def missing(*_, **__):
        raise FileNotFoundError("gcloud")
    with pytest.raises(ApiError, match="TRAINYARD_TOKEN"):
        identity_token(missing)


def test_the_token_setting_and_the_local_stack_need_no_gcloud(monkeypatch):
    monkeypatch.setenv("TRAINYARD_TOKEN", "given")
    assert identity_token(None) == "given"
    monkeypatch.delenv("TRAINYARD_TOKEN")
    monkeypatch.setenv("TRAINYARD_API_URL", "http://127.0.0.1:8080")
    assert identity_token(None) == (client.read("TRAINYARD_DEV_TOKEN") or settings.LOCAL_DEV_TOKEN)

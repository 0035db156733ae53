"""The dashboard routes of the API (shared/http/dashboard_routes.py): the page and its assets need no token,
the config tells the page how to reach Firestore, and the API itself still does."""
from __future__ import annotations

import pytest

from shared.http.app import Dependencies, create_app
from shared.settings import Settings

ENV = {"TRAINYARD_AUTH": "local", "TRAINYARD_DEV_TOKEN": "dev-token", "TRAINYARD_DEV_IDENTITY": "dev@localhost"}


@pytest.fixture()
def dist(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Training</title>")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log('hi')")
    ENV["TRAINYARD_DASHBOARD_DIR"] = str(tmp_path)
    yield tmp_path
    ENV.pop("TRAINYARD_DASHBOARD_DIR")


def client(**env):
    settings = Settings.from_environ({**ENV, **env})
    return create_app(Dependencies(repo=None, publisher=None, store=None, settings=settings)).test_client()


def test_the_page_and_its_assets_need_no_token(dist):
    c = client()
    page = c.get("/training")
    assert page.status_code == 200 and b"Training" in page.data
    assert page.headers["Cache-Control"] == "no-cache"
    asset = c.get("/training/assets/index-abc123.js")
    assert asset.status_code == 200 and asset.mimetype == "text/javascript"
    assert "immutable" in asset.headers["Cache-Control"]
    assert c.get("/").headers["Location"].endswith("/training")


def test_the_api_still_needs_a_token(dist):
    c = client()
    assert c.get("/api/training-runs").status_code == 401
    assert c.post("/training").status_code == 401  # only GET/HEAD of the page are open


def test_no_path_escapes_the_assets_folder(dist):
    (dist.parent / "secret.txt").write_text("no")
    assert client().get("/training/assets/../../secret.txt").status_code == 404


def test_local_config_hands_over_the_emulator_and_the_developer_token(dist):
    config = client(FIRESTORE_EMULATOR_HOST="127.0.0.1:8085").get("/training/config.json").get_json()
    assert config == {"projectId": "trainyard-local", "authMode": "local", "apiBase": "",
                      "firestoreEmulatorHost": "127.0.0.1:8085", "devToken": "dev-token",
                      "devIdentity": "dev@localhost", "modelName": "trainyard-local"}


def test_the_header_names_the_model_the_runs_belong_to(dist):
    named = client(TRAINYARD_MODEL_NAME="product-recommender").get("/training/config.json").get_json()
    assert named["modelName"] == "product-recommender"


def test_cloud_config_carries_the_firebase_web_config_and_no_token(dist):
    config = client(TRAINYARD_AUTH="google", GOOGLE_CLOUD_PROJECT="prod-proj", TRAINYARD_DEV_TOKEN="",
                    TRAINYARD_FIREBASE_API_KEY="AIza-public-key").get("/training/config.json").get_json()
    assert "devToken" not in config and config["firestoreEmulatorHost"] is None
    assert config["firebase"] == {"apiKey": "AIza-public-key", "authDomain": "prod-proj.firebaseapp.com",
                                  "projectId": "prod-proj", "appId": ""}
    assert config["authEmulatorHost"] is None


def test_with_the_auth_emulator_the_page_signs_in_there(dist):
    config = client(TRAINYARD_AUTH="firebase", TRAINYARD_ALLOWED_DOMAIN="example.com", TRAINYARD_DEV_TOKEN="",
                    FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:9099").get("/training/config.json").get_json()
    assert config["authMode"] == "firebase" and "devToken" not in config
    assert config["authEmulatorHost"] == "127.0.0.1:9099" and config["allowedDomain"] == "example.com"


def test_an_unbuilt_dashboard_says_how_to_build_it(tmp_path):
    response = client(TRAINYARD_DASHBOARD_DIR=str(tmp_path / "missing")).get("/training")
    assert response.status_code == 503 and b"make setup" in response.data

"""The cloud sign-in path in a real browser: the page served with TRAINYARD_AUTH=firebase (the public
entrance's mode), signing in with Google through the Firebase Auth emulator, reading Firestore under
terraform/firestore.rules (the stack's emulator loads them), and calling the API with the Firebase
ID token, which the API verifies (unsigned tokens only because the Auth emulator is configured).

sign in → the run list appears, live → a run created through the wizard → a forced token refresh →
the next API call succeeds; a token the API refuses is refreshed and the call retried once; signed
out, or signed in from another domain → no data. Teams (docs/security.md, "The dashboard's Firestore
listeners"): a member of one team sees its runs live and never another team's; a person on no team
is told so."""
from __future__ import annotations

import json
import os
import re
from dataclasses import replace

import pytest

expect = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need the Python Playwright client (make setup installs it)").expect

from tests.browser.auth_emulator import MISSING, AuthEmulator
from tests.browser.conftest import shot
from tests.browser.test_dashboard import card, run_id_by_name, walk_wizard
from tests.builders import run_body
from tests.integration.test_control_plane_flow import deliver
from tests.unit.scenario import job_timeline

pytestmark = [pytest.mark.integration, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

PROJECT = "demo-trainyard"  # a demo- project: firebase-tools never reaches for a real one
DOMAIN = "example.com"
# Two teams: ana and the test's robot train for recs; ads-bot trains for ads; nina is on none.
TEAMS = {"recs": {"members": {f"ana@{DOMAIN}": "trainer", f"robot@{DOMAIN}": "trainer"},
                  "model_names": ["*"], "endpoints": ["*"], "datasets": ["*"], "buckets": ["*"]},
         "ads": {"members": {f"ads-bot@{DOMAIN}": "trainer"},
                 "model_names": ["*"], "endpoints": ["*"], "datasets": ["*"], "buckets": ["*"]}}


@pytest.fixture(scope="module")
def cloud_stack(tmp_path_factory):
    from scripts.stack import Stack, StackConfig
    from tests.integration.conftest import LocalStack
    from tests.integration.scripted_pipeline_service import ScriptedPipelineService

    auth = AuthEmulator(PROJECT, tmp_path_factory.mktemp("auth-emulator")).start()
    pipeline = ScriptedPipelineService().start()
    config = StackConfig.ephemeral(tmp_path_factory.mktemp("cloud-stack"), project=PROJECT, services=(), extra_env={
        "TRAINYARD_LOCAL_PIPELINE_URL": pipeline.url,
        "TRAINYARD_COMPILER": "tests.integration.scripted_compiler:compile_run",
        "TRAINYARD_AUTH": "firebase", "TRAINYARD_ALLOWED_DOMAIN": DOMAIN,
        "FIREBASE_AUTH_EMULATOR_HOST": auth.host, "TRAINYARD_TEAMS": json.dumps(TEAMS),
    })
    local = Stack(config)
    saved = dict(os.environ)
    try:
        local.up()
        os.environ.update(config.emulator_env())
        stack = LocalStack(local, pipeline)
        # The test's own API client is a signed-in member too (the developer token is not honoured here).
        stack.session.headers["Authorization"] = f"Bearer {auth.google_user_token('robot@' + DOMAIN)}"
        stack.auth = auth
        # Another team's trainer, through the same API with his own token.
        stack.ads = LocalStack(local, pipeline)
        stack.ads.session.headers["Authorization"] = f"Bearer {auth.google_user_token('ads-bot@' + DOMAIN)}"
        yield stack
    finally:
        local.down()
        pipeline.stop()
        auth.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def cloud_catalog(cloud_stack):
    from tests.browser.conftest import seed_experiments

    return seed_experiments(cloud_stack)


@pytest.fixture()
def context(browser, cloud_stack, cloud_catalog):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def sign_in(page, email):
    """Google sign-in on the page's own Firebase Auth, against the Auth emulator. The popup window is
    not driven: it needs Google's gapi loader from apis.google.com, which this machine cannot reach
    (the emulator's widget would otherwise end in the same accounts:signInWithIdp call made here)."""
    page.evaluate("(email) => window.__trainyard.emulatorSignIn(email)", email)


def open_signed_out(context, cloud_stack):
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(cloud_stack.api + "/training#training")
    expect(page.locator("#signin-google")).to_be_visible()
    return page


def test_signed_out_sees_the_sign_in_and_no_data(context, cloud_stack, cloud_catalog):
    run = cloud_stack.post("/api/training-runs", run_body(cloud_catalog["best"]["id"], name="signed-out-probe"))
    assert run.status_code == 201, run.text
    page = open_signed_out(context, cloud_stack)
    shot(page, "cloud-signin-screen")
    assert page.locator(".training-run-card").count() == 0
    assert page.evaluate("window.__trainyard.ready") is not True  # no listener started
    config = cloud_stack.get("/training/config.json").json()
    assert config["authMode"] == "firebase" and "devToken" not in config
    assert config["authEmulatorHost"] == cloud_stack.auth.host


def test_sign_in_live_runs_wizard_and_refreshed_tokens(context, cloud_stack, cloud_catalog):
    page = open_signed_out(context, cloud_stack)
    sign_in(page, "ana@" + DOMAIN)
    expect(page.locator("#signin")).to_be_hidden()
    expect(page.locator("#identity")).to_have_text("ana@" + DOMAIN)
    page.wait_for_function("() => window.__trainyard.firstRunsRenderMs != null", timeout=30_000)  # a function: CSP
    # The run list arrives under the rules, and follows a new run live.
    live = cloud_stack.post("/api/training-runs", run_body(cloud_catalog["best"]["id"], name="appears-live")).json()
    expect(card(page, live["training_run"]["id"])).to_be_visible()
    shot(page, "cloud-signed-in")

    # A run through the wizard: the API accepted the page's Firebase ID token and names its creator.
    walk_wizard(page, "cloud-wizard-run")
    expect(page.locator("#wizard")).to_have_count(0)
    run_id = run_id_by_name(cloud_stack, "cloud-wizard-run")
    expect(card(page, run_id)).to_be_visible()
    assert cloud_stack.run(run_id)["created_by"] == "ana@" + DOMAIN

    # A forced refresh (what the SDK does by itself before the hour is up): a new token, and the
    # next API call made with it succeeds.
    sent = []
    page.on("request", lambda r: sent.append(r.headers.get("authorization")) if "/api/" in r.url else None)
    before = page.evaluate("window.__trainyard.session.token()")
    page.wait_for_timeout(1100)  # iat has a one-second resolution: the refreshed token differs
    after = page.evaluate("window.__trainyard.session.token(true)")
    assert after != before
    c = card(page, run_id)
    expect(c).to_have_attribute("data-status", "running", timeout=30_000)
    c.locator("[data-action=cancel]").click()  # the confirm dialog is accepted
    expect(c).to_have_attribute("data-status", re.compile("cancelling|cancelled"), timeout=5_000)
    assert f"Bearer {after}" in sent
    snapshot = job_timeline(f"{run_id}-a1")[2]
    deliver(cloud_stack, [replace(snapshot, state="PIPELINE_STATE_CANCELLED", end_time=snapshot.start_time)],
            f"{run_id}-a1")
    expect(c).to_have_attribute("data-status", "cancelled", timeout=10_000)

    # A token the API refuses (as an expired one would be): refreshed, and the call retried once.
    refused = []

    def refuse_once(route):
        if not refused:
            refused.append(route.request.headers.get("authorization"))
            return route.fulfill(status=401, content_type="application/json",
                                 body='{"success": false, "error": "unauthenticated", "message": "the token has expired"}')
        return route.continue_()
    page.route("**/api/training-runs/*/retry", refuse_once)
    sent.clear()
    page.wait_for_timeout(1100)
    c.locator("[data-action=retry]").click()
    page.locator("#retry-form [data-retry-submit]").click()  # the retry form, as the run last ran
    expect(c).to_have_attribute("data-status", re.compile("pending|submitting|running"), timeout=15_000)
    retried = [h for h in sent if h]
    assert len(refused) == 1 and len(retried) >= 2 and retried[-1] != refused[0]
    assert cloud_stack.run(run_id)["attempt"] == 2
    assert page.locator(".toast.error").count() == 0

    # Signed out: back to the sign-in screen, and the data is gone.
    page.locator("#signout").click()
    expect(page.locator("#signin-google")).to_be_visible()
    assert page.locator(".training-run-card").count() == 0


def test_another_domain_gets_nothing(context, cloud_stack):
    page = open_signed_out(context, cloud_stack)
    sign_in(page, "eve@other.org")
    expect(page.locator("#banner")).to_contain_text("eve@other.org is not an @example.com account")
    expect(page.locator("#live-indicator")).to_contain_text("not a member", timeout=15_000)
    assert page.locator(".training-run-card").count() == 0
    status = page.evaluate("""async () => (await fetch('/api/training-runs', {headers: {Authorization:
        `Bearer ${await window.__trainyard.session.token()}`}})).status""")
    assert status == 401
    shot(page, "cloud-other-domain")


@pytest.fixture(scope="module")
def ads_catalog(cloud_stack):
    from tests.browser.conftest import seed_experiments

    return seed_experiments(cloud_stack.ads)


def test_a_member_sees_her_teams_runs_live_and_never_another_teams(context, cloud_stack, cloud_catalog, ads_catalog):
    ours = cloud_stack.post("/api/training-runs", run_body(cloud_catalog["best"]["id"], name="recs-before")).json()
    theirs = cloud_stack.ads.post("/api/training-runs", run_body(ads_catalog["best"]["id"], name="ads-before")).json()
    assert ours["training_run"]["team"] == "recs" and theirs["training_run"]["team"] == "ads"
    page = open_signed_out(context, cloud_stack)
    sign_in(page, "ana@" + DOMAIN)
    page.wait_for_function("() => window.__trainyard.firstRunsRenderMs != null", timeout=30_000)  # a function: CSP
    assert page.evaluate("window.__trainyard.me.teams") == ["recs"]
    expect(card(page, ours["training_run"]["id"])).to_be_visible()
    # Live: a new run of her team appears; the other team's new run never does.
    later = cloud_stack.ads.post("/api/training-runs", run_body(ads_catalog["best"]["id"], name="ads-later")).json()
    mine = cloud_stack.post("/api/training-runs", run_body(cloud_catalog["best"]["id"], name="recs-later")).json()
    expect(card(page, mine["training_run"]["id"])).to_be_visible()
    for other in (theirs, later):
        assert card(page, other["training_run"]["id"]).count() == 0
    # The catalog too: the best experiments are her team's only.
    page.locator(".chapter-tab[data-chapter=experiments]").click()
    names = {e["id"] for e in page.evaluate("window.__trainyard.state.experiments")}
    assert {e["id"] for e in cloud_catalog["experiments"]} <= names
    assert not names & {e["id"] for e in ads_catalog["experiments"]}
    # Every listener stayed healthy: the page asked for nothing the rules refuse (a refused listener
    # shows its error there).
    assert page.locator("#live-indicator").inner_text().endswith("live")
    shot(page, "cloud-team-member")


def test_a_person_on_no_team_is_told_so(context, cloud_stack, cloud_catalog):
    page = open_signed_out(context, cloud_stack)
    sign_in(page, "nina@" + DOMAIN)
    expect(page.locator("#banner")).to_contain_text(f"nina@{DOMAIN} is not on any team")
    expect(page.locator('#chapter-training [data-empty="no-team"]')).to_contain_text("Ask an admin of your team")
    page.locator(".chapter-tab[data-chapter=experiments]").click()
    expect(page.locator('#chapter-experiments [data-empty="no-team"]')).to_be_visible()
    assert page.locator(".training-run-card").count() == 0
    assert page.evaluate("window.__trainyard.me.teams") == []
    shot(page, "cloud-no-team")

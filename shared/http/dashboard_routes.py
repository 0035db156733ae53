"""The Training dashboard, served by the API function from its own origin (docs/dashboard.md).

    GET /                      → redirect to /training
    GET /training              → the page (dashboard/dist/index.html, built by scripts/setup_dashboard.sh)
    GET /training/assets/...   → the bundled JS/CSS (immutable, content-hashed names)
    GET /training/config.json  → how the page reaches Firestore and identifies itself

These paths need no bearer token (a browser cannot send one for a page load); every /api call the
page makes sends one. Locally (TRAINYARD_AUTH=local) the config hands the page the stack's developer
token and the Firestore emulator's address; in the cloud it hands the Firebase web config, and the
page signs in with Google (Firebase Auth) and sends the Firebase ID token (shared/http/firebase_identity.py).

Registered by `register_dashboard_routes(app, deps)` in shared/http/app.create_app.
"""
from __future__ import annotations

import mimetypes
from pathlib import Path

from flask import Flask, Response, jsonify, make_response, redirect, request, send_from_directory

PREFIX = "/training"
_REPO = Path(__file__).resolve().parents[2]


def dashboard_dir(settings) -> Path:
    """dashboard/dist in the repository; beside shared/ when deployed (TRAINYARD_DASHBOARD_DIR overrides)."""
    if settings.dashboard_dir:
        return Path(settings.dashboard_dir)
    for candidate in (_REPO / "dashboard" / "dist", _REPO / "dashboard_dist"):
        if candidate.is_dir():
            return candidate
    return _REPO / "dashboard" / "dist"


def page_config(settings) -> dict:
    """What the page needs to read Firestore and call the API. Never a secret in the cloud."""
    emulator = settings.firestore_emulator_host
    config = {
        "projectId": settings.firebase.get("projectId") or settings.project,
        "authMode": settings.auth_mode,
        "apiBase": "",  # same origin
        "firestoreEmulatorHost": emulator or None,
        "modelName": settings.model_name or settings.project,  # the header's "Model: …"
    }
    if settings.auth_mode == "local":
        # The local stack's developer identity: the page sends the token to the API and presents the
        # same identity to the emulator's security rules as an (unsigned) mock user token.
        config["devToken"] = settings.dev_token
        config["devIdentity"] = getattr(settings, "dev_identity", "developer@localhost")
    else:
        firebase = settings.firebase
        config["firebase"] = {
            "apiKey": firebase.get("apiKey", ""),
            "authDomain": firebase.get("authDomain") or f"{settings.project}.firebaseapp.com",
            "projectId": config["projectId"],
            "appId": firebase.get("appId", ""),
        }
        # The page signs in there instead of Google when the stack runs the Firebase Auth emulator.
        config["authEmulatorHost"] = settings.firebase_auth_emulator_host or None
        config["allowedDomain"] = settings.allowed_domain
    return config


# What the page's Firebase SDK talks to in the cloud (read off dashboard/dist: Auth's REST hosts and
# Firestore's WebChannel host), and the loader of Auth's sign-in popup (gapi, apis.google.com), which
# frames https://<authDomain>/__/auth/iframe.
FIREBASE_HOSTS = ("https://identitytoolkit.googleapis.com", "https://securetoken.googleapis.com")
FIRESTORE_HOST = "https://firestore.googleapis.com"
POPUP_LOADER = "https://apis.google.com"
NONE = "'none'"


def page_policy(settings) -> str:
    """The page's Content-Security-Policy: its own scripts only (no inline script, no eval), and
    connections to this origin plus what its Firebase SDK needs here: the emulators locally, Google's
    hosts in the cloud. Inline style attributes stay allowed: the page renders markup that carries them."""
    config = page_config(settings)
    scripts, connect, frames = ["'self'"], ["'self'"], []
    emulator = config["firestoreEmulatorHost"]
    connect.append(f"http://{emulator}" if emulator else FIRESTORE_HOST)
    if settings.auth_mode != "local":
        auth_emulator = config["authEmulatorHost"]
        if auth_emulator:
            connect.append(f"http://{auth_emulator}")
            frames.append(f"http://{auth_emulator}")
        else:
            connect.extend(FIREBASE_HOSTS)
            scripts.append(POPUP_LOADER)
            frames.append(f"https://{config['firebase']['authDomain']}")
    return "; ".join([
        "default-src 'self'", f"script-src {' '.join(scripts)}", "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:", f"connect-src {' '.join(connect)}", f"frame-src {' '.join(frames or [NONE])}",
        f"object-src {NONE}", f"base-uri {NONE}", f"form-action {NONE}", f"frame-ancestors {NONE}"])


def register_dashboard_routes(app: Flask, deps) -> None:
    mimetypes.add_type("text/javascript", ".js")
    mimetypes.add_type("text/css", ".css")

    def index():
        root = dashboard_dir(deps.settings)
        if not (root / "index.html").is_file():
            return Response("The dashboard is not built: run `make setup` (scripts/setup_dashboard.sh builds "
                            "dashboard/dist).\n", status=503, mimetype="text/plain")
        response = send_from_directory(root, "index.html", max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response

    def asset(path: str):
        response = send_from_directory(dashboard_dir(deps.settings) / "assets", path, max_age=31536000)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response

    def config():
        response = jsonify(page_config(deps.settings))
        response.headers["Cache-Control"] = "no-store"
        return response

    def home():
        return redirect(PREFIX, code=302)

    app.add_url_rule("/", "dashboard_home", home)
    app.add_url_rule(PREFIX, "dashboard_index", index)
    app.add_url_rule(f"{PREFIX}/config.json", "dashboard_config", config)
    app.add_url_rule(f"{PREFIX}/assets/<path:path>", "dashboard_asset", asset)
    open_endpoints = {"dashboard_home", "dashboard_index", "dashboard_config", "dashboard_asset"}

    def serve_open_routes():
        # Runs before the API's identity check (inserted first): the page and its assets are public;
        # answering here ends the request, so `authenticate` never sees it.
        if request.method in ("GET", "HEAD") and request.endpoint in open_endpoints:
            response = make_response(app.view_functions[request.endpoint](**(request.view_args or {})))
            response.headers["Content-Security-Policy"] = page_policy(deps.settings)
            return response
        return None

    app.before_request_funcs.setdefault(None, []).insert(0, serve_open_routes)

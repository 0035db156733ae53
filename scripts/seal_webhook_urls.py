"""Seal the webhook URLs of runs and schedules stored before webhook URLs were secrets (security review M2):
each plain URL goes to the secret store (Secret Manager in the cloud) and the document keeps its reference
and host, so the documents the dashboard reads hold no URL. Run once after deploying, with credentials
that may read and write Firestore and create trainyard-webhook-* secrets, and the deployment's settings:

    GOOGLE_CLOUD_PROJECT=P TRAINYARD_PIPELINE_BACKEND=vertex python -m scripts.seal_webhook_urls

Repeatable: documents already sealed are left alone."""
from __future__ import annotations

import json

from shared.composition import root
from shared.services.notification_targets import seal_stored


def main() -> None:
    print(json.dumps(seal_stored(root.repo, root.notification_targets)))


if __name__ == "__main__":
    main()

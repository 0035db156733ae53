"""A run's or schedule's notification targets as they are accepted and stored (security review M1, M2).

`check` refuses, naming the field (HTTP 400): a webhook that is not https:// or names an internal host or
address (shared/domain/webhook_addresses.py), a signing secret used for a URL outside its prefixes, and
Trainyard's own or another project's Pub/Sub topic. `seal` then moves each webhook URL into the secret
store — one secret per target, named for its owner and position (`trainyard-webhook-<run or schedule
id>-<n>`), so storing the same target again writes nothing new — and keeps only the reference and the
host on the document. The sender checks the address again when it sends (shared/adapters/notify_targets.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from shared.domain import notifications, webhook_addresses
from shared.errors import FieldError
from shared.validation import parse
from shared.services import run_writes

URL_SECRET_PREFIX = "trainyard-webhook-"  # Terraform's IAM conditions name it (terraform/notifications.tf)


@dataclass(frozen=True)
class TargetPolicy:
    project: str
    local_receivers: bool = False  # TRAINYARD_NOTIFY_LOCAL_RECEIVERS (the local twin only)
    signing_secrets: dict = field(default_factory=dict)  # name -> URL prefixes (TRAINYARD_NOTIFY_SIGNING_SECRETS)

    @classmethod
    def of(cls, settings) -> "TargetPolicy":
        return cls(settings.project, settings.notify_local_receivers, dict(settings.notify_signing_secrets))


def url_secret_name(owner_id: str, index: int, part: str = "") -> str:
    return f"{URL_SECRET_PREFIX}{owner_id}-{part}{index}"


@dataclass
class NotificationTargets:
    """What the API and the schedules use to accept targets (built by shared/composition.py)."""

    policy: TargetPolicy
    store: object  # shared/adapters/secret_store.SecretStore

    def check(self, raw: Optional[dict], prefix: str = "notifications") -> None:
        if not raw:
            return
        config = parse(notifications.NotificationConfig, raw, prefix)
        errors = []
        for i, hook in enumerate(config.webhooks):
            problem = webhook_addresses.url_problem(hook.url, self.policy.local_receivers)
            if problem:
                errors.append({"field": f"{prefix}.webhooks.{i}.url", "message": problem})
            elif hook.secret:
                problem = notifications.signing_problem(hook.url, hook.secret, self.policy.signing_secrets)
                if problem:
                    errors.append({"field": f"{prefix}.webhooks.{i}.secret", "message": problem})
        if config.pubsub_topic:
            problem = notifications.topic_problem(config.pubsub_topic, self.policy.project)
            if problem:
                errors.append({"field": f"{prefix}.pubsub_topic", "message": problem})
        if errors:
            raise FieldError(errors)

    def seal(self, raw: Optional[dict], owner: tuple[str, str], part: str = "") -> Optional[dict]:
        """`owner`: ("run", run id) or ("schedule", schedule id), named in the secret and its labels.
        Webhooks already sealed stay as they are."""
        if not raw or not raw.get("webhooks"):
            return raw
        kind, owner_id = owner
        sealed = []
        for i, hook in enumerate(raw["webhooks"]):
            if "url" not in hook:
                sealed.append(hook)
                continue
            name = url_secret_name(owner_id, i, part)
            self.store.put(name, hook["url"], {"trainyard": "webhook-url", kind: owner_id.lower()})
            sealed.append({"url_ref": name, "host": webhook_addresses.host_of(hook["url"]),
                           "secret": hook.get("secret")})
        return {**raw, "webhooks": sealed}


def given(targets: Optional[NotificationTargets], *raws: Optional[dict]) -> Optional[NotificationTargets]:
    """The targets' service, which a request naming any target needs (every caller hands in the one the
    composition root built); None when nothing is named."""
    if not any(raw and (raw.get("webhooks") or raw.get("pubsub_topic")) for raw in raws):
        return None
    if targets is None:
        raise TypeError("notification targets (shared/composition.py notification_targets) were not given")
    return targets


def check(targets: Optional[NotificationTargets], *configs: tuple[Optional[dict], str]) -> None:
    """Check each (config, its field) and refuse with every problem at once."""
    errors = []
    for raw, prefix in configs:
        try:
            if given(targets, raw):
                targets.check(raw, prefix)
        except FieldError as exc:
            errors.extend(exc.errors)
    if errors:
        raise FieldError(errors)


def seal(targets: Optional[NotificationTargets], raw: Optional[dict], owner: tuple[str, str],
         part: str = "") -> Optional[dict]:
    """Seal a config already checked; a request with no targets passes as it is."""
    targets = given(targets, raw)
    return targets.seal(raw, owner, part) if targets else raw


# --------------------------------------------------------------------------- documents stored before sealing

def _plain(raw: Optional[dict]) -> bool:
    return bool(raw) and any("url" in hook for hook in raw.get("webhooks") or [])


def _seal_document(targets: NotificationTargets, doc: dict, kind: str) -> Optional[dict]:
    """The run or schedule with every plain webhook URL sealed (its own targets, and a schedule's runs'),
    or None when it holds none."""
    template = doc.get("run_template") or {}
    if not _plain(doc.get("notifications")) and not _plain(template.get("notifications")):
        return None
    owner = (kind, doc["id"])
    sealed = {**doc, "notifications": targets.seal(doc.get("notifications"), owner)}
    if _plain(template.get("notifications")):
        sealed["run_template"] = {**template, "notifications": targets.seal(template["notifications"], owner, "run-")}
    return sealed


def seal_stored(repo, targets: NotificationTargets, page: int = 200, max_schedules: int = 10_000) -> dict:
    """Seal the webhook URLs of runs and schedules stored before URLs were secrets (scripts/seal_webhook_urls.py):
    afterwards no document the dashboard reads holds one. Repeatable: sealed documents are left alone,
    and the secrets' names are those the same target would get now."""
    counts = {"runs": 0, "schedules": 0}
    after = None
    while True:
        batch = repo.list_runs({}, page, after)
        for run in batch:
            sealed = _seal_document(targets, run, "run")
            if sealed is not None and run_writes.write(
                    repo, run["id"], lambda d, s=sealed: {**d, "notifications": s["notifications"]}
                    if d.get("notifications") == run.get("notifications") else None) is not None:
                counts["runs"] += 1
        if len(batch) < page:
            break
        after = (batch[-1]["created_at"], batch[-1]["id"])
    for schedule in repo.list_schedules(None, max_schedules):
        sealed = _seal_document(targets, schedule, "schedule")
        if sealed is not None and repo.mutate_schedule(
                schedule["id"], lambda d, s=sealed: {**d, "notifications": s["notifications"],
                                                      "run_template": s["run_template"]}
                if d.get("notifications") == schedule.get("notifications")
                and d.get("run_template") == schedule.get("run_template") else None) is not None:
            counts["schedules"] += 1
    return counts

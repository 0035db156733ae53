"""Parse Terraform with python-hcl2 and check Trainyard's wiring. Every check takes parsed config
(so tests can feed it a deliberately broken snippet) and returns a list of problems (empty = ok)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import hcl2

REPO_ROOT = Path(__file__).resolve().parents[3]
TF_ROOT = REPO_ROOT / "terraform"

PRIMITIVE_ROLES = re.compile(r"roles/(owner|editor|viewer)\b")
SA_USER = "roles/iam.serviceAccountUser"
_META = {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def normalize(obj: Any) -> Any:
    """Strip python-hcl2's literal quotes and metadata keys; expressions stay as ${...} strings."""
    if isinstance(obj, dict):
        return {_unquote(k): normalize(v) for k, v in obj.items() if k not in _META}
    if isinstance(obj, list):
        return [normalize(v) for v in obj]
    if isinstance(obj, str):
        return _unquote(obj)
    return obj


def parse_text(text: str) -> dict:
    return normalize(hcl2.loads(text))


def merge(parts: Iterable[dict]) -> dict:
    conf: dict = {}
    for part in parts:
        for key, value in part.items():
            conf.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    return conf


def load_dir(path: Path) -> dict:
    """All *.tf files of one module directory, merged."""
    return merge(parse_text(f.read_text()) for f in sorted(path.glob("*.tf")))


def module_dirs() -> list[Path]:
    dirs = [TF_ROOT, *sorted(p for p in (TF_ROOT / "modules").iterdir() if p.is_dir())]
    dirs += sorted(p for p in (TF_ROOT / "examples").iterdir() if p.is_dir())
    return dirs


# ----------------------------------------------------------------------------- accessors


def resources(conf: dict) -> dict[tuple[str, str], dict]:
    out = {}
    for block in conf.get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                out[(rtype, name)] = body
    return out


def modules(conf: dict) -> dict[str, dict]:
    out = {}
    for block in conf.get("module", []):
        out.update(block)
    return out


def locals_(conf: dict) -> dict:
    out = {}
    for block in conf.get("locals", []):
        out.update(block)
    return out


def variables(conf: dict) -> dict[str, dict]:
    out = {}
    for block in conf.get("variable", []):
        out.update(block)
    return out


def first_block(body: dict, name: str) -> dict | None:
    value = body.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def dynamic_blocks(body: dict) -> dict[str, dict]:
    out = {}
    for block in body.get("dynamic", []) or []:
        for name, dyn in block.items():
            out[name] = first_block(dyn, "content") or {}
    return out


def strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, dict):
        for v in obj.values():
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)
    elif isinstance(obj, str):
        yield obj


def topic_key(expr: str | None) -> str | None:
    """module.topic["run-submit"].topic_id -> run-submit."""
    m = re.search(r'module\.topic\[\\?"([\w-]+)\\?"\]', expr or "")
    return m.group(1) if m else None


def sa_key(expr: str | None, kind: str = "sa") -> str | None:
    """google_service_account.sa["api"].email -> api."""
    m = re.search(rf'google_service_account\.{kind}\[\\?"([\w-]+)\\?"\]', expr or "")
    return m.group(1) if m else None


# ----------------------------------------------------------------------------- checks


def check_no_primitive_roles(confs: dict[str, dict]) -> list[str]:
    problems = []
    for where, conf in confs.items():
        for s in strings(conf):
            if PRIMITIVE_ROLES.search(s):
                problems.append(f"{where}: primitive role in {s!r}")
    return problems


def check_service_account_user(confs: dict[str, dict], expected_act_as: dict[str, list[str]]) -> list[str]:
    """serviceAccountUser appears only in the act_as binding, which grants exactly the expected table."""
    problems = []
    for where, conf in confs.items():
        for (rtype, name), body in resources(conf).items():
            if any(SA_USER in s for s in strings(body)):
                if (rtype, name) != ("google_service_account_iam_member", "act_as"):
                    problems.append(f"{where}: {SA_USER} granted by {rtype}.{name}")
        for key, value in locals_(conf).items():
            if key != "act_as" and any(SA_USER in s for s in strings(value)):
                problems.append(f"{where}: {SA_USER} in local.{key}")
    root = confs.get("root", {})
    act_as = resources(root).get(("google_service_account_iam_member", "act_as"))
    if act_as is None:
        problems.append("root: google_service_account_iam_member.act_as missing")
        return problems
    if act_as.get("role") != SA_USER or "local.act_as_bindings" not in act_as.get("for_each", ""):
        problems.append("root: act_as must grant roles/iam.serviceAccountUser over local.act_as_bindings")
    table = {k: sorted(v) for k, v in locals_(root).get("act_as", {}).items()}
    want = {k: sorted(v) for k, v in expected_act_as.items()}
    if table != want:
        problems.append(f"root: local.act_as is {table}, expected {want}")
    return problems


def check_pubsub_wiring(root: dict, topics: Iterable[str], consumers: dict | None = None,
                        consumer_urls: dict | None = None) -> list[str]:
    """Every consumer pushes from a declared topic, dead-letters into that topic's dead-letter topic,
    with its own push identity, and every function/service but the API is a consumer. `consumers` and
    `consumer_urls`: the locals' evaluated values where the text is an expression (consumers.json)."""
    problems = []
    topics = set(topics)
    topic_module = modules(root).get("topic")
    if not topic_module or "pubsub_topic_with_dlq" not in topic_module.get("source", ""):
        problems.append('root: module "topic" (pubsub_topic_with_dlq) missing')
    declared = {_unquote(t) for t in re.findall(r'"[\w-]+"', str(locals_(root).get("topics", "")))}
    declared |= {t for t in locals_(root).get("topics", []) if isinstance(t, str)}
    if declared != topics:
        problems.append(f"root: local.topics {sorted(declared)} != {sorted(topics)}")
    consumers = locals_(root).get("consumers", {}) if consumers is None else consumers
    urls_text = locals_(root).get("consumer_urls", {})
    urls = urls_text if consumer_urls is None else consumer_urls
    if not consumers:
        problems.append("root: local.consumers (consumer => topic) missing")
    for name, consumer in consumers.items():
        if consumer.get("topic") not in declared:
            problems.append(f"consumer {name}: topic {consumer.get('topic')!r} is not a declared topic")
        if not isinstance(consumer.get("ack_deadline_seconds"), int):
            problems.append(f"consumer {name}: no ack_deadline_seconds")
    if set(urls) != set(consumers):
        problems.append(f"root: local.consumer_urls {sorted(urls)} != consumers {sorted(consumers)}")
    push = modules(root).get("push")
    if push is None or "push_subscription" not in push.get("source", ""):
        problems.append('root: module "push" (push_subscription) missing')
        return problems
    want = {
        "for_each": "local.consumers",
        "topic_name": 'module.topic[each.value.topic].topic_name',
        "dead_letter_topic_name": 'module.topic[each.value.topic].dead_letter_topic_name',
        "push_service_account_email": "google_service_account.push[each.key].email",
        "endpoint_url": "local.consumer_urls[each.key]",
        "ack_deadline_seconds": "each.value.ack_deadline_seconds",
    }
    for arg, expr in want.items():
        if expr not in str(push.get(arg, "")):
            problems.append(f"module.push: {arg} is {push.get(arg)!r}, expected {expr}")
    for arg in ("max_delivery_attempts", "minimum_backoff", "maximum_backoff", "pubsub_service_agent_email"):
        if arg not in push:
            problems.append(f"module.push: {arg} not set (retry/dead-letter policy)")
    consumer_modules = set(re.findall(r"module\.(\w+)", str(urls_text)))
    for name, body in modules(root).items():
        if any(k in body.get("source", "") for k in ("light_function", "run_consumer")) and name not in HTTP_MODULES \
                and name not in consumer_modules:
            problems.append(f"module.{name}: no push subscription delivers to it")
    return problems


def check_subscriptions_and_triggers(confs: dict[str, dict]) -> list[str]:
    """Terraform owns every subscription: a retry policy, a dead-letter policy (except the holding
    subscription of a dead-letter topic), an authenticated push and the agent's subscriber grant for
    dead-lettering. No Eventarc trigger or function event_trigger, whose subscription Eventarc makes
    and Terraform cannot configure (10 s ack deadline, no dead-letter policy)."""
    problems = []
    for where, conf in confs.items():
        res = resources(conf)
        for (rtype, name), body in res.items():
            if rtype == "google_pubsub_subscription":
                if not first_block(body, "retry_policy"):
                    problems.append(f"{where}: subscription {name} has no retry_policy")
                on_dead_letter_topic = "google_pubsub_topic.dead_letter" in body.get("topic", "")
                if not first_block(body, "dead_letter_policy") and not on_dead_letter_topic:
                    problems.append(f"{where}: subscription {name} has no dead_letter_policy")
                push = first_block(body, "push_config")
                if push and not first_block(push, "oidc_token"):
                    problems.append(f"{where}: push subscription {name} has no oidc_token")
                if first_block(body, "dead_letter_policy") and not any(
                        t == "google_pubsub_subscription_iam_member" and f"google_pubsub_subscription.{name}." in
                        b.get("subscription", "") and b.get("role") == "roles/pubsub.subscriber"
                        and "pubsub_service_agent_email" in b.get("member", "") for (t, _), b in res.items()):
                    problems.append(f"{where}: subscription {name}: the Pub/Sub agent cannot dead-letter from it")
            elif rtype == "google_eventarc_trigger":
                problems.append(f"{where}: eventarc trigger {name}: its subscription is out of Terraform's reach")
            elif rtype == "google_cloudfunctions2_function":
                if first_block(body, "event_trigger") or dynamic_blocks(body).get("event_trigger") is not None:
                    problems.append(f"{where}: function {name} has an event_trigger (an Eventarc subscription)")
    return problems


def check_ack_deadlines(root: dict, consumers: dict | None = None) -> list[str]:
    """A push may take as long as the consumer's request timeout: the ack deadline covers it, so a
    slow but succeeding delivery is never redelivered (and dead-lettered) mid-flight. `consumers`: the
    evaluated local where its text is an expression (consumers.json)."""
    problems = []
    consumers = locals_(root).get("consumers", {}) if consumers is None else consumers
    mods = modules(root)
    for name, consumer in consumers.items():
        deadline = consumer.get("ack_deadline_seconds", 0)
        if not 10 <= deadline <= 600:
            problems.append(f"consumer {name}: ack deadline {deadline} outside Pub/Sub's 10-600 s")
        urls = locals_(root).get("consumer_urls", {})
        m = re.search(r"module\.(\w+)\.uri", str(urls.get(name, "")) if isinstance(urls, dict) else "")
        body = mods.get(m.group(1), {}) if m else {}
        timeout = body.get("timeout_seconds", body.get("timeout"))
        wanted = f'local.consumers["{name}"].ack_deadline_seconds'
        if m and wanted not in str(timeout).replace('\\"', '"'):
            problems.append(f"consumer {name}: the request timeout {timeout!r} is not its ack deadline")
    # A module deployed once per consumer (for_each over the table): its own row's deadline.
    for module, body in mods.items():
        deployed = any(k in body.get("source", "") for k in ("light_function", "run_consumer"))
        if deployed and "local.consumers" in str(body.get("for_each", "")):
            timeout = body.get("timeout_seconds", body.get("timeout"))
            if "each.value.ack_deadline_seconds" not in str(timeout):
                problems.append(f"module.{module}: the request timeout {timeout!r} is not its consumer's ack deadline")
    return problems


def check_dlq_module(conf: dict) -> list[str]:
    """pubsub_topic_with_dlq: the Pub/Sub service agent may publish to the dead-letter topic."""
    res = resources(conf)
    grants = [b for (t, _), b in res.items() if t == "google_pubsub_topic_iam_member"
              and "google_pubsub_topic.dead_letter" in b.get("topic", "")
              and b.get("role") == "roles/pubsub.publisher"
              and "pubsub_service_agent_email" in b.get("member", "")]
    problems = [] if grants else ["pubsub_topic_with_dlq: service agent cannot publish to the dead-letter topic"]
    dl = res.get(("google_pubsub_topic", "dead_letter"), {})
    if "-dead-letter" not in dl.get("name", ""):
        problems.append("pubsub_topic_with_dlq: dead-letter topic is not named <topic>-dead-letter")
    return problems


LOG_EVENTS = ("aiplatform.googleapis.com%2Fpipeline_job_events", "aiplatform.googleapis.com%2Fpipeline_job_task_events")


def check_sink(root: dict) -> list[str]:
    problems = []
    res = resources(root)
    sinks = {n: b for (t, n), b in res.items() if t == "google_logging_project_sink"}
    routed = [n for n, b in sinks.items() if topic_key(b.get("destination")) == "pipeline-events"]
    if not routed:
        return ["no logging sink routes to pipeline-events"]
    for name in routed:
        body = sinks[name]
        flt = body.get("filter", "").replace('\\"', '"')
        if 'resource.type="aiplatform.googleapis.com/PipelineJob"' not in flt:
            problems.append(f"sink {name}: filter does not select the PipelineJob resource")
        for log in LOG_EVENTS:
            if not re.search(rf'logName="projects/\$\{{var\.project_id\}}/logs/{re.escape(log)}"', flt):
                problems.append(f"sink {name}: filter misses {log}")
        if body.get("unique_writer_identity") is not True:
            problems.append(f"sink {name}: unique_writer_identity is not true")
        if not body.get("destination", "").startswith("pubsub.googleapis.com/"):
            problems.append(f"sink {name}: destination is not a Pub/Sub topic")
        ok = any(t == "google_pubsub_topic_iam_member" and b.get("role") == "roles/pubsub.publisher"
                 and topic_key(b.get("topic")) == "pipeline-events"
                 and f"google_logging_project_sink.{name}.writer_identity" in b.get("member", "")
                 for (t, _), b in res.items())
        if not ok:
            problems.append(f"sink {name}: writer identity cannot publish to pipeline-events")
    return problems


def check_variables(conf: dict, where: str) -> list[str]:
    problems = []
    for name, body in variables(conf).items():
        if not body.get("type"):
            problems.append(f"{where}: variable {name} has no type")
        if not str(body.get("description", "")).strip():
            problems.append(f"{where}: variable {name} has no description")
    return problems


def check_source_hash(conf: dict) -> list[str]:
    """Function source objects are named by the archive's content hash and used by the function."""
    problems = []
    res = resources(conf)
    objects = {n: b for (t, n), b in res.items() if t == "google_storage_bucket_object"}
    for name, body in objects.items():
        if not re.search(r"data\.archive_file\.\w+\.output_(sha256|md5|base64sha256|sha512)", body.get("name", "")):
            problems.append(f"source object {name}: name {body.get('name')!r} carries no content hash")
    for (t, n), body in res.items():
        if t != "google_cloudfunctions2_function":
            continue
        src = first_block(first_block(first_block(body, "build_config") or {}, "source") or {}, "storage_source") or {}
        if not any(f"google_storage_bucket_object.{o}.name" in src.get("object", "") for o in objects):
            problems.append(f"function {n}: not built from the content-hash object")
    return problems


def check_grants(root: dict, expected: dict[str, dict]) -> list[str]:
    """The IAM tables in terraform/iam.tf equal the expected table, and the IAM resources grant
    exactly those tables to the right service accounts."""
    problems = []
    loc = locals_(root)
    sas = loc.get("service_accounts", {})
    for sa in expected:
        if sa not in sas:
            problems.append(f"service account {sa} missing from local.service_accounts")
    for sa in sas:
        if sa not in expected:
            problems.append(f"service account {sa} has no expected grants (add it to the test table)")

    def table(name: str, shape) -> dict:
        return {k: shape(v) for k, v in loc.get(name, {}).items()}

    got = {
        "project": table("project_roles", lambda v: sorted(v)),
        "topics": table("topic_publishers", lambda v: sorted(v)),
        "buckets": table("bucket_roles", lambda v: {b: sorted(r) for b, r in v.items()}),
        "act_as": table("act_as", lambda v: sorted(v)),
    }
    readers = sorted(loc.get("repository_readers", []))
    for sa, want in expected.items():
        for kind in ("project", "topics", "act_as"):
            if sorted(want.get(kind, [])) != got[kind].get(sa, []):
                problems.append(f"{sa}: {kind} grants {got[kind].get(sa, [])}, expected {sorted(want.get(kind, []))}")
        want_buckets = {b: sorted(r) for b, r in want.get("buckets", {}).items()}
        if want_buckets != got["buckets"].get(sa, {}):
            problems.append(f"{sa}: bucket grants {got['buckets'].get(sa, {})}, expected {want_buckets}")
        if bool(want.get("repository_reader")) != (sa in readers):
            problems.append(f"{sa}: Artifact Registry reader is {sa in readers}, expected {bool(want.get('repository_reader'))}")
    for kind in ("project", "topics", "buckets", "act_as"):
        for sa in got[kind]:
            if sa not in expected:
                problems.append(f"{kind} grants to unknown account {sa}")

    res = resources(root)
    wiring = {
        ("google_project_iam_member", "sa_roles"): "local.project_role_bindings",
        ("google_pubsub_topic_iam_member", "publishers"): "local.topic_publisher_bindings",
        ("google_storage_bucket_iam_member", "sa_roles"): "local.bucket_role_bindings",
        ("google_artifact_registry_repository_iam_member", "readers"): "local.repository_readers",
        ("google_service_account_iam_member", "act_as"): "local.act_as_bindings",
    }
    for key, local_name in wiring.items():
        body = res.get(key)
        if body is None:
            problems.append(f"{key[0]}.{key[1]} missing")
            continue
        if local_name not in body.get("for_each", ""):
            problems.append(f"{key[0]}.{key[1]} does not iterate over {local_name}")
        if "google_service_account.sa[each" not in body.get("member", ""):
            problems.append(f"{key[0]}.{key[1]} does not grant to the workload's service account")
    custom = res.get(("google_project_iam_custom_role", "artifacts_read_delete"), {})
    if sorted(custom.get("permissions", [])) != ["storage.objects.delete", "storage.objects.get", "storage.objects.list"]:
        problems.append("custom role artifacts_read_delete must be exactly objects get/list/delete")
    return problems


def check_workload_identities(root: dict, expected: dict[str, str]) -> list[str]:
    """Each function/service module runs as the expected service account, which exists."""
    problems = []
    sas = locals_(root).get("service_accounts", {})
    mods = modules(root)
    for module_name, sa in expected.items():
        body = mods.get(module_name)
        if body is None:
            problems.append(f"module.{module_name} missing")
            continue
        got = sa_key(body.get("service_account_email"))
        if got != sa:
            problems.append(f"module.{module_name} runs as {got!r}, expected {sa!r}")
        if got not in sas:
            problems.append(f"module.{module_name}: service account {got!r} is not declared")
    for name, body in mods.items():
        per_consumer = "local.consumers" in str(body.get("for_each", ""))  # checked on the plan, per instance
        if any(s in body.get("source", "") for s in ("light_function", "run_consumer")) and name not in expected \
                and not per_consumer:
            problems.append(f"module.{name} is not in the expected identity table")
    return problems


# The HTTP entrances (no push subscription feeds them): the IAM-protected API and the public web one.
HTTP_MODULES = ("fn_api", "fn_web")


def check_ingress(root: dict, light_function: dict, public_modules: set[str]) -> list[str]:
    """Only the HTTP API is reachable from outside (still IAM-authenticated); event functions are internal."""
    problems = []
    default = variables(light_function).get("ingress_settings", {}).get("default")
    if default != "ALLOW_INTERNAL_ONLY":
        problems.append(f"light_function: ingress_settings default is {default!r}")
    for name, body in modules(root).items():
        if "light_function" not in body.get("source", ""):
            continue
        ingress = body.get("ingress_settings", default)
        if name in public_modules:
            if "google_service_account.push" in str(body.get("invokers", "")):
                problems.append(f"module.{name}: the public HTTP function must not be a push consumer")
        elif ingress != "ALLOW_INTERNAL_ONLY":
            problems.append(f"module.{name}: ingress {ingress!r} for an event function")
    return problems


def check_indexes(root: dict, expected: list[tuple[str, list[tuple[str, str]]]]) -> list[str]:
    problems = []
    declared = [
        (v.get("collection"), [tuple(f) for f in v.get("fields", [])])
        for v in locals_(root).get("firestore_indexes", {}).values()
    ]
    for want in expected:
        if (want[0], list(want[1])) not in declared:
            problems.append(f"missing Firestore index {want}")
    body = resources(root).get(("google_firestore_index", "composite"), {})
    if "local.firestore_indexes" not in body.get("for_each", ""):
        problems.append("google_firestore_index.composite does not iterate over local.firestore_indexes")
    return problems

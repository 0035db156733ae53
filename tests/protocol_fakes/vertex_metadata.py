"""Vertex AI Experiments as the SDK reads them: a fake of MetadataService (google.cloud.aiplatform_v1)
holding an experiment (a `system.Experiment` context) and its runs (`system.ExperimentRun` contexts whose
metadata carries `_params`, `_metrics` and `_state`, as `aiplatform.start_run` / `log_params` /
`log_metrics` / `end_run` write them), served on tests/protocol_fakes/grpc_service.FakeServer.

`aiplatform.ExperimentRun.list` asks for the experiment (GetContext), its run contexts and legacy run
executions by filter (ListContexts, ListExecutions: schema_title="…" AND parent_contexts:"…" /
in_context("…")) and each run's TensorBoard run artifact (GetArtifact; none here). The SDK builds its
clients from `aiplatform.init(api_endpoint=…)` with TLS and Google credentials, never a plain channel, so
`serve_tls` adds a TLS port with a self-signed certificate for localhost: point the SDK's process at it
with GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (gRPC's own variable) and anonymous credentials.
"""
from __future__ import annotations

import datetime
import re
import threading
from pathlib import Path

import grpc
from google.cloud import aiplatform_v1

EXPERIMENT, RUN, LEGACY_RUN = "system.Experiment", "system.ExperimentRun", "system.Run"
_CLAUSE = re.compile(r'schema_title="(?P<schema>[^"]+)"|parent_contexts:"(?P<parent>[^"]+)"'
                     r'|in_context\("(?P<context>[^"]+)"\)')


def _matches(node, filter_text: str, members: dict) -> bool:
    """The filters the SDK writes (metadata/utils._make_filter_string), joined by AND."""
    for clause in filter(None, (part.strip() for part in filter_text.split(" AND "))):
        found = _CLAUSE.fullmatch(clause.strip("()"))
        if found is None:
            raise ValueError(f"filter clause this fake does not read: {clause!r}")
        if found["schema"] and node.schema_title != found["schema"]:
            return False
        if found["parent"] and found["parent"] not in node.parent_contexts:
            return False
        if found["context"] and node.name not in members.get(found["context"], set()):
            return False
    return True


class MetadataServiceFake:
    def __init__(self, project: str, location: str, page_size: int = 100):
        self.store = f"projects/{project}/locations/{location}/metadataStores/default"
        self.contexts: dict[str, aiplatform_v1.Context] = {}
        self.executions: dict[str, aiplatform_v1.Execution] = {}
        self.artifacts: dict[str, aiplatform_v1.Artifact] = {}
        self.members: dict[str, set] = {}  # context → the executions and artifacts in it
        self.page_size = page_size  # what a page holds when the request asks for no size
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ seeding, as the SDK writes runs

    def add_experiment(self, name: str) -> str:
        resource = f"{self.store}/contexts/{name}"
        self.contexts[resource] = aiplatform_v1.Context(
            name=resource, display_name=name, schema_title=EXPERIMENT, schema_version="0.0.1",
            metadata={"experiment_deleted": False}, create_time=_now(), update_time=_now())
        return resource

    def put_run(self, experiment: str, run: str, params: dict, metrics: dict, state: str = "COMPLETE") -> str:
        """Create or overwrite a run (a v2 run: a context under the experiment's, named experiment-run)."""
        parent = f"{self.store}/contexts/{experiment}"
        resource = f"{self.store}/contexts/{experiment}-{run}"
        with self.lock:
            self.contexts[resource] = aiplatform_v1.Context(
                name=resource, display_name=run, schema_title=RUN, schema_version="0.0.1",
                parent_contexts=[parent], metadata={"_params": params, "_metrics": metrics, "_state": state},
                create_time=_now(), update_time=_now())
        return resource

    # ------------------------------------------------------------------ the service

    def get_context(self, request, context):
        return self._get(self.contexts, request.name, context)

    def get_execution(self, request, context):
        return self._get(self.executions, request.name, context)

    def get_artifact(self, request, context):
        return self._get(self.artifacts, request.name, context)

    def list_contexts(self, request, context):
        nodes, token = self._page(self.contexts, request, context)
        return aiplatform_v1.ListContextsResponse(contexts=nodes, next_page_token=token)

    def list_executions(self, request, context):
        nodes, token = self._page(self.executions, request, context)
        return aiplatform_v1.ListExecutionsResponse(executions=nodes, next_page_token=token)

    def list_artifacts(self, request, context):
        nodes, token = self._page(self.artifacts, request, context)
        return aiplatform_v1.ListArtifactsResponse(artifacts=nodes, next_page_token=token)

    def _get(self, nodes: dict, name: str, context):
        with self.lock:
            node = nodes.get(name)
        if node is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{name} is not found")
        return node

    def _page(self, nodes: dict, request, context):
        if request.parent != self.store:
            context.abort(grpc.StatusCode.NOT_FOUND, f"metadata store {request.parent} is not found")
        try:
            with self.lock:
                found = sorted((n for n in nodes.values() if _matches(n, request.filter, self.members)),
                               key=lambda n: n.name)
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        start = int(request.page_token or 0)
        size = request.page_size or self.page_size
        end = start + size
        return found[start:end], str(end) if end < len(found) else ""


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def serve_tls(server, directory: Path) -> tuple[str, Path]:
    """Add a TLS port for localhost to a FakeServer (before start): (its address, the certificate that a
    client must trust, for GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path = directory / "fake-vertex-ca.pem"
    path.write_bytes(cert_pem)
    port = server.server.add_secure_port("localhost:0", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
    return f"localhost:{port}", path

"""In-process gRPC servers speaking Google's own wire protocol: each service's methods, paths and
message types are read from the official client library's gRPC transport (the same stubs the
production adapters call through), and every message is (de)serialized with the official proto-plus /
protobuf types. A fake only implements behaviour: `create_pipeline_job(request, context) -> PipelineJob`.

    server = FakeServer()
    server.add(PipelineServiceGrpcTransport, PipelineServiceFake())
    server.start()          # server.address -> "127.0.0.1:PORT" for TRAINYARD_VERTEX_EMULATOR_HOST

Unimplemented methods answer UNIMPLEMENTED, as a real server would for an unknown method.
"""
from __future__ import annotations

import re
import threading
from concurrent import futures
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import grpc


@dataclass(frozen=True)
class Method:
    name: str  # snake_case, as the client names it
    path: str  # /package.Service/Method
    request_type: Any
    response_type: Any


class _RecordingChannel:
    def __init__(self):
        self.calls: dict[str, tuple] = {}

    def unary_unary(self, path, request_serializer=None, response_deserializer=None, **_):
        self.calls[path] = (request_serializer, response_deserializer)
        return lambda *a, **k: None

    unary_stream = stream_unary = stream_stream = unary_unary


# The mixin services a GAPIC client may serve under its own service's path (protobuf types, not proto-plus).
_MIXINS = ("google.iam.v1.IAMPolicy", "google.cloud.location.Locations", "google.longrunning.Operations")


def _message_class(function, path: str, side: str) -> Any:
    """The class whose (de)serializer the stub uses: a proto-plus type's classmethod names it; for a
    plain protobuf type (the long-running-operation mixins) the service is in protobuf's pool."""
    owner = getattr(function, "__self__", None)
    if isinstance(owner, type):
        return owner
    from google.protobuf import descriptor_pool, message_factory

    service, rpc = path.strip("/").split("/")
    pool = descriptor_pool.Default()
    try:
        method = pool.FindServiceByName(service).FindMethodByName(rpc)
    except KeyError:  # a mixin served under the service's own path (Secret Manager's GetIamPolicy, GetLocation)
        method = next(pool.FindServiceByName(mixin).FindMethodByName(rpc) for mixin in _MIXINS
                      if rpc in pool.FindServiceByName(mixin).methods_by_name)
    return message_factory.GetMessageClass(method.input_type if side == "request" else method.output_type)


def service_methods(transport_class) -> list[Method]:
    """Every unary method the official gRPC transport defines, with its request and response types."""
    methods = []
    for name, attr in vars(transport_class).items():
        if not isinstance(attr, property) or name.startswith("_"):
            continue
        channel = _RecordingChannel()
        fake_self = SimpleNamespace(_stubs={}, _logged_channel=channel, grpc_channel=channel, _grpc_channel=channel)
        try:
            attr.fget(fake_self)
        except Exception:  # noqa: BLE001 - not a stub property (kind, operations_client, ...)
            continue
        for path, (serializer, deserializer) in channel.calls.items():
            methods.append(Method(name, path, _message_class(serializer, path, "request"),
                                  _message_class(deserializer, path, "response")))
    return methods


def _serialize(message_type):
    return message_type.serialize if hasattr(message_type, "serialize") else message_type.SerializeToString


def _deserialize(message_type):
    return message_type.deserialize if hasattr(message_type, "deserialize") else message_type.FromString


def snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


class Operations:
    """google.longrunning.Operations, shared by every fake on one server: the long-running calls
    (UploadModel, DeployModel, ...) answer an Operation that clients poll with GetOperation."""

    def __init__(self):
        self.operations: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.counter = 0

    def start(self, parent: str, response=None, metadata=None, error: tuple | None = None, done: bool = True):
        """A new operation under `parent`; done with `response` (a proto-plus or protobuf message), or
        failed with error=(grpc.StatusCode, message)."""
        from google.longrunning import operations_pb2
        from google.protobuf import any_pb2
        from google.rpc import status_pb2

        def pack(message):
            packed = any_pb2.Any()
            packed.Pack(type(message).pb(message) if hasattr(type(message), "pb") else message)
            return packed

        with self.lock:
            self.counter += 1
            name = f"{parent}/operations/{self.counter}"
            op = operations_pb2.Operation(name=name, done=done)
            if metadata is not None:
                op.metadata.CopyFrom(pack(metadata))
            if done and error is not None:
                op.error.CopyFrom(status_pb2.Status(code=error[0].value[0], message=error[1]))
            elif done and response is not None:
                op.response.CopyFrom(pack(response))
            self.operations[name] = op
            return op

    def get_operation(self, request, context):
        with self.lock:
            op = self.operations.get(request.name)
        if op is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"operation {request.name} does not exist")
        return op

    def wait_operation(self, request, context):
        return self.get_operation(request, context)


class FakeServer:
    def __init__(self, workers: int = 8):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.calls: list[tuple[str, Any]] = []  # (method name, request): what the clients sent
        self.served: set[str] = set()  # the /package.Service/Method paths called (the IAM table covers them)
        self.operations = Operations()
        self._handlers: dict[str, dict] = {}  # service -> rpc -> handler
        self._faults: dict[str, list] = {}  # method name -> (status code, message) to answer next, in order

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, transport_class, implementation) -> "FakeServer":
        for method in service_methods(transport_class):
            service, rpc = method.path.strip("/").split("/")
            handler = getattr(implementation, method.name, None)
            if service == "google.longrunning.Operations":
                handler = getattr(self.operations, method.name, None)
            current = self._handlers.setdefault(service, {}).get(rpc)
            if current is not None and current[1] is not None:
                continue  # an implemented handler stays (the mixins repeat across transports)
            self._handlers[service][rpc] = (method, handler)
        return self

    def _wrap(self, method: Method, handler):
        def call(request, context):
            self.calls.append((method.name, request))
            self.served.add(method.path)
            faults = self._faults.get(method.name)
            if faults:
                code, message = faults.pop(0)
                context.abort(code, message)
            if handler is None:
                context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method.path} is not implemented by this fake")
            return handler(request, context)
        return call

    def start(self) -> "FakeServer":
        for service, rpcs in self._handlers.items():
            handlers = {rpc: grpc.unary_unary_rpc_method_handler(
                self._wrap(method, handler), request_deserializer=_deserialize(method.request_type),
                response_serializer=_serialize(method.response_type)) for rpc, (method, handler) in rpcs.items()}
            self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None)

    def fail(self, method: str, code: grpc.StatusCode, message: str = "injected", times: int = 1) -> None:
        """The next `times` calls of `method` (snake_case) answer `code`, as an outage or a quota would."""
        self._faults.setdefault(method, []).extend([(code, message)] * times)

    def requests(self, method: str) -> list:
        return [r for name, r in self.calls if name == method]

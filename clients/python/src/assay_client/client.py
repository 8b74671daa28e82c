"""`AssayClient`: the catalogue, runs and their event streams over the generated stubs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable, Generic, TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format, message, struct_pb2

from assay.v1 import (
    behavior_pb2,
    behavior_pb2_grpc,
    endpoint_pb2,
    endpoint_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    metric_pb2,
    metric_pb2_grpc,
    test_set_pb2,
    test_set_pb2_grpc,
)

from .errors import AssayError

R = TypeVar("R", bound=message.Message)
T = TypeVar("T")

_MODES = {
    "parallel": execution_pb2.EXECUTION_MODE_PARALLEL,
    "sequential": execution_pb2.EXECUTION_MODE_SEQUENTIAL,
}


def _parse(resource: R | Mapping[str, Any], kind: type[R]) -> R:
    """A message as given, or made from a dict in the proto JSON form."""
    if isinstance(resource, kind):
        return resource
    return json_format.ParseDict(dict(resource), kind())  # type: ignore[arg-type]


def _call(rpc: Callable[..., T], request: message.Message, metadata: tuple[tuple[str, str], ...]) -> T:
    try:
        return rpc(request, metadata=metadata)
    except grpc.RpcError as error:
        raise AssayError.from_rpc_error(error) from None


class Collection(Generic[R]):
    """One kind of catalogue resource (metrics, behaviours, endpoints, test sets): create, get,
    list, update and delete. A reference is the resource's id or its unique name."""

    def __init__(self, client: AssayClient, stub: Any, module: Any, kind: str, field: str):
        self._client = client
        self._stub = stub
        self._module = module
        self._kind = kind  # e.g. "TestSet": names the RPCs and messages
        self._field = field  # e.g. "test_set": names the request fields
        self._type: type[R] = getattr(module, kind)

    def _rpc(self, verb: str, plural: bool = False) -> tuple[Callable[..., Any], Any]:
        name = f"{verb}{self._kind}{'s' if plural else ''}"
        return getattr(self._stub, name), getattr(self._module, f"{name}Request")

    def create(self, resource: R | Mapping[str, Any]) -> R:
        """Creates the resource: a message, or a dict in the proto JSON form (as grpcurl and the
        CLI's YAML files write it, e.g. `{"name": "x", "contains": {"values": ["Paris"]}}`)."""
        rpc, request = self._rpc("Create")
        return self._client._unary(rpc, request(**{self._field: self._message(resource)}))

    def get(self, ref: str) -> R:
        """The resource with that id or name."""
        rpc, request = self._rpc("Get")
        return self._client._unary(rpc, request(**{self._field: ref}))

    def list(self, page_size: int = 0) -> Iterator[R]:
        """Every resource, reading page after page."""
        rpc, request = self._rpc("List", plural=True)
        token = ""
        while True:
            page = self._client._unary(rpc, request(page_size=page_size, page_token=token))
            yield from getattr(page, f"{self._field}s")
            token = page.next_page_token
            if not token:
                return

    def update(self, resource: R | Mapping[str, Any], paths: Iterable[str] = ()) -> R:
        """Changes the resource named by its `id` (or, without one, its `name`): the fields in
        `paths` (e.g. `["description"]`), or every field set in `resource` when none are given."""
        rpc, request = self._rpc("Update")
        req = request(**{self._field: self._message(resource)})
        req.update_mask.paths.extend(paths)
        return self._client._unary(rpc, req)

    def delete(self, ref: str) -> None:
        """Deletes the resource with that id or name."""
        rpc, request = self._rpc("Delete")
        self._client._unary(rpc, request(**{self._field: ref}))

    def _message(self, resource: R | Mapping[str, Any]) -> R:
        return _parse(resource, self._type)


class AssayClient:
    """A connection to an Assay server.

    `url` is `http://HOST:PORT` (plaintext), `https://HOST[:PORT]` (TLS) or `HOST:PORT`.
    `tls`: None follows the URL's scheme; True uses the system's root certificates; False is
    plaintext; `grpc.ChannelCredentials` for your own (e.g. `grpc.ssl_channel_credentials(ca)`).
    `api_key` is sent with every call as `authorization: Bearer <api_key>`; left out, it is read
    from `ASSAY_API_KEY` (as the `assay` command does), and `""` sends none.
    Every failed call raises `AssayError`.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        tls: bool | grpc.ChannelCredentials | None = None,
        options: Iterable[tuple[str, Any]] = (),
    ):
        target, secure = _target(url)
        if tls is None:
            tls = secure
        if tls is False:
            self._channel = grpc.insecure_channel(target, options=list(options))
        else:
            credentials = grpc.ssl_channel_credentials() if tls is True else tls
            self._channel = grpc.secure_channel(target, credentials, options=list(options))
        if api_key is None:
            api_key = os.environ.get("ASSAY_API_KEY")
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._execution = execution_pb2_grpc.TestExecutionServiceStub(self._channel)
        self._test_sets = test_set_pb2_grpc.TestSetServiceStub(self._channel)
        #: Metrics: `client.metrics.create({...})`, `.get(ref)`, `.list()`, ...
        self.metrics: Collection[metric_pb2.Metric] = Collection(
            self, metric_pb2_grpc.MetricServiceStub(self._channel), metric_pb2, "Metric", "metric"
        )
        #: Behaviours.
        self.behaviors: Collection[behavior_pb2.Behavior] = Collection(
            self, behavior_pb2_grpc.BehaviorServiceStub(self._channel), behavior_pb2, "Behavior", "behavior"
        )
        #: Endpoints.
        self.endpoints: Collection[endpoint_pb2.Endpoint] = Collection(
            self, endpoint_pb2_grpc.EndpointServiceStub(self._channel), endpoint_pb2, "Endpoint", "endpoint"
        )
        #: Test sets (their tests: `add_tests`).
        self.test_sets: Collection[test_set_pb2.TestSet] = Collection(
            self, self._test_sets, test_set_pb2, "TestSet", "test_set"
        )

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> AssayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unary(self, rpc: Callable[..., T], request: message.Message) -> T:
        return _call(rpc, request, self._metadata)

    def add_tests(
        self, test_set: str, tests: Iterable[test_set_pb2.Test | Mapping[str, Any]]
    ) -> list[test_set_pb2.Test]:
        """Adds tests (messages or proto JSON dicts such as `{"prompt": ..., "expectedResponse":
        ...}`) to a test set; returns them as stored, with their ids."""
        request = test_set_pb2.AddTestsRequest(
            test_set=test_set,
            tests=[_parse(t, test_set_pb2.Test) for t in tests],
        )
        return list(self._unary(self._test_sets.AddTests, request).tests)

    def execute(self, test_set: str, endpoint: str, **fields: Any) -> Iterator[execution_pb2.ExecutionEvent]:
        """Runs a test set against an endpoint and yields the run's events as they arrive: the
        run (`run_started`), one `result` per test the moment it is scored, then the summary
        (`run_finished`). `fields` are `ExecuteRequest`'s other fields: `mode` ("parallel",
        "sequential" or the enum), `metrics`, `max_concurrency`, `parameters` (a dict).
        Stopping the iteration early stops following the run, not the run (see `cancel`)."""
        request = execution_pb2.ExecuteRequest(
            test_set=test_set, endpoint=endpoint, **_execute_fields(fields)
        )
        return self._stream(self._execution.Execute, request)

    def rescore(
        self, test_set: str, endpoint: str, run: str = "", metrics: Iterable[str] = ()
    ) -> Iterator[execution_pb2.ExecutionEvent]:
        """Scores the outputs of an earlier run again (the latest completed one of the pair
        unless `run` is given), never calling the endpoint; yields events like `execute`."""
        request = execution_pb2.RescoreRequest(
            test_set=test_set, endpoint=endpoint, run=run, metrics=list(metrics)
        )
        return self._stream(self._execution.Rescore, request)

    def watch(self, run: str) -> Iterator[execution_pb2.ExecutionEvent]:
        """Follows a run: its stored results first, then live ones, then its summary."""
        return self._stream(self._execution.WatchTestRun, execution_pb2.WatchTestRunRequest(run=run))

    def last_run(self, test_set: str, endpoint: str) -> execution_pb2.TestRunSummary | None:
        """The summary of the pair's latest completed run, or None when there is none."""
        response = self._unary(
            self._execution.LastRun, execution_pb2.LastRunRequest(test_set=test_set, endpoint=endpoint)
        )
        return response.run if response.HasField("run") else None

    def get_run(self, run: str) -> execution_pb2.TestRun:
        """The run with that id."""
        return self._unary(self._execution.GetTestRun, execution_pb2.GetTestRunRequest(run=run))

    def cancel(self, run: str) -> execution_pb2.TestRun:
        """Cancels a running run; returns it as it ended."""
        return self._unary(self._execution.CancelTestRun, execution_pb2.CancelTestRunRequest(run=run))

    def results(self, run: str) -> Iterator[execution_pb2.TestResult]:
        """Every stored result of a run, reading page after page."""
        token = ""
        while True:
            page = self._unary(
                self._execution.ListTestResults,
                execution_pb2.ListTestResultsRequest(run=run, page_token=token),
            )
            yield from page.results
            token = page.next_page_token
            if not token:
                return

    def _stream(self, rpc: Callable[..., Any], request: message.Message) -> Iterator[execution_pb2.ExecutionEvent]:
        # The call starts here, not at the first `next`: the run starts even before it is read.
        return _events(_call(rpc, request, self._metadata))


def _events(call: Any) -> Iterator[execution_pb2.ExecutionEvent]:
    """The events of a streaming call, its failure as `AssayError`."""
    try:
        yield from call
    except grpc.RpcError as error:
        raise AssayError.from_rpc_error(error) from None
    finally:
        call.cancel()  # a no-op once the stream ended; stops it when the caller stops early


def _target(url: str) -> tuple[str, bool]:
    """The gRPC target of a URL, and whether its scheme asks for TLS."""
    if "://" not in url:
        return url, False
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"url {url!r}: the scheme must be http or https")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    return f"{parts.hostname}:{port}", secure


def _execute_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """ExecuteRequest's fields with the conveniences: `mode` as a name, `parameters` as a dict."""
    fields = dict(fields)
    mode = fields.get("mode")
    if isinstance(mode, str):
        if mode.lower() not in _MODES:
            raise ValueError(f"mode {mode!r}: use 'parallel' or 'sequential'")
        fields["mode"] = _MODES[mode.lower()]
    parameters = fields.get("parameters")
    if isinstance(parameters, Mapping):
        struct = struct_pb2.Struct()
        struct.update(parameters)
        fields["parameters"] = struct
    return fields

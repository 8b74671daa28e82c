"""AssayClient against the real `assay` binary and a real HTTP application (conftest.py)."""

from __future__ import annotations

import threading
import uuid
from concurrent import futures

import grpc
import pytest
from google.rpc import error_details_pb2

from assay.v1 import execution_pb2, metric_pb2, metric_pb2_grpc
from assay_client import AssayClient, AssayError

FRANCE = "What is the capital of France?"
ITALY = "What is the capital of Italy?"


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def catalogue(client: AssayClient, app_url: str) -> tuple[str, str]:
    """A metric, an endpoint and a test set of two tests (France passes, Italy fails), made with
    the catalogue helpers; returns the test set's and the endpoint's names."""
    metric = client.metrics.create({"name": unique("exact"), "exactMatch": {}})
    endpoint = client.endpoints.create(
        {"name": unique("app"), "http": {"url": app_url, "responseMapping": {"output": "$.answer"}}}
    )
    test_set = client.test_sets.create({"name": unique("capitals"), "metrics": [metric.name]})
    client.add_tests(
        test_set.name,
        [{"prompt": FRANCE, "expectedResponse": "Paris"}, {"prompt": ITALY, "expectedResponse": "Rome"}],
    )
    return test_set.name, endpoint.name


def test_the_catalogue_helpers_create_get_and_list(client: AssayClient, app) -> None:
    test_set, endpoint = catalogue(client, app.url)
    assert client.test_sets.get(test_set).test_count == 2
    assert client.endpoints.get(endpoint).http.url == app.url
    assert test_set in [t.name for t in client.test_sets.list(page_size=1)]
    updated = client.test_sets.update({"name": test_set, "description": "two capitals"}, ["description"])
    assert updated.description == "two capitals"


def test_execute_yields_each_result_before_the_run_ends(client: AssayClient, app) -> None:
    test_set, endpoint = catalogue(client, app.url)
    app.gates[ITALY] = threading.Event()  # the second test's answer waits until it is opened
    events = client.execute(test_set, endpoint, mode="sequential")
    started = next(events)
    assert started.WhichOneof("event") == "run_started"
    first = next(events)
    assert first.WhichOneof("event") == "result"
    assert first.result.prompt == FRANCE
    assert first.result.status == execution_pb2.RESULT_STATUS_PASSED
    # The application still holds the second answer: the first result came while the run ran.
    assert client.get_run(started.run_started.id).status == execution_pb2.RUN_STATUS_RUNNING
    app.gates[ITALY].set()
    rest = list(events)
    assert [e.WhichOneof("event") for e in rest] == ["result", "run_finished"]
    assert rest[0].result.status == execution_pb2.RESULT_STATUS_FAILED
    summary = rest[1].run_finished
    assert (summary.total, summary.passed, summary.failed) == (2, 1, 1)


def test_watch_replays_a_finished_run(client: AssayClient, app) -> None:
    test_set, endpoint = catalogue(client, app.url)
    run = next(client.execute(test_set, endpoint)).run_started.id
    # Reading one event stopped following the run, not the run: watch sees it through.
    events = list(client.watch(run))
    assert [e.WhichOneof("event") for e in events].count("result") == 2
    assert events[-1].run_finished.run_id == run


def test_rescore_reads_stored_outputs_and_last_run_returns_it(client: AssayClient, app) -> None:
    test_set, endpoint = catalogue(client, app.url)
    assert client.last_run(test_set, endpoint) is None
    executed = list(client.execute(test_set, endpoint))[-1].run_finished
    calls = app.calls
    rescored = list(client.rescore(test_set, endpoint))
    assert rescored[0].run_started.kind == execution_pb2.RUN_KIND_RESCORE
    assert rescored[0].run_started.source_run_id == executed.run_id
    assert app.calls == calls, "rescore called the endpoint"
    summary = rescored[-1].run_finished
    assert (summary.total, summary.passed) == (2, 1)
    last = client.last_run(test_set, endpoint)
    assert last is not None and last.run_id == summary.run_id


def test_an_invalid_argument_raises_with_the_field_details(client: AssayClient) -> None:
    with pytest.raises(AssayError) as raised:
        client.metrics.create({"name": unique("bad"), "regex": {"pattern": "("}})
    error = raised.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "regex.pattern" in error.message
    assert "metric.regex.pattern" in error.field_violations, error.details


def test_an_unknown_reference_raises_not_found_with_the_resource(client: AssayClient) -> None:
    with pytest.raises(AssayError) as raised:
        list(client.rescore("no-such-set", "no-such-endpoint"))
    error = raised.value
    assert error.code == grpc.StatusCode.NOT_FOUND
    resource = error.detail(error_details_pb2.ResourceInfo)
    assert resource is not None and resource.resource_name == "no-such-set", error.details


def test_a_mode_other_than_parallel_or_sequential_is_refused() -> None:
    client = AssayClient("http://127.0.0.1:9")  # never called: the mode is checked first
    with pytest.raises(ValueError, match="'fast'"):
        client.execute("set", "endpoint", mode="fast")


class _RecordingMetrics(metric_pb2_grpc.MetricServiceServicer):
    def __init__(self) -> None:
        self.metadata: dict[str, str] = {}

    def GetMetric(self, request, context):
        self.metadata = dict(context.invocation_metadata())
        return metric_pb2.Metric(name=request.metric)


def test_the_api_key_is_sent_as_a_bearer_token() -> None:
    servicer = _RecordingMetrics()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    metric_pb2_grpc.add_MetricServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with AssayClient(f"http://127.0.0.1:{port}", api_key="sk-test-1") as client:
            assert client.metrics.get("m").name == "m"
    finally:
        server.stop(None)
    assert servicer.metadata.get("authorization") == "Bearer sk-test-1"


def test_the_api_key_is_read_from_assay_api_key_when_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servicer = _RecordingMetrics()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    metric_pb2_grpc.add_MetricServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("ASSAY_API_KEY", "sk-from-env")
    try:
        with AssayClient(f"http://127.0.0.1:{port}") as client:
            assert client.metrics.get("m").name == "m"
        assert servicer.metadata.get("authorization") == "Bearer sk-from-env"
        with AssayClient(f"http://127.0.0.1:{port}", api_key="") as client:
            client.metrics.get("m")
        assert "authorization" not in servicer.metadata
    finally:
        server.stop(None)


def test_a_server_with_a_key_serves_the_client_that_sends_it(keyed_server_url: str) -> None:
    from conftest import API_KEY

    with AssayClient(keyed_server_url, api_key=API_KEY) as client:
        assert list(client.metrics.list()) == []
    for key in (None, "not-the-key"):
        with AssayClient(keyed_server_url, api_key=key) as client:
            with pytest.raises(AssayError) as refused:
                list(client.metrics.list())
            assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED

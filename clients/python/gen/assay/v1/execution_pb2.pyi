import datetime

from assay.v1 import metric_pb2 as _metric_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_MODE_UNSPECIFIED: _ClassVar[ExecutionMode]
    EXECUTION_MODE_PARALLEL: _ClassVar[ExecutionMode]
    EXECUTION_MODE_SEQUENTIAL: _ClassVar[ExecutionMode]

class RunKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_KIND_UNSPECIFIED: _ClassVar[RunKind]
    RUN_KIND_EXECUTION: _ClassVar[RunKind]
    RUN_KIND_RESCORE: _ClassVar[RunKind]

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_COMPLETED: _ClassVar[RunStatus]
    RUN_STATUS_PARTIAL: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_CANCELLED: _ClassVar[RunStatus]
    RUN_STATUS_BUDGET_EXCEEDED: _ClassVar[RunStatus]

class ResultStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_STATUS_UNSPECIFIED: _ClassVar[ResultStatus]
    RESULT_STATUS_PASSED: _ClassVar[ResultStatus]
    RESULT_STATUS_FAILED: _ClassVar[ResultStatus]
    RESULT_STATUS_ERROR: _ClassVar[ResultStatus]

class TestChange(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEST_CHANGE_UNSPECIFIED: _ClassVar[TestChange]
    TEST_CHANGE_REGRESSED: _ClassVar[TestChange]
    TEST_CHANGE_FIXED: _ClassVar[TestChange]
    TEST_CHANGE_STILL_PASSING: _ClassVar[TestChange]
    TEST_CHANGE_STILL_FAILING: _ClassVar[TestChange]
    TEST_CHANGE_ADDED: _ClassVar[TestChange]
    TEST_CHANGE_REMOVED: _ClassVar[TestChange]
    TEST_CHANGE_ERROR: _ClassVar[TestChange]
EXECUTION_MODE_UNSPECIFIED: ExecutionMode
EXECUTION_MODE_PARALLEL: ExecutionMode
EXECUTION_MODE_SEQUENTIAL: ExecutionMode
RUN_KIND_UNSPECIFIED: RunKind
RUN_KIND_EXECUTION: RunKind
RUN_KIND_RESCORE: RunKind
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_COMPLETED: RunStatus
RUN_STATUS_PARTIAL: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_CANCELLED: RunStatus
RUN_STATUS_BUDGET_EXCEEDED: RunStatus
RESULT_STATUS_UNSPECIFIED: ResultStatus
RESULT_STATUS_PASSED: ResultStatus
RESULT_STATUS_FAILED: ResultStatus
RESULT_STATUS_ERROR: ResultStatus
TEST_CHANGE_UNSPECIFIED: TestChange
TEST_CHANGE_REGRESSED: TestChange
TEST_CHANGE_FIXED: TestChange
TEST_CHANGE_STILL_PASSING: TestChange
TEST_CHANGE_STILL_FAILING: TestChange
TEST_CHANGE_ADDED: TestChange
TEST_CHANGE_REMOVED: TestChange
TEST_CHANGE_ERROR: TestChange

class TestRun(_message.Message):
    __slots__ = ("id", "test_set_id", "endpoint_id", "kind", "mode", "status", "source_run_id", "total", "metrics", "max_concurrency", "parameters", "error", "summary", "created_at", "started_at", "finished_at", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TEST_SET_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    id: str
    test_set_id: str
    endpoint_id: str
    kind: RunKind
    mode: ExecutionMode
    status: RunStatus
    source_run_id: str
    total: int
    metrics: _containers.RepeatedScalarFieldContainer[str]
    max_concurrency: int
    parameters: _struct_pb2.Struct
    error: str
    summary: TestRunSummary
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., test_set_id: _Optional[str] = ..., endpoint_id: _Optional[str] = ..., kind: _Optional[_Union[RunKind, str]] = ..., mode: _Optional[_Union[ExecutionMode, str]] = ..., status: _Optional[_Union[RunStatus, str]] = ..., source_run_id: _Optional[str] = ..., total: _Optional[int] = ..., metrics: _Optional[_Iterable[str]] = ..., max_concurrency: _Optional[int] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ..., summary: _Optional[_Union[TestRunSummary, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TestResult(_message.Message):
    __slots__ = ("id", "run_id", "test_id", "status", "output", "context", "metadata", "latency_ms", "error", "metric_results", "prompt", "expected_response", "created_at", "attempts", "last_error", "usage", "cost_usd", "judge_usage", "judge_cost_usd", "trace_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METRIC_RESULTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    JUDGE_USAGE_FIELD_NUMBER: _ClassVar[int]
    JUDGE_COST_USD_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    run_id: str
    test_id: str
    status: ResultStatus
    output: str
    context: _containers.RepeatedScalarFieldContainer[str]
    metadata: _struct_pb2.Struct
    latency_ms: int
    error: str
    metric_results: _containers.RepeatedCompositeFieldContainer[MetricResult]
    prompt: str
    expected_response: str
    created_at: _timestamp_pb2.Timestamp
    attempts: int
    last_error: str
    usage: TokenUsage
    cost_usd: float
    judge_usage: TokenUsage
    judge_cost_usd: float
    trace_id: str
    def __init__(self, id: _Optional[str] = ..., run_id: _Optional[str] = ..., test_id: _Optional[str] = ..., status: _Optional[_Union[ResultStatus, str]] = ..., output: _Optional[str] = ..., context: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., latency_ms: _Optional[int] = ..., error: _Optional[str] = ..., metric_results: _Optional[_Iterable[_Union[MetricResult, _Mapping]]] = ..., prompt: _Optional[str] = ..., expected_response: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., judge_usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., judge_cost_usd: _Optional[float] = ..., trace_id: _Optional[str] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ...) -> None: ...

class MetricResult(_message.Message):
    __slots__ = ("metric_id", "metric_name", "score", "category", "passed", "reason", "error", "duration_ms")
    METRIC_ID_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    metric_id: str
    metric_name: str
    score: float
    category: str
    passed: bool
    reason: str
    error: str
    duration_ms: int
    def __init__(self, metric_id: _Optional[str] = ..., metric_name: _Optional[str] = ..., score: _Optional[float] = ..., category: _Optional[str] = ..., passed: _Optional[bool] = ..., reason: _Optional[str] = ..., error: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class MetricSummary(_message.Message):
    __slots__ = ("metric_id", "metric_name", "evaluated", "passed", "errored", "mean_score")
    METRIC_ID_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    ERRORED_FIELD_NUMBER: _ClassVar[int]
    MEAN_SCORE_FIELD_NUMBER: _ClassVar[int]
    metric_id: str
    metric_name: str
    evaluated: int
    passed: int
    errored: int
    mean_score: float
    def __init__(self, metric_id: _Optional[str] = ..., metric_name: _Optional[str] = ..., evaluated: _Optional[int] = ..., passed: _Optional[int] = ..., errored: _Optional[int] = ..., mean_score: _Optional[float] = ...) -> None: ...

class TestRunSummary(_message.Message):
    __slots__ = ("run_id", "status", "kind", "total", "passed", "failed", "errored", "pass_rate", "started_at", "finished_at", "duration_ms", "metrics", "test_set_id", "endpoint_id", "source_run_id", "usage", "cost_usd", "judge_usage", "judge_cost_usd", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERRORED_FIELD_NUMBER: _ClassVar[int]
    PASS_RATE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TEST_SET_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    JUDGE_USAGE_FIELD_NUMBER: _ClassVar[int]
    JUDGE_COST_USD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    status: RunStatus
    kind: RunKind
    total: int
    passed: int
    failed: int
    errored: int
    pass_rate: float
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    duration_ms: int
    metrics: _containers.RepeatedCompositeFieldContainer[MetricSummary]
    test_set_id: str
    endpoint_id: str
    source_run_id: str
    usage: TokenUsage
    cost_usd: float
    judge_usage: TokenUsage
    judge_cost_usd: float
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., kind: _Optional[_Union[RunKind, str]] = ..., total: _Optional[int] = ..., passed: _Optional[int] = ..., failed: _Optional[int] = ..., errored: _Optional[int] = ..., pass_rate: _Optional[float] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_ms: _Optional[int] = ..., metrics: _Optional[_Iterable[_Union[MetricSummary, _Mapping]]] = ..., test_set_id: _Optional[str] = ..., endpoint_id: _Optional[str] = ..., source_run_id: _Optional[str] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., cost_usd: _Optional[float] = ..., judge_usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., judge_cost_usd: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class ExecutionEvent(_message.Message):
    __slots__ = ("run_started", "result", "run_finished")
    RUN_STARTED_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RUN_FINISHED_FIELD_NUMBER: _ClassVar[int]
    run_started: TestRun
    result: TestResult
    run_finished: TestRunSummary
    def __init__(self, run_started: _Optional[_Union[TestRun, _Mapping]] = ..., result: _Optional[_Union[TestResult, _Mapping]] = ..., run_finished: _Optional[_Union[TestRunSummary, _Mapping]] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("test_set", "endpoint", "mode", "metrics", "max_concurrency", "parameters", "budget_usd", "labels", "filter", "shard")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    endpoint: str
    mode: ExecutionMode
    metrics: _containers.RepeatedScalarFieldContainer[str]
    max_concurrency: int
    parameters: _struct_pb2.Struct
    budget_usd: float
    labels: _containers.ScalarMap[str, str]
    filter: TestFilter
    shard: Shard
    def __init__(self, test_set: _Optional[str] = ..., endpoint: _Optional[str] = ..., mode: _Optional[_Union[ExecutionMode, str]] = ..., metrics: _Optional[_Iterable[str]] = ..., max_concurrency: _Optional[int] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., budget_usd: _Optional[float] = ..., labels: _Optional[_Mapping[str, str]] = ..., filter: _Optional[_Union[TestFilter, _Mapping]] = ..., shard: _Optional[_Union[Shard, _Mapping]] = ...) -> None: ...

class TestFilter(_message.Message):
    __slots__ = ("categories", "topics", "behaviors", "test_ids", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    BEHAVIORS_FIELD_NUMBER: _ClassVar[int]
    TEST_IDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedScalarFieldContainer[str]
    topics: _containers.RepeatedScalarFieldContainer[str]
    behaviors: _containers.RepeatedScalarFieldContainer[str]
    test_ids: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, categories: _Optional[_Iterable[str]] = ..., topics: _Optional[_Iterable[str]] = ..., behaviors: _Optional[_Iterable[str]] = ..., test_ids: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Shard(_message.Message):
    __slots__ = ("index", "count")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    index: int
    count: int
    def __init__(self, index: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class RescoreRequest(_message.Message):
    __slots__ = ("test_set", "endpoint", "run", "metrics", "mode", "max_concurrency", "filter")
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    endpoint: str
    run: str
    metrics: _containers.RepeatedScalarFieldContainer[str]
    mode: ExecutionMode
    max_concurrency: int
    filter: TestFilter
    def __init__(self, test_set: _Optional[str] = ..., endpoint: _Optional[str] = ..., run: _Optional[str] = ..., metrics: _Optional[_Iterable[str]] = ..., mode: _Optional[_Union[ExecutionMode, str]] = ..., max_concurrency: _Optional[int] = ..., filter: _Optional[_Union[TestFilter, _Mapping]] = ...) -> None: ...

class LastRunRequest(_message.Message):
    __slots__ = ("test_set", "endpoint", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    endpoint: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, test_set: _Optional[str] = ..., endpoint: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LastRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: TestRunSummary
    def __init__(self, run: _Optional[_Union[TestRunSummary, _Mapping]] = ...) -> None: ...

class ListTestSetMetricsRequest(_message.Message):
    __slots__ = ("test_set",)
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    def __init__(self, test_set: _Optional[str] = ...) -> None: ...

class ListTestSetMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[_metric_pb2.Metric]
    def __init__(self, metrics: _Optional[_Iterable[_Union[_metric_pb2.Metric, _Mapping]]] = ...) -> None: ...

class AddTestSetMetricsRequest(_message.Message):
    __slots__ = ("test_set", "metrics")
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    metrics: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, test_set: _Optional[str] = ..., metrics: _Optional[_Iterable[str]] = ...) -> None: ...

class AddTestSetMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[_metric_pb2.Metric]
    def __init__(self, metrics: _Optional[_Iterable[_Union[_metric_pb2.Metric, _Mapping]]] = ...) -> None: ...

class RemoveTestSetMetricsRequest(_message.Message):
    __slots__ = ("test_set", "metrics")
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    metrics: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, test_set: _Optional[str] = ..., metrics: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveTestSetMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[_metric_pb2.Metric]
    def __init__(self, metrics: _Optional[_Iterable[_Union[_metric_pb2.Metric, _Mapping]]] = ...) -> None: ...

class GetTestRunRequest(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: str
    def __init__(self, run: _Optional[str] = ...) -> None: ...

class ListTestRunsRequest(_message.Message):
    __slots__ = ("test_set", "endpoint", "page_size", "page_token", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    endpoint: str
    page_size: int
    page_token: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, test_set: _Optional[str] = ..., endpoint: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListTestRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[TestRun]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[TestRun, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListTestResultsRequest(_message.Message):
    __slots__ = ("run", "page_size", "page_token")
    RUN_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    run: str
    page_size: int
    page_token: str
    def __init__(self, run: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTestResultsResponse(_message.Message):
    __slots__ = ("results", "next_page_token")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TestResult]
    next_page_token: str
    def __init__(self, results: _Optional[_Iterable[_Union[TestResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchTestRunRequest(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: str
    def __init__(self, run: _Optional[str] = ...) -> None: ...

class CancelTestRunRequest(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: str
    def __init__(self, run: _Optional[str] = ...) -> None: ...

class RetryErrorsRequest(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: str
    def __init__(self, run: _Optional[str] = ...) -> None: ...

class CompareRunsRequest(_message.Message):
    __slots__ = ("head_run", "base_run", "base_labels")
    class BaseLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HEAD_RUN_FIELD_NUMBER: _ClassVar[int]
    BASE_RUN_FIELD_NUMBER: _ClassVar[int]
    BASE_LABELS_FIELD_NUMBER: _ClassVar[int]
    head_run: str
    base_run: str
    base_labels: _containers.ScalarMap[str, str]
    def __init__(self, head_run: _Optional[str] = ..., base_run: _Optional[str] = ..., base_labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CompareRunsResponse(_message.Message):
    __slots__ = ("summary", "tests")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    summary: ComparisonSummary
    tests: _containers.RepeatedCompositeFieldContainer[TestComparison]
    def __init__(self, summary: _Optional[_Union[ComparisonSummary, _Mapping]] = ..., tests: _Optional[_Iterable[_Union[TestComparison, _Mapping]]] = ...) -> None: ...

class ComparisonSummary(_message.Message):
    __slots__ = ("head_run_id", "base_run_id", "regressed", "fixed", "still_passing", "still_failing", "added", "removed", "errored", "base_pass_rate", "head_pass_rate", "mcnemar_p_value", "paired")
    HEAD_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REGRESSED_FIELD_NUMBER: _ClassVar[int]
    FIXED_FIELD_NUMBER: _ClassVar[int]
    STILL_PASSING_FIELD_NUMBER: _ClassVar[int]
    STILL_FAILING_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    ERRORED_FIELD_NUMBER: _ClassVar[int]
    BASE_PASS_RATE_FIELD_NUMBER: _ClassVar[int]
    HEAD_PASS_RATE_FIELD_NUMBER: _ClassVar[int]
    MCNEMAR_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    PAIRED_FIELD_NUMBER: _ClassVar[int]
    head_run_id: str
    base_run_id: str
    regressed: int
    fixed: int
    still_passing: int
    still_failing: int
    added: int
    removed: int
    errored: int
    base_pass_rate: float
    head_pass_rate: float
    mcnemar_p_value: float
    paired: int
    def __init__(self, head_run_id: _Optional[str] = ..., base_run_id: _Optional[str] = ..., regressed: _Optional[int] = ..., fixed: _Optional[int] = ..., still_passing: _Optional[int] = ..., still_failing: _Optional[int] = ..., added: _Optional[int] = ..., removed: _Optional[int] = ..., errored: _Optional[int] = ..., base_pass_rate: _Optional[float] = ..., head_pass_rate: _Optional[float] = ..., mcnemar_p_value: _Optional[float] = ..., paired: _Optional[int] = ...) -> None: ...

class TestComparison(_message.Message):
    __slots__ = ("test_id", "prompt", "change", "base_status", "head_status", "base_pass_rate", "head_pass_rate", "metrics", "base_test_id")
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    BASE_STATUS_FIELD_NUMBER: _ClassVar[int]
    HEAD_STATUS_FIELD_NUMBER: _ClassVar[int]
    BASE_PASS_RATE_FIELD_NUMBER: _ClassVar[int]
    HEAD_PASS_RATE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    BASE_TEST_ID_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    prompt: str
    change: TestChange
    base_status: ResultStatus
    head_status: ResultStatus
    base_pass_rate: float
    head_pass_rate: float
    metrics: _containers.RepeatedCompositeFieldContainer[MetricChange]
    base_test_id: str
    def __init__(self, test_id: _Optional[str] = ..., prompt: _Optional[str] = ..., change: _Optional[_Union[TestChange, str]] = ..., base_status: _Optional[_Union[ResultStatus, str]] = ..., head_status: _Optional[_Union[ResultStatus, str]] = ..., base_pass_rate: _Optional[float] = ..., head_pass_rate: _Optional[float] = ..., metrics: _Optional[_Iterable[_Union[MetricChange, _Mapping]]] = ..., base_test_id: _Optional[str] = ...) -> None: ...

class MetricChange(_message.Message):
    __slots__ = ("metric_id", "metric_name", "base_score", "head_score", "score_delta", "base_passed", "head_passed")
    METRIC_ID_FIELD_NUMBER: _ClassVar[int]
    METRIC_NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_SCORE_FIELD_NUMBER: _ClassVar[int]
    HEAD_SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_DELTA_FIELD_NUMBER: _ClassVar[int]
    BASE_PASSED_FIELD_NUMBER: _ClassVar[int]
    HEAD_PASSED_FIELD_NUMBER: _ClassVar[int]
    metric_id: str
    metric_name: str
    base_score: float
    head_score: float
    score_delta: float
    base_passed: bool
    head_passed: bool
    def __init__(self, metric_id: _Optional[str] = ..., metric_name: _Optional[str] = ..., base_score: _Optional[float] = ..., head_score: _Optional[float] = ..., score_delta: _Optional[float] = ..., base_passed: _Optional[bool] = ..., head_passed: _Optional[bool] = ...) -> None: ...

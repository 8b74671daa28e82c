import datetime

from assay.v1 import behavior_pb2 as _behavior_pb2
from assay.v1 import endpoint_pb2 as _endpoint_pb2
from assay.v1 import metric_pb2 as _metric_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApplyAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPLY_ACTION_UNSPECIFIED: _ClassVar[ApplyAction]
    APPLY_ACTION_CREATED: _ClassVar[ApplyAction]
    APPLY_ACTION_UPDATED: _ClassVar[ApplyAction]
    APPLY_ACTION_UNCHANGED: _ClassVar[ApplyAction]
APPLY_ACTION_UNSPECIFIED: ApplyAction
APPLY_ACTION_CREATED: ApplyAction
APPLY_ACTION_UPDATED: ApplyAction
APPLY_ACTION_UNCHANGED: ApplyAction

class TestSet(_message.Message):
    __slots__ = ("id", "name", "description", "metrics", "test_count", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    metrics: _containers.RepeatedScalarFieldContainer[str]
    test_count: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., metrics: _Optional[_Iterable[str]] = ..., test_count: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Test(_message.Message):
    __slots__ = ("id", "test_set_id", "prompt", "expected_response", "behavior", "category", "topic", "metadata", "created_at", "key")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TEST_SET_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    BEHAVIOR_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    test_set_id: str
    prompt: str
    expected_response: str
    behavior: str
    category: str
    topic: str
    metadata: _containers.ScalarMap[str, str]
    created_at: _timestamp_pb2.Timestamp
    key: str
    def __init__(self, id: _Optional[str] = ..., test_set_id: _Optional[str] = ..., prompt: _Optional[str] = ..., expected_response: _Optional[str] = ..., behavior: _Optional[str] = ..., category: _Optional[str] = ..., topic: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key: _Optional[str] = ...) -> None: ...

class CreateTestSetRequest(_message.Message):
    __slots__ = ("test_set",)
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    test_set: TestSet
    def __init__(self, test_set: _Optional[_Union[TestSet, _Mapping]] = ...) -> None: ...

class GetTestSetRequest(_message.Message):
    __slots__ = ("test_set",)
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    def __init__(self, test_set: _Optional[str] = ...) -> None: ...

class ListTestSetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTestSetsResponse(_message.Message):
    __slots__ = ("test_sets", "next_page_token")
    TEST_SETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    test_sets: _containers.RepeatedCompositeFieldContainer[TestSet]
    next_page_token: str
    def __init__(self, test_sets: _Optional[_Iterable[_Union[TestSet, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateTestSetRequest(_message.Message):
    __slots__ = ("test_set", "update_mask")
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    test_set: TestSet
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, test_set: _Optional[_Union[TestSet, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteTestSetRequest(_message.Message):
    __slots__ = ("test_set",)
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    def __init__(self, test_set: _Optional[str] = ...) -> None: ...

class AddTestsRequest(_message.Message):
    __slots__ = ("test_set", "tests")
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    tests: _containers.RepeatedCompositeFieldContainer[Test]
    def __init__(self, test_set: _Optional[str] = ..., tests: _Optional[_Iterable[_Union[Test, _Mapping]]] = ...) -> None: ...

class AddTestsResponse(_message.Message):
    __slots__ = ("tests",)
    TESTS_FIELD_NUMBER: _ClassVar[int]
    tests: _containers.RepeatedCompositeFieldContainer[Test]
    def __init__(self, tests: _Optional[_Iterable[_Union[Test, _Mapping]]] = ...) -> None: ...

class ImportTestsRequest(_message.Message):
    __slots__ = ("test_set", "new_test_set", "tests", "replace")
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    NEW_TEST_SET_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    new_test_set: TestSet
    tests: _containers.RepeatedCompositeFieldContainer[Test]
    replace: bool
    def __init__(self, test_set: _Optional[str] = ..., new_test_set: _Optional[_Union[TestSet, _Mapping]] = ..., tests: _Optional[_Iterable[_Union[Test, _Mapping]]] = ..., replace: _Optional[bool] = ...) -> None: ...

class ImportTestsResponse(_message.Message):
    __slots__ = ("test_set", "imported_count")
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    test_set: TestSet
    imported_count: int
    def __init__(self, test_set: _Optional[_Union[TestSet, _Mapping]] = ..., imported_count: _Optional[int] = ...) -> None: ...

class ListTestsRequest(_message.Message):
    __slots__ = ("test_set", "page_size", "page_token")
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    page_size: int
    page_token: str
    def __init__(self, test_set: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTestsResponse(_message.Message):
    __slots__ = ("tests", "next_page_token")
    TESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tests: _containers.RepeatedCompositeFieldContainer[Test]
    next_page_token: str
    def __init__(self, tests: _Optional[_Iterable[_Union[Test, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RemoveTestsRequest(_message.Message):
    __slots__ = ("test_set", "test_ids")
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    TEST_IDS_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    test_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, test_set: _Optional[str] = ..., test_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveTestsResponse(_message.Message):
    __slots__ = ("removed_count",)
    REMOVED_COUNT_FIELD_NUMBER: _ClassVar[int]
    removed_count: int
    def __init__(self, removed_count: _Optional[int] = ...) -> None: ...

class ApplySuiteRequest(_message.Message):
    __slots__ = ("metrics", "behaviors", "endpoints", "test_sets")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    BEHAVIORS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    TEST_SETS_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[_metric_pb2.Metric]
    behaviors: _containers.RepeatedCompositeFieldContainer[_behavior_pb2.Behavior]
    endpoints: _containers.RepeatedCompositeFieldContainer[_endpoint_pb2.Endpoint]
    test_sets: _containers.RepeatedCompositeFieldContainer[SuiteTestSet]
    def __init__(self, metrics: _Optional[_Iterable[_Union[_metric_pb2.Metric, _Mapping]]] = ..., behaviors: _Optional[_Iterable[_Union[_behavior_pb2.Behavior, _Mapping]]] = ..., endpoints: _Optional[_Iterable[_Union[_endpoint_pb2.Endpoint, _Mapping]]] = ..., test_sets: _Optional[_Iterable[_Union[SuiteTestSet, _Mapping]]] = ...) -> None: ...

class SuiteTestSet(_message.Message):
    __slots__ = ("name", "description", "metrics", "tests")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    metrics: _containers.RepeatedScalarFieldContainer[str]
    tests: _containers.RepeatedCompositeFieldContainer[Test]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., metrics: _Optional[_Iterable[str]] = ..., tests: _Optional[_Iterable[_Union[Test, _Mapping]]] = ...) -> None: ...

class AppliedTests(_message.Message):
    __slots__ = ("created", "updated", "removed", "unchanged")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    created: int
    updated: int
    removed: int
    unchanged: int
    def __init__(self, created: _Optional[int] = ..., updated: _Optional[int] = ..., removed: _Optional[int] = ..., unchanged: _Optional[int] = ...) -> None: ...

class AppliedResource(_message.Message):
    __slots__ = ("kind", "name", "id", "action", "tests")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    id: str
    action: ApplyAction
    tests: AppliedTests
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., id: _Optional[str] = ..., action: _Optional[_Union[ApplyAction, str]] = ..., tests: _Optional[_Union[AppliedTests, _Mapping]] = ...) -> None: ...

class ApplySuiteResponse(_message.Message):
    __slots__ = ("resources",)
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    resources: _containers.RepeatedCompositeFieldContainer[AppliedResource]
    def __init__(self, resources: _Optional[_Iterable[_Union[AppliedResource, _Mapping]]] = ...) -> None: ...

import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("id", "test_set_id", "prompt", "expected_response", "behavior", "category", "topic", "metadata", "created_at")
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
    id: str
    test_set_id: str
    prompt: str
    expected_response: str
    behavior: str
    category: str
    topic: str
    metadata: _containers.ScalarMap[str, str]
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., test_set_id: _Optional[str] = ..., prompt: _Optional[str] = ..., expected_response: _Optional[str] = ..., behavior: _Optional[str] = ..., category: _Optional[str] = ..., topic: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("test_set", "new_test_set", "tests")
    TEST_SET_FIELD_NUMBER: _ClassVar[int]
    NEW_TEST_SET_FIELD_NUMBER: _ClassVar[int]
    TESTS_FIELD_NUMBER: _ClassVar[int]
    test_set: str
    new_test_set: TestSet
    tests: _containers.RepeatedCompositeFieldContainer[Test]
    def __init__(self, test_set: _Optional[str] = ..., new_test_set: _Optional[_Union[TestSet, _Mapping]] = ..., tests: _Optional[_Iterable[_Union[Test, _Mapping]]] = ...) -> None: ...

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

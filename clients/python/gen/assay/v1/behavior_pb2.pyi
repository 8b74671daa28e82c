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

class Behavior(_message.Message):
    __slots__ = ("id", "name", "description", "metrics", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    metrics: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., metrics: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateBehaviorRequest(_message.Message):
    __slots__ = ("behavior",)
    BEHAVIOR_FIELD_NUMBER: _ClassVar[int]
    behavior: Behavior
    def __init__(self, behavior: _Optional[_Union[Behavior, _Mapping]] = ...) -> None: ...

class GetBehaviorRequest(_message.Message):
    __slots__ = ("behavior",)
    BEHAVIOR_FIELD_NUMBER: _ClassVar[int]
    behavior: str
    def __init__(self, behavior: _Optional[str] = ...) -> None: ...

class ListBehaviorsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBehaviorsResponse(_message.Message):
    __slots__ = ("behaviors", "next_page_token")
    BEHAVIORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    behaviors: _containers.RepeatedCompositeFieldContainer[Behavior]
    next_page_token: str
    def __init__(self, behaviors: _Optional[_Iterable[_Union[Behavior, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateBehaviorRequest(_message.Message):
    __slots__ = ("behavior", "update_mask")
    BEHAVIOR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    behavior: Behavior
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, behavior: _Optional[_Union[Behavior, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteBehaviorRequest(_message.Message):
    __slots__ = ("behavior",)
    BEHAVIOR_FIELD_NUMBER: _ClassVar[int]
    behavior: str
    def __init__(self, behavior: _Optional[str] = ...) -> None: ...

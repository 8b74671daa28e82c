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

class Endpoint(_message.Message):
    __slots__ = ("id", "name", "description", "http", "openai_chat", "max_concurrency", "max_retries", "rate_limit_per_second", "created_at", "updated_at", "call_policy", "pricing")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    HTTP_FIELD_NUMBER: _ClassVar[int]
    OPENAI_CHAT_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    CALL_POLICY_FIELD_NUMBER: _ClassVar[int]
    PRICING_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    http: HttpTarget
    openai_chat: OpenAiChatTarget
    max_concurrency: int
    max_retries: int
    rate_limit_per_second: float
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    call_policy: CallPolicy
    pricing: Pricing
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., http: _Optional[_Union[HttpTarget, _Mapping]] = ..., openai_chat: _Optional[_Union[OpenAiChatTarget, _Mapping]] = ..., max_concurrency: _Optional[int] = ..., max_retries: _Optional[int] = ..., rate_limit_per_second: _Optional[float] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., call_policy: _Optional[_Union[CallPolicy, _Mapping]] = ..., pricing: _Optional[_Union[Pricing, _Mapping]] = ...) -> None: ...

class Pricing(_message.Message):
    __slots__ = ("input_usd_per_million_tokens", "output_usd_per_million_tokens")
    INPUT_USD_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_USD_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_usd_per_million_tokens: float
    output_usd_per_million_tokens: float
    def __init__(self, input_usd_per_million_tokens: _Optional[float] = ..., output_usd_per_million_tokens: _Optional[float] = ...) -> None: ...

class CallPolicy(_message.Message):
    __slots__ = ("backoff_base_ms", "backoff_max_ms", "max_retry_wait_ms", "retry_budget_ms", "requests_per_minute", "adaptive_concurrency")
    BACKOFF_BASE_MS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_MAX_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRY_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    RETRY_BUDGET_MS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    ADAPTIVE_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    backoff_base_ms: int
    backoff_max_ms: int
    max_retry_wait_ms: int
    retry_budget_ms: int
    requests_per_minute: int
    adaptive_concurrency: bool
    def __init__(self, backoff_base_ms: _Optional[int] = ..., backoff_max_ms: _Optional[int] = ..., max_retry_wait_ms: _Optional[int] = ..., retry_budget_ms: _Optional[int] = ..., requests_per_minute: _Optional[int] = ..., adaptive_concurrency: _Optional[bool] = ...) -> None: ...

class HttpTarget(_message.Message):
    __slots__ = ("url", "method", "headers", "body_template", "response_mapping", "timeout_ms")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    URL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_MAPPING_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    url: str
    method: str
    headers: _containers.ScalarMap[str, str]
    body_template: str
    response_mapping: ResponseMapping
    timeout_ms: int
    def __init__(self, url: _Optional[str] = ..., method: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., body_template: _Optional[str] = ..., response_mapping: _Optional[_Union[ResponseMapping, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class ResponseMapping(_message.Message):
    __slots__ = ("output", "context", "metadata", "input_tokens", "output_tokens")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    output: str
    context: str
    metadata: str
    input_tokens: str
    output_tokens: str
    def __init__(self, output: _Optional[str] = ..., context: _Optional[str] = ..., metadata: _Optional[str] = ..., input_tokens: _Optional[str] = ..., output_tokens: _Optional[str] = ...) -> None: ...

class OpenAiChatTarget(_message.Message):
    __slots__ = ("base_url", "model", "system_prompt", "api_key_env", "timeout_ms")
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ENV_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    base_url: str
    model: str
    system_prompt: str
    api_key_env: str
    timeout_ms: int
    def __init__(self, base_url: _Optional[str] = ..., model: _Optional[str] = ..., system_prompt: _Optional[str] = ..., api_key_env: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class CreateEndpointRequest(_message.Message):
    __slots__ = ("endpoint",)
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    endpoint: Endpoint
    def __init__(self, endpoint: _Optional[_Union[Endpoint, _Mapping]] = ...) -> None: ...

class GetEndpointRequest(_message.Message):
    __slots__ = ("endpoint",)
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    def __init__(self, endpoint: _Optional[str] = ...) -> None: ...

class ListEndpointsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEndpointsResponse(_message.Message):
    __slots__ = ("endpoints", "next_page_token")
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    endpoints: _containers.RepeatedCompositeFieldContainer[Endpoint]
    next_page_token: str
    def __init__(self, endpoints: _Optional[_Iterable[_Union[Endpoint, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateEndpointRequest(_message.Message):
    __slots__ = ("endpoint", "update_mask")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    endpoint: Endpoint
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, endpoint: _Optional[_Union[Endpoint, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteEndpointRequest(_message.Message):
    __slots__ = ("endpoint",)
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    def __init__(self, endpoint: _Optional[str] = ...) -> None: ...

import datetime

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

class ScoreType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCORE_TYPE_UNSPECIFIED: _ClassVar[ScoreType]
    SCORE_TYPE_BINARY: _ClassVar[ScoreType]
    SCORE_TYPE_NUMERIC: _ClassVar[ScoreType]
    SCORE_TYPE_CATEGORICAL: _ClassVar[ScoreType]

class LengthUnit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LENGTH_UNIT_UNSPECIFIED: _ClassVar[LengthUnit]
    LENGTH_UNIT_CHARACTERS: _ClassVar[LengthUnit]
    LENGTH_UNIT_WORDS: _ClassVar[LengthUnit]

class ExternalProtocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXTERNAL_PROTOCOL_UNSPECIFIED: _ClassVar[ExternalProtocol]
    EXTERNAL_PROTOCOL_HTTP: _ClassVar[ExternalProtocol]
    EXTERNAL_PROTOCOL_GRPC: _ClassVar[ExternalProtocol]
SCORE_TYPE_UNSPECIFIED: ScoreType
SCORE_TYPE_BINARY: ScoreType
SCORE_TYPE_NUMERIC: ScoreType
SCORE_TYPE_CATEGORICAL: ScoreType
LENGTH_UNIT_UNSPECIFIED: LengthUnit
LENGTH_UNIT_CHARACTERS: LengthUnit
LENGTH_UNIT_WORDS: LengthUnit
EXTERNAL_PROTOCOL_UNSPECIFIED: ExternalProtocol
EXTERNAL_PROTOCOL_HTTP: ExternalProtocol
EXTERNAL_PROTOCOL_GRPC: ExternalProtocol

class Metric(_message.Message):
    __slots__ = ("id", "name", "description", "score_type", "threshold", "threshold_operator", "categories", "passing_categories", "requires_expected", "requires_context", "exact_match", "contains", "regex", "llm_judge", "not_contains", "starts_with", "ends_with", "is_json", "json_schema", "length", "latency", "levenshtein", "rouge_l", "bleu", "semantic_similarity", "cost", "token_usage", "external", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SCORE_TYPE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_OPERATOR_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PASSING_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXACT_MATCH_FIELD_NUMBER: _ClassVar[int]
    CONTAINS_FIELD_NUMBER: _ClassVar[int]
    REGEX_FIELD_NUMBER: _ClassVar[int]
    LLM_JUDGE_FIELD_NUMBER: _ClassVar[int]
    NOT_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    STARTS_WITH_FIELD_NUMBER: _ClassVar[int]
    ENDS_WITH_FIELD_NUMBER: _ClassVar[int]
    IS_JSON_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    LEVENSHTEIN_FIELD_NUMBER: _ClassVar[int]
    ROUGE_L_FIELD_NUMBER: _ClassVar[int]
    BLEU_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    TOKEN_USAGE_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    score_type: ScoreType
    threshold: float
    threshold_operator: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    passing_categories: _containers.RepeatedScalarFieldContainer[str]
    requires_expected: bool
    requires_context: bool
    exact_match: ExactMatch
    contains: Contains
    regex: Regex
    llm_judge: LlmJudge
    not_contains: NotContains
    starts_with: AffixMatch
    ends_with: AffixMatch
    is_json: IsJson
    json_schema: JsonSchema
    length: Length
    latency: Latency
    levenshtein: Similarity
    rouge_l: Similarity
    bleu: Similarity
    semantic_similarity: SemanticSimilarity
    cost: Cost
    token_usage: TokenUsageLimit
    external: External
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., score_type: _Optional[_Union[ScoreType, str]] = ..., threshold: _Optional[float] = ..., threshold_operator: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., passing_categories: _Optional[_Iterable[str]] = ..., requires_expected: _Optional[bool] = ..., requires_context: _Optional[bool] = ..., exact_match: _Optional[_Union[ExactMatch, _Mapping]] = ..., contains: _Optional[_Union[Contains, _Mapping]] = ..., regex: _Optional[_Union[Regex, _Mapping]] = ..., llm_judge: _Optional[_Union[LlmJudge, _Mapping]] = ..., not_contains: _Optional[_Union[NotContains, _Mapping]] = ..., starts_with: _Optional[_Union[AffixMatch, _Mapping]] = ..., ends_with: _Optional[_Union[AffixMatch, _Mapping]] = ..., is_json: _Optional[_Union[IsJson, _Mapping]] = ..., json_schema: _Optional[_Union[JsonSchema, _Mapping]] = ..., length: _Optional[_Union[Length, _Mapping]] = ..., latency: _Optional[_Union[Latency, _Mapping]] = ..., levenshtein: _Optional[_Union[Similarity, _Mapping]] = ..., rouge_l: _Optional[_Union[Similarity, _Mapping]] = ..., bleu: _Optional[_Union[Similarity, _Mapping]] = ..., semantic_similarity: _Optional[_Union[SemanticSimilarity, _Mapping]] = ..., cost: _Optional[_Union[Cost, _Mapping]] = ..., token_usage: _Optional[_Union[TokenUsageLimit, _Mapping]] = ..., external: _Optional[_Union[External, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExactMatch(_message.Message):
    __slots__ = ("value", "ignore_case", "trim")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    IGNORE_CASE_FIELD_NUMBER: _ClassVar[int]
    TRIM_FIELD_NUMBER: _ClassVar[int]
    value: str
    ignore_case: bool
    trim: bool
    def __init__(self, value: _Optional[str] = ..., ignore_case: _Optional[bool] = ..., trim: _Optional[bool] = ...) -> None: ...

class Contains(_message.Message):
    __slots__ = ("values", "match_all", "case_sensitive")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    MATCH_ALL_FIELD_NUMBER: _ClassVar[int]
    CASE_SENSITIVE_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    match_all: bool
    case_sensitive: bool
    def __init__(self, values: _Optional[_Iterable[str]] = ..., match_all: _Optional[bool] = ..., case_sensitive: _Optional[bool] = ...) -> None: ...

class Regex(_message.Message):
    __slots__ = ("pattern", "no_match")
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    NO_MATCH_FIELD_NUMBER: _ClassVar[int]
    pattern: str
    no_match: bool
    def __init__(self, pattern: _Optional[str] = ..., no_match: _Optional[bool] = ...) -> None: ...

class NotContains(_message.Message):
    __slots__ = ("values", "case_sensitive")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CASE_SENSITIVE_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    case_sensitive: bool
    def __init__(self, values: _Optional[_Iterable[str]] = ..., case_sensitive: _Optional[bool] = ...) -> None: ...

class AffixMatch(_message.Message):
    __slots__ = ("value", "ignore_case", "trim")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    IGNORE_CASE_FIELD_NUMBER: _ClassVar[int]
    TRIM_FIELD_NUMBER: _ClassVar[int]
    value: str
    ignore_case: bool
    trim: bool
    def __init__(self, value: _Optional[str] = ..., ignore_case: _Optional[bool] = ..., trim: _Optional[bool] = ...) -> None: ...

class IsJson(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class JsonSchema(_message.Message):
    __slots__ = ("schema",)
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    schema: str
    def __init__(self, schema: _Optional[str] = ...) -> None: ...

class Length(_message.Message):
    __slots__ = ("min", "max", "unit")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    min: int
    max: int
    unit: LengthUnit
    def __init__(self, min: _Optional[int] = ..., max: _Optional[int] = ..., unit: _Optional[_Union[LengthUnit, str]] = ...) -> None: ...

class Latency(_message.Message):
    __slots__ = ("max_ms",)
    MAX_MS_FIELD_NUMBER: _ClassVar[int]
    max_ms: int
    def __init__(self, max_ms: _Optional[int] = ...) -> None: ...

class Similarity(_message.Message):
    __slots__ = ("value", "ignore_case", "nfc", "lowercase", "tokenize")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    IGNORE_CASE_FIELD_NUMBER: _ClassVar[int]
    NFC_FIELD_NUMBER: _ClassVar[int]
    LOWERCASE_FIELD_NUMBER: _ClassVar[int]
    TOKENIZE_FIELD_NUMBER: _ClassVar[int]
    value: str
    ignore_case: bool
    nfc: bool
    lowercase: bool
    tokenize: str
    def __init__(self, value: _Optional[str] = ..., ignore_case: _Optional[bool] = ..., nfc: _Optional[bool] = ..., lowercase: _Optional[bool] = ..., tokenize: _Optional[str] = ...) -> None: ...

class Cost(_message.Message):
    __slots__ = ("max_usd",)
    MAX_USD_FIELD_NUMBER: _ClassVar[int]
    max_usd: float
    def __init__(self, max_usd: _Optional[float] = ...) -> None: ...

class TokenUsageLimit(_message.Message):
    __slots__ = ("max_tokens",)
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    def __init__(self, max_tokens: _Optional[int] = ...) -> None: ...

class SemanticSimilarity(_message.Message):
    __slots__ = ("value", "embedding_endpoint")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    value: str
    embedding_endpoint: str
    def __init__(self, value: _Optional[str] = ..., embedding_endpoint: _Optional[str] = ...) -> None: ...

class External(_message.Message):
    __slots__ = ("protocol", "url", "endpoint")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    protocol: ExternalProtocol
    url: str
    endpoint: str
    def __init__(self, protocol: _Optional[_Union[ExternalProtocol, str]] = ..., url: _Optional[str] = ..., endpoint: _Optional[str] = ...) -> None: ...

class LlmJudge(_message.Message):
    __slots__ = ("base_url", "model", "api_key_env", "evaluation_prompt", "min_score", "max_score", "timeout_ms", "judge_endpoint", "evaluation_steps")
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ENV_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_PROMPT_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_SCORE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    JUDGE_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_STEPS_FIELD_NUMBER: _ClassVar[int]
    base_url: str
    model: str
    api_key_env: str
    evaluation_prompt: str
    min_score: float
    max_score: float
    timeout_ms: int
    judge_endpoint: str
    evaluation_steps: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, base_url: _Optional[str] = ..., model: _Optional[str] = ..., api_key_env: _Optional[str] = ..., evaluation_prompt: _Optional[str] = ..., min_score: _Optional[float] = ..., max_score: _Optional[float] = ..., timeout_ms: _Optional[int] = ..., judge_endpoint: _Optional[str] = ..., evaluation_steps: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateMetricRequest(_message.Message):
    __slots__ = ("metric",)
    METRIC_FIELD_NUMBER: _ClassVar[int]
    metric: Metric
    def __init__(self, metric: _Optional[_Union[Metric, _Mapping]] = ...) -> None: ...

class GetMetricRequest(_message.Message):
    __slots__ = ("metric",)
    METRIC_FIELD_NUMBER: _ClassVar[int]
    metric: str
    def __init__(self, metric: _Optional[str] = ...) -> None: ...

class ListMetricsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMetricsResponse(_message.Message):
    __slots__ = ("metrics", "next_page_token")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    next_page_token: str
    def __init__(self, metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateMetricRequest(_message.Message):
    __slots__ = ("metric", "update_mask")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    metric: Metric
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, metric: _Optional[_Union[Metric, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteMetricRequest(_message.Message):
    __slots__ = ("metric",)
    METRIC_FIELD_NUMBER: _ClassVar[int]
    metric: str
    def __init__(self, metric: _Optional[str] = ...) -> None: ...

"""Errors of the Assay API as Python exceptions, with the server's google.rpc error details."""

from __future__ import annotations

from typing import TypeVar

import grpc
from google.protobuf import any_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

# Importing error_details_pb2 registers the google.rpc detail types (BadRequest, ResourceInfo,
# ...), so that they can be unpacked.
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"

M = TypeVar("M", bound=Message)


class AssayError(Exception):
    """A call that the server refused or that failed: the gRPC status code, its message and the
    error details the server attached (e.g. a `BadRequest` naming the field)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: list[Message]):
        super().__init__(f"{code.name}: {message}")
        #: The gRPC status code, e.g. `grpc.StatusCode.INVALID_ARGUMENT`.
        self.code = code
        #: The server's message.
        self.message = message
        #: The decoded google.rpc error details (`BadRequest`, `ResourceInfo`,
        #: `PreconditionFailure`, ...); details of unknown types are left out.
        self.details = details

    def detail(self, kind: type[M]) -> M | None:
        """The first detail of that type, e.g. `error.detail(BadRequest)`, or None."""
        return next((d for d in self.details if isinstance(d, kind)), None)

    @property
    def field_violations(self) -> dict[str, str]:
        """Field path -> what is wrong with it, from the `BadRequest` detail (empty if none)."""
        bad_request = self.detail(error_details_pb2.BadRequest)
        if bad_request is None:
            return {}
        return {v.field: v.description for v in bad_request.field_violations}

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> AssayError:
        """Converts what grpcio raised (a `grpc.Call`) into an `AssayError`."""
        call: grpc.Call = error  # type: ignore[assignment]
        status = _status_details(call.trailing_metadata() or ())
        details = [d for d in map(_unpack, status.details) if d is not None]
        return cls(call.code(), call.details() or "", details)


def _status_details(metadata) -> status_pb2.Status:
    for key, value in metadata:
        if key == _DETAILS_KEY:
            return status_pb2.Status.FromString(value)
    return status_pb2.Status()


def _unpack(detail: any_pb2.Any) -> Message | None:
    """The detail as its own message type; None for a type this process does not know."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(detail.TypeName())
    except KeyError:
        return None
    unpacked = message_factory.GetMessageClass(descriptor)()
    detail.Unpack(unpacked)
    return unpacked

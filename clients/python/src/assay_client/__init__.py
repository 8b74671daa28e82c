"""Python client of the Assay gRPC service.

`AssayClient` is the small typed layer; the generated messages and stubs are the `assay.v1`
package (`from assay.v1 import metric_pb2`), generated from the repository's `proto/`.
"""

from .client import AssayClient, Collection
from .errors import AssayError

__all__ = ["AssayClient", "AssayError", "Collection"]

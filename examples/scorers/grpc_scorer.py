"""An external scorer over gRPC for Assay's `external` metric (protocol EXTERNAL_PROTOCOL_GRPC).

It implements `assay.v1.ScorerService/Score` (proto/assay/v1/scorer.proto) with the stubs of
the Python client: run from the repository, it uses clients/python/gen; elsewhere, install the
client (`pip install ./clients/python`). Like http_scorer.py it gives the share of the
expected response's words that the output contains (word recall, in [0, 1]); the metric's
threshold decides the verdict. Needs grpcio and protobuf.

    python3 examples/scorers/grpc_scorer.py [PORT]     # or SCORER_PORT; default 8771, 0: any

It prints "listening on http://127.0.0.1:PORT" once it accepts calls; the metric's url is that
address.
"""

import os
import re
import sys
from concurrent import futures

import grpc

# In the repository, the generated code of the Python client next to it (it matches the protos
# there); elsewhere, the installed client.
_gen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python", "gen")
if os.path.isdir(_gen):
    sys.path.insert(0, _gen)

from assay.v1 import scorer_pb2, scorer_pb2_grpc  # noqa: E402


def words(text):
    return set(re.findall(r"\w+", text.lower()))


class WordRecall(scorer_pb2_grpc.ScorerServiceServicer):
    def Score(self, request, context):
        if not request.HasField("expected_response"):
            return scorer_pb2.ScoreResponse(
                passed=False, reason="the test has no expected response"
            )
        wanted = words(request.expected_response)
        if not wanted:
            return scorer_pb2.ScoreResponse(score=1.0, reason="the expected response has no words")
        found = wanted & words(request.output)
        return scorer_pb2.ScoreResponse(
            score=len(found) / len(wanted),
            reason=f"{len(found)} of {len(wanted)} expected words found",
        )


def main():
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SCORER_PORT", "8771"))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    scorer_pb2_grpc.add_ScorerServiceServicer_to_server(WordRecall(), server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()

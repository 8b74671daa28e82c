"""An external scorer over gRPC for Assay's `external` metric (protocol EXTERNAL_PROTOCOL_GRPC).

It implements `assay.v1.ScorerService/Score` (proto/assay/v1/scorer.proto) with the stubs of
the Python client (clients/python: `pip install ./clients/python`, or run it from the repository,
where it finds clients/python/gen by itself). Like http_scorer.py it gives the share of the
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

try:
    from assay.v1 import scorer_pb2, scorer_pb2_grpc
except ImportError:
    # Run from the repository: the generated code of the Python client.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "clients", "python", "gen"))
    from assay.v1 import scorer_pb2, scorer_pb2_grpc


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

"""An external scorer over HTTP for Assay's `external` metric (protocol EXTERNAL_PROTOCOL_HTTP).

Assay POSTs one JSON object per answer it scores:

    {"test_id": "...", "metric": "...", "prompt": "...", "output": "...",
     "expected_response": "..." or null, "context": ["..."], "metadata": {"key": "value"}}

and reads the answer {"score"?: number, "passed"?: bool, "category"?: string, "reason"?: string}.
This scorer gives the share of the expected response's words that the output contains (word
recall, in [0, 1]); the metric's threshold decides the verdict. Python standard library only.

    python3 examples/scorers/http_scorer.py [PORT]     # or SCORER_PORT; default 8770, 0: any

It prints "listening on http://127.0.0.1:PORT" once it accepts calls.
"""

import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def words(text):
    return set(re.findall(r"\w+", text.lower()))


def score(request):
    expected = request.get("expected_response")
    if expected is None:
        return {"passed": False, "reason": "the test has no expected response"}
    wanted = words(expected)
    if not wanted:
        return {"score": 1.0, "reason": "the expected response has no words"}
    found = wanted & words(request["output"])
    return {
        "score": len(found) / len(wanted),
        "reason": f"{len(found)} of {len(wanted)} expected words found",
    }


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        try:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, answer = 200, score(request)
        except (ValueError, KeyError, TypeError) as e:
            status, answer = 400, {"error": f"bad request: {e}"}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SCORER_PORT", "8770"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

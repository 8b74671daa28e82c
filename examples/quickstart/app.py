"""A stand-in for the application under test: a tiny HTTP service on 127.0.0.1:8765.

POST /ask {"question": "..."} -> {"answer": "..."}. It knows two capitals and one sum, and
wrongly believes that the capital of Italy is Milan. Python standard library only.
"""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = {
    "france": "The capital of France is Paris.",
    "italy": "I believe it is Milan.",
    "2 + 2": "2 + 2 = 4",
}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = body.get("question", "").lower()
        answer = next((a for k, a in ANSWERS.items() if k in question), "I do not know.")
        payload = json.dumps({"answer": answer}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", 8765), Handler).serve_forever()

"""Fixtures: the real `assay` binary on 127.0.0.1 and a real HTTP application under test.

The binary is ASSAY_BIN, or target/debug/assay of this repository (scripts/test builds it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assay_client import AssayClient

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 30  # seconds for the binary to accept connections


class App:
    """A tiny HTTP application: answers `{"answer": ...}` to `{"prompt": ...}`, counts its calls,
    and holds the answer to a prompt in `gates` until that gate is opened."""

    def __init__(self) -> None:
        self.calls = 0
        self.gates: dict[str, threading.Event] = {}
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                prompt = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["prompt"]
                app.calls += 1
                gate = app.gates.get(prompt)
                if gate is not None:
                    gate.wait(timeout=60)
                answer = "Paris" if "France" in prompt else "Milan"
                body = json.dumps({"answer": answer}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/ask"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for gate in self.gates.values():
            gate.set()
        self._server.shutdown()


@pytest.fixture
def app() -> Iterator[App]:
    served = App()
    yield served
    served.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The API key of the `keyed_server_url` server.
API_KEY = "sk-assay-python-tests-0123456789"


def _serve(tmp: Path, *args: str) -> Iterator[str]:
    """`http://127.0.0.1:PORT` of a real `assay serve` on a fresh SQLite database in `tmp`, with
    more `args`; stopped when the generator is closed."""
    binary = Path(os.environ.get("ASSAY_BIN", ROOT / "target" / "debug" / "assay"))
    assert binary.is_file(), f"{binary} missing: build it with `cargo build --bin assay`"
    port = _free_port()
    log = (tmp / "serve.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    process = subprocess.Popen(
        [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--database", f"sqlite://{tmp / 'assay.db'}", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert process.poll() is None, f"assay exited: {(tmp / 'serve.log').read_text()}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "assay did not accept connections"
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=15)
    log.close()


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`http://127.0.0.1:PORT` of a real `assay serve` on a fresh SQLite database."""
    yield from _serve(tmp_path_factory.mktemp("assay"))


@pytest.fixture(scope="session")
def keyed_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `assay serve` that requires the API key `API_KEY`."""
    yield from _serve(tmp_path_factory.mktemp("assay-keyed"), "--api-key", API_KEY)


@pytest.fixture
def client(server_url: str) -> Iterator[AssayClient]:
    with AssayClient(server_url) as connected:
        yield connected

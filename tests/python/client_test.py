"""A Python client of Assay, generated from proto/ at run time.

Usage: client_test.py HOST:PORT

Generates the Python stubs of every proto in proto/assay/v1 with grpc_tools.protoc into a
temporary directory, then talks to the server at HOST:PORT through MetricServiceStub. Exits 0
when every check passes. Run by tests/integration/e2e.rs against the built binary, with the
virtualenv that scripts/test prepares.
"""

import importlib
import importlib.resources
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
TIMEOUT = 10  # seconds per RPC


def generate_stubs(out_dir: Path) -> None:
    """Runs `python -m grpc_tools.protoc` on every Assay proto."""
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "assay" / "v1").glob("*.proto"))
    assert protos, f"no protos under {PROTO_DIR}"
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    done = subprocess.run(cmd, cwd=PROTO_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"protoc failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def check_metric_round_trip(stub, pb) -> None:
    name = f"py-mentions-paris-{uuid.uuid4().hex[:8]}"
    created = stub.CreateMetric(
        pb.CreateMetricRequest(
            metric=pb.Metric(
                name=name,
                description="the answer names the capital",
                contains=pb.Contains(values=["Paris", "paris"], match_all=False),
            )
        ),
        timeout=TIMEOUT,
    )
    assert created.id, "the created metric has no id"
    uuid.UUID(created.id)  # ids are UUIDs
    assert created.name == name, created
    assert created.WhichOneof("kind") == "contains", created
    assert list(created.contains.values) == ["Paris", "paris"], created
    assert created.score_type == pb.SCORE_TYPE_BINARY, created
    print(f"created {name} as {created.id}")

    by_name = stub.GetMetric(pb.GetMetricRequest(metric=name), timeout=TIMEOUT)
    by_id = stub.GetMetric(pb.GetMetricRequest(metric=created.id), timeout=TIMEOUT)
    for got in (by_name, by_id):
        assert got.id == created.id, got
        assert got.name == name, got
        assert got.description == "the answer names the capital", got
        assert got.WhichOneof("kind") == "contains", got
        assert list(got.contains.values) == ["Paris", "paris"], got
        assert got.score_type == pb.SCORE_TYPE_BINARY, got
    print("GetMetric by name and by id agree")


def check_regex_metric(stub, pb) -> None:
    name = f"py-says-yes-{uuid.uuid4().hex[:8]}"
    created = stub.CreateMetric(
        pb.CreateMetricRequest(metric=pb.Metric(name=name, regex=pb.Regex(pattern="(?i)^yes\\b"))),
        timeout=TIMEOUT,
    )
    got = stub.GetMetric(pb.GetMetricRequest(metric=name), timeout=TIMEOUT)
    assert got.id == created.id, got
    assert got.regex.pattern == "(?i)^yes\\b", got
    print(f"regex metric {name} stored")


def check_errors(stub, pb) -> None:
    missing = f"no-such-metric-{uuid.uuid4().hex[:8]}"
    try:
        stub.GetMetric(pb.GetMetricRequest(metric=missing), timeout=TIMEOUT)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, (e.code(), e.details())
        assert missing in e.details(), e.details()
    else:
        raise AssertionError(f"GetMetric({missing!r}) succeeded")
    print("unknown name: NOT_FOUND")

    try:
        stub.CreateMetric(
            pb.CreateMetricRequest(metric=pb.Metric(name="", contains=pb.Contains(values=["x"]))),
            timeout=TIMEOUT,
        )
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, (e.code(), e.details())
        assert "metric.name" in e.details(), e.details()
    else:
        raise AssertionError("a metric without a name was created")
    print("empty name: INVALID_ARGUMENT")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    addr = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="assay-py-stubs-") as out:
        generate_stubs(Path(out))
        sys.path.insert(0, out)
        pb = importlib.import_module("assay.v1.metric_pb2")
        pb_grpc = importlib.import_module("assay.v1.metric_pb2_grpc")
        # Every generated module imports: the protos are usable from Python as a whole.
        for mod in ("behavior", "endpoint", "test_set", "execution"):
            importlib.import_module(f"assay.v1.{mod}_pb2_grpc")

        with grpc.insecure_channel(addr) as channel:
            grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
            stub = pb_grpc.MetricServiceStub(channel)
            check_metric_round_trip(stub, pb)
            check_regex_metric(stub, pb)
            check_errors(stub, pb)
    print("python client: all checks passed")


if __name__ == "__main__":
    main()

"""The gRPC transport facade -> logging without a cluster: the generated code, the servicer's answers, the
health service's state and how the facade reads gRPC status codes."""

from scripts.protos import PROTO_DIR, generate


def test_the_committed_generated_code_is_what_the_proto_generates(tmp_path):
    written = generate(tmp_path)
    assert [p.name for p in written] == ["logging_pb2.py", "logging_pb2.pyi", "logging_pb2_grpc.py"]
    for fresh in written:
        committed = PROTO_DIR / fresh.name
        assert committed.read_text() == fresh.read_text(), \
            f"{committed} is out of date: run `python -m scripts.protos` and commit the result"

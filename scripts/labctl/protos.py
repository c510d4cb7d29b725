"""Generates the gRPC modules from lab_common/proto/*.proto with grpcio-tools (the dev extra). They are
committed; tests/unit/test_grpc.py regenerates them into a temporary folder and compares.
Usage: python -m labctl.protos"""

from __future__ import annotations

import sys
from pathlib import Path

from labctl.deps import ROOT

PROTO_DIR = ROOT / "lab_common" / "proto"


def generate(out_dir: Path) -> list[Path]:
    """Writes *_pb2.py, *_pb2.pyi and *_pb2_grpc.py of every .proto under `out_dir`, in the package layout
    (out_dir/lab_common/proto/...); answers the files written."""
    from grpc_tools import protoc

    protos = sorted(PROTO_DIR.glob("*.proto"))
    relative = [str(p.relative_to(ROOT)) for p in protos]
    out_dir.mkdir(parents=True, exist_ok=True)
    code = protoc.main(["grpc_tools.protoc", f"-I{ROOT}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
                        f"--grpc_python_out={out_dir}", *relative])
    if code != 0:
        raise RuntimeError(f"protoc failed (exit {code}) on {', '.join(relative)}")
    return sorted((out_dir / "lab_common" / "proto").glob("*_pb2*.py*"))


def main() -> int:
    for path in generate(ROOT):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The committed OIP v2 stubs are what ``python -m oip_proto.generate`` makes of the one proto."""

from __future__ import annotations

from pathlib import Path

import oip_proto
from oip_proto.generate import HERE, PROTO, generate

STUBS = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi", "grpc_predict_v2_pb2_grpc.py")


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    made = generate(tmp_path)
    assert sorted(p.name for p in made) == sorted(STUBS)
    for name in STUBS:
        assert (tmp_path / name).read_text() == (HERE / name).read_text(), name


def test_generate_rewrites_nothing_when_up_to_date(tmp_path: Path) -> None:
    generate(tmp_path)
    assert generate(tmp_path) == []


def test_the_proto_lives_only_in_oip_proto() -> None:
    root = Path(oip_proto.__file__).resolve().parents[1]
    tops = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    copies = [p.relative_to(root) for top in tops for p in top.rglob(PROTO)]
    assert copies == [Path("oip_proto") / PROTO]


def test_the_service_and_messages_import_from_the_package() -> None:
    from oip_proto import grpc_predict_v2_pb2 as pb
    from oip_proto import grpc_predict_v2_pb2_grpc as pb_grpc

    assert pb.DESCRIPTOR.package == "inference"
    assert pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods_by_name["ModelInfer"]
    assert hasattr(pb_grpc, "GRPCInferenceServiceStub")

"""INT8 that answers the same on every CPU it ships to: the portable default and ``edgecnn certify``.

The flip model is a hand-built Gemm whose u8×s8 pair sums exceed int16: with full-range weights
(``--target x86-vnni``) x86 AVX2 kernels saturate them (``vpmaddubsw``) and the answer flips; SSE4 and ARM
kernels widen first and answer exactly. 7-bit weights (``portable``) answer the same everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from _onnx import build_model, save_model, tensor, value
from onnx import helper
from typer.testing import CliRunner

from edgecnn.certify import CertifyConfig, certify
from edgecnn.certify.targets import describe_host, not_checkable
from edgecnn.cli import app
from edgecnn.errors import MissingDependencyError, UsageError
from edgecnn.quantize import QuantizeConfig, QuantTarget, quantize
from edgecnn.runtime.certificate import certificate_path, read_certificate

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-x86_64") is None, reason="needs qemu-user (apt-get install qemu-user)"
)
if os.environ.get("EDGECNN_REQUIRE_EMULATION") and shutil.which("qemu-x86_64") is None:  # CI must not skip
    raise RuntimeError("EDGECNN_REQUIRE_EMULATION=1 but qemu-x86_64 is not on PATH")

K = 64  # Gemm inputs: an 8×8 grayscale image


def _flip_fp32(path: Path) -> Path:
    """Class a: every weight 1; class b: weights (1, 0) repeated, bias 16. Inputs are pixels/510 + 0.5, so
    activations quantize to 127–255: class a's pair sums (127·(u1+u2) >= 32,258) all saturate int16 on AVX2."""
    from edgecnn.runtime.metadata import ColorMode, InputSpec, Layout, ModelMetadata, PreprocessSpec

    w = np.stack([np.ones(K), np.tile([1.0, 0.0], K // 2)], 1).astype(np.float32)
    b = np.array([0.0, 16.0], np.float32)
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["output"], axis=1),
    ]
    meta = ModelMetadata(
        labels=("a", "b"),
        input=InputSpec("input", Layout.NHWC, 8, 8, 1),
        preprocess=PreprocessSpec(color_mode=ColorMode.L, scale=1 / 510, offset=0.5),
    )
    inputs, outputs = [value("input", ["N", 8, 8, 1])], [value("output", ["N", 2])]
    model = build_model(nodes, inputs, outputs, [tensor("w", w), tensor("b", b)], name="flip", metadata=meta)
    return save_model(model, path)


@pytest.fixture(scope="module")
def flip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The FP32 flip model and its INT8 variants: portable (default) and x86-vnni (full-range weights)."""
    from PIL import Image

    work = tmp_path_factory.mktemp("flip")
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        for i in range(60):
            (work / "calib" / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(work / "calib" / label / f"{i}.png")
    fp32 = _flip_fp32(work / "flip.onnx")
    out = {"fp32": fp32, "calib": work / "calib"}
    for name, target in (("portable", QuantTarget.portable), ("vnni", QuantTarget.x86_vnni)):
        cfg = QuantizeConfig.int8(target=target, float_stem=False)
        dst = work / f"flip.{name}.onnx"
        out[name] = quantize(fp32, dst, cfg, calibration=work / "calib", measure_speed=False).path
    return out


def test_portable_is_the_default_and_means_7bit_weights() -> None:
    assert QuantizeConfig().target == QuantTarget.portable
    assert QuantizeConfig().seven_bit_weights
    assert not QuantizeConfig(target="x86-vnni").seven_bit_weights
    assert not QuantizeConfig(target="arm64").seven_bit_weights
    assert QuantizeConfig(target="x86-avx2").seven_bit_weights
    assert QuantizeConfig(target="x86-vnni", reduce_range=True).seven_bit_weights  # allowed, recorded
    with pytest.raises(UsageError, match="needs 7-bit weights"):
        QuantizeConfig(target="portable", reduce_range=False)
    assert "portable (7-bit weights)" in QuantizeConfig().describe()


def test_target_is_recorded_in_the_metadata_and_shown(flip: dict[str, Path]) -> None:
    from edgecnn.runtime.classifier import read_metadata

    q = read_metadata(flip["portable"]).quantization or {}
    assert (q["target"], q["reduce_range"]) == ("portable", True)
    q = read_metadata(flip["vnni"]).quantization or {}
    assert (q["target"], q["reduce_range"]) == ("x86-vnni", False)
    res = CliRunner().invoke(app, ["info", str(flip["vnni"]), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["metadata"]["quantization"]["target"] == "x86-vnni"


def _run(model: Path, x: np.ndarray, target: str, work: Path) -> np.ndarray:
    from edgecnn.certify.api import _run_target

    np.save(work / "x.npy", x)
    return _run_target(model, work / "x.npy", work, target, (), 300)[0]


@pytest.mark.slow
def test_full_range_weights_flip_on_avx2_and_portable_does_not(flip: dict[str, Path], tmp_path: Path) -> None:
    x = (np.random.default_rng(1).integers(0, 256, (200, 8, 8, 1)) / 510 + 0.5).astype(np.float32)
    fp32 = _run(flip["fp32"], x, "native", tmp_path).argmax(1)
    assert (fp32 == 0).all()  # exact arithmetic: class a everywhere
    vnni_avx2 = _run(flip["vnni"], x, "x86-avx2", tmp_path).argmax(1)
    vnni_sse4 = _run(flip["vnni"], x, "x86-sse4", tmp_path).argmax(1)
    assert (vnni_sse4 == fp32).mean() == 1.0  # SSE4 widens to int16 before multiplying: exact
    assert (vnni_avx2 != fp32).mean() > 0.9  # AVX2 saturates the pair sums: the answer flips
    portable = [_run(flip["portable"], x, t, tmp_path) for t in ("native", "x86-avx2", "x86-sse4")]
    assert all((p.argmax(1) == fp32).all() for p in portable)
    # the float head's softmax may round differently per kernel (1e-10 here); no quantization step apart
    np.testing.assert_allclose(portable[1], portable[2], rtol=0, atol=1e-6)


@pytest.mark.slow  # an emulated CPU: 2 × 500 samples under QEMU
def test_certify_passes_portable_on_avx2_and_writes_the_certificate(flip: dict[str, Path]) -> None:
    res = CliRunner().invoke(
        app, ["certify", str(flip["portable"]), "--targets", "x86-avx2", "--data", "random", "--samples", "500"]
    )
    assert res.exit_code == 0, res.output
    assert "PASS" in res.output
    cert = json.loads(certificate_path(flip["portable"]).read_text())
    assert cert["passed"] is True and cert["samples"] == 500
    assert set(cert["targets"]) == {"native", "x86-avx2"}
    assert cert["targets"]["x86-avx2"]["agreement_native"] == 1.0
    assert "AVX2" in cert["targets"]["x86-avx2"]["cpu_features"]  # the emulated process saw AVX2 ...
    assert "AVX512F" not in cert["targets"]["x86-avx2"]["cpu_features"]  # ... and nothing newer
    assert cert["reference"] == "flip.onnx" and cert["targets"]["x86-avx2"]["agreement_reference"] == 1.0
    assert "/" not in json.dumps(cert["model"])  # a name and a hash, no local path
    assert read_certificate(flip["portable"]) == cert
    from edgecnn import Classifier

    assert Classifier(flip["portable"]).certificate == cert
    info = CliRunner().invoke(app, ["info", str(flip["portable"])])
    assert "PASS on native 100.0%, x86-avx2 100.0%" in info.output


@pytest.mark.slow
def test_certify_fails_a_full_range_model_with_exit_4(flip: dict[str, Path]) -> None:
    res = CliRunner().invoke(
        app, ["certify", str(flip["vnni"]), "--targets", "x86-avx2,x86-sse4", "--data", "random", "--samples", "500"]
    )
    assert res.exit_code == 4, res.output
    assert "answers differ across CPUs" in res.output and "flipped" in res.output
    assert "FP32 agrees best with" in res.output and "x86-sse4" in res.output  # the exact side is named
    assert read_certificate(flip["vnni"])["passed"] is False


def test_a_certificate_for_other_bytes_is_ignored(flip: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "m.onnx"
    shutil.copyfile(flip["portable"], copy)
    certificate_path(copy).write_text(json.dumps({"model": {"sha256": "0" * 64}, "passed": True}))
    assert read_certificate(copy) is None


def test_too_few_samples_is_inconclusive_exit_4(flip: dict[str, Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["certify", str(flip["portable"]), "--targets", "native", "--data", "random", "--samples", "20"]
    )
    assert res.exit_code == 4, res.output
    assert "INCONCLUSIVE" in res.output and ">= 500" in res.output


def test_certify_needs_data_or_random(flip: dict[str, Path]) -> None:
    with pytest.raises(UsageError, match="--data"):
        certify(flip["portable"], CertifyConfig(targets=("native",)))
    with pytest.raises(UsageError, match="unknown certify target"):
        CertifyConfig(targets=("x86-avx9",))


def test_without_qemu_exit_3_names_the_package(flip: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingDependencyError, match="apt-get install qemu-user"):
        certify(flip["portable"], CertifyConfig(targets=("x86-avx2",), data="random", samples=500), write=False)


def test_cpus_qemu_cannot_emulate_are_listed_not_skipped() -> None:
    avx2 = {"sse4_2", "avx2"}
    assert set(not_checkable(avx2)) == {"x86-avx512", "x86-vnni"}
    assert set(not_checkable(avx2 | {"avx512bw", "avx512_vnni"})) == {"x86-avx512"}
    assert describe_host(avx2 | {"avx512bw", "avx512_vnni"}).startswith("x86-64 with VNNI")


@pytest.mark.slow
def test_certify_on_arm64_matches_native(flip: dict[str, Path]) -> None:
    """The aarch64 root is built by `edgecnn certify --prepare` (.ci/run does it before the tests)."""
    from edgecnn.certify import is_prepared

    if not is_prepared():
        if os.environ.get("EDGECNN_REQUIRE_EMULATION"):
            pytest.fail("EDGECNN_REQUIRE_EMULATION=1 but the aarch64 root is not prepared: edgecnn certify --prepare")
        pytest.skip("the aarch64 root is not prepared (edgecnn certify --prepare)")
    cfg = CertifyConfig(targets=("arm64", "arm64-dot"), data="random", samples=500)
    rep = certify(flip["portable"], cfg, write=False)
    assert rep.passed, rep.to_dict()
    assert "ASIMDDP" in rep.targets["arm64-dot"].cpu_features and "ASIMDDP" not in rep.targets["arm64"].cpu_features
    rep = certify(flip["vnni"], cfg, write=False)  # ARM kernels are exact: they agree with FP32, not with AVX2
    assert all(t.agreement_reference == 1.0 for name, t in rep.targets.items() if name != "native")


def test_fallback_ladder_and_budget_search_keep_the_target(tiny_onnx: Path) -> None:
    from edgecnn.quantize.search import bar_ladder, candidates

    base = QuantizeConfig.int8(target="x86-vnni")
    tried = [*candidates(base, tiny_onnx), *bar_ladder(base, tiny_onnx)]
    assert tried and all(c.target == QuantTarget.x86_vnni and not c.seven_bit_weights for c in tried)


def test_serve_metadata_carries_the_certificate_without_paths(flip: dict[str, Path]) -> None:
    from edgecnn.runtime.classifier import read_metadata
    from edgecnn.serve.protocol_v2 import model_metadata

    cert = {"verdict": "PASS", "samples": 500, "targets": {"x86-avx2": {"agreement_native": 1.0}}, "model": {}}
    out = model_metadata("flip", read_metadata(flip["portable"]), certificate=cert)
    assert out["parameters"]["edgecnn.certificate"]["targets"] == {"x86-avx2": 1.0}
    assert "parameters" not in model_metadata("flip", read_metadata(flip["portable"]))

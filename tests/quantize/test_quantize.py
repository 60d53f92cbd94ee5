"""Quantization of a real trained model: INT8 accuracy bar, size, structure; FP16 agreement; errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import write_png

from edgecnn import Classifier
from edgecnn.errors import InputError, UsageError
from edgecnn.quantize import QuantizeConfig, quantize


@pytest.fixture(scope="module")
def int8(mnist_onnx: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return quantize(
        mnist_onnx,
        tmp_path_factory.mktemp("q") / "m.int8.onnx",
        QuantizeConfig.int8(),
        calibration="mnist5k",
        eval_data="mnist5k",
        measure_speed=True,
    )


def test_int8_meets_the_bars(int8, mnist_onnx: Path) -> None:  # type: ignore[no-untyped-def]
    acc = int8.accuracy
    assert acc["n"] == 1000
    assert acc["accuracy_delta_pp"] >= -0.5  # ≤ 0.5 pp lost against FP32
    assert acc["top1_agreement"] >= 0.98 and acc["passed"]
    assert int8.size_ratio >= 3.0
    assert int8.speed["before"]["throughput_batch32"] > 0 and int8.speed["after"]["p50_ms_batch1"] > 0


def test_every_conv_but_the_float_stem_runs_as_qlinearconv(int8) -> None:  # type: ignore[no-untyped-def]
    import onnx

    cov = int8.coverage
    assert cov["quantized_ops"].get("QLinearConv") == 2 and cov["float"] == 1  # the 1-channel stem stays float
    assert sum(cov["float_ops"].get(op, 0) for op in ("Conv", "FusedConv")) == 1
    ops = Counter(n.op_type for n in onnx.load(str(int8.path)).graph.node)
    assert ops["QuantizeLinear"] >= 1 and ops["DequantizeLinear"] >= 4 and ops["Conv"] == 3  # QDQ on disk
    info = Classifier(int8.path).metadata.quantization
    assert any("conv" in name for name in info["float_stem"]) and info["float_stem_convs"] == 1
    assert any("kept in float" in w for w in int8.warnings) and not any("still run" in w for w in int8.warnings)
    assert info["session"] == {"disabled_optimizers": ["QDQPropagationTransformer"]}


def test_without_float_stem_every_conv_is_quantized(mnist_onnx: Path, tmp_path: Path) -> None:
    report = quantize(
        mnist_onnx,
        tmp_path / "all.int8.onnx",
        QuantizeConfig.int8(float_stem=False, calibration_samples=32),
        calibration="calibration/mnist",
        measure_speed=False,
    )
    assert report.coverage["quantized_ops"].get("QLinearConv") == 3 and report.coverage["float"] == 0
    assert report.quantization["float_stem"] == [] and "session" not in report.quantization


def test_metadata_is_carried_and_extended(int8, mnist_onnx: Path) -> None:  # type: ignore[no-untyped-def]
    q = Classifier(int8.path).metadata
    base = Classifier(mnist_onnx).metadata
    assert q.labels == base.labels and q.input == base.input
    info = q.quantization
    assert info["mode"] == "int8" and info["per_channel"] and info["activation_type"] == "uint8"
    assert info["calibration_samples"] == 256 and len(info["calibration_sha256"]) == 64


@pytest.mark.needs_tf
@pytest.mark.slow  # runs the Keras original (TensorFlow's import)
def test_parity_uses_int8_bars_against_keras(int8, mnist_trained) -> None:  # type: ignore[no-untyped-def]
    from edgecnn.parity import run_parity

    report = run_parity(mnist_trained.model_path, int8.path, "mnist5k")
    assert report.bars.mode == "int8" and report.passed, report.failures


def test_fp16_agrees_with_fp32(mnist_onnx: Path, tmp_path: Path) -> None:
    r = quantize(mnist_onnx, tmp_path / "m.fp16.onnx", QuantizeConfig.fp16(), eval_data="mnist5k", measure_speed=False)
    assert r.accuracy["top1_agreement"] >= 0.995 and r.accuracy["max_abs_diff"] <= 1e-2
    clf = Classifier(r.path)
    x = np.zeros((2, 28, 28, 1), np.float32)
    assert clf.predict_proba(x).dtype == np.float32  # float32 IO kept
    assert 1.8 < r.size_ratio < 2.2


def test_default_name_and_dynamic_warning(mnist_onnx: Path, tmp_path: Path) -> None:
    import shutil

    src = tmp_path / "m.onnx"
    shutil.copy(mnist_onnx, src)
    with pytest.warns(UserWarning, match="SLOWER on CPU"):
        r = quantize(src, None, QuantizeConfig.dynamic(), measure_speed=False)
    assert r.path == tmp_path / "m.dynamic.onnx" and r.warnings


def test_bad_calibration_input(mnist_onnx: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image files"):
        quantize(mnist_onnx, tmp_path / "a.onnx", calibration=str(empty), measure_speed=False)
    few = tmp_path / "few"
    for d in range(10):
        write_png(few / str(d) / "x.png", size=(28, 28), mode="L")
    with pytest.raises(InputError, match="asked for 20 samples but it holds 10"):  # only an explicit count
        quantize(mnist_onnx, tmp_path / "b.onnx", QuantizeConfig.int8(calibration_samples=20), calibration=str(few))
    wrong = tmp_path / "wrong"
    write_png(wrong / "a" / "x.png")
    with pytest.raises(InputError, match=r"only 1 readable samples .* at least 10 are needed"):
        quantize(
            mnist_onnx,
            tmp_path / "c.onnx",
            QuantizeConfig.int8(calibration_samples=1),
            calibration=str(wrong),
            measure_speed=False,
        )
    assert not list(tmp_path.glob("*.onnx"))  # nothing half-written


def test_int8_without_calibration_on_a_model_without_offline_data(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs calibration data"):
        quantize(tiny_onnx, tmp_path / "t.onnx", measure_speed=False)


def test_calibration_folder_is_disjoint_from_test_split() -> None:
    """The committed calibration/mnist set comes from the train split: none of it is in the test split."""
    from PIL import Image

    from edgecnn.data import load_source

    root = Path(__file__).resolve().parents[2] / "calibration" / "mnist"
    files = sorted(root.rglob("*.png"))
    assert len(files) >= 100
    test = {x.tobytes() for x in load_source("mnist5k", split="test").x[..., 0]}
    assert not any(np.asarray(Image.open(f)).tobytes() in test for f in files)
    counts = Counter(f.parent.name for f in files)
    assert len(counts) == 10 and max(counts.values()) - min(counts.values()) <= 1


@pytest.mark.needs_tf
@pytest.mark.slow
def test_catsdogs_variants_run_through_classifier(tmp_path: Path) -> None:
    from edgecnn.export import ExportConfig, export_keras

    fp32 = export_keras("zoo:catsdogs-cnn", tmp_path / "cd.onnx", ExportConfig(parity_samples=8)).path
    calib = tmp_path / "calib"
    for cls in ("cat", "dog"):
        for i in range(8):
            write_png(calib / cls / f"{i}.png", size=(200, 150), seed=i + (100 if cls == "dog" else 0))
    for cfg, kw in (
        (QuantizeConfig.int8(calibration_samples=16), {"calibration": str(calib)}),
        (QuantizeConfig.fp16(), {}),
    ):
        r = quantize(fp32, None, cfg, measure_speed=True, **kw)
        assert r.speed["after"]["throughput_batch32"] > 0 and r.speed["after"]["p50_ms_batch1"] > 0
        pred = Classifier(r.path).predict(calib / "cat" / "0.png")
        assert pred.label in ("cat", "dog")


@pytest.mark.slow
def test_accuracy_budget_keeps_the_fastest_within_budget(mnist_onnx: Path, tmp_path: Path) -> None:
    from edgecnn.quantize import search_within_budget

    result = search_within_budget(
        mnist_onnx,
        tmp_path / "best.int8.onnx",
        0.5,
        calibration=str(Path(__file__).resolve().parents[2] / "calibration" / "mnist"),
        eval_data="mnist5k",
        base=QuantizeConfig.int8(calibration_samples=200),  # the committed set holds 200 digits
    )
    tried = result.tried
    assert len(tried) >= 6 and {t["config"].split()[2] for t in tried} == {"per-channel", "per-tensor"}
    fitting = [t for t in tried if t["within_budget"]]
    assert fitting and result.chosen.path == tmp_path / "best.int8.onnx" and result.chosen.path.is_file()
    assert result.chosen.speed["after"]["throughput_batch32"] == max(t["throughput_batch32"] for t in fitting)
    with pytest.raises(UsageError, match=">= 0, got -1"):  # nothing can lose less than nothing
        search_within_budget(mnist_onnx, tmp_path / "never.onnx", -1.0, calibration="mnist5k", eval_data="mnist5k")
    assert not (tmp_path / "never.onnx").exists()


def test_calibration_reader_uses_equal_batches() -> None:
    from edgecnn.quantize.calibration import ArrayReader

    reader = ArrayReader("input", np.zeros((200, 2), np.float32))
    sizes = []
    while (batch := reader.get_next()) is not None:
        sizes.append(len(batch["input"]))
    assert sum(sizes) == 200 and len(set(sizes)) == 1 and sizes[0] == 25
    reader.rewind()
    assert reader.get_next() is not None

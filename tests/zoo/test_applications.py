"""The keras.applications nets people deploy: listed without TensorFlow, built at a chosen size and width,
and — trained on the real digits the project ships — exported, quantized to INT8 within the bars with
edgecnn's defaults, and classifying a folder like every other zoo model."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import memory_hog

from edgecnn import zoo
from edgecnn.errors import UsageError
from edgecnn.runtime.metadata import OutputKind

APPS = {  # name -> params (include_top=False + a 10-way Dense head; ResNet50 adds the 12-parameter caffe conv)
    "mobilenetv2": 2_270_794,
    "mobilenetv3small": 944_890,
    "mobilenetv3large": 3_005_962,
    "efficientnetb0": 4_062_381,
    "resnet50": 23_608_214,
}
SIZE = 32  # keras.applications' minimum input
# Trained at 32×32 on mnist5k, augmented, for the INT8 accuracy bars: MobileNetV3Small, whose blocks hold every
# kind the others have but the plain 3×3 convolutions (depthwise, inverted residuals, squeeze-excite,
# hard-swish); the others are exported and quantized from their random initialisation (what runs in INT8 and why
# does not depend on the weights). EDGECNN_TRAIN_ALL_APPLICATIONS=1 trains all five, as README's "hold the bars"
# sentence reports (~15 min on 2 cores: MobileNetV2 alone ~6 min, its INT8 within the bars after 10 epochs;
# ResNet50 after 6; EfficientNetB0 trained from scratch on 3,600 digits (89% on the test split) agrees on 96.2%,
# 97.4% with its squeeze-excite and SiLU in float, and no rung of the fallback ladder reaches the 98% bar:
# refused loudly, as tested below)
TRAIN_EPOCHS = {"mobilenetv2": 10, "mobilenetv3small": 8, "mobilenetv3large": 8, "efficientnetb0": 10, "resnet50": 6}
TRAINED = set(TRAIN_EPOCHS) if os.environ.get("EDGECNN_TRAIN_ALL_APPLICATIONS") else {"mobilenetv3small"}
MISSES_INT8_BARS = {"efficientnetb0"}
XDIST_PRIORITY = 3  # the trained net is among the longest units of work: started first (tests/conftest.py)


def test_applications_are_listed_with_their_options() -> None:
    assert set(APPS) <= set(zoo.names())
    for name, params in APPS.items():
        spec = zoo.get_spec(name)
        assert spec.params == params and spec.input_shape == (224, 224, 3) and spec.data == "mnist5k"
        assert "input_size" in spec.options and "weights" in spec.options
        assert ("alpha" in spec.options) == name.startswith("mobilenet")
    assert zoo.metadata_for("mobilenetv2", 96).input.sample_shape == (96, 96, 3)
    assert zoo.metadata_for("mobilenetv2").input.sample_shape == (224, 224, 3)


def test_each_family_records_its_own_preprocessing() -> None:
    """What keras.applications.<family>.preprocess_input does, so that ImageNet weights see their inputs."""
    v2 = zoo.metadata_for("mobilenetv2").preprocess  # "tf" mode: [-1, 1]
    assert (v2.scale, v2.offset, v2.model_rescales) == (1 / 127.5, -1.0, False)
    for name in ("mobilenetv3small", "mobilenetv3large", "efficientnetb0", "resnet50"):  # Rescaling inside
        pre = zoo.metadata_for(name).preprocess
        assert (pre.scale, pre.offset, pre.model_rescales) == (1.0, 0.0, True), name


def test_options_an_architecture_does_not_take_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="fixed input 28×28×1; drop --input-size"):
        zoo.get_spec("mnist-cnn").sized(64)
    with pytest.raises(UsageError, match=r"resnet50 does not take --alpha \(it takes --input-size, --weights\)"):
        zoo.get_spec("resnet50").builder_options(alpha=0.5)
    assert zoo.get_spec("mobilenetv2").builder_options(input_size=None, alpha=0.5) == {"alpha": 0.5}


@pytest.mark.slow  # builds each net twice, ~12 s in all
@pytest.mark.needs_tf
@pytest.mark.parametrize("name", list(APPS))
def test_parameter_counts_at_any_input_size(name: str) -> None:
    for size in (224, SIZE):
        model = zoo.build(name, input_size=size)
        assert model.count_params() == APPS[name], (name, size)
        assert tuple(model.inputs[0].shape[1:]) == (size, size, 3)


@pytest.mark.slow  # builds MobileNetV2 and three refusals through Keras, ~6 s
@pytest.mark.needs_tf
def test_width_multiplier_and_bad_options() -> None:
    narrow = zoo.build("mobilenetv2", input_size=SIZE, alpha=0.35)
    assert narrow.count_params() < APPS["mobilenetv2"] / 3
    with pytest.raises(UsageError, match="--input-size must be >= 32"):
        zoo.build("mobilenetv2", input_size=16)
    with pytest.raises(UsageError, match=r"--alpha .* must be in \(0, 2\]"):
        zoo.build("mobilenetv3small", alpha=0)
    with pytest.raises(UsageError, match="--weights must be 'imagenet' or none"):
        zoo.build("resnet50", weights="/tmp/my.h5")


@pytest.fixture(scope="module", params=list(APPS))
def deployed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each application at 32×32 RGB — trained on the digits (``TRAINED``) or as initialised, saved with the
    sidecar training writes —, exported, and quantized to INT8 with edgecnn's defaults (calibrated on mnist5k;
    the trained ones held to the accuracy bars on the whole test split, with the fallback ladder)."""
    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.quantize import QuantizeConfig, quantize

    name = request.param
    work = tmp_path_factory.mktemp(name)
    with memory_hog(tmp_path_factory) if name == "resnet50" else contextlib.nullcontext():  # ~9 GB calibrating
        trained = _trained(name, work) if name in TRAINED else None
        keras_path = trained.model_path if trained else _initialised(name, work)
        exported = export_keras(keras_path, work / f"{name}.onnx", ExportConfig(parity_samples=32))
        eval_data = "mnist5k" if trained else None
        int8 = quantize(
            exported.path, None, QuantizeConfig.int8(), calibration="mnist5k", eval_data=eval_data, measure_speed=False
        )
    return {"name": name, "trained": trained, "exported": exported, "int8": int8, "work": work}


def _trained(name: str, work: Path) -> Any:
    from edgecnn.train import TrainConfig, train

    return train(name, work / "runs", TrainConfig(input_size=SIZE, epochs=TRAIN_EPOCHS[name], verbose=0))


def _initialised(name: str, work: Path) -> Path:
    """The net as ``zoo.build`` makes it (seeded), saved with the sidecar ``train`` writes beside a model."""
    import keras

    from edgecnn.keras_io import write_sidecar

    keras.utils.set_random_seed(0)
    path = work / f"{name}.keras"
    zoo.build(name, input_size=SIZE).save(path)
    meta = zoo.metadata_for(name, SIZE)
    sidecar = {"labels": list(meta.labels), "preprocess": meta.preprocess.to_dict(), "output": meta.output.value}
    write_sidecar(path, {**sidecar, "layout": meta.input.layout.value, "zoo": name, "data": "mnist5k"})
    return path


def _trained_only(deployed: dict[str, Any]) -> None:
    if deployed["trained"] is None:
        pytest.skip(f"{deployed['name']} is not trained in this run (EDGECNN_TRAIN_ALL_APPLICATIONS=1 trains it)")


@pytest.mark.slow
@pytest.mark.needs_tf
def test_exports_with_parity_and_quantizes_what_it_can(deployed: dict[str, Any]) -> None:
    name, exported, int8 = deployed["name"], deployed["exported"], deployed["int8"]
    assert exported.passed and exported.parity.max_abs_diff <= 1e-4, exported.parity.failures
    assert exported.parity.agreement == 1.0 or exported.parity.ties, exported.parity.failures
    assert exported.metadata.input.sample_shape == (SIZE, SIZE, 3)
    assert int8.coverage["quantized"] > 0
    assert int8.size_ratio > 2.5  # INT8 weights (per-channel scales and the float stem weigh on the small nets)
    assert int8.quantization["target"] == "portable", name


@pytest.mark.slow
@pytest.mark.needs_tf
def test_trains_and_quantizes_within_the_int8_bars(deployed: dict[str, Any]) -> None:
    _trained_only(deployed)
    name, trained, exported, int8 = (deployed[k] for k in ("name", "trained", "exported", "int8"))
    assert trained.test_accuracy >= 0.80, f"{name}: {trained.test_accuracy:.1%} on the test split"
    assert exported.parity.agreement == 1.0
    acc = int8.accuracy
    assert acc is not None and acc["n"] == 1000  # the whole mnist5k test split
    if name in MISSES_INT8_BARS:  # a known gap: refused loudly, never passed off as within the bars
        assert not acc["passed"], f"{name} now holds the INT8 bars: take it out of MISSES_INT8_BARS"
        assert len(int8.quantization["fallback"]) >= 4  # the default and every rung of the ladder were tried
        assert any(w.startswith("no INT8 configuration tried holds the bars") for w in int8.warnings)
        return
    assert acc["passed"], f"{name}: {acc['failures']} ({int8.warnings})"
    assert acc["accuracy_delta_pp"] >= -0.5 and acc["top1_agreement"] >= 0.98
    assert abs(acc["reference_accuracy"] - trained.test_accuracy) <= 0.005  # the FP32 export answers as Keras


EXPECTED_ROLES = {  # the parts of each network users ask about, all running as INT8 kernels
    "mobilenetv2": {"depthwise conv", "pointwise conv", "residual Add"},
    "mobilenetv3small": {"depthwise conv", "pointwise conv", "squeeze-excite", "hard-swish", "residual Add"},
    "mobilenetv3large": {"depthwise conv", "pointwise conv", "squeeze-excite", "hard-swish", "residual Add"},
    "efficientnetb0": {"depthwise conv", "pointwise conv", "squeeze-excite", "SiLU", "residual Add"},
    "resnet50": {"conv", "pointwise conv", "residual Add"},
}


@pytest.mark.slow
@pytest.mark.needs_tf
def test_the_report_says_what_runs_in_int8_and_why_the_rest_is_float(deployed: dict[str, Any]) -> None:
    name, int8 = deployed["name"], deployed["int8"]
    rows = {r["role"]: r for r in int8.anatomy}
    for role in EXPECTED_ROLES[name]:
        assert role in rows, f"{name}: no {role!r} in {sorted(rows)}"
        assert rows[role]["int8"] > 0, f"{name}: {rows[role]}"
    assert all(k.startswith("QLinearConv") for k in rows["depthwise conv" if name != "resnet50" else "conv"]["kernels"])
    for row in int8.anatomy:
        assert row["nodes"] == row["int8"] + row["float"] + row["folded"]
        assert sum(row["float_reasons"].values()) == row["float"], row  # every float node has its reason
    stem = rows["stem conv"]  # the RGB stem stays float by default (ResNet50: its caffe 1×1 conv too), and says why
    assert stem["float"] >= 1 and all("float stem" in why for why in stem["float_reasons"])


@pytest.mark.slow
@pytest.mark.needs_tf
def test_classifies_a_folder_of_real_digits(deployed: dict[str, Any], tmp_path: Path) -> None:
    """28×28 grayscale PNGs in, the model's 32×32 RGB input made from its metadata, one row per file."""
    _trained_only(deployed)
    from PIL import Image

    from edgecnn import Classifier
    from edgecnn.data import load_source
    from edgecnn.runtime.folder import classify_to_file

    ds = load_source("mnist5k", split="test", limit=40)
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, (x, y) in enumerate(zip(ds.x, ds.y, strict=True)):
        Image.fromarray(x[..., 0]).save(folder / f"{i:02d}_{y}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "labels.jsonl"
    clf = Classifier(deployed["int8"].path)
    summary = classify_to_file(clf, folder, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary.ok == 40 and summary.errors == 1 and len(rows) == 41
    good = [r for r in rows if not r.get("error")]
    right = sum(Path(r["path"]).stem.split("_")[1] == r["label"] for r in good)
    assert right >= 30, f"{deployed['name']}: {right}/40 digits right"
    assert clf.metadata.output == OutputKind.softmax and clf.labels == tuple(str(d) for d in range(10))
    by_file = {Path(r["path"]).name: r["label"] for r in good}
    arrays = clf.predict(ds.x[:8])  # the same digits as a uint8 batch: resized and made RGB the same way
    assert [p.label for p in arrays] == [by_file[f"{i:02d}_{y}.png"] for i, y in enumerate(ds.y[:8])]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("mnist-cnn", "--input-size", "64"), "mnist-cnn has a fixed input 28×28×1; drop --input-size"),
        (("resnet50", "--alpha", "0.5"), "resnet50 does not take --alpha"),
        (("mobilenetv2", "--input-size", "16"), "--input-size must be >= 32"),
    ],
)
def test_cli_train_refuses_options_the_architecture_lacks(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    result = CliRunner().invoke(app, ["train", *args, "-o", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not list(tmp_path.iterdir())  # refused before any data is read or file written

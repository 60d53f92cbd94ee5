"""`edgecnn annotate` gives a foreign ONNX classifier (NCHW, its own mean/std, logits) edgecnn's metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from _onnx import build_model, save_model, tensor, value
from onnx import helper
from PIL import Image
from typer.testing import CliRunner

from edgecnn import Classifier
from edgecnn.cli import app

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LABELS = ("tench", "goldfish", "shark", "ray")


def _foreign_onnx(path: Path, size: int = 16) -> Path:
    """What torch.onnx.export would give: NCHW input 'pixel_values', logits out, no edgecnn metadata."""
    rng = np.random.default_rng(7)
    inits = [
        tensor("w", rng.normal(0, 0.5, (6, 3, 3, 3)), np.float32),
        tensor("fc", rng.normal(0, 1.0, (6, len(LABELS))), np.float32),
    ]
    nodes = [
        helper.make_node("Conv", ["pixel_values", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["logits"]),
    ]
    inputs = [value("pixel_values", ["batch", 3, size, size])]
    outputs = [value("logits", ["batch", len(LABELS)])]
    return save_model(build_model(nodes, inputs, outputs, inits, name="foreign", producer="pytorch"), path)


def _annotate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["annotate", *args])
    return result.exit_code, result.output


@pytest.fixture()
def foreign(tmp_path: Path) -> Path:
    return _foreign_onnx(tmp_path / "foreign.onnx")


def test_annotated_model_predicts_as_computed_by_hand(foreign: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    out = tmp_path / "annotated.onnx"
    code, text = _annotate(
        str(foreign), "-o", str(out), "--labels", str(labels), "--layout", "NCHW", "--size", "16,16",
        "--mean", ",".join(map(str, MEAN)), "--std", ",".join(map(str, STD)), "--output", "logits",
    )  # fmt: skip
    assert code == 0, text
    assert "4 labels, NCHW 16x16x3" in text
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (16, 16, 3), np.uint8))
    x = (np.asarray(img, np.float32) / 255.0 - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    logits = ort.InferenceSession(str(foreign)).run(None, {"pixel_values": x.transpose(2, 0, 1)[None]})[0][0]
    want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    pred = Classifier(out).predict(img)
    np.testing.assert_allclose(pred.probabilities, want, rtol=1e-5, atol=1e-6)
    assert pred.label == LABELS[int(np.argmax(want))]
    assert foreign.read_bytes() != out.read_bytes()  # the source is left alone
    assert not list(tmp_path.glob(".edgecnn-tmp-*"))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--layout", "NHWC", "--size", "16,16", "--labels", ",".join(LABELS)], "that is NCHW"),
        (["--layout", "NCHW", "--size", "32,32", "--labels", ",".join(LABELS)], "[N, 3, 32, 32]"),
        (["--layout", "NCHW", "--size", "16", "--labels", "a,b,c"], "3 labels but the graph's output 'logits' has 4"),
    ],
    ids=["layout", "size", "labels"],
)
def test_contradictions_are_refused_with_exit_3(foreign: Path, tmp_path: Path, args: list[str], fragment: str) -> None:
    out = tmp_path / "nope.onnx"
    code, text = _annotate(str(foreign), "-o", str(out), *args)
    assert code == 3, text
    assert fragment in text and "check --layout, --size and --labels" in text, text
    assert not out.exists()


def test_a_logits_graph_called_softmax_is_refused(foreign: Path, tmp_path: Path) -> None:
    from edgecnn.annotate import AnnotateConfig, annotate
    from edgecnn.errors import MetadataError
    from edgecnn.runtime.metadata import Layout

    config = AnnotateConfig(labels=LABELS, layout=Layout.NCHW, height=16, width=16)
    with (
        pytest.warns(UserWarning, match="MatMul node, not Softmax.*--output logits"),
        pytest.raises(MetadataError, match=r"declared softmax .* not probabilities: .*--output logits"),
    ):
        annotate(foreign, tmp_path / "a.onnx", config)
    assert not (tmp_path / "a.onnx").exists()
    code, text = _annotate(str(foreign), "-o", str(tmp_path / "b.onnx"), "--labels", ",".join(LABELS),
                           "--layout", "NCHW", "--size", "16,16")  # fmt: skip
    assert code == 3 and "--output logits" in text, text


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_bench_quantize_parity_and_serve_take_the_annotated_model(foreign: Path, tmp_path: Path) -> None:
    from conftest import write_png
    from starlette.testclient import TestClient

    from edgecnn.serve import build_app

    out = tmp_path / "annotated.onnx"
    code, text = _annotate(str(foreign), "-o", str(out), "--labels", ",".join(LABELS), "--layout", "NCHW",
                           "--size", "16,16", "--output", "logits")  # fmt: skip
    assert code == 0, text
    for i, label in enumerate(LABELS * 25):  # parity of FP32 (an exact bar) needs 100 samples to resolve
        write_png(tmp_path / "imgs" / label / f"{i}.png", seed=i)
    runs = {
        "bench": ["bench", str(out), "--iterations", "20", "--warmup", "2"],
        "quantize": [
            "quantize",
            str(out),
            "--mode",
            "int8",
            "--calibration",
            str(tmp_path / "imgs"),
            "-o",
            str(tmp_path / "annotated.int8.onnx"),
            "--no-speed",
        ],
        "parity": ["parity", str(out), str(out), "--data", f"folder:{tmp_path / 'imgs'}"],
    }
    for name, args in runs.items():
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (name, result.output)
    img = tmp_path / "imgs" / "ray" / "3.png"
    with TestClient(build_app([tmp_path / "annotated.int8.onnx"])) as client:
        answer = client.post("/v1/classify", content=img.read_bytes()).json()
    assert answer == Classifier(tmp_path / "annotated.int8.onnx").predict(img).to_dict()

"""`edgecnn annotate`'s preprocessing options and presets, what it infers from the graph, how it words errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from _onnx import build_model, save_model, tensor, value
from conftest import make_tiny_onnx
from onnx import helper
from test_annotate import LABELS, _foreign_onnx
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.runtime.metadata import ChannelOrder, CropMode, ModelMetadata, props_of


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output + (str(result.exception) if result.exit_code not in (0, 2, 3, 4) else "")


def _pre(path: Path):  # type: ignore[no-untyped-def]
    return ModelMetadata.from_props(props_of(onnx.load(str(path)))).preprocess


@pytest.fixture()
def foreign(tmp_path: Path) -> Path:
    return _foreign_onnx(tmp_path / "foreign.onnx")  # input [batch, 3, 16, 16]


def test_layout_and_size_are_inferred_from_an_nchw_graph_and_said(foreign: Path, tmp_path: Path) -> None:
    code, text = _run(
        "annotate", str(foreign), "-o", str(tmp_path / "a.onnx"), "--labels", ",".join(LABELS), "--output", "logits"
    )
    assert code == 0, text
    assert "inferred --layout NCHW --size 16,16 from the graph's input shape" in text
    assert "NCHW 16x16x3" in text


def test_layout_and_size_are_inferred_from_an_nhwc_graph(tmp_path: Path) -> None:
    src = make_tiny_onnx(tmp_path / "nhwc.onnx", size=28, channels=1, with_metadata=False)  # [batch, 28, 28, 1]
    code, text = _run("annotate", str(src), "-o", str(tmp_path / "a.onnx"), "--labels", "cat,dog,bird")
    assert code == 0, text
    assert "inferred --layout NHWC --size 28,28" in text


def test_a_shape_that_does_not_say_the_size_asks_for_the_flags(tmp_path: Path) -> None:
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Flatten", ["g"], ["y"])]
    save_model(build_model(nodes, [value("x", ["N", 3, "H", "W"])], [value("y", ["N", 3])]), tmp_path / "dyn.onnx")
    code, text = _run("annotate", str(tmp_path / "dyn.onnx"), "-o", str(tmp_path / "a.onnx"), "--labels", "a,b,c")
    assert code == 2, text
    assert "[N, 3, None, None]" not in text and "[N, 3, N, N]" in text
    assert "give --layout and --size" in text


def test_a_layout_that_cannot_fit_is_refused_naming_the_flag(foreign: Path, tmp_path: Path) -> None:
    code, text = _run(
        "annotate", str(foreign), "-o", str(tmp_path / "a.onnx"), "--labels", ",".join(LABELS),
        "--layout", "NHW", "--size", "16,16",
    )  # fmt: skip
    assert code == 3, text
    assert "--layout NHW implies channels=1" in text and "edgecnn.input" not in text


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["--preset", "torchvision"], ("bilinear", CropMode.center, 0.875, ChannelOrder.RGB, (0.485, 0.456, 0.406))),
        (
            ["--preset", "torchvision", "--interpolation", "bicubic"],
            ("bicubic", CropMode.center, 0.875, ChannelOrder.RGB, (0.485, 0.456, 0.406)),
        ),
        (["--preset", "caffe"], ("bilinear", CropMode.center, 0.875, ChannelOrder.BGR, (103.939, 116.779, 123.68))),
        (["--preset", "inception"], ("bilinear", CropMode.center, 0.875, ChannelOrder.RGB, None)),
        (["--resize", "lanczos", "--crop-mode", "border"], ("lanczos", CropMode.border, 1.0, ChannelOrder.RGB, None)),
        (
            ["--interpolation", "box", "--crop-pct", "0.9", "--channel-order", "bgr"],
            ("box", CropMode.squash, 0.9, ChannelOrder.BGR, None),
        ),
    ],
    ids=["torchvision", "torchvision-bicubic", "caffe", "inception", "resize-alias", "explicit"],
)
def test_presets_and_options_reach_the_metadata(foreign: Path, tmp_path: Path, args: list[str], want: tuple) -> None:
    out = tmp_path / "a.onnx"
    labels = ",".join(LABELS)
    code, text = _run("annotate", str(foreign), "-o", str(out), "--labels", labels, "--output", "logits", *args)
    assert code == 0, text
    pre = _pre(out)
    assert (pre.interpolation, pre.crop_mode, pre.crop_pct, pre.channel_order, pre.mean) == want
    assert pre.fast_decode is False
    if "inception" in args:
        assert (pre.scale, pre.offset) == (pytest.approx(1 / 127.5), -1.0)


def test_an_unknown_preset_is_a_usage_error(foreign: Path, tmp_path: Path) -> None:
    code, text = _run("annotate", str(foreign), "-o", str(tmp_path / "a.onnx"), "--labels", "a,b,c,d", "--preset", "x")
    assert code == 2 and "unknown preset 'x'; choose one of torchvision, inception, caffe" in text, text


def test_info_summarises_a_long_label_list(tmp_path: Path) -> None:
    labels = [f"class_{i:03d}" for i in range(100)]
    src = _foreign_onnx(tmp_path / "f.onnx")
    model = onnx.load(str(src))
    model.graph.node[-1].input[1] = "fc100"
    model.graph.initializer.append(tensor("fc100", np.ones((6, 100), np.float32)))
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 100
    onnx.save_model(model, str(src))
    (tmp_path / "labels.txt").write_text("\n".join(labels))
    out = tmp_path / "a.onnx"
    labels_file = str(tmp_path / "labels.txt")
    code, text = _run("annotate", str(src), "-o", str(out), "--labels", labels_file, "--output", "logits")
    assert code == 0, text
    code, text = _run("info", str(out))
    assert code == 0, text
    assert "100 labels:" in text and "class_050" not in text and "class_099" in text
    code, text = _run("info", str(out), "--json")
    assert json.loads(text)["metadata"]["labels"] == labels

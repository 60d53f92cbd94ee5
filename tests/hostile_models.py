"""A corpus of ONNX files broken the way real files are: hand-edited metadata, another layout, a second input,
a non-image model, truncated bytes, future versions, external data outside the folder, custom operators, a
graph that fails only when it runs. Each builder writes ``folder/NAME.onnx`` and returns its path; ``CASES``
maps a name to (builder, a fragment of the one-line error edgecnn must give).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from _onnx import build_model, tensor, value
from conftest import make_tiny_onnx
from onnx import TensorProto, helper


def _load(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path))


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save_model(model, str(path))
    return path


def _set_meta(model: onnx.ModelProto, key: str, value: str) -> None:
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    entry = model.metadata_props.add()
    entry.key, entry.value = key, value


def _edit_meta(path: Path, key: str, **changes: object) -> Path:
    """Change fields of one JSON metadata value in place (``edgecnn.input``'s layout, say), past the contract."""
    model = _load(path)
    value = json.loads(next(p.value for p in model.metadata_props if p.key == key))
    value.update(changes)
    _set_meta(model, key, json.dumps(value))
    return _save(model, path)


def three_labels_two_outputs(folder: Path) -> Path:
    path = make_tiny_onnx(folder / "labels.onnx", labels=("cat", "dog"))
    model = _load(path)
    _set_meta(model, "edgecnn.labels", json.dumps(["cat", "dog", "bird"]))
    return _save(model, path)


def labels_vs_symbolic_output(folder: Path) -> Path:
    """The output width is symbolic in the graph: only the first real answer shows the mismatch."""
    path = make_tiny_onnx(folder / "symbolic.onnx", labels=("cat", "dog"))
    model = _load(path)
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "classes"
    _set_meta(model, "edgecnn.labels", json.dumps(["cat", "dog", "bird"]))
    return _save(model, path)


def nchw_metadata_nhwc_graph(folder: Path) -> Path:
    return _edit_meta(make_tiny_onnx(folder / "layout.onnx"), "edgecnn.input", layout="NCHW")


def two_graph_inputs(folder: Path) -> Path:
    path = make_tiny_onnx(folder / "two_inputs.onnx")
    model = _load(path)
    model.graph.input.append(value("extra", ["batch", 4]))
    return _save(model, path)


def _vector_model(path: Path, layout: str, height: int, width: int, features: int = 16) -> Path:
    """A (N, ``features``) softmax model over labels a, b, c whose metadata claims ``layout`` H×W×1 input."""
    labels = ("a", "b", "c")
    rng = np.random.default_rng(0)
    w = tensor("w", rng.normal(0, 1, (features, len(labels))), np.float32)
    nodes = [helper.make_node("MatMul", ["input", "w"], ["z"]), helper.make_node("Softmax", ["z"], ["output"], axis=1)]
    spec = {"name": "input", "layout": layout, "height": height, "width": width, "channels": 1, "dtype": "float32"}
    props = {  # raw keys: what the metadata contract itself would refuse to write
        "edgecnn.labels": json.dumps(list(labels)),
        "edgecnn.output": json.dumps("softmax"),
        "edgecnn.preprocess": json.dumps({"color_mode": "L", "scale": 1.0}),
        "edgecnn.input": json.dumps(spec),
    }
    inputs, outputs = [value("input", ["batch", features])], [value("output", ["batch", len(labels)])]
    return _save(build_model(nodes, inputs, outputs, [w], name="vector", props=props), path)


def rank2_claims_image(folder: Path) -> Path:
    """A (N, 16) feature model whose metadata says it takes 4×4 grayscale images."""
    return _vector_model(folder / "rank2.onnx", "NHWC", 4, 4)


def feature_vector_model(folder: Path) -> Path:
    """An honest (N, 16) feature model (layout NC): predict_proba serves it, classify refuses it."""
    return _vector_model(folder / "vector.onnx", "NC", 1, 16)


def float16_metadata_float32_graph(folder: Path) -> Path:
    return _edit_meta(make_tiny_onnx(folder / "dtype.onnx"), "edgecnn.input", dtype="float16")


def sigmoid_metadata_two_units(folder: Path) -> Path:
    path = make_tiny_onnx(folder / "sigmoid.onnx", labels=("cat", "dog"))
    model = _load(path)
    _set_meta(model, "edgecnn.output", json.dumps("sigmoid"))
    return _save(model, path)


def truncated_protobuf(folder: Path) -> Path:
    path = make_tiny_onnx(folder / "truncated.onnx")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def future_ir_version(folder: Path) -> Path:
    path = make_tiny_onnx(folder / "future_ir.onnx")
    model = _load(path)
    model.ir_version = 99
    return _save(model, path)


def future_opset(folder: Path) -> Path:
    path = make_tiny_onnx(folder / "future_opset.onnx")
    model = _load(path)
    model.opset_import[0].version = 99
    return _save(model, path)


def external_data_outside(folder: Path) -> Path:
    """An initializer whose external data points at ``../secret.bin`` (a FIFO: reading it would hang)."""
    path = make_tiny_onnx(folder / "external.onnx")
    model = _load(path)
    fc = next(t for t in model.graph.initializer if t.name == "fc")
    fc.ClearField("raw_data")
    fc.ClearField("float_data")
    fc.data_location = TensorProto.EXTERNAL
    for key, text in (("location", "../secret.bin"), ("offset", "0"), ("length", "48")):
        entry = fc.external_data.add()
        entry.key, entry.value = key, text
    return _save(model, path)


def labels_not_json(folder: Path) -> Path:
    path = make_tiny_onnx(folder / "labels_text.onnx")
    model = _load(path)
    _set_meta(model, "edgecnn.labels", "cat,dog,bird")
    return _save(model, path)


def custom_op_domain(folder: Path) -> Path:
    path = make_tiny_onnx(folder / "custom.onnx")
    model = _load(path)
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.op_type, relu.domain = "EvilRelu", "com.example.evil"
    model.opset_import.append(helper.make_opsetid("com.example.evil", 1))
    return _save(model, path)


def no_metadata(folder: Path) -> Path:
    return make_tiny_onnx(folder / "bare.onnx", with_metadata=False)


def fails_unless_batch_of(folder: Path, batch: int = 4, name: str = "fails.onnx") -> Path:
    """Loads fine, answers batches of exactly ``batch`` and fails at run time on any other size."""
    path = make_tiny_onnx(folder / name)
    model = _load(path)
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    gemm.output[0] = "gemm_out"
    model.graph.initializer.append(tensor("fixed_shape", [batch, 3], np.int64))
    model.graph.node.insert(
        list(model.graph.node).index(gemm) + 1, helper.make_node("Reshape", ["gemm_out", "fixed_shape"], ["logits"])
    )
    return _save(model, path)


# name -> (builder, fragment of the error); every one must be refused at load with exit 3
CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "three_labels_two_outputs": (three_labels_two_outputs, "edgecnn.labels has 3 labels but the graph's output"),
    "nchw_metadata_nhwc_graph": (nchw_metadata_nhwc_graph, "set edgecnn.input.layout to 'NHWC'"),
    "two_graph_inputs": (two_graph_inputs, "the graph has 2 inputs (input, extra)"),
    "rank2_claims_image": (rank2_claims_image, "is [N, 16] (rank 2), but edgecnn.input says NHWC"),
    "float16_metadata_float32_graph": (float16_metadata_float32_graph, "edgecnn.input.dtype is float16"),
    "sigmoid_metadata_two_units": (sigmoid_metadata_two_units, "edgecnn.output is sigmoid (one unit for 2 labels)"),
    "truncated_protobuf": (truncated_protobuf, "not a valid ONNX model"),
    "future_ir_version": (future_ir_version, "ONNX IR version 99 is newer"),
    "future_opset": (future_opset, "uses opset 99, newer than this installation supports"),
    "external_data_outside": (external_data_outside, "points outside the model's folder"),
    "labels_not_json": (labels_not_json, "edgecnn.labels: not valid JSON"),
    "custom_op_domain": (custom_op_domain, "custom operators from domain(s) ['com.example.evil']"),
    "no_metadata": (no_metadata, "model has no edgecnn metadata"),
}

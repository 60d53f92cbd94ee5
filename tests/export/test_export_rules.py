"""edgecnn's additions to tf2onnx (edgecnn.export.tf_rules) and the error for a model that cannot convert."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecnn.errors import ExportError
from edgecnn.export.convert import UnsupportedNode, UnsupportedOpsError, _describe_nodes, _failure_message, layer_of


def test_layer_of_maps_tf_scopes_to_keras_layers() -> None:
    layers = {"convnext_tiny", "stage_0_block_0_depthwise_conv", "dense", "dense_1"}
    name = "convnext_tiny_1/stage_0_block_0_depthwise_conv_1/StatefulPartitionedCall"
    assert layer_of(name, layers, root="convnext_tiny") == "stage_0_block_0_depthwise_conv"
    assert layer_of("model/dense_1/MatMul", layers) == "dense_1"  # an exact name wins over a stripped suffix
    assert layer_of("model/dense_3/MatMul", layers) == "dense"
    assert layer_of("convnext_tiny_1/Erfc", layers, root="convnext_tiny") is None  # the model itself: no layer
    nodes = [UnsupportedNode("m/gelu_1/Erfc", "Erfc", "gelu"), UnsupportedNode("m/gelu_2/Erfc", "Erfc", "gelu_2")]
    assert _describe_nodes(nodes) == "TF ops left unconverted: Erfc ×2 in layers 'gelu', 'gelu_2'"


needs_tf = pytest.mark.needs_tf


@pytest.mark.slow  # traces a Keras model (TensorFlow import)
@needs_tf
def test_allow_inlining_strips_the_xla_no_inline_marks() -> None:
    """tf.function(jit_compile=True) — what Keras wraps a grouped convolution in — marks the function no-inline."""
    import tensorflow as tf

    from edgecnn.export.tf_rules import allow_inlining

    @tf.function(jit_compile=True)
    def inner(x: tf.Tensor) -> tf.Tensor:
        return x * 2.0

    @tf.function(input_signature=(tf.TensorSpec((None, 3), tf.float32),))
    def outer(x: tf.Tensor) -> tf.Tensor:
        return inner(x) + 1.0

    graph_def = outer.get_concrete_function().graph.as_graph_def()
    assert any("_noinline" in f.attr for f in graph_def.library.function)
    marked = allow_inlining(graph_def)
    assert len(marked) == 1 and marked[0].startswith("__inference_inner")
    for function in graph_def.library.function:
        assert not {"_noinline", "_XlaMustCompile"} & set(function.attr)
    assert not any("_XlaMustCompile" in n.attr for n in graph_def.node)
    assert allow_inlining(graph_def) == []


@pytest.mark.slow  # a ConvNeXt-style conversion
@needs_tf
def test_exact_gelu_and_grouped_conv_export(tmp_path: Path) -> None:
    """ConvNeXt's two blockers in a tiny model: the exact GELU (TF Erfc) and a grouped (depthwise) Conv2D."""
    import keras
    import onnx
    import onnxruntime as ort

    from edgecnn.export import ExportConfig, export_keras
    from edgecnn.export.convert import convert

    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 3, groups=4, padding="same", name="grouped")(inputs)
    x = keras.layers.Dense(8, activation="gelu", name="mlp")(x)  # "gelu": approximate=False
    x = keras.layers.Activation(lambda t: keras.activations.gelu(t * 4.0, approximate=False), name="wide_gelu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    report = export_keras(model, tmp_path / "gelu.onnx", ExportConfig(parity_samples=8))
    assert report.passed and report.strategy == "tf2onnx.frozen_graph"
    graph = onnx.load(str(report.path)).graph
    ops = {n.op_type for n in graph.node}
    assert "Erf" in ops and not ops & {"Erfc", "StatefulPartitionedCall"}
    groups = [a.i for n in graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
    assert groups == [4]

    # the GELU itself over a wide range, erfc's tails included (x·4 reaches ±40 on these inputs)
    probe = keras.Model(model.input, model.get_layer("wide_gelu").output)
    rng = np.random.default_rng(0)
    xs = (rng.standard_normal((16, 8, 8, 4)) * 10).astype(np.float32)
    session = ort.InferenceSession(convert(probe, 17).model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: xs})[0]
    want = probe(xs, training=False).numpy()
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, float(np.abs(want).max()))


@pytest.mark.slow  # a conversion that fails on purpose
@needs_tf
def test_unconvertible_op_names_op_layer_and_advice(tmp_path: Path) -> None:
    """No tf2onnx rule for BesselI0e: every strategy fails, and the message says which op, where, what to do."""
    import keras
    import tensorflow as tf

    from edgecnn.export import ExportConfig, export_keras

    class Bessel(keras.layers.Layer):
        def call(self, x: tf.Tensor) -> tf.Tensor:
            return tf.math.bessel_i0e(x)

    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Dense(3, name="features")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Softmax()(Bessel(name="bessel_scale")(x)), name="besselnet")
    with pytest.raises(ExportError) as info:
        export_keras(model, tmp_path / "b.onnx", ExportConfig(parity_samples=4))
    message = str(info.value)
    assert message.startswith("besselnet: no conversion strategy worked (opset 17)")
    for strategy in ("tf2onnx.frozen_graph", "tf2onnx.from_function", "keras.export(onnx)"):
        assert f"  {strategy}: " in message
    assert "BesselI0e ×1 in layer 'bessel_scale'" in message
    assert "BesselI0e: tf2onnx has no conversion rule for it at any opset" in message
    assert "--unsafe does not help" in message
    assert not (tmp_path / "b.onnx").exists()


@needs_tf
@pytest.mark.slow  # reads tf2onnx's conversion rules (TensorFlow's import)
def test_advice_names_the_opset_that_converts_an_op() -> None:
    """tf2onnx converts BitwiseAnd from opset 18: at 17 the advice is that opset; a function call gets its own."""
    nodes = (
        UnsupportedNode("m/mask_1/BitwiseAnd", "BitwiseAnd", "mask"),
        UnsupportedNode("m/conv_1/StatefulPartitionedCall", "StatefulPartitionedCall", "conv"),
    )
    err = UnsupportedOpsError(_describe_nodes(nodes), nodes)
    message = _failure_message("m", 17, [f"tf2onnx.frozen_graph: {err}"], [err])
    assert "BitwiseAnd ×1 in layer 'mask'" in message
    assert "BitwiseAnd: tf2onnx converts it from opset 18: export with --opset 18" in message
    assert "StatefulPartitionedCall: a TensorFlow function call that was not inlined" in message


def test_tf2onnx_runs_without_its_per_pass_copies_and_with_them_when_that_raises(monkeypatch) -> None:
    """tf2onnx deep-copies the graph before each optimizer pass unless TF2ONNX_CATCH_ERRORS is set (a quarter
    of a big net's conversion); edgecnn sets it, and converts once more without it only when that raises."""
    import os

    from edgecnn.export.convert import CATCH_ERRORS, _tf2onnx_without_copies

    seen: list[str | None] = []

    def converts(value: int, *, fail_first: bool) -> int:
        seen.append(os.environ.get(CATCH_ERRORS))
        if fail_first and len(seen) == 1:
            raise ValueError("an optimizer pass raised")
        return value

    monkeypatch.setenv(CATCH_ERRORS, "the user's")
    assert _tf2onnx_without_copies(converts, 7, fail_first=False) == 7
    assert seen == ["FALSE"]
    seen.clear()
    assert _tf2onnx_without_copies(converts, 8, fail_first=True) == 8
    assert seen == ["FALSE", None]  # the retry: tf2onnx's default, a failing pass skipped
    assert os.environ[CATCH_ERRORS] == "the user's"  # restored either way
    monkeypatch.delenv(CATCH_ERRORS)
    with pytest.raises(ValueError):
        _tf2onnx_without_copies(lambda: (_ for _ in ()).throw(ValueError("always")))
    assert CATCH_ERRORS not in os.environ


def test_the_switch_is_the_one_tf2onnx_reads() -> None:
    import importlib.util

    from edgecnn.export.convert import CATCH_ERRORS

    spec = importlib.util.find_spec("tf2onnx")
    if spec is None or spec.origin is None:
        pytest.skip("tf2onnx is not installed")
    source = (Path(spec.origin).parent / "convert.py").read_text(encoding="utf-8")
    constants = (Path(spec.origin).parent / "constants.py").read_text(encoding="utf-8")
    assert f'ENV_TF2ONNX_CATCH_ERRORS = "{CATCH_ERRORS}"' in constants
    assert "if constants.ENV_TF2ONNX_CATCH_ERRORS in os.environ:" in source

"""Find a convnet's thin stem: the convolutions that read raw 1–4-channel images, and the cheap ops after them.

Why keep it in float: an INT8 convolution over a grayscale/RGB input has an im2col depth of only
9–36 (3×3 × C), too thin for onnxruntime's U8S8 GEMM kernels; measured on mnist-cnn (batch 32, 2 threads)
its first QLinearConv took 6× the time of the same convolution in FP32 (NCHWc kernels). TFLite/XNNPACK
and OpenVINO ship dedicated first-layer kernels; with onnxruntime the fast mix is a float stem feeding
INT8 everywhere else. The pooling right after the stem stays float too: quantized, onnxruntime would run
it as a uint8 NCHW MaxPool, the slowest kernel in that graph (and its QDQ propagation would move the
quantization above the pooling again, so the engine turns that propagation off for such models).
"""

from __future__ import annotations

from typing import Any

# ops between the stem convolution and the next compute op that may stay float with it
# (Pad: Keras puts a ZeroPadding2D before ResNet50's first pooling; quantized, the pooling after it would run
# as the slow uint8 NCHW MaxPool, 11% of ResNet50's INT8 time at 224×224)
_FOLLOWERS = {
    "Relu",
    "Clip",
    "LeakyRelu",
    "MaxPool",
    "AveragePool",
    "BatchNormalization",
    "Add",
    "Mul",
    "Sigmoid",
    "Pad",
}
# ops between the graph input and the stem (rescaling, layout): quantized, their output would carry a
# DequantizeLinear into the stem, and onnxruntime would then quantize the stem's weights on its own
_LEADERS = {"Mul", "Add", "Sub", "Div", "Transpose", "Reshape", "Cast", "Identity", "Pad"}
THIN_CHANNELS = 4  # grayscale, RGB, RGBA


def stem_nodes(model: Any, max_channels: int = THIN_CHANNELS) -> list[str]:
    """Names of the thin-input convolutions (group 1, ≤ ``max_channels`` input channels) and their followers.

    A follower is kept only while it is the sole consumer in a chain of element-wise/pooling ops;
    the chain stops at the next convolution or matrix product, which will be quantized. Leaders are
    the rescaling/layout ops between the graph input and the stem.
    """
    graph = getattr(model, "graph", model)  # a ModelProto or its GraphProto
    weights = {t.name: tuple(t.dims) for t in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    producer: dict[str, Any] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
        for name in node.output:
            producer[name] = node
    inputs = {i.name for i in graph.input} - set(weights)

    def thin(node: Any) -> bool:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in weights:
            return False
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        w = weights[node.input[1]]
        return group == 1 and len(w) >= 2 and w[1] <= max_channels

    def reads_image(node: Any) -> bool:
        """Fed by the graph input through leaders, followers and other thin convs only: a squeeze-excite
        convolution over 4 pooled channels deep in the network is thin, but no stem."""
        name = node.input[0]
        for _ in range(64):
            if name in inputs:
                return True
            up = producer.get(name)
            if up is None or not (up.op_type in _LEADERS | _FOLLOWERS or thin(up)):
                return False
            activations = [i for i in up.input if i and i not in weights]
            if len(activations) != 1:
                return False
            name = activations[0]
        return False

    picked: list[str] = []
    for node in graph.node:
        if not thin(node) or not reads_image(node):
            continue
        picked.append(node.name)
        lead = producer.get(node.input[0])
        while lead is not None and lead.op_type in _LEADERS and len(consumers.get(lead.output[0], [])) == 1:
            picked.append(lead.name)
            activations = [i for i in lead.input if i and i not in weights]
            lead = producer.get(activations[0]) if len(activations) == 1 else None
        current = node
        while len(current.output) == 1 and len(nxt := consumers.get(current.output[0], [])) == 1:
            follower = nxt[0]
            if follower.op_type not in _FOLLOWERS or not follower.name:
                break
            picked.append(follower.name)
            current = follower
    return list(dict.fromkeys(name for name in picked if name))

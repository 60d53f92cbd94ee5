"""Marker skip logic and shared fixtures. Finds TensorFlow, never imports it here."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator

import pytest

# Keep pytest's rewritten test modules (and edgecnn's bytecode, in the CLI processes the tests start) between
# runs even where PYTHONDONTWRITEBYTECODE is set, as on the project's machines: without it every worker
# re-parses and rewrites every test module in every run (~6 s a worker, a tenth of the fast set).
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

HAS_TF = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("tf2onnx") is not None
HAS_RAY = importlib.util.find_spec("ray") is not None


def _available_providers() -> list[str]:
    try:
        import onnxruntime as ort

        return list(ort.get_available_providers())
    except ImportError:
        return []


def _has_cuda() -> bool:
    return "CUDAExecutionProvider" in _available_providers()


def _required(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _order_for_xdist(items)
    if _required("EDGECNN_REQUIRE_TF") and not HAS_TF:
        raise pytest.UsageError("EDGECNN_REQUIRE_TF=1 but TensorFlow/tf2onnx cannot be found")
    if _required("EDGECNN_REQUIRE_RAY") and not HAS_RAY:
        raise pytest.UsageError("EDGECNN_REQUIRE_RAY=1 but ray cannot be found (pip install 'edgecnn[ray]')")
    has_cuda = _has_cuda()
    if _required("EDGECNN_REQUIRE_GPU") and not has_cuda:  # a GPU run must not pass by skipping every GPU test
        raise pytest.UsageError(
            "EDGECNN_REQUIRE_GPU=1 but onnxruntime has no CUDAExecutionProvider: "
            f"onnxruntime.get_available_providers() = {_available_providers()}; install onnxruntime-gpu "
            "(not beside onnxruntime) and the CUDA/cuDNN libraries it links (`edgecnn doctor --gpu`)"
        )
    skip_tf = pytest.mark.skip(reason="needs the [export] extra (TensorFlow, tf2onnx)")
    skip_gpu = pytest.mark.skip(reason="needs onnxruntime's CUDAExecutionProvider")
    skip_ray = pytest.mark.skip(reason="needs the [ray] extra (ray[data])")
    for item in items:
        if "needs_tf" in item.keywords and not HAS_TF:
            item.add_marker(skip_tf)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
        if "needs_ray" in item.keywords and not HAS_RAY:
            item.add_marker(skip_ray)


# modules whose tests are split over the workers by their parameter (one net, one family a unit), not kept whole
SPLIT_BY_PARAMETER = frozenset({"tests/zoo/test_applications.py", "tests/export/test_export_zoo.py"})
# the keras.applications exports that peak at 7-20 GB: one unit of work, so that they run one after another on
# one worker while the other works through the rest (a lock between two workers would leave one waiting)
EXPORT_MEMORY_HOGS = ("inception_resnet_v2", "nasnet", "convnext", "inception_v3")


def _order_for_xdist(items: list[pytest.Item]) -> None:
    """The longest units of work first: the workers take units in collection order (``--no-loadscope-reorder``),
    so the short ones fill in around them. A module says ``XDIST_PRIORITY = N`` (higher starts sooner)."""

    def priority(item: pytest.Item) -> int:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("family") in EXPORT_MEMORY_HOGS:
            return 9  # the longest unit of all (~6 min)
        return getattr(getattr(item, "module", None), "XDIST_PRIORITY", 0)

    items.sort(key=lambda item: -priority(item))  # stable


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores this process may use (``--maxprocesses`` caps it). A few
    long tests mostly wait — on a Ray head that never answers, on servers and subprocesses starting — and the
    extra worker keeps the cores busy meanwhile."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores + 1


def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    """``--dist loadscope`` (README's test command), one unit of work per test module, so that a module's
    fixtures (a trained net, a server, a README sandbox whose blocks run in order) are built once, on one
    worker; the modules in ``SPLIT_BY_PARAMETER`` give one unit per parameter instead."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module in SPLIT_BY_PARAMETER and nodeid.endswith("]"):
                param = nodeid[nodeid.index("[") + 1 : -1]
                return f"{module}[{'memory hogs' if param in EXPORT_MEMORY_HOGS else param}]"
            return module

    return ByModule(config, log)


# -- shared fixtures -----------------------------------------------------------------------------
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def make_tiny_onnx(
    path: Path,
    *,
    output: str = "softmax",
    labels: tuple[str, ...] = ("cat", "dog", "bird"),
    size: int = 8,
    channels: int = 3,
    with_metadata: bool = True,
    seed: int = 0,
) -> Path:
    """A real, tiny NHWC convnet built with onnx.helper (no TensorFlow): Transpose, Conv, Relu,
    GlobalAveragePool, Flatten, Gemm, then Softmax / Sigmoid / nothing (logits)."""
    from _onnx import build_model, save_model, tensor, value
    from onnx import helper

    from edgecnn.runtime.metadata import ColorMode, InputSpec, Layout, ModelMetadata, OutputKind, PreprocessSpec

    rng = np.random.default_rng(seed)
    k = 1 if output == "sigmoid" else len(labels)
    w = tensor("w", rng.normal(0, 0.5, (4, channels, 3, 3)), np.float32)
    b = tensor("b", rng.normal(0, 0.1, (4,)), np.float32)
    fc = tensor("fc", rng.normal(0, 1.0, (4, k)), np.float32)
    fcb = tensor("fcb", rng.normal(0, 0.1, (k,)), np.float32)
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc", "fcb"], ["logits" if output != "logits" else "output"]),
    ]
    if output == "softmax":
        nodes.append(helper.make_node("Softmax", ["logits"], ["output"], axis=1))
    elif output == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["output"]))
    meta = ModelMetadata(
        labels=labels if output != "sigmoid" else labels[:2],
        input=InputSpec("input", Layout.NHWC, size, size, channels),
        preprocess=PreprocessSpec(color_mode=ColorMode.RGB if channels == 3 else ColorMode.L),
        output=OutputKind(output),
    )
    inputs, outputs = [value("input", ["batch", size, size, channels])], [value("output", ["batch", k])]
    model = build_model(nodes, inputs, outputs, [w, b, fc, fcb], name="tiny", metadata=meta if with_metadata else None)
    return save_model(model, path)


def make_exacting_onnx(path: Path, *, size: int, labels: tuple[str, ...], **preprocess: object) -> Path:
    """``make_tiny_onnx`` whose preprocessing crops, filters bicubic, flips to BGR and normalises per channel
    (plus ``preprocess``'s fields): an input made by any other path than the model's own shows."""
    import dataclasses

    import onnx

    from edgecnn.runtime.metadata import ChannelOrder, CropMode, ModelMetadata, embed_metadata, props_of

    make_tiny_onnx(path, size=size, labels=labels)
    model = onnx.load(str(path))
    meta = ModelMetadata.from_props(props_of(model))
    exacting = {
        "interpolation": "bicubic",
        "crop_mode": CropMode.center,
        "crop_pct": 0.875,
        "channel_order": ChannelOrder.BGR,
        "mean": (0.4, 0.45, 0.5),
        "std": (0.2, 0.25, 0.3),
    }
    embed_metadata(
        model, dataclasses.replace(meta, preprocess=dataclasses.replace(meta.preprocess, **exacting, **preprocess))
    )
    onnx.save_model(model, str(path))
    return path


def make_nan_onnx(path: Path, *, threshold: float = 0.2, size: int = 8, always: bool = False) -> Path:
    """A real 3-class grayscale model that answers NaN for dark images, data-dependently: a ``Sqrt`` of
    (mean pixel - ``threshold``) joins the logits, so every image whose mean (0..1) is below it gets NaN
    (``always``: a threshold above any image, NaN for every input)."""
    from _onnx import build_model, save_model, tensor, value
    from onnx import helper

    from edgecnn.runtime.metadata import ColorMode, InputSpec, Layout, ModelMetadata, OutputKind, PreprocessSpec

    rng = np.random.default_rng(0)
    k = 3
    inits = [
        tensor("w", rng.normal(0, 1.0, (size * size, k)), np.float32),
        tensor("c", [2.0 if always else threshold], np.float32),
        tensor("flat_shape", [-1, size * size], np.int64),
        tensor("dir", [1.0, 0.0, -1.0], np.float32),
    ]
    nodes = [
        helper.make_node("Reshape", ["input", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("ReduceMean", ["flat"], ["mean"], axes=[1], keepdims=1, name="mean"),
        helper.make_node("Sub", ["mean", "c"], ["centred"], name="centre"),
        helper.make_node("Sqrt", ["centred"], ["root"], name="sqrt"),  # NaN below the threshold
        helper.make_node("Mul", ["root", "dir"], ["bump"], name="bump"),
        helper.make_node("MatMul", ["flat", "w"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "bump"], ["logits"], name="logits"),
        helper.make_node("Softmax", ["logits"], ["output"], axis=1, name="softmax"),
    ]
    meta = ModelMetadata(
        labels=("a", "b", "c"),
        input=InputSpec("input", Layout.NHWC, size, size, 1),
        preprocess=PreprocessSpec(color_mode=ColorMode.L),
        output=OutputKind.softmax,
    )
    inputs, outputs = [value("input", ["batch", size, size, 1])], [value("output", ["batch", k])]
    return save_model(build_model(nodes, inputs, outputs, inits, name="nan_for_dark", metadata=meta), path)


def write_gray(path: Path, value: int, size: int = 8) -> Path:
    """A flat grayscale PNG of one value (dark below ~51 for ``make_nan_onnx``'s default threshold)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, np.uint8), "L").save(path)
    return path


@contextlib.contextmanager
def memory_hog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Held around the few steps that peak at 7-17 GB (exporting InceptionResNetV2, InceptionV3, NASNet and
    ConvNeXt, calibrating ResNet50): one at a time across the test workers of a run (a file lock in the run's
    shared temporary folder), so that two never add up past a 24 GB machine; each gives its memory back when it
    ends (Keras state cleared)."""
    import fcntl

    lock = tmp_path_factory.getbasetemp().parent / "memory-hog.lock"
    with open(lock, "w") as fh:  # closing the file releases the lock
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_onnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="session")
def mnist_trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """mnist-cnn trained on mnist5k with the course defaults: the committed run (``tests/_artefacts.py`` built
    it; ``tests/core/test_artefacts.py`` fails while it is stale), copied so that tests may write beside it."""
    from _artefacts import trained_copy

    return trained_copy(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def mnist_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed ONNX export of ``mnist_trained`` (what ``export_keras`` makes of it, with its parity
    checked when it was built), copied: the tests that use it quantize and run it without TensorFlow."""
    from _artefacts import exported_copy

    return exported_copy(tmp_path_factory.mktemp("exported"))


def write_png(path: Path, size: tuple[int, int] = (12, 10), mode: str = "RGB", seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    img = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def read_json(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    """With ``EDGECNN_TEST_LOG=FILE``: one line per test (seconds with its fixtures, the worker's peak memory
    so far, the worker), appended as it ends, so that a run's budget can be read even when it is cut short."""
    import resource
    import time

    start = time.perf_counter()
    try:
        return (yield)
    finally:
        log = os.environ.get("EDGECNN_TEST_LOG")
        if log:
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            line = f"{time.perf_counter() - start:.2f}\t{peak_mb}\t{worker}\t{time.time():.0f}\t{item.nodeid}\n"
            with open(log, "a") as fh:
                fh.write(line)

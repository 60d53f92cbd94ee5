"""The engine and its tuning sidecar on real onnxruntime sessions over a tiny real model (no TensorFlow)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgecnn import Classifier
from edgecnn._fs import sha256_file
from edgecnn.errors import UsageError
from edgecnn.runtime.engine import CallPath, Engine, EngineSettings
from edgecnn.runtime.session import SessionSettings
from edgecnn.runtime.tuning import Tuning, choose_settings, load_tuning, machine_fingerprint, save_tuning, tuning_path


def _bare(model: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


@pytest.mark.parametrize("call", list(CallPath))
@pytest.mark.parametrize("streams", [1, 3])
@pytest.mark.parametrize("micro_batch", [None, 2])
def test_every_call_path_and_stream_count_answers_like_a_bare_session(
    tiny_onnx: Path, call: CallPath, streams: int, micro_batch: int | None
) -> None:
    settings = EngineSettings(threads=1, streams=streams, call=call, micro_batch=micro_batch)
    engine = Engine(tiny_onnx, "cpu", settings)
    assert engine.call == call and len(engine.sessions) == streams
    for n in (1, 2, 7):  # fewer samples than streams, and an uneven split
        x = np.random.default_rng(n).random((n, 8, 8, 3), dtype=np.float32)
        np.testing.assert_array_equal(engine.run(x), _bare(tiny_onnx, x))
    engine.close()


def test_micro_batches_feed_each_session_in_chunks(tiny_onnx: Path, tmp_path: Path) -> None:
    """A model whose batch axis is fixed to 2 runs a batch of 6 only when the engine feeds it 2 rows a call."""
    import onnx

    from edgecnn.errors import ModelError

    model = onnx.load(str(tiny_onnx))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 2
    fixed = tmp_path / "batch2.onnx"
    onnx.save(model, fixed)
    x = np.random.default_rng(3).random((6, 8, 8, 3), dtype=np.float32)
    for streams in (1, 3):
        chunked = Engine(fixed, "cpu", EngineSettings(threads=1, streams=streams, micro_batch=2))
        np.testing.assert_array_equal(chunked.run(x), _bare(tiny_onnx, x))
        chunked.close()
    with pytest.raises(ModelError, match="onnxruntime failed while running the model"):
        Engine(fixed, "cpu", EngineSettings(threads=1)).run(x)


def test_bound_outputs_are_not_overwritten_by_the_next_call(tiny_onnx: Path) -> None:
    engine = Engine(tiny_onnx, "cpu", EngineSettings(call=CallPath.bind))
    a = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    first = engine.run(a)
    kept = first.copy()
    engine.run(1 - a)
    np.testing.assert_array_equal(first, kept)


def test_non_contiguous_input_is_bound_correctly(tiny_onnx: Path) -> None:
    engine = Engine(tiny_onnx, "cpu", EngineSettings(call=CallPath.bind))
    big = np.random.default_rng(1).random((4, 8, 8, 3), dtype=np.float32)
    x = big[::2]  # every other sample: not contiguous
    np.testing.assert_array_equal(engine.run(x), _bare(tiny_onnx, np.ascontiguousarray(x)))


def test_streams_are_thread_safe(tiny_onnx: Path) -> None:
    engine = Engine(tiny_onnx, "cpu", EngineSettings(threads=1, streams=2, call=CallPath.bind))
    xs = [np.random.default_rng(i).random((5, 8, 8, 3), dtype=np.float32) for i in range(6)]
    expected = [_bare(tiny_onnx, x) for x in xs]
    errors: list[str] = []

    def worker(k: int) -> None:
        for _ in range(30):
            if not np.array_equal(engine.run(xs[k]), expected[k]):
                errors.append(f"thread {k} got another answer")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.close()
    assert errors == []


def test_settings_validate_and_round_trip() -> None:
    s = EngineSettings(threads=2, streams=3, spin=False, optimization="extended", call="bind", micro_batch=4)  # type: ignore[arg-type]
    assert s.call is CallPath.bind
    assert EngineSettings.from_dict(s.to_dict()) == s
    assert "3 stream(s) × 2 thread(s)" in s.describe() and "micro-batch 4" in s.describe()
    bad_settings = ({"streams": 0}, {"threads": 0}, {"optimization": "max"}, {"call": "fast"}, {"colour": 1})
    for bad in (*bad_settings, {"micro_batch": 0}):
        with pytest.raises(UsageError):
            EngineSettings.from_dict(bad)
    assert EngineSettings.throughput(cores=4) == EngineSettings(threads=1, streams=4)


def _tuning_for(model: Path, **changes: object) -> Tuning:
    base = {
        "model_sha256": sha256_file(model),
        "machine": machine_fingerprint(),
        "latency": EngineSettings(threads=1, spin=True, call=CallPath.bind),
        "throughput": EngineSettings(threads=1, streams=2),
        "throughput_batch": 16,
    }
    return Tuning(**(base | changes))  # type: ignore[arg-type]


def test_sidecar_round_trip_and_use_by_classifier(tiny_onnx: Path, tmp_path: Path) -> None:
    model = Path(shutil.copy(tiny_onnx, tmp_path / "m.onnx"))
    assert load_tuning(model)[0] is None and "no tuning file" in load_tuning(model)[1]
    path = save_tuning(model, _tuning_for(model))
    assert path == tuning_path(model) == tmp_path / "m.tune.json"
    loaded, why = load_tuning(model)
    assert loaded is not None and loaded.throughput_batch == 16 and "tuned" in why
    clf = Classifier(model, provider="cpu")
    assert clf.engine_settings == loaded.latency and clf.settings_source.startswith("tuned")
    with Classifier(model, provider="cpu", mode="throughput") as bulk:
        assert len(bulk.engine.sessions) == 2
        x = np.random.default_rng(0).random((9, 8, 8, 3), dtype=np.float32)
        np.testing.assert_allclose(bulk.predict_proba(x), clf.predict_proba(x), rtol=1e-6)
    assert Classifier(model, provider="cpu", tuning=False).settings_source == "default"
    explicit = Classifier(model, provider="cpu", settings=SessionSettings(threads=1))
    assert explicit.settings_source == "explicit" and explicit.engine_settings.streams == 1
    assert Classifier(model, provider="cpu", threads=2).engine_settings.threads == 2  # threads override tuning


def test_stale_or_foreign_sidecars_are_ignored_with_a_reason(tiny_onnx: Path, tmp_path: Path) -> None:
    model = Path(shutil.copy(tiny_onnx, tmp_path / "m.onnx"))
    save_tuning(model, _tuning_for(model, model_sha256="0" * 64))
    tuning, why = load_tuning(model)
    assert tuning is None and "another version of the model" in why
    save_tuning(model, _tuning_for(model, machine=machine_fingerprint() | {"cpu": "Some Other CPU"}))
    tuning, why = load_tuning(model)
    assert tuning is None and "another machine" in why and "Some Other CPU" in why
    tuning_path(model).write_text("{not json", encoding="utf-8")
    tuning, why = load_tuning(model)
    assert tuning is None and "unreadable" in why and str(tuning_path(model)) in why
    tuning_path(model).write_text(json.dumps({"format": "edgecnn-tune/1", "latency": {}}), encoding="utf-8")
    assert load_tuning(model)[0] is None
    clf = Classifier(model, provider="cpu")  # a bad sidecar never stops the model from loading
    assert clf.settings_source == "default"


def test_choose_settings_order(tiny_onnx: Path) -> None:
    assert choose_settings(tiny_onnx, "throughput", tuning=False)[0].streams >= 1
    with pytest.raises(UsageError, match="mode"):
        choose_settings(tiny_onnx, "fastest")
    given = EngineSettings(threads=1, streams=2)
    assert choose_settings(tiny_onnx, settings=given) == (given, "explicit")

"""`tune` and `edgecnn tune` on a real (tiny) model: a sidecar that Classifier and bench then use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecnn import Classifier
from edgecnn.bench import BenchConfig, run_benchmark
from edgecnn.bench.tune import TuneConfig, tune
from edgecnn.cli import app
from edgecnn.errors import UsageError
from edgecnn.runtime.engine import EngineSettings, physical_cores
from edgecnn.runtime.tuning import load_tuning, tuning_path

QUICK = TuneConfig(throughput_batch=8, seconds=0.01, rounds=2)


@pytest.fixture()
def model(tiny_onnx: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(tiny_onnx, tmp_path / "m.onnx"))


@pytest.mark.slow  # measures for seconds
def test_tune_measures_every_stage_and_writes_a_sidecar_that_applies(model: Path) -> None:
    result = tune(model, QUICK)
    assert result.sidecar == tuning_path(model) and result.sidecar.is_file()
    stages = {(m["mode"], m["stage"]) for m in result.measurements}
    for mode in ("latency", "throughput"):
        assert {(mode, s) for s in ("parallelism", "optimization", "call")} <= stages
        assert result.speedup(mode) > 0
    micro = [m["settings"]["micro_batch"] for m in result.measurements if m["stage"] == "micro_batch"]
    assert set(micro) >= {1, 2, 4} and ("latency", "micro_batch") not in stages  # chunks smaller than the batch
    assert all(m["answers_agree"] for m in result.measurements)
    tuning, why = load_tuning(model)
    assert tuning is not None, why
    assert tuning.latency == result.tuning.latency and tuning.throughput_batch == 8
    thr = tuning.throughput
    assert thr.threads is not None and thr.streams * thr.threads == physical_cores()  # the whole budget, split
    assert Classifier(model, provider="cpu").engine_settings == tuning.latency
    data = result.to_dict()
    assert data["latency"]["p50_ms"] > 0 and data["throughput"]["items_per_s"] > 0


@pytest.mark.slow  # measures for seconds
def test_candidates_that_change_answers_are_never_picked(model: Path) -> None:
    strict = TuneConfig(throughput_batch=4, seconds=0.01, rounds=1, max_abs_diff=-1.0)  # nothing agrees
    result = tune(model, strict, write=False)
    assert result.sidecar is None and not tuning_path(model).exists()
    assert not any(m["answers_agree"] for m in result.measurements)
    assert result.tuning.latency == EngineSettings(threads=None)  # the defaults stay
    assert result.tuning.throughput == EngineSettings.throughput(physical_cores())  # Classifier's untuned default


def test_tune_config_validates() -> None:
    for bad in ({"seconds": 0}, {"rounds": 0}, {"cores": 0}, {"throughput_batch": 0}):
        with pytest.raises(UsageError):
            TuneConfig(**bad)  # type: ignore[arg-type]


@pytest.mark.slow  # measures for seconds
def test_bench_uses_the_sidecar_unless_told_otherwise(model: Path) -> None:
    tune(model, TuneConfig(throughput_batch=4, seconds=0.01, rounds=1))
    cfg = BenchConfig(batch_sizes=(1, 4), warmup=1, iterations=5)
    info = run_benchmark([model], cfg).to_dict()["models"][0]["engine"]
    assert info["1"]["source"].startswith("tuned") and info["4"]["source"].startswith("tuned")
    given = run_benchmark([model], BenchConfig(batch_sizes=(4,), warmup=1, iterations=5, streams=(2,), threads=2))
    engine = given.to_dict()["models"][0]["engine"]["4"]
    assert engine["source"] == "given" and engine["settings"]["streams"] == 2 and engine["settings"]["threads"] == 1
    assert given.rows[0]["engine"].startswith("2 stream(s)")


@pytest.mark.slow  # measures for seconds
def test_cli_tune_prints_a_table_and_writes_json(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "tune.json"
    res = CliRunner().invoke(
        app, ["tune", str(model), "--batch", "4", "--seconds", "0.01", "--rounds", "1", "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "latency (batch 1" in res.output and "m.tune.json" in res.output
    data = json.loads(out.read_text())
    assert data[0]["throughput"]["batch"] == 4 and tuning_path(model).is_file()
    res = CliRunner().invoke(app, ["tune", str(tmp_path / "missing.onnx")])
    assert res.exit_code != 0 and "missing.onnx" in res.output


def test_bench_compares_stream_counts_side_by_side(model: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["bench", str(model), "--batch", "4", "--threads", "2", "--streams", "1,2", "--iterations", "5",
         "--json", str(tmp_path / "b.json")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "b.json").read_text())
    assert [r["name"] for r in data["steady_state"]] == ["m.onnx [1 stream]", "m.onnx [2 streams]"]
    engines = data["models"][0]["engine"]
    assert engines["4@1 stream"]["settings"]["threads"] == 2 and engines["4@2 streams"]["settings"]["threads"] == 1
    assert not any(e["settings"]["spin_stop"] for e in engines.values())  # spinning is not forced off


def test_one_mode_can_be_tuned_alone(model: Path) -> None:
    result = tune(model, TuneConfig(throughput_batch=4, seconds=0.01, rounds=1, modes=("throughput",)), write=False)
    assert {m["mode"] for m in result.measurements} == {"throughput"}
    assert result.tuning.latency == EngineSettings(threads=None)  # untouched: the default
    with pytest.raises(UsageError, match="modes must be"):
        TuneConfig(modes=("fast",))

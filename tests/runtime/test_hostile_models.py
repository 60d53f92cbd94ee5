"""Models that contradict themselves, fail to run or ask for a provider that does not load: refused with one
clear line and exit 3, never a wrong answer, a traceback or onnxruntime's own log on the terminal."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_onnx, write_png
from hostile_models import CASES, fails_unless_batch_of, feature_vector_model, labels_vs_symbolic_output
from typer.testing import CliRunner

from edgecnn import Classifier
from edgecnn.cli import app
from edgecnn.errors import MetadataError, ModelError, ProviderError
from edgecnn.runtime.engine import Engine
from edgecnn.runtime.providers import CPU, CUDA, Provider, ProviderPlan
from edgecnn.runtime.results import partial_path, read_done_paths
from edgecnn.runtime.session import check_session_providers, create_session

runner = CliRunner()


def one_line_error(result, fragment: str) -> None:  # type: ignore[no-untyped-def]
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    for i in range(10):
        write_png(tmp_path / "photos" / f"{i:02d}.png", seed=i)
    return tmp_path / "photos"


@pytest.fixture()
def case_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    os.mkfifo(tmp_path / "secret.bin")  # what external_data_outside points at: opening it would hang
    return folder


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_model_is_refused_at_load(name: str, case_dir: Path) -> None:
    build, fragment = CASES[name]
    path = build(case_dir)
    with pytest.raises(ModelError) as info:
        Classifier(path)
    assert fragment in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_classify_refuses_hostile_model_with_exit_3(name: str, case_dir: Path, photos: Path, tmp_path: Path) -> None:
    build, fragment = CASES[name]
    out = tmp_path / "r.csv"
    result = runner.invoke(app, ["classify", str(photos), "-m", str(build(case_dir)), "-o", str(out)])
    assert result.exit_code == 3, result.output
    one_line_error(result, fragment)
    assert not out.exists() and not partial_path(out).exists()


@pytest.mark.parametrize(
    "command",
    [
        ["bench", "{m}", "--duration", "0.05"],
        ["quantize", "{m}", "--mode", "fp16", "--no-speed"],
        ["parity", "{good}", "{m}", "--data", "digits", "--limit", "8"],
        ["tune", "{m}"],
    ],
    ids=["bench", "quantize", "parity", "tune"],
)
def test_every_command_refuses_a_contradicting_model(command: list[str], case_dir: Path) -> None:
    bad = CASES["three_labels_two_outputs"][0](case_dir)
    good = make_tiny_onnx(case_dir / "good.onnx", labels=("cat", "dog"))
    args = [a.format(m=bad, good=good) for a in command]
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    one_line_error(result, "edgecnn.labels has 3 labels")


def test_symbolic_output_width_is_checked_on_the_first_answer(case_dir: Path, photos: Path, tmp_path: Path) -> None:
    path = labels_vs_symbolic_output(case_dir)
    clf = Classifier(path)  # the graph cannot tell: [N, classes]
    with pytest.raises(MetadataError, match=r"edgecnn\.labels has 3 labels but the graph's output 'output' has 2"):
        clf.predict_proba(np.zeros((1, 8, 8, 3), np.float32))
    result = runner.invoke(app, ["classify", str(photos), "-m", str(path), "-o", str(tmp_path / "r.csv")])
    assert result.exit_code == 3
    one_line_error(result, "has 2 scores per sample")


def test_feature_vector_model_serves_arrays_but_classify_refuses(case_dir: Path, photos: Path, tmp_path: Path) -> None:
    clf = Classifier(feature_vector_model(case_dir))
    probs = clf.predict_proba(np.ones((2, 16), np.float32))
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    with pytest.raises(ModelError, match="takes NC inputs of shape \\[16\\], not images"):
        list(clf.classify_folder(photos))
    result = runner.invoke(app, ["classify", str(photos), "-m", str(clf.path), "-o", str(tmp_path / "r.csv")])
    assert result.exit_code == 3
    one_line_error(result, "not images; feed it arrays with Classifier.predict_proba")


def test_run_time_failure_stops_classify_keeps_rows_and_resumes(case_dir: Path, photos: Path, tmp_path: Path) -> None:
    """Batches of 4 work, the last batch of 2 fails inside onnxruntime: exit 3, 8 rows kept, resume finishes."""
    model = fails_unless_batch_of(case_dir, 4)
    out = tmp_path / "r.csv"
    args = ["classify", str(photos), "-m", str(model), "-o", str(out), "--batch", "4"]
    proc = subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "onnxruntime failed while running the model" in lines[0], proc.stderr
    assert str(model) in lines[0] and "[E:onnxruntime" not in proc.stderr
    done, _ = read_done_paths(partial_path(out), "csv")
    assert len(done) == 8 and not out.exists()
    first_rows = partial_path(out).read_bytes()
    shutil.copy(make_tiny_onnx(tmp_path / "fixed.onnx"), model)  # the model is fixed
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(first_rows)  # earlier rows kept as they were, not redone
    records = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert sorted(r["path"] for r in records) == sorted(str(p) for p in photos.iterdir())
    assert all(r["label"] and not r["error"] for r in records)


def test_run_time_failure_is_a_model_error_not_error_rows(case_dir: Path, photos: Path) -> None:
    clf = Classifier(fails_unless_batch_of(case_dir, 4))
    with pytest.raises(ModelError, match="onnxruntime failed while running the model: "):
        list(clf.classify_folder(photos, batch_size=3))


# -- providers that do not load ------------------------------------------------------------------
def _cuda_plan() -> ProviderPlan:
    """A plan asking for CUDA on this CPU-only onnxruntime: onnxruntime drops it and runs on the CPU."""
    return ProviderPlan(requested=Provider.cuda, providers=(CUDA, CPU), options=({}, {}))


def test_dropped_provider_is_a_provider_error(tiny_onnx: Path) -> None:
    with pytest.raises(ProviderError, match="asked for provider cuda, but onnxruntime could not initialise it") as info:
        create_session(tiny_onnx, plan=_cuda_plan())
    assert "CUDAExecutionProvider" in str(info.value)  # onnxruntime's own reason travels with it


def test_dropped_provider_with_fallback_warns_and_says_so(tiny_onnx: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = Engine(tiny_onnx, plan=_cuda_plan(), allow_fallback=True)
    assert engine.session.get_providers() == [CPU]
    assert any("FALLBACK" in str(w.message) and "cuda" in str(w.message) for w in caught)
    assert engine.warnings and "could not initialise" in engine.warnings[0]


def test_auto_tolerates_a_dropped_provider_with_a_warning() -> None:
    plan = ProviderPlan(requested=Provider.auto, providers=(CUDA, CPU), options=({}, {}))
    notes = check_session_providers(plan, [CPU], "libcudnn.so.9: cannot open", "m.onnx", allow_fallback=False)
    assert notes and "libcudnn.so.9" in notes[0]
    assert check_session_providers(plan, [CUDA, CPU], "", "m.onnx", allow_fallback=False) == []


def test_classifier_reports_fallback_warnings(tiny_onnx: Path) -> None:
    assert Classifier(tiny_onnx, provider="cpu").provider_warnings == ()


def test_info_describes_a_contradicting_model_and_names_the_problem(case_dir: Path) -> None:
    path = CASES["nchw_metadata_nhwc_graph"][0](case_dir)
    result = runner.invoke(app, ["info", str(path), "--json"])
    assert result.exit_code == 0, result.output  # info is how a user looks at a broken model
    import json

    data = json.loads(result.stdout)
    assert data["metadata"]["input"]["layout"] == "NCHW"
    assert "set edgecnn.input.layout to 'NHWC'" in data["metadata_error"]

"""Rows, not jobs: a model that answers NaN for some inputs gives those files error rows and the rest results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_nan_onnx, write_gray

from edgecnn import Classifier
from edgecnn.errors import ModelError

BRIGHT, DARK = 200, 10  # mean 0.78 and 0.04 against the model's threshold 0.2


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_nan_onnx(tmp_path_factory.mktemp("nan") / "nan.onnx")


def _folder(root: Path, values: list[int]) -> list[Path]:
    return [write_gray(root / f"{i:03d}.png", v) for i, v in enumerate(values)]


def test_the_model_really_yields_nan_for_dark_images(nan_model: Path) -> None:
    clf = Classifier(nan_model, provider="cpu")
    x = np.stack([np.full((8, 8, 1), v / 255, np.float32) for v in (BRIGHT, DARK)])
    probs, ok = clf.predict_rows(x)
    assert ok.tolist() == [True, False] and np.isnan(probs[1]).all() and abs(probs[0].sum() - 1) < 1e-5
    with pytest.raises(ModelError, match="NaN/Inf outputs for 1 of 2 samples"):  # the array API still refuses
        clf.predict_proba(x)


def test_classify_paths_gives_error_rows_for_those_files_only(nan_model: Path, tmp_path: Path) -> None:
    values = [BRIGHT] * 40 + [DARK] + [BRIGHT] * 20 + [DARK]
    files = _folder(tmp_path / "imgs", values)
    rows = list(Classifier(nan_model, provider="cpu").classify_paths(files, batch_size=32))
    assert [r.path for r in rows] == [str(f) for f in files]
    bad = [i for i, r in enumerate(rows) if not r.ok]
    assert bad == [40, 61]
    assert {rows[i].error_type for i in bad} == {"NonFiniteOutput"} and "NaN/Inf" in rows[40].error
    assert all(r.label in ("a", "b", "c") and 0 < r.score <= 1 for r in rows if r.ok)


def test_classify_to_file_writes_every_row(nan_model: Path, tmp_path: Path) -> None:
    import csv

    from edgecnn.runtime.folder import classify_to_file

    _folder(tmp_path / "imgs", [BRIGHT, DARK, BRIGHT, BRIGHT])
    out = tmp_path / "out.csv"
    summary = classify_to_file(Classifier(nan_model, provider="cpu"), tmp_path / "imgs", out)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and [r["error_type"] for r in rows] == ["", "NonFiniteOutput", "", ""]
    assert summary.errors == 1 and summary.ok == 3


def test_a_model_that_yields_nan_for_every_input_is_refused(tmp_path: Path) -> None:
    model = make_nan_onnx(tmp_path / "always.onnx", always=True)
    files = _folder(tmp_path / "imgs", [BRIGHT] * 5)
    with pytest.raises(ModelError, match="NaN/Inf outputs for all 5 images of its first batch"):
        list(Classifier(model, provider="cpu").classify_paths(files))


def test_cli_classify_exits_0_with_error_rows(nan_model: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    _folder(tmp_path / "imgs", [BRIGHT, DARK, BRIGHT])
    out = tmp_path / "rows.jsonl"
    res = CliRunner().invoke(app, ["classify", str(tmp_path / "imgs"), "-m", str(nan_model), "-o", str(out)])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and '"NonFiniteOutput"' in lines[1] and '"error_type": null' in lines[0]


def test_serve_batch_mates_of_a_nan_request_still_get_answers(nan_model: Path) -> None:
    import asyncio

    from edgecnn.errors import NonFiniteOutputError
    from edgecnn.serve.batching import Batcher
    from edgecnn.serve.metrics import Metrics

    clf = Classifier(nan_model, provider="cpu")
    xs = [np.full((1, 8, 8, 1), v / 255, np.float32) for v in (BRIGHT, DARK, BRIGHT)]

    async def main() -> list[object]:
        b = Batcher("nan", clf, max_batch=8, max_delay_ms=200, max_queue=64, workers=1, metrics=Metrics())
        b.arriving = 3  # three requests on their way: the collector waits for them and runs them together
        await b.start()
        try:
            answers = await asyncio.gather(*(b.submit(x) for x in xs), return_exceptions=True)
        finally:
            await b.stop()
        assert b.runs == 1  # one model run for all three
        return answers

    good1, bad, good2 = asyncio.run(main())
    assert isinstance(bad, NonFiniteOutputError) and "NaN/Inf" in str(bad)
    assert isinstance(good1, np.ndarray) and np.isfinite(good1).all() and np.allclose(good1, good2)


def test_serve_answers_a_nan_upload_with_a_json_error_and_stays_healthy(nan_model: Path, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from edgecnn.serve import ServeConfig, build_app

    dark = write_gray(tmp_path / "dark.png", DARK).read_bytes()
    bright = write_gray(tmp_path / "bright.png", BRIGHT).read_bytes()
    with TestClient(build_app([nan_model], ServeConfig(max_batch=4))) as client:
        r = client.post("/v1/models/nan/classify", content=dark)
        assert r.status_code == 422 and r.json()["kind"] == "non_finite_output" and "NaN/Inf" in r.json()["error"]
        assert client.post("/v1/models/nan/classify", content=bright).status_code == 200
        assert client.get("/v2/health/ready").status_code == 200

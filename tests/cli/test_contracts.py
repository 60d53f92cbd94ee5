"""Issue 26's table, one named test per row: realistic misuse answers with one line and the right exit code
(2 usage, 3 bad file/model), never a traceback, never exit 0 having done nothing. In-process (CliRunner)
wherever the command allows; the library refuses the same inputs (validation lives where input enters)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import onnx
import pytest
from conftest import make_tiny_onnx, write_png
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.errors import ClusterError, InputError, UsageError

runner = CliRunner()


def one_line_error(result, code: int, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    """Exit ``code``, exactly one ``error:`` line holding every fragment, no traceback."""
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(3):
        write_png(folder / f"p{i}.png", seed=i)
    return folder


@pytest.fixture(scope="module")
def calib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled folder (one subfolder per class) for static INT8 calibration."""
    folder = tmp_path_factory.mktemp("calib")
    for c, name in enumerate(("cat", "dog", "bird")):
        for i in range(4):  # 12 images: calibration's minimum is 10
            write_png(folder / name / f"{i}.png", size=(8, 8), seed=10 * c + i)
    return folder


@pytest.fixture(scope="module")
def int8(tmp_path_factory: pytest.TempPathFactory, calib: Path) -> Path:
    model = make_tiny_onnx(tmp_path_factory.mktemp("q") / "tiny.onnx")
    result = runner.invoke(app, ["quantize", str(model), "--calibration", f"folder:{calib}", "--no-speed"])
    assert result.exit_code == 0, result.output
    return model.with_name("tiny.int8.onnx")


# -- classify ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", ["0", "-5"])
def test_classify_batch_below_one_exit_2(tiny_onnx: Path, photos: Path, tmp_path: Path, batch: str) -> None:
    out = tmp_path / "r.csv"
    result = runner.invoke(app, ["classify", str(photos), "-m", str(tiny_onnx), "-o", str(out), "--batch", batch])
    one_line_error(result, 2, "--batch", f"got {batch}")
    assert not out.exists() and not Path(str(out) + ".partial").exists()  # no header-only file


def test_classify_negative_workers_exit_2(tiny_onnx: Path, photos: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["classify", str(photos), "-m", str(tiny_onnx), "-o", str(tmp_path / "r.csv"), "--workers", "-2"]
    )
    one_line_error(result, 2, "--workers", "got -2")


def test_classify_top_k_zero_exit_2(tiny_onnx: Path, photos: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["classify", str(photos), "-m", str(tiny_onnx), "-o", str(tmp_path / "r.csv"), "--top-k", "0"]
    )
    one_line_error(result, 2, "--top-k", "got 0")


def test_library_refuses_the_same_classify_options(tiny_onnx: Path, photos: Path) -> None:
    from edgecnn.runtime.classifier import Classifier
    from edgecnn.runtime.folder import classify_paths

    clf = Classifier(tiny_onnx)
    with pytest.raises(UsageError, match=r"--batch \(batch_size\) must be >= 1, got 0"):
        classify_paths(clf, [str(photos / "p0.png")], batch_size=0)  # at the call, not at the first row
    with pytest.raises(UsageError, match=r"--top-k \(top_k\) must be >= 1, got -1"):
        clf.classify_folder(photos, top_k=-1)


@pytest.mark.parametrize("flag", [["--ray-actors", "2"], ["--ray-cpus-per-actor", "2"], ["--ray-timeout", "5"]])
def test_ray_sizing_without_ray_exit_2(tiny_onnx: Path, photos: Path, tmp_path: Path, flag: list[str]) -> None:
    result = runner.invoke(app, ["classify", str(photos), "-m", str(tiny_onnx), "-o", str(tmp_path / "r.csv"), *flag])
    one_line_error(result, 2, flag[0], "--ray auto")


def test_ray_address_with_nothing_listening_exit_3_fast(tiny_onnx: Path, photos: Path, tmp_path: Path) -> None:
    t0 = time.monotonic()
    args = ["classify", str(photos), "-m", str(tiny_onnx), "-o", str(tmp_path / "r.csv"), "--ray", "127.0.0.1:1"]
    result = runner.invoke(app, args)
    one_line_error(result, 3, "cannot connect to Ray at 127.0.0.1:1")
    assert time.monotonic() - t0 < 30
    with pytest.raises(ClusterError, match=r"127\.0\.0\.1:1"):
        from edgecnn.cluster.connect import check_reachable

        check_reachable("127.0.0.1:1", timeout=2)


def test_empty_folder_is_not_a_silent_success(tiny_onnx: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".hidden").write_bytes(b"x")
    result = runner.invoke(app, ["classify", str(empty), "-m", str(tiny_onnx), "-o", str(tmp_path / "r.csv")])
    one_line_error(result, 3, "no files to classify")


def test_resume_over_another_models_partial_exit_2(tiny_onnx: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert runner.invoke(app, ["classify", str(photos), "-m", str(tiny_onnx), "-o", str(out)]).exit_code == 0
    shutil.move(out, str(out) + ".partial")  # as if interrupted
    other = make_tiny_onnx(tmp_path / "other.onnx", labels=("a", "b", "c"), seed=3)
    result = runner.invoke(app, ["classify", str(photos), "-m", str(other), "-o", str(out), "--resume"])
    one_line_error(result, 2, "written by model tiny.onnx", "not other.onnx")
    # the same model continues its own file; the record names no local path
    again = runner.invoke(app, ["classify", str(photos), "-m", str(tiny_onnx), "-o", str(out), "--resume"])
    assert again.exit_code == 0, again.output
    record = json.loads((tmp_path / ".r.csv.model.json").read_text())
    assert record["name"] == "tiny.onnx" and str(tmp_path) not in json.dumps(record)


# -- quantize ---------------------------------------------------------------------------------------
def test_quantize_a_quantized_model_exit_2_nothing_written(int8: Path, calib: Path) -> None:
    before = sorted(int8.parent.iterdir())
    result = runner.invoke(app, ["quantize", str(int8), "--mode", "int8", "--calibration", f"folder:{calib}"])
    one_line_error(result, 2, "already quantized (int8)", "tiny.onnx")
    assert sorted(int8.parent.iterdir()) == before


def test_quantize_refuses_quantized_ops_without_metadata(int8: Path, tmp_path: Path) -> None:
    from edgecnn.quantize import quantize

    model = onnx.load(str(int8))
    for prop in model.metadata_props:
        if prop.key == "edgecnn.quantization":
            model.metadata_props.remove(prop)
            break
    bare = tmp_path / "bare.onnx"
    onnx.save_model(model, str(bare))
    with pytest.raises(UsageError, match="already quantized"):
        quantize(bare, tmp_path / "again.onnx")
    assert not (tmp_path / "again.onnx").exists()


def test_quantize_unknown_exclude_node_exit_2_with_close_matches(tmp_path: Path, calib: Path) -> None:
    model = make_tiny_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(model))
    for i, node in enumerate(proto.graph.node):
        node.name = f"{node.op_type.lower()}_{i}"
    onnx.save_model(proto, str(model))
    args = ["quantize", str(model), "--calibration", f"folder:{calib}", "--no-speed"]
    result = runner.invoke(app, [*args, "--exclude-nodes", "nosuchnode,conv_2"])
    one_line_error(result, 2, "--exclude-nodes", "'nosuchnode'", "did you mean conv_1")
    assert not (tmp_path / "m.int8.onnx").exists()
    assert runner.invoke(app, [*args, "--exclude-nodes", "conv_1"]).exit_code == 0


def test_quantize_records_its_source_relative_to_the_model(int8: Path) -> None:
    from edgecnn.runtime.classifier import read_metadata

    source = read_metadata(int8).quantization["source_model"]
    assert source["path"] == "tiny.onnx" and source["name"] == "tiny.onnx" and len(source["sha256"]) == 64


# -- export, train, parity --------------------------------------------------------------------------
def test_export_unknown_data_source_exit_2_before_converting(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "m.keras"), "--data", "nosuchsource"])
    one_line_error(result, 2, "unknown data source 'nosuchsource'")
    near = runner.invoke(app, ["export", str(tmp_path / "m.keras"), "--data", "mnist5"])
    one_line_error(near, 2, "did you mean mnist5k")


def test_export_bad_output_suffix_exit_2_before_loading(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "missing.keras"), "-o", str(tmp_path / "bad.txt")])
    one_line_error(result, 2, "bad.txt: the output must end in .onnx")


@pytest.mark.parametrize("limit", ["0", "-4"])
def test_train_and_parity_limit_below_one_exit_2(tiny_onnx: Path, limit: str) -> None:
    one_line_error(runner.invoke(app, ["train", "mnist-mlp", "--limit", limit]), 2, "--limit must be >= 1")
    result = runner.invoke(app, ["parity", str(tiny_onnx), str(tiny_onnx), "--limit", limit])
    one_line_error(result, 2, "--limit must be >= 1")


def test_train_unknown_data_source_exit_2() -> None:
    one_line_error(runner.invoke(app, ["train", "mnist-mlp", "--data", "nope"]), 2, "unknown data source 'nope'")


# -- bench ------------------------------------------------------------------------------------------
def test_bench_plot_suffix_decides_the_format(tiny_onnx: Path, tmp_path: Path) -> None:
    gif = tmp_path / "x.gif"
    t0 = time.monotonic()
    result = runner.invoke(app, ["bench", str(tiny_onnx), "--duration", "30", "--plot", str(gif)])
    one_line_error(result, 2, "x.gif", ".png, .jpg, .jpeg, .svg, .pdf")
    assert time.monotonic() - t0 < 5 and not gif.exists()  # refused before measuring
    jpg = tmp_path / "x.jpg"
    args = ["bench", str(tiny_onnx), "--iterations", "5", "--warmup", "1", "--no-tuned", "--plot", str(jpg)]
    assert runner.invoke(app, args).exit_code == 0
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes


# -- the root command -------------------------------------------------------------------------------
def test_version() -> None:
    from edgecnn import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"edgecnn {__version__}"


def test_help_keeps_square_brackets_and_has_no_bool_metavars() -> None:
    result = runner.invoke(app, ["classify", "--help"], terminal_width=200)
    assert result.exit_code == 0 and "edgecnn[ray]" in result.stdout
    assert "<bool>" not in runner.invoke(app, ["bench", "--help"]).stdout


def test_paths_with_brackets_are_printed_whole(tiny_onnx: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos[2024]"
    write_png(folder / "a[1].png")
    out = tmp_path / "r[x].csv"
    result = runner.invoke(app, ["classify", str(folder), "-m", str(tiny_onnx), "-o", str(out)], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "photos[2024]" in result.stdout and "r[x].csv" in result.stdout


def test_check_source_is_the_loaders_rule(tmp_path: Path) -> None:
    from edgecnn.data.sources import check_source

    check_source("mnist5k")
    with pytest.raises(InputError, match="no such folder"):
        check_source(f"folder:{tmp_path / 'missing'}")


# -- no local paths in artefacts ------------------------------------------------------------------------------
def test_quantized_metadata_holds_no_local_path(int8: Path, calib: Path) -> None:
    from edgecnn.runtime.classifier import read_metadata

    meta = read_metadata(int8)
    text = json.dumps(meta.to_dict())
    assert str(int8.parent) not in text and str(calib) not in text, text
    assert meta.quantization["calibration_source"].startswith("folder:../")  # relative to the model's folder


def test_bench_finds_the_fp32_source_and_calibration_from_the_models_folder(
    int8: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # another working folder: relative records resolve from the model, not from here
    args = ["bench", str(int8), "--baseline", "ort-int8", "--iterations", "3", "--warmup", "1", "--no-tuned"]
    result = runner.invoke(app, args, terminal_width=300)
    assert result.exit_code == 0, result.output
    assert "quantize_static U8S8 of tiny.onnx on 12 samples" in result.stderr


def test_served_metadata_hides_local_paths() -> None:
    from edgecnn.serve.app import public_metadata

    data = {
        "source": {"keras_path": "/home/me/m.keras", "name": "m", "data": "folder:/home/me/photos"},
        "quantization": {"source_model": {"path": "../m.onnx", "name": "m.onnx"}, "calibration_source": "/srv/c"},
    }
    assert public_metadata(data) == {
        "source": {"name": "m", "data": "folder:photos"},
        "quantization": {"source_model": {"name": "m.onnx"}, "calibration_source": "c"},
    }


@pytest.mark.slow  # `edgecnn tune` measures for a few seconds even at its shortest
def test_bench_says_when_it_ignores_a_tune_file(tmp_path: Path) -> None:
    model = make_tiny_onnx(tmp_path / "m.onnx")
    other = make_tiny_onnx(tmp_path / "other.onnx", seed=5)
    assert runner.invoke(app, ["tune", str(other), "--seconds", "0.01", "--rounds", "1"]).exit_code == 0
    shutil.copy(tmp_path / "other.tune.json", tmp_path / "m.tune.json")  # a tune file made for another model
    result = runner.invoke(app, ["bench", str(model), "--iterations", "3", "--warmup", "1"], terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "m.tune.json: ignored, it was measured on another version of the model" in result.stderr


def test_candidates_record_paths_from_where_they_end_up(tmp_path: Path, calib: Path) -> None:
    """The budget search writes candidates in a temporary subfolder: paths are recorded from dst's folder."""
    from edgecnn.quantize import quantize
    from edgecnn.runtime.classifier import read_metadata

    model = make_tiny_onnx(tmp_path / "m.onnx")
    rep = quantize(
        model, tmp_path / "tmp" / "c.onnx", calibration=f"folder:{calib}", measure_speed=False, record_folder=tmp_path
    )
    assert read_metadata(rep.path).quantization["source_model"]["path"] == "m.onnx"

"""Every command through the real typer app: output, files, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_tiny_onnx, write_png
from typer.testing import CliRunner

from edgecnn.cli import app

runner = CliRunner()
CALIBRATION = Path(__file__).resolve().parents[2] / "calibration" / "mnist"


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def one_line_error(result, fragment: str) -> None:  # type: ignore[no-untyped-def]
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for cmd in ("zoo", "train", "export", "parity", "info", "quantize", "classify", "demo", "doctor"):
        assert cmd in result.stdout


def test_zoo(tmp_path: Path) -> None:
    result = run("zoo", "mnist-*", "--json", str(tmp_path / "zoo.json"))
    assert result.exit_code == 0 and "93,322" in result.stdout
    rows = json.loads((tmp_path / "zoo.json").read_text())
    assert {r["name"] for r in rows} >= {"mnist-cnn", "mnist-mlp"} and "cifar10-cnn" not in {r["name"] for r in rows}


def test_info(tiny_onnx: Path) -> None:
    result = run("info", str(tiny_onnx))
    assert result.exit_code == 0 and "Conv" in result.stdout and "labels" in result.stdout
    data = json.loads(run("info", str(tiny_onnx), "--json").stdout)
    assert data["metadata"]["labels"] == ["cat", "dog", "bird"] and data["inputs"][0]["shape"] == ["batch", 8, 8, 3]


@pytest.mark.parametrize("command", ["info", "classify"])
def test_missing_model_is_one_line_exit_3(command: str, tmp_path: Path) -> None:
    args = (
        ["info", str(tmp_path / "nope.onnx")]
        if command == "info"
        else ["classify", str(tmp_path), "--model", str(tmp_path / "nope.onnx")]
    )
    result = run(*args)
    assert result.exit_code == 3
    one_line_error(result, "nope.onnx: no such model file")


def test_wrong_file_is_one_line_exit_3(tmp_path: Path) -> None:
    bad = tmp_path / "photo.onnx"
    write_png(tmp_path / "p.png")
    bad.write_bytes((tmp_path / "p.png").read_bytes())
    result = run("info", str(bad))
    assert result.exit_code == 3
    one_line_error(result, "not a valid ONNX model")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edgecnn", "--debug", "info", str(tmp_path / "x.onnx")], capture_output=True, text=True
    )
    # the traceback is shown, and the exit code stays the one scripts rely on (3: bad input), not 1
    assert out.returncode == 3 and "Traceback" in out.stderr and "ModelNotFoundError" in out.stderr
    assert out.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'x.onnx'}: no such model file"


def test_usage_error_exit_2(tiny_onnx: Path, tmp_path: Path) -> None:
    result = run("classify", str(tmp_path), "--model", str(tiny_onnx), "--provider", "quantum")
    assert result.exit_code == 2


def test_classify_and_resume_flags(tiny_onnx: Path, tmp_path: Path) -> None:
    for i in range(5):
        write_png(tmp_path / "imgs" / f"{i}.png", seed=i)
    out = tmp_path / "r.jsonl"
    result = run(
        "classify",
        str(tmp_path / "imgs"),
        "-m",
        str(tiny_onnx),
        "-o",
        str(out),
        "--top-k",
        "2",
        "--json-summary",
        str(tmp_path / "s.json"),
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and all(len(r["top_k"]) == 2 for r in rows)
    assert json.loads((tmp_path / "s.json").read_text())["ok"] == 5
    # a run killed after two rows (and half of the third): --resume keeps those and classifies the other three
    full = out.read_bytes()
    first_two = b"".join(full.splitlines(keepends=True)[:2])
    (tmp_path / "r.jsonl.partial").write_bytes(full[: len(first_two) + 20])
    out.unlink()
    again = run(
        "classify", str(tmp_path / "imgs"), "-m", str(tiny_onnx), "-o", str(out), "--resume",
        "--json-summary", str(tmp_path / "s2.json"),
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    summary = json.loads((tmp_path / "s2.json").read_text())
    assert (summary["resumed"], summary["ok"], summary["total"]) == (2, 3, 5)
    assert out.read_bytes().startswith(first_two) and not (tmp_path / "r.jsonl.partial").exists()
    paths = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert len(paths) == len(set(paths)) == 5


def test_cuda_without_gpu_is_one_line_exit_3(tiny_onnx: Path, tmp_path: Path) -> None:
    result = run("classify", str(tmp_path), "-m", str(tiny_onnx), "--provider", "cuda")
    assert result.exit_code == 3
    one_line_error(result, "asked for provider 'cuda'")


def test_doctor() -> None:
    result = run("doctor")
    assert result.exit_code == 0 and "providers_available" in result.stdout and "CPUExecutionProvider" in result.stdout


@pytest.mark.slow  # three CLI steps on a converted net, ~10 s
@pytest.mark.needs_tf
def test_export_parity_quantize(tmp_path: Path) -> None:
    onnx_path = tmp_path / "deep.onnx"
    result = run(
        "export", "zoo:mnist-mlp-deep", "-o", str(onnx_path), "--samples", "32", "--json", str(tmp_path / "e.json")
    )
    assert result.exit_code == 0, result.output
    assert "top-1 agreement" in result.stdout and json.loads((tmp_path / "e.json").read_text())["passed"]
    ok = run("parity", str(onnx_path), str(onnx_path), "--data", "mnist5k", "--limit", "100")
    assert ok.exit_code == 0 and "PASS" in ok.stdout
    q = run(
        "quantize",
        str(onnx_path),
        "--mode",
        "int8",
        "--calibration",
        str(CALIBRATION),
        "--samples",
        "100",
        "--eval",
        "mnist5k",
        "--no-speed",
        "--json",
        str(tmp_path / "q.json"),
    )
    report = json.loads((tmp_path / "q.json").read_text())  # written whatever the verdict
    # an untrained net answers near-ties, which INT8 may flip: a missed bar is exit 4, with the model written
    verdict = report["accuracy"]["verdict"]
    assert q.exit_code == {"PASS": 0, "FAIL": 4}[verdict], q.output
    assert (verdict == "FAIL") == ("error: parity failed (quantized vs fp32): top-1 agreement" in q.stderr)
    assert report["quantization"]["calibration_samples"] == 100 and report["accuracy"]["n"] == 1000
    assert (tmp_path / "deep.int8.onnx").is_file()
    assert "Softmax" in q.stdout and "QLinearSoftmax" not in q.stdout  # the per-role table: a float head
    assert {r["role"] for r in report["anatomy"]} >= {"dense", "softmax"}


@pytest.mark.slow  # two conversions
@pytest.mark.needs_tf
def test_export_softmax_switch_for_logits_models(tmp_path: Path) -> None:
    from edgecnn import Classifier

    outputs = {}
    for flag in ("--softmax", "--no-softmax"):
        path = tmp_path / f"{flag}.onnx"
        result = run("export", "zoo:cifar10-cnn", "-o", str(path), "--samples", "8", flag)
        assert result.exit_code == 0, result.output
        outputs[flag] = Classifier(path).metadata.output.value
    assert outputs == {"--softmax": "softmax", "--no-softmax": "logits"}


def test_parity_failure_exit_4(tmp_path: Path) -> None:
    """Two different digit classifiers (same input, same labels): far over the bars, exit 4."""
    digits = tuple(str(d) for d in range(10))
    a, b = (
        make_tiny_onnx(tmp_path / f"{n}.onnx", labels=digits, size=28, channels=1, seed=s)
        for n, s in zip("ab", (0, 1), strict=True)
    )
    result = run("parity", str(a), str(b), "--data", "mnist5k", "--limit", "50")
    assert result.exit_code == 4, result.output
    one_line_error(result, "parity failed")


@pytest.mark.slow  # builds and saves a Keras model (TensorFlow import)
@pytest.mark.needs_tf
def test_export_refuses_lambda_exit_3(tmp_path: Path) -> None:
    import keras

    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Lambda(lambda t: t + 1, name="evil")(inputs)).save(tmp_path / "l.keras")
    result = run("export", str(tmp_path / "l.keras"))
    assert result.exit_code == 3
    one_line_error(result, "'evil' is a Lambda layer")


@pytest.mark.needs_tf
@pytest.mark.slow
def test_train_small(tmp_path: Path) -> None:
    result = run(
        "train",
        "mnist-mlp-deep",
        "--data",
        "digits",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
        "--json",
        str(tmp_path / "t.json"),
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "t.json").read_text())
    assert report["epochs_run"] == 2 and Path(report["model_path"]).is_file()
    assert (tmp_path / "mnist-mlp-deep" / "curves.png").is_file()


@pytest.mark.needs_tf
def test_train_unknown_arch_exit_2(tmp_path: Path) -> None:
    result = run("train", "alexnet", "--out", str(tmp_path))
    assert result.exit_code == 2
    one_line_error(result, "unknown zoo model 'alexnet'")


def test_sigmoid_model_classifies(tmp_path: Path) -> None:
    model = make_tiny_onnx(tmp_path / "s.onnx", output="sigmoid", labels=("cat", "dog"))
    write_png(tmp_path / "imgs" / "a.png")
    result = run("classify", str(tmp_path / "imgs"), "-m", str(model), "-o", str(tmp_path / "r.csv"))
    assert result.exit_code == 0 and (tmp_path / "r.csv").read_text().count("\n") == 2


def test_installed_entry_point(tiny_onnx: Path) -> None:
    exe = Path(sys.executable).parent / "edgecnn"
    out = subprocess.run([str(exe), "info", str(tiny_onnx), "--json"], capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["parameters"] > 0

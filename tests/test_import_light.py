"""The runtime stays light: no TensorFlow, Keras, tf2onnx, matplotlib, the quantizer, ray or the server
(starlette, uvicorn) after `import edgecnn`, `edgecnn --help` and a prediction (typer's test_rich_import.py pattern)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "tensorflow",
    "keras",
    "tf2onnx",
    "matplotlib",
    "onnxruntime.quantization",
    "ray",
    "starlette",
    "uvicorn",
)

PROBE = """
import sys, runpy
{body}
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
"""


def _run(body: str) -> str:
    code = PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_import_is_light() -> None:
    assert _run("import edgecnn, edgecnn.runtime") == "HEAVY:"


def test_help_is_light() -> None:
    body = (
        "sys.argv = ['edgecnn', '--help']\n"
        "try:\n    runpy.run_module('edgecnn', run_name='__main__')\nexcept SystemExit:\n    pass"
    )
    assert _run(body).endswith("HEAVY:")


def test_prediction_is_light(tiny_onnx: Path) -> None:
    body = (
        "import numpy as np\nfrom edgecnn import Classifier\n"
        f"clf = Classifier({str(tiny_onnx)!r})\n"
        "clf.predict(np.zeros((2, 8, 8, 3), np.float32))\n"
        "clf.predict(np.zeros((20, 30, 3), np.uint8))"
    )
    assert _run(body) == "HEAVY:"


@pytest.mark.slow
def test_fresh_venv_with_runtime_only(tiny_onnx: Path, tmp_path: Path) -> None:
    """Install edgecnn without extras into a new venv: it classifies images without TensorFlow."""
    root = Path(__file__).resolve().parents[1]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]  # no .pyc pass
    subprocess.run([*pip, "numpy", "onnx", "onnxruntime", "Pillow", "typer", "rich"], check=True, timeout=600)
    subprocess.run([*pip, "--no-deps", str(root)], check=True, timeout=300)
    from conftest import write_png

    img = write_png(tmp_path / "imgs" / "a.png", size=(20, 20))
    code = (
        "import sys\nfrom edgecnn import Classifier\n"
        f"p = Classifier({str(tiny_onnx)!r}).predict({str(img)!r})\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('tensorflow') is None, 'tensorflow leaked into the runtime venv'\n"
        "print('LABEL', p.label)"
    )
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("LABEL ")
    cli = subprocess.run(
        [
            str(venv / "bin" / "edgecnn"),
            "classify",
            str(img.parent),
            "-m",
            str(tiny_onnx),
            "-o",
            str(tmp_path / "r.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert (tmp_path / "r.csv").read_text().count("\n") == 2

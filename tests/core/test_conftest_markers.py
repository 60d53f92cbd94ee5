"""The marker logic of tests/conftest.py, run on a tiny test file in a pytest subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

pytestmark = pytest.mark.slow  # each case runs pytest in a subprocess (~3 s)

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: needs CUDA\n    needs_tf: needs TF\n")
    (tmp_path / "test_tiny.py").write_text(
        "import pytest\n\n\n@pytest.mark.gpu\ndef test_on_the_gpu():\n    assert True\n\n\ndef test_anywhere():\n"
        "    assert True\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDGECNN_REQUIRE_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: the GPU test runs instead of being skipped")
@pytest.mark.parametrize("value", [None, "", "0"])
def test_gpu_tests_are_skipped_without_cuda_unless_required(tmp_path: Path, value: str | None) -> None:
    out = _pytest(tmp_path, **({} if value is None else {"EDGECNN_REQUIRE_GPU": value}))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed, 1 skipped" in out.stdout and "needs onnxruntime's CUDAExecutionProvider" in out.stdout


def test_require_gpu_turns_the_skip_into_a_usage_error(tmp_path: Path) -> None:
    out = _pytest(tmp_path, EDGECNN_REQUIRE_GPU="1")
    if HAS_CUDA:
        assert out.returncode == 0 and "2 passed" in out.stdout, out.stdout + out.stderr
        return
    assert out.returncode == pytest.ExitCode.USAGE_ERROR, out.stdout + out.stderr
    assert "EDGECNN_REQUIRE_GPU=1 but onnxruntime has no CUDAExecutionProvider" in out.stderr
    assert str(ort.get_available_providers()) in out.stderr  # names what this onnxruntime offers
    assert "passed" not in out.stdout and "skipped" not in out.stdout

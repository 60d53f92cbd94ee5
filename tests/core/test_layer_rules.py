"""The layer rules (per-folder ``.ruff.toml`` banned-api, README "Architecture") catch what they say.

Each case lints one import as if it stood in a file of that folder (``ruff --stdin-filename`` picks that
folder's rules); nothing is written into the tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(), reason="needs ruff"
)

BANNED = [
    ("edgecnn/runtime/probe.py", "from edgecnn.quantize import quantize"),
    ("edgecnn/runtime/probe.py", "from edgecnn import cli"),
    ("edgecnn/runtime/probe.py", "from edgecnn.keras_io import load_keras"),
    ("edgecnn/data/probe.py", "import ray"),
    ("edgecnn/serve/probe.py", "import ray"),
    ("edgecnn/cluster/probe.py", "import starlette"),
    ("edgecnn/cli/probe.py", "import uvicorn"),
    ("edgecnn/keras_io_probe.py", "from edgecnn.export import api"),
    ("edgecnn/parity/probe.py", "from edgecnn.export import api"),
    ("edgecnn/export/probe.py", "from edgecnn.train import fit"),
    ("edgecnn/quantize/probe.py", "from edgecnn.bench import api"),
    ("edgecnn/quantize/probe.py", "import onnxruntime as ort; ort.InferenceSession('m.onnx')"),
    ("edgecnn/probe.py", "from onnxruntime import InferenceSession"),
]
ALLOWED = [
    ("edgecnn/cluster/probe.py", "import ray"),
    ("edgecnn/serve/probe.py", "import uvicorn"),
    ("edgecnn/export/probe.py", "from edgecnn.keras_io import load_keras"),
    ("edgecnn/bench/probe.py", "from edgecnn.quantize import quantize"),
    ("edgecnn/bench/probe.py", "from edgecnn.runtime.session import build_session"),
]


def _ruff(path: str, line: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    source = f"def probe() -> None:\n    {line}  # noqa: F401\n"
    return subprocess.run(
        [exe, "check", "--no-cache", "--select", "TID251", "--stdin-filename", path, "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.parametrize(("path", "line"), BANNED)
def test_a_layer_rule_refuses_an_import_from_above(path: str, line: str) -> None:
    out = _ruff(path, line)
    assert out.returncode == 1 and "TID251" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize(("path", "line"), ALLOWED)
def test_the_layers_own_imports_pass(path: str, line: str) -> None:
    out = _ruff(path, line)
    assert out.returncode == 0, out.stdout + out.stderr

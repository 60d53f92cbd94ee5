"""The public names resolve, lazily, without pulling TensorFlow into `import edgecnn`."""

from __future__ import annotations

import subprocess
import sys

import pytest

import edgecnn


@pytest.mark.parametrize("name", sorted(edgecnn._LAZY))
def test_lazy_entry_points_resolve(name: str) -> None:
    assert callable(getattr(edgecnn, name))


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        edgecnn.nope  # noqa: B018


def test_lazy_export_does_not_import_tensorflow_until_called() -> None:
    code = "import sys, edgecnn; edgecnn.export_keras; edgecnn.QuantizeConfig; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

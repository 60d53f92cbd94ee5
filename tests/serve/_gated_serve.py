"""`edgecnn serve` with a gate for tests that need requests held in flight: while the file named by
``EDGECNN_TEST_GATE`` exists, every model run waits. The server, its batcher, uvicorn's signal handling and
shutdown are the real ones; only the moment a batch may run is the test's to choose, so that "six requests
are in flight when SIGTERM arrives" is a fact the test sets up, not a race it hopes to win."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from edgecnn.runtime.classifier import Classifier

GATE = Path(os.environ["EDGECNN_TEST_GATE"])
_predict_rows = Classifier.predict_rows


def _held_predict_rows(self, x):  # type: ignore[no-untyped-def]
    while GATE.exists():
        time.sleep(0.002)
    return _predict_rows(self, x)


Classifier.predict_rows = _held_predict_rows  # type: ignore[method-assign]

if __name__ == "__main__":
    from edgecnn.cli import app

    sys.argv[0] = "edgecnn"
    app()

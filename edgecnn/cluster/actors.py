"""The Ray Data actor that classifies paths with the runtime's own pipeline, and the row wire format.

Each actor opens the model once (intra-op threads = its CPUs, no spinning: actors share nodes) and runs
``edgecnn.runtime.folder.classify_paths`` on every batch of paths it is given, so decoding, per-file
errors and batching are exactly the local run's. Nothing here imports ray at module level: the module
is loaded on the workers by reference, and ``ray`` is only touched inside the actor.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.rows import ClassifyRow

ROW = "row"  # output column: one JSON record per file (keeps undecodable names and exact floats)
PATH = "path"  # input column: os.fsencode(path) bytes (Arrow strings cannot hold surrogate escapes)
WALK_ERROR = "walk_error"  # input column: why the walk could not read it, "" when it could
WORKER = "worker"  # output column: node id and pid of the actor that produced the row


@dataclass(frozen=True, slots=True)
class ActorSettings:
    """What each actor needs besides the model: plain data, shipped with the actor's constructor."""

    threads: int = 1
    top_k: int = 5
    batch_size: int = 32
    workers: int | None = None  # decode threads; None: the runtime's default for the node


def encode_row(row: ClassifyRow) -> str:
    data = row.to_dict()
    return json.dumps(data, ensure_ascii=True)  # ASCII escapes carry lone surrogates both ways


def decode_row(text: str) -> ClassifyRow:
    d = json.loads(text)
    return ClassifyRow(
        path=d["path"],
        label=d["label"],
        score=d["score"],
        top_k=tuple((str(lab), float(s)) for lab, s in d["top_k"]),
        error_type=d["error_type"],
        error=d["error"],
    )


class ClassifyActor:
    """One model session per actor; ``__call__`` turns a batch of paths into a batch of encoded rows."""

    def __init__(self, payload: Any, settings: ActorSettings) -> None:
        import ray

        from edgecnn.runtime.classifier import Classifier
        from edgecnn.runtime.engine import EngineSettings

        if isinstance(payload, ray.ObjectRef):
            payload = ray.get(payload)
        self.settings = settings
        self.source = payload.source
        self._model = payload.materialize()
        self.clf = Classifier(
            self._model,
            provider="cpu",
            settings=EngineSettings(threads=settings.threads, spin=False),
            tuning=False,
        )
        context = ray.get_runtime_context()
        self.worker = f"{context.get_node_id()}:{os.getpid()}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from edgecnn.runtime.folder import classify_paths

        items = [(os.fsdecode(bytes(p)), str(e) or None) for p, e in zip(batch[PATH], batch[WALK_ERROR], strict=True)]
        s = self.settings
        try:
            rows = [
                encode_row(r)
                for r in classify_paths(self.clf, items, top_k=s.top_k, batch_size=s.batch_size, workers=s.workers)
            ]
        except EdgeCNNError as err:  # a failing model: name the user's file, not this actor's private copy
            text = str(err)
            for private in {str(self._model.resolve()), str(self._model)}:
                text = text.replace(private, self.source)
            raise type(err)(text) from None
        return {ROW: np.array(rows, dtype=object), WORKER: np.array([self.worker] * len(rows), dtype=object)}

    def __del__(self) -> None:
        model = getattr(self, "_model", None)
        if model is not None:
            shutil.rmtree(model.parent, ignore_errors=True)

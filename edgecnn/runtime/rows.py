"""The records of folder classification: one row per file, and the summary of a run.

The bottom of the folder path: the local pipeline (``folder``), the results file (``results``) and the Ray
driver (``edgecnn.cluster``) all speak in these; this module imports nothing of edgecnn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ClassifyRow:
    """One file's result: a prediction, or the error that stopped it."""

    path: str
    label: str | None = None
    score: float | None = None
    top_k: tuple[tuple[str, float], ...] = ()
    error_type: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "label": self.label,
            "score": self.score,
            "top_k": [[lab, s] for lab, s in self.top_k],
            "error_type": self.error_type,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class ClassifySummary:
    """What a folder run did."""

    out: str | None
    total: int
    ok: int
    errors: int
    resumed: int
    seconds: float
    cluster: dict[str, Any] | None = None  # address, nodes, actors when the run used a Ray cluster

    @property
    def images_per_second(self) -> float:
        return (self.total - self.resumed) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = {
            "out": self.out,
            "total": self.total,
            "ok": self.ok,
            "errors": self.errors,
            "resumed": self.resumed,
            "seconds": self.seconds,
            "images_per_second": self.images_per_second,
        }
        if self.cluster is not None:
            data["cluster"] = self.cluster
        return data
